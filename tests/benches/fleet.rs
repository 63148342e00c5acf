//! The fleet: many tenants, each with a Lever account of its own in the simulator (its own key and
//! rate limit), run by the real sync handler in process over the in-memory store, with the time
//! between scheduled runs skipped (`skip_ahead`) so that a day of them takes minutes. Every minute
//! of the simulated day starts one sync invocation, as the template's schedule does, whether or not
//! the last one has ended; each may run until its 600 s deadline.
//!
//! What it measures: tenants connecting (one big tenant alone, then 100 at once, then all the
//! rest at once; each backfill's time against Lever's limit),
//! then a day of hourly reconciliations while changes are made in Lever that no webhook tells of
//! (each tenant's lag past its hour, tenants never reconciled, changes recovered).
//!
//! Run with `make fleet` (it writes `tests/bench/FLEET.md`); `cargo bench -p lever-bridge-tests
//! --bench fleet -- --tenants 50 --hours 3` for a short look.

use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::secrets::{InMemorySecrets, Redacted, SecretStore, TenantSecret};
use lever_bridge::store::memory::InMemoryStore;
use lever_bridge::store::{SyncMode, SyncStore, TenantStore, WebhookStore};
use lever_bridge::sync::{SyncConfig, SyncReport, Syncer};
use lever_bridge_tests::simulator::{KeyPerms, SimConfig, Simulator};
use lever_bridge_tests::*;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lever's limit per key and the template's defaults (`LeverRatePerSec`, `LeverBurst`).
const RATE: f64 = 10.0;
const BURST: u32 = 20;
const MINUTE: i64 = 60_000;
/// Candidates the simulator seeds every account with.
const SEEDED: usize = 7;

struct Args {
    tenants: usize,
    big: usize,
    candidates: usize,
    big_candidates: usize,
    hours: i64,
    /// Changes made in Lever per tenant and day that no webhook delivers.
    lost_per_day: usize,
    out: Option<String>,
}

impl Args {
    fn parse() -> Args {
        let mut a = Args {
            tenants: 1000,
            big: 10,
            candidates: 200,
            big_candidates: 10_000,
            hours: 24,
            lost_per_day: 10,
            out: None,
        };
        let argv = BenchArgs::from_env();
        let value = |name: &str| argv.value(name);
        let number = |name: &str, default: usize| argv.number(name, default);
        a.tenants = number("--tenants", a.tenants);
        a.big = number("--big", a.big).min(a.tenants);
        a.candidates = number("--candidates", a.candidates);
        a.big_candidates = number("--big-candidates", a.big_candidates);
        a.hours = number("--hours", a.hours as usize) as i64;
        a.lost_per_day = number("--lost-per-day", a.lost_per_day);
        a.out = value("--out");
        a
    }
}

struct Member {
    id: String,
    sim: Simulator,
    candidates: usize,
    stages: Vec<String>,
    opportunities: Vec<String>,
    /// Minutes of the day at which a change is made in Lever without a webhook.
    lost_at: Vec<i64>,
    wave: usize,
    connected_at: i64,
}

/// The minute each wave of tenants connects at, and which tenants (the big ones come first).
fn waves(tenants: usize) -> Vec<(i64, std::ops::Range<usize>)> {
    let second = 101.min(tenants);
    let mut waves = vec![(0, 0..1.min(tenants))];
    if second > 1 {
        waves.push((5, 1..second));
    }
    if tenants > second {
        waves.push((10, second..tenants));
    }
    waves
}

