//! Testing a connection: one Lever call per permission the integration needs, none of which writes.
//!
//! Reads are tried for real. Writes are tried against an opportunity/panel/webhook id that cannot
//! exist (all zeros), so nothing can be created: Lever checks the key's permission first (403) and
//! then answers 404/400 for the missing target. UNCERTAIN: that order is what the simulator does and
//! what Lever's docs imply; a real Lever that looked the target up first would answer 404 for a
//! key without the permission too, which this reports as working.

use super::{Admin, AdminError, UNAUTHORIZED_MESSAGE};
use crate::clock::Clock;
use crate::lever::{LeverApi, LeverError, LeverRequest};
use crate::secrets::SecretStore;
use crate::store::{AdminStore, CommandStore, StatsStore, TenantStatus, TenantStore};
use serde::Serialize;
use serde_json::{Value, json};

const NONE: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CheckState {
    Ok,
    Missing,
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub permission: &'static str,
    pub what: &'static str,
    pub state: CheckState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

enum Probe {
    /// A read that must succeed.
    Read(fn(&str) -> LeverRequest),
    /// A write to a target that does not exist: anything but 401/403 means the permission is there.
    Write(fn() -> LeverRequest),
}

/// The permissions the connection test checks, each with what it is for (the key's checklist).
pub fn permissions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for (permission, what, _, _) in probes() {
        if !out.iter().any(|(p, _)| *p == permission) {
            out.push((permission, what));
        }
    }
    out
}

fn probes() -> Vec<(&'static str, &'static str, Probe, bool)> {
    use Probe::*;
    // (permission, what it is for, probe, needs a real opportunity id)
    vec![
        (
            "users:read",
            "list and read users (owner picker)",
            Read(|_| LeverRequest::get("/users").query("limit", "1")),
            false,
        ),
        (
            "opportunities:read",
            "list and read opportunities (candidates)",
            Read(|_| LeverRequest::get("/opportunities").query("limit", "1")),
            false,
        ),
        (
            "stages:read",
            "list stages",
            Read(|_| LeverRequest::get("/stages").query("limit", "1")),
            false,
        ),
        (
            "postings:read",
            "list postings (roles)",
            Read(|_| LeverRequest::get("/postings").query("limit", "1")),
            false,
        ),
        (
            "archive_reasons:read",
            "list archive reasons",
            Read(|_| LeverRequest::get("/archive_reasons").query("limit", "1")),
            false,
        ),
        (
            "interviews:read",
            "read interviews",
            Read(|o| {
                LeverRequest::get(format!("/opportunities/{o}/interviews")).query("limit", "1")
            }),
            true,
        ),
        (
            "applications:read",
            "read applications",
            Read(|o| {
                LeverRequest::get(format!("/opportunities/{o}/applications")).query("limit", "1")
            }),
            true,
        ),
        (
            "notes:read",
            "read notes",
            Read(|o| LeverRequest::get(format!("/opportunities/{o}/notes")).query("limit", "1")),
            true,
        ),
        (
            "notes:write",
            "create notes (assessments, transcripts)",
            Write(|| {
                LeverRequest::create(
                    format!("/opportunities/{NONE}/notes"),
                    json!({"value": "lever-bridge permission check"}),
                )
            }),
            false,
        ),
        (
            "opportunities:write",
            "move stage, archive, tags and links",
            Write(|| {
                LeverRequest::put(
                    format!("/opportunities/{NONE}/stage"),
                    json!({"stage": NONE}),
                )
            }),
            false,
        ),
        (
            "panels:write",
            "create interviews",
            Write(|| LeverRequest::create(format!("/opportunities/{NONE}/panels"), json!({}))),
            false,
        ),
        (
            "panels:write",
            "update interviews",
            Write(|| LeverRequest::put(format!("/opportunities/{NONE}/panels/{NONE}"), json!({}))),
            false,
        ),
        (
            "panels:write",
            "delete interviews",
            Write(|| LeverRequest::delete(format!("/opportunities/{NONE}/panels/{NONE}"))),
            false,
        ),
        (
            "files:read",
            "read files",
            Read(|o| LeverRequest::get(format!("/opportunities/{o}/files")).query("limit", "1")),
            true,
        ),
        (
            "files:write",
            "attach report files",
            Write(|| LeverRequest::create(format!("/opportunities/{NONE}/files"), json!({}))),
            false,
        ),
        (
            "webhooks:read",
            "list webhooks",
            Read(|_| LeverRequest::get("/webhooks")),
            false,
        ),
        (
            "webhooks:write",
            "create and delete webhooks",
            Write(|| LeverRequest::delete(format!("/webhooks/{NONE}"))),
            false,
        ),
    ]
}

