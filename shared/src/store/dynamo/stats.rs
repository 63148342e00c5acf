use super::*;

impl DynamoStore {
    async fn add_counters(
        &self,
        tenant: &str,
        add: &str,
        set: Option<&str>,
        values: Vec<(&str, AV)>,
    ) -> Result<(), StoreError> {
        let update = match set {
            Some(set) => format!("ADD {add} SET {set}"),
            None => format!("ADD {add}"),
        };
        let mut b = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_STATS))
            .update_expression(update);
        for (k, v) in values {
            b = b.expression_attribute_values(k, v);
        }
        b.send().await.map_err(unavailable)?;
        Ok(())
    }
}

impl StatsStore for DynamoStore {
    async fn record_rejection(
        &self,
        tenant: &str,
        kind: crate::webhook::EventKind,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk_tenant(tenant)))
            .item("sk", s(sk_rejection(kind)))
            .item("rejectedAt", n(at_ms))
            .item("reason", s(reason))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn webhook_stat(
        &self,
        tenant: &str,
        kind: crate::webhook::EventKind,
        since_ms: i64,
    ) -> Result<WebhookStat, StoreError> {
        let hook = hook_key(tenant, kind);
        let query = || {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(DELIVERIES_INDEX)
                .key_condition_expression("hookKey = :h AND triggeredAt >= :since")
                .expression_attribute_values(":h", s(hook.as_str()))
                .expression_attribute_values(":since", n(since_ms))
        };
        let last = query().scan_index_forward(false).limit(1).send();
        let rejection = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(sk_rejection(kind)))
            .send();
        let (last, rejection) = futures::join!(last, rejection);
        let mut stat = WebhookStat {
            last_received_at: last
                .map_err(unavailable)?
                .items()
                .first()
                .and_then(|i| get_n(i, "triggeredAt")),
            ..WebhookStat::default()
        };
        if let Some(r) = rejection.map_err(unavailable)?.item() {
            stat.last_rejected_at = get_n(r, "rejectedAt");
            stat.last_rejection = get_s(r, "reason");
        }
        let mut start = None;
        loop {
            let out = query()
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            stat.deliveries += out.count().max(0) as u64;
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(stat);
            }
        }
    }

    async fn count_push(
        &self,
        tenant: &str,
        end: &CommandEnd,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        match end {
            CommandEnd::Done { .. } => {
                self.add_counters(tenant, "pushesDone :one", None, vec![(":one", n(1))])
                    .await
            }
            CommandEnd::Released { .. } => Ok(()),
            CommandEnd::Failed { error } | CommandEnd::Parked { error, .. } => {
                let counter = if matches!(end, CommandEnd::Failed { .. }) {
                    "pushesFailed :one"
                } else {
                    "pushesParked :one"
                };
                self.add_counters(
                    tenant,
                    counter,
                    Some("lastPushError = :e, lastPushErrorAt = :at"),
                    vec![(":one", n(1)), (":e", s(error.as_str())), (":at", n(at_ms))],
                )
                .await
            }
        }
    }

    async fn add_waiting(&self, tenant: &str, delta: i64) -> Result<(), StoreError> {
        self.add_counters(
            tenant,
            "transcriptMessagesWaiting :d",
            None,
            vec![(":d", n(delta))],
        )
        .await
    }

    async fn tenant_stats(&self, tenant: &str) -> Result<TenantStats, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_STATS))
            .send()
            .await
            .map_err(unavailable)?;
        let Some(i) = out.item() else {
            return Ok(TenantStats::default());
        };
        Ok(TenantStats {
            pushes_done: get_n(i, "pushesDone").unwrap_or(0),
            pushes_failed: get_n(i, "pushesFailed").unwrap_or(0),
            pushes_parked: get_n(i, "pushesParked").unwrap_or(0),
            last_push_error: get_s(i, "lastPushError"),
            last_push_error_at: get_n(i, "lastPushErrorAt"),
            transcript_messages_waiting: get_n(i, "transcriptMessagesWaiting").unwrap_or(0).max(0),
        })
    }
}
