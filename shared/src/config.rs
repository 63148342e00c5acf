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
    /// `OAUTH_CLIENT_ID`, `OAUTH_CLIENT_SECRET`, `OAUTH_REDIRECT_URI`: Lever OAuth app (optional).
    pub oauth_client_id: Option<String>,
    pub oauth_client_secret: Option<crate::secrets::Redacted>,
    pub oauth_redirect_uri: Option<String>,
    /// `LEVER_AUTH_URL`, `LEVER_TOKEN_URL`: Lever's OAuth endpoints (overridable for tests).
    pub lever_auth_url: String,
    pub lever_token_url: String,
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
            oauth_client_id: opt("OAUTH_CLIENT_ID"),
            oauth_client_secret: opt("OAUTH_CLIENT_SECRET").map(crate::secrets::Redacted::new),
            oauth_redirect_uri: opt("OAUTH_REDIRECT_URI"),
            lever_auth_url: var("LEVER_AUTH_URL", "https://auth.lever.co/authorize"),
            lever_token_url: var("LEVER_TOKEN_URL", "https://auth.lever.co/oauth/token"),
        }
    }
}
