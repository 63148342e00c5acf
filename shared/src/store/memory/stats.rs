use super::*;

impl StatsStore for InMemoryStore {
    async fn record_rejection(
        &self,
        tenant: &str,
        kind: crate::webhook::EventKind,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        let key = (tenant.to_string(), kind);
        if s.rejections
            .get(&key)
            .is_none_or(|(at, _)| *at < at_ms - 60_000)
        {
            s.rejections.insert(key, (at_ms, reason.to_string()));
        }
        Ok(())
    }

    async fn webhook_stat(
        &self,
        tenant: &str,
        kind: crate::webhook::EventKind,
        since_ms: i64,
    ) -> Result<WebhookStat, StoreError> {
        let s = self.0.lock().unwrap();
        let times: Vec<i64> = s
            .deliveries
            .iter()
            .filter(|(t, k, at)| t == tenant && *k == kind && *at >= since_ms)
            .map(|(_, _, at)| *at)
            .collect();
        let rejection = s.rejections.get(&(tenant.to_string(), kind));
        Ok(WebhookStat {
            deliveries: times.len() as u64,
            last_received_at: times.iter().max().copied(),
            last_rejected_at: rejection.map(|r| r.0),
            last_rejection: rejection.map(|r| r.1.clone()),
        })
    }

    async fn count_push(
        &self,
        tenant: &str,
        end: &CommandEnd,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        let st = s.stats.entry(tenant.to_string()).or_default();
        match end {
            CommandEnd::Done { .. } => st.pushes_done += 1,
            CommandEnd::Released { .. } => {}
            CommandEnd::Failed { error } | CommandEnd::Parked { error, .. } => {
                // Parked ones are counted from the parked list.
                if matches!(end, CommandEnd::Failed { .. }) {
                    st.pushes_failed += 1;
                }
                st.last_push_error = Some(error.clone());
                st.last_push_error_at = Some(at_ms);
            }
        }
        Ok(())
    }

    async fn add_waiting(&self, tenant: &str, delta: i64) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .stats
            .entry(tenant.to_string())
            .or_default()
            .transcript_messages_waiting += delta;
        Ok(())
    }

    async fn tenant_stats(&self, tenant: &str) -> Result<TenantStats, StoreError> {
        let s = self.0.lock().unwrap();
        let mut st = s.stats.get(tenant).cloned().unwrap_or_default();
        st.pushes_parked = s.parked.get(tenant).map_or(0, |p| p.len() as i64);
        st.transcript_messages_waiting = st.transcript_messages_waiting.max(0);
        Ok(st)
    }
}
