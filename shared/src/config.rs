//! What a function reads from its environment: read once at cold start ([`Config::load`]) and
//! passed down, never read anywhere else (`tests/check_repo.py` keeps `std::env::var` in this file).
//!
//! Every variable a function reads must be set for it by `infra/template.yaml` (an empty value is a
//! value: "not configured"). A missing one fails the cold start with an error naming it, and the
//! tests load every function's configuration from the environment the template gives it.

use crate::function::Function;
use crate::function::Group;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

/// A function's environment, recording what a load asked for and did not find.
pub struct Env {
    vars: HashMap<String, String>,
    missing: RefCell<BTreeSet<&'static str>>,
    invalid: RefCell<Vec<String>>,
}

impl Env {
    /// The process's environment.
    pub fn process() -> Self {
        Env::from_pairs(std::env::vars())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            missing: RefCell::default(),
            invalid: RefCell::default(),
        }
    }

    /// The variable's value, trimmed; `""` (and recorded as missing) when it is not set.
    fn text(&self, name: &'static str) -> String {
        match self.vars.get(name) {
            Some(v) => v.trim().to_string(),
            None => {
                self.missing.borrow_mut().insert(name);
                String::new()
            }
        }
    }

    /// The value, `None` when it is empty.
    fn optional(&self, name: &'static str) -> Option<String> {
        Some(self.text(name)).filter(|v| !v.is_empty())
    }

    /// A number within `valid`; `default` when empty; recorded as invalid otherwise.
    fn number<T>(&self, name: &'static str, default: T, valid: impl Fn(&T) -> bool) -> T
    where
        T: std::str::FromStr + Copy,
    {
        let Some(raw) = self.optional(name) else {
            return default;
        };
        match raw.parse::<T>().ok().filter(|v| valid(v)) {
            Some(v) => v,
            None => {
                self.invalid
                    .borrow_mut()
                    .push(format!("{name}={raw:?} is not an accepted value"));
                default
            }
        }
    }

    fn finish(&self) -> Result<(), ConfigError> {
        let missing: Vec<&'static str> = self.missing.borrow().iter().copied().collect();
        if !missing.is_empty() {
            return Err(ConfigError::Missing(missing));
        }
        let invalid = self.invalid.borrow();
        if !invalid.is_empty() {
            return Err(ConfigError::Invalid(invalid.join("; ")));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "the function's environment does not set {}: infra/template.yaml gives every function the variables it reads",
        .0.join(", ")
    )]
    Missing(Vec<&'static str>),
    #[error("the function's environment is invalid: {0}")]
    Invalid(String),
}

/// Lever's per-key token bucket as one instance mirrors it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeverLimits {
    /// `LEVER_RATE_PER_SEC`.
    pub rate_per_sec: f64,
    /// `LEVER_BURST`.
    pub burst: u32,
}

impl Default for LeverLimits {
    /// Lever's documented 10 requests/s, bursts of 20.
    fn default() -> Self {
        LeverLimits {
            rate_per_sec: 10.0,
            burst: 20,
        }
    }
}

