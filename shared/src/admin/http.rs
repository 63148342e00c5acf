//! Routing: method and path to the handler, for the admin functions. Each function serves a group
//! of routes; a route of another group answers 404 there.
//!
//! Paths are matched from their `/admin/` segment on, so the same code serves API Gateway
//! (`/admin/...`) and `cargo lambda watch` (`/lambda-url/<function>/admin/...`).

use super::{Admin, AdminError, Reply};
use crate::clock::Clock;
use crate::lever::LeverApi;
use crate::secrets::SecretStore;
use crate::store::{AdminStore, CommandStore, StatsStore, TenantStore};
use serde_json::Value;

/// The admin functions' route groups (each function serves one); defined with the functions.
pub use crate::function::Group;

fn ok(v: Result<Value, AdminError>) -> Reply {
    match v {
        Ok(v) => Reply::json(200, v),
        Err(e) => e.reply(),
    }
}

impl<L, S, K, C> Admin<L, S, K, C>
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    /// Answers one request. Never panics on input; the body is never logged.
    /// (Not an `async fn`: no extra layer around the route's large future.)
    pub fn handle<'a>(
        &'a self,
        groups: &'a [Group],
        method: &'a str,
        path: &'a str,
        body: &'a [u8],
    ) -> impl std::future::Future<Output = Reply> + 'a {
        self.handle_request(groups, method, path, "", body)
    }

    /// [`Admin::handle_request`] within the invocation's `deadline`: no OAuth refresh outlives it.
    pub async fn handle_until(
        &self,
        groups: &[Group],
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        deadline: std::time::Instant,
    ) -> Reply {
        Self::until(
            deadline,
            self.handle_request(groups, method, path, query, body),
        )
        .await
    }

    /// [`Admin::handle`] with the query string (the OAuth routes read theirs; it is never logged,
    /// it carries the authorization code).
    pub async fn handle_request(
        &self,
        groups: &[Group],
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Reply {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let Some(at) = segs.iter().position(|s| *s == "admin") else {
            return Reply::error(
                404,
                "not_found",
                "no such route: see the README's Onboarding API",
            );
        };
        let segs = &segs[at + 1..];
        let Some((group, allowed)) = route_of(segs) else {
            return Reply::error(
                404,
                "not_found",
                "no such route: see the README's Onboarding API",
            );
        };
        if !groups.contains(&group) {
            return Reply::error(404, "not_found", "this function does not serve that route");
        }
        if !allowed.contains(&method) {
            return Reply::error(
                405,
                "method_not_allowed",
                &format!("this route takes {}", allowed.join(", ")),
            );
        }
        // On the heap: the routes' futures together are too large for a small stack.
        let reply = Box::pin(self.dispatch(method, segs, query, body)).await;
        tracing::info!(
            method,
            route = route_name(segs),
            status = reply.status,
            "admin request"
        );
        reply
    }

    async fn dispatch(&self, method: &str, segs: &[&str], query: &str, body: &[u8]) -> Reply {
        match (method, segs) {
            // Boxed so the other routes' futures do not grow by the token exchange's.
            ("GET", ["oauth", "authorize"]) => ok(Box::pin(self.oauth_authorize(query)).await),
            ("GET", ["oauth", "callback"]) => {
                let done = Box::pin(self.oauth_callback(query)).await;
                match (done.pages, self.settings.connect_pages_url.as_deref()) {
                    // Started on the connect pages: the browser goes back there, to the checklist
                    // or to the key page saying what happened.
                    (Some(tenant), Some(pages)) => Reply::see_other(match done.answer {
                        Ok(_) => format!("{pages}/connect/{tenant}/permissions"),
                        Err(e) => format!("{pages}/connect/{tenant}/key?oauth={}", e.code),
                    }),
                    _ => match done.answer {
                        Ok((status, v)) => Reply::json(status, v),
                        Err(e) => e.reply(),
                    },
                }
            }
            ("POST", ["tenants"]) => match Box::pin(self.connect(body)).await {
                Ok((status, v)) => Reply::json(status, v),
                Err(e) => e.reply(),
            },
            ("DELETE", ["tenants", id]) => ok(Box::pin(self.disconnect(id)).await),
            ("POST", ["tenants", id, "connect-link"]) => {
                match Box::pin(self.mint_connect_link(id)).await {
                    Ok((status, v)) => Reply::json(status, v),
                    Err(e) => e.reply(),
                }
            }
            ("DELETE", ["tenants", id, "connect-link"]) => ok(self.revoke_connect_link(id).await),
            ("PUT", ["tenants", id, "apiKey"]) => ok(Box::pin(self.replace_key(id, body)).await),
            ("POST", ["tenants", id, "test"]) => ok(Box::pin(self.test_connection(id)).await),
            ("POST", ["tenants", id, "sync"]) => ok(self.start_sync(id).await),
            ("GET", ["tenants", id, "parked"]) => ok(self.list_parked(id).await),
            ("POST", ["tenants", id, "parked", "replay"]) => {
                ok(Box::pin(self.replay_parked(id)).await)
            }
            ("GET", ["tenants", id, "users"]) => ok(self.users(id).await),
            ("PUT", ["tenants", id, "owner"]) => ok(self.set_owner(id, body).await),
            ("POST", ["tenants", id, "webhooks"]) => ok(self.register_webhooks(id).await),
            ("POST", ["tenants", id, "webhooks", "urlKey"]) => {
                ok(Box::pin(self.rotate_url_key(id)).await)
            }
            ("PUT", ["tenants", id, "webhooks", event, "token"]) => {
                ok(self.paste_token(id, event, body).await)
            }
            ("GET", ["tenants", id, "status"]) => match Box::pin(self.status(id)).await {
                Ok(r) => Reply::json(200, serde_json::to_value(r).unwrap_or_default()),
                Err(e) => e.reply(),
            },
            ("GET", ["tenants", id, "status.html"]) => match Box::pin(self.status(id)).await {
                Ok(r) => Reply::html(200, super::status::render_html(&r)),
                Err(e) => Reply::html(
                    e.status,
                    format!(
                        "<!doctype html><html><body><h1>Error</h1><p>{}</p></body></html>",
                        e.message.replace('<', "&lt;")
                    ),
                ),
            },
            ("POST", ["tenants", id, "postings", "sync"]) => ok(self.sync_postings(id).await),
            ("PUT", ["tenants", id, "roles", role]) => ok(self.map_role(id, role, body).await),
            ("GET", ["tenants", id, "roles"]) => ok(self.roles(id).await),
            ("POST", ["tenants", id, "resolve"]) => ok(self.resolve(id, body).await),
            ("POST", ["events", "replay"]) => ok(self.replay_events(body).await),
            _ => Reply::error(404, "not_found", "no such route"),
        }
    }
}

