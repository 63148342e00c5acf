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

pub const SUPER_ADMIN_REMINDER: &str = "Webhooks created through the API stay off until a Lever Super Admin \
switches them on: Settings > Integrations and API > Webhooks, turn on each lever-bridge webhook.";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenBody {
    token: Option<Redacted>,
    /// Keep the token(s) already set, for a rotation (default true).
    keep_previous: Option<bool>,
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
                500,
                "not_configured",
                "WEBHOOK_BASE_URL is not set for this deployment",
            )
        })
    }

    /// `POST /admin/tenants/{id}/webhooks`. A kind whose webhook exists at our URL and whose token
    /// is stored is left alone; one that exists without a stored token (GET never shows tokens) is
    /// deleted and made again to learn its token; a missing one is created.
    pub async fn register_webhooks(&self, id: &str) -> Result<Value, AdminError> {
        let base = self.base_url()?.to_string();
        let ctx = self.ctx(id).await?;
        let lever = self.client(&ctx.account);
        let existing = match lever.webhooks().await {
            Ok(w) => w,
            Err(e) => return Err(self.fail(id, e).await),
        };
        let mut created: Vec<(EventKind, Redacted)> = Vec::new();
        let mut results = Vec::new();
        let mut failure = None;
        for kind in EventKind::ALL {
            let Some(url) = self.webhook_url(id, ctx.secret.url_generation, kind.as_str()) else {
                return Err(AdminError::new(
                    500,
                    "not_configured",
                    "this function has no webhook URL keys (WEBHOOK_URL_KEY_SECRET_NAME)",
                ));
            };
            // The tenant's webhooks for this kind at a retired URL key point nowhere: they go.
            let tenant_prefix = format!("{}/webhooks/{id}/", base.trim_end_matches('/'));
            for w in existing.iter().filter(|w| {
                w.event == kind.as_str() && w.url != url && w.url.starts_with(&tenant_prefix)
            }) {
                if let Err(e) = lever.delete_webhook(&w.id).await {
                    failure = Some(e);
                    break;
                }
            }
            if failure.is_some() {
                break;
            }
            let ours: Vec<_> = existing
                .iter()
                .filter(|w| w.url == url && w.event == kind.as_str())
                .collect();
            if !ours.is_empty() && !ctx.secret.tokens(kind).is_empty() {
                results.push(json!({"event": kind.as_str(), "url": url, "status": "exists", "id": ours[0].id}));
                continue;
            }
            let mut status = "created";
            for w in &ours {
                if let Err(e) = lever.delete_webhook(&w.id).await {
                    failure = Some(e);
                    break;
                }
                status = "recreated";
            }
            if failure.is_some() {
                break;
            }
            match lever.create_webhook(&url, kind.as_str()).await {
                Ok(w) => {
                    let Some(token) = w.signature_token() else {
                        results.push(json!({"event": kind.as_str(), "url": url, "status": "createdWithoutToken", "id": w.id,
                            "message": "Lever did not return a signature token: copy it from Lever's UI and paste it"}));
                        continue;
                    };
                    created.push((kind, Redacted::new(token)));
                    results.push(
                        json!({"event": kind.as_str(), "url": url, "status": status, "id": w.id}),
                    );
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // Save what was created even when a later kind failed, so no token is lost; on the secret
        // as stored now (an OAuth refresh may have rotated the tokens meanwhile).
        if !created.is_empty() {
            self.update_secret(id, |s| {
                for (kind, token) in created {
                    s.add_token(kind, token, true);
                }
            })
            .await?;
        }
        if let Some(e) = failure {
            return Err(self.fail(id, e).await);
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

    /// `POST /admin/tenants/{id}/webhooks/urlKey`: a new key for the tenant's webhook URLs (one
    /// leaked): the old URLs stop at once, and the webhooks are registered again at the new ones.
    pub async fn rotate_url_key(&self, id: &str) -> Result<Value, AdminError> {
        self.tenant(id).await?;
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
            .update_secret(id, |s| s.add_token(kind, token, keep_previous))
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
