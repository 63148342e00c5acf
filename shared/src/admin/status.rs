//! The tenant's health: overall state with its reason, per webhook kind and for pushes and
//! transcripts; as JSON and as a plain HTML page (no script).

use super::{Admin, AdminError};
use crate::clock::Clock;
use crate::lever::LeverApi;
use crate::secrets::SecretStore;
use crate::store::{
    AdminStore, CommandStore, StatsStore, TenantStats, TenantStatus, TenantStore, WebhookStat,
};
use crate::webhook::EventKind;
use serde::Serialize;

/// Deliveries are counted over Lever's re-run window.
pub const WINDOW_MS: i64 = 15 * 24 * 3600 * 1000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookStatus {
    pub event: &'static str,
    /// Where Lever must deliver this kind (its URL carries the tenant's URL key).
    pub url: Option<String>,
    pub token_set: bool,
    #[serde(flatten)]
    pub stat: WebhookStat,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub tenant_id: String,
    /// `connected`, `degraded` or `disconnected`.
    pub state: &'static str,
    pub reasons: Vec<String>,
    /// How the tenant is connected: `apiKey`, `oauth`, or `null` when that is not recorded.
    pub auth: Option<&'static str>,
    pub environment: String,
    pub lever_base_url: String,
    pub owner_user_id: Option<String>,
    pub connected_at: i64,
    pub webhooks: Vec<WebhookStatus>,
    pub pushes: TenantStats,
    /// Backfill progress and reconciliation with Lever.
    pub sync: crate::sync::SyncStatus,
    pub window_days: i64,
}

impl<L, S, K, C> Admin<L, S, K, C>
where
    S: TenantStore + StatsStore + AdminStore + CommandStore,
    K: SecretStore,
    L: LeverApi,
    C: Clock,
{
    /// `GET /admin/tenants/{id}/status`. Makes no Lever call: a 401 seen by any function (push,
    /// admin) has already marked the tenant disconnected.
    pub async fn status(&self, id: &str) -> Result<StatusReport, AdminError> {
        let tenant = self.tenant(id).await?;
        let secret = self.secrets.load(id).await?;
        let now = self.clock.now_ms();
        let since = now - WINDOW_MS;
        let stats = futures::future::join_all(
            EventKind::ALL.map(|k| self.store.webhook_stat(id, k, since)),
        );
        let (stats, pushes, job) =
            futures::join!(stats, self.store.tenant_stats(id), self.store.sync_job(id));
        let pushes = pushes?;
        let sync = crate::sync::SyncStatus::of(job?.as_ref(), now);
        let mut webhooks = Vec::new();
        for (kind, stat) in EventKind::ALL.iter().zip(stats) {
            let generation = secret.as_ref().map_or(0, |s| s.url_generation);
            webhooks.push(WebhookStatus {
                event: kind.as_str(),
                url: self.webhook_url(id, generation, kind.as_str()),
                token_set: secret.as_ref().is_some_and(|s| !s.tokens(*kind).is_empty()),
                stat: stat?,
            });
        }
        let mut reasons = Vec::new();
        let mut state = match tenant.status {
            TenantStatus::Connected => "connected",
            TenantStatus::Degraded => "degraded",
            TenantStatus::Disconnected => "disconnected",
        };
        if let Some(r) = tenant.status_reason.as_deref().filter(|r| !r.is_empty())
            && state != "connected"
        {
            reasons.push(r.to_string());
        }
        // From the record: this function does not read the tenant's credentials.
        let auth = match tenant.auth.as_deref() {
            Some("oauth") => Some("oauth"),
            Some("apiKey") => Some("apiKey"),
            _ => None,
        };
        if auth.is_none() {
            // A record written before the kind was kept: the next function to read the
            // credentials (the hourly reconciliation at the latest) records it.
            reasons.push(
                "the kind of Lever credentials is not recorded yet: it is, the next time a function calls \
Lever for the tenant (the hourly reconciliation at the latest)"
                    .into(),
            );
        }
        if state == "connected" {
            let missing: Vec<&str> = webhooks
                .iter()
                .filter(|w| !w.token_set)
                .map(|w| w.event)
                .collect();
            if !missing.is_empty() {
                reasons.push(format!("no webhook token for: {}", missing.join(", ")));
            }
            for w in &webhooks {
                if let (Some(at), Some(why)) = (w.stat.last_rejected_at, &w.stat.last_rejection)
                    && at > w.stat.last_received_at.unwrap_or(0)
                    && now - at < 24 * 3600 * 1000
                {
                    reasons.push(format!(
                        "{} deliveries are being rejected: {}",
                        w.event,
                        rejection_text(why)
                    ));
                }
            }
            if tenant.owner_user_id.is_none() {
                reasons.push("no owner is set: pushes and transcripts have no author".into());
            }
            if pushes.pushes_parked > 0 {
                reasons.push(format!("{} pushes are parked", pushes.pushes_parked));
            }
            if let Some(e) = &sync.last_error {
                reasons.push(format!("the sync with Lever is failing: {e}"));
            }
            if !reasons.is_empty() {
                state = "degraded";
            }
        }
        Ok(StatusReport {
            tenant_id: id.to_string(),
            state,
            reasons,
            auth,
            environment: self.settings.environment_of(&tenant.lever_base_url),
            lever_base_url: tenant.lever_base_url,
            owner_user_id: tenant.owner_user_id,
            connected_at: tenant.created_at,
            webhooks,
            pushes,
            sync,
            window_days: WINDOW_MS / (24 * 3600 * 1000),
        })
    }
}