/// A function's settings. Fields a function does not read keep their defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// `STACK_NAME`: the deployment; the metrics' `Service` dimension, so two stacks in one
    /// account keep their alarms apart.
    pub stack_name: String,
    /// `TABLE_NAME`.
    pub table: String,
    /// `SECRET_PREFIX`: tenant secrets are named `<prefix><tenantId>`.
    pub secret_prefix: String,
    /// `EVENT_BUS_NAME`: the vendor's bus (the relay).
    pub event_bus: String,
    /// `LEVER_RATE_PER_SEC`, `LEVER_BURST` (functions that call Lever).
    pub lever: LeverLimits,
    /// The OAuth client (functions that call Lever); `None` while `LEVER_OAUTH_CLIENT_ID` is empty.
    pub oauth: Option<OAuthConfig>,
    /// `WEBHOOK_BASE_URL`: where Lever reaches this deployment (`<base>/webhooks/<tenant>/<event>`);
    /// read by the functions that tell webhook URLs. Empty: they cannot register webhooks.
    pub webhook_base_url: Option<String>,
    /// `LEVER_CUSTOM_BASE_URL`: a further environment, `custom`, tenants may connect to (a Lever
    /// simulator or proxy); read by the functions that connect tenants. Empty: none.
    pub custom_lever_base_url: Option<String>,
    /// `TRANSCRIPT_MAX_NOTE_CHARS` (transcript-flush).
    pub transcript_max_note_chars: usize,
    /// `SYNC_INTERVAL_MINUTES`, in ms (sync).
    pub sync_interval_ms: i64,
    /// `WEBHOOK_URL_KEY_SECRET_NAME`: the secret the webhook URLs' keys are made from
    /// (`crate::urlkey`), for the functions that make or check them.
    pub url_key_secret: Option<String>,
    /// `PARKED_MAX_DAYS` (sync): parked commands older than this end as failed.
    pub parked_max_days: i64,
    /// `PUSH_QUEUE_URL_<KIND>`: the push queues, where the functions that reconnect tenants send
    /// parked commands back.
    pub push_queue_urls: Vec<(crate::push::command::PushKind, String)>,
    /// `UPLOAD_BUCKET` (push-file): the bucket the vendor puts report files into.
    pub upload_bucket: Option<String>,
    /// `RELAY_DEAD_LETTER_QUEUE_URL` (relay, admin-events): where the relay keeps the events the
    /// bus refused and the records it could not read.
    pub relay_dead_letter_queue_url: String,
    /// `CONNECT_PAGES_URL` (admin-tenants, admin-oauth): where the connect pages are served
    /// (`<url>/connect/<tenant>/…`). Empty: no connect links.
    pub connect_pages_url: Option<String>,
    /// `CONNECT_LINK_MINUTES` (admin-tenants), in ms: how long a connect link opens.
    pub connect_link_ttl_ms: i64,
    /// `BRAND_PRODUCT_NAME`, `BRAND_LOGO_URL`, `BRAND_ACCENT_COLOUR` (connect-pages).
    pub brand: Brand,
}

/// The vendor's look on the connect pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    /// What the admin is connecting, e.g. `Acme SMS`.
    pub product_name: String,
    /// An `https://` image (or one on loopback, locally); `None`: no logo.
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    pub accent_colour: String,
}

impl Default for Brand {
    fn default() -> Self {
        Brand {
            product_name: "lever-bridge".into(),
            logo_url: None,
            accent_colour: "#2456c8".into(),
        }
    }
}

impl Brand {
    fn load(env: &Env) -> Brand {
        let d = Brand::default();
        let product_name = env.optional("BRAND_PRODUCT_NAME").unwrap_or(d.product_name);
        if product_name.chars().count() > 60 || product_name.chars().any(char::is_control) {
            env.invalid
                .borrow_mut()
                .push("BRAND_PRODUCT_NAME must be at most 60 characters, on one line".into());
        }
        let logo_url = env.optional("BRAND_LOGO_URL");
        if let Some(u) = &logo_url
            && Brand::origin_of(u).is_none()
        {
            env.invalid.borrow_mut().push(format!(
                "BRAND_LOGO_URL={u:?} must be an https:// URL (http:// only on 127.0.0.1 or localhost)"
            ));
        }
        let accent_colour = env
            .optional("BRAND_ACCENT_COLOUR")
            .unwrap_or(d.accent_colour);
        let hex = accent_colour.strip_prefix('#').unwrap_or_default();
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            env.invalid.borrow_mut().push(format!(
                "BRAND_ACCENT_COLOUR={accent_colour:?} must be a colour as #rrggbb"
            ));
        }
        Brand {
            product_name,
            logo_url,
            accent_colour,
        }
    }

    /// `https://host[:port]` of a logo URL the pages may show (the CSP allows that origin).
    pub fn origin_of(url: &str) -> Option<String> {
        let u = reqwest::Url::parse(url).ok()?;
        let host = u.host_str()?;
        let ok = u.scheme() == "https"
            || (u.scheme() == "http" && matches!(host, "127.0.0.1" | "localhost"));
        (ok && u.username().is_empty()).then(|| u.origin().ascii_serialization())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stack_name: "lever-bridge".into(),
            table: String::new(),
            secret_prefix: String::new(),
            event_bus: String::new(),
            lever: LeverLimits::default(),
            oauth: None,
            webhook_base_url: None,
            custom_lever_base_url: None,
            transcript_max_note_chars: 10_000,
            sync_interval_ms: 60 * 60_000,
            parked_max_days: crate::push::parked::DEFAULT_MAX_PARKED_DAYS,
            push_queue_urls: Vec::new(),
            url_key_secret: None,
            upload_bucket: None,
            relay_dead_letter_queue_url: String::new(),
            connect_pages_url: None,
            connect_link_ttl_ms: 30 * 60_000,
            brand: Brand::default(),
        }
    }
}

