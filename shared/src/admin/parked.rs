//! Parked commands of a tenant: listed, sent back to their queues by hand, and sent back by
//! themselves when the tenant reconnects (a new key, the OAuth callback, a passing connection test).

use super::{Admin, AdminError};
use crate::clock::Clock;
use crate::lever::LeverApi;
use crate::push::parked::{self, Replayed};
use crate::secrets::SecretStore;
use crate::store::{AdminStore, CommandStore, StatsStore, TenantStatus, TenantStore};
use serde_json::{Value, json};

impl<L, S, K, C> Admin<L, S, K, C>
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    /// `GET /admin/tenants/{id}/parked`: the commands waiting for the tenant, oldest first.
    pub async fn list_parked(&self, id: &str) -> Result<Value, AdminError> {
        self.tenant(id).await?;
        let parked: Vec<Value> = self
            .store
            .parked(id)
            .await?
            .into_iter()
            .map(|p| {
                json!({
                    "commandId": p.id,
                    "push": p.kind,
                    "opportunityId": p.command["opportunityId"],
                    "parkedAt": p.parked_at,
                    "error": p.error,
                    "replays": p.replays,
                })
            })
            .collect();
        Ok(json!({"tenantId": id, "count": parked.len(), "parked": parked}))
    }

    /// `POST /admin/tenants/{id}/parked/replay`: sends the parked commands back to their queues now.
    pub async fn replay_parked(&self, id: &str) -> Result<Value, AdminError> {
        let tenant = self.tenant(id).await?;
        if tenant.status == TenantStatus::Disconnected {
            return Err(AdminError::new(
                409,
                "tenant_disconnected",
                format!(
                    "tenant `{id}` is disconnected: its commands would be parked again. Reconnect it first \
(PUT /admin/tenants/{id}/apiKey or GET /admin/oauth/authorize), which replays them by itself"
                ),
            ));
        }
        let report = self.replay(id).await?;
        Ok(json!({"tenantId": id, "parked": report}))
    }

    async fn replay(&self, id: &str) -> Result<Replayed, AdminError> {
        let Some(queues) = &self.settings.queues else {
            return Err(AdminError::new(
                500,
                "not_configured",
                "this function has no push queues to replay parked commands to (PUSH_QUEUE_URL_*)",
            ));
        };
        Ok(parked::replay(&self.store, queues, id, self.clock.now_ms()).await?)
    }

    /// After a reconnection: every parked command goes back to its queue. Best effort (the
    /// reconnection itself stands); what could not be sent stays parked for the route or the next one.
    pub(super) async fn replay_after_reconnect(&self, id: &str) -> Option<Replayed> {
        // Boxed: the replay's future is large and the reconnecting routes' already are.
        match Box::pin(self.replay(id)).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(
                    tenant = id,
                    error = e.message.as_str(),
                    "parked commands were not replayed"
                );
                None
            }
        }
    }
}
