//! Lever's OAuth token endpoint (lever-api.md §2): the authorize link, the code exchange and the
//! refresh grant. Form-encoded POSTs; tokens come back as [`Redacted`] and never reach a log line
//! or an error message (Lever's own `error`/`error_description` do, they hold no secret).

use crate::config::{ClientSecret, OAuthConfig};
use crate::secrets::Redacted;
use serde::Deserialize;
use std::time::Duration;

/// Tokens from one grant. `refresh_token` is absent when Lever did not rotate it (kept as is then).
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: Redacted,
    pub refresh_token: Option<Redacted>,
    /// Seconds the access token lives (Lever: 3600).
    pub expires_in: i64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OAuthError {
    /// Lever refused the grant (`invalid_grant`: a wrong, used or expired code or refresh token;
    /// `invalid_client`…): only the user connecting again helps.
    #[error("Lever refused the grant ({code}): {message}")]
    Rejected { code: String, message: String },
    /// No answer, 429 or 5xx: try again later.
    #[error("Lever's token endpoint is unavailable: {0}")]
    Unavailable(String),
    /// The client secret could not be read.
    #[error("the OAuth client is not configured: {0}")]
    NotConfigured(String),
}

/// The OAuth client: one per cold start.
pub struct OAuthClient {
    pub config: OAuthConfig,
    http: reqwest::Client,
    /// Reads a [`ClientSecret::Named`] secret.
    secrets: Option<aws_sdk_secretsmanager::Client>,
    /// The client secret once read; cleared when Lever says the client is invalid (the secret may
    /// have been replaced since).
    secret: tokio::sync::Mutex<Option<Redacted>>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.config.client_id)
            .field("token_url", &self.config.token_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<Redacted>,
    refresh_token: Option<Redacted>,
    expires_in: Option<i64>,
    error: Option<String>,
    error_description: Option<String>,
}

impl OAuthClient {
    /// `secrets` reads the client secret when the configuration names one (the functions pass the
    /// Secrets Manager client they built at cold start).
    pub fn new(config: OAuthConfig, secrets: Option<aws_sdk_secretsmanager::Client>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("lever-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds");
        OAuthClient {
            config,
            http,
            secrets,
            secret: tokio::sync::Mutex::new(None),
        }
    }

    /// Lever's authorize URL for `state` and a tenant on `api_base_url`; `None` without a
    /// redirect URI.
    pub fn authorize_url(&self, state: &str, api_base_url: &str) -> Option<String> {
        let c = &self.config;
        let redirect_uri = c.redirect_uri.as_deref()?;
        let scope = c.scopes.join(" ");
        let at = c.endpoints(api_base_url);
        Some(
            match reqwest::Url::parse_with_params(
                &at.authorize_url,
                &[
                    ("client_id", c.client_id.as_str()),
                    ("redirect_uri", redirect_uri),
                    ("response_type", "code"),
                    ("state", state),
                    ("audience", at.audience.as_str()),
                    ("scope", scope.as_str()),
                    ("prompt", "consent"),
                ],
            ) {
                Ok(u) => u.to_string(),
                Err(_) => at.authorize_url,
            },
        )
    }

    /// The client secret: from the configuration, or read from Secrets Manager on first use.
    async fn client_secret(&self) -> Result<Redacted, OAuthError> {
        let mut cached = self.secret.lock().await;
        if let Some(s) = cached.as_ref() {
            return Ok(s.clone());
        }
        let value = match &self.config.client_secret {
            ClientSecret::Value(s) => s.clone(),
            ClientSecret::Named(name) => self.read_client_secret(name).await?,
        };
        *cached = Some(value.clone());
        Ok(value)
    }

