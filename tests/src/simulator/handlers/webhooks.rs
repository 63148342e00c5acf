//! Webhooks. `POST` answers 201 with `data.configuration.signatureToken` (48 hex characters, as the
//! real recording); `GET` returns `{data}` alone, without tokens (as recorded).

use super::data;
use crate::simulator::Simulator;
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::params::{Caller, json_object, opt_string};
use crate::simulator::state::new_id;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use lever_bridge::webhook::EventKind;
use serde_json::{Value, json};

/// In the order of the real recording.
const ORIGINS: &[&str] = &[
    "applied",
    "sourced",
    "referred",
    "university",
    "internal",
    "agency",
];

/// What the API shows of a webhook: everything but the signature token.
fn public(hook: &Value) -> Value {
    let mut hook = hook.clone();
    if let Some(config) = hook["configuration"].as_object_mut() {
        config.remove("signatureToken");
    }
    hook
}

pub(crate) async fn list(State(sim): State<Simulator>, caller: Caller) -> ApiResult {
    caller.require("webhooks:read")?;
    let hooks: Vec<Value> = sim.with_state(|s| s.webhooks.iter().map(public).collect());
    Ok(Json(json!({ "data": hooks })).into_response())
}

pub(crate) async fn create(State(sim): State<Simulator>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require("webhooks:write")?;
    let body = json_object(&body)?;
    let url = opt_string(&body, "url")?
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::bad_request("url is required"))?;
    // Lever requires HTTPS; plain http is accepted so that the local stack can register itself.
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ApiError::bad_request(format!(
            "url {url} is not an http(s) URL"
        )));
    }
    let event =
        opt_string(&body, "event")?.ok_or_else(|| ApiError::bad_request("event is required"))?;
    if EventKind::parse(&event).is_none() {
        return Err(ApiError::bad_request(format!(
            "event {event} is not a webhook event"
        )));
    }
    let origins: Vec<Value> = match body
        .get("configuration")
        .map(|c| &c["conditions"]["origins"])
    {
        None | Some(Value::Null) => ORIGINS.iter().map(|o| json!(o)).collect(),
        Some(Value::Array(list))
            if list
                .iter()
                .all(|o| o.as_str().is_some_and(|o| ORIGINS.contains(&o))) =>
        {
            list.clone()
        }
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "configuration.conditions.origins must be a list of: {}",
                ORIGINS.join(", ")
            )));
        }
    };
    let now = crate::now_ms();
    let hook = json!({
        "id": new_id(),
        "event": event,
        "url": url,
        "configuration": {
            "conditions": {"origins": origins},
            "signatureToken": crate::random_hex(24),
        },
        "createdAt": now,
        "updatedAt": now,
    });
    sim.with_state(|s| s.webhooks.push(hook.clone()));
    Ok(data(StatusCode::CREATED, hook))
}

pub(crate) async fn remove(
    State(sim): State<Simulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require("webhooks:write")?;
    sim.with_state(|s| {
        let before = s.webhooks.len();
        s.webhooks.retain(|h| h["id"] != id.as_str());
        if s.webhooks.len() == before {
            return Err(ApiError::not_found("webhooks", &id));
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}
