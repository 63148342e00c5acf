//! A Lever Data API v1 simulator: a real HTTP server that answers like the recordings in
//! `tests/fixtures/lever/` (where the documentation and a recording differ, like the recording).
//!
//! It is not a "says yes" stub: it enforces auth, permissions, per-key rate limits, validation and
//! paging as Lever does, keeps the account's state (so a test can check what a write changed), logs
//! every request and can inject faults, including dropped connections and writes whose answer never
//! arrives. Used as a library by tests and as the `lever-sim` binary by the local stack.
//!
//! Layout: `server` accepts connections (so a fault can drop one), `gate` runs auth, faults, rate
//! limiting and the request log in front of every `/v1` route, `handlers` holds one module per
//! resource over the `state` seeded by `seed`, `paging` issues and checks offset tokens, and
//! `admin` is the unauthenticated `/_admin` surface for the binary.

mod admin;
pub mod changes;
mod error;
mod faults;
mod gate;
mod handlers;
mod oauth;
mod paging;
mod params;
mod rate;
mod rng;
mod seed;
mod server;
mod state;

pub use faults::Fault;
pub use oauth::{SIM_CLIENT_ID, SIM_CLIENT_SECRET};
/// Fixed ids in the seeded account: a deactivated user, a confidential posting, the synthetic
/// template with one field of each type, the recorded opportunity and its UI-made (not externally
/// managed) panel.
pub use seed::{
    CONFIDENTIAL_POSTING, DEACTIVATED_USER, RECORDED_OPPORTUNITY, RECORDED_PANEL, SIM_TEMPLATE,
};

use axum::Router;
use lever_bridge::webhook::EventKind;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Rate limit settings. Lever: a token bucket per key, 10 requests/s steady, bursts to 20, and no
/// documented `Retry-After` (lever-api.md §2), hence the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub rate_per_sec: f64,
    pub burst: u32,
    pub retry_after_header: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            rate_per_sec: 10.0,
            burst: 20,
            retry_after_header: false,
        }
    }
}

/// What an API key may do: `permissions` None means every permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyPerms {
    pub permissions: Option<BTreeSet<String>>,
    /// Whether the key sees confidential postings and opportunities.
    pub confidential: bool,
}

impl KeyPerms {
    /// Every permission, confidential data included.
    pub fn all() -> Self {
        KeyPerms {
            permissions: None,
            confidential: true,
        }
    }

    /// Only these permissions (e.g. `"notes:write"`), without confidential access.
    pub fn only(perms: &[&str]) -> Self {
        KeyPerms {
            permissions: Some(perms.iter().map(|p| p.to_string()).collect()),
            confidential: false,
        }
    }

    pub fn allows(&self, permission: &str) -> bool {
        self.permissions
            .as_ref()
            .is_none_or(|set| set.contains(permission))
    }
}

/// A candidate to add to the account. Unset stage means `lead-new`; `posting` adds an application.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewOpportunity {
    pub name: String,
    pub emails: Vec<String>,
    pub stage: Option<String>,
    pub posting: Option<String>,
    pub confidential: bool,
    pub archived_reason: Option<String>,
}

/// One `/v1` request as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The key presented (Basic user name or Bearer token), known or not.
    pub key: Option<String>,
    /// The status answered; None while in flight or when the connection was dropped.
    pub status: Option<u16>,
    /// The parsed JSON body of a write (None for reads and unparsable bodies).
    pub body: Option<Value>,
    /// The injected fault, e.g. `status:503`, `delay:200ms`, `drop`.
    pub fault: Option<String>,
    pub at_ms: i64,
}

#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    config: SimConfig,
    addr: SocketAddr,
    state: Mutex<state::State>,
    limiter: Mutex<rate::RateLimiter>,
    faults: Mutex<faults::FaultPlan>,
    log: Mutex<Log>,
    oauth: Mutex<oauth::OAuthSim>,
}