impl Config {
    /// What `function` reads from `env`: an error names every variable it needs and lacks.
    pub fn load(function: Function, env: &Env) -> Result<Config, ConfigError> {
        let mut c = Config {
            stack_name: env.text("STACK_NAME"),
            table: env.text("TABLE_NAME"),
            secret_prefix: env.text("SECRET_PREFIX"),
            ..Config::default()
        };
        if function.publishes_events() {
            c.event_bus = env.text("EVENT_BUS_NAME");
        }
        if function.calls_lever() {
            c.lever = LeverLimits {
                rate_per_sec: env.number("LEVER_RATE_PER_SEC", 10.0, |r| *r > 0.0),
                burst: env.number("LEVER_BURST", 20, |b| *b >= 1),
            };
            c.oauth = OAuthConfig::load(env, function.starts_oauth());
        }
        if function.knows_url_keys() {
            c.url_key_secret = Some(env.text("WEBHOOK_URL_KEY_SECRET_NAME"))
                .filter(|n| !n.is_empty())
                .or_else(|| {
                    env.invalid
                        .borrow_mut()
                        .push("WEBHOOK_URL_KEY_SECRET_NAME is empty".into());
                    None
                });
        }
        if function.tells_webhook_urls() {
            c.webhook_base_url = env
                .optional("WEBHOOK_BASE_URL")
                .map(|u| u.trim_end_matches('/').to_string());
        }
        if function.connects_tenants() {
            c.custom_lever_base_url = env
                .optional("LEVER_CUSTOM_BASE_URL")
                .map(|u| u.trim_end_matches('/').to_string());
            c.push_queue_urls = crate::push::command::PushKind::ALL
                .into_iter()
                .filter_map(|k| Some((k, env.optional(k.queue_env())?)))
                .collect();
        }
        match function {
            Function::TranscriptFlush => {
                c.transcript_max_note_chars =
                    env.number("TRANSCRIPT_MAX_NOTE_CHARS", 10_000, |n| *n >= 500);
            }
            Function::Relay | Function::Admin(Group::Events) => {
                c.relay_dead_letter_queue_url = env.text("RELAY_DEAD_LETTER_QUEUE_URL");
                if c.relay_dead_letter_queue_url.is_empty() {
                    env.invalid
                        .borrow_mut()
                        .push("RELAY_DEAD_LETTER_QUEUE_URL is empty".into());
                }
            }
            Function::Push(crate::push::command::PushKind::File) => {
                c.upload_bucket = env.optional("UPLOAD_BUCKET");
            }
            Function::Admin(Group::OAuth) => c.connect_pages_url = connect_pages_url(env),
            Function::ConnectPages => c.brand = Brand::load(env),
            Function::Admin(Group::Tenants) => {
                c.connect_pages_url = connect_pages_url(env);
                c.connect_link_ttl_ms =
                    env.number("CONNECT_LINK_MINUTES", 30, |m| (5..=1440).contains(m)) * 60_000;
            }
            Function::Sync => {
                c.sync_interval_ms = env.number("SYNC_INTERVAL_MINUTES", 60, |m| *m > 0) * 60_000;
                c.parked_max_days = env.number(
                    "PARKED_MAX_DAYS",
                    crate::push::parked::DEFAULT_MAX_PARKED_DAYS,
                    // Command records are kept 30 days: a parked one must end before its record goes.
                    |d| (3..=28).contains(d),
                );
            }
            _ => {}
        }
        env.finish()?;
        Ok(c)
    }
}

/// `CONNECT_PAGES_URL`, without a trailing `/`.
fn connect_pages_url(env: &Env) -> Option<String> {
    env.optional("CONNECT_PAGES_URL")
        .map(|u| u.trim_end_matches('/').to_string())
}

