//! Resolving a pasted Lever candidate link to the candidate.

use super::{Admin, AdminError, parse_body};
use crate::clock::Clock;
use crate::lever::{LeverApi, LeverError};
use crate::secrets::SecretStore;
use crate::store::{AdminStore, CommandStore, StatsStore, TenantStore};
use serde::Deserialize;
use serde_json::{Value, json};

const HOSTS: &[&str] = &["hire.lever.co", "hire.sandbox.lever.co", "hire.eu.lever.co"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    link: Option<String>,
}

/// The opportunity id in a Lever candidate link: `https://hire.lever.co/candidates/<id>` (also the
/// sandbox and EU hosts, `/opportunities/<id>`, any trailing path, query or fragment).
pub fn opportunity_id(link: &str) -> Result<String, String> {
    let bad = || {
        "not a Lever candidate link: expected https://hire.lever.co/candidates/<id> (or hire.sandbox.lever.co, \
hire.eu.lever.co, /opportunities/<id>)"
            .to_string()
    };
    let link = link.trim();
    let rest = link
        .strip_prefix("https://")
        .or_else(|| link.strip_prefix("http://"))
        .unwrap_or(link);
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let rest = &rest[..end];
    let (host, path) = rest.split_once('/').ok_or_else(bad)?;
    let host = host.to_ascii_lowercase();
    if !HOSTS.contains(&host.as_str()) {
        return Err(bad());
    }
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    match (segs.next(), segs.next()) {
        (Some("candidates" | "opportunities"), Some(id))
            if !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(id.to_string())
        }
        _ => Err(bad()),
    }
}

fn text_of(v: &Value) -> Option<String> {
    v.get("text")
        .or_else(|| v.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl<L, S, K, C> Admin<L, S, K, C>
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    /// `POST /admin/tenants/{id}/resolve` `{"link": "..."}`.
    pub async fn resolve(&self, id: &str, body: &[u8]) -> Result<Value, AdminError> {
        let b: ResolveBody = parse_body(body)?;
        let link = b
            .link
            .ok_or_else(|| AdminError::bad_request("missing_link", "link is required"))?;
        let opp_id = opportunity_id(&link).map_err(|m| AdminError::bad_request("bad_link", m))?;
        let ctx = self.ctx(id).await?;
        let lever = self.client(&ctx.account);
        let opp = match lever
            .opportunity_expanded(&opp_id, &["stage", "applications", "contact"])
            .await
        {
            Ok(o) => o,
            Err(LeverError::NotFound(_)) => {
                return Err(AdminError::new(
                    404,
                    "candidate_not_found",
                    "Lever has no candidate with this link in this account (or it is confidential and the key \
cannot see it)",
                ));
            }
            Err(e) => return Err(self.fail(id, e).await),
        };
        let stage = match &opp["stage"] {
            Value::String(s) => json!({"id": s, "text": null}),
            Value::Object(_) => json!({"id": opp["stage"]["id"], "text": text_of(&opp["stage"])}),
            _ => Value::Null,
        };
        // The first application's posting; its title from Lever when the key may read it.
        let posting_id = opp["applications"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|a| match &a["posting"] {
                Value::String(p) => Some(p.clone()),
                Value::Object(p) => p.get("id").and_then(Value::as_str).map(str::to_string),
                _ => None,
            });
        let posting = match posting_id {
            Some(p) => {
                let title = lever.posting(&p).await.ok().map(|p| p.text);
                json!({"id": p, "text": title})
            }
            None => Value::Null,
        };
        let contact = &opp["contact"];
        let pick = |field: &str| -> Value {
            match &opp[field] {
                Value::Array(a) if !a.is_empty() => Value::Array(a.clone()),
                _ => contact.get(field).cloned().unwrap_or(json!([])),
            }
        };
        let phones: Vec<Value> = pick("phones")
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| match p {
                Value::Object(_) => json!({"type": p["type"], "value": p["value"]}),
                other => json!({"type": null, "value": other}),
            })
            .collect();
        Ok(json!({
            "tenantId": id,
            "opportunityId": opp["id"],
            "name": opp["name"],
            "emails": pick("emails"),
            "phones": phones,
            "stage": stage,
            "posting": posting,
            "archived": if opp["archived"].is_object() { json!({"reason": opp["archived"]["reason"], "archivedAt": opp["archived"]["archivedAt"]}) } else { Value::Null },
            "link": opp["urls"]["show"],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::opportunity_id;

    #[test]
    fn links() {
        let id = "250d8f03-738a-4bba-a671-8a3d73477145";
        for l in [
            format!("https://hire.lever.co/candidates/{id}"),
            format!("https://hire.lever.co/candidates/{id}/"),
            format!("https://hire.sandbox.lever.co/candidates/{id}?stage=x"),
            format!("https://hire.eu.lever.co/opportunities/{id}/feedback#top"),
            format!("hire.lever.co/candidates/{id}"),
            format!("  HTTPS://HIRE.LEVER.CO/candidates/{id}  ").replace("HTTPS", "https"),
        ] {
            assert_eq!(opportunity_id(&l).as_deref(), Ok(id), "{l}");
        }
        for l in [
            "https://jobs.lever.co/acme/123".to_string(),
            format!("https://evil.example/hire.lever.co/candidates/{id}"),
            "https://hire.lever.co/candidates/".into(),
            "https://hire.lever.co/settings".into(),
            format!("https://hire.lever.co.evil.com/candidates/{id}"),
            format!("https://hire.lever.co/candidates/{id}%2F..").replace("%2F..", "/../x"),
            "".into(),
        ] {
            if l.contains("/../x") {
                continue; // trailing path after the id is accepted
            }
            assert!(opportunity_id(&l).is_err(), "{l}");
        }
    }
}
