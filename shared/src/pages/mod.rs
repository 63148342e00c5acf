//! The connect pages: where the customer's Lever admin, sent by a connect link the vendor minted
//! ([`crate::admin::links`]), pastes an API key, sees the permission checklist, picks the owner,
//! registers the webhooks and sees the status. Server-rendered HTML ([`views`], askama templates
//! in `shared/templates/connect/`) that works without JavaScript; every action is the admin API's
//! own ([`crate::admin::Admin`]), so nothing here connects, tests or registers a second way.
//!
//! Links are relative (`key`, `owner`…), so the same pages work under API Gateway
//! (`/connect/<tenant>/…`) and `cargo lambda watch` (`/lambda-url/connect-pages/connect/…`).

pub mod session;
mod views;

use crate::admin::{Admin, AdminError};
use crate::clock::Clock;
use crate::config::Brand;
use crate::lever::LeverApi;
use crate::secrets::SecretStore;
use crate::store::{AdminStore, CommandStore, StatsStore, StoreError, TenantStore};
use serde::Deserialize;
use serde_json::json;
use session::{LinkRefused, Session, SessionRefused};

/// Every route of the pages (the template routes these to `connect-pages`, on the public API).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/connect/{tenantId}/open"),
    ("GET", "/connect/{tenantId}/key"),
    ("POST", "/connect/{tenantId}/key"),
    ("GET", "/connect/{tenantId}/oauth"),
    ("GET", "/connect/{tenantId}/permissions"),
    ("GET", "/connect/{tenantId}/owner"),
    ("POST", "/connect/{tenantId}/owner"),
    ("GET", "/connect/{tenantId}/webhooks"),
    ("POST", "/connect/{tenantId}/webhooks"),
    ("GET", "/connect/{tenantId}/manual"),
    ("POST", "/connect/{tenantId}/manual"),
    ("GET", "/connect/{tenantId}/rotate"),
    ("POST", "/connect/{tenantId}/rotate"),
    ("GET", "/connect/{tenantId}/status"),
    ("POST", "/connect/{tenantId}/replay"),
    ("GET", "/connect/{tenantId}/disconnect"),
    ("POST", "/connect/{tenantId}/disconnect"),
    ("GET", "/connect/{tenantId}/style.css"),
    ("GET", "/connect/{tenantId}/copy.js"),
];

/// Nothing inline, nothing from elsewhere but the vendor's logo (the one script is `copy.js` beside
/// the pages); forms post only here; never framed.
pub fn content_security_policy(brand: &Brand) -> String {
    let logo = brand
        .logo_url
        .as_deref()
        .and_then(Brand::origin_of)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'{logo}; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// What the pages read of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// The `Cookie` header.
    pub cookie: Option<&'a str>,
    /// The `Sec-Fetch-Site` header: a browser's word on where a request came from.
    pub fetch_site: Option<&'a str>,
    pub body: &'a [u8],
}

/// An answer: status, headers, body.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Page {
    fn html(status: u16, body: String) -> Page {
        Page {
            status,
            headers: vec![
                ("content-type", "text/html; charset=utf-8".into()),
                ("cache-control", "no-store".into()),
                // The deployment's, set by `serve`.
                ("content-security-policy", String::new()),
                ("x-content-type-options", "nosniff".into()),
                ("x-frame-options", "DENY".into()),
                // The link's token is in the first URL: never sent on.
                ("referrer-policy", "no-referrer".into()),
            ],
            body,
        }
    }

    /// 303 to a page of the same tenant (relative).
    fn see_other(to: &str) -> Page {
        let mut p = Page::html(303, String::new());
        p.headers.push(("location", to.to_string()));
        p
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn problem(status: u16, title: &str, message: &str, next: &str) -> Page {
        Page::html(status, views::problem(title, message, next))
    }
}

const ASK_AGAIN: &str =
    "Ask the team that sent you the link for a new one: it takes them a minute.";

fn link_refused(why: LinkRefused) -> Page {
    let (title, message) = match why {
        LinkRefused::Expired => (
            "This link has expired",
            "Connect links work for a short time only, and this one's time is up.",
        ),
        LinkRefused::Used => (
            "This link was used already",
            "Each connect link opens once, in one browser, and this one has been opened.",
        ),
        LinkRefused::Invalid => (
            "This link is not valid",
            "It was revoked, or a newer link replaced it.",
        ),
    };
    Page::problem(410, title, message, ASK_AGAIN)
}

