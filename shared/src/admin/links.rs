//! Connect links: the vendor's backend mints one for a tenant (new or existing), the customer's
//! Lever admin opens it once and gets a browser session on the connect pages (`crate::pages`).
//! The token is 256 random bits, stored hashed; one link per tenant, so a new one revokes the last.

use super::{Admin, AdminError};
use crate::clock::Clock;
use crate::lever::LeverApi;
use crate::secrets::SecretStore;
use crate::store::{AdminStore, CommandStore, ConnectLink, StatsStore, TenantStore};
use serde_json::{Value, json};

/// How long a browser session from a link lasts.
pub const SESSION_TTL_MS: i64 = 2 * 3600 * 1000;

/// The page a link opens: `<pages>/connect/<tenant>/open?token=<token>`.
pub fn link_url(pages_url: &str, tenant: &str, token: &str) -> String {
    format!("{pages_url}/connect/{tenant}/open?token={token}")
}

impl<L, S, K, C> Admin<L, S, K, C>
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    /// `POST /admin/tenants/{id}/connect-link`: a link the vendor hands to the customer's admin.
    pub async fn mint_connect_link(&self, id: &str) -> Result<(u16, Value), AdminError> {
        if !crate::ids::tenant_id(id) {
            return Err(AdminError::bad_request(
                "invalid_tenant_id",
                "the tenant id must be 1-64 letters, digits, `-` or `_`",
            ));
        }
        let Some(pages) = self.settings.connect_pages_url.as_deref() else {
            return Err(AdminError::new(
                500,
                "not_configured",
                "this deployment has no CONNECT_PAGES_URL: deploy the template, which sets it",
            ));
        };
        let token = super::oauth::random_state()?;
        let now = self.clock.now_ms();
        let expires_at = now + self.settings.connect_link_ttl.as_millis() as i64;
        let replaced = self.store.connect_link(id).await?.is_some();
        self.store
            .put_connect_link(&ConnectLink {
                tenant_id: id.to_string(),
                token_hash: crate::ids::token_hash(&token),
                created_at: now,
                expires_at,
                opened_at: None,
                session_hash: None,
                session_expires_at: 0,
            })
            .await?;
        let exists = self.store.tenant(id).await?.is_some();
        tracing::info!(tenant = id, replaced, "connect link minted");
        Ok((
            201,
            json!({
                "tenantId": id,
                "url": link_url(pages, id, &token),
                "expiresAt": expires_at,
                "tenantExists": exists,
                "replacedLink": replaced,
                "message": "Send this link to the customer's Lever admin. It opens once, within its expiry; \
            a new link for the tenant revokes this one (DELETE /admin/tenants/{id}/connect-link revokes it too).",
            }),
        ))
    }

    /// `DELETE /admin/tenants/{id}/connect-link`: the link stops opening and its session ends.
    pub async fn revoke_connect_link(&self, id: &str) -> Result<Value, AdminError> {
        if !crate::ids::tenant_id(id) {
            return Err(AdminError::new(404, "unknown_tenant", "no such tenant"));
        }
        let revoked = self.store.delete_connect_link(id).await?;
        tracing::info!(tenant = id, revoked, "connect link revoked");
        Ok(json!({"tenantId": id, "revoked": revoked}))
    }
}