/// Lever's OAuth endpoints and API audience (lever-api.md §2): production…
pub const LEVER_AUTHORIZE_URL: &str = "https://auth.lever.co/authorize";
pub const LEVER_TOKEN_URL: &str = "https://auth.lever.co/oauth/token";
pub const LEVER_AUDIENCE: &str = "https://api.lever.co/v1/";
/// …and the sandbox's, which has its own authorization server and audience.
pub const LEVER_SANDBOX_AUTHORIZE_URL: &str = "https://sandbox-lever.auth0.com/authorize";
pub const LEVER_SANDBOX_TOKEN_URL: &str = "https://sandbox-lever.auth0.com/oauth/token";
pub const LEVER_SANDBOX_AUDIENCE: &str = "https://api.sandbox.lever.co/v1/";

/// Where a tenant's OAuth authorization and tokens come from, by its Lever environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthEndpoints {
    pub authorize_url: String,
    pub token_url: String,
    pub audience: String,
}

/// What the bundle asks for when a tenant connects with OAuth: the permissions its calls need
/// (the connection test's list), in Lever's OAuth scope form. Only `notes:write:admin`,
/// `webhooks:write:admin`, `confidential:access:admin` and `offline_access` are confirmed by
/// lever-api.md; the others follow the same `<resource>:<read|write>:admin` pattern (UNCERTAIN), so
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
    "files:read:admin",
    "files:write:admin",
    "webhooks:read:admin",
    "webhooks:write:admin",
    "confidential:access:admin",
    "offline_access",
];

/// Where the OAuth client's secret comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientSecret {
    /// A Secrets Manager secret (`LEVER_OAUTH_SECRET_NAME`) holding `{"clientSecret": "..."}` or the
    /// bare secret, read on first use: never an environment variable or a template parameter.
    Named(String),
    /// The secret itself (tests).
    Value(crate::secrets::Redacted),
}

/// The OAuth client the vendor registered with Lever. Debug never shows the client secret.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// `LEVER_OAUTH_CLIENT_ID`.
    pub client_id: String,
    pub client_secret: ClientSecret,
    /// `LEVER_OAUTH_REDIRECT_URI`: this deployment's `/admin/oauth/callback`, as registered with
    /// Lever. Only the authorize link and the code exchange need it (admin-oauth); a refresh does not.
    pub redirect_uri: Option<String>,
    /// `LEVER_OAUTH_AUTHORIZE_URL` (admin-oauth; empty: Lever's for the tenant's environment).
    pub authorize_url: Option<String>,
    /// `LEVER_OAUTH_TOKEN_URL` (empty: Lever's for the tenant's environment).
    pub token_url: Option<String>,
    /// `LEVER_OAUTH_SCOPES` (admin-oauth; space-separated, empty: [`DEFAULT_SCOPES`]);
    /// `offline_access` is always added.
    pub scopes: Vec<String>,
}

impl OAuthConfig {
    /// `None` while `LEVER_OAUTH_CLIENT_ID` is empty. `connects`: the function runs the authorize
    /// link and the code exchange (admin-oauth), so it also reads the redirect URI, the authorize
    /// URL and the scopes.
    fn load(env: &Env, connects: bool) -> Option<Self> {
        let client_id = env.optional("LEVER_OAUTH_CLIENT_ID");
        let secret_name = env.optional("LEVER_OAUTH_SECRET_NAME");
        let token_url = env.optional("LEVER_OAUTH_TOKEN_URL");
        let connect = connects.then(|| {
            (
                env.optional("LEVER_OAUTH_REDIRECT_URI"),
                env.optional("LEVER_OAUTH_AUTHORIZE_URL"),
                env.optional("LEVER_OAUTH_SCOPES"),
            )
        });
        let client_id = client_id?;
        let Some(secret_name) = secret_name else {
            env.invalid.borrow_mut().push(
                "LEVER_OAUTH_CLIENT_ID is set but LEVER_OAUTH_SECRET_NAME is empty".to_string(),
            );
            return None;
        };
        let mut c = OAuthConfig::new(&client_id, ClientSecret::Named(secret_name), None);
        c.token_url = token_url;
        if let Some((redirect, authorize, scopes)) = connect {
            c.redirect_uri = redirect;
            c.authorize_url = authorize;
            if let Some(s) = scopes {
                c.scopes = s.split_whitespace().map(str::to_string).collect();
                if !c.scopes.iter().any(|s| s == "offline_access") {
                    c.scopes.push("offline_access".into());
                }
            }
        }
        Some(c)
    }

