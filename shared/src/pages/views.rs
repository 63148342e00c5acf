//! The pages' HTML: askama templates (`shared/templates/connect/`, escaped by default) filled from
//! the admin API's own answers.

use crate::admin::status::StatusReport;
use crate::secrets::TenantSecret;
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

pub const STYLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/templates/connect/style.css"
));
/// The sheet's accent colour, which the vendor's replaces.
pub const ACCENT: &str = "#2456c8";
/// The webhook URLs' Copy buttons (progressive enhancement).
pub const COPY_JS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/templates/connect/copy.js"
));

/// The steps, in order: page and label.
const STEPS: &[(&str, &str)] = &[
    ("key", "1. API key"),
    ("permissions", "2. Permissions"),
    ("owner", "3. Owner"),
    ("webhooks", "4. Webhooks"),
    ("status", "5. Status"),
];

/// What every step's page shows around its own part.
pub struct Frame {
    /// What the admin connects (the vendor's product) and its logo.
    pub product: String,
    pub logo: Option<String>,
    pub tenant: String,
    pub step: &'static str,
    pub csrf: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

impl Frame {
    pub fn new(
        tenant: &str,
        step: &'static str,
        csrf: String,
        brand: &crate::config::Brand,
    ) -> Frame {
        Frame {
            product: brand.product_name.clone(),
            logo: brand.logo_url.clone(),
            tenant: tenant.to_string(),
            step,
            csrf,
            error: None,
            notice: None,
        }
    }
    pub fn steps(&self) -> &'static [(&'static str, &'static str)] {
        STEPS
    }
}

/// Renders, or a plain page if a template fails (it cannot on these types; never a panic).
fn render(t: &impl Template) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "connect pages: a template failed");
        "<!doctype html><title>Error</title><p>This page could not be shown: reload it.</p>".into()
    })
}

#[derive(Template)]
#[template(path = "connect/problem.html")]
struct Problem<'a> {
    title: &'a str,
    message: &'a str,
    next: &'a str,
}

pub fn problem(title: &str, message: &str, next: &str) -> String {
    render(&Problem {
        title,
        message,
        next,
    })
}

#[derive(Template)]
#[template(
    source = "{% extends \"connect/base.html\" %}{% block title %}Error{% endblock %}",
    ext = "html"
)]
struct Empty {
    frame: Frame,
}

/// A step's frame with nothing but its error.
pub fn empty(frame: Frame) -> String {
    render(&Empty { frame })
}

#[derive(Template)]
#[template(path = "connect/key.html")]
struct Key {
    frame: Frame,
    stored: Option<String>,
    permissions: Vec<(&'static str, &'static str)>,
    environments: Vec<(String, String)>,
    environment: String,
    /// The deployment has an OAuth client: "Connect with Lever" is offered.
    oauth: bool,
}

fn environment_label(name: &str, base_url: &str) -> String {
    match name {
        "production" => "Production (Lever in the US)".into(),
        "sandbox" => "Sandbox".into(),
        "eu" => "EU (Lever in Europe)".into(),
        other => format!("{other} ({base_url})"),
    }
}

pub fn key(
    frame: Frame,
    environments: &[(String, String)],
    environment: &str,
    secret: Option<&TenantSecret>,
    oauth: bool,
) -> String {
    // A stored key shows as its last four characters only.
    let stored = secret.and_then(|s| match (&s.oauth, &s.api_key) {
        (Some(_), _) => {
            Some("Connected through Lever (OAuth). A key pasted here replaces it.".into())
        }
        (None, Some(k)) => {
            let k = k.expose();
            let tail: String = k
                .chars()
                .skip(k.chars().count().saturating_sub(4))
                .collect();
            Some(format!(
                "A key ending in {tail} is stored. Paste a new one to replace it."
            ))
        }
        (None, None) => None,
    });
    render(&Key {
        frame,
        stored,
        permissions: crate::admin::probe::permissions(),
        environments: environments
            .iter()
            .map(|(n, u)| (n.clone(), environment_label(n, u)))
            .collect(),
        environment: environment.to_string(),
        oauth,
    })
}

#[derive(Deserialize)]
struct TestAnswer {
    result: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    checks: Vec<CheckAnswer>,
}

#[derive(Deserialize)]
struct CheckAnswer {
    permission: String,
    what: String,
    state: String,
    #[serde(default)]
    message: Option<String>,
}

struct CheckLine {
    permission: String,
    what: String,
    state: String,
    fix: Option<String>,
}

