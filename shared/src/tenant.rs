//! A tenant as a push sees it: its record (owner, Lever environment, status) and its Lever
//! credentials, cached per warm instance.

use crate::clock::Clock;
use crate::lever::{Account, Auth};
use crate::secrets::{CachedSecrets, SecretStore, SecretsError};
use crate::store::{StoreError, Tenant, TenantStatus, TenantStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct TenantContext {
    pub tenant: Arc<Tenant>,
    pub account: Account,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

pub struct Tenants<S, K, C> {
    store: S,
    secrets: CachedSecrets<K, C>,
    clock: C,
    ttl_ms: i64,
    records: Mutex<HashMap<String, (Arc<Tenant>, i64)>>,
}

impl<S: TenantStore, K: SecretStore, C: Clock + Clone> Tenants<S, K, C> {
    pub fn new(store: S, secrets: K, clock: C, ttl_ms: i64) -> Self {
        Tenants {
            secrets: CachedSecrets::new(secrets, clock.clone(), ttl_ms),
            store,
            clock,
            ttl_ms,
            records: Mutex::default(),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The tenant's record, cached for a minute; `None` for an unknown tenant.
    pub async fn record(&self, id: &str) -> Result<Option<Arc<Tenant>>, TenantError> {
        let now = self.clock.now_ms();
        let cached = self
            .records
            .lock()
            .unwrap()
            .get(id)
            .filter(|(_, at)| now - at < self.ttl_ms)
            .map(|(t, _)| t.clone());
        if cached.is_some() {
            return Ok(cached);
        }
        let Some(t) = self.store.tenant(id).await? else {
            return Ok(None);
        };
        let t = Arc::new(t);
        self.records
            .lock()
            .unwrap()
            .insert(id.to_string(), (t.clone(), now));
        Ok(Some(t))
    }

    /// The tenant and its credentials; `None` for an unknown tenant or one without credentials.
    pub async fn context(&self, id: &str) -> Result<Option<TenantContext>, TenantError> {
        let Some(tenant) = self.record(id).await? else {
            return Ok(None);
        };
        let Some(secret) = self.secrets.get(id).await? else {
            return Ok(None);
        };
        let Some(key) = secret.api_key.clone() else {
            return Ok(None);
        };
        let account = Account {
            base_url: tenant.lever_base_url.clone(),
            auth: Auth::ApiKey(key),
        };
        Ok(Some(TenantContext { tenant, account }))
    }

    /// Lever rejected the tenant's credentials: record it where the status shows it.
    pub async fn disconnect(&self, id: &str, reason: &str) -> Result<(), TenantError> {
        self.records.lock().unwrap().remove(id);
        self.store
            .set_tenant_status(id, TenantStatus::Disconnected, reason, self.clock.now_ms())
            .await?;
        Ok(())
    }
}
