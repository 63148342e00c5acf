use super::*;

impl TenantStore for InMemoryStore {
    async fn set_tenant_status(
        &self,
        id: &str,
        status: TenantStatus,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        let Some(t) = s.tenants.get_mut(id) else {
            return Ok(());
        };
        let was = t.status;
        t.status = status;
        t.status_reason = Some(reason.to_string());
        if let Some(event) = transition_event(id, was, status, reason, now_ms) {
            s.emit(&[event]);
        }
        Ok(())
    }

    async fn connect_tenant(&self, t: &Tenant, now_ms: i64) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        s.tenants.insert(t.id.clone(), t.clone());
        s.emit(&[crate::events::tenant_event(&t.id, t.status, None, now_ms)]);
        Ok(())
    }

    async fn put_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .tenants
            .insert(t.id.clone(), t.clone());
        Ok(())
    }
    async fn set_tenant_auth(&self, id: &str, auth: Option<&str>) -> Result<(), StoreError> {
        if let Some(t) = self.0.lock().unwrap().tenants.get_mut(id) {
            t.auth = auth.map(str::to_string);
        }
        Ok(())
    }
    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        Ok(self.0.lock().unwrap().tenants.get(id).cloned())
    }

    async fn acquire_refresh_lease(
        &self,
        tenant: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.leases
            .get(tenant)
            .is_some_and(|(_, until)| *until >= now_ms)
        {
            return Ok(false);
        }
        s.leases
            .insert(tenant.to_string(), (holder.to_string(), until_ms));
        Ok(true)
    }

    async fn release_refresh_lease(&self, tenant: &str, holder: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.leases.get(tenant).is_some_and(|(h, _)| h == holder) {
            s.leases.remove(tenant);
        }
        Ok(())
    }

    async fn mark_deleted(&self, tenant: &str, until_ms: i64) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .leases
            .insert(tenant.to_string(), (DELETED_HOLDER.to_string(), until_ms));
        Ok(())
    }

    async fn clear_deleted(&self, tenant: &str) -> Result<(), StoreError> {
        self.release_refresh_lease(tenant, DELETED_HOLDER).await
    }
}