#[derive(Template)]
#[template(path = "connect/permissions.html")]
struct Permissions {
    frame: Frame,
    result: String,
    summary: String,
    checks: Vec<CheckLine>,
}

pub fn permissions(frame: Frame, answer: &Value) -> String {
    let a: TestAnswer = serde_json::from_value(answer.clone()).unwrap_or(TestAnswer {
        result: "unknown".into(),
        message: Some("The test's answer could not be read: test again.".into()),
        checks: Vec::new(),
    });
    let checks = a
        .checks
        .into_iter()
        .map(|c| {
            let fix = match (c.state.as_str(), c.permission.as_str()) {
                ("missing", "confidential") => Some(
                    "Lever: this key was made without access to confidential postings. If their candidates \
must be included, generate a new key with “Allow access to confidential postings” switched on and paste it."
                        .to_string(),
                ),
                ("missing", p) => Some(format!(
                    "Lever: Settings > Integrations and API > API Credentials, edit this key, tick “{p}”, save, then test again."
                )),
                ("unknown", _) => c.message.clone(),
                _ => None,
            };
            CheckLine {
                permission: c.permission,
                what: c.what,
                state: c.state,
                fix,
            }
        })
        .collect();
    let summary = match a.result.as_str() {
        "ok" => "The key has every permission this integration needs.".to_string(),
        _ => a
            .message
            .unwrap_or_else(|| "Some permissions are missing.".into()),
    };
    render(&Permissions {
        frame,
        result: a.result,
        summary,
        checks,
    })
}

#[derive(Deserialize)]
struct UsersAnswer {
    #[serde(default, rename = "ownerUserId")]
    owner: Option<String>,
    #[serde(default)]
    users: Vec<UserAnswer>,
}

#[derive(Deserialize)]
struct UserAnswer {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: Option<String>,
}

struct UserLine {
    id: String,
    name: String,
    email: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "connect/owner.html")]
struct Owner {
    frame: Frame,
    query: String,
    users: Vec<UserLine>,
    total: usize,
}

pub fn owner(frame: Frame, answer: &Value, query: &str) -> String {
    let a: UsersAnswer = serde_json::from_value(answer.clone()).unwrap_or(UsersAnswer {
        owner: None,
        users: Vec::new(),
    });
    let total = a.users.len();
    let q = query.trim().to_lowercase();
    let users = a
        .users
        .into_iter()
        .filter(|u| {
            q.is_empty()
                || u.name.to_lowercase().contains(&q)
                || u.email.as_deref().unwrap_or("").to_lowercase().contains(&q)
        })
        .map(|u| UserLine {
            current: a.owner.as_deref() == Some(u.id.as_str()),
            id: u.id,
            name: u.name,
            email: u.email.unwrap_or_default(),
        })
        .collect();
    render(&Owner {
        frame,
        query: query.to_string(),
        users,
        total,
    })
}

struct HookLine {
    event: String,
    state: String,
    class: &'static str,
}

#[derive(Template)]
#[template(path = "connect/webhooks.html")]
struct Webhooks {
    frame: Frame,
    hooks: Vec<HookLine>,
    reminder: &'static str,
}

pub fn webhooks(mut frame: Frame, report: &StatusReport, registered: Option<&Value>) -> String {
    let outcome = |event: &str| {
        registered?["webhooks"]
            .as_array()?
            .iter()
            .find(|w| w["event"] == event)
            .and_then(|w| w["status"].as_str().map(str::to_string))
    };
    let hooks: Vec<HookLine> = report
        .webhooks
        .iter()
        .map(|w| {
            let (state, class) = match (outcome(w.event).as_deref(), w.token_set) {
                (Some("created"), _) => ("registered just now".to_string(), "ok"),
                (Some("exists"), true) => ("registered".to_string(), "ok"),
                (Some(other), _) => (other.to_string(), "missing"),
                (None, true) => ("registered".to_string(), "ok"),
                (None, false) => ("not registered".to_string(), "missing"),
            };
            HookLine {
                event: w.event.to_string(),
                state,
                class,
            }
        })
        .collect();
    if registered.is_some() && frame.error.is_none() {
        let ok = hooks.iter().filter(|h| h.class == "ok").count();
        frame.notice = Some(format!(
            "{ok} of {} webhooks are registered in Lever.",
            hooks.len()
        ));
    }
    render(&Webhooks {
        frame,
        hooks,
        reminder: crate::webhook::SUPER_ADMIN_REMINDER,
    })
}

