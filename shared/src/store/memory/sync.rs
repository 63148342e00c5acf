use super::*;

impl SyncStore for InMemoryStore {
    async fn sync_views(
        &self,
        tenant: &str,
        opportunities: &[String],
    ) -> Result<HashMap<String, SyncedView>, StoreError> {
        let s = self.0.lock().unwrap();
        let mut out = HashMap::new();
        for opp in opportunities {
            let k = key(tenant, opp);
            let apps = s.applications.get(&k);
            let Some(c) = s.candidates.get(&k) else {
                if let Some(apps) = apps {
                    let v = SyncedView {
                        application_ids: apps.keys().cloned().collect(),
                        ..Default::default()
                    };
                    out.insert(opp.clone(), v);
                }
                continue;
            };
            let (mark, marked_events) = c.sync_mark.clone().unzip();
            out.insert(
                opp.clone(),
                SyncedView {
                    stage: c.view.stage.clone(),
                    archived: c.view.archived.clone(),
                    archive_at: c.archive_at,
                    hired_at: c.hired_at,
                    contact_id: c.view.contact_id.clone(),
                    application_ids: apps
                        .map(|a| a.keys().cloned().collect())
                        .unwrap_or_default(),
                    deleted_at: c.view.deleted_at,
                    mark,
                    marked_events: marked_events.unwrap_or(0),
                },
            );
        }
        Ok(out)
    }

    async fn write_sync(
        &self,
        tenant: &str,
        w: &SyncWrite,
        _now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        // All or nothing, as the one conditional write of the DynamoDB store.
        let k = key(tenant, &w.opportunity);
        let c = s.candidates.get(&k);
        if c.is_some_and(|c| c.view.deleted_at.is_some()) {
            return Ok(false);
        }
        let newer_in_place = w.changes.iter().any(|(m, t)| match m {
            Mutation::Stage { .. } => {
                !newer(c.and_then(|c| c.view.stage.as_ref().map(|s| s.since)), *t)
            }
            Mutation::Archive { .. } => !newer(c.and_then(|c| c.archive_at), *t),
            Mutation::Hired { .. } => !newer(c.and_then(|c| c.hired_at), *t),
            _ => false,
        });
        if newer_in_place {
            return Ok(false);
        }
        for (m, t) in &w.changes {
            s.apply(tenant, m, *t);
        }
        let c = s.candidates.entry(k).or_default();
        c.view.opportunity_id.clone_from(&w.opportunity);
        c.sync_mark = Some((w.mark.clone(), w.events.len()));
        s.emit(&w.events);
        Ok(true)
    }

    async fn sync_job(&self, tenant: &str) -> Result<Option<SyncJob>, StoreError> {
        Ok(self.0.lock().unwrap().sync_jobs.get(tenant).cloned())
    }

    async fn put_sync_job(&self, job: &SyncJob) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        s.sync_jobs.insert(job.tenant.clone(), job.clone());
        Ok(())
    }

    async fn claim_sync_job(
        &self,
        tenant: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<SyncJob>, StoreError> {
        let mut s = self.0.lock().unwrap();
        let Some(job) = s.sync_jobs.get_mut(tenant) else {
            return Ok(None);
        };
        if job.due_at.is_none_or(|d| d > now_ms) || job.lease_until >= now_ms {
            return Ok(None);
        }
        job.lease_until = until_ms;
        Ok(Some(job.clone()))
    }

    async fn save_sync_job(
        &self,
        job: &SyncJob,
        held_until: i64,
        event: Option<&crate::events::VendorEvent>,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        match s.sync_jobs.get_mut(&job.tenant) {
            Some(cur) if cur.job_id == job.job_id && cur.lease_until == held_until => {
                *cur = job.clone();
                if let Some(e) = event {
                    s.emit(std::slice::from_ref(e));
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn due_sync_jobs(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let s = self.0.lock().unwrap();
        let mut due: Vec<(i64, String)> = s
            .sync_jobs
            .values()
            .filter_map(|j| {
                j.due_at
                    .filter(|d| *d <= now_ms)
                    .map(|d| (d, j.tenant.clone()))
            })
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, t)| t).collect())
    }
}