/// What a recorded rejection code means for the admin (the code is all that is stored).
pub fn rejection_text(code: &str) -> String {
    let what = match code {
        "bad_signature" => {
            "the signature does not match the token stored for this event: paste the token Lever shows \
(PUT /admin/tenants/{id}/webhooks/{event}/token) or register the webhooks again"
        }
        "wrong_event" => {
            "another event's deliveries reach this event's URL: check the webhook's URL in Lever"
        }
        "outside_window" => "triggeredAt is more than 15 days old or ahead of the clock",
        "too_large" => "the body is over 256 KiB",
        "invalid_json" | "invalid_envelope" => "the body is not a Lever webhook",
        _ => "",
    };
    if what.is_empty() {
        code.to_string()
    } else {
        format!("{code} ({what})")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "never".into(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
}

/// The status as a page a person reads; no script, no external resource.
pub fn render_html(r: &StatusReport) -> String {
    let mut h = String::new();
    let colour = match r.state {
        "connected" => "#1a7f37",
        "degraded" => "#9a6700",
        _ => "#cf222e",
    };
    h.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!(
        "<title>lever-bridge: {}</title>",
        esc(&r.tenant_id)
    ));
    h.push_str("<style>body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}</style></head><body>");
    h.push_str(&format!(
        "<h1>Lever integration: {}</h1>",
        esc(&r.tenant_id)
    ));
    h.push_str(&format!(
        "<p id=\"state\" style=\"font-size:1.4em;color:{colour}\">State: <strong>{}</strong></p>",
        r.state
    ));
    if !r.reasons.is_empty() {
        h.push_str("<ul id=\"reasons\">");
        for reason in &r.reasons {
            h.push_str(&format!("<li>{}</li>", esc(reason)));
        }
        h.push_str("</ul>");
    }
    h.push_str("<h2>Account</h2><table>");
    for (k, v) in [
        (
            "Environment",
            format!("{} ({})", r.environment, r.lever_base_url),
        ),
        (
            "Credentials",
            match r.auth {
                Some("oauth") => "OAuth".into(),
                Some(_) => "API key".into(),
                None => "none".into(),
            },
        ),
        (
            "Owner",
            r.owner_user_id.clone().unwrap_or_else(|| "not set".into()),
        ),
        ("Connected", time(Some(r.connected_at))),
    ] {
        h.push_str(&format!("<tr><th>{k}</th><td>{}</td></tr>", esc(&v)));
    }
    h.push_str("</table>");
    h.push_str(&format!(
        "<h2>Webhooks (last {} days)</h2><table><tr><th>Event</th><th>Token</th><th>Deliveries</th>\
<th>Last received</th><th>Last rejected</th><th>Why</th></tr>",
        r.window_days
    ));
    for w in &r.webhooks {
        h.push_str(&format!(
            "<tr><td>{}<br><small>{}</small></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            w.event,
            esc(w.url.as_deref().unwrap_or("")),
            if w.token_set { "set" } else { "missing" },
            w.stat.deliveries,
            time(w.stat.last_received_at),
            time(w.stat.last_rejected_at),
            esc(w.stat.last_rejection.as_deref().unwrap_or("")),
        ));
    }
    h.push_str("</table><h2>Pushes into Lever</h2><table>");
    let p = &r.pushes;
    for (k, v) in [
        ("Done", p.pushes_done.to_string()),
        ("Failed", p.pushes_failed.to_string()),
        ("Parked", p.pushes_parked.to_string()),
        (
            "Last error",
            match &p.last_push_error {
                Some(e) => format!("{} ({})", e, time(p.last_push_error_at)),
                None => "none".into(),
            },
        ),
        (
            "Transcript messages waiting",
            p.transcript_messages_waiting.to_string(),
        ),
    ] {
        h.push_str(&format!("<tr><th>{k}</th><td>{}</td></tr>", esc(&v)));
    }
    h.push_str("</table><h2>Sync with Lever</h2><table>");
    let s = &r.sync;
    let mode = match (s.mode, s.running) {
        (None, _) => "never run".to_string(),
        (Some(crate::store::SyncMode::Backfill), true) => "backfill in progress".into(),
        (Some(crate::store::SyncMode::Backfill), false) => "backfill done".into(),
        (Some(crate::store::SyncMode::Reconcile), true) => "reconciling".into(),
        (Some(crate::store::SyncMode::Reconcile), false) => "reconciled".into(),
    };
    let progress = match s.estimated_total {
        Some(total) if s.running => format!("{} of about {total}", s.done),
        _ => s.done.to_string(),
    };
    for (k, v) in [
        ("State", mode),
        ("Candidates read", progress),
        ("Started", time(s.started_at)),
        ("Expected to finish", time(s.expected_finish_at)),
        ("In sync with Lever as of", time(s.in_sync_as_of)),
        ("Next run", time(s.next_run_at)),
        (
            "Changes recovered that no webhook delivered",
            format!(
                "{} (last run: {})",
                s.changes_recovered, s.changes_recovered_last_run
            ),
        ),
        (
            "Last error",
            s.last_error.clone().unwrap_or_else(|| "none".into()),
        ),
    ] {
        h.push_str(&format!("<tr><th>{k}</th><td>{}</td></tr>", esc(&v)));
    }
    h.push_str("</table></body></html>");
    h
}
