use super::*;
use crate::events::VendorEvent;

/// A pending deletion: when it is due, and the event it owes once confirmed.
pub(super) struct Pending {
    opportunity: String,
    due_at: i64,
    /// Taken into the outbox when confirmed.
    event: Option<VendorEvent>,
}

impl DeletionStore for InMemoryStore {
    async fn record_deletion(
        &self,
        d: &Delivery<'_>,
        opportunity: &str,
        event: &VendorEvent,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.seen(d, now_ms) {
            return Ok(Recorded::Duplicate);
        }
        s.record(d, None, now_ms);
        s.pending_deletions.insert(
            key(d.tenant, d.token),
            Pending {
                opportunity: opportunity.to_string(),
                due_at: now_ms,
                event: Some(event.clone()),
            },
        );
        Ok(Recorded::Applied)
    }

    async fn due_deletions(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<PendingDeletion>, StoreError> {
        let s = self.0.lock().unwrap();
        let mut due: Vec<(i64, PendingDeletion)> = s
            .pending_deletions
            .iter()
            .filter(|(_, p)| p.due_at <= now_ms)
            .map(|((tenant, token), p)| {
                let pending = PendingDeletion {
                    tenant: tenant.clone(),
                    token: token.clone(),
                    opportunity: p.opportunity.clone(),
                };
                (p.due_at, pending)
            })
            .collect();
        due.sort_by_key(|(at, _)| *at);
        Ok(due.into_iter().take(limit).map(|(_, p)| p).collect())
    }

    async fn claim_deletion(
        &self,
        p: &PendingDeletion,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        Ok(
            match s.pending_deletions.get_mut(&key(&p.tenant, &p.token)) {
                Some(pending) if pending.due_at <= now_ms => {
                    pending.due_at = until_ms;
                    true
                }
                _ => false,
            },
        )
    }

    async fn confirm_deletion(
        &self,
        p: &PendingDeletion,
        now_ms: i64,
    ) -> Result<DeletionOutcome, StoreError> {
        let mut s = self.0.lock().unwrap();
        let m = Mutation::Deleted {
            opportunity: p.opportunity.clone(),
        };
        let Some(event) = s
            .pending_deletions
            .get(&key(&p.tenant, &p.token))
            .and_then(|pending| pending.event.clone())
        else {
            return Ok(DeletionOutcome::Confirmed);
        };
        if !s.apply(&p.tenant, &m, now_ms) {
            return Ok(DeletionOutcome::AlreadyDeleted);
        }
        s.emit(std::slice::from_ref(&event));
        if let Some(pending) = s.pending_deletions.get_mut(&key(&p.tenant, &p.token)) {
            pending.event = None;
        }
        Ok(DeletionOutcome::Confirmed)
    }

    async fn settle_deletion(
        &self,
        p: &PendingDeletion,
        _how: &'static str,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        s.pending_deletions.remove(&key(&p.tenant, &p.token));
        Ok(())
    }

    async fn reject_deletion(&self, p: &PendingDeletion, _now_ms: i64) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.pending_deletions
            .remove(&key(&p.tenant, &p.token))
            .is_some()
        {
            s.stats
                .entry(p.tenant.clone())
                .or_default()
                .deletions_unconfirmed += 1;
        }
        Ok(())
    }

    async fn defer_deletion(&self, p: &PendingDeletion, due_at_ms: i64) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        if let Some(pending) = s.pending_deletions.get_mut(&key(&p.tenant, &p.token)) {
            pending.due_at = due_at_ms;
        }
        Ok(())
    }
}
