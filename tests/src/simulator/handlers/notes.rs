//! Notes. The real `POST` answers 201 with the whole note plus `noteId` (the docs show only
//! `{data: {noteId}}`): the simulator answers like the recording.

use super::{data, ok};
use crate::simulator::Simulator;
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::params::{Caller, Params, json_object, opt_i64};
use crate::simulator::state::new_id;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// Tolerated clock skew for a client-supplied `createdAt` (Lever accepts past times only).
const SKEW_MS: i64 = 60_000;

pub(crate) async fn list(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
) -> ApiResult {
    super::list_of(&sim, &caller, &params, &opp, ("notes", "notes:read"), |s| {
        &s.notes
    })
}

pub(crate) async fn get_one(
    State(sim): State<Simulator>,
    caller: Caller,
    Path((opp, id)): Path<(String, String)>,
) -> ApiResult {
    caller.require("notes:read")?;
    sim.with_state(|s| {
        s.opp(&opp, &caller)?;
        s.notes
            .get(&opp)
            .into_iter()
            .flatten()
            .find(|n| n["id"] == id.as_str())
            .map(|n| ok(n.clone()))
            .ok_or_else(|| ApiError::not_found("notes", &id))
    })
}

pub(crate) async fn create(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require("notes:write")?;
    sim.with_state(|s| {
        let stage = s.opp(&opp, &caller)?["stage"].clone();
        // Optional for notes: without it the note has no author.
        let user = params.perform_as(&s.users, false)?;
        let body = json_object(&body)?;
        let value = match body.get("value") {
            Some(Value::String(v)) if !v.trim().is_empty() => v.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(ApiError::bad_request(
                    "value is required and must not be empty",
                ));
            }
            Some(_) => return Err(ApiError::bad_request("value must be a string")),
        };
        let flag = |name: &str| match body.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ApiError::bad_request(format!("{name} must be a boolean"))),
        };
        let secret = flag("secret")?;
        flag("notifyFollowers")?;
        let score = opt_i64(&body, "score")?;
        let now = crate::now_ms();
        let created_at = opt_i64(&body, "createdAt")?.unwrap_or(now);
        if created_at > now + SKEW_MS {
            return Err(ApiError::bad_request("createdAt must not be in the future"));
        }
        let field = json!({
            "createdAt": created_at,
            "score": score,
            "stage": stage,
            "text": "Comment",
            "type": "note",
            "user": user,
            "value": value,
        });
        let notes = s.notes.entry(opp.clone()).or_default();
        // `note_id` threads a comment onto an existing note.
        let note = match params.get("note_id").filter(|n| !n.is_empty()) {
            Some(thread) => {
                let note = notes
                    .iter_mut()
                    .find(|n| n["id"] == thread)
                    .ok_or_else(|| ApiError::not_found("notes", thread))?;
                if let Some(fields) = note["fields"].as_array_mut() {
                    fields.push(field);
                }
                note.clone()
            }
            None => {
                let note = json!({
                    "id": new_id(),
                    "text": "Note",
                    "fields": [field],
                    "user": user,
                    "secret": secret,
                    "completedAt": created_at,
                    "deletedAt": null,
                    "createdAt": created_at,
                });
                notes.push(note.clone());
                note
            }
        };
        let mut answer = note;
        answer["noteId"] = answer["id"].clone();
        Ok(data(StatusCode::CREATED, answer))
    })
}