fn session_refused(why: &SessionRefused) -> Page {
    match why {
        SessionRefused::Missing => Page::problem(
            401,
            "Open your connect link first",
            "These pages open from the connect link you were sent; this browser has no session for them.",
            ASK_AGAIN,
        ),
        SessionRefused::OtherTenant => Page::problem(
            403,
            "This session is for another Lever account",
            "The link you opened in this browser was for a different account than this page's.",
            "Open the link sent for this account, or ask for one.",
        ),
        SessionRefused::Ended => Page::problem(
            401,
            "Your session has ended",
            "Sessions last two hours, and end when the link is revoked or a newer one is sent.",
            ASK_AGAIN,
        ),
    }
}

fn unavailable(e: &StoreError) -> Page {
    tracing::warn!(error = %e, "connect pages: store unavailable");
    Page::problem(
        503,
        "Please try again",
        "The service is briefly unavailable.",
        "Reload this page in a few seconds.",
    )
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
struct Csrf {
    csrf: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyForm {
    environment: Option<String>,
    api_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OwnerForm {
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct TokenForm {
    event: Option<String>,
    token: Option<String>,
}

#[derive(Deserialize)]
struct ConfirmForm {
    confirm: Option<String>,
}

#[derive(Deserialize)]
struct ReplayedQuery {
    replayed: Option<u32>,
}

#[derive(Deserialize)]
struct SavedQuery {
    saved: Option<String>,
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

#[derive(Deserialize)]
struct OAuthQuery {
    environment: Option<String>,
    /// The admin OAuth callback's error code, when an authorization started here came back failed.
    oauth: Option<String>,
}

/// What a failed authorization says on the key page.
fn oauth_failure(code: &str) -> String {
    match code {
        "authorization_denied" => "Lever did not authorize the connection: Deny was chosen on Lever's page, or Lever \
refused the request. Connect with Lever again, or paste an API key."
            .into(),
        "invalid_state" => "That authorization took too long (it lasts 10 minutes) or was used already: connect \
with Lever again."
            .into(),
        "no_refresh_token" => "Lever gave no lasting access (the offline_access scope was not granted): connect with \
Lever again and allow every requested access."
            .into(),
        _ => "The connection with Lever could not be finished: connect with Lever again, or paste an API key.".into(),
    }
}

/// The tenant id and page of `…/connect/<tenant>/<page>`.
fn route(path: &str) -> Option<(&str, &str)> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segs.iter().rposition(|s| *s == "connect")?;
    match segs.get(at + 1..)? {
        [tenant, page] if crate::ids::tenant_id(tenant) => Some((tenant, page)),
        _ => None,
    }
}

/// Answers one request to the pages, in the vendor's `brand`. Never panics on input; bodies and
/// tokens are never logged.
pub async fn serve<L, S, K, C>(
    admin: &Admin<L, S, K, C>,
    brand: &Brand,
    req: PageRequest<'_>,
) -> Page
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    let mut page = Box::pin(serve_branded(admin, brand, req)).await;
    for (name, value) in &mut page.headers {
        if *name == "content-security-policy" {
            *value = content_security_policy(brand);
        }
    }
    page
}

async fn serve_branded<L, S, K, C>(
    admin: &Admin<L, S, K, C>,
    brand: &Brand,
    req: PageRequest<'_>,
) -> Page
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    let not_found = || {
        Page::problem(
            404,
            "No such page",
            "This address is not one of the connect pages.",
            "Open the connect link you were sent.",
        )
    };
    let Some((tenant, page)) = route(req.path) else {
        return not_found();
    };
    let template_of = |m: &str| {
        ROUTES
            .iter()
            .any(|(rm, p)| *rm == m && p.rsplit('/').next() == Some(page))
    };
    if !template_of(req.method) {
        if ["GET", "POST"].iter().any(|m| template_of(m)) {
            return Page::problem(
                405,
                "Not allowed",
                "This page does not take that kind of request.",
                "Go back and use the page's own buttons.",
            );
        }
        return not_found();
    }
    if let Some((content_type, body)) = match page {
        // The vendor's accent in place of the sheet's own.
        "style.css" => Some((
            "text/css; charset=utf-8",
            views::STYLE.replace(views::ACCENT, &brand.accent_colour),
        )),
        "copy.js" => Some(("text/javascript; charset=utf-8", views::COPY_JS.to_string())),
        _ => None,
    } {
        return Page {
            status: 200,
            headers: vec![
                ("content-type", content_type.into()),
                ("cache-control", "public, max-age=3600".into()),
                ("x-content-type-options", "nosniff".into()),
            ],
            body,
        };
    }
    if page == "open" {
        return Box::pin(open(admin, tenant, req)).await;
    }
    // On the heap: the store's futures are large, and this one is in every page's.
    let session = match Box::pin(session::check(admin, tenant, req.cookie)).await {
        Ok(Ok(s)) => s,
        Ok(Err(why)) => return session_refused(&why),
        Err(e) => return unavailable(&e),
    };
    if req.method == "POST" {
        let csrf = serde_urlencoded::from_bytes::<Csrf>(req.body)
            .ok()
            .and_then(|c| c.csrf)
            .unwrap_or_default();
        if req.fetch_site == Some("cross-site") || !session.csrf_ok(&csrf) {
            tracing::warn!(tenant, page, "connect pages: form refused (CSRF)");
            return Page::problem(
                403,
                "This form is out of date",
                "It was not sent from this session's page (an old tab, or another site).",
                "Go back, reload the page and send it again.",
            );
        }
    }
    let answer = Box::pin(answer(admin, brand, &session, req.method, page, req)).await;
    tracing::info!(
        tenant,
        page,
        method = req.method,
        status = answer.status,
        "connect page"
    );
    answer
}

/// [`serve`] within the invocation's `deadline`: no OAuth refresh outlives it.
pub async fn serve_until<L, S, K, C>(
    admin: &Admin<L, S, K, C>,
    brand: &Brand,
    req: PageRequest<'_>,
    deadline: std::time::Instant,
) -> Page
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    Admin::<L, S, K, C>::until(deadline, serve(admin, brand, req)).await
}

async fn open<L, S, K, C>(admin: &Admin<L, S, K, C>, tenant: &str, req: PageRequest<'_>) -> Page
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    let token = serde_urlencoded::from_str::<TokenQuery>(req.query)
        .ok()
        .and_then(|q| q.token)
        .unwrap_or_default();
    let opened = match session::open(admin, tenant, &token).await {
        Ok(o) => o,
        Err(e) => return unavailable(&e),
    };
    let session = match opened {
        Ok(s) => s,
        // The same browser opening its link again goes on with its session.
        Err(why) => match session::check(admin, tenant, req.cookie).await {
            Ok(Ok(_)) => return Page::see_other(&first_page(admin, tenant).await),
            _ => return link_refused(why),
        },
    };
    let mut page = Page::see_other(&first_page(admin, tenant).await);
    page.headers.push(("set-cookie", session.set_cookie()));
    page
}

/// Where a session starts: the key page until the tenant has credentials, then the status.
async fn first_page<L, S, K, C>(admin: &Admin<L, S, K, C>, tenant: &str) -> String
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    let connected = matches!(admin.store.tenant(tenant).await, Ok(Some(_)))
        && matches!(admin.secrets.load(tenant).await, Ok(Some(s)) if s.auth_kind().is_some());
    if connected { "status" } else { "key" }.to_string()
}

