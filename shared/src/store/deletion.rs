//! Deletions waiting for Lever's word. Lever signs a webhook's token and time, never its data, so
//! a `candidateDeleted` is only a claim until Lever says the opportunity is gone: the receiver
//! records it as pending (its dedup record, in the sparse `due` index, holding the event it owes),
//! and the sync asks Lever, then tombstones and publishes, or counts it as unconfirmed.

use super::{Delivery, Recorded, StoreError};
use crate::events::VendorEvent;
use std::future::Future;

/// A `candidateDeleted` delivery not yet confirmed with Lever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDeletion {
    pub tenant: String,
    /// The delivery's token (its dedup record's key).
    pub token: String,
    pub opportunity: String,
}

/// What confirming a deletion wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionOutcome {
    /// The candidate is tombstoned and the event owed is in the outbox (now, or by an earlier run
    /// that died before settling).
    Confirmed,
    /// The candidate was tombstoned before (by a sync that saw Lever's deleted list, which sent its
    /// own event): no second event.
    AlreadyDeleted,
}

pub trait DeletionStore: Send + Sync {
    /// Records a signed `candidateDeleted` (its dedup record, holding `event` until confirmed) as
    /// due for confirmation now: `Applied`, or `Duplicate` when its token was recorded before.
    fn record_deletion(
        &self,
        d: &Delivery<'_>,
        opportunity: &str,
        event: &VendorEvent,
        now_ms: i64,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;
    /// Deletions due for confirmation at `now_ms`, oldest first.
    fn due_deletions(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<PendingDeletion>, StoreError>> + Send;
    /// Takes a due deletion for this run until `until_ms` (false: another run has it, or it is
    /// settled), so two runs never ask Lever about it at once.
    fn claim_deletion(
        &self,
        p: &PendingDeletion,
        now_ms: i64,
        until_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Lever says the opportunity is gone: tombstones the candidate and moves the event into the
    /// outbox, in one write. It stays due until [`DeletionStore::settle_deletion`], so a run that
    /// dies before erasing the candidate's data (`WebhookStore::purge`) leaves it to the next.
    fn confirm_deletion(
        &self,
        p: &PendingDeletion,
        now_ms: i64,
    ) -> impl Future<Output = Result<DeletionOutcome, StoreError>> + Send;
    /// Takes a deletion out of the due ones, keeping `how` it ended (`confirmed`, or
    /// `leftToReconciliation` when a 404 cannot prove it: a key without confidential access).
    fn settle_deletion(
        &self,
        p: &PendingDeletion,
        how: &'static str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Lever still has the opportunity: settles the delivery with no effect and counts it on the
    /// tenant's figures (`deletionsUnconfirmed`), once.
    fn reject_deletion(
        &self,
        p: &PendingDeletion,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Lever could not be asked: due again at `due_at_ms`.
    fn defer_deletion(
        &self,
        p: &PendingDeletion,
        due_at_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
