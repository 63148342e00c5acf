//! `/_admin`: the library API over HTTP for the `lever-sim` binary (no auth; it only ever listens
//! on loopback in the local stack).
//!
//! ```text
//! POST   /_admin/faults          {"fault": FAULT, "count": 1}
//! POST   /_admin/random_faults   {"ratio": 0.1, "seed": 7, "faults": [FAULT, ...]}
//! POST   /_admin/keys            {"key": "k", "permissions": ["notes:write"] | null, "confidential": false}
//! DELETE /_admin/keys/{key}
//! POST   /_admin/opportunities   {"name", "emails", "stage", "posting", "confidential", "archivedReason"} → {"id"}
//!                                or {"count": n} → {"ids": [...]}
//! GET    /_admin/requests        → [LoggedRequest]     DELETE /_admin/requests
//! POST   /_admin/oauth/codes     {"permissions": [...] | null, "confidential": false} → {"code"}
//!                                (what Lever's consent page would redirect with)
//! PUT    /_admin/oauth/lifetime  {"seconds": 3600}   access tokens issued from now on
//! FAULT = {"status": 503} | {"delay_ms": 200} | {"drop": true}
//!       | {"delay_after_apply_ms": 200} | {"drop_after_apply": true}
//! ```

use super::{Fault, KeyPerms, NewOpportunity, Simulator};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

pub(crate) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/faults", post(push_fault))
        .route("/random_faults", post(random_faults))
        .route("/keys", post(add_key))
        .route("/keys/{key}", delete(remove_key))
        .route("/opportunities", post(add_opportunities))
        .route(
            "/requests",
            axum::routing::get(requests).delete(clear_requests),
        )
        .route("/oauth/codes", post(issue_code))
        .route("/oauth/lifetime", axum::routing::put(token_lifetime))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultSpec {
    status: Option<u16>,
    delay_ms: Option<u64>,
    #[serde(default)]
    drop: bool,
    delay_after_apply_ms: Option<u64>,
    #[serde(default)]
    drop_after_apply: bool,
}

impl FaultSpec {
    fn fault(&self) -> Result<Fault, &'static str> {
        let chosen: Vec<Fault> = [
            self.status.map(Fault::Status),
            self.delay_ms
                .map(|ms| Fault::Delay(Duration::from_millis(ms))),
            self.drop.then_some(Fault::Drop),
            self.delay_after_apply_ms
                .map(|ms| Fault::DelayAfterApply(Duration::from_millis(ms))),
            self.drop_after_apply.then_some(Fault::DropAfterApply),
        ]
        .into_iter()
        .flatten()
        .collect();
        match chosen.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(
                "a fault names exactly one of status, delay_ms, drop, delay_after_apply_ms, drop_after_apply",
            ),
        }
    }
}

fn bad(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

#[derive(Deserialize)]
struct PushFault {
    fault: FaultSpec,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

async fn push_fault(State(sim): State<Simulator>, Json(req): Json<PushFault>) -> Response {
    match req.fault.fault() {
        Ok(fault) => {
            sim.push_fault(fault, req.count);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(message) => bad(message),
    }
}

#[derive(Deserialize)]
struct RandomFaults {
    ratio: f64,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    faults: Vec<FaultSpec>,
}

async fn random_faults(State(sim): State<Simulator>, Json(req): Json<RandomFaults>) -> Response {
    match req.faults.iter().map(FaultSpec::fault).collect() {
        Ok(faults) => {
            sim.set_random_faults(req.ratio, faults, req.seed);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(message) => bad(message),
    }
}

#[derive(Deserialize)]
struct Perms {
    permissions: Option<Vec<String>>,
    #[serde(default)]
    confidential: bool,
}

impl Perms {
    fn key_perms(self) -> KeyPerms {
        KeyPerms {
            permissions: self.permissions.map(|p| p.into_iter().collect()),
            confidential: self.confidential,
        }
    }
}

#[derive(Deserialize)]
struct AddKey {
    key: String,
    #[serde(flatten)]
    perms: Perms,
}

async fn add_key(State(sim): State<Simulator>, Json(req): Json<AddKey>) -> Response {
    if req.key.is_empty() {
        return bad("key must not be empty");
    }
    sim.add_key(&req.key, req.perms.key_perms());
    StatusCode::NO_CONTENT.into_response()
}

async fn issue_code(State(sim): State<Simulator>, Json(req): Json<Perms>) -> Response {
    let code = sim.issue_auth_code(req.key_perms());
    (StatusCode::CREATED, Json(json!({"code": code}))).into_response()
}

#[derive(Deserialize)]
struct Lifetime {
    seconds: u64,
}

async fn token_lifetime(State(sim): State<Simulator>, Json(req): Json<Lifetime>) -> Response {
    sim.set_access_token_lifetime(Duration::from_secs(req.seconds));
    StatusCode::NO_CONTENT.into_response()
}

async fn remove_key(State(sim): State<Simulator>, Path(key): Path<String>) -> Response {
    sim.remove_key(&key);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddOpportunity {
    count: Option<usize>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    emails: Vec<String>,
    stage: Option<String>,
    posting: Option<String>,
    #[serde(default)]
    confidential: bool,
    archived_reason: Option<String>,
}

async fn add_opportunities(
    State(sim): State<Simulator>,
    Json(req): Json<AddOpportunity>,
) -> Response {
    if let Some(n) = req.count {
        return Json(json!({"ids": sim.add_opportunities(n)})).into_response();
    }
    // Check what add_opportunity would panic on, to answer 400 instead.
    let known = sim.with_state(|s| {
        req.stage
            .as_ref()
            .is_none_or(|st| s.stage_index(st).is_some())
            && req.posting.as_ref().is_none_or(|p| s.posting(p).is_some())
            && req
                .archived_reason
                .as_ref()
                .is_none_or(|r| s.archive_reasons.iter().any(|a| a["id"] == *r))
    });
    if !known {
        return bad("unknown stage, posting or archivedReason");
    }
    let id = sim.add_opportunity(NewOpportunity {
        name: req.name,
        emails: req.emails,
        stage: req.stage,
        posting: req.posting,
        confidential: req.confidential,
        archived_reason: req.archived_reason,
    });
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

async fn requests(State(sim): State<Simulator>) -> Response {
    Json(sim.requests()).into_response()
}

async fn clear_requests(State(sim): State<Simulator>) -> Response {
    sim.clear_requests();
    StatusCode::NO_CONTENT.into_response()
}
