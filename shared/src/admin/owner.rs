//! The tenant's owner: the Lever user pushes and transcript notes are attributed to.

use super::{Admin, AdminError, parse_body};
use crate::clock::Clock;
use crate::lever::{LeverApi, LeverError};
use crate::secrets::SecretStore;
use crate::store::{AdminStore, CommandStore, StatsStore, TenantStore};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OwnerBody {
    user_id: Option<String>,
}

impl<L, S, K, C> Admin<L, S, K, C>
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    /// `GET /admin/tenants/{id}/users`: the account's active users, every page, for a picker.
    pub async fn users(&self, id: &str) -> Result<Value, AdminError> {
        let ctx = self.ctx(id).await?;
        let users = match self.client(&ctx.account).users(false).await {
            Ok(u) => u,
            Err(e) => return Err(self.fail(id, e).await),
        };
        let users: Vec<Value> = users
            .into_iter()
            .filter(|u| u.deactivated_at.is_none())
            .map(|u| {
                json!({"id": u.id, "name": u.name, "email": u.email, "accessRole": u.access_role})
            })
            .collect();
        Ok(json!({
            "tenantId": id,
            "ownerUserId": ctx.tenant.owner_user_id,
            "users": users,
        }))
    }

    /// `PUT /admin/tenants/{id}/owner`: the user must exist in Lever and not be deactivated.
    pub async fn set_owner(&self, id: &str, body: &[u8]) -> Result<Value, AdminError> {
        let b: OwnerBody = parse_body(body)?;
        let user_id = b
            .user_id
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| AdminError::bad_request("missing_user_id", "userId is required"))?;
        let ctx = self.ctx(id).await?;
        let user = match self.client(&ctx.account).user(&user_id).await {
            Ok(u) => u,
            Err(LeverError::NotFound(_)) | Err(LeverError::Rejected { status: 400, .. }) => {
                return Err(AdminError::bad_request(
                    "unknown_user",
                    format!(
                        "Lever has no user `{user_id}`: pick one from GET /admin/tenants/{id}/users"
                    ),
                ));
            }
            Err(e) => return Err(self.fail(id, e).await),
        };
        if user.deactivated_at.is_some() {
            return Err(AdminError::bad_request(
                "user_deactivated",
                format!(
                    "{} is deactivated in Lever: pick an active user from GET /admin/tenants/{id}/users",
                    user.name
                ),
            ));
        }
        let event = crate::events::owner_changed(
            id,
            &user.id,
            &user.name,
            user.email.as_deref(),
            ctx.tenant.owner_user_id.as_deref(),
            self.clock.now_ms(),
        );
        if !self.store.set_owner(id, &user.id, &event).await? {
            return Err(AdminError::new(
                404,
                "unknown_tenant",
                format!("no tenant `{id}`"),
            ));
        }
        tracing::info!(tenant = id, owner = user.id.as_str(), "owner set");
        Ok(json!({
            "tenantId": id,
            "owner": {"id": user.id, "name": user.name, "email": user.email},
        }))
    }
}
