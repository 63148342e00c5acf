//! Lever's OAuth token endpoint (`POST /oauth/token`, lever-api.md §2), enough for the bridge's flow:
//! authorization codes come from [`Simulator::issue_auth_code`] or from the consent page
//! (`GET /oauth/authorize`: Allow redirects to `redirect_uri` with a code for every permission, Deny
//! with `error=access_denied`, each with the `state` it was given), both
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

    /// `http://127.0.0.1:PORT/oauth/authorize`: the consent page.
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

/// The authorize request's parameters the consent page carries on.
#[derive(serde::Deserialize, serde::Serialize, Default)]
pub(crate) struct AuthorizeParams {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    decision: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /oauth/authorize`: Lever's consent page, with Allow and Deny.
pub(crate) async fn consent_page(
    axum::extract::Query(p): axum::extract::Query<AuthorizeParams>,
) -> Response {
    if p.client_id != SIM_CLIENT_ID || p.redirect_uri.is_empty() || p.response_type != "code" {
        return (
            StatusCode::BAD_REQUEST,
            "unknown client, or no redirect_uri, or response_type is not code",
        )
            .into_response();
    }
    let hidden = |decision: &str| {
        format!(
            "<input type=hidden name=client_id value=\"{}\"><input type=hidden name=redirect_uri value=\"{}\">\
<input type=hidden name=state value=\"{}\"><input type=hidden name=response_type value=code>\
<input type=hidden name=decision value={decision}>",
            escape(&p.client_id),
            escape(&p.redirect_uri),
            escape(&p.state)
        )
    };
    axum::response::Html(format!(
        "<!doctype html><title>Authorize</title><h1>Lever (simulated): authorize {}</h1>\
<form method=post action=/oauth/authorize>{}<button id=allow>Allow</button></form>\
<form method=post action=/oauth/authorize>{}<button id=deny>Deny</button></form>",
        escape(&p.client_id),
        hidden("allow"),
        hidden("deny")
    ))
    .into_response()
}

/// `POST /oauth/authorize`: back to the client with a code, or with `access_denied`.
pub(crate) async fn consent(
    State(sim): State<Simulator>,
    Form(p): Form<AuthorizeParams>,
) -> Response {
    let Ok(mut to) = reqwest::Url::parse(&p.redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response();
    };
    if p.decision == "allow" {
        let code = sim.issue_auth_code(KeyPerms::all());
        to.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &p.state);
    } else {
        to.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user denied the request.")
            .append_pair("state", &p.state);
    }
    axum::response::Redirect::to(to.as_str()).into_response()
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