/// Every route the admin functions serve: method, path template (`{name}` matches one segment) and
/// the group that serves it. The router, the OpenAPI document's test and the template's check all
/// read this list.
pub const ROUTES: &[(&str, &str, Group)] = {
    use Group::*;
    &[
        ("POST", "/admin/tenants", Tenants),
        ("DELETE", "/admin/tenants/{id}", Tenants),
        ("PUT", "/admin/tenants/{id}/apiKey", Tenants),
        ("PUT", "/admin/tenants/{id}/owner", Tenants),
        ("POST", "/admin/tenants/{id}/test", Tenants),
        ("POST", "/admin/tenants/{id}/sync", Tenants),
        ("GET", "/admin/tenants/{id}/users", Tenants),
        ("GET", "/admin/tenants/{id}/parked", Tenants),
        ("POST", "/admin/tenants/{id}/connect-link", Tenants),
        ("DELETE", "/admin/tenants/{id}/connect-link", Tenants),
        ("POST", "/admin/tenants/{id}/parked/replay", Tenants),
        ("POST", "/admin/tenants/{id}/webhooks", Webhooks),
        ("POST", "/admin/tenants/{id}/webhooks/urlKey", Webhooks),
        (
            "PUT",
            "/admin/tenants/{id}/webhooks/{event}/token",
            Webhooks,
        ),
        ("GET", "/admin/tenants/{id}/status", Status),
        ("GET", "/admin/tenants/{id}/status.html", Status),
        ("POST", "/admin/tenants/{id}/postings/sync", Roles),
        ("GET", "/admin/tenants/{id}/roles", Roles),
        ("PUT", "/admin/tenants/{id}/roles/{roleId}", Roles),
        ("POST", "/admin/tenants/{id}/resolve", Resolve),
        ("GET", "/admin/oauth/authorize", OAuth),
        ("GET", "/admin/oauth/callback", OAuth),
        ("POST", "/admin/events/replay", Events),
    ]
};

/// Whether `template`'s segments after `/admin/` match `segs`.
fn matches(template: &str, segs: &[&str]) -> bool {
    let want: Vec<&str> = template
        .split('/')
        .filter(|s| !s.is_empty())
        .skip(1)
        .collect();
    want.len() == segs.len()
        && want
            .iter()
            .zip(segs)
            .all(|(w, s)| (w.starts_with('{') && w.ends_with('}')) || w == s)
}

/// The template of the route a path (from its `admin` segment on) and method name, if any.
pub fn route_template(method: &str, path: &str) -> Option<&'static str> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segs.iter().position(|s| *s == "admin")?;
    ROUTES
        .iter()
        .find(|(m, t, _)| *m == method && matches(t, &segs[at + 1..]))
        .map(|(_, t, _)| *t)
}

/// The group a path belongs to and the methods it takes.
fn route_of(segs: &[&str]) -> Option<(Group, Vec<&'static str>)> {
    let mut group = None;
    let mut methods = Vec::new();
    for (m, t, g) in ROUTES {
        if matches(t, segs) {
            group = Some(*g);
            methods.push(*m);
        }
    }
    group.map(|g| (g, methods))
}

/// The route with ids replaced, for logs.
fn route_name(segs: &[&str]) -> String {
    let mut out = String::from("/admin");
    for (i, s) in segs.iter().enumerate() {
        out.push('/');
        // Second segment is the tenant id, fourth the event or role: plain ids, never secrets.
        out.push_str(if i == 1 && segs[0] == "tenants" {
            "{id}"
        } else {
            s
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each route is found by its own template, and by no other route's.
    #[test]
    fn every_route_is_reached_by_its_template_alone() {
        for (method, template, group) in ROUTES {
            let path = template
                .replace("{id}", "acme")
                .replace("{event}", "candidateHired")
                .replace("{roleId}", "role-1");
            assert_eq!(route_template(method, &path), Some(*template), "{path}");
            let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).skip(1).collect();
            let (g, methods) = route_of(&segs).unwrap();
            assert_eq!(g, *group, "{path}");
            assert_eq!(
                methods.iter().filter(|m| *m == method).count(),
                1,
                "{method} {path}"
            );
        }
        assert_eq!(route_template("GET", "/admin/tenants/acme/nothing"), None);
        assert_eq!(
            route_template("POST", "/lambda-url/admin-events/admin/events/replay"),
            Some("/admin/events/replay")
        );
    }
}
