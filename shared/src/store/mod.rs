//! State: webhook dedup records, the vendor's view of each candidate, and tenants.
//!
//! One DynamoDB table holds it all (see [`dynamo`]); [`memory`] is the same contract in memory for
//! unit tests. `tests/` runs one conformance suite against both.

pub mod dynamo;
pub mod memory;

use crate::webhook::{Archived, EventKind, MAX_AGE_MS, Mutation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::future::Future;

/// How long a claimed delivery is held before another attempt may take it over.
pub const LEASE_MS: i64 = 30_000;

/// One webhook delivery as the store sees it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub tenant: &'a str,
    pub token: &'a str,
    pub kind: EventKind,
    pub triggered_at: i64,
}

impl Delivery<'_> {
    /// Epoch seconds after which the dedup record may go: one day past the last moment the delivery
    /// could still be accepted (the window is checked before the store is asked).
    pub fn expires_at_secs(&self, now_ms: i64) -> i64 {
        (self.triggered_at.max(now_ms) + MAX_AGE_MS + 24 * 3600 * 1000) / 1000
    }
}

/// A delivery's dedup record.
#[derive(Debug, Clone, PartialEq)]
pub struct DedupRecord {
    /// The vendor event was published.
    pub done: bool,
    /// Until when the attempt that wrote it holds it (ms).
    pub lease_until: i64,
    /// The vendor event to publish, kept until it is.
    pub event: Option<String>,
}

/// The answer to claiming a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The change and the claim were written together.
    Applied,
    /// Newer state is in place (or the candidate is deleted): nothing was written.
    Stale,
    /// The delivery was claimed before.
    Seen(DedupRecord),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A concurrent write to the same items won; the caller should retry later.
    #[error("a concurrent write to the same item won")]
    Contended,
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored item is malformed: {0}")]
    Malformed(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub id: String,
    pub since: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub posting_id: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interview {
    pub panel_id: Option<String>,
    pub data: Map<String, Value>,
    pub at: i64,
}

/// The vendor's view of one opportunity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateView {
    pub opportunity_id: String,
    pub stage: Option<Stage>,
    pub archived: Option<Archived>,
    pub hired: bool,
    pub contact_id: Option<String>,
    pub applications: BTreeMap<String, Application>,
    /// Live interviews only; deleted ones are gone.
    pub interviews: BTreeMap<String, Interview>,
    /// Set on a deleted candidate, whose other data is erased.
    pub deleted_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub contact_id: String,
    pub data: Map<String, Value>,
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TenantStatus {
    Connected,
    Degraded,
    Disconnected,
}

/// A customer's Lever account. Its secrets live in the secret store, never here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub lever_base_url: String,
    pub owner_user_id: Option<String>,
    pub status: TenantStatus,
    /// Why the status is what it is, when not connected.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// IANA time zone transcripts are written in (UTC when absent).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Minutes a conversation stays quiet before its transcript is posted (60 when absent).
    #[serde(default)]
    pub transcript_quiet_minutes: Option<i64>,
    pub created_at: i64,
}

impl Tenant {
    /// A tenant just connected: no owner yet, default time zone and quiet period.
    pub fn connected(id: &str, lever_base_url: &str, now_ms: i64) -> Tenant {
        Tenant {
            id: id.to_string(),
            lever_base_url: lever_base_url.to_string(),
            owner_user_id: None,
            status: TenantStatus::Connected,
            status_reason: None,
            time_zone: None,
            transcript_quiet_minutes: None,
            created_at: now_ms,
        }
    }
}

