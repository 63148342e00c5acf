//! Connecting a tenant with an API key, replacing the key, and disconnecting.

use super::{Admin, AdminError, lever_error, parse_body};
use crate::clock::Clock;
use crate::lever::calls::Lever;
use crate::lever::{Account, Auth, LeverApi, LeverError, LeverRequest};
use crate::secrets::{Redacted, SecretStore};
use crate::store::{AdminStore, CommandStore, StatsStore, Tenant, TenantStatus, TenantStore};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConnectBody {
    tenant_id: Option<String>,
    environment: Option<String>,
    api_key: Option<Redacted>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyBody {
    api_key: Option<Redacted>,
}

fn check_key(key: Option<Redacted>) -> Result<Redacted, AdminError> {
    let key =
        key.ok_or_else(|| AdminError::bad_request("missing_api_key", "apiKey is required"))?;
    let k = key.expose();
    if k.trim().is_empty() || k.len() > 512 || k.chars().any(char::is_whitespace) {
        return Err(AdminError::bad_request(
            "invalid_api_key",
            "apiKey must be the key exactly as Lever shows it (no spaces)",
        ));
    }
    Ok(key)
}

fn random_id() -> String {
    format!("t-{:016x}", fastrand::u64(..))
}

impl<L, S, K, C> Admin<L, S, K, C>
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    /// A key Lever rejects (401) is refused before anything is stored; other answers (a 403 for a
    /// missing `users:read` included) leave it to the connection test.
    async fn verify_key(&self, base_url: &str, key: &Redacted) -> Result<(), AdminError> {
        let account = Account {
            base_url: base_url.to_string(),
            auth: Auth::ApiKey(key.clone()),
        };
        let lever = Lever::new(&self.lever, &account, self.deadline());
        match lever
            .send(LeverRequest::get("/users").query("limit", "1"))
            .await
        {
            Ok(_) | Err(LeverError::Forbidden(_)) => Ok(()),
            Err(LeverError::Unauthorized(_)) => Err(AdminError::bad_request(
                "invalid_api_key",
                "Lever rejected this API key (401): check that it was copied whole, that it belongs to the \
chosen environment, and that it was not deleted (Lever: Settings > Integrations and API > API Credentials)",
            )),
            Err(e) => Err(lever_error(&e)),
        }
    }

    /// `POST /admin/tenants`.
    pub async fn connect(&self, body: &[u8]) -> Result<(u16, Value), AdminError> {
        let b: ConnectBody = parse_body(body)?;
        let id = b.tenant_id.unwrap_or_else(random_id);
        if !crate::ids::tenant_id(&id) {
            return Err(AdminError::bad_request(
                "invalid_tenant_id",
                "tenantId must be 1-64 letters, digits, `-` or `_`",
            ));
        }
        let environment = b.environment.unwrap_or_else(|| "production".into());
        let Some(base_url) = self.settings.base_url_of(&environment).map(str::to_string) else {
            let names: Vec<&str> = self
                .settings
                .environments
                .iter()
                .map(|(n, _)| n.as_str())
                .collect();
            return Err(AdminError::bad_request(
                "invalid_environment",
                format!("environment must be one of: {}", names.join(", ")),
            ));
        };
        let key = check_key(b.api_key)?;
        if self.store.tenant(&id).await?.is_some() {
            return Err(AdminError::new(
                409,
                "tenant_exists",
                format!(
                    "tenant `{id}` exists: replace its key with PUT /admin/tenants/{id}/apiKey, or DELETE it first"
                ),
            ));
        }
        self.verify_key(&base_url, &key).await?;
        // A tenant deleted before under this id: connecting it again lifts the deletion's mark.
        self.store.clear_deleted(&id).await?;
        // Secret first: a record without a secret would be a tenant nobody can use.
        let saved = self.update_secret(&id, |s| s.api_key = Some(key)).await?;
        let now = self.clock.now_ms();
        let tenant = Tenant {
            auth: saved.auth_kind().map(str::to_string),
            ..Tenant::connected(&id, &base_url, now)
        };
        self.store
            .connect_tenant(&tenant, self.clock.now_ms())
            .await?;
        self.schedule_backfill(&id).await?;
        tracing::info!(
            tenant = id.as_str(),
            environment = environment.as_str(),
            "tenant connected"
        );
        Ok((
            201,
            json!({
                "tenantId": id,
                "environment": environment,
                "leverBaseUrl": base_url,
                "status": "connected",
                "connectedAt": now,
                "webhookUrls": self.webhook_urls(&id, saved.url_generation),
                "next": [
                    format!("POST /admin/tenants/{id}/test"),
                    format!("GET /admin/tenants/{id}/users, then PUT /admin/tenants/{id}/owner"),
                    format!("POST /admin/tenants/{id}/webhooks"),
                    format!("GET /admin/tenants/{id}/status (the backfill of every candidate has started)"),
                ],
            }),
        ))
    }

    /// The vendor's view of every candidate, filled in by the sync function's next run (within a
    /// minute); replaces a job in progress.
    pub async fn schedule_backfill(&self, id: &str) -> Result<crate::store::SyncJob, AdminError> {
        let previous = self.store.sync_job(id).await?;
        let job = crate::sync::new_backfill(id, previous.as_ref(), self.clock.now_ms());
        self.store.put_sync_job(&job).await?;
        Ok(job)
    }

    /// `POST /admin/tenants/{id}/sync`: a new backfill now (e.g. after restoring from a backup).
    pub async fn start_sync(&self, id: &str) -> Result<Value, AdminError> {
        self.tenant(id).await?;
        let job = self.schedule_backfill(id).await?;
        Ok(json!({
            "tenantId": id,
            "backfill": "scheduled",
            "jobId": job.job_id,
            "progress": format!("GET /admin/tenants/{id}/status"),
        }))
    }

    /// `PUT /admin/tenants/{id}/apiKey`: a new key (after a 401, or a rotation); the webhook tokens
    /// stay, OAuth tokens go (the functions would otherwise keep using them).
    pub async fn replace_key(&self, id: &str, body: &[u8]) -> Result<Value, AdminError> {
        let tenant = self.tenant(id).await?;
        let b: KeyBody = parse_body(body)?;
        let key = check_key(b.api_key)?;
        self.verify_key(&tenant.lever_base_url, &key).await?;
        let saved = self
            .update_secret(id, |s| {
                s.api_key = Some(key);
                s.oauth = None;
            })
            .await?;
        self.store.set_tenant_auth(id, saved.auth_kind()).await?;
        self.store
            .set_tenant_status(id, TenantStatus::Connected, "", self.clock.now_ms())
            .await?;
        tracing::info!(tenant = id, "tenant API key replaced");
        let replayed = self.replay_after_reconnect(id).await;
        Ok(
            json!({"tenantId": id, "status": "connected", "parkedReplayed": replayed.map(|r| r.replayed)}),
        )
    }

    /// `DELETE /admin/tenants/{id}`: the secret and every record reachable by key. Webhooks the
    /// tenant's URLs receive then get 401 (unknown tenant) once instances' caches expire.
    pub async fn disconnect(&self, id: &str) -> Result<Value, AdminError> {
        self.tenant(id).await?;
        // Under the secret lease: no writer in flight saves the secret again after it is gone.
        let failed = std::sync::atomic::AtomicUsize::new(0);
        crate::tenant::delete_tenant(
            &self.store,
            &self.secrets,
            &self.clock,
            id,
            Duration::from_secs(8),
            async {
                // Each parked command ends as failed, so the vendor hears of every one.
                let n = crate::push::parked::fail_all(
                    &self.store,
                    id,
                    "the tenant was deleted before it reconnected",
                    self.clock.now_ms(),
                )
                .await?;
                failed.store(n, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            },
        )
        .await?;
        let failed = failed.load(std::sync::atomic::Ordering::SeqCst);
        tracing::info!(tenant = id, "tenant deleted");
        Ok(json!({
            "tenantId": id,
            "deleted": true,
            "parkedFailed": failed,
            "message": "The tenant's secret and records are deleted. Delete its webhooks in Lever \
        (Settings > Integrations and API > Webhooks); until then Lever's deliveries get 401.",
        }))
    }
}