    /// The endpoints for a tenant on `api_base_url`: the sandbox's for Lever's sandbox API,
    /// production's otherwise; a configured URL replaces Lever's in every environment.
    pub fn endpoints(&self, api_base_url: &str) -> OAuthEndpoints {
        let sandbox = api_base_url.trim_end_matches('/') == crate::lever::SANDBOX;
        let (authorize, token, audience) = if sandbox {
            (
                LEVER_SANDBOX_AUTHORIZE_URL,
                LEVER_SANDBOX_TOKEN_URL,
                LEVER_SANDBOX_AUDIENCE,
            )
        } else {
            (LEVER_AUTHORIZE_URL, LEVER_TOKEN_URL, LEVER_AUDIENCE)
        };
        OAuthEndpoints {
            authorize_url: self.authorize_url.clone().unwrap_or(authorize.into()),
            token_url: self.token_url.clone().unwrap_or(token.into()),
            audience: audience.into(),
        }
    }

    /// Lever's endpoints and the default scopes.
    pub fn new(client_id: &str, client_secret: ClientSecret, redirect_uri: Option<&str>) -> Self {
        OAuthConfig {
            client_id: client_id.to_string(),
            client_secret,
            redirect_uri: redirect_uri.map(str::to_string),
            authorize_url: None,
            token_url: None,
            scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::command::PushKind;
    use crate::webhook::EventKind;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("STACK_NAME", "prod"),
            ("TABLE_NAME", "t"),
            ("SECRET_PREFIX", "p/"),
        ]
    }

    fn lever() -> Vec<(&'static str, &'static str)> {
        let mut v = base();
        v.extend([
            ("LEVER_RATE_PER_SEC", "0.8"),
            ("LEVER_BURST", "20"),
            ("LEVER_OAUTH_CLIENT_ID", "client"),
            ("LEVER_OAUTH_SECRET_NAME", "prod/lever-oauth-client"),
            ("LEVER_OAUTH_TOKEN_URL", ""),
        ]);
        v
    }

    /// The connect pages' brand: the vendor's, or plain defaults; a bad value fails the cold
    /// start naming the variable.
    #[test]
    fn the_connect_pages_read_the_vendors_brand() {
        let pages = |brand: &[(&'static str, &'static str)]| {
            let mut v = lever();
            v.extend([
                ("WEBHOOK_URL_KEY_SECRET_NAME", "prod/webhook-url-key"),
                ("WEBHOOK_BASE_URL", "https://hooks"),
                ("LEVER_CUSTOM_BASE_URL", ""),
                ("LEVER_OAUTH_REDIRECT_URI", ""),
                ("LEVER_OAUTH_AUTHORIZE_URL", ""),
                ("LEVER_OAUTH_SCOPES", ""),
            ]);
            for k in PushKind::ALL {
                v.push((k.queue_env(), ""));
            }
            v.extend_from_slice(brand);
            Config::load(Function::ConnectPages, &Env::from_pairs(v))
        };
        let plain = [
            ("BRAND_PRODUCT_NAME", ""),
            ("BRAND_LOGO_URL", ""),
            ("BRAND_ACCENT_COLOUR", ""),
        ];
        assert_eq!(pages(&plain).unwrap().brand, Brand::default());
        let acme = pages(&[
            ("BRAND_PRODUCT_NAME", "Acme SMS"),
            ("BRAND_LOGO_URL", "https://cdn.acme.example/logo.png"),
            ("BRAND_ACCENT_COLOUR", "#FF6600"),
        ])
        .unwrap()
        .brand;
        assert_eq!(acme.product_name, "Acme SMS");
        assert_eq!(
            Brand::origin_of(acme.logo_url.as_deref().unwrap()).as_deref(),
            Some("https://cdn.acme.example")
        );
        for (name, value) in [
            ("BRAND_ACCENT_COLOUR", "red"),
            ("BRAND_ACCENT_COLOUR", "#12345"),
            ("BRAND_LOGO_URL", "http://cdn.acme.example/logo.png"),
            ("BRAND_LOGO_URL", "javascript:alert(1)"),
        ] {
            let mut vars = plain.to_vec();
            vars.retain(|(n, _)| *n != name);
            vars.push((name, value));
            let err = pages(&vars).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={value}: {err}");
        }
        assert!(Brand::origin_of("http://127.0.0.1:9003/logo.png").is_some());
        // Only the pages read it.
        assert!(!Function::Admin(Group::Tenants).starts_oauth());
    }

