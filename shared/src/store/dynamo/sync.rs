use super::*;

fn synced_view(item: &Item) -> SyncedView {
    SyncedView {
        stage: get_s(item, "stageId")
            .zip(get_n(item, "stageSince"))
            .map(|(id, since)| Stage { id, since }),
        archived: item
            .get("archiveState")
            .and_then(|v| v.as_m().ok())
            .map(|m| Archived {
                reason: get_s(m, "reason"),
                archived_at: get_n(m, "archivedAt"),
            }),
        archive_at: get_n(item, "archiveAt"),
        hired_at: get_n(item, "hiredAt"),
        contact_id: get_s(item, "contactId"),
        application_ids: item
            .get("appIds")
            .and_then(|v| v.as_ss().ok())
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default(),
        deleted_at: get_n(item, "deletedAt"),
        mark: get_s(item, "syncMark"),
        marked_events: get_s(item, OUTBOX_ATTRIBUTE)
            .and_then(|o| crate::events::from_outbox(&o).ok())
            .map_or(0, |e| e.len()),
    }
}

fn sync_job_of(item: &Item) -> Result<SyncJob, StoreError> {
    let json = get_s(item, "jobJson").unwrap_or_default();
    let mut job: SyncJob =
        serde_json::from_str(&json).map_err(|e| StoreError::Malformed(e.to_string()))?;
    // The key attributes are the truth for what conditions check.
    job.lease_until = get_n(item, "leaseUntil").unwrap_or(0);
    job.due_at = get_n(item, "dueAt");
    Ok(job)
}

impl DynamoStore {
    fn sync_job_put(
        &self,
        job: &SyncJob,
    ) -> Result<aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder, StoreError>
    {
        let json = serde_json::to_string(job).map_err(|e| StoreError::Malformed(e.to_string()))?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk_tenant(&job.tenant)))
            .item("sk", s(SK_SYNC))
            .item("tenantId", s(job.tenant.as_str()))
            .item("jobId", s(job.job_id.as_str()))
            .item("leaseUntil", n(job.lease_until))
            .item("jobJson", s(json));
        if let Some(due) = job.due_at {
            put = put.item("dueShard", s(SYNC_SHARD)).item("dueAt", n(due));
        }
        Ok(put)
    }
}

impl SyncStore for DynamoStore {
    async fn sync_views(
        &self,
        tenant: &str,
        opportunities: &[String],
    ) -> Result<HashMap<String, SyncedView>, StoreError> {
        let keys = opportunities
            .iter()
            .map(|opp| (pk_opp(tenant, opp), SK_CANDIDATE.to_string()))
            .collect();
        let mut out = HashMap::new();
        for item in self.get_all(keys).await? {
            if let Some(opp) = get_s(&item, "opportunityId") {
                out.insert(opp, synced_view(&item));
            }
        }
        Ok(out)
    }

    async fn write_sync(
        &self,
        tenant: &str,
        w: &SyncWrite,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        // Kept as long as a webhook's dedup record, like a deletion's tombstone.
        let expires_at = expiry_secs(now_ms);
        let pk = pk_opp(tenant, &w.opportunity);
        let mut sets = vec![
            "opportunityId = :o".to_string(),
            "syncMark = :m".into(),
            format!("{OUTBOX_ATTRIBUTE} = :e"),
        ];
        let mut conditions = vec![NOT_DELETED.to_string()];
        let mut values: Vec<(String, AV)> = vec![
            (":o".into(), s(w.opportunity.as_str())),
            (":m".into(), s(w.mark.as_str())),
            (":e".into(), s(crate::events::to_outbox(&w.events))),
        ];
        let mut apps = Vec::new();
        let mut app_items = Vec::new();
        for (i, (m, t)) in w.changes.iter().enumerate() {
            if let Some(g) = group(tenant, m, *t, expires_at, i) {
                if !matches!(m, Mutation::Deleted { .. }) {
                    conditions.push(g.guard(i));
                }
                sets.push(g.set);
                values.extend(g.values);
            } else if let Mutation::Application { application, .. } = m {
                apps.push(application.clone());
                app_items.push(change_for(tenant, m, *t, expires_at).0);
            }
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !apps.is_empty() {
            update += " ADD appIds :apps";
            values.push((":apps".into(), AV::Ss(apps)));
        }
        let candidate = Change {
            pk,
            sk: SK_CANDIDATE.into(),
            update,
            condition: conditions.join(" AND "),
            values,
        };
        if app_items.is_empty() {
            return conditional(candidate.send_raw(&self.client, &self.table).await)
                .map(|o| o.is_some());
        }
        // The candidate and its new applications in one request, all or nothing.
        let mut items = vec![
            TransactWriteItem::builder()
                .update(candidate.into_update(&self.table)?)
                .build(),
        ];
        for c in app_items {
            items.push(
                TransactWriteItem::builder()
                    .update(c.into_update(&self.table)?)
                    .build(),
            );
        }
        // Cancelled (`Seen`, `Stale`): a webhook changed the candidate since the read.
        Ok(self.transact(items).await?.is_none())
    }

    async fn sync_job(&self, tenant: &str) -> Result<Option<SyncJob>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_SYNC))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item().map(sync_job_of).transpose()
    }

    async fn put_sync_job(&self, job: &SyncJob) -> Result<(), StoreError> {
        self.sync_job_put(job)?.send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn claim_sync_job(
        &self,
        tenant: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<SyncJob>, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_SYNC))
            .update_expression("SET leaseUntil = :u")
            .condition_expression("dueAt <= :now AND leaseUntil < :now")
            .expression_attribute_values(":u", n(until_ms))
            .expression_attribute_values(":now", n(now_ms))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match conditional(res)? {
            Some(out) => out.attributes().map(sync_job_of).transpose(),
            None => Ok(None),
        }
    }

    async fn save_sync_job(
        &self,
        job: &SyncJob,
        held_until: i64,
        event: Option<&crate::events::VendorEvent>,
    ) -> Result<bool, StoreError> {
        let mut put = self.sync_job_put(job)?;
        if let Some(e) = event {
            put = put.item(
                OUTBOX_ATTRIBUTE,
                s(crate::events::to_outbox(std::slice::from_ref(e))),
            );
        }
        let res = put
            .condition_expression("jobId = :j AND leaseUntil = :held")
            .expression_attribute_values(":j", s(job.job_id.as_str()))
            .expression_attribute_values(":held", n(held_until))
            .send()
            .await;
        conditional(res).map(|o| o.is_some())
    }

    async fn due_sync_jobs(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(self
            .due_items(SYNC_SHARD, now_ms, limit)
            .await?
            .iter()
            .filter_map(|i| get_s(i, "tenantId"))
            .collect())
    }
}
