//! How far a backfill has come: the estimate of its total (Lever has no count) and the tenant's sync
//! as the status page shows it.

use super::*;

impl<
    L: LeverApi,
    S: SyncStore + WebhookStore + TenantStore + CommandStore + Clone,
    K: SecretStore,
    C: Clock + Clone,
> Syncer<L, S, K, C>
{
    /// Estimates the backfill's total from how far into the account's creation dates the pages
    /// reached (Lever lists newest first and has no count). Where the account's oldest hundred
    /// candidates begin is found once, by bisection on `created_at_end` (about a dozen requests):
    /// a few very old candidates would otherwise stretch the span and inflate the estimate.
    pub(super) async fn estimate(
        &self,
        lever: &Lever<'_, L>,
        job: &mut SyncJob,
        page: &[Snapshot],
        last: bool,
    ) {
        if last {
            job.estimated_total = Some(job.done);
            return;
        }
        let Some(reached) = page.iter().map(|s| s.created_at).min() else {
            return;
        };
        if job.newest_created_at.is_none() {
            job.newest_created_at = page.iter().map(|s| s.created_at).max();
        }
        let newest = job.newest_created_at.unwrap_or(reached);
        // Small accounts are done before an estimate would help.
        if job.oldest_created_at.is_none() && job.pages >= 2 {
            match self
                .tail_start(lever, newest, reached, !job.non_confidential)
                .await
            {
                Ok(oldest) => job.oldest_created_at = Some(oldest),
                Err(e) => {
                    tracing::warn!(tenant = job.tenant, error = %e, "could not estimate the backfill's size");
                    return;
                }
            }
        }
        let tail = job.oldest_created_at.unwrap_or(reached);
        // One more page at least, since this one was not the last.
        let floor = job.done + 1;
        job.estimated_total = Some(if reached > tail {
            let covered = (newest - reached) as f64 / (newest - tail).max(1) as f64;
            let body = if covered > 0.0 {
                job.done as f64 / covered
            } else {
                0.0
            };
            (body.round() as i64 + TAIL as i64).max(floor)
        } else {
            floor
        });
    }

    /// About when the account's oldest [`TAIL`] candidates begin: the latest day before which a
    /// full page of them was created.
    pub(super) async fn tail_start(
        &self,
        lever: &Lever<'_, L>,
        newest: i64,
        below: i64,
        confidential: bool,
    ) -> Result<i64, LeverError> {
        const DAY: i64 = 24 * 3600 * 1000;
        // Lever was founded in 2012: nothing is older.
        let (mut lo, mut hi) = (1_325_376_000_000_i64, below);
        // A 256th of the span is precise enough (eight requests).
        let precision = DAY.max((newest - lo) / 256);
        while hi - lo > precision {
            let mid = lo + (hi - lo) / 2;
            let req = confidentiality(
                LeverRequest::get("/opportunities").query("limit", TAIL.to_string()),
                confidential,
            )
            .query("created_at_end", mid.to_string());
            let body = lever.send(req).await?;
            if crate::lever::models::list_data(&body).len() >= TAIL {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(hi)
    }
}

/// The oldest candidates the backfill's estimate treats apart.
const TAIL: usize = 100;

/// A tenant's sync as the status page shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    pub mode: Option<SyncMode>,
    pub running: bool,
    pub done: i64,
    pub estimated_total: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// Extrapolated from the pace so far.
    pub expected_finish_at: Option<i64>,
    /// Everything Lever changed before this time is in the vendor's view (the last finished
    /// backfill or reconciliation's start).
    pub in_sync_as_of: Option<i64>,
    pub next_run_at: Option<i64>,
    /// Changes recovered that no webhook delivered.
    pub changes_recovered: i64,
    pub changes_recovered_last_run: i64,
    pub last_error: Option<String>,
    /// Whether confidential candidates are in the view: `false` when the key lacks confidential
    /// access (the sync then reads only the others), `None` before a run.
    pub confidential: Option<bool>,
}

impl SyncStatus {
    pub fn of(job: Option<&SyncJob>, now_ms: i64) -> SyncStatus {
        let Some(j) = job else {
            return SyncStatus::default();
        };
        let running = j.finished_at.is_none();
        let expected_finish_at = match (running, j.estimated_total) {
            (true, Some(total)) if j.done > 0 && total > j.done => {
                let elapsed = (now_ms - j.started_at).max(0) as f64;
                Some(j.started_at + (elapsed * total as f64 / j.done as f64) as i64)
            }
            _ => None,
        };
        SyncStatus {
            mode: Some(j.mode),
            running,
            done: j.done,
            estimated_total: j.estimated_total,
            started_at: Some(j.started_at),
            finished_at: j.finished_at,
            expected_finish_at,
            in_sync_as_of: j.watermark.map(|w| w + SyncConfig::default().overlap_ms),
            next_run_at: j.due_at,
            changes_recovered: j.recovered_total,
            changes_recovered_last_run: j.recovered_last,
            last_error: j.last_error.clone(),
            confidential: j.confidential_known.then_some(!j.non_confidential),
        }
    }
}
