//! The tenant aggregate: a customer's Lever account as the table holds it (its secrets are in the
//! secret store), and the lease its secret is changed under.

use super::StoreError;
use serde::{Deserialize, Serialize};
use std::future::Future;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TenantStatus {
    Connected,
    Degraded,
    Disconnected,
}

/// A customer's Lever account. Its secrets live in the secret store, never here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub lever_base_url: String,
    pub owner_user_id: Option<String>,
    pub status: TenantStatus,
    /// Why the status is what it is, when not connected.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// IANA time zone transcripts are written in (UTC when absent).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Minutes a conversation stays quiet before its transcript is posted (60 when absent).
    #[serde(default)]
    pub transcript_quiet_minutes: Option<i64>,
    pub created_at: i64,
    /// The kind of Lever credentials its secret holds, `apiKey` or `oauth` (`TenantSecret::auth_kind`),
    /// kept here so that what only tells it (the status) need not read the credentials. Written
    /// with each change of kind; a record written before it was kept has none until a function
    /// next reads the tenant's credentials (`Tenants::context`).
    #[serde(default)]
    pub auth: Option<String>,
}

impl Tenant {
    /// A tenant just connected: no owner yet, default time zone and quiet period.
    pub fn connected(id: &str, lever_base_url: &str, now_ms: i64) -> Tenant {
        Tenant {
            id: id.to_string(),
            lever_base_url: lever_base_url.to_string(),
            owner_user_id: None,
            status: TenantStatus::Connected,
            status_reason: None,
            time_zone: None,
            transcript_quiet_minutes: None,
            created_at: now_ms,
            auth: None,
        }
    }
}

/// The event a status change owes the vendor: disconnected, or connected again after that.
pub fn transition_event(
    tenant: &str,
    was: TenantStatus,
    now: TenantStatus,
    reason: &str,
    at: i64,
) -> Option<crate::events::VendorEvent> {
    let owed = match now {
        TenantStatus::Disconnected => was != TenantStatus::Disconnected,
        TenantStatus::Connected => was == TenantStatus::Disconnected,
        TenantStatus::Degraded => false,
    };
    owed.then(|| {
        crate::events::tenant_event(tenant, now, Some(reason).filter(|r| !r.is_empty()), at)
    })
}

/// Who holds a deleted tenant's lease.
pub const DELETED_HOLDER: &str = "deleted";

pub trait TenantStore: Send + Sync {
    fn put_tenant(&self, t: &Tenant) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Creates or replaces the tenant record of a tenant that (re)connected, with its
    /// `tenantConnected` event in the same write.
    fn connect_tenant(
        &self,
        t: &Tenant,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn tenant(&self, id: &str) -> impl Future<Output = Result<Option<Tenant>, StoreError>> + Send;
    /// Records a status change with its reason (e.g. Lever answered 401). Becoming disconnected,
    /// or connected again after that, writes `tenantDisconnected` / `tenantConnected` with it.
    fn set_tenant_status(
        &self,
        id: &str,
        status: TenantStatus,
        reason: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records the kind of credentials the tenant's secret holds (see [`Tenant::auth`]); nothing
    /// for an unknown tenant.
    fn set_tenant_auth(
        &self,
        id: &str,
        auth: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes the tenant's OAuth refresh lease for `holder` until `until_ms` (a conditional put: no
    /// lease, or only an expired one). False when another holder has a live lease.
    fn acquire_refresh_lease(
        &self,
        tenant: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Gives the lease back (a conditional delete: only `holder`'s own lease).
    fn release_refresh_lease(
        &self,
        tenant: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Turns the lease a deletion holds into the deleted tenant's mark, held by
    /// [`DELETED_HOLDER`] until `until_ms`: a writer that was waiting for the lease cannot take it
    /// and write the deleted secret again.
    fn mark_deleted(
        &self,
        tenant: &str,
        until_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Lifts that mark (connecting the tenant again); nothing when there is none.
    fn clear_deleted(&self, tenant: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}
