//! Files attached to an opportunity (lever-api.md §5): `POST` is `multipart/form-data` with a
//! `file` field, needs `perform_as`, and takes at most 30 MB. The upload is counted and hashed as it
//! streams in, never held whole (the gate passes multipart bodies through unread).

use super::data;
use crate::simulator::Simulator;
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::params::{Caller, Params};
use crate::simulator::state::new_id;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use serde_json::json;
use sha2::Digest;

/// Lever's limit for one file.
pub const MAX_FILE_BYTES: u64 = 30 * 1024 * 1024;

pub(crate) async fn list(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
) -> ApiResult {
    super::list_of(&sim, &caller, &params, &opp, ("files", "files:read"), |s| {
        &s.files
    })
}

pub(crate) async fn upload(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult {
    caller.require("files:write")?;
    let user = sim.with_state(|s| {
        s.opp(&opp, &caller)?;
        params.perform_as(&s.users, true)
    })?;
    let mut multipart = multipart
        .map_err(|e| ApiError::bad_request(format!("the body must be multipart/form-data: {e}")))?;
    let mut stored = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("the multipart body could not be read: {e}")))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("file").to_string();
        let mut size = 0u64;
        let mut hash = sha2::Sha256::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| ApiError::bad_request(format!("the file could not be read: {e}")))?
        {
            size += chunk.len() as u64;
            if size > MAX_FILE_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    "Files may be at most 30 MB.",
                ));
            }
            hash.update(&chunk);
        }
        stored = Some((name, size, hex::encode(hash.finalize())));
    }
    let Some((name, size, sha256)) = stored else {
        return Err(ApiError::bad_request(
            "file is required (a multipart field named file)",
        ));
    };
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_string());
    let id = new_id();
    let file = json!({
        "id": id,
        "downloadUrl": format!("https://hire.lever.co/candidates/{opp}/files/{id}/download"),
        "ext": ext,
        "name": name,
        "uploadedAt": crate::now_ms(),
        "status": "processed",
        "size": size,
        "user": user,
        // The simulator's own, for tests to compare what arrived with what was sent.
        "sha256": sha256,
    });
    sim.with_state(|s| s.files.entry(opp).or_default().push(file.clone()));
    Ok(data(StatusCode::CREATED, file))
}
