//! The command aggregate: each push command's record (claimed, done, failed, parked) and the map
//! from a vendor's interview to Lever's panel.

use super::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;

/// How long a push attempt holds its command before another attempt may take over.
pub const COMMAND_LEASE_MS: i64 = 60_000;
/// Command records are kept this long, so a repeated `commandId` within it writes nothing.
pub const COMMAND_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CommandState {
    Claimed,
    /// A retryable failure: the next attempt may claim it.
    Released,
    Done,
    /// A permanent failure, with Lever's reason.
    Failed,
    /// Waiting for the tenant to reconnect.
    Parked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandRecord {
    pub state: CommandState,
    pub kind: String,
    pub attempts: u32,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommandClaim {
    /// Carry it out. `uncertain`: an earlier attempt may already have written to Lever, so look
    /// before writing. `first_claimed_at` is stable across attempts.
    Go {
        uncertain: bool,
        first_claimed_at: i64,
        attempt: u32,
        was_parked: bool,
    },
    /// Done or failed before: nothing to do.
    Finished(CommandRecord),
    /// Another attempt holds it.
    Busy,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommandEnd {
    Done {
        result: Value,
    },
    Failed {
        error: String,
    },
    /// Retry later; `uncertain` when this attempt may have written to Lever.
    Released {
        error: String,
        uncertain: bool,
    },
    /// Kept until the tenant reconnects; `command` is the command as received, `kind` its push
    /// kind (the queue a replay sends it back to).
    Parked {
        error: String,
        command: Value,
        kind: String,
    },
}

/// A command waiting for its tenant to reconnect.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedCommand {
    pub id: String,
    pub kind: String,
    /// As received from the vendor.
    pub command: Value,
    /// When it was first parked (parking it again keeps this: the expiry counts from here).
    pub parked_at: i64,
    /// Why it was parked.
    pub error: Option<String>,
    /// Times a reconnection sent it back to its queue.
    pub replays: u32,
}

/// Where a vendor interview lives in Lever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterviewMap {
    pub opportunity_id: String,
    pub panel_id: String,
    pub interview_ids: Vec<String>,
}

pub trait CommandStore: Send + Sync {
    fn claim_command(
        &self,
        tenant: &str,
        id: &str,
        kind: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<CommandClaim, StoreError>> + Send;
    /// Ends the attempt; `was_parked` (from the claim) also clears the tenant's parked entry.
    /// `event` (the outcome the vendor is told of) goes to the outbox in the same write.
    fn end_command(
        &self,
        tenant: &str,
        id: &str,
        end: &CommandEnd,
        was_parked: bool,
        event: Option<&crate::events::VendorEvent>,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn command(
        &self,
        tenant: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<CommandRecord>, StoreError>> + Send;
    /// The tenant's parked commands, oldest first.
    fn parked(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<ParkedCommand>, StoreError>> + Send;
    /// Records that a parked command went back to its queue; `event` (`pushReplayed`) goes to the
    /// outbox in the same write. Nothing is written when it is no longer parked.
    fn mark_replayed(
        &self,
        tenant: &str,
        id: &str,
        event: &crate::events::VendorEvent,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Ends a parked command as failed (expired, or its tenant deleted), with `event`
    /// (`pushFailed`) in the same write. False when it was no longer parked (a replay took it).
    fn fail_parked(
        &self,
        tenant: &str,
        id: &str,
        error: &str,
        event: &crate::events::VendorEvent,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn interview_map(
        &self,
        tenant: &str,
        interview: &str,
    ) -> impl Future<Output = Result<Option<InterviewMap>, StoreError>> + Send;
    fn put_interview_map(
        &self,
        tenant: &str,
        interview: &str,
        map: &InterviewMap,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn delete_interview_map(
        &self,
        tenant: &str,
        interview: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