    async fn read_client_secret(&self, name: &str) -> Result<Redacted, OAuthError> {
        let Some(client) = &self.secrets else {
            return Err(OAuthError::NotConfigured(
                "no Secrets Manager client to read the OAuth client secret".into(),
            ));
        };
        let out = client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %aws_sdk_secretsmanager::error::DisplayErrorContext(&e), "OAuth client secret unreadable");
                OAuthError::NotConfigured("the OAuth client secret could not be read".into())
            })?;
        let text = out.secret_string().unwrap_or_default().trim();
        let value = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| {
                v.get("clientSecret")
                    .and_then(|s| s.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| text.to_string());
        if value.is_empty() {
            return Err(OAuthError::NotConfigured(format!(
                "the OAuth client secret {name} is empty: put the secret Lever issued into it"
            )));
        }
        Ok(Redacted::new(value))
    }

    /// `grant_type=authorization_code`.
    pub async fn exchange_code(
        &self,
        code: &str,
        api_base_url: &str,
    ) -> Result<TokenSet, OAuthError> {
        let Some(redirect_uri) = self.config.redirect_uri.as_deref() else {
            return Err(OAuthError::NotConfigured(
                "LEVER_OAUTH_REDIRECT_URI is empty".into(),
            ));
        };
        self.grant(
            api_base_url,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ],
        )
        .await
    }

    /// `grant_type=refresh_token`. Lever rotates the refresh token: the one sent is dead afterwards.
    pub async fn refresh(
        &self,
        refresh_token: &Redacted,
        api_base_url: &str,
    ) -> Result<TokenSet, OAuthError> {
        self.grant(
            api_base_url,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
            ],
        )
        .await
    }

    /// A grant at the token endpoint of the tenant's environment.
    async fn grant(
        &self,
        api_base_url: &str,
        params: &[(&str, &str)],
    ) -> Result<TokenSet, OAuthError> {
        let secret = self.client_secret().await?;
        let mut form: Vec<(&str, &str)> = params.to_vec();
        form.push(("client_id", self.config.client_id.as_str()));
        form.push(("client_secret", secret.expose()));
        let res = self
            .http
            .post(self.config.endpoints(api_base_url).token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                OAuthError::Unavailable(if e.is_timeout() {
                    "timed out".into()
                } else {
                    "no connection".into()
                })
            })?;
        let status = res.status().as_u16();
        let bytes = res
            .bytes()
            .await
            .map_err(|_| OAuthError::Unavailable("the answer was cut off".into()))?;
        let answer: Option<TokenAnswer> = serde_json::from_slice(&bytes).ok();
        if status == 429 || status >= 500 {
            return Err(OAuthError::Unavailable(format!("status {status}")));
        }
        let Some(answer) = answer else {
            return Err(OAuthError::Unavailable(format!(
                "unreadable answer (status {status})"
            )));
        };
        match (status, answer.access_token) {
            (200..=299, Some(access_token)) => Ok(TokenSet {
                access_token,
                refresh_token: answer.refresh_token,
                expires_in: answer.expires_in.unwrap_or(3600).max(0),
            }),
            // The vendor's client id or secret is wrong: no tenant's fault, and the secret may
            // have been replaced since it was read.
            _ if answer.error.as_deref() == Some("invalid_client") => {
                *self.secret.lock().await = None;
                Err(OAuthError::NotConfigured(
                    "Lever refused the OAuth client (invalid_client): check LEVER_OAUTH_CLIENT_ID and the client secret".into(),
                ))
            }
            _ => Err(OAuthError::Rejected {
                code: answer.error.unwrap_or_else(|| format!("status_{status}")),
                message: answer
                    .error_description
                    .unwrap_or_else(|| "Lever refused the grant".into()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LEVER_SANDBOX_TOKEN_URL, LEVER_TOKEN_URL};

    fn client(redirect: Option<&str>) -> OAuthClient {
        let config = OAuthConfig::new("client", ClientSecret::Value(Redacted::new("s")), redirect);
        OAuthClient::new(config, None)
    }

    fn query(url: &str) -> (String, std::collections::HashMap<String, String>) {
        let u = reqwest::Url::parse(url).unwrap();
        let base = format!("{}://{}{}", u.scheme(), u.host_str().unwrap(), u.path());
        (base, u.query_pairs().into_owned().collect())
    }

    #[test]
    fn a_sandbox_tenant_authorizes_at_the_sandbox_with_its_audience() {
        let c = client(Some("https://x.example/admin/oauth/callback"));
        let (at, q) = query(&c.authorize_url("st", crate::lever::SANDBOX).unwrap());
        assert_eq!(at, "https://sandbox-lever.auth0.com/authorize");
        assert_eq!(q["audience"], "https://api.sandbox.lever.co/v1/");
        assert_eq!(
            c.config.endpoints(crate::lever::SANDBOX).token_url,
            LEVER_SANDBOX_TOKEN_URL
        );
        let (at, q) = query(&c.authorize_url("st", crate::lever::PRODUCTION).unwrap());
        assert_eq!(at, "https://auth.lever.co/authorize");
        assert_eq!(q["audience"], "https://api.lever.co/v1/");
        assert_eq!(
            c.config.endpoints(crate::lever::PRODUCTION).token_url,
            LEVER_TOKEN_URL
        );
    }

    #[test]
    fn configured_endpoints_replace_levers_in_every_environment() {
        let mut c = client(Some("https://x.example/cb"));
        c.config.authorize_url = Some("http://127.0.0.1:9/authorize".into());
        c.config.token_url = Some("http://127.0.0.1:9/oauth/token".into());
        for env in [crate::lever::SANDBOX, crate::lever::PRODUCTION] {
            let e = c.config.endpoints(env);
            assert_eq!(e.token_url, "http://127.0.0.1:9/oauth/token");
            let url = c.authorize_url("st", env).unwrap();
            assert!(url.starts_with("http://127.0.0.1:9/authorize?"), "{url}");
        }
        // The audience still names the tenant's API.
        assert_eq!(
            c.config.endpoints(crate::lever::SANDBOX).audience,
            "https://api.sandbox.lever.co/v1/"
        );
    }
}
