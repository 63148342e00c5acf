//! The onboarding/admin API: connect a customer's Lever account, test it, pick the owner, register
//! webhooks, show status, map roles to postings, resolve candidate links, disconnect.
//!
//! Logic lives here, generic over the store, the secret store, the Lever client and the clock, so
//! tests run it in process against the simulator; [`http`] routes a request to it and
//! `crate::lambda::run_admin` wires it into lambda_http. Secrets (API keys, webhook signature
//! tokens) are never part of an answer, an error or a log line.

pub mod connect;
pub mod events;
pub mod http;
pub mod links;
pub mod oauth;
pub mod owner;
pub mod parked;
pub mod probe;
pub mod resolve;
pub mod roles;
pub mod status;
pub mod webhooks;

use crate::clock::Clock;
use crate::lever::calls::Lever;
use crate::lever::{Account, Auth, LeverApi, LeverError};
use crate::secrets::{SecretStore, SecretsError, TenantSecret};
use crate::store::{
    AdminStore, CommandStore, StatsStore, StoreError, Tenant, TenantStatus, TenantStore,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// What the admin functions need beyond the stores and the Lever client.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where Lever reaches this deployment (`<base>/webhooks/<tenant>/<event>`).
    pub webhook_base_url: Option<String>,
    /// Lever environments a tenant may choose: name → API base URL.
    pub environments: Vec<(String, String)>,
    /// Time allowed for the Lever calls of one request.
    pub lever_budget: Duration,
    /// The OAuth client; `None`: tenants connect with API keys only.
    pub oauth: Option<std::sync::Arc<crate::lever::oauth::OAuthClient>>,
    /// The push queues parked commands go back to when a tenant reconnects (the functions that
    /// reconnect tenants); `None` elsewhere.
    pub queues: Option<std::sync::Arc<crate::push::parked::PushQueues>>,
    /// Makes the keys of the tenants' webhook URLs (the functions that tell them).
    pub url_keys: Option<crate::urlkey::UrlKeys>,
    /// Puts the relay's dead letters back on the bus (admin-events); `None` elsewhere.
    pub replay: Option<std::sync::Arc<crate::relay::dead_letters::Replayer>>,
    /// Where the connect pages are served (admin-tenants mints links to them); `None`: no links.
    pub connect_pages_url: Option<String>,
    /// How long a connect link opens.
    pub connect_link_ttl: Duration,
}

impl Settings {
    pub fn new(
        c: &crate::config::Config,
        oauth: Option<std::sync::Arc<crate::lever::oauth::OAuthClient>>,
        queues: Option<std::sync::Arc<crate::push::parked::PushQueues>>,
        url_keys: Option<crate::urlkey::UrlKeys>,
    ) -> Self {
        let mut environments = default_environments();
        if let Some(url) = &c.custom_lever_base_url {
            environments.push(("custom".into(), url.clone()));
        }
        Settings {
            webhook_base_url: c.webhook_base_url.clone(),
            environments,
            lever_budget: Duration::from_secs(25),
            oauth,
            queues,
            url_keys,
            replay: None,
            connect_pages_url: c.connect_pages_url.clone(),
            connect_link_ttl: Duration::from_millis(c.connect_link_ttl_ms as u64),
        }
    }

    pub fn base_url_of(&self, environment: &str) -> Option<&str> {
        self.environments
            .iter()
            .find(|(n, _)| n == environment)
            .map(|(_, u)| u.as_str())
    }

    pub fn environment_of(&self, base_url: &str) -> String {
        self.environments
            .iter()
            .find(|(_, u)| u == base_url)
            .map_or_else(|| "custom".to_string(), |(n, _)| n.clone())
    }
}

pub fn default_environments() -> Vec<(String, String)> {
    vec![
        ("production".into(), crate::lever::PRODUCTION.into()),
        ("sandbox".into(), crate::lever::SANDBOX.into()),
        ("eu".into(), crate::lever::EU.into()),
    ]
}

tokio::task_local! {
    /// The invocation's deadline while a request is answered ([`Admin::handle_until`]).
    static REQUEST_DEADLINE: Instant;
}

pub struct Admin<L, S, K, C> {
    pub lever: L,
    pub store: S,
    pub secrets: K,
    pub clock: C,
    pub settings: Settings,
}

/// An answer: status, content type, body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Where a redirect sends the browser (the OAuth callback of an authorization the connect
    /// pages started).
    pub location: Option<String>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            content_type: "application/json",
            body: body.to_string(),
            location: None,
        }
    }
    pub fn html(status: u16, body: String) -> Self {
        Reply {
            status,
            content_type: "text/html; charset=utf-8",
            body,
            location: None,
        }
    }
    /// 303 to `url`.
    pub fn see_other(url: String) -> Self {
        Reply {
            location: Some(url),
            ..Reply::html(303, String::new())
        }
    }
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Reply::json(status, json!({"error": code, "message": message}))
    }
    /// The body as JSON (tests).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// An error answer: `{"error": code, "message": message}` with `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl AdminError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        AdminError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn reply(&self) -> Reply {
        Reply::error(self.status, self.code, &self.message)
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store error");
        AdminError::new(503, "unavailable", "the store is unavailable: try again")
    }
}