impl<L, S, K, C> Admin<L, S, K, C>
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    /// `POST /admin/tenants/{id}/test`: always 200 when the test ran; `result` is `ok`,
    /// `missingPermissions` or `unauthorized`, each with a message saying what to fix.
    pub async fn test_connection(&self, id: &str) -> Result<Value, AdminError> {
        let ctx = self.ctx(id).await?;
        let lever = self.client(&ctx.account);
        // An opportunity to try per-candidate reads on.
        let first = lever
            .send(LeverRequest::get("/opportunities").query("limit", "1"))
            .await;
        if let Err(LeverError::Unauthorized(_)) = first {
            self.mark_disconnected(id).await;
            return Ok(json!({
                "tenantId": id,
                "result": "unauthorized",
                "message": UNAUTHORIZED_MESSAGE.replace("{id}", id),
                "checks": [],
            }));
        }
        let opp = first.ok().and_then(|v| {
            v["data"]
                .as_array()?
                .first()?
                .get("id")?
                .as_str()
                .map(str::to_string)
        });
        let mut checks = Vec::new();
        for (permission, what, probe, needs_opp) in probes() {
            let req = match (&probe, &opp) {
                (Probe::Read(_), None) if needs_opp => {
                    checks.push(Check {
                        permission,
                        what,
                        state: CheckState::Unknown,
                        message: Some("no candidate in the account to try it on".into()),
                    });
                    continue;
                }
                (Probe::Read(f), o) => f(o.as_deref().unwrap_or(NONE)),
                (Probe::Write(f), _) => f(),
            };
            let write = matches!(probe, Probe::Write(_));
            let (state, message) = match lever.send(req).await {
                Ok(_) => (CheckState::Ok, None),
                Err(LeverError::Unauthorized(_)) => {
                    self.mark_disconnected(id).await;
                    return Ok(json!({
                        "tenantId": id,
                        "result": "unauthorized",
                        "message": UNAUTHORIZED_MESSAGE.replace("{id}", id),
                        "checks": checks,
                    }));
                }
                Err(LeverError::Forbidden(_)) => (
                    CheckState::Missing,
                    Some(format!("the key lacks the `{permission}` permission")),
                ),
                Err(LeverError::NotFound(_) | LeverError::Rejected { .. }) if write => {
                    (CheckState::Ok, None)
                }
                Err(e) => (
                    CheckState::Unknown,
                    Some(format!(
                        "could not be checked: {}",
                        super::lever_error(&e).message
                    )),
                ),
            };
            checks.push(Check {
                permission,
                what,
                state,
                message,
            });
        }
        // Lever answers a key without confidential access an access error; a key with it may
        // still see none (an account without confidential postings).
        let confidential = lever
            .send(
                LeverRequest::get("/postings")
                    .query("confidentiality", "confidential")
                    .query("limit", "1"),
            )
            .await;
        checks.push(match confidential {
            Ok(v) if v["data"].as_array().is_some_and(|a| !a.is_empty()) => Check {
                permission: "confidential",
                what: "see confidential postings and candidates",
                state: CheckState::Ok,
                message: None,
            },
            Ok(_) => Check {
                permission: "confidential",
                what: "see confidential postings and candidates",
                state: CheckState::Unknown,
                message: Some(
                    "no confidential posting is visible: either the key was created without \
confidential access or the account has none"
                        .into(),
                ),
            },
            Err(LeverError::Forbidden(_)) => Check {
                permission: "confidential",
                what: "see confidential postings and candidates",
                state: CheckState::Missing,
                message: Some("the key lacks confidential access".into()),
            },
            Err(e) => Check {
                permission: "confidential",
                what: "see confidential postings and candidates",
                state: CheckState::Unknown,
                message: Some(format!(
                    "could not be checked: {}",
                    super::lever_error(&e).message
                )),
            },
        });
        let mut missing: Vec<&str> = checks
            .iter()
            .filter(|c| c.state == CheckState::Missing && c.permission != "confidential")
            .map(|c| c.permission)
            .collect();
        missing.dedup();
        let now = self.clock.now_ms();
        let (result, message) = if missing.is_empty() {
            self.store
                .set_tenant_status(id, TenantStatus::Connected, "", now)
                .await?;
            (
                "ok",
                "Every permission the integration needs works.".to_string(),
            )
        } else {
            let reason = format!("the Lever API key lacks: {}", missing.join(", "));
            self.store
                .set_tenant_status(id, TenantStatus::Degraded, &reason, now)
                .await?;
            (
                "missingPermissions",
                format!(
                    "Lever refused some calls (403): the API key lacks {}. In Lever, Settings > Integrations and API > \
API Credentials, edit the key, tick these permissions, and test again.",
                    missing.join(", ")
                ),
            )
        };
        tracing::info!(tenant = id, result, "connection tested");
        // Lever takes the credentials again after a 401: what was parked goes back to its queues.
        let replayed = if ctx.tenant.status == TenantStatus::Disconnected {
            self.replay_after_reconnect(id).await.map(|r| r.replayed)
        } else {
            None
        };
        Ok(
            json!({"tenantId": id, "result": result, "message": message, "checks": checks, "parkedReplayed": replayed}),
        )
    }
}
