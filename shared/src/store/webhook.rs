//! The webhook aggregate: a delivery's dedup record and the vendor's view of each candidate that
//! deliveries (and syncs) change.

use super::StoreError;
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
        expiry_secs(self.triggered_at.max(now_ms))
    }
}

/// Epoch seconds after which what was written at `at_ms` on Lever's behalf (a dedup record, a
/// tombstone, a sync's mark) may go: one day past the window in which a delivery is accepted.
pub fn expiry_secs(at_ms: i64) -> i64 {
    (at_ms + MAX_AGE_MS + 24 * 3600 * 1000) / 1000
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
