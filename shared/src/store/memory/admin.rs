use super::*;

impl AdminStore for InMemoryStore {
    async fn put_oauth_state(&self, pending: &OAuthPending) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.oauth_states.contains_key(&pending.state_hash) {
            return Ok(false);
        }
        s.oauth_states
            .insert(pending.state_hash.clone(), pending.clone());
        Ok(true)
    }

    async fn take_oauth_state(
        &self,
        state_hash: &str,
        now_ms: i64,
    ) -> Result<Option<OAuthPending>, StoreError> {
        let mut s = self.0.lock().unwrap();
        match s.oauth_states.get(state_hash) {
            Some(p) if p.expires_at > now_ms => Ok(s.oauth_states.remove(state_hash)),
            _ => Ok(None),
        }
    }

    async fn put_connect_link(&self, link: &ConnectLink) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        s.admin
            .connect_links
            .insert(link.tenant_id.clone(), link.clone());
        Ok(())
    }

    async fn connect_link(&self, tenant: &str) -> Result<Option<ConnectLink>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .admin
            .connect_links
            .get(tenant)
            .cloned())
    }

    async fn open_connect_link(
        &self,
        tenant: &str,
        token_hash: &str,
        session_hash: &str,
        session_expires_at: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        match s.admin.connect_links.get_mut(tenant) {
            Some(l)
                if l.token_hash == token_hash && l.expires_at > now_ms && l.opened_at.is_none() =>
            {
                l.opened_at = Some(now_ms);
                l.session_hash = Some(session_hash.to_string());
                l.session_expires_at = session_expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_connect_link(&self, tenant: &str) -> Result<bool, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .admin
            .connect_links
            .remove(tenant)
            .is_some())
    }

    async fn set_owner(
        &self,
        tenant: &str,
        user: &str,
        event: &crate::events::VendorEvent,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        let Some(t) = s.tenants.get_mut(tenant) else {
            return Ok(false);
        };
        t.owner_user_id = Some(user.to_string());
        s.emit(std::slice::from_ref(event));
        Ok(true)
    }

    async fn tenant_event(
        &self,
        tenant: &str,
        event: &crate::events::VendorEvent,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        if !s.tenants.contains_key(tenant) {
            return Ok(false);
        }
        s.emit(std::slice::from_ref(event));
        Ok(true)
    }

    async fn put_postings(
        &self,
        tenant: &str,
        postings: &[PostingRecord],
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        let map = s.admin.postings.entry(tenant.to_string()).or_default();
        for p in postings {
            map.insert(p.id.clone(), p.clone());
        }
        Ok(())
    }

    async fn postings(&self, tenant: &str) -> Result<Vec<PostingRecord>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .admin
            .postings
            .get(tenant)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn set_role(
        &self,
        tenant: &str,
        role: &str,
        posting: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        let map = s.admin.roles.entry(tenant.to_string()).or_default();
        match posting {
            Some(p) => map.insert(role.to_string(), p.to_string()),
            None => map.remove(role),
        };
        Ok(())
    }

    async fn roles(&self, tenant: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .admin
            .roles
            .get(tenant)
            .map(|m| m.iter().map(|(r, p)| (r.clone(), p.clone())).collect())
            .unwrap_or_default())
    }

    async fn delete_tenant_data(&self, tenant: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        s.tenants.remove(tenant);
        s.stats.remove(tenant);
        s.parked.remove(tenant);
        s.rejections.retain(|(t, _), _| t != tenant);
        s.deliveries.retain(|(t, _, _)| t != tenant);
        s.dedup.retain(|(t, _), _| t != tenant);
        s.admin.postings.remove(tenant);
        s.admin.roles.remove(tenant);
        s.admin.connect_links.remove(tenant);
        s.sync_jobs.remove(tenant);
        Ok(())
    }
}