#[derive(Default)]
struct Log {
    next_id: u64,
    entries: Vec<(u64, LoggedRequest)>,
}

/// A poisoned lock only means a test panicked elsewhere; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Simulator {
    /// A seeded account served on 127.0.0.1 on a free port.
    pub async fn start(config: SimConfig) -> Simulator {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("the simulator binds 127.0.0.1:0")
    }

    /// Same as [`Simulator::start`] on a chosen address (the `lever-sim` binary's `--port`).
    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let sim = Simulator {
            inner: Arc::new(Inner {
                limiter: Mutex::new(rate::RateLimiter::new(config.rate_per_sec, config.burst)),
                config,
                addr,
                state: Mutex::new(seed::seeded_state()),
                faults: Mutex::new(faults::FaultPlan::default()),
                log: Mutex::new(Log::default()),
                oauth: Mutex::new(oauth::OAuthSim::default()),
            }),
        };
        tokio::spawn(server::serve(listener, sim.router()));
        Ok(sim)
    }

    fn router(&self) -> Router {
        Router::new()
            .nest("/v1", handlers::routes(self.clone()))
            .nest("/_admin", admin::routes())
            .route("/oauth/token", axum::routing::post(oauth::token))
            .route(
                "/oauth/authorize",
                axum::routing::get(oauth::consent_page).post(oauth::consent),
            )
            .fallback(handlers::unknown_route)
            .with_state(self.clone())
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.inner.addr)
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    pub fn add_key(&self, key: &str, perms: KeyPerms) {
        self.with_state(|s| s.keys.insert(key.to_string(), perms));
    }

    /// Later requests with the key get 401, as a deleted Lever key does.
    pub fn remove_key(&self, key: &str) {
        self.with_state(|s| s.keys.remove(key));
        lock(&self.inner.limiter).forget(key);
    }

    pub fn add_opportunity(&self, opp: NewOpportunity) -> String {
        self.with_state(|s| s.add_opportunity(&opp, crate::now_ms()))
    }

    /// `n` plausible opportunities created over the past year; some archived, some confidential.
    pub fn add_opportunities(&self, n: usize) -> Vec<String> {
        self.with_state(|s| (0..n).map(|_| s.add_generated_opportunity()).collect())
    }

    /// The next `count` authenticated `/v1` requests get `fault`, in the order pushed.
    pub fn push_fault(&self, fault: Fault, count: u32) {
        lock(&self.inner.faults).push(fault, count);
    }

    /// The `skip + 1`-th authenticated request to `method path` (e.g. `POST /v1/webhooks`) from now
    /// gets `fault`; other routes are untouched.
    pub fn push_fault_on(&self, method: &str, path: &str, skip: u32, fault: Fault) {
        lock(&self.inner.faults).push_on(method, path, skip, fault);
    }

    /// Forgets the pushed faults not yet used (random faults stay as set).
    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear();
    }

    /// Faults each authenticated `/v1` request with probability `ratio`, choosing among `faults`
    /// (an empty list means `Status(503)`), from a generator seeded with `seed`. Ratio 0 turns off.
    pub fn set_random_faults(&self, ratio: f64, faults: Vec<Fault>, seed: u64) {
        lock(&self.inner.faults).set_random(ratio, faults, seed);
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.inner.log)
            .entries
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.inner.log).entries.clear();
    }

    /// The opportunity's notes, newest first, as `GET /opportunities/:id/notes` returns them.
    pub fn notes(&self, opp: &str) -> Vec<Value> {
        self.with_state(|s| s.sorted_notes(opp))
    }

    pub fn opportunity(&self, opp: &str) -> Option<Value> {
        self.with_state(|s| s.opportunities.get(opp).cloned())
    }

    pub fn feedback(&self, opp: &str) -> Vec<Value> {
        self.with_state(|s| s.feedback.get(opp).cloned().unwrap_or_default())
    }

    /// Files attached to the opportunity (name, size, `sha256` of what arrived).
    pub fn files(&self, opp: &str) -> Vec<Value> {
        self.with_state(|s| s.files.get(opp).cloned().unwrap_or_default())
    }

    pub fn panels(&self, opp: &str) -> Vec<Value> {
        self.with_state(|s| s.panels.get(opp).cloned().unwrap_or_default())
    }

    pub fn users(&self) -> Vec<Value> {
        self.with_state(|s| s.users.clone())
    }

    pub fn stages(&self) -> Vec<Value> {
        self.with_state(|s| s.stages.clone())
    }

    pub fn archive_reasons(&self) -> Vec<Value> {
        self.with_state(|s| s.archive_reasons.clone())
    }

    pub fn feedback_templates(&self) -> Vec<Value> {
        self.with_state(|s| s.templates.clone())
    }

    /// Postings, confidential ones included.
    pub fn postings(&self) -> Vec<Value> {
        self.with_state(|s| s.postings.clone())
    }

    /// Sets a posting's `state` (`published`, `closed`...); false for an unknown posting.
    pub fn set_posting_state(&self, id: &str, state: &str) -> bool {
        self.with_state(|s| {
            s.postings
                .iter_mut()
                .find(|p| p["id"] == id)
                .map(|p| p["state"] = json!(state))
                .is_some()
        })
    }

    /// Deletes a posting, as when it is removed in Lever.
    pub fn remove_posting(&self, id: &str) {
        self.with_state(|s| s.postings.retain(|p| p["id"] != id));
    }

    /// Webhooks registered through `POST /webhooks`, with their signature tokens.
    pub fn webhooks(&self) -> Vec<Value> {
        self.with_state(|s| s.webhooks.clone())
    }

    /// One delivery exactly as Lever sends it (lever-api.md §1). A delivery nobody answered (connection
    /// refused, timeout) is reported as 502: use [`Simulator::try_send_webhook`] to tell them apart.
    pub async fn send_webhook(
        &self,
        url: &str,
        event: EventKind,
        data: Value,
        signature_token: &str,
    ) -> reqwest::StatusCode {
        self.try_send_webhook(url, event, data, signature_token)
            .await
            .unwrap_or(reqwest::StatusCode::BAD_GATEWAY)
    }

    pub async fn try_send_webhook(
        &self,
        url: &str,
        event: EventKind,
        data: Value,
        signature_token: &str,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.try_send_webhook_at(url, event, data, signature_token, crate::now_ms())
            .await
    }

    /// A delivery triggered at `triggered_at` (a change's own time, see [`changes`]).
    pub async fn try_send_webhook_at(
        &self,
        url: &str,
        event: EventKind,
        data: Value,
        signature_token: &str,
        triggered_at: i64,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let token = crate::random_hex(24);
        let body = json!({
            "token": token,
            "triggeredAt": triggered_at,
            "event": event.as_str(),
            "signature": lever_bridge::webhook::sign(signature_token, &token, triggered_at),
            "data": data,
        });
        let response = reqwest::Client::new()
            .post(url)
            .header(reqwest::header::USER_AGENT, "Lever-Webhooks")
            .timeout(std::time::Duration::from_secs(10))
            .json(&body)
            .send()
            .await?;
        Ok(response.status())
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut state::State) -> R) -> R {
        f(&mut lock(&self.inner.state))
    }

    fn log_start(&self, entry: LoggedRequest) -> u64 {
        let mut log = lock(&self.inner.log);
        log.next_id += 1;
        let id = log.next_id;
        log.entries.push((id, entry));
        id
    }

    fn log_update(&self, id: u64, f: impl FnOnce(&mut LoggedRequest)) {
        let mut log = lock(&self.inner.log);
        // Newest entries are the likeliest; an entry may be gone after clear_requests.
        if let Some((_, entry)) = log.entries.iter_mut().rev().find(|(i, _)| *i == id) {
            f(entry);
        }
    }
}