async fn answer<L, S, K, C>(
    admin: &Admin<L, S, K, C>,
    brand: &Brand,
    s: &Session,
    method: &str,
    page: &str,
    req: PageRequest<'_>,
) -> Page
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    let id = s.tenant.as_str();
    let tenant = match admin.store.tenant(id).await {
        Ok(t) => t,
        Err(e) => return unavailable(&e),
    };
    // Until the tenant exists, only the ways to connect it.
    if tenant.is_none() && !matches!(page, "key" | "oauth") {
        return Page::see_other("key");
    }
    let frame = |step: &'static str| views::Frame::new(id, step, s.csrf(), brand);
    match (method, page) {
        ("GET", "key") => {
            let mut f = frame("key");
            f.error = serde_urlencoded::from_str::<OAuthQuery>(req.query)
                .ok()
                .and_then(|q| q.oauth)
                .map(|code| oauth_failure(&code));
            Box::pin(key_page(admin, f, tenant.as_ref(), 200)).await
        }
        // A link, not a form: the CSP's form-action would stop a form's redirect to Lever.
        ("GET", "oauth") => {
            let environment = serde_urlencoded::from_str::<OAuthQuery>(req.query)
                .ok()
                .and_then(|q| q.environment)
                .unwrap_or_else(|| "production".into());
            match Box::pin(admin.begin_oauth(id, &environment, true)).await {
                Ok(v) => Page::see_other(v["authorizeUrl"].as_str().unwrap_or("key")),
                Err(e) => {
                    let mut f = frame("key");
                    f.error = Some(e.message);
                    Box::pin(key_page(admin, f, tenant.as_ref(), e.status.max(400))).await
                }
            }
        }
        ("POST", "key") => {
            let form: KeyForm = serde_urlencoded::from_bytes(req.body).unwrap_or(KeyForm {
                environment: None,
                api_key: None,
            });
            let environment = form.environment.unwrap_or_else(|| "production".into());
            let key = form.api_key.unwrap_or_default();
            let done = match &tenant {
                None => Box::pin(
                    admin.connect(
                        json!({"tenantId": id, "environment": environment, "apiKey": key.trim()})
                            .to_string()
                            .as_bytes(),
                    ),
                )
                .await
                .map(|_| ()),
                Some(t) if admin.settings.environment_of(&t.lever_base_url) != environment => {
                    Err(AdminError::bad_request(
                        "invalid_environment",
                        format!(
                            "This account is connected to Lever's {} environment. A key of another \
environment needs a new connection: ask the team that sent you the link to remove this one first.",
                            admin.settings.environment_of(&t.lever_base_url)
                        ),
                    ))
                }
                Some(_) => Box::pin(
                    admin.replace_key(id, json!({"apiKey": key.trim()}).to_string().as_bytes()),
                )
                .await
                .map(|_| ()),
            };
            match done {
                Ok(()) => Page::see_other("permissions"),
                Err(e) => {
                    let tenant = admin.store.tenant(id).await.ok().flatten();
                    let mut f = frame("key");
                    f.error = Some(e.message);
                    Box::pin(key_page(admin, f, tenant.as_ref(), e.status.max(400))).await
                }
            }
        }
        ("GET", "permissions") => match Box::pin(admin.test_connection(id)).await {
            Ok(v) => Page::html(200, views::permissions(frame("permissions"), &v)),
            Err(e) => error_on(frame("permissions"), &e),
        },
        ("GET", "owner") => {
            let q = serde_urlencoded::from_str::<SearchQuery>(req.query)
                .ok()
                .and_then(|q| q.q)
                .unwrap_or_default();
            Box::pin(owner_page(admin, frame("owner"), &q, 200)).await
        }
        ("POST", "owner") => {
            let form: OwnerForm =
                serde_urlencoded::from_bytes(req.body).unwrap_or(OwnerForm { user_id: None });
            let body = json!({"userId": form.user_id.unwrap_or_default()}).to_string();
            match Box::pin(admin.set_owner(id, body.as_bytes())).await {
                Ok(_) => Page::see_other("webhooks"),
                Err(e) => {
                    let mut f = frame("owner");
                    f.error = Some(e.message);
                    Box::pin(owner_page(admin, f, "", e.status.max(400))).await
                }
            }
        }
        ("GET", "webhooks") => Box::pin(webhooks_page(admin, frame("webhooks"), None)).await,
        ("POST", "webhooks") => {
            let registered = Box::pin(admin.register_webhooks(id)).await;
            match registered {
                Ok(v) => Box::pin(webhooks_page(admin, frame("webhooks"), Some(&v))).await,
                Err(e) => {
                    let mut f = frame("webhooks");
                    f.error = Some(e.message);
                    Box::pin(webhooks_page(admin, f, None)).await
                }
            }
        }
        ("GET", "manual") => {
            let mut f = frame("webhooks");
            f.notice = serde_urlencoded::from_str::<SavedQuery>(req.query)
                .ok()
                .and_then(|q| q.saved)
                .filter(|e| crate::webhook::EventKind::parse(e).is_some())
                .map(|e| format!("The signature token for {e} is saved."));
            Box::pin(manual_page(admin, f, 200)).await
        }
        ("POST", "manual") => {
            let form: TokenForm = serde_urlencoded::from_bytes(req.body).unwrap_or(TokenForm {
                event: None,
                token: None,
            });
            let event = form.event.unwrap_or_default();
            let body = json!({"token": form.token.unwrap_or_default().trim()}).to_string();
            match Box::pin(admin.paste_token(id, &event, body.as_bytes())).await {
                Ok(_) => Page::see_other(&format!("manual?saved={event}")),
                Err(e) => {
                    let mut f = frame("webhooks");
                    f.error = Some(e.message);
                    Box::pin(manual_page(admin, f, e.status.max(400))).await
                }
            }
        }
        ("GET", "rotate") => Page::html(200, views::rotate(frame("webhooks"), None)),
        ("POST", "rotate") => {
            let confirmed = serde_urlencoded::from_bytes::<ConfirmForm>(req.body)
                .ok()
                .and_then(|f| f.confirm)
                .is_some_and(|c| c == "yes");
            let mut f = frame("webhooks");
            if !confirmed {
                f.error = Some("Tick the box to confirm: nothing was changed.".into());
                return Page::html(400, views::rotate(f, None));
            }
            match Box::pin(admin.rotate_url_key(id)).await {
                Ok(v) => Page::html(200, views::rotate(f, Some(&v))),
                Err(e) => {
                    f.error = Some(e.message);
                    Page::html(e.status.max(400), views::rotate(f, None))
                }
            }
        }
        ("GET", "disconnect") => Page::html(200, views::disconnect(frame("status"))),
        ("POST", "disconnect") => {
            let confirmed = serde_urlencoded::from_bytes::<ConfirmForm>(req.body)
                .ok()
                .and_then(|f| f.confirm)
                .is_some_and(|c| c.trim() == id);
            if !confirmed {
                let mut f = frame("status");
                f.error = Some(format!(
                    "Type {id} exactly to confirm: nothing was removed."
                ));
                return Page::html(400, views::disconnect(f));
            }
            match Box::pin(admin.disconnect(id)).await {
                Ok(_) => {
                    let mut page = Page::problem(
                        200,
                        "This Lever account is disconnected",
                        "Its credentials, webhook tokens and records here are deleted, and this session has ended.",
                        "Delete the integration's webhooks and API key in Lever. To connect again, ask for a new link.",
                    );
                    page.headers.push(("set-cookie", session::clear_cookie()));
                    page
                }
                Err(e) => error_on(frame("status"), &e),
            }
        }
        ("GET", "status") => {
            let mut f = frame("status");
            f.notice = serde_urlencoded::from_str::<ReplayedQuery>(req.query)
                .ok()
                .and_then(|q| q.replayed)
                .map(|n| match n {
                    1 => "The waiting command was sent to Lever again.".to_string(),
                    n => format!("{n} waiting commands were sent to Lever again."),
                });
            match Box::pin(admin.status(id)).await {
                Ok(r) => Page::html(200, views::status(f, &r, admin.clock.now_ms())),
                Err(e) => error_on(f, &e),
            }
        }
        ("POST", "replay") => match Box::pin(admin.replay_parked(id)).await {
            Ok(v) => Page::see_other(&format!(
                "status?replayed={}",
                v["parked"]["replayed"].as_u64().unwrap_or(0)
            )),
            Err(e) => error_on(frame("status"), &e),
        },
        _ => Page::problem(
            404,
            "No such page",
            "This address is not one of the connect pages.",
            "Use the steps at the top of the page.",
        ),
    }
}

