//! Lever's OAuth token endpoint (`POST /oauth/token`, lever-api.md §2), enough for the bridge's flow:
//! authorization codes come from [`Simulator::issue_auth_code`] (there is no consent page), both
//! grants are served, codes and refresh tokens work once (a used one answers `invalid_grant`), and
//! refresh tokens rotate on every refresh. Access tokens are Bearer keys on `/v1` with the
//! permissions the code was issued with, expiring after [`Simulator::set_access_token_lifetime`]
//! (an hour by default, as Lever's).

use super::{KeyPerms, LoggedRequest, Simulator, lock};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// The OAuth client the simulator accepts.
pub const SIM_CLIENT_ID: &str = "sim-client";
pub const SIM_CLIENT_SECRET: &str = "sim-client-secret";

pub(crate) struct OAuthSim {
    codes: HashMap<String, KeyPerms>,
    refresh_tokens: HashMap<String, KeyPerms>,
    /// Access token → expiry (ms since epoch).
    pub(crate) access_expiry: HashMap<String, i64>,
    lifetime: Duration,
    /// Waits before the next token calls are served (a slow authorization server).
    delays: std::collections::VecDeque<Duration>,
}

impl Default for OAuthSim {
    fn default() -> Self {
        OAuthSim {
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_expiry: HashMap::new(),
            lifetime: Duration::from_secs(3600),
            delays: std::collections::VecDeque::new(),
        }
    }
}

impl Simulator {
    /// An authorization code for the given permissions, as Lever's consent page would redirect with.
    pub fn issue_auth_code(&self, permissions: KeyPerms) -> String {
        let code = format!("code-{}", crate::random_hex(16));
        lock(&self.inner.oauth)
            .codes
            .insert(code.clone(), permissions);
        code
    }

    /// How long access tokens issued from now on live.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        lock(&self.inner.oauth).lifetime = lifetime;
    }

    /// The next token call waits `delay` before it is served (the grant is used when it is served).
    pub fn delay_next_token_call(&self, delay: Duration) {
        lock(&self.inner.oauth).delays.push_back(delay);
    }

    /// `http://127.0.0.1:PORT/oauth/token`
    pub fn token_url(&self) -> String {
        format!("http://{}/oauth/token", self.inner.addr)
    }

    /// `http://127.0.0.1:PORT/oauth/authorize` (not served: tests take codes from
    /// [`Simulator::issue_auth_code`]).
    pub fn authorize_url(&self) -> String {
        format!("http://{}/oauth/authorize", self.inner.addr)
    }

    /// Whether `token` is an access token that has expired.
    pub(crate) fn access_token_expired(&self, token: &str) -> bool {
        lock(&self.inner.oauth)
            .access_expiry
            .get(token)
            .is_some_and(|at| *at <= crate::now_ms())
    }

    /// The refresh tokens currently valid (tests check rotation).
    pub fn live_refresh_tokens(&self) -> Vec<String> {
        lock(&self.inner.oauth)
            .refresh_tokens
            .keys()
            .cloned()
            .collect()
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

pub(crate) async fn token(
    State(sim): State<Simulator>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    let delay = lock(&sim.inner.oauth).delays.pop_front();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    // Logged without the code, tokens or client secret.
    let id = sim.log_start(LoggedRequest {
        method: "POST".into(),
        path: "/oauth/token".into(),
        query: String::new(),
        key: None,
        status: None,
        body: Some(json!({"grant_type": grant})),
        fault: None,
        at_ms: crate::now_ms(),
    });
    let response = answer(&sim, &grant, &form);
    let status = response.status().as_u16();
    sim.log_update(id, |e| e.status = Some(status));
    response
}

fn answer(sim: &Simulator, grant: &str, form: &HashMap<String, String>) -> Response {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("client_id") != SIM_CLIENT_ID || field("client_secret") != SIM_CLIENT_SECRET {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Unknown client or wrong client secret.",
        );
    }
    let mut oauth = lock(&sim.inner.oauth);
    let perms = match grant {
        "authorization_code" => oauth.codes.remove(field("code")),
        "refresh_token" => oauth.refresh_tokens.remove(field("refresh_token")),
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token.",
            );
        }
    };
    let Some(perms) = perms else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            if grant == "refresh_token" {
                "Unknown or invalid refresh token."
            } else {
                "Invalid authorization code."
            },
        );
    };
    let access = format!("at-{}", crate::random_hex(20));
    let refresh = format!("rt-{}", crate::random_hex(20));
    let lifetime = oauth.lifetime;
    oauth.access_expiry.insert(
        access.clone(),
        crate::now_ms() + lifetime.as_millis() as i64,
    );
    oauth.refresh_tokens.insert(refresh.clone(), perms.clone());
    drop(oauth);
    sim.add_key(&access, perms);
    Json(json!({
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "scope": "offline_access",
    }))
    .into_response()
}
