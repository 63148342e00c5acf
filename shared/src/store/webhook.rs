//! The webhook aggregate: a delivery's dedup record (which carries its vendor event to the outbox)
//! and the vendor's view of each candidate that deliveries (and syncs) change.

use super::StoreError;
use crate::events::VendorEvent;
use crate::webhook::{Archived, EventKind, MAX_AGE_MS, Mutation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::future::Future;

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
        expiry_secs(self.triggered_at.max(now_ms))
    }
}

/// Epoch seconds after which what was written at `at_ms` on Lever's behalf (a dedup record, a
/// tombstone, a sync's mark) may go: one day past the window in which a delivery is accepted.
pub fn expiry_secs(at_ms: i64) -> i64 {
    (at_ms + MAX_AGE_MS + 24 * 3600 * 1000) / 1000
}

/// What became of a delivery written to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Its dedup record, holding its event for the outbox, and its change were written together.
    Applied,
    /// Newer state is in place (or the candidate is deleted): nothing was written.
    Stale,
    /// The delivery was recorded before: nothing was written.
    Duplicate,
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

pub trait WebhookStore: Send + Sync {
    /// Records the delivery (its dedup record, holding `event` for the outbox) and applies its
    /// change, in one atomic write. Writes nothing when it was recorded before (`Duplicate`) or
    /// newer state is in place (`Stale`).
    fn apply_delivery(
        &self,
        d: &Delivery<'_>,
        m: &Mutation,
        event: &VendorEvent,
        now_ms: i64,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;
    /// Records the delivery alone (a stale one, with its event; a test or ignored one, with none),
    /// so its token cannot be used again: `Applied` or `Duplicate`.
    fn record_delivery(
        &self,
        d: &Delivery<'_>,
        event: Option<&VendorEvent>,
        now_ms: i64,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;
    /// Erases what is stored about a deleted candidate, leaving the tombstone; does nothing to a
    /// candidate that is not tombstoned.
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
