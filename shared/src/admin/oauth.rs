//! Connecting a tenant with OAuth (lever-api.md §2): `GET /admin/oauth/authorize` gives the link to
//! Lever's consent page with a `state`, and `GET /admin/oauth/callback` (where Lever sends the
//! admin back) consumes the state and exchanges the code for tokens, stored only in the tenant's
//! secret.
//!
//! The state is 32 random bytes from the OS, stored (as its SHA-256) in DynamoDB with the tenant
//! and environment it was issued for and a 10-minute expiry, by a conditional put; the callback
//! consumes it with a conditional delete, so it works once, only before it expires, and only for
//! the tenant it was made for: a forged or replayed callback gets 400 `invalid_state`.

use super::{Admin, AdminError};
use crate::clock::Clock;
use crate::lever::LeverApi;
use crate::lever::oauth::{OAuthClient, OAuthError};
use crate::secrets::{OAuthTokens, SecretStore};
use crate::store::{
    AdminStore, CommandStore, OAuthPending, StatsStore, Tenant, TenantStatus, TenantStore,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// How long an authorize link (its state) stays usable.
pub const STATE_TTL_MS: i64 = 10 * 60_000;
/// What an OAuth state's MAC is for (`crate::urlkey::UrlKeys::sign`).
const STATE_PURPOSE: &str = "oauth-state";

/// The query string's parameters, decoded.
pub fn query_params(query: &str) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://q/?{query}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// What the OAuth callback answers.
pub struct Callback {
    /// The tenant whose connect pages started the authorization.
    pub pages: Option<String>,
    pub answer: Result<(u16, Value), AdminError>,
}

pub fn random_state() -> Result<String, AdminError> {
    crate::ids::random_token()
        .map_err(|_| AdminError::new(503, "unavailable", "no random source: try again"))
}

pub fn state_hash(state: &str) -> String {
    crate::ids::token_hash(state)
}

fn invalid_state() -> AdminError {
    AdminError::bad_request(
        "invalid_state",
        "the state is unknown, was used already or expired (links last 10 minutes): start again at GET /admin/oauth/authorize",
    )
}

impl<L, S, K, C> Admin<L, S, K, C>
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    fn oauth_client(&self) -> Result<Arc<OAuthClient>, AdminError> {
        self.settings.oauth.clone().ok_or_else(|| {
            AdminError::new(
                500,
                "not_configured",
                "OAuth is not configured: deploy with LeverOAuthClientId and LeverOAuthRedirectUri, and put the client secret into the LeverOAuthClientSecretArn secret (README: OAuth)",
            )
        })
    }

    /// `GET /admin/oauth/authorize?tenantId=…&environment=…`.
    pub async fn oauth_authorize(&self, query: &str) -> Result<Value, AdminError> {
        let q = query_params(query);
        let id = q
            .get("tenantId")
            .cloned()
            .unwrap_or_else(|| format!("t-{:016x}", fastrand::u64(..)));
        let environment = q
            .get("environment")
            .cloned()
            .unwrap_or_else(|| "production".into());
        self.begin_oauth(&id, &environment, false).await
    }

    /// A pending authorization for tenant `id` in `environment`: the link to Lever's consent
    /// page. `to_pages`: the callback sends the browser back to the connect pages.
    pub async fn begin_oauth(
        &self,
        id: &str,
        environment: &str,
        to_pages: bool,
    ) -> Result<Value, AdminError> {
        let oauth = self.oauth_client()?;
        if oauth.config.redirect_uri.is_none() {
            return Err(AdminError::new(
                500,
                "not_configured",
                "OAuth has no redirect URI: deploy with LeverOAuthRedirectUri set to the AdminOAuthCallbackUrl output",
            ));
        }
        if !crate::ids::tenant_id(id) {
            return Err(AdminError::bad_request(
                "invalid_tenant_id",
                "tenantId must be 1-64 letters, digits, `-` or `_`",
            ));
        }
        let Some(base_url) = self.settings.base_url_of(environment).map(str::to_string) else {
            let names: Vec<&str> = self
                .settings
                .environments
                .iter()
                .map(|(n, _)| n.as_str())
                .collect();
            return Err(AdminError::bad_request(
                "invalid_environment",
                format!("environment must be one of: {}", names.join(", ")),
            ));
        };
        let (id, environment) = (id.to_string(), environment.to_string());
        let expires_at = self.clock.now_ms() + STATE_TTL_MS;
        let state = self.seal_state(expires_at)?;
        let pending = OAuthPending {
            state_hash: state_hash(&state),
            tenant_id: id.clone(),
            environment: environment.clone(),
            expires_at,
            return_to_pages: to_pages,
        };
        if !self.store.put_oauth_state(&pending).await? {
            return Err(AdminError::new(503, "unavailable", "try again"));
        }
        tracing::info!(
            tenant = id.as_str(),
            environment = environment.as_str(),
            "OAuth authorization started"
        );
        Ok(json!({
            "tenantId": id,
            "environment": environment,
            "authorizeUrl": oauth.authorize_url(&state, &base_url).unwrap_or_default(),
            "state": state,
            "expiresAt": expires_at,
        }))
    }

    /// A new authorization's state: `<expiry ms>.<256 random bits>.<MAC>`, so the callback tells
    /// one of ours, unexpired, from a stranger's without a call.
    fn seal_state(&self, expires_at: i64) -> Result<String, AdminError> {
        let keys = self.settings.url_keys.as_ref().ok_or_else(|| {
            AdminError::new(
                500,
                "not_configured",
                "this function has no URL-key secret to sign OAuth states with (WEBHOOK_URL_KEY_SECRET_NAME)",
            )
        })?;
        let data = format!("{expires_at}.{}", random_state()?);
        let mac = keys.sign(STATE_PURPOSE, &data);
        Ok(format!("{data}.{mac}"))
    }

    /// Whether `state` is one this stack made and has not expired (no call is made).
    fn state_is_ours(&self, state: &str) -> bool {
        let Some(keys) = &self.settings.url_keys else {
            return false;
        };
        let Some((data, mac)) = state.rsplit_once('.') else {
            return false;
        };
        let fresh = data
            .split_once('.')
            .and_then(|(at, _)| at.parse::<i64>().ok())
            .is_some_and(|at| at > self.clock.now_ms());
        fresh && keys.verify(STATE_PURPOSE, data, mac)
    }

    /// `GET /admin/oauth/callback?code=…&state=…`, and the tenant whose connect pages the
    /// browser goes back to when the authorization was started there.
    pub async fn oauth_callback(&self, query: &str) -> Callback {
        let mut pages = None;
        let answer = self.finish_oauth(query, &mut pages).await;
        Callback { pages, answer }
    }

    async fn finish_oauth(
        &self,
        query: &str,
        pages: &mut Option<String>,
    ) -> Result<(u16, Value), AdminError> {
        let q = query_params(query);
        let oauth = self.oauth_client()?;
        if let Some(err) = q.get("error") {
            // The admin declined on Lever's consent page (or Lever refused the request). Consume
            // the state anyway so the link cannot be reused (one of ours only: a stranger's costs
            // nothing).
            if let Some(state) = q.get("state").filter(|s| self.state_is_ours(s))
                && let Some(p) = self
                    .store
                    .take_oauth_state(&state_hash(state), self.clock.now_ms())
                    .await?
            {
                *pages = p.return_to_pages.then_some(p.tenant_id);
            }
            let err: String = err
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(AdminError::bad_request(
                "authorization_denied",
                format!(
                    "Lever did not authorize the connection ({err}): start again at GET /admin/oauth/authorize"
                ),
            ));
        }
        // A state the stack did not make, or past its expiry, fails before any AWS call.
        let Some(state) = q.get("state").filter(|s| self.state_is_ours(s)) else {
            return Err(invalid_state());
        };
        let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
            return Err(AdminError::bad_request(
                "missing_code",
                "code is required (Lever adds it to the callback URL)",
            ));
        };
        let Some(pending) = self
            .store
            .take_oauth_state(&state_hash(state), self.clock.now_ms())
            .await?
        else {
            return Err(invalid_state());
        };
        *pages = pending.return_to_pages.then(|| pending.tenant_id.clone());
        let id = pending.tenant_id;
        let environment = pending.environment;
        let Some(base_url) = self.settings.base_url_of(&environment).map(str::to_string) else {
            return Err(invalid_state());
        };
        let set = oauth.exchange_code(code, &base_url).await.map_err(|e| match e {
            OAuthError::Rejected { code, .. } => AdminError::bad_request(
                "invalid_code",
                format!(
                    "Lever refused the authorization code ({code}): codes work once and only for a few minutes. Start again at GET /admin/oauth/authorize"
                ),
            ),
            OAuthError::Unavailable(m) => AdminError::new(
                503,
                "lever_unavailable",
                format!("Lever's token endpoint did not answer ({m}): start again at GET /admin/oauth/authorize"),
            ),
            OAuthError::NotConfigured(m) => AdminError::new(500, "not_configured", m),
        })?;
        let Some(refresh_token) = set.refresh_token else {
            return Err(AdminError::bad_request(
                "no_refresh_token",
                "Lever gave no refresh token: the offline_access scope must be granted. Start again at GET /admin/oauth/authorize",
            ));
        };
        let now = self.clock.now_ms();
        self.store.clear_deleted(&id).await?;
        // Secret first: a record without a secret would be a tenant nobody can use. Webhook tokens
        // stay; an API key stored before is dropped (OAuth replaces it).
        let tokens = OAuthTokens {
            access_token: set.access_token,
            refresh_token,
            expires_at: now + set.expires_in * 1000,
            obtained_at: now,
        };
        let saved = self
            .update_secret(&id, |s| {
                s.api_key = None;
                s.oauth = Some(tokens);
            })
            .await?;
        let existing = self.store.tenant(&id).await?;
        let created = existing.is_none();
        let tenant = match existing {
            Some(t) => Tenant {
                lever_base_url: base_url.clone(),
                status: TenantStatus::Connected,
                status_reason: None,
                auth: saved.auth_kind().map(str::to_string),
                ..t
            },
            None => Tenant {
                auth: saved.auth_kind().map(str::to_string),
                ..Tenant::connected(&id, &base_url, now)
            },
        };
        self.store
            .connect_tenant(&tenant, self.clock.now_ms())
            .await?;
        let replayed = if created {
            self.schedule_backfill(&id).await?;
            None
        } else {
            self.replay_after_reconnect(&id).await.map(|r| r.replayed)
        };
        tracing::info!(
            tenant = id.as_str(),
            environment = environment.as_str(),
            created,
            "tenant connected with OAuth"
        );
        Ok((
            if created { 201 } else { 200 },
            json!({
                "tenantId": id,
                "environment": environment,
                "leverBaseUrl": base_url,
                "auth": "oauth",
                "status": "connected",
                "connectedAt": now,
                "parkedReplayed": replayed,
                "webhookUrls": self.webhook_urls(&id, saved.url_generation),
                "next": [
                    format!("POST /admin/tenants/{id}/test"),
                    format!("GET /admin/tenants/{id}/users, then PUT /admin/tenants/{id}/owner"),
                    format!("POST /admin/tenants/{id}/webhooks"),
                ],
            }),
        ))
    }
}
