//! Settings from the function's environment, with the local stack's names as defaults.

#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME`: the DynamoDB table.
    pub table: String,
    /// `EVENT_BUS_NAME`: the vendor's EventBridge bus.
    pub event_bus: String,
    /// `SECRET_PREFIX`: tenant secrets are named `<prefix><tenantId>`.
    pub secret_prefix: String,
    /// `SECRET_TTL_SECONDS`: how long a warm instance trusts a cached secret.
    pub secret_ttl_ms: i64,
    /// `WEBHOOK_BASE_URL`: where Lever reaches this deployment; webhook URLs are
    /// `<base>/webhooks/<tenantId>/<event>`. Unset: the onboarding API cannot register webhooks.
    pub webhook_base_url: Option<String>,
}

impl Config {
    pub fn from_env() -> Self {
        let var = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_string());
        let opt = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Config {
            table: var("TABLE_NAME", "lever-bridge"),
            event_bus: var("EVENT_BUS_NAME", "lever-bridge"),
            secret_prefix: var("SECRET_PREFIX", "lever-bridge/tenants/"),
            secret_ttl_ms: var("SECRET_TTL_SECONDS", "300")
                .parse::<i64>()
                .unwrap_or(300)
                * 1000,
            webhook_base_url: opt("WEBHOOK_BASE_URL").map(|u| u.trim_end_matches('/').to_string()),
        }
    }
}

/// Lever's OAuth endpoints (LEVER.md §2).
pub const LEVER_AUTHORIZE_URL: &str = "https://auth.lever.co/authorize";
pub const LEVER_TOKEN_URL: &str = "https://auth.lever.co/oauth/token";
pub const LEVER_AUDIENCE: &str = "https://api.lever.co/v1/";

/// What the bundle asks for when a tenant connects with OAuth: the permissions its calls need
/// (the connection test's list), in Lever's OAuth scope form. Only `notes:write:admin`,
/// `webhooks:write:admin`, `confidential:access:admin` and `offline_access` are confirmed by
/// LEVER.md; the others follow the same `<resource>:<read|write>:admin` pattern (UNCERTAIN), so
/// `LEVER_OAUTH_SCOPES` can replace the list without a build.
pub const DEFAULT_SCOPES: &[&str] = &[
    "users:read:admin",
    "opportunities:read:admin",
    "opportunities:write:admin",
    "stages:read:admin",
    "postings:read:admin",
    "archive_reasons:read:admin",
    "applications:read:admin",
    "interviews:read:admin",
    "interviews:write:admin",
    "panels:write:admin",
    "notes:read:admin",
    "notes:write:admin",
    "feedback:write:admin",
    "feedback_templates:read:admin",
    "webhooks:read:admin",
    "webhooks:write:admin",
    "confidential:access:admin",
    "offline_access",
];

/// The OAuth client the vendor registered with Lever. Debug never shows the client secret.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// `LEVER_OAUTH_CLIENT_ID`.
    pub client_id: String,
    /// `LEVER_OAUTH_CLIENT_SECRET` (local and tests). In production leave it unset and name a
    /// Secrets Manager secret in `LEVER_OAUTH_SECRET_NAME` instead; it is read on first use.
    pub client_secret: Option<crate::secrets::Redacted>,
    /// `LEVER_OAUTH_SECRET_NAME`: a secret holding `{"clientSecret": "..."}` or the bare secret.
    pub client_secret_name: Option<String>,
    /// `LEVER_OAUTH_REDIRECT_URI`: this deployment's `/admin/oauth/callback`, as registered with Lever.
    pub redirect_uri: String,
    /// `LEVER_OAUTH_AUTHORIZE_URL`.
    pub authorize_url: String,
    /// `LEVER_OAUTH_TOKEN_URL`.
    pub token_url: String,
    /// `LEVER_OAUTH_AUDIENCE`.
    pub audience: String,
    /// `LEVER_OAUTH_SCOPES` (space-separated); `offline_access` is always added.
    pub scopes: Vec<String>,
}

impl OAuthConfig {
    /// `None` unless a client id, a redirect URI and a client secret (or its secret's name) are set.
    pub fn from_env() -> Option<Self> {
        let opt = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let client_id = opt("LEVER_OAUTH_CLIENT_ID")?;
        let redirect_uri = opt("LEVER_OAUTH_REDIRECT_URI")?;
        let client_secret = opt("LEVER_OAUTH_CLIENT_SECRET").map(crate::secrets::Redacted::new);
        let client_secret_name = opt("LEVER_OAUTH_SECRET_NAME");
        if client_secret.is_none() && client_secret_name.is_none() {
            return None;
        }
        let mut c = OAuthConfig::new(&client_id, client_secret, &redirect_uri);
        c.client_secret_name = client_secret_name;
        if let Some(u) = opt("LEVER_OAUTH_AUTHORIZE_URL") {
            c.authorize_url = u;
        }
        if let Some(u) = opt("LEVER_OAUTH_TOKEN_URL") {
            c.token_url = u;
        }
        if let Some(a) = opt("LEVER_OAUTH_AUDIENCE") {
            c.audience = a;
        }
        if let Some(s) = opt("LEVER_OAUTH_SCOPES") {
            c.scopes = s.split_whitespace().map(str::to_string).collect();
        }
        if !c.scopes.iter().any(|s| s == "offline_access") {
            c.scopes.push("offline_access".into());
        }
        Some(c)
    }

    /// Lever's endpoints and the default scopes.
    pub fn new(
        client_id: &str,
        client_secret: Option<crate::secrets::Redacted>,
        redirect_uri: &str,
    ) -> Self {
        OAuthConfig {
            client_id: client_id.to_string(),
            client_secret,
            client_secret_name: None,
            redirect_uri: redirect_uri.to_string(),
            authorize_url: LEVER_AUTHORIZE_URL.into(),
            token_url: LEVER_TOKEN_URL.into(),
            audience: LEVER_AUDIENCE.into(),
            scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
        }
    }
}