impl From<crate::tenant::TenantError> for AdminError {
    fn from(e: crate::tenant::TenantError) -> Self {
        use crate::tenant::TenantError;
        match e {
            TenantError::Store(e) => e.into(),
            TenantError::Secrets(e) => e.into(),
            e => AdminError::new(503, "unavailable", e.to_string()),
        }
    }
}

impl From<SecretsError> for AdminError {
    fn from(e: SecretsError) -> Self {
        tracing::warn!(error = %e, "secrets error");
        AdminError::new(
            503,
            "unavailable",
            "the secret store is unavailable: try again",
        )
    }
}

pub const UNAUTHORIZED_MESSAGE: &str = "Lever rejected the API key (401): it is wrong or was deleted. \
In Lever, Settings > Integrations and API > API Credentials, create a new key and connect it again \
(PUT /admin/tenants/{id}/apiKey).";

/// Lever's error as an answer. 401 and 403 say what to fix in Lever.
pub fn lever_error(e: &LeverError) -> AdminError {
    match e {
        LeverError::Unauthorized(_) => {
            AdminError::new(502, "lever_unauthorized", UNAUTHORIZED_MESSAGE)
        }
        LeverError::Forbidden(m) => AdminError::new(
            502,
            "lever_forbidden",
            format!(
                "The Lever API key lacks a permission (403): {m}. In Lever, Settings > Integrations and API > \
API Credentials, edit the key, tick the permission, and test the connection again."
            ),
        ),
        LeverError::NotFound(m) => AdminError::new(404, "not_found_in_lever", m.clone()),
        LeverError::Rejected { message, .. } => {
            AdminError::new(502, "lever_rejected", format!("Lever refused: {message}"))
        }
        LeverError::Decode(_) => {
            AdminError::new(502, "lever_bad_answer", "Lever's answer could not be read")
        }
        _ => AdminError::new(
            503,
            "lever_unavailable",
            "Lever did not answer in time: try again",
        ),
    }
}

/// A tenant with its credentials, for one request.
pub struct Ctx {
    pub tenant: Tenant,
    pub secret: TenantSecret,
    pub account: Account,
}

