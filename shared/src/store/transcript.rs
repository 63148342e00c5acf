//! The transcript aggregate: SMS conversations and their messages until they are posted.

use super::StoreError;
use serde::{Deserialize, Serialize};
use std::future::Future;

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
    /// Marks the batch's messages posted; `event` (`transcriptPosted`) goes to the outbox with the
    /// conversation's update, written only by the run that finishes the batch.
    fn finish_batch(
        &self,
        key: &ConversationKey,
        batch: &Batch,
        event: &crate::events::VendorEvent,
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
