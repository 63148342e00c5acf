//! Roles: the account's postings (synced), the vendor's roles mapped to them, and mismatches.

use super::{Admin, AdminError, parse_body};
use crate::clock::Clock;
use crate::lever::{LeverApi, LeverError};
use crate::secrets::SecretStore;
use crate::store::{AdminStore, CommandStore, PostingRecord, StatsStore, TenantStore};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleBody {
    /// `null` removes the mapping.
    posting_id: Option<String>,
}

impl<L, S, K, C> Admin<L, S, K, C>
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    /// `POST /admin/tenants/{id}/postings/sync`: every page, confidential postings included when the
    /// key may see them; postings no longer returned are kept, marked gone.
    pub async fn sync_postings(&self, id: &str) -> Result<Value, AdminError> {
        let ctx = self.ctx(id).await?;
        let lever = self.client(&ctx.account);
        // `all` returns confidential postings to keys with confidential access and just the others
        // to the rest (simulator, and Lever's docs). UNCERTAIN whether a real key without access
        // gets a 403 instead: then fall back to Lever's default.
        let postings = match lever.postings(Some("all")).await {
            Err(LeverError::Forbidden(_)) => lever.postings(None).await,
            other => other,
        };
        let postings = match postings {
            Ok(p) => p,
            Err(e) => return Err(self.fail(id, e).await),
        };
        let now = self.clock.now_ms();
        let mut records: BTreeMap<String, PostingRecord> = postings
            .into_iter()
            .map(|p| {
                (
                    p.id.clone(),
                    PostingRecord {
                        id: p.id,
                        title: p.text,
                        state: p.state,
                        confidential: p.confidentiality.as_deref() == Some("confidential"),
                        gone: false,
                        synced_at: now,
                    },
                )
            })
            .collect();
        let seen = records.len();
        let confidential = records.values().filter(|p| p.confidential).count();
        let mut gone = 0;
        for old in self.store.postings(id).await? {
            if !records.contains_key(&old.id) {
                gone += 1;
                records.insert(
                    old.id.clone(),
                    PostingRecord {
                        gone: true,
                        synced_at: now,
                        ..old
                    },
                );
            }
        }
        let list: Vec<PostingRecord> = records.into_values().collect();
        self.store.put_postings(id, &list).await?;
        tracing::info!(tenant = id, postings = seen, "postings synced");
        Ok(json!({
            "tenantId": id,
            "postings": seen,
            "confidential": confidential,
            "gone": gone,
            "syncedAt": now,
        }))
    }

    /// `PUT /admin/tenants/{id}/roles/{roleId}` `{"postingId": "..."}`: the posting must be known
    /// (synced) and not gone.
    pub async fn map_role(&self, id: &str, role: &str, body: &[u8]) -> Result<Value, AdminError> {
        if !crate::ids::plain_id(role) {
            return Err(AdminError::bad_request(
                "invalid_role_id",
                "roleId must be 1-128 of A-Za-z0-9-_.:",
            ));
        }
        let b: RoleBody = parse_body(body)?;
        self.tenant(id).await?;
        if let Some(p) = &b.posting_id {
            let postings = self.store.postings(id).await?;
            match postings.iter().find(|x| &x.id == p) {
                Some(x) if !x.gone => {}
                Some(_) => {
                    return Err(AdminError::bad_request(
                        "posting_gone",
                        format!("posting `{p}` is no longer in Lever (last sync)"),
                    ));
                }
                None => {
                    return Err(AdminError::bad_request(
                        "unknown_posting",
                        format!(
                            "posting `{p}` is unknown: sync postings first (POST /admin/tenants/{id}/postings/sync)"
                        ),
                    ));
                }
            }
        }
        self.store
            .set_role(id, role, b.posting_id.as_deref())
            .await?;
        Ok(json!({"tenantId": id, "roleId": role, "postingId": b.posting_id}))
    }

    /// `GET /admin/tenants/{id}/roles`: the mapping and its mismatches.
    pub async fn roles(&self, id: &str) -> Result<Value, AdminError> {
        self.tenant(id).await?;
        let postings = self.store.postings(id).await?;
        let roles = self.store.roles(id).await?;
        let by_id: BTreeMap<&str, &PostingRecord> =
            postings.iter().map(|p| (p.id.as_str(), p)).collect();
        let mut mismatches = Vec::new();
        let mut list = Vec::new();
        for (role, posting) in &roles {
            let p = by_id.get(posting.as_str());
            list.push(json!({
                "roleId": role,
                "postingId": posting,
                "postingTitle": p.map(|p| p.title.clone()),
                "postingState": p.map(|p| if p.gone { "gone".to_string() } else { p.state.clone().unwrap_or_default() }),
            }));
            match p {
                None | Some(PostingRecord { gone: true, .. }) => mismatches.push(json!({
                    "kind": "postingGone", "roleId": role, "postingId": posting,
                    "message": "the mapped posting is no longer in Lever",
                })),
                Some(p) if p.state.as_deref() == Some("closed") => mismatches.push(json!({
                    "kind": "postingClosed", "roleId": role, "postingId": posting, "postingTitle": p.title,
                    "message": "the mapped posting is closed",
                })),
                _ => {}
            }
        }
        for p in &postings {
            if !p.gone
                && p.state.as_deref() == Some("published")
                && !roles.iter().any(|(_, mapped)| mapped == &p.id)
            {
                mismatches.push(json!({
                    "kind": "unmapped", "postingId": p.id, "postingTitle": p.title,
                    "message": "a published posting no vendor role maps to",
                }));
            }
        }
        Ok(json!({
            "tenantId": id,
            "syncedAt": postings.iter().map(|p| p.synced_at).max(),
            "roles": list,
            "mismatches": mismatches,
        }))
    }
}