impl<L, S, K, C> Admin<L, S, K, C>
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    pub fn new(lever: L, store: S, secrets: K, clock: C, settings: Settings) -> Self {
        Admin {
            lever,
            store,
            secrets,
            clock,
            settings,
        }
    }

    /// When this request's Lever calls must end: the Lever budget from now, within the invocation.
    pub fn deadline(&self) -> Instant {
        (Instant::now() + self.settings.lever_budget).min(self.request_deadline())
    }

    /// The invocation's deadline (outside a request: the Lever budget from now). An OAuth refresh
    /// ends before it.
    pub fn request_deadline(&self) -> Instant {
        REQUEST_DEADLINE
            .try_with(|d| *d)
            .unwrap_or_else(|_| Instant::now() + self.settings.lever_budget)
    }

    /// Runs `answer` with `deadline` as the request's.
    pub async fn until<T>(deadline: Instant, answer: impl Future<Output = T>) -> T {
        REQUEST_DEADLINE.scope(deadline, answer).await
    }

    pub fn client<'a>(&'a self, account: &'a Account) -> Lever<'a, L> {
        Lever::new(&self.lever, account, self.deadline())
    }

    pub async fn tenant(&self, id: &str) -> Result<Tenant, AdminError> {
        if !crate::ids::tenant_id(id) {
            return Err(AdminError::new(404, "unknown_tenant", "no such tenant"));
        }
        self.store
            .tenant(id)
            .await?
            .ok_or_else(|| AdminError::new(404, "unknown_tenant", format!("no tenant `{id}`")))
    }

    /// Changes the tenant's secret under its lease, on the secret as stored now (see
    /// [`crate::tenant::update_secret`]).
    pub async fn update_secret(
        &self,
        id: &str,
        change: impl FnOnce(&mut TenantSecret),
    ) -> Result<TenantSecret, AdminError> {
        Ok(crate::tenant::update_secret(
            &self.store,
            &self.secrets,
            &self.clock,
            id,
            Duration::from_secs(8),
            change,
        )
        .await?)
    }

    /// The tenant and its credentials; 409 when it has none (disconnected and deleted, or never set).
    pub async fn ctx(&self, id: &str) -> Result<Ctx, AdminError> {
        let tenant = self.tenant(id).await?;
        let secret = self.secrets.load(id).await?.unwrap_or_default();
        let auth = match (&secret.oauth, &secret.api_key) {
            (Some(tokens), _) => {
                Box::pin(self.oauth_auth(id, &tenant.lever_base_url, tokens)).await?
            }
            (None, Some(k)) => Auth::ApiKey(k.clone()),
            (None, None) => {
                return Err(AdminError::new(
                    409,
                    "no_credentials",
                    "the tenant has no Lever credentials: connect it again (PUT /admin/tenants/{id}/apiKey, or OAuth at GET /admin/oauth/authorize)",
                ));
            }
        };
        let account = Account {
            base_url: tenant.lever_base_url.clone(),
            auth,
        };
        Ok(Ctx {
            tenant,
            secret,
            account,
        })
    }

    /// A Bearer for an OAuth tenant, refreshing the tokens first when they are about to expire
    /// (the same lease as the push functions: see [`crate::tenant::refresh_oauth`]).
    async fn oauth_auth(
        &self,
        id: &str,
        base_url: &str,
        tokens: &crate::secrets::OAuthTokens,
    ) -> Result<Auth, AdminError> {
        if tokens.expires_at - self.clock.now_ms() > crate::tenant::REFRESH_MARGIN_MS {
            return Ok(Auth::Bearer(tokens.access_token.clone()));
        }
        let Some(oauth) = self.settings.oauth.clone() else {
            return Err(AdminError::new(
                500,
                "not_configured",
                "the tenant uses OAuth but this deployment has no OAuth client (LeverOAuthClientId)",
            ));
        };
        // Boxed: the refresh's future is large and rarely needed.
        let refreshed = Box::pin(crate::tenant::refresh_oauth(
            &self.store,
            &self.secrets,
            &oauth,
            &self.clock,
            id,
            base_url,
            Duration::from_secs(8),
            self.request_deadline(),
        ))
        .await;
        match refreshed {
            Ok(crate::tenant::Refreshed::Tokens(t)) => Ok(Auth::Bearer(t.access_token)),
            Ok(crate::tenant::Refreshed::Rejected(reason)) => {
                Err(AdminError::new(502, "lever_unauthorized", reason))
            }
            Err(e @ crate::tenant::TenantError::OAuth(_)) => {
                Err(AdminError::new(503, "lever_unavailable", e.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Turns a Lever error into an answer; a 401 also marks the tenant disconnected, which the
    /// status shows.
    pub async fn fail(&self, tenant: &str, e: LeverError) -> AdminError {
        if matches!(e, LeverError::Unauthorized(_)) {
            self.mark_disconnected(tenant).await;
        }
        lever_error(&e)
    }

    pub async fn mark_disconnected(&self, tenant: &str) {
        tracing::warn!(tenant, "Lever answered 401: tenant marked disconnected");
        if let Err(e) = self
            .store
            .set_tenant_status(
                tenant,
                TenantStatus::Disconnected,
                "Lever rejected the API key (401): it is wrong or was deleted",
                self.clock.now_ms(),
            )
            .await
        {
            tracing::warn!(tenant, error = %e, "could not record the disconnection");
        }
    }

    /// The tenant's webhook URL for `event` at its URL key's `generation`
    /// (`<base>/webhooks/<tenant>/<key>/<event>`); `None` without a base URL or URL keys.
    pub fn webhook_url(&self, tenant: &str, generation: u32, event: &str) -> Option<String> {
        let base = self.settings.webhook_base_url.as_deref()?;
        let key = self.settings.url_keys.as_ref()?.key(tenant, generation);
        Some(crate::urlkey::webhook_url(base, tenant, &key, event))
    }

    /// The tenant's webhook URL for each of the ten kinds.
    pub fn webhook_urls(
        &self,
        tenant: &str,
        generation: u32,
    ) -> Option<serde_json::Map<String, Value>> {
        crate::webhook::EventKind::ALL
            .iter()
            .map(|k| {
                let url = self.webhook_url(tenant, generation, k.as_str())?;
                Some((k.as_str().to_string(), Value::String(url)))
            })
            .collect()
    }
}

/// Parses a JSON body into `T`. Serde's message is kept without the values it quotes, so a
/// pasted key never comes back in an error.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let text = if body.is_empty() {
        b"{}" as &[u8]
    } else {
        body
    };
    serde_json::from_slice(text).map_err(|e| {
        let msg = e.to_string();
        let mut out = String::new();
        let mut quoted = false;
        for ch in msg.chars() {
            if ch == '"' {
                if !quoted {
                    out.push('…');
                }
                quoted = !quoted;
            } else if !quoted {
                out.push(ch);
            }
        }
        AdminError::bad_request(
            "invalid_json",
            format!("the body is not what this route takes: {out}"),
        )
    })
}
