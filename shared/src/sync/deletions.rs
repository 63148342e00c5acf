//! Confirming `candidateDeleted` deliveries with Lever before they are applied. A delivery's data
//! is not signed, so the receiver only records it as pending (`crate::store::DeletionStore`); each
//! scheduled run asks Lever about the opportunity (`GET /opportunities/:id`, one request per
//! deletion, within the tenant's rate limit): gone (404) → tombstone, erase, and the vendor's
//! `candidateDeleted` leaves through the outbox; still there → counted as unconfirmed and nothing
//! else; no answer → asked again later. A deletion Lever lists in `/opportunities/deleted` is
//! applied by the hourly reconciliation in any case.

use super::{SyncReport, Syncer};
use crate::clock::Clock;
use crate::lever::calls::Lever;
use crate::lever::{LeverApi, LeverError};
use crate::secrets::SecretStore;
use crate::store::{
    CommandStore, DeletionOutcome, DeletionStore, PendingDeletion, StoreError, SyncStore,
    TenantStatus, TenantStore, WebhookStore,
};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Deletions asked about per run (the rest wait for the next minute's).
const PER_RUN: usize = 500;
/// Most of a run the deletions may take, so the sync jobs after them always get their turn.
const BUDGET: Duration = Duration::from_secs(60);
/// How long a run holds a deletion it is asking Lever about.
const LEASE_MS: i64 = 5 * 60_000;

/// What Lever said of one pending deletion.
enum Answer {
    Gone,
    /// A 404 for a key that may not see confidential candidates, which Lever also answers 404
    /// for: no proof. Left to the reconciliation, which applies what Lever lists as deleted.
    Unprovable,
    Present,
    /// Ask again after this long.
    Later(i64),
    /// The tenant's credentials or time ran out: ask again later, and none of its others now.
    Stop(i64),
}

impl<
    L: LeverApi,
    S: SyncStore + WebhookStore + TenantStore + CommandStore + DeletionStore + Clone,
    K: SecretStore,
    C: Clock + Clone,
> Syncer<L, S, K, C>
{
    /// Confirms the due deletions it can before `deadline`, tenants in parallel.
    pub async fn confirm_deletions(&self, deadline: Instant, margin: Duration) -> SyncReport {
        let deadline = deadline.min(Instant::now() + BUDGET);
        let due = match self.store.due_deletions(self.clock.now_ms(), PER_RUN).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "could not read the pending deletions");
                return SyncReport::default();
            }
        };
        let mut by_tenant: BTreeMap<String, Vec<PendingDeletion>> = BTreeMap::new();
        for p in due {
            by_tenant.entry(p.tenant.clone()).or_default().push(p);
        }
        let reports: Vec<SyncReport> = futures::stream::iter(by_tenant)
            .map(|(tenant, pending)| async move {
                self.confirm_tenant(&tenant, &pending, deadline, margin)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(tenant, error = %e, "could not confirm deletions");
                        SyncReport::default()
                    })
            })
            .buffer_unordered(self.config.tenants_at_once)
            .collect()
            .await;
        let mut total = SyncReport::default();
        for r in reports {
            total.deletions_confirmed += r.deletions_confirmed;
            total.deletions_unconfirmed += r.deletions_unconfirmed;
            total.deletions_deferred += r.deletions_deferred;
            total.events += r.events;
        }
        total
    }

    async fn confirm_tenant(
        &self,
        tenant: &str,
        pending: &[PendingDeletion],
        deadline: Instant,
        margin: Duration,
    ) -> Result<SyncReport, StoreError> {
        let mut report = SyncReport::default();
        let ctx = match self.tenants.context(tenant, deadline).await {
            Ok(Some(ctx)) if ctx.tenant.status != TenantStatus::Disconnected => ctx,
            // Asked again once the tenant can be (a reconnection, or the next hour).
            Ok(_) => {
                let after = self.config.interval_ms;
                return self
                    .defer_all(pending, after, &mut report)
                    .await
                    .map(|()| report);
            }
            Err(e) => {
                tracing::warn!(tenant, error = %e, "no credentials to confirm deletions with now");
                let after = self.config.retry_after_ms;
                return self
                    .defer_all(pending, after, &mut report)
                    .await
                    .map(|()| report);
            }
        };
        // A key Lever refused confidential access sees confidential candidates as 404s: a 404
        // proves a deletion only while it is known that the key sees them all: from the last
        // sync run that established it or, before any has (a new tenant), from Lever itself.
        let lever = Lever::new(&self.lever, &ctx.account, deadline);
        let known = self
            .store
            .sync_job(tenant)
            .await?
            .filter(|j| j.confidential_known);
        let sees_confidential = match known {
            Some(j) => !j.non_confidential,
            None => matches!(lever.sees_confidential().await, Ok(true)),
        };
        for (i, p) in pending.iter().enumerate() {
            if Instant::now() + margin >= deadline {
                // Still due: the next run takes them first.
                break;
            }
            let now = self.clock.now_ms();
            if !self.store.claim_deletion(p, now, now + LEASE_MS).await? {
                continue;
            }
            let answer = match ask(&lever, &p.opportunity).await {
                Answer::Gone if !sees_confidential => Answer::Unprovable,
                answer => answer,
            };
            let now = self.clock.now_ms();
            match answer {
                Answer::Gone => {
                    if apply(&self.store, p, now).await? == DeletionOutcome::Confirmed {
                        report.events += 1;
                    }
                    report.deletions_confirmed += 1;
                }
                Answer::Unprovable => {
                    self.store
                        .settle_deletion(p, "leftToReconciliation")
                        .await?;
                    report.deletions_deferred += 1;
                }
                Answer::Present => {
                    tracing::warn!(
                        tenant,
                        opportunity = p.opportunity,
                        "candidateDeleted for an opportunity Lever still has: not applied"
                    );
                    self.store.reject_deletion(p, now).await?;
                    report.deletions_unconfirmed += 1;
                }
                Answer::Later(after) => {
                    self.store.defer_deletion(p, now + after).await?;
                    report.deletions_deferred += 1;
                }
                Answer::Stop(after) => {
                    self.defer_all(&pending[i..], after, &mut report).await?;
                    break;
                }
            }
        }
        Ok(report)
    }

    async fn defer_all(
        &self,
        pending: &[PendingDeletion],
        after: i64,
        report: &mut SyncReport,
    ) -> Result<(), StoreError> {
        let at = self.clock.now_ms() + after;
        for p in pending {
            self.store.defer_deletion(p, at).await?;
            report.deletions_deferred += 1;
        }
        Ok(())
    }
}