pub trait WebhookStore: Send + Sync {
    /// Claims the delivery and applies its change in one atomic write. Applies nothing when the
    /// delivery was seen (`Seen`) or newer state is in place (`Stale`, claim not written).
    fn claim_apply(
        &self,
        d: &Delivery<'_>,
        m: &Mutation,
        event: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Claims the delivery alone (for a stale one). `Applied` means claimed.
    fn claim_only(
        &self,
        d: &Delivery<'_>,
        event: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Takes over a claim whose lease ran out; false when another attempt got it first.
    fn take_over(
        &self,
        d: &Delivery<'_>,
        seen_lease: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Marks the delivery done: its event is published.
    fn complete(&self, d: &Delivery<'_>) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Ends the lease early so that a retry does not wait for it.
    fn release(&self, d: &Delivery<'_>) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Erases what is stored about a deleted candidate, leaving the tombstone.
    fn purge(
        &self,
        tenant: &str,
        opportunity: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn candidate(
        &self,
        tenant: &str,
        opportunity: &str,
    ) -> impl Future<Output = Result<Option<CandidateView>, StoreError>> + Send;
    fn contact(
        &self,
        tenant: &str,
        contact: &str,
    ) -> impl Future<Output = Result<Option<Contact>, StoreError>> + Send;
}

pub trait TenantStore: Send + Sync {
    fn put_tenant(&self, t: &Tenant) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn tenant(&self, id: &str) -> impl Future<Output = Result<Option<Tenant>, StoreError>> + Send;
    /// Records a status change with its reason (e.g. Lever answered 401).
    fn set_tenant_status(
        &self,
        id: &str,
        status: TenantStatus,
        reason: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes the tenant's OAuth refresh lease for `holder` until `until_ms` (a conditional put: no
    /// lease, or only an expired one). False when another holder has a live lease.
    fn acquire_refresh_lease(
        &self,
        tenant: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Gives the lease back (a conditional delete: only `holder`'s own lease).
    fn release_refresh_lease(
        &self,
        tenant: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A pending OAuth authorization: the `state` Lever sends back to the callback, bound to the
/// tenant and environment it was issued for. Stored under a hash of the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthPending {
    /// Hex SHA-256 of the state.
    pub state_hash: String,
    pub tenant_id: String,
    pub environment: String,
    pub expires_at: i64,
}

impl<S: WebhookStore + ?Sized> WebhookStore for std::sync::Arc<S> {
    fn claim_apply(
        &self,
        d: &Delivery<'_>,
        m: &Mutation,
        event: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        (**self).claim_apply(d, m, event, now_ms)
    }
    fn claim_only(
        &self,
        d: &Delivery<'_>,
        event: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        (**self).claim_only(d, event, now_ms)
    }
    fn take_over(
        &self,
        d: &Delivery<'_>,
        seen_lease: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).take_over(d, seen_lease, now_ms)
    }
    fn complete(&self, d: &Delivery<'_>) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).complete(d)
    }
    fn release(&self, d: &Delivery<'_>) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(d)
    }
    fn purge(
        &self,
        tenant: &str,
        opportunity: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).purge(tenant, opportunity)
    }
    fn candidate(
        &self,
        tenant: &str,
        opportunity: &str,
    ) -> impl Future<Output = Result<Option<CandidateView>, StoreError>> + Send {
        (**self).candidate(tenant, opportunity)
    }
    fn contact(
        &self,
        tenant: &str,
        contact: &str,
    ) -> impl Future<Output = Result<Option<Contact>, StoreError>> + Send {
        (**self).contact(tenant, contact)
    }
}

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
    /// Kept until the tenant reconnects; `command` is the command as received.
    Parked {
        error: String,
        command: Value,
    },
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
    fn end_command(
        &self,
        tenant: &str,
        id: &str,
        end: &CommandEnd,
        was_parked: bool,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn command(
        &self,
        tenant: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<CommandRecord>, StoreError>> + Send;
    /// The tenant's parked commands, as received.
    fn parked(&self, tenant: &str) -> impl Future<Output = Result<Vec<Value>, StoreError>> + Send;
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

/// One text message of a conversation with a candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub tenant_id: String,
    pub opportunity_id: String,
    pub message_id: String,
    /// `inbound` (from the candidate) or `outbound`.
    pub direction: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub sent_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
}

/// A conversation: one candidate (opportunity) of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationKey {
    pub tenant: String,
    pub opportunity: String,
}

/// The messages one transcript note holds, fixed before it is posted so that a resumed flush
/// posts (or finds) exactly the same note.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub id: String,
    pub messages: Vec<Message>,
    /// An earlier run fixed this batch and may have posted it: look before posting.
    pub resumed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ingested {
    Stored,
    /// This message id was stored before.
    Duplicate,
    /// The candidate was deleted: the message is not kept.
    CandidateDeleted,
}

pub trait TranscriptStore: Send + Sync {
    /// Stores a message once and moves the conversation's flush time to its newest message plus `quiet_ms`.
    fn add_message(
        &self,
        m: &Message,
        quiet_ms: i64,
    ) -> impl Future<Output = Result<Ingested, StoreError>> + Send;
    /// Conversations due at `now_ms`, oldest first, at most `limit` (from an index: no Scan).
    fn due(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ConversationKey>, StoreError>> + Send;
    /// Claims a due conversation and fixes its batch (or resumes the one fixed before); `None` when
    /// it is not due or another run holds it. `batch_id` names a new batch.
    fn claim_batch(
        &self,
        key: &ConversationKey,
        batch_id: &str,
        now_ms: i64,
        lease_ms: i64,
        max_messages: usize,
    ) -> impl Future<Output = Result<Option<Batch>, StoreError>> + Send;
    /// Marks exactly the batch's messages flushed and releases the conversation.
    fn finish_batch(
        &self,
        key: &ConversationKey,
        batch: &Batch,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Gives the conversation back (the batch stays fixed) to be tried at `retry_at_ms`.
    fn release_batch(
        &self,
        key: &ConversationKey,
        error: &str,
        retry_at_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Messages not yet in a posted transcript (status figures).
    fn waiting(
        &self,
        key: &ConversationKey,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

/// What the status page shows of one webhook kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookStat {
    /// Deliveries accepted in the window asked for.
    pub deliveries: u64,
    pub last_received_at: Option<i64>,
    pub last_rejected_at: Option<i64>,
    pub last_rejection: Option<String>,
}

/// A tenant's running figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantStats {
    pub pushes_done: i64,
    pub pushes_failed: i64,
    pub pushes_parked: i64,
    pub last_push_error: Option<String>,
    pub last_push_error_at: Option<i64>,
    pub transcript_messages_waiting: i64,
}

/// Figures for the status page. Deliveries are counted from their dedup records (an index, no
/// extra write on the webhook path); the rest are atomic counters.
pub trait StatsStore: Send + Sync {
    fn record_rejection(
        &self,
        tenant: &str,
        kind: EventKind,
        reason: &str,
        at_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn webhook_stat(
        &self,
        tenant: &str,
        kind: EventKind,
        since_ms: i64,
    ) -> impl Future<Output = Result<WebhookStat, StoreError>> + Send;
    fn count_push(
        &self,
        tenant: &str,
        end: &CommandEnd,
        at_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn add_waiting(
        &self,
        tenant: &str,
        delta: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn tenant_stats(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<TenantStats, StoreError>> + Send;
}

impl<S: StatsStore + ?Sized> StatsStore for std::sync::Arc<S> {
    fn record_rejection(
        &self,
        tenant: &str,
        kind: EventKind,
        reason: &str,
        at_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).record_rejection(tenant, kind, reason, at_ms)
    }
    fn webhook_stat(
        &self,
        tenant: &str,
        kind: EventKind,
        since_ms: i64,
    ) -> impl Future<Output = Result<WebhookStat, StoreError>> + Send {
        (**self).webhook_stat(tenant, kind, since_ms)
    }
    fn count_push(
        &self,
        tenant: &str,
        end: &CommandEnd,
        at_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).count_push(tenant, end, at_ms)
    }
    fn add_waiting(
        &self,
        tenant: &str,
        delta: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).add_waiting(tenant, delta)
    }
    fn tenant_stats(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<TenantStats, StoreError>> + Send {
        (**self).tenant_stats(tenant)
    }
}

/// A Lever posting as the last roles sync saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostingRecord {
    pub id: String,
    pub title: String,
    /// Lever's state (`published`, `internal`, `closed`, `draft`, `pending`, `rejected`).
    pub state: Option<String>,
    pub confidential: bool,
    /// Not returned by the last sync: deleted in Lever, or no longer visible to the key.
    pub gone: bool,
    pub synced_at: i64,
}

/// What the onboarding API keeps besides the tenant record: the owner, postings and the vendor's
/// role mapping, and the erasure of a tenant.
pub trait AdminStore: SyncStore + Send + Sync {
    /// Sets the owner on an existing tenant record (an update, so a concurrent status change is
    /// not overwritten). False when the tenant does not exist.
    fn set_owner(
        &self,
        tenant: &str,
        user: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Creates or replaces these postings.
    fn put_postings(
        &self,
        tenant: &str,
        postings: &[PostingRecord],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn postings(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<PostingRecord>, StoreError>> + Send;
    /// Maps a vendor role to a posting (`None` removes the mapping).
    fn set_role(
        &self,
        tenant: &str,
        role: &str,
        posting: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// (role id, posting id), by role id.
    fn roles(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
    /// Deletes what can be reached by key: the tenant record, its figures and rejections, postings,
    /// roles, parked commands and the dedup records of its deliveries (from the deliveries index).
    /// Candidate views, contacts and command records are keyed per opportunity/command and cannot
    /// be enumerated without an index; they expire or stay orphaned (no Scan).
    fn delete_tenant_data(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stores a new OAuth state (a conditional put: false if that state exists already).
    fn put_oauth_state(
        &self,
        pending: &OAuthPending,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Consumes a state (a conditional delete: it must exist and not have expired). `None` for an
    /// unknown, used or expired state; a second take of the same state always answers `None`.
    fn take_oauth_state(
        &self,
        state_hash: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<OAuthPending>, StoreError>> + Send;
}

impl<S: AdminStore + ?Sized> AdminStore for std::sync::Arc<S> {
    fn set_owner(
        &self,
        tenant: &str,
        user: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).set_owner(tenant, user)
    }
    fn put_postings(
        &self,
        tenant: &str,
        postings: &[PostingRecord],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).put_postings(tenant, postings)
    }
    fn postings(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<PostingRecord>, StoreError>> + Send {
        (**self).postings(tenant)
    }
    fn set_role(
        &self,
        tenant: &str,
        role: &str,
        posting: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).set_role(tenant, role, posting)
    }
    fn roles(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send {
        (**self).roles(tenant)
    }
    fn delete_tenant_data(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete_tenant_data(tenant)
    }
    fn put_oauth_state(
        &self,
        pending: &OAuthPending,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).put_oauth_state(pending)
    }
    fn take_oauth_state(
        &self,
        state_hash: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<OAuthPending>, StoreError>> + Send {
        (**self).take_oauth_state(state_hash, now_ms)
    }
}

/// What a sync compares a Lever snapshot with: the candidate item alone, so a page of 100 is one
/// batched read. Applications are their ids (kept in the candidate item for this).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncedView {
    pub stage: Option<Stage>,
    pub archived: Option<Archived>,
    /// When the archive state was set (Lever's time), if ever.
    pub archive_at: Option<i64>,
    pub hired_at: Option<i64>,
    pub contact_id: Option<String>,
    pub application_ids: std::collections::BTreeSet<String>,
    pub deleted_at: Option<i64>,
    /// The sync page that last wrote the candidate, and the vendor events it wrote with it.
    pub mark: Option<String>,
    pub owed_events: Option<String>,
}

/// One candidate's changes from a sync, written together with the events they owe (so a run
/// killed before publishing can publish them when it resumes the page).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncWrite {
    pub opportunity: String,
    /// Each change with its Lever time; the same guards as webhooks (older never wins).
    pub changes: Vec<(Mutation, i64)>,
    pub mark: String,
    /// JSON array of the vendor events.
    pub events: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SyncMode {
    /// Every opportunity, once, when a tenant connects or on demand.
    #[default]
    Backfill,
    /// What changed since the watermark, on a schedule.
    Reconcile,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SyncPhase {
    #[default]
    Opportunities,
    /// Reconciliation only: candidates deleted since the watermark.
    Deleted,
}

/// A tenant's sync: the job in progress (or the last one) and the reconciliation watermark.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncJob {
    pub tenant: String,
    /// Changes with every new job: a run holding an older id stops at its next checkpoint.
    pub job_id: String,
    pub mode: SyncMode,
    /// Reconciliation runs of this job (each one's writes are marked apart).
    pub run: i64,
    pub phase: SyncPhase,
    /// Lever's paging token of the next page (`None`: the first page).
    pub position: Option<String>,
    /// Pages finished in this job.
    pub pages: i64,
    /// Opportunities read / written in this job.
    pub done: i64,
    pub changed: i64,
    /// Field changes written in this job's current run.
    pub changes: i64,
    /// Backfill: estimated from how far the pages reached into the account's creation dates.
    pub estimated_total: Option<i64>,
    pub newest_created_at: Option<i64>,
    pub oldest_created_at: Option<i64>,
    pub started_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// Reconciliation: the `updated_at_start` of this run.
    pub since: Option<i64>,
    /// Where the next reconciliation starts (Lever time, ms).
    pub watermark: Option<i64>,
    /// Changes recovered that no webhook delivered: in all runs, and in the last finished one.
    pub recovered_total: i64,
    pub recovered_last: i64,
    pub last_error: Option<String>,
    /// When the job should run next (`None`: not scheduled).
    pub due_at: Option<i64>,
    /// Until when a run holds it.
    pub lease_until: i64,
}

pub trait SyncStore: Send + Sync {
    /// The candidates of these opportunities as a sync sees them (absent ones are left out).
    fn sync_views(
        &self,
        tenant: &str,
        opportunities: &[String],
    ) -> impl Future<Output = Result<std::collections::HashMap<String, SyncedView>, StoreError>> + Send;
    /// Writes one candidate's changes, each guarded by its time. False when the candidate changed
    /// since it was read (a newer webhook, a deletion): read it again and recompute.
    fn write_sync(
        &self,
        tenant: &str,
        w: &SyncWrite,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn sync_job(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<SyncJob>, StoreError>> + Send;
    /// Writes a new job, replacing whatever is there (a run in progress stops at its checkpoint).
    fn put_sync_job(&self, job: &SyncJob) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Leases the tenant's job when it is due and nobody holds it; `None` otherwise.
    fn claim_sync_job(
        &self,
        tenant: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<SyncJob>, StoreError>> + Send;
    /// Saves a checkpoint of the job `job.job_id`, holding the lease `held_until` (as claimed).
    /// False when the job was replaced or the lease taken over: the caller stops.
    fn save_sync_job(
        &self,
        job: &SyncJob,
        held_until: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Tenants whose job is due (an index; no Scan).
    fn due_sync_jobs(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

impl<S: SyncStore + ?Sized> SyncStore for std::sync::Arc<S> {
    fn sync_views(
        &self,
        tenant: &str,
        opportunities: &[String],
    ) -> impl Future<Output = Result<std::collections::HashMap<String, SyncedView>, StoreError>> + Send
    {
        (**self).sync_views(tenant, opportunities)
    }
    fn write_sync(
        &self,
        tenant: &str,
        w: &SyncWrite,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).write_sync(tenant, w, now_ms)
    }
    fn sync_job(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<SyncJob>, StoreError>> + Send {
        (**self).sync_job(tenant)
    }
    fn put_sync_job(&self, job: &SyncJob) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).put_sync_job(job)
    }
    fn claim_sync_job(
        &self,
        tenant: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<SyncJob>, StoreError>> + Send {
        (**self).claim_sync_job(tenant, until_ms, now_ms)
    }
    fn save_sync_job(
        &self,
        job: &SyncJob,
        held_until: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).save_sync_job(job, held_until)
    }
    fn due_sync_jobs(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        (**self).due_sync_jobs(now_ms, limit)
    }
}
