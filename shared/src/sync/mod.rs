//! Keeping the vendor's view equal to Lever when webhooks are not enough: the initial backfill of a
//! tenant's opportunities, and the scheduled reconciliation of what changed since a watermark.
//!
//! One job item per tenant (`T#<tenant>`, `#SYNC`) holds the job in progress and the watermark;
//! due jobs are found through the sparse `due` index (no Scan). A run leases the job, walks Lever's
//! pages within the tenant's rate limit and checkpoints the paging position after every page, so a
//! run killed anywhere resumes at the page it was on. Candidates are written with the same guards
//! as webhooks (Lever's own times: a newer webhook is never overwritten), and each candidate's
//! write carries the page's mark and the events it owes: a resumed page publishes what the dead run
//! wrote but may not have published, and writes nothing twice. A job that runs out of time is left
//! due at once: the next scheduled run (every minute) continues it.

pub mod deletions;
mod progress;
pub mod snapshot;

pub use progress::SyncStatus;

use crate::clock::Clock;
use crate::events::VendorEvent;
use crate::lever::calls::Lever;
use crate::lever::{LeverApi, LeverError, LeverRequest};
use crate::secrets::SecretStore;
use crate::store::{
    CommandStore, DeletionStore, StoreError, SyncJob, SyncMode, SyncPhase, SyncStore, SyncWrite,
    TenantStatus, TenantStore, WebhookStore,
};
use crate::tenant::{TenantError, Tenants};
use crate::webhook::Mutation;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use snapshot::{Snapshot, deleted_event, diff};
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Time between reconciliations of a tenant (`SYNC_INTERVAL_MINUTES`, default 60).
    pub interval_ms: i64,
    /// How far before the last run's start the next one asks from, for clock skew and Lever's own
    /// indexing delay.
    pub overlap_ms: i64,
    /// How long a run holds a job past its invocation's deadline (a dead run's job waits this long).
    pub lease_ms: i64,
    /// A failed run is tried again after this.
    pub retry_after_ms: i64,
    /// Tenants synced at once (each paced by its own Lever rate limit).
    pub tenants_at_once: usize,
    /// Candidate writes in flight at once within a page.
    pub writes_at_once: usize,
    /// Stop starting pages this long before the deadline.
    pub margin: Duration,
    /// Parked commands older than this many days end as failed (`PARKED_MAX_DAYS`).
    pub parked_max_days: i64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            interval_ms: 60 * 60_000,
            overlap_ms: 5 * 60_000,
            lease_ms: 60_000,
            retry_after_ms: 60_000,
            tenants_at_once: 32,
            writes_at_once: 16,
            margin: Duration::from_secs(5),
            parked_max_days: crate::push::parked::DEFAULT_MAX_PARKED_DAYS,
        }
    }
}

/// What one run did, over every tenant it ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub tenants: usize,
    pub pages: usize,
    pub opportunities: usize,
    pub changed: usize,
    pub recovered: usize,
    pub events: usize,
    /// Jobs left unfinished at the deadline (continued by the next run).
    pub continued: usize,
    pub failed: usize,
    /// Parked commands failed for waiting too long, and those within two days of it.
    pub parked_expired: usize,
    pub parked_near_expiry: usize,
    /// `candidateDeleted` deliveries Lever confirmed, did not confirm, and could not be asked about.
    pub deletions_confirmed: usize,
    pub deletions_unconfirmed: usize,
    pub deletions_deferred: usize,
}

/// How a job's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Finished,
    OutOfTime,
    /// Another run took the job over or a new job replaced it.
    Lost,
    Failed,
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lever(#[from] LeverError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
}

fn random_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// A new backfill of `tenant`, due now. It replaces whatever job is there, keeping the figures of
/// recovered changes.
pub fn new_backfill(tenant: &str, previous: Option<&SyncJob>, now_ms: i64) -> SyncJob {
    SyncJob {
        tenant: tenant.to_string(),
        job_id: random_id(),
        mode: SyncMode::Backfill,
        started_at: now_ms,
        updated_at: now_ms,
        due_at: Some(now_ms),
        recovered_total: previous.map_or(0, |p| p.recovered_total),
        recovered_last: previous.map_or(0, |p| p.recovered_last),
        ..Default::default()
    }
}

pub struct Syncer<L, S, K, C> {
    pub lever: L,
    pub store: S,
    pub tenants: Tenants<S, K, C>,
    pub clock: C,
    pub config: SyncConfig,
}

