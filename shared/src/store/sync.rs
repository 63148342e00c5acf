//! The sync aggregate: a tenant's backfill or reconciliation job and what a sync compares and
//! writes for each candidate.

use super::{Stage, StoreError};
use crate::webhook::{Archived, Mutation};
use serde::{Deserialize, Serialize};
use std::future::Future;

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
    /// The sync page that last wrote the candidate, and how many vendor events it wrote with it.
    pub mark: Option<String>,
    pub marked_events: usize,
}

/// One candidate's changes from a sync, written together with the events they owe (in the
/// candidate's outbox), and the page that wrote them (so a resumed page does not write them again).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncWrite {
    pub opportunity: String,
    /// Each change with its Lever time; the same guards as webhooks (older never wins).
    pub changes: Vec<(Mutation, i64)>,
    pub mark: String,
    pub events: Vec<crate::events::VendorEvent>,
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
    /// Lever refused `confidentiality=all` (the key lacks confidential access): the runs list only
    /// what the key may see. The last answer a run established, kept until one establishes a new
    /// one (each run asks again at its first page, in case access was granted or taken away).
    pub non_confidential: bool,
    /// Whether a run of this job established `non_confidential`: until one has, a 404 proves no
    /// deletion (the key may be one Lever hides confidential candidates from).
    pub confidential_known: bool,
    /// Whether this run has asked Lever for confidential candidates yet (its first page does).
    pub confidential_asked: bool,
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
    /// `event` (a finished backfill's) goes to the outbox with the job.
    fn save_sync_job(
        &self,
        job: &SyncJob,
        held_until: i64,
        event: Option<&crate::events::VendorEvent>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Tenants whose job is due (an index; no Scan).
    fn due_sync_jobs(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}
