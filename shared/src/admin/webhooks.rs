//! Webhooks: registering all ten through Lever's API (idempotent), and tokens pasted from
//! webhooks made in Lever's UI.

use super::{Admin, AdminError, parse_body};
use crate::clock::Clock;
use crate::lever::LeverApi;
use crate::secrets::{Redacted, SecretStore};
use crate::store::{AdminStore, CommandStore, StatsStore, TenantStore};
use crate::webhook::EventKind;
use serde::Deserialize;
use serde_json::{Value, json};

pub use crate::webhook::SUPER_ADMIN_REMINDER;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenBody {
    token: Option<Redacted>,
    /// Keep the token(s) already set, for a rotation (default true).
    keep_previous: Option<bool>,
}

/// What making a kind's webhook came to.
enum Made {
    /// Made, its token saved: its id.
    Made(String),
    /// Made, but Lever gave no token (it must be pasted): its id.
    WithoutToken(String),
}

impl<L, S, K, C> Admin<L, S, K, C>
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    fn base_url(&self) -> Result<&str, AdminError> {
        self.settings.webhook_base_url.as_deref().ok_or_else(|| {
            AdminError::new(
                409,
                "not_configured",
                "this deployment has no WEBHOOK_BASE_URL, so it cannot tell Lever where to deliver: deploy \
the template (it sets it to the webhook API's URL), or make the webhooks in Lever by hand and paste their tokens \
(PUT /admin/tenants/{id}/webhooks/{event}/token)",
            )
        })
    }

    /// `POST /admin/tenants/{id}/webhooks`: each kind ends with one webhook in Lever, at the
    /// tenant's current URL, whose token is stored, and registering again converges whatever an
    /// earlier attempt left. Per kind: the webhook at our URL whose id the stored token came from
    /// stays; otherwise a new one is made and its token saved at once (tied to its id), and only
    /// then are the others of the kind (at our URL with a token nobody holds, or at a retired URL)
    /// deleted. A create whose answer was lost is resolved by listing Lever's webhooks.
    pub async fn register_webhooks(&self, id: &str) -> Result<Value, AdminError> {
        let base = self.base_url()?.to_string();
        let ctx = self.ctx(id).await?;
        let lever = self.client(&ctx.account);
        let existing = match lever.webhooks().await {
            Ok(w) => w,
            Err(e) => return Err(self.fail(id, e).await),
        };
        let mut secret = ctx.secret.clone();
        let tenant_prefix = format!("{}/webhooks/{id}/", base.trim_end_matches('/'));
        let mut results = Vec::new();
        for kind in EventKind::ALL {
            let Some(url) = self.webhook_url(id, secret.url_generation, kind.as_str()) else {
                return Err(AdminError::new(
                    500,
                    "not_configured",
                    "this function has no webhook URL keys (WEBHOOK_URL_KEY_SECRET_NAME)",
                ));
            };
            let at_url = |hooks: &[crate::lever::models::Webhook]| -> Vec<String> {
                hooks
                    .iter()
                    .filter(|w| w.event == kind.as_str() && w.url == url)
                    .map(|w| w.id.clone())
                    .collect()
            };
            let here = at_url(&existing);
            let held = (!secret.tokens(kind).is_empty())
                .then(|| match secret.webhook_id(kind) {
                    Some(known) => here.iter().find(|w| *w == known).cloned(),
                    // A token pasted by hand, or stored before ids were: the one webhook there.
                    None if here.len() == 1 => Some(here[0].clone()),
                    None => None,
                })
                .flatten();
            let (keep, status) = match held {
                Some(w) => (w, "exists"),
                None => {
                    match Box::pin(self.create_webhook(&lever, id, kind, &url, &mut secret)).await {
                        Ok(Made::Made(w)) => (
                            w,
                            if here.is_empty() {
                                "created"
                            } else {
                                "recreated"
                            },
                        ),
                        Ok(Made::WithoutToken(w)) => {
                            results.push(json!({"event": kind.as_str(), "url": url, "status": "createdWithoutToken", "id": w,
                            "message": "Lever did not return a signature token: copy it from Lever's UI and paste it"}));
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            // What Lever had of the kind besides the one kept: at our URL with a token nobody
            // holds, or at a retired URL of this tenant (one made in this call without an answer
            // was dealt with by create_webhook).
            for w in existing.iter().filter(|w| {
                w.event == kind.as_str()
                    && w.id != keep
                    && (w.url == url || w.url.starts_with(&tenant_prefix))
            }) {
                if let Err(e) = lever.delete_webhook(&w.id).await
                    && !matches!(e, crate::lever::LeverError::NotFound(_))
                {
                    return Err(self.fail(id, e).await);
                }
            }
            results.push(json!({"event": kind.as_str(), "url": url, "status": status, "id": keep}));
        }
        tracing::info!(tenant = id, "webhooks registered");
        let registered = results
            .iter()
            .map(|r| crate::events::payload::RegisteredWebhook {
                event: r["event"].as_str().unwrap_or_default().to_string(),
                status: r["status"].as_str().unwrap_or_default().to_string(),
                id: r["id"].as_str().map(str::to_string),
            })
            .collect();
        let event = crate::events::webhooks_registered(id, registered, self.clock.now_ms());
        self.store.tenant_event(id, &event).await?;
        Ok(json!({"tenantId": id, "webhooks": results, "reminder": SUPER_ADMIN_REMINDER}))
    }

    /// Makes the kind's webhook at `url` and saves its token, tied to its id, before anything
    /// else. An answer lost on the way (Lever may have made it) is resolved from Lever's list:
    /// what Lever made without telling us its token is deleted and made again, once.
    async fn create_webhook(
        &self,
        lever: &crate::lever::calls::Lever<'_, L>,
        id: &str,
        kind: EventKind,
        url: &str,
        secret: &mut crate::secrets::TenantSecret,
    ) -> Result<Made, AdminError> {
        use crate::lever::LeverError;
        let mut attempt = 0;
        let made = loop {
            attempt += 1;
            match lever.create_webhook(url, kind.as_str()).await {
                Ok(w) => break w,
                Err(
                    e @ (LeverError::Transport { .. }
                    | LeverError::Server { .. }
                    | LeverError::RateLimited),
                ) if attempt == 1 => {
                    tracing::warn!(tenant = id, event = kind.as_str(), error = %e, "a webhook's creation has no answer: resolving it from Lever's list");
                    let listed = match lever.webhooks().await {
                        Ok(w) => w,
                        Err(e) => return Err(self.fail(id, e).await),
                    };
                    for w in listed.iter().filter(|w| {
                        w.event == kind.as_str()
                            && w.url == url
                            && secret.webhook_id(kind) != Some(w.id.as_str())
                    }) {
                        if let Err(e) = lever.delete_webhook(&w.id).await
                            && !matches!(e, LeverError::NotFound(_))
                        {
                            return Err(self.fail(id, e).await);
                        }
                    }
                }
                Err(e) => return Err(self.fail(id, e).await),
            }
        };
        let Some(token) = made.signature_token().map(Redacted::new) else {
            return Ok(Made::WithoutToken(made.id));
        };
        let saved = self
            .update_secret(id, |s| s.set_webhook(kind, &made.id, token))
            .await;
        match saved {
            Ok(s) => {
                *secret = s;
                Ok(Made::Made(made.id))
            }
            Err(e) => {
                // Its token would be nobody's: it goes now (or, failing that, next time).
                let _ = lever.delete_webhook(&made.id).await;
                Err(AdminError::new(
                    503,
                    "unavailable",
                    format!(
                        "the {} webhook was made in Lever but its token could not be saved ({}): register \
again (POST /admin/tenants/{id}/webhooks), which finishes the job",
                        kind.as_str(),
                        e.message
                    ),
                ))
            }
        }
    }

    /// `POST /admin/tenants/{id}/webhooks/urlKey`: a new key for the tenant's webhook URLs (one
    /// leaked): the old URLs stop at once, and the webhooks are registered again at the new ones.
    pub async fn rotate_url_key(&self, id: &str) -> Result<Value, AdminError> {
        self.tenant(id).await?;
        self.base_url()?;
        let current = self.secrets.load(id).await?.unwrap_or_default();
        if EventKind::ALL.iter().all(|k| current.tokens(*k).is_empty()) {
            return Err(AdminError::new(
                409,
                "no_webhooks",
                format!(
                    "tenant `{id}` has no webhooks yet, so no URL was given out to rotate: register them \
(POST /admin/tenants/{id}/webhooks) or paste their tokens (PUT /admin/tenants/{id}/webhooks/{{event}}/token)"
                ),
            ));
        }
        let saved = self.update_secret(id, |s| s.url_generation += 1).await?;
        tracing::info!(
            tenant = id,
            generation = saved.url_generation,
            "webhook URL key rotated"
        );
        // The rotation stands either way (the old key may be leaked); a failed move says so, with
        // Lever's reason, and how to finish it: 424, not a 5xx a client would retry (rotating again).
        let registered = Box::pin(self.register_webhooks(id))
            .await
            .map_err(|e| {
                AdminError::new(
                    424,
                    e.code,
                    format!(
                        "the URL key was rotated (generation {}) and deliveries to the old URLs are refused, \
but the webhooks could not be moved to the new URLs: {}. Register them again (POST /admin/tenants/{id}/webhooks) \
or enter the new URLs (GET /admin/tenants/{id}/status lists them) in Lever",
                        saved.url_generation,
                        e.message.replace("{id}", id)
                    ),
                )
            })?;
        Ok(json!({
            "tenantId": id,
            "urlGeneration": saved.url_generation,
            "webhookUrls": self.webhook_urls(id, saved.url_generation),
            "registered": registered["webhooks"],
        }))
    }

    /// `PUT /admin/tenants/{id}/webhooks/{event}/token`: a token copied from a webhook made in
    /// Lever's UI. The token already set stays valid (rotation) unless `keepPrevious` is false.
    pub async fn paste_token(
        &self,
        id: &str,
        event: &str,
        body: &[u8],
    ) -> Result<Value, AdminError> {
        let kind = EventKind::parse(event).ok_or_else(|| {
            AdminError::new(
                404,
                "unknown_event",
                format!(
                    "`{event}` is not a Lever webhook event; one of: {}",
                    EventKind::ALL.map(|k| k.as_str()).join(", ")
                ),
            )
        })?;
        let b: TokenBody = parse_body(body)?;
        let token = b
            .token
            .ok_or_else(|| AdminError::bad_request("missing_token", "token is required"))?;
        let t = token.expose();
        if t.is_empty() || t.len() > 256 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AdminError::bad_request(
                "invalid_token",
                "token must be the signature token exactly as Lever shows it (no spaces)",
            ));
        }
        self.tenant(id).await?;
        let keep_previous = b.keep_previous.unwrap_or(true);
        let saved = self
            .update_secret(id, |s| {
                s.add_token(kind, token, keep_previous);
                // A webhook made in Lever's UI: whose id it is, nobody here knows.
                s.webhook_ids.remove(kind.as_str());
            })
            .await?;
        let count = saved.tokens(kind).len();
        tracing::info!(
            tenant = id,
            event = kind.as_str(),
            tokens = count,
            "webhook token set"
        );
        Ok(json!({
            "tenantId": id,
            "event": kind.as_str(),
            "tokensSet": count,
            "url": self.webhook_url(id, saved.url_generation, kind.as_str()),
        }))
    }
}