impl<
    L: LeverApi,
    S: SyncStore + WebhookStore + TenantStore + CommandStore + DeletionStore + Clone,
    K: SecretStore,
    C: Clock + Clone,
> Syncer<L, S, K, C>
{
    pub fn new(lever: L, store: S, secrets: K, clock: C, config: SyncConfig) -> Self {
        let tenants = Tenants::new(store.clone(), secrets, clock.clone(), 60_000);
        Syncer {
            lever,
            store,
            tenants,
            clock,
            config,
        }
    }

    /// Starts a backfill of `tenant` now (the next scheduled run picks it up).
    pub async fn start_backfill(&self, tenant: &str) -> Result<SyncJob, StoreError> {
        let previous = self.store.sync_job(tenant).await?;
        let job = new_backfill(tenant, previous.as_ref(), self.clock.now_ms());
        self.store.put_sync_job(&job).await?;
        Ok(job)
    }

    /// Runs every due job it can before `deadline`, tenants in parallel.
    pub async fn run(&self, deadline: Instant) -> SyncReport {
        let margin = self
            .config
            .margin
            .min(deadline.saturating_duration_since(Instant::now()) / 4);
        let deletions = self.confirm_deletions(deadline, margin).await;
        let due = match self.store.due_sync_jobs(self.clock.now_ms(), 1000).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "could not read the due sync jobs");
                return deletions;
            }
        };
        let reports: Vec<SyncReport> = futures::stream::iter(due)
            .map(|tenant| async move { self.run_tenant(&tenant, deadline, margin).await })
            .buffer_unordered(self.config.tenants_at_once)
            .collect()
            .await;
        let mut total = deletions;
        for r in reports {
            total.tenants += r.tenants;
            total.pages += r.pages;
            total.opportunities += r.opportunities;
            total.changed += r.changed;
            total.recovered += r.recovered;
            total.events += r.events;
            total.continued += r.continued;
            total.failed += r.failed;
            total.parked_expired += r.parked_expired;
            total.parked_near_expiry += r.parked_near_expiry;
        }
        metrics::counter!("ChangesRecovered").increment(total.recovered as u64);
        metrics::counter!("ParkedExpired").increment(total.parked_expired as u64);
        metrics::gauge!("ParkedNearExpiry").set(total.parked_near_expiry as f64);
        metrics::counter!("SyncCandidatesWritten").increment(total.changed as u64);
        metrics::counter!("DeletionsConfirmed").increment(total.deletions_confirmed as u64);
        metrics::counter!("DeletionsUnconfirmed").increment(total.deletions_unconfirmed as u64);
        tracing::info!(?total, "sync run");
        total
    }

    /// Runs the tenant's job if it is due and free.
    pub async fn run_tenant(
        &self,
        tenant: &str,
        deadline: Instant,
        margin: Duration,
    ) -> SyncReport {
        let mut report = SyncReport::default();
        // A job started now could not end (nor its tenant's OAuth refresh finish) before the
        // invocation does: it stays due for the next run, unclaimed.
        if Instant::now() + margin + crate::tenant::REFRESH_MIN >= deadline {
            return report;
        }
        let now = self.clock.now_ms();
        let until = now
            + deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as i64
            + self.config.lease_ms;
        let job = match self.store.claim_sync_job(tenant, until, now).await {
            Ok(Some(job)) => job,
            Ok(None) => return report,
            Err(e) => {
                tracing::warn!(tenant, error = %e, "could not claim the sync job");
                return report;
            }
        };
        report.tenants = 1;
        // Each tenant's parked commands are checked as its job runs (hourly, or each minute while
        // it is disconnected): no scan of the table.
        match crate::push::parked::expire(&self.store, tenant, self.config.parked_max_days, now)
            .await
        {
            Ok(e) => {
                report.parked_expired = e.expired;
                report.parked_near_expiry = e.near_expiry;
            }
            Err(e) => tracing::warn!(tenant, error = %e, "could not check the parked commands"),
        }
        let mut job = job;
        let mut held = until;
        if job.finished_at.is_some() {
            // The last job is done: this is the next reconciliation.
            job.mode = SyncMode::Reconcile;
            job.phase = SyncPhase::Opportunities;
            job.position = None;
            job.since = job.watermark;
            job.pages = 0;
            job.done = 0;
            job.changed = 0;
            job.changes = 0;
            job.estimated_total = None;
            job.started_at = now;
            job.finished_at = None;
            job.last_error = None;
            // The last known answer stays until this run's first page establishes a new one.
            job.confidential_asked = false;
            job.run += 1;
        }
        let mut retry_after = self.config.retry_after_ms;
        let ended = match self
            .run_job(&mut job, &mut held, deadline, margin, &mut report)
            .await
        {
            Ok(ended) => ended,
            Err(e) => {
                // What only the customer can fix (a permission, a key) is not retried every minute.
                if let RunError::Lever(
                    LeverError::Unauthorized(_)
                    | LeverError::Forbidden(_)
                    | LeverError::NotFound(_)
                    | LeverError::Rejected { .. },
                ) = e
                {
                    retry_after = self.config.interval_ms;
                }
                tracing::warn!(tenant, error = %e, "sync run failed; tried again later");
                job.last_error = Some(e.to_string());
                if let RunError::Lever(LeverError::Unauthorized(_)) = e
                    && let Err(e) = self
                        .tenants
                        .disconnect(tenant, "Lever rejected the credentials (401) during a sync")
                        .await
                {
                    tracing::warn!(tenant, error = %e, "could not record the disconnection");
                }
                Ended::Failed
            }
        };
        let now = self.clock.now_ms();
        match ended {
            Ended::Lost => return report,
            Ended::Finished => {
                job.finished_at = Some(now);
                job.estimated_total = Some(job.done);
                // Changes made while this run read are found by the next one.
                job.watermark = Some(job.started_at - self.config.overlap_ms);
                if job.mode == SyncMode::Reconcile {
                    job.recovered_last = job.changes;
                }
                job.due_at = Some(now + self.config.interval_ms);
                job.last_error = None;
            }
            Ended::OutOfTime => {
                report.continued = 1;
                job.due_at = Some(now);
            }
            Ended::Failed => {
                report.failed = 1;
                job.due_at = Some(now + retry_after);
            }
        }
        job.updated_at = now;
        job.lease_until = 0;
        let event = (ended == Ended::Finished && job.mode == SyncMode::Backfill)
            .then(|| crate::events::backfill_finished(&job, now));
        if let Err(e) = self.store.save_sync_job(&job, held, event.as_ref()).await {
            tracing::warn!(tenant, error = %e, "could not save the sync job; its lease runs out");
        }
        report
    }

    async fn run_job(
        &self,
        job: &mut SyncJob,
        held: &mut i64,
        deadline: Instant,
        margin: Duration,
        report: &mut SyncReport,
    ) -> Result<Ended, RunError> {
        let Some(ctx) = self.tenants.context(&job.tenant, deadline).await? else {
            job.last_error = Some("unknown tenant or no credentials".into());
            return Ok(Ended::Failed);
        };
        if ctx.tenant.status == TenantStatus::Disconnected {
            job.last_error = Some("the tenant is disconnected".into());
            return Ok(Ended::Failed);
        }
        let lever = Lever::new(&self.lever, &ctx.account, deadline);
        let hired: HashSet<String> = lever
            .archive_reasons()
            .await?
            .into_iter()
            .filter(|r| r.kind.as_deref() == Some("hired"))
            .map(|r| r.id)
            .collect();
        loop {
            if Instant::now() + margin >= deadline {
                return Ok(Ended::OutOfTime);
            }
            let finished_phase = match job.phase {
                SyncPhase::Opportunities => {
                    self.opportunities_page(&lever, job, &hired, report).await?
                }
                SyncPhase::Deleted => self.deleted_page(&lever, job, report).await?,
            };
            let finished = match (finished_phase, job.mode, job.phase) {
                (false, ..) => false,
                (true, SyncMode::Reconcile, SyncPhase::Opportunities) => {
                    job.phase = SyncPhase::Deleted;
                    job.position = None;
                    false
                }
                (true, ..) => true,
            };
            job.pages += 1;
            report.pages += 1;
            job.updated_at = self.clock.now_ms();
            if finished {
                return Ok(Ended::Finished);
            }
            // The checkpoint, which also extends the lease.
            let until = job.updated_at
                + deadline
                    .saturating_duration_since(Instant::now())
                    .as_millis() as i64
                + self.config.lease_ms;
            job.lease_until = until;
            if !self.store.save_sync_job(job, *held, None).await? {
                return Ok(Ended::Lost);
            }
            *held = until;
        }
    }

    /// The page at the job's position and the position after it. A cursor Lever refuses (400:
    /// expired, or from other filters) starts the walk again: writes are guarded and marked, so
    /// reading pages twice costs requests, never a wrong view or a repeated event.
    async fn page(
        lever: &Lever<'_, L>,
        job: &mut SyncJob,
        req: LeverRequest,
    ) -> Result<(Vec<Value>, Option<String>), LeverError> {
        let read = async |position: Option<String>| {
            let mut pages = lever.pages_from(req.clone(), position);
            let items = pages.next_page().await?.unwrap_or_default();
            Ok((items, pages.position().map(str::to_string)))
        };
        match read(job.position.clone()).await {
            Err(LeverError::Rejected {
                status: 400,
                message,
                ..
            }) if job.position.is_some() => {
                tracing::warn!(
                    tenant = job.tenant,
                    message,
                    "Lever refused the paging cursor: the walk starts again"
                );
                job.position = None;
                if job.phase == SyncPhase::Opportunities {
                    job.done = 0;
                }
                read(None).await
            }
            page => page,
        }
    }

    fn mark(job: &SyncJob) -> String {
        format!("{}/{}/{}", job.job_id, job.run, job.pages)
    }

    /// One page of opportunities; true when it was the last.
    async fn opportunities_page(
        &self,
        lever: &Lever<'_, L>,
        job: &mut SyncJob,
        hired: &HashSet<String>,
        report: &mut SyncReport,
    ) -> Result<bool, RunError> {
        let (items, next) = loop {
            // A run's first page asks for confidential candidates again; later pages keep its answer.
            let all = !job.confidential_asked || !job.non_confidential;
            let mut req = confidentiality(
                LeverRequest::get("/opportunities").query("expand", "applications"),
                all,
            );
            if job.mode == SyncMode::Reconcile
                && let Some(since) = job.since
            {
                req = req.query("updated_at_start", since.to_string());
            }
            match Self::page(lever, job, req).await {
                Err(LeverError::Forbidden(why)) if all => {
                    tracing::warn!(
                        tenant = job.tenant,
                        why,
                        "no confidential access: syncing the candidates the key may see"
                    );
                    job.non_confidential = true;
                    job.confidential_known = true;
                    job.confidential_asked = true;
                    // Lever binds a cursor to its filters: the walk starts again without them.
                    job.position = None;
                    job.done = 0;
                }
                page => {
                    let page = page?;
                    if all {
                        job.non_confidential = false;
                        job.confidential_known = true;
                        job.confidential_asked = true;
                    }
                    break page;
                }
            }
        };
        let snaps: Vec<Snapshot> = items.iter().filter_map(Snapshot::parse).collect();
        let mark = Self::mark(job);
        let written = self
            .write_page(job, &mark, &snaps, |snap, view| {
                let d = diff(
                    &job.tenant,
                    &format!("{}/sync/{}/{}/{}", job.tenant, job.job_id, job.run, snap.id),
                    job.mode,
                    snap,
                    view,
                    hired,
                );
                (d.changes, d.events)
            })
            .await?;
        job.done += snaps.len() as i64;
        job.changed += written.candidates as i64;
        job.changes += written.changes as i64;
        report.opportunities += snaps.len();
        report.changed += written.candidates;
        report.events += written.events;
        if job.mode == SyncMode::Reconcile {
            job.recovered_total += written.changes as i64;
            report.recovered += written.changes;
        }
        if job.mode == SyncMode::Backfill {
            self.estimate(lever, job, &snaps, next.is_none()).await;
        }
        job.position = next;
        Ok(job.position.is_none())
    }

    /// One page of candidates deleted since the watermark; true when it was the last.
    async fn deleted_page(
        &self,
        lever: &Lever<'_, L>,
        job: &mut SyncJob,
        report: &mut SyncReport,
    ) -> Result<bool, RunError> {
        // UNCERTAIN (lever-api.md): item fields; `id` or `opportunityId`, and `deletedAt`.
        let mut req = LeverRequest::get("/opportunities/deleted");
        if let Some(since) = job.since {
            req = req.query("deleted_at_start", since.to_string());
        }
        let (items, next) = Self::page(lever, job, req).await?;
        let now = self.clock.now_ms();
        let deleted: Vec<(String, i64)> = items
            .iter()
            .filter_map(|d| {
                let id = d["id"].as_str().or(d["opportunityId"].as_str())?;
                Some((id.to_string(), d["deletedAt"].as_i64().unwrap_or(now)))
            })
            .collect();
        let snaps: Vec<Snapshot> = deleted
            .iter()
            .map(|(id, at)| Snapshot {
                id: id.clone(),
                stage: None,
                stage_at: *at,
                archived: None,
                contact: None,
                applications: Vec::new(),
                created_at: *at,
                updated_at: *at,
            })
            .collect();
        let mark = Self::mark(job);
        let written = self
            .write_page(job, &mark, &snaps, |snap, view| {
                // Only candidates the vendor knows, and not deleted already.
                if view.is_none_or(|v| v.deleted_at.is_some()) {
                    return (Vec::new(), Vec::new());
                }
                let m = Mutation::Deleted {
                    opportunity: snap.id.clone(),
                };
                let id = format!(
                    "{}/sync/{}/{}/{}/deleted",
                    job.tenant, job.job_id, job.run, snap.id
                );
                let event = deleted_event(&job.tenant, &id, &snap.id, snap.updated_at);
                (vec![(m, snap.updated_at)], vec![event])
            })
            .await?;
        // Written: now erase them, as the webhook does.
        for opp in &written.deleted {
            self.store.purge(&job.tenant, opp).await?;
        }
        job.changed += written.candidates as i64;
        job.changes += written.changes as i64;
        job.recovered_total += written.changes as i64;
        report.changed += written.candidates;
        report.recovered += written.changes;
        report.events += written.events;
        job.position = next;
        Ok(job.position.is_none())
    }

    /// Reads the page's candidates in one batch, writes each one's differences (again from a fresh
    /// read when a webhook changed it meanwhile), then publishes the events the page owes.
    async fn write_page<F>(
        &self,
        job: &SyncJob,
        mark: &str,
        snaps: &[Snapshot],
        differ: F,
    ) -> Result<Written, RunError>
    where
        F: Fn(
                &Snapshot,
                Option<&crate::store::SyncedView>,
            ) -> (Vec<(Mutation, i64)>, Vec<VendorEvent>)
            + Sync,
    {
        let tenant = job.tenant.as_str();
        let ids: Vec<String> = snaps.iter().map(|s| s.id.clone()).collect();
        let views = self.store.sync_views(tenant, &ids).await?;
        let differ = &differ;
        let views = &views;
        let results: Vec<Result<One, RunError>> = futures::stream::iter(snaps)
            .map(|snap| async move {
                let mut view = views.get(&snap.id).cloned();
                for _ in 0..5 {
                    if let Some(v) = &view
                        && v.mark.as_deref() == Some(mark)
                    {
                        // Written by a run of this page that died, events and all (the outbox
                        // publishes them): not written again.
                        return Ok(One {
                            opportunity: snap.id.clone(),
                            changes: v.marked_events,
                            events: v.marked_events,
                            deleted: v.deleted_at.is_some(),
                        });
                    }
                    let (changes, events) = differ(snap, view.as_ref());
                    if changes.is_empty() {
                        return Ok(One::default());
                    }
                    let w = SyncWrite {
                        opportunity: snap.id.clone(),
                        events,
                        changes,
                        mark: mark.to_string(),
                    };
                    let now = self.clock.now_ms();
                    match self.store.write_sync(tenant, &w, now).await {
                        Ok(true) => {
                            let deleted = w
                                .changes
                                .iter()
                                .any(|(m, _)| matches!(m, Mutation::Deleted { .. }));
                            return Ok(One {
                                opportunity: w.opportunity,
                                changes: w.changes.len(),
                                events: w.events.len(),
                                deleted,
                            });
                        }
                        Ok(false) | Err(StoreError::Contended) => {
                            // A webhook changed the candidate since the read: compare again.
                            view = self
                                .store
                                .sync_views(tenant, std::slice::from_ref(&snap.id))
                                .await?
                                .remove(&snap.id);
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(RunError::Store(StoreError::Contended))
            })
            .buffer_unordered(self.config.writes_at_once)
            .collect()
            .await;
        let mut written = Written::default();
        for r in results {
            let one = r?;
            if one.events == 0 && one.changes == 0 {
                continue;
            }
            written.candidates += 1;
            written.changes += one.changes;
            written.events += one.events;
            if one.deleted {
                written.deleted.push(one.opportunity);
            }
        }
        Ok(written)
    }
}

#[derive(Default)]
struct One {
    opportunity: String,
    changes: usize,
    events: usize,
    deleted: bool,
}

#[derive(Default)]
struct Written {
    /// Candidates written (or found written by a dead run of the page).
    candidates: usize,
    changes: usize,
    events: usize,
    deleted: Vec<String>,
}

/// Asks for confidential candidates too when the key may see them.
fn confidentiality(req: LeverRequest, confidential: bool) -> LeverRequest {
    if confidential {
        req.query("confidentiality", "all")
    } else {
        req
    }
}
