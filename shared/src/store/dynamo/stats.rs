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
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk_tenant(tenant)))
            .item("sk", s(sk_rejection(kind)))
            .item("rejectedAt", n(at_ms))
            .item("reason", s(reason))
            .condition_expression("attribute_not_exists(pk) OR rejectedAt < :ago")
            .expression_attribute_values(":ago", n(at_ms - 60_000))
            .send()
            .await;
        conditional(put)?;
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
            // Parked ones are counted from the parked list (they leave it when replayed): only
            // the reason is kept here.
            CommandEnd::Failed { error } | CommandEnd::Parked { error, .. } => {
                let failed = matches!(end, CommandEnd::Failed { .. });
                self.add_counters(
                    tenant,
                    "pushesFailed :n",
                    Some("lastPushError = :e, lastPushErrorAt = :at"),
                    vec![
                        (":n", n(i64::from(failed))),
                        (":e", s(error.as_str())),
                        (":at", n(at_ms)),
                    ],
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
        let get = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_STATS))
            .send();
        let (out, parked) = futures::join!(get, self.parked_count(tenant));
        let out = out.map_err(unavailable)?;
        let parked = parked?;
        let Some(i) = out.item() else {
            return Ok(TenantStats {
                pushes_parked: parked,
                ..TenantStats::default()
            });
        };
        Ok(TenantStats {
            pushes_done: get_n(i, "pushesDone").unwrap_or(0),
            pushes_failed: get_n(i, "pushesFailed").unwrap_or(0),
            pushes_parked: parked,
            last_push_error: get_s(i, "lastPushError"),
            last_push_error_at: get_n(i, "lastPushErrorAt"),
            transcript_messages_waiting: get_n(i, "transcriptMessagesWaiting").unwrap_or(0).max(0),
            deletions_unconfirmed: get_n(i, "deletionsUnconfirmed").unwrap_or(0),
        })
    }
}

impl DynamoStore {
    /// The tenant's parked commands now (a counting query: no item is read out).
    async fn parked_count(&self, tenant: &str) -> Result<i64, StoreError> {
        let mut count = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk_parked(tenant)))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            count += i64::from(out.count());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(count);
            }
        }
    }
}
