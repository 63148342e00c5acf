//! In front of every `/v1` route, in Lever's order: log, authenticate, inject a fault, rate limit,
//! then the handler (which checks its permission). Faults come after auth so that they are logged
//! with the key, and before the bucket so that a faulted request costs no token.

use super::error::ApiError;
use super::faults::Fault;
use super::params::Caller;
use super::server::ConnControl;
use super::{LoggedRequest, Simulator, lock};
use axum::body::{Body, to_bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;
use std::time::{Duration, Instant};

/// Lever's bodies are small; this only bounds memory.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub(crate) async fn gate(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let control = parts.extensions.get::<ConnControl>().cloned();
    let key = presented_key(&parts.headers);
    // Nesting strips `/v1`; the log shows the path as the client sent it.
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
    // A file upload streams on to its handler (which bounds it at Lever's 30 MB); other bodies are
    // read here, for the log.
    let multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"multipart/form-data"));
    let (bytes, stream) = if multipart {
        (Ok(axum::body::Bytes::new()), Some(body))
    } else {
        (to_bytes(body, MAX_BODY_BYTES).await, None)
    };
    let is_write = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let logged_body = match &bytes {
        Ok(b) if is_write => serde_json::from_slice(b).ok(),
        _ => None,
    };
    let id = sim.log_start(LoggedRequest {
        method: parts.method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        key: key.clone(),
        status: None,
        body: logged_body,
        fault: None,
        at_ms: crate::now_ms(),
    });
    let finish = |response: Response| {
        let status = response.status().as_u16();
        sim.log_update(id, |e| e.status = Some(status));
        response
    };

    let perms = key
        .as_deref()
        .filter(|k| !sim.access_token_expired(k))
        .and_then(|k| sim.with_state(|s| s.keys.get(k).cloned()));
    let (Some(key), Some(perms)) = (key, perms) else {
        return finish(ApiError::unauthorized("Invalid or expired API key.").into_response());
    };
    let Ok(bytes) = bytes else {
        return finish(ApiError::bad_request("The request body could not be read").into_response());
    };

    let fault = {
        let mut plan = lock(&sim.inner.faults);
        let general = plan.next();
        plan.next_on(parts.method.as_str(), uri.path()).or(general)
    };
    if let Some(f) = &fault {
        let label = f.label();
        sim.log_update(id, |e| e.fault = Some(label));
    }
    match &fault {
        Some(Fault::Status(429)) => return finish(rate_limited(&sim, Duration::from_secs(1))),
        Some(Fault::Status(status)) => {
            return finish(ApiError::for_status(*status).into_response());
        }
        Some(Fault::Drop) => return drop_connection(control).await,
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }

    let acquired = lock(&sim.inner.limiter).try_acquire(&key, Instant::now());
    if let Err(wait) = acquired {
        return finish(rate_limited(&sim, wait));
    }

    parts.extensions.insert(Caller { perms });
    let response = next
        .run(Request::from_parts(
            parts,
            stream.unwrap_or_else(|| Body::from(bytes)),
        ))
        .await;
    match fault {
        Some(Fault::DropAfterApply) => drop_connection(control).await,
        Some(Fault::DelayAfterApply(d)) => {
            // The work is done and its status known; only the answer is late.
            let response = finish(response);
            tokio::time::sleep(d).await;
            response
        }
        _ => finish(response),
    }
}

/// The API key: Basic auth user name (password ignored, Lever's is empty) or a Bearer token.
fn presented_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    let key = if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        text.split_once(':')
            .map_or(text.as_str(), |(user, _)| user)
            .to_string()
    } else if scheme.eq_ignore_ascii_case("bearer") {
        rest.to_string()
    } else {
        return None;
    };
    (!key.is_empty()).then_some(key)
}

/// 429 with the body shape of the api_error_429 fixture; `Retry-After` only when configured,
/// since Lever documents none.
fn rate_limited(sim: &Simulator, wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let body = json!({
        "code": "RateLimitError",
        "message": "Too many requests. Please retry after the duration indicated by the Retry-After header.",
        "retryAfterSeconds": seconds,
    });
    let mut response =
        (axum::http::StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if sim.inner.config.retry_after_header {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Closes the connection without answering: the connection task drops the socket and this future
/// with it, so nothing is ever written.
async fn drop_connection(control: Option<ConnControl>) -> Response {
    match control {
        Some(control) => {
            control.abort();
            std::future::pending().await
        }
        // Only reachable if the router were served by something else than `server::serve`.
        None => ApiError::for_status(502).into_response(),
    }
}