struct StatusHook {
    event: String,
    token: &'static str,
    deliveries: u64,
    last_received: String,
    last_rejected: String,
}

/// A problem and what fixes it: a page to go to, or a button that does it here.
struct Fix {
    text: String,
    link: Option<(&'static str, &'static str)>,
    button: Option<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "connect/status.html")]
struct Status {
    frame: Frame,
    state: &'static str,
    reasons: Vec<String>,
    fixes: Vec<Fix>,
    auth: &'static str,
    environment: String,
    owner: String,
    backfill: String,
    reconciled: String,
    figures: Vec<(&'static str, String)>,
    window_days: i64,
    hooks: Vec<StatusHook>,
}

/// `2026-12-04 03:50 UTC`, or `never`.
fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "never".into(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
}

/// `1 command waits`, `3 commands wait`.
fn waiting(n: i64) -> String {
    if n == 1 {
        "1 command waits".into()
    } else {
        format!("{n} commands wait")
    }
}

/// What is wrong with the tenant, each with what to do about it.
fn fixes(r: &StatusReport, now_ms: i64) -> Vec<Fix> {
    let text = |t: String| Fix {
        text: t,
        link: None,
        button: None,
    };
    let mut out = Vec::new();
    if r.state == "disconnected" {
        out.push(Fix {
            text: "Lever does not accept this account's credentials (they were deleted, or none are stored): \
nothing reaches Lever until it is connected again. Commands wait meanwhile."
                .into(),
            link: Some(("key", "Paste a new key or connect with Lever")),
            button: None,
        });
    }
    if r.owner_user_id.is_none() {
        out.push(Fix {
            text: "No owner is picked: notes and moves cannot be attributed in Lever.".into(),
            link: Some(("owner", "Pick the owner")),
            button: None,
        });
    }
    let missing: Vec<&str> = r
        .webhooks
        .iter()
        .filter(|w| !w.token_set)
        .map(|w| w.event)
        .collect();
    if !missing.is_empty() {
        out.push(Fix {
            text: format!("No webhook is set for: {}.", missing.join(", ")),
            link: Some(("webhooks", "Register the webhooks")),
            button: None,
        });
    }
    for w in &r.webhooks {
        if let (Some(at), Some(why)) = (w.stat.last_rejected_at, &w.stat.last_rejection)
            && at > w.stat.last_received_at.unwrap_or(0)
            && now_ms - at < 24 * 3600 * 1000
        {
            out.push(Fix {
                text: format!(
                    "Lever's {} deliveries are refused: {}.",
                    w.event,
                    crate::admin::status::rejection_text(why)
                        .replace(" (PUT /admin/tenants/{id}/webhooks/{event}/token)", "")
                ),
                link: Some(("manual", "Check its URL and token")),
                button: None,
            });
        }
    }
    if missing.is_empty() && r.webhooks.iter().all(|w| w.stat.last_received_at.is_none()) {
        out.push(text(format!(
            "No delivery has arrived yet. {}",
            crate::webhook::SUPER_ADMIN_REMINDER
        )));
    }
    let p = &r.pushes;
    if p.pushes_parked > 0 {
        out.push(if r.state == "disconnected" {
            text(format!(
                "{} for the reconnection: sent by themselves once it is connected again.",
                waiting(p.pushes_parked)
            ))
        } else {
            Fix {
                text: format!("{} to be sent to Lever.", waiting(p.pushes_parked)),
                link: None,
                button: Some(("replay", "Send them now")),
            }
        });
    }
    if p.pushes_failed > 0
        && let Some(error) = &p.last_push_error
    {
        out.push(text(format!(
            "{} commands failed; the last, {}: {error}",
            p.pushes_failed,
            when(p.last_push_error_at)
        )));
    }
    if let Some(error) = &r.sync.last_error {
        out.push(text(format!("The last sync with Lever failed: {error}")));
    }
    out
}

pub fn status(frame: Frame, r: &StatusReport, now_ms: i64) -> String {
    let s = &r.sync;
    let backfill = match (s.running, s.estimated_total, s.finished_at) {
        (true, Some(total), _) => format!(
            "running: {} of about {total} candidates{}",
            s.done,
            s.expected_finish_at
                .map(|t| format!(
                    ", done in about {} min ({})",
                    ((t - now_ms) / 60_000).max(1),
                    when(Some(t))
                ))
                .unwrap_or_default()
        ),
        (true, None, _) => format!("running: {} candidates so far", s.done),
        (false, _, Some(at)) => format!("done ({} candidates), {}", s.done, when(Some(at))),
        (false, _, None) => "not started: it starts within a minute of connecting".into(),
    };
    let reconciled = match s.in_sync_as_of {
        Some(at) => format!(
            "everything Lever changed before {} is here; next check {}",
            when(Some(at)),
            when(s.next_run_at)
        ),
        None => "after the backfill".into(),
    };
    let p = &r.pushes;
    let figures = vec![
        ("Commands carried out", p.pushes_done.to_string()),
        ("Commands failed", p.pushes_failed.to_string()),
        ("Commands waiting (parked)", p.pushes_parked.to_string()),
        (
            "SMS messages waiting for their transcript",
            p.transcript_messages_waiting.to_string(),
        ),
        (
            "Changes recovered that no webhook delivered",
            s.changes_recovered.to_string(),
        ),
        (
            "Deletions Lever did not confirm",
            p.deletions_unconfirmed.to_string(),
        ),
    ];
    let hooks = r
        .webhooks
        .iter()
        .map(|w| StatusHook {
            event: w.event.to_string(),
            token: if w.token_set { "set" } else { "missing" },
            deliveries: w.stat.deliveries,
            last_received: when(w.stat.last_received_at),
            last_rejected: match (&w.stat.last_rejection, w.stat.last_rejected_at) {
                (Some(why), at @ Some(_)) => format!("{} ({why})", when(at)),
                _ => "never".into(),
            },
        })
        .collect();
    render(&Status {
        fixes: fixes(r, now_ms),
        frame,
        state: r.state,
        reasons: r.reasons.clone(),
        auth: match r.auth {
            Some("apiKey") => "an API key",
            Some("oauth") => "Lever (OAuth)",
            _ => "nothing yet",
        },
        environment: r.environment.clone(),
        owner: r
            .owner_user_id
            .clone()
            .unwrap_or_else(|| "not picked".into()),
        backfill,
        reconciled,
        figures,
        window_days: r.window_days,
        hooks,
    })
}

struct ManualLine {
    event: String,
    url: String,
    state: String,
    class: &'static str,
}

#[derive(Template)]
#[template(path = "connect/manual.html")]
struct Manual {
    frame: Frame,
    hooks: Vec<ManualLine>,
}

/// The ten URLs to copy into Lever, a token field each, and how far each is verified.
pub fn manual(frame: Frame, report: &StatusReport) -> String {
    let hooks = report
        .webhooks
        .iter()
        .map(|w| {
            let (state, class) = match (w.token_set, w.stat.last_received_at) {
                (true, Some(at)) => (
                    format!("verified: a signed delivery arrived {}", when(Some(at))),
                    "ok",
                ),
                (true, None) => ("token saved; no delivery yet".to_string(), "ok"),
                (false, _) => ("no token yet".to_string(), "missing"),
            };
            ManualLine {
                event: w.event.to_string(),
                url: w.url.clone().unwrap_or_default(),
                state,
                class,
            }
        })
        .collect();
    render(&Manual { frame, hooks })
}

#[derive(Template)]
#[template(path = "connect/rotate.html")]
struct Rotate {
    frame: Frame,
    /// After the rotation: event, new URL, what happened to its webhook in Lever.
    done: Option<Vec<(String, String, String)>>,
}

/// The rotation's confirmation, or (`answer`: the admin API's) its outcome.
pub fn rotate(frame: Frame, answer: Option<&Value>) -> String {
    let done = answer.map(|v| {
        let moved = |event: &str| {
            v["registered"]
                .as_array()
                .and_then(|a| a.iter().find(|w| w["event"] == event))
                .and_then(|w| w["status"].as_str())
                .map_or("made by hand: paste the new URL in Lever", |s| match s {
                    "created" | "exists" => "moved",
                    other => other,
                })
                .to_string()
        };
        v["webhookUrls"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(event, url)| {
                        (
                            event.clone(),
                            url.as_str().unwrap_or_default().to_string(),
                            moved(event),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    render(&Rotate { frame, done })
}

#[derive(Template)]
#[template(path = "connect/disconnect.html")]
struct Disconnect {
    frame: Frame,
}

/// What disconnecting removes, and the confirmation.
pub fn disconnect(frame: Frame) -> String {
    render(&Disconnect { frame })
}
