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