/// Applies a deletion Lever confirmed: the tombstone and its event, then the erasure, then the
/// pending item settles. A run that dies between the steps leaves it due, and the next finishes it
/// (confirming again writes nothing; erasing twice is harmless).
pub async fn apply<S: DeletionStore + WebhookStore>(
    store: &S,
    p: &PendingDeletion,
    now_ms: i64,
) -> Result<DeletionOutcome, StoreError> {
    let outcome = store.confirm_deletion(p, now_ms).await?;
    store.purge(&p.tenant, &p.opportunity).await?;
    store.settle_deletion(p, "confirmed").await?;
    Ok(outcome)
}

async fn ask<L: LeverApi>(lever: &Lever<'_, L>, opportunity: &str) -> Answer {
    const MINUTE: i64 = 60_000;
    match lever.opportunity_exists(opportunity).await {
        Ok(true) => Answer::Present,
        Ok(false) => Answer::Gone,
        // Not an id Lever could have: nothing to confirm.
        Err(LeverError::Rejected { .. }) => Answer::Present,
        // Only the customer can fix these: the hourly reconciliation's deleted list covers them.
        Err(e @ (LeverError::Unauthorized(_) | LeverError::Forbidden(_))) => {
            tracing::warn!(error = %e, "deletions cannot be confirmed with these credentials");
            Answer::Stop(60 * MINUTE)
        }
        // This run's time is up: the rest are asked a minute later.
        Err(LeverError::Deadline) => Answer::Stop(MINUTE),
        Err(e) => {
            tracing::warn!(error = %e, opportunity, "could not ask Lever about a deletion");
            Answer::Later(MINUTE)
        }
    }
}
