//! Tenant figures the status page shows without extra round trips: deliveries per webhook kind,
//! rejections, push counts and waiting messages.

use super::{CommandEnd, StoreError};
use crate::webhook::EventKind;
use serde::Serialize;
use std::future::Future;

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
    /// `candidateDeleted` deliveries Lever did not confirm (the opportunity was still there).
    pub deletions_unconfirmed: i64,
}

/// Figures for the status page. Deliveries are counted from their dedup records (an index, no
/// extra write on the webhook path); the rest are atomic counters.
pub trait StatsStore: Send + Sync {
    /// Keeps the kind's last rejection (a reason code) unless one was kept in the minute before
    /// `at_ms` (a conditional write: at most one a minute per tenant and kind, across instances).
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