    #[test]
    fn a_webhook_function_reads_the_table_and_secrets_only() {
        let mut vars = base();
        vars.push(("WEBHOOK_URL_KEY_SECRET_NAME", "prod/webhook-url-key"));
        let c = Config::load(
            Function::Webhook(EventKind::CandidateHired),
            &Env::from_pairs(vars),
        )
        .unwrap();
        assert_eq!(c.url_key_secret.as_deref(), Some("prod/webhook-url-key"));
        assert_eq!(c.stack_name, "prod");
        assert!(c.oauth.is_none() && c.event_bus.is_empty());
        let mut vars = base();
        vars.push(("EVENT_BUS_NAME", "bus"));
        vars.push(("RELAY_DEAD_LETTER_QUEUE_URL", "https://sqs/dead"));
        let c = Config::load(Function::Relay, &Env::from_pairs(vars)).unwrap();
        assert_eq!(
            (c.event_bus.as_str(), c.relay_dead_letter_queue_url.as_str()),
            ("bus", "https://sqs/dead")
        );
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = Config::load(Function::Relay, &Env::from_pairs(base())).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing(vec!["EVENT_BUS_NAME", "RELAY_DEAD_LETTER_QUEUE_URL"])
        );
        assert!(err.to_string().contains("EVENT_BUS_NAME"));
        // A push needs the OAuth client's settings even for API-key tenants: a refresh needs them.
        let mut vars = base();
        vars.extend([("LEVER_RATE_PER_SEC", "10"), ("LEVER_BURST", "20")]);
        let err = Config::load(Function::Push(PushKind::Note), &Env::from_pairs(vars)).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing(vec![
                "LEVER_OAUTH_CLIENT_ID",
                "LEVER_OAUTH_SECRET_NAME",
                "LEVER_OAUTH_TOKEN_URL"
            ])
        );
    }

    #[test]
    fn every_function_that_calls_lever_has_an_oauth_client_without_a_redirect_uri() {
        let c = Config::load(Function::Push(PushKind::Note), &Env::from_pairs(lever())).unwrap();
        let oauth = c.oauth.expect("OAuth configured");
        assert_eq!(
            oauth.client_secret,
            ClientSecret::Named("prod/lever-oauth-client".into())
        );
        assert_eq!(oauth.token_url, None);
        assert_eq!(
            oauth.endpoints(crate::lever::PRODUCTION).token_url,
            LEVER_TOKEN_URL
        );
        assert_eq!(oauth.redirect_uri, None);
        assert_eq!(c.lever.rate_per_sec, 0.8);
    }

    #[test]
    fn an_empty_client_id_means_no_oauth_and_bad_numbers_are_refused() {
        let mut vars = lever();
        vars.retain(|(k, _)| *k != "LEVER_OAUTH_CLIENT_ID");
        vars.push(("LEVER_OAUTH_CLIENT_ID", ""));
        let c = Config::load(Function::Sync, &Env::from_pairs(vars.clone()));
        assert_eq!(
            c.unwrap_err(),
            ConfigError::Missing(vec!["PARKED_MAX_DAYS", "SYNC_INTERVAL_MINUTES"])
        );
        vars.extend([("SYNC_INTERVAL_MINUTES", "15"), ("PARKED_MAX_DAYS", "")]);
        let c = Config::load(Function::Sync, &Env::from_pairs(vars.clone())).unwrap();
        assert!(c.oauth.is_none());
        assert_eq!(c.sync_interval_ms, 15 * 60_000);
        vars.push(("LEVER_BURST", "lots"));
        let bad: Vec<_> = vars
            .into_iter()
            .filter(|(k, v)| *k != "LEVER_BURST" || *v == "lots")
            .collect();
        let err = Config::load(Function::Sync, &Env::from_pairs(bad)).unwrap_err();
        assert!(err.to_string().contains("LEVER_BURST"), "{err}");
    }
}