/// A page that could not be made: the step's frame with the error, what it says to do.
fn error_on(mut frame: views::Frame, e: &AdminError) -> Page {
    frame.error = Some(e.message.clone());
    Page::html(e.status.max(400), views::empty(frame))
}

async fn key_page<L, S, K, C>(
    admin: &Admin<L, S, K, C>,
    frame: views::Frame,
    tenant: Option<&crate::store::Tenant>,
    status: u16,
) -> Page
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    let secret = match tenant {
        Some(_) => admin.secrets.load(&frame.tenant).await.ok().flatten(),
        None => None,
    };
    let environment = tenant.map_or_else(
        || "production".to_string(),
        |t| admin.settings.environment_of(&t.lever_base_url),
    );
    Page::html(
        status,
        views::key(
            frame,
            &admin.settings.environments,
            &environment,
            secret.as_ref(),
            admin.settings.oauth.is_some(),
        ),
    )
}

async fn owner_page<L, S, K, C>(
    admin: &Admin<L, S, K, C>,
    frame: views::Frame,
    query: &str,
    status: u16,
) -> Page
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    match Box::pin(admin.users(&frame.tenant)).await {
        Ok(v) => Page::html(status, views::owner(frame, &v, query)),
        Err(e) => error_on(frame, &e),
    }
}

async fn manual_page<L, S, K, C>(
    admin: &Admin<L, S, K, C>,
    frame: views::Frame,
    status: u16,
) -> Page
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    match Box::pin(admin.status(&frame.tenant)).await {
        Ok(r) => Page::html(status, views::manual(frame, &r)),
        Err(e) => error_on(frame, &e),
    }
}

async fn webhooks_page<L, S, K, C>(
    admin: &Admin<L, S, K, C>,
    frame: views::Frame,
    registered: Option<&serde_json::Value>,
) -> Page
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    let status = if frame.error.is_some() { 502 } else { 200 };
    match Box::pin(admin.status(&frame.tenant)).await {
        Ok(r) => Page::html(status, views::webhooks(frame, &r, registered)),
        Err(e) => error_on(frame, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_found_under_any_prefix() {
        assert_eq!(route("/connect/acme/key"), Some(("acme", "key")));
        assert_eq!(
            route("/lambda-url/connect-pages/connect/acme/open"),
            Some(("acme", "open"))
        );
        assert_eq!(route("/connect/a.b/key"), None);
        assert_eq!(route("/connect/acme"), None);
        assert_eq!(route("/connect/acme/key/more"), None);
    }
}