/// What the observer saw of one tenant's sync job, minute by minute.
#[derive(Default)]
struct Seen {
    backfill_done: Option<i64>,
    /// Finish times of reconciliations, in order.
    reconciled: Vec<i64>,
    last_finished: Option<i64>,
    recovered: i64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// This process's CPU time (user + system), in seconds.
fn cpu_seconds() -> f64 {
    cpu_of("/proc/self/stat")
}

/// The calling thread's CPU time: on the main thread, the functions' (they run on its `LocalSet`;
/// the simulated Lever accounts on the runtime's workers).
fn thread_cpu_seconds() -> f64 {
    cpu_of("/proc/thread-self/stat")
}

fn cpu_of(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|x| x.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

type FleetSyncer = Syncer<Arc<HttpLever>, InMemoryStore, Arc<InMemorySecrets>, SkippingClock>;

struct Fleet {
    members: Vec<Member>,
    store: InMemoryStore,
    sync: Arc<FleetSyncer>,
    seen: HashMap<String, Seen>,
    inflight: tokio::task::JoinSet<SyncReport>,
    reports: Vec<SyncReport>,
    most_inflight: usize,
    invocations: usize,
}

impl Fleet {
    async fn new(args: &Args) -> Fleet {
        let store = InMemoryStore::default();
        let secrets = Arc::new(InMemorySecrets::default());
        let mut members = Vec::with_capacity(args.tenants);
        let lost_window = (args.hours - 3).max(1) * 60;
        for t in 0..args.tenants {
            let sim = Simulator::start(SimConfig::default()).await;
            let key = random_hex(16);
            sim.add_key(&key, KeyPerms::all());
            let candidates = if t < args.big {
                args.big_candidates
            } else {
                args.candidates
            };
            sim.add_opportunities(candidates.saturating_sub(SEEDED));
            let id = format!("fleet-{t:04}");
            let owner = sim.users()[0]["id"].as_str().map(str::to_string);
            store
                .put_tenant(&tenant_record(&id, &sim.base_url(), owner.as_deref()))
                .await
                .unwrap();
            secrets
                .save(
                    &id,
                    &TenantSecret {
                        api_key: Some(Redacted::new(&key)),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let stages = sim
                .stages()
                .iter()
                .filter_map(|s| s["id"].as_str().map(str::to_string))
                .collect();
            let opportunities = sim.opportunity_ids();
            // Lost changes from the second hour until three hours before the end, so that the
            // last reconciliations must have found every one.
            let lost_at = (0..args.lost_per_day as i64 * args.hours / 24)
                .map(|_| 60 + fastrand::i64(0..lost_window))
                .collect();
            members.push(Member {
                id,
                sim,
                candidates,
                stages,
                opportunities,
                lost_at,
                wave: 0,
                connected_at: 0,
            });
        }
        let lever = Arc::new(HttpLever::new(
            RateLimiter::new(RATE, BURST),
            RetryPolicy::default(),
        ));
        let sync = Arc::new(Syncer::new(
            lever,
            store.clone(),
            secrets,
            SkippingClock,
            SyncConfig::default(),
        ));
        Fleet {
            members,
            store,
            sync,
            seen: HashMap::new(),
            inflight: tokio::task::JoinSet::new(),
            reports: Vec::new(),
            most_inflight: 0,
            invocations: 0,
        }
    }

    /// Waits until the simulated clock reaches `tick`: skipped to at once when nothing runs,
    /// in real time while invocations do.
    async fn wait_until(&mut self, tick: i64) {
        loop {
            while let Some(r) = self.inflight.try_join_next() {
                self.reports.push(r.unwrap());
            }
            let now = now_ms();
            if now >= tick {
                return;
            }
            if self.inflight.is_empty() {
                skip_ahead(tick - now);
                return;
            }
            tokio::select! {
                Some(r) = self.inflight.join_next() => self.reports.push(r.unwrap()),
                _ = tokio::time::sleep(Duration::from_millis((tick - now) as u64)) => {}
            }
        }
    }

    /// One scheduled sync invocation, with the template's 600 s timeout.
    fn invoke(&mut self) {
        let sync = self.sync.clone();
        // Local: the sync's future is not `Send` (its handler runs on Lambda's one task).
        self.inflight
            .spawn_local(async move { sync.run(Instant::now() + Duration::from_secs(600)).await });
        self.invocations += 1;
        self.most_inflight = self.most_inflight.max(self.inflight.len());
    }

    /// Records each job that finished since the last look.
    async fn observe(&mut self) {
        for m in &self.members {
            let Some(job) = self.store.sync_job(&m.id).await.unwrap() else {
                continue;
            };
            let seen = self.seen.entry(m.id.clone()).or_default();
            if let Some(at) = job.finished_at.filter(|at| Some(*at) != seen.last_finished) {
                match job.mode {
                    SyncMode::Backfill => seen.backfill_done = Some(at),
                    SyncMode::Reconcile => seen.reconciled.push(at),
                }
                seen.last_finished = job.finished_at;
            }
            seen.recovered = job.recovered_total;
        }
    }

    /// Changes made in Lever at `minute` that no webhook tells of.
    fn lose_changes(&self, minute: i64) -> usize {
        let mut made = 0;
        for m in &self.members {
            for _ in m.lost_at.iter().filter(|at| **at == minute) {
                // Always to another stage, so that every change is one reconciliation must find.
                let opp = &m.opportunities[fastrand::usize(..m.opportunities.len())];
                let now = m
                    .sim
                    .opportunity(opp)
                    .and_then(|o| o["stage"].as_str().map(str::to_string));
                let others: Vec<&String> = m
                    .stages
                    .iter()
                    .filter(|s| Some(*s) != now.as_ref())
                    .collect();
                m.sim
                    .move_stage(opp, others[fastrand::usize(..others.len())]);
                made += 1;
            }
        }
        made
    }

    fn lever_requests(&self) -> (usize, usize) {
        let mut all = 0;
        let mut limited = 0;
        for m in &self.members {
            let r = m.sim.requests();
            all += r.len();
            limited += r.iter().filter(|r| r.status == Some(429)).count();
        }
        (all, limited)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tokio::task::LocalSet::new().run_until(run()).await;
}

async fn run() {
    let args = Args::parse();
    let started = Instant::now();
    eprintln!(
        "fleet: {} tenants ({} with {} candidates, the rest {}), {} h",
        args.tenants, args.big, args.big_candidates, args.candidates, args.hours
    );
    let mut fleet = Fleet::new(&args).await;
    let setup_s = started.elapsed().as_secs_f64();
    eprintln!("fleet: set up in {setup_s:.0} s");

    // Tenants connect in three waves, a backfill each: one big tenant alone, then 100 at once (the
    // other big ones among them), then all the rest at once.
    let t0 = now_ms();
    let waves = waves(fleet.members.len());
    let mut lost = 0;
    let mut backfill_cpu = None;
    let cpu0 = cpu_seconds();
    let fn_cpu0 = thread_cpu_seconds();
    let real0 = Instant::now();
    let mut backfill_real = None;
    for minute in 0..args.hours * 60 {
        fleet.wait_until(t0 + minute * MINUTE).await;
        for (wave, (at, range)) in waves.iter().enumerate() {
            if *at == minute {
                let connected = now_ms();
                for m in &mut fleet.members[range.clone()] {
                    m.wave = wave;
                    m.connected_at = connected;
                }
                for m in &fleet.members[range.clone()] {
                    fleet.sync.start_backfill(&m.id).await.unwrap();
                }
            }
        }
        lost += fleet.lose_changes(minute);
        fleet.invoke();
        fleet.observe().await;
        if backfill_cpu.is_none()
            && fleet
                .seen
                .values()
                .filter(|s| s.backfill_done.is_some())
                .count()
                == fleet.members.len()
        {
            backfill_cpu = Some((cpu_seconds() - cpu0, thread_cpu_seconds() - fn_cpu0));
            backfill_real = Some(real0.elapsed().as_secs_f64());
        }
        if minute % 60 == 59 {
            eprintln!(
                "fleet: hour {} done ({:.0} s so far, {} invocations in flight)",
                (minute + 1) / 60,
                started.elapsed().as_secs_f64(),
                fleet.inflight.len()
            );
        }
    }
    let end = t0 + args.hours * 60 * MINUTE;
    fleet.wait_until(end).await;
    while let Some(r) = fleet.inflight.join_next().await {
        fleet.reports.push(r.unwrap());
    }
    fleet.observe().await;
    let day_cpu = cpu_seconds() - cpu0;
    let day_fn_cpu = thread_cpu_seconds() - fn_cpu0;
    let (lever_requests, lever_429) = fleet.lever_requests();

    // Every lost change found: the view's stage is Lever's for each changed candidate.
    let mut wrong = 0;
    let mut checked = 0;
    for m in &fleet.members {
        for opp in &m.opportunities {
            let lever = m.sim.opportunity(opp).unwrap();
            let Some(view) = fleet.store.candidate(&m.id, opp).await.unwrap() else {
                wrong += 1;
                continue;
            };
            checked += 1;
            if view.stage.map(|s| s.id) != lever["stage"].as_str().map(str::to_string) {
                wrong += 1;
            }
        }
    }

    let interval = SyncConfig::default().interval_ms as f64 / MINUTE as f64;
    let mut backfill_waves = vec![Vec::new(); waves.len()];
    let mut backfill_big = Vec::new();
    let mut lags = Vec::new();
    let mut never = 0;
    let mut stale = Vec::new();
    let mut recovered = 0;
    for m in &fleet.members {
        let seen = fleet.seen.remove(&m.id).unwrap_or_default();
        recovered += seen.recovered;
        let Some(done) = seen.backfill_done else {
            never += 1;
            continue;
        };
        let took = (done - m.connected_at) as f64 / 1000.0;
        backfill_waves[m.wave].push(took);
        if m.candidates >= args.big_candidates && args.big > 0 {
            backfill_big.push(took);
        }
        if seen.reconciled.is_empty() {
            never += 1;
        }
        let mut last = done;
        for at in &seen.reconciled {
            lags.push(((at - last) as f64 / MINUTE as f64 - interval).max(0.0));
            last = *at;
        }
        stale.push((end - last) as f64 / MINUTE as f64);
    }
    let backfill_big = sorted(backfill_big);
    let lags = sorted(lags);
    let stale = sorted(stale);
    let mut total = SyncReport::default();
    for r in &fleet.reports {
        total.pages += r.pages;
        total.opportunities += r.opportunities;
        total.recovered += r.recovered;
        total.continued += r.continued;
        total.failed += r.failed;
        total.tenants += r.tenants;
    }
    let candidates: usize = fleet.members.iter().map(|m| m.candidates).sum();
    // Lever's least time for the biggest backfill: its pages at the key's rate after the burst.
    let big_pages = args.big_candidates.div_ceil(100) as f64;
    let big_minimum = ((big_pages - f64::from(BURST)) / RATE).max(0.0);

    let mut md = String::new();
    let _ = writeln!(
        md,
        "### {} tenants ({} of {} candidates, {} of {}), {} hours\n",
        args.tenants,
        args.big,
        args.big_candidates,
        args.tenants - args.big,
        args.candidates,
        args.hours
    );
    let _ = writeln!(md, "| figure | value |\n|---|---|");
    let row = |md: &mut String, k: &str, v: String| {
        let _ = writeln!(md, "| {k} | {v} |");
    };
    row(&mut md, "candidates in Lever", format!("{candidates}"));
    for (wave, times) in backfill_waves.into_iter().enumerate() {
        let range = &waves[wave].1;
        let big = range.clone().filter(|t| *t < args.big).count();
        let times = sorted(times);
        row(
            &mut md,
            &format!(
                "backfill, {} tenant(s) connecting at once ({big} of them with {}): p50 / p99 / max from connecting to done",
                range.len(),
                args.big_candidates
            ),
            format!(
                "{:.1} / {:.1} / {:.1} s",
                percentile(&times, 50.0),
                percentile(&times, 99.0),
                percentile(&times, 100.0)
            ),
        );
    }
    if !backfill_big.is_empty() {
        row(
            &mut md,
            &format!(
                "backfill of a {}-candidate tenant, in any wave: p50 / max",
                args.big_candidates
            ),
            format!(
                "{:.1} / {:.1} s (Lever's limit allows it in {big_minimum:.1} s)",
                percentile(&backfill_big, 50.0),
                percentile(&backfill_big, 100.0)
            ),
        );
    }
    // Lambda's CPU share at the template's 128 MB: what the functions' CPU would take there.
    let share = 128.0 / 1769.0;
    if let (Some((cpu, fn_cpu)), Some(real)) = (backfill_cpu, backfill_real) {
        row(
            &mut md,
            "the whole fleet backfilled: wall time; CPU of the process, of the functions alone",
            format!(
                "{real:.1} s ({:.1} cores busy: past about 2 the times above are this machine's, not Lever's); {cpu:.1} s, {fn_cpu:.1} s ({:.3} ms per candidate: {:.0} candidates a second at 128 MB's share)",
                cpu / real,
                1000.0 * fn_cpu / candidates as f64,
                candidates as f64 * share / fn_cpu
            ),
        );
    }
    row(
        &mut md,
        "reconciliation lag past the hour: p50 / p99 / max",
        format!(
            "{:.1} / {:.1} / {:.1} min over {} reconciliations",
            percentile(&lags, 50.0),
            percentile(&lags, 99.0),
            percentile(&lags, 100.0),
            lags.len()
        ),
    );
    row(
        &mut md,
        "tenants never reconciled (or never backfilled)",
        format!("{never}"),
    );
    row(
        &mut md,
        "time since each tenant's last sync at the end: p50 / max",
        format!(
            "{:.1} / {:.1} min",
            percentile(&stale, 50.0),
            percentile(&stale, 100.0)
        ),
    );
    row(
        &mut md,
        "changes made in Lever without a webhook / candidates recovered by reconciliation (two changes to one candidate in an hour are one)",
        format!("{lost} / {recovered}"),
    );
    row(
        &mut md,
        "candidates whose stage differs from Lever's at the end",
        format!("{wrong} of {checked}"),
    );
    row(
        &mut md,
        "sync invocations / most in flight at once",
        format!("{} / {}", fleet.invocations, fleet.most_inflight),
    );
    row(
        &mut md,
        "tenant runs / pages / continued past a deadline / failed",
        format!(
            "{} / {} / {} / {}",
            total.tenants, total.pages, total.continued, total.failed
        ),
    );
    row(
        &mut md,
        "Lever requests / 429s",
        format!("{lever_requests} / {lever_429}"),
    );
    row(
        &mut md,
        "this run: set-up, simulated hours; CPU of the process, of the functions",
        format!(
            "{setup_s:.0} s, {:.0} s; {day_cpu:.0} s, {day_fn_cpu:.0} s",
            started.elapsed().as_secs_f64() - setup_s
        ),
    );
    println!("{md}");
    if let Some(out) = &args.out {
        std::fs::write(out, &md).unwrap_or_else(|e| panic!("cannot write {out}: {e}"));
    }
}
