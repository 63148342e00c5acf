//! A tenant's day against the emulator, every AWS request counted: a few tenants, each with its own
//! simulated Lever account, run by the real handlers (sync, webhook receivers, push, transcript
//! ingest and flush, relay over the table's stream) on the DynamoDB store and Secrets Manager in
//! moto, at the load a tenant has (`--webhooks 1000 --pushes 200 --sms 300` a day), the time
//! between runs skipped. DynamoDB's read and write units and where they land (table and index
//! partitions) come from the emulator's capacity ledger (`MOTO_CAPACITY_LEDGER`, see
//! tests/moto_server.py); requests from counters on each SDK client.
//!
//! It prints the tables for tests/bench/FLEET.md and, with `--json FILE`, the counts per tenant-day
//! by function that the cost table is made from. Run by `make fleet`.

use lever_bridge::clock::Clock;
use lever_bridge::events::EventBridgeSink;
use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::push::Pusher;
use lever_bridge::push::command::PushKind;
use lever_bridge::receiver::Receiver;
use lever_bridge::secrets::{CachedSecrets, Parts, Redacted, SecretStore, SecretsManagerStore};
use lever_bridge::store::dynamo::DynamoStore;
use lever_bridge::store::{SyncMode, SyncStore, TenantStore};
use lever_bridge::sync::{SyncConfig, Syncer};
use lever_bridge::transcript::{FlushConfig, Transcripts};
use lever_bridge::webhook::EventKind;
use lever_bridge_tests::simulator::{KeyPerms, SimConfig, Simulator};
use lever_bridge_tests::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MINUTE: i64 = 60_000;
/// The template's schedule for `transcript-flush`.
const FLUSH_EVERY_MIN: i64 = 5;

struct Args {
    tenants: usize,
    candidates: usize,
    hours: i64,
    webhooks: usize,
    pushes: usize,
    sms: usize,
    json: Option<String>,
}

impl Args {
    fn parse() -> Args {
        let argv = BenchArgs::from_env();
        let value = |name: &str| argv.value(name);
        let number = |name: &str, default: usize| argv.number(name, default);
        Args {
            tenants: number("--tenants", 2),
            candidates: number("--candidates", 200),
            hours: number("--hours", 6) as i64,
            webhooks: number("--webhooks", 1000),
            pushes: number("--pushes", 200),
            sms: number("--sms", 300),
            json: value("--json"),
        }
    }

    /// How many of `per_day` fall in slot `i` of `slots` (spread evenly, none lost to rounding).
    fn share(per_day: usize, hours: i64, i: i64, slots: i64) -> usize {
        let total = per_day as i64 * hours / 24;
        (total * (i + 1) / slots - total * i / slots) as usize
    }
}

/// What the handlers did, by function: events handled and the AWS requests they made.
#[derive(Default, Clone)]
struct Tally {
    events: u64,
    invocations: u64,
    dynamodb: BTreeMap<String, u64>,
    secrets: u64,
    eventbridge: u64,
    lever: u64,
    /// Lambda's billed duration (each run rounded up to the millisecond), as run here.
    billed_ms: u64,
    /// Log lines written (JSON, as the template's LoggingConfig has them), metrics documents and
    /// Lambda's own records.
    log_bytes: u64,
    /// Byte ranges of the capacity ledger written while this function ran.
    ledger: Vec<(u64, u64)>,
}

/// Lambda's own records per invocation in JSON format (`platform.start` and `platform.report`),
/// which no function writes: their size as Lambda's documentation shows them.
const PLATFORM_LOG_BYTES: u64 = 460;

/// Counts the bytes the tracing subscriber writes.
#[derive(Clone)]
struct LogBytes(Arc<AtomicU64>);

impl std::io::Write for LogBytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Counters {
    ddb: RequestCounter,
    sm: RequestCounter,
    eb: RequestCounter,
    ledger: Option<String>,
    sims: Vec<Simulator>,
    logs: Arc<AtomicU64>,
    emf: &'static metrics_cloudwatch_embedded::Collector,
    /// Every custom metric the runs emitted: its name and dimensions.
    metrics: std::sync::Mutex<BTreeSet<String>>,
}

impl Counters {
    fn ledger_len(&self) -> u64 {
        self.ledger
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    }

    fn lever(&self) -> u64 {
        self.sims.iter().map(|s| s.requests().len() as u64).sum()
    }

    fn note_metrics(&self, emf: &[u8]) {
        let mut seen = self.metrics.lock().unwrap();
        for doc in String::from_utf8_lossy(emf).lines() {
            let Ok(v) = serde_json::from_str::<Value>(doc) else {
                continue;
            };
            let space = &v["_aws"]["CloudWatchMetrics"][0];
            let dims: Vec<String> = space["Dimensions"][0]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str())
                .map(|d| format!("{d}={}", v[d]))
                .collect();
            for m in space["Metrics"].as_array().into_iter().flatten() {
                seen.insert(format!("{} {}", m["Name"], dims.join(",")));
            }
        }
    }

    /// Runs `f` and charges what it did to `tally`.
    async fn charge<F: std::future::Future<Output = u64>>(&self, tally: &mut Tally, f: F) {
        let (d0, s0, e0, l0, v0) = (
            self.ddb.by_operation(),
            self.sm.get(),
            self.eb.get(),
            self.ledger_len(),
            self.lever(),
        );
        let (started, logs) = (Instant::now(), self.logs.load(Ordering::Relaxed));
        tally.events += f.await;
        tally.invocations += 1;
        tally.billed_ms += started.elapsed().as_micros().div_ceil(1000) as u64;
        // The metrics document Lambda's runtime writes after each invocation.
        let mut emf = Vec::new();
        self.emf.flush(&mut emf).expect("metrics into memory");
        self.note_metrics(&emf);
        tally.log_bytes +=
            self.logs.load(Ordering::Relaxed) - logs + emf.len() as u64 + PLATFORM_LOG_BYTES;
        for (op, n) in self.ddb.by_operation() {
            let before = d0.get(&op).copied().unwrap_or(0);
            *tally.dynamodb.entry(op).or_default() += n - before;
        }
        tally.secrets += self.sm.get() - s0;
        tally.eventbridge += self.eb.get() - e0;
        tally.lever += self.lever() - v0;
        tally.ledger.push((l0, self.ledger_len()));
    }
}

/// One ledger line's units: (read or write, table or index, partition key, units).
struct Part {
    write: bool,
    place: String,
    pk: String,
    units: f64,
}

fn ledger_parts(ledger: &str, ranges: &[(u64, u64)]) -> Vec<Part> {
    let mut out = Vec::new();
    for (from, to) in ranges {
        let bytes = &ledger.as_bytes()[*from as usize..*to as usize];
        for line in String::from_utf8_lossy(bytes).lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            for p in v["parts"].as_array().into_iter().flatten() {
                out.push(Part {
                    write: p[0] == "w",
                    place: p[1].as_str().unwrap_or("?").to_string(),
                    pk: p[2].as_str().unwrap_or("?").to_string(),
                    units: p[3].as_f64().unwrap_or(0.0),
                });
            }
        }
    }
    out
}

/// A partition key with the tenant's and the item's ids taken out: its shape.
fn shape(pk: &str, tenants: &[String]) -> String {
    let mut s = pk.to_string();
    for t in tenants {
        s = s.replace(t.as_str(), "<tenant>");
    }
    let parts: Vec<&str> = s.split('#').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        out.push(parts[i].to_string());
        if matches!(parts[i], "O" | "D" | "C" | "CMD" | "IVMAP" | "RELAYED") && i + 1 < parts.len()
        {
            out.push("<id>".into());
            i += 1;
        }
        i += 1;
    }
    out.join("#")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tokio::task::LocalSet::new().run_until(run()).await;
}

async fn run() {
    let args = Args::parse();
    // The functions' logs and metrics as Lambda's runtime writes them (lambda.rs), counted.
    let logs = Arc::new(AtomicU64::new(0));
    let writer = LogBytes(logs.clone());
    lambda_http::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(lambda_http::tracing::subscriber::EnvFilter::new("info"))
        .with_writer(move || writer.clone())
        .json()
        .init();
    let emf = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("LeverBridge")
        .with_dimension("Service", "lever-bridge")
        .init()
        .expect("the metrics recorder");
    let aws = aws().await;
    let (_, table) = fresh_table(&aws).await;
    let (dynamo, ddb) = counted_dynamodb(&aws);
    let sm = RequestCounter::default();
    let sm_client = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&aws)
            .interceptor(sm.clone())
            .build(),
    );
    let eb = RequestCounter::default();
    let eb_client = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&aws)
            .interceptor(eb.clone())
            .build(),
    );
    let bus = unique("bus");
    eb_client
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("bus");
    let prefix = format!("{}/", unique("day"));
    // Each function reads the secrets its role allows (Function::secret_parts).
    let secrets = |parts| Arc::new(SecretsManagerStore::new(sm_client.clone(), &prefix, parts));
    let store = DynamoStore::new(dynamo, &table);
    store.warm_up().await;
    let tap = lever_bridge_tests::stream::Tap::dynamo(&aws, &table).await;

    let mut ids = Vec::new();
    let mut opportunities = Vec::new();
    let mut sims = Vec::new();
    let admin = secrets(Parts::ALL);
    for t in 0..args.tenants {
        let sim = Simulator::start(SimConfig::default()).await;
        let key = random_hex(16);
        sim.add_key(&key, KeyPerms::all());
        sim.add_opportunities(args.candidates.saturating_sub(7));
        let id = format!("day-{t}");
        let owner = sim.users()[0]["id"].as_str().map(str::to_string);
        store
            .put_tenant(&tenant_record(&id, &sim.base_url(), owner.as_deref()))
            .await
            .unwrap();
        let token = random_hex(24);
        let mut secret = secret_for_all(&token);
        secret.api_key = Some(Redacted::new(&key));
        admin.save(&id, &secret).await.unwrap();
        opportunities.push((sim.opportunity_ids(), token));
        ids.push(id);
        sims.push(sim);
    }
    let lever = Arc::new(HttpLever::new(
        RateLimiter::new(10.0, 20),
        RetryPolicy::default(),
    ));
    let sync = Syncer::new(
        lever.clone(),
        store.clone(),
        secrets(Parts::LEVER),
        SkippingClock,
        SyncConfig::default(),
    );
    let pusher = Pusher::new(
        PushKind::Note,
        lever.clone(),
        store.clone(),
        secrets(Parts::LEVER),
        SkippingClock,
    );
    let ingest = Transcripts::new(
        lever.clone(),
        store.clone(),
        secrets(Parts::NONE),
        SkippingClock,
        FlushConfig::default(),
    );
    let flush = Transcripts::new(
        lever.clone(),
        store.clone(),
        secrets(Parts::LEVER),
        SkippingClock,
        FlushConfig::default(),
    );
    // Every kind but candidateDeleted, whose deliveries end the candidate they name.
    let kinds: Vec<EventKind> = EventKind::ALL
        .into_iter()
        .filter(|k| *k != EventKind::CandidateDeleted)
        .collect();
    let receivers: Vec<_> = kinds
        .iter()
        .map(|kind| {
            Receiver::new(
                *kind,
                store.clone(),
                CachedSecrets::new(secrets(Parts::WEBHOOKS), SkippingClock, 300_000),
                SkippingClock,
                url_keys(),
            )
        })
        .collect();
    let relay = lever_bridge::relay::Relay::new(
        store.clone(),
        EventBridgeSink::new(eb_client, &bus),
        Arc::new(lever_bridge::relay::dead_letters::DeadLetterQueue::memory()),
        SkippingClock,
    );
    let mut mapping = lever_bridge_tests::stream::Mapping::new(tap, relay);
    let counters = Counters {
        ddb,
        sm,
        eb,
        ledger: std::env::var("MOTO_CAPACITY_LEDGER").ok(),
        sims,
        logs,
        emf,
        metrics: Default::default(),
    };
    // What a tenant costs once (its backfill), what its day costs, and what the schedules cost
    // with nothing to do: paid by the stack, whatever the number of tenants.
    let mut connect: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut idle: BTreeMap<&str, Tally> = BTreeMap::new();
    let deadline = || Instant::now() + Duration::from_secs(600);

    // The backfill at connect, then the outbox it filled.
    for id in &ids {
        sync.start_backfill(id).await.unwrap();
    }
    loop {
        let mut done = 0;
        for id in &ids {
            let job = store.sync_job(id).await.unwrap().unwrap();
            done += usize::from(job.mode == SyncMode::Reconcile || job.finished_at.is_some());
        }
        if done == ids.len() {
            break;
        }
        let t = connect.entry("sync (backfill)").or_default();
        counters
            .charge(t, async { sync.run(deadline()).await.opportunities as u64 })
            .await;
    }
    let t = connect.entry("relay (the backfill's events)").or_default();
    counters
        .charge(t, async { mapping.run().await.published as u64 })
        .await;
    // The schedules' runs with nothing due (the reconciliations are an hour away).
    for _ in 0..10 {
        let t = idle.entry("sync").or_default();
        counters
            .charge(t, async { sync.run(deadline()).await.tenants as u64 })
            .await;
        let t = idle.entry("transcript-flush").or_default();
        counters
            .charge(t, async {
                flush.flush(deadline()).await.conversations as u64
            })
            .await;
    }
    for (name, t) in &idle {
        assert_eq!(t.events, 0, "{name} found work in an idle run");
    }

    // The day, five minutes at a time.
    let slots = args.hours * 60 / FLUSH_EVERY_MIN;
    let mut sent = 0usize;
    let mut messages = vec![0usize; ids.len()];
    for slot in 0..slots {
        skip_ahead(FLUSH_EVERY_MIN * MINUTE);
        for (t, id) in ids.iter().enumerate() {
            let (opps, token) = &opportunities[t];
            for _ in 0..Args::share(args.webhooks, args.hours, slot, slots) {
                sent += 1;
                let kind = kinds[sent % kinds.len()];
                let receiver = &receivers[sent % kinds.len()];
                let opp = &opps[fastrand::usize(..opps.len())];
                let (_, body) = delivery(kind, token, now_ms(), sample_data(kind, opp));
                let tally = tallies.entry("webhook receivers").or_default();
                counters
                    .charge(tally, async {
                        let r = receiver.receive(id, &url_key(id), &body).await;
                        assert_eq!(r.status, 200, "{kind:?}: {r:?}");
                        1
                    })
                    .await;
            }
            for i in 0..Args::share(args.pushes, args.hours, slot, slots) {
                let opp = &opps[fastrand::usize(..opps.len())];
                let cmd = json!({"commandId": format!("c-{slot}-{i}"), "tenantId": id, "opportunityId": opp, "text": format!("Assessment result {slot}-{i}: 87/100")});
                let tally = tallies.entry("push-note").or_default();
                counters
                    .charge(tally, async {
                        let outcome = pusher.handle(cmd, deadline()).await;
                        assert!(
                            matches!(outcome, lever_bridge::push::Outcome::Done { .. }),
                            "{outcome:?}"
                        );
                        1
                    })
                    .await;
            }
            // SMS in conversations of ten messages: one candidate's every ten messages.
            for _ in 0..Args::share(args.sms, args.hours, slot, slots) {
                let n = messages[t];
                messages[t] += 1;
                let opp = &opps[(n / 10) % opps.len()];
                let m = json!({"tenantId": id, "opportunityId": opp, "messageId": format!("m-{n}"), "direction": if n % 2 == 0 { "outbound" } else { "inbound" }, "from": "+447700900999", "to": "+447700900123", "body": "Are you free on Thursday at 2pm for a call?", "sentAt": SkippingClock.now_ms(), "senderName": "Sam"});
                let tally = tallies.entry("transcript-ingest").or_default();
                counters
                    .charge(tally, async {
                        let h = ingest.ingest(m).await;
                        assert_eq!(h.answer["status"], "stored", "{:?}", h.answer);
                        1
                    })
                    .await;
            }
        }
        let tally = tallies.entry("relay").or_default();
        counters
            .charge(tally, async { mapping.run().await.published as u64 })
            .await;
        let tally = tallies.entry("transcript-flush").or_default();
        counters
            .charge(tally, async {
                let r = flush.flush(deadline()).await;
                assert_eq!(
                    r.released, 0,
                    "transcript-flush gave conversations back: {r:?}"
                );
                r.conversations as u64
            })
            .await;
        // The sync every minute (the schedule): five runs a slot, one a reconciliation's hour.
        let tally = tallies.entry("sync").or_default();
        for _ in 0..FLUSH_EVERY_MIN {
            counters
                .charge(tally, async { sync.run(deadline()).await.tenants as u64 })
                .await;
        }
        let tally = tallies.entry("relay").or_default();
        counters
            .charge(tally, async { mapping.run().await.published as u64 })
            .await;
    }

    let ledger = counters
        .ledger
        .as_ref()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default());
    let ledger = ledger.as_deref();
    let n = args.tenants as f64;
    let days = args.hours as f64 / 24.0;
    let mut hot: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let mut md = String::new();
    let mut json_out = serde_json::Map::new();
    let (mut connect_sums, mut day_sums, mut stack_sums) = (Vec::new(), Vec::new(), Vec::new());
    let _ = writeln!(
        md,
        "### A tenant's day against the emulator\n\n{} tenants of {} candidates, {} h of {} webhooks, {} pushes and {} SMS a tenant a day, run by the real handlers on DynamoDB, Secrets Manager and EventBridge in moto. Requests are counted at the SDK clients; DynamoDB's units come from the emulator's capacity ledger (DynamoDB's billing rules applied to each item before and after each write, index writes included).\n",
        args.tenants, args.candidates, args.hours, args.webhooks, args.pushes, args.sms
    );

    let _ = writeln!(
        md,
        "Once per tenant, at connect (its backfill):\n\n| function | runs | DynamoDB requests | RRU | WRU | Secrets Manager reads | EventBridge events | Lever requests | DynamoDB requests by operation |\n|---|---|---|---|---|---|---|---|---|"
    );
    let mut part = serde_json::Map::new();
    for (name, t) in &connect {
        let sum = Sum::of(t, ledger, &table, None).scaled(1.0 / n);
        let _ = writeln!(
            md,
            "| {name} | {:.1} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} | {:.0} | {} |",
            sum.runs,
            sum.requests(),
            sum.rru,
            sum.wru,
            sum.secrets,
            sum.eventbridge_events(name),
            sum.lever,
            sum.by_operation(),
        );
        part.insert(name.to_string(), sum.json(name));
        connect_sums.push((name.to_string(), sum));
    }
    json_out.insert("connect".into(), Value::Object(part));

    // A schedule's run costs the same with nothing due, whatever the number of tenants: that much
    // is the stack's, the rest the tenants'.
    let idle_run = |name: &str| {
        let t = &idle[name];
        Sum::of(t, ledger, &table, None).scaled(1.0 / t.invocations as f64)
    };
    let _ = writeln!(
        md,
        "\nA tenant's day (for `sync` and `transcript-flush`, what their runs cost beyond a run with nothing due):\n\n| function | events a day | DynamoDB requests / event | RRU / event | WRU / event | Secrets Manager reads a day | EventBridge events a day | Lever requests / event | DynamoDB requests by operation, a day |\n|---|---|---|---|---|---|---|---|---|"
    );
    let mut part = serde_json::Map::new();
    for (name, t) in &tallies {
        let mut sum = Sum::of(t, ledger, &table, Some(&mut hot));
        if idle.contains_key(name) {
            sum = sum.minus(&idle_run(name).scaled(sum.runs));
        }
        let sum = sum.scaled(1.0 / n / days);
        let per = |x: f64| x / sum.events.max(f64::MIN_POSITIVE);
        let _ = writeln!(
            md,
            "| {name} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {:.0} | {:.2} | {} |",
            sum.events,
            per(sum.requests()),
            per(sum.rru),
            per(sum.wru),
            sum.secrets,
            sum.eventbridge_events(name),
            per(sum.lever),
            sum.by_operation(),
        );
        part.insert(name.to_string(), sum.json(name));
        day_sums.push((name.to_string(), sum));
    }
    json_out.insert("day".into(), Value::Object(part));

    let _ = writeln!(
        md,
        "\nThe schedules with nothing due, a day (the stack's, whatever the number of tenants):\n\n| function | runs a day | DynamoDB requests a day | RRU a day | DynamoDB requests by operation, a day |\n|---|---|---|---|---|"
    );
    let mut part = serde_json::Map::new();
    for (name, runs) in [
        ("sync", 1440.0),
        ("transcript-flush", 1440.0 / FLUSH_EVERY_MIN as f64),
    ] {
        let mut sum = idle_run(name).scaled(runs);
        sum.runs = runs;
        let _ = writeln!(
            md,
            "| {name} | {runs:.0} | {:.0} | {:.0} | {} |",
            sum.requests(),
            sum.rru,
            sum.by_operation()
        );
        part.insert(name.to_string(), sum.json(name));
        stack_sums.push((name.to_string(), sum));
    }
    json_out.insert("stack".into(), Value::Object(part));

    // Hottest partitions: a tenant's own partitions stay as they are in a fleet; a partition
    // every tenant writes (no tenant in its key) takes the whole fleet's writes.
    let _ = writeln!(
        md,
        "\nThe hottest partition of the table and of each index over the day (a partition every tenant writes is scaled to 1,000 tenants as the mean of its kind, e.g. the due index's shards):\n\n| table or index | hottest partition (shape) | write units a day on it | written by every tenant? | at 1,000 tenants: a day, average per second |\n|---|---|---|---|---|"
    );
    for (place, pks) in &hot {
        let Some((pk, units)) = pks
            .iter()
            .map(|(pk, u)| (pk, *u / days))
            .max_by(|a, b| a.1.total_cmp(&b.1))
        else {
            continue;
        };
        let shared = !ids.iter().any(|id| pk.contains(id.as_str()));
        // A shared partition's share of the fleet: its shape's writes spread over its partitions
        // (the due index's shards), as a thousand tenants' conversations spread.
        let fleet = if shared {
            let like: Vec<f64> = pks
                .iter()
                .filter(|(p, _)| shape(p, &ids) == shape(pk, &ids))
                .map(|(_, u)| *u / days)
                .collect();
            like.iter().sum::<f64>() / like.len() as f64 / n * 1000.0
        } else {
            units
        };
        let _ = writeln!(
            md,
            "| {place} | `{}` | {units:.0} | {} | {fleet:.0}, {:.2}/s |",
            shape(pk, &ids),
            if shared { "yes" } else { "no" },
            fleet / 86_400.0
        );
    }
    let metrics = counters.metrics.lock().unwrap().len();
    md.push_str(&cost(&connect_sums, &day_sums, &stack_sums, metrics));
    println!("{md}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&json_out).unwrap())
            .unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }
}

/// A tally summed: its requests, and its units read from the ledger.
#[derive(Default, Clone)]
struct Sum {
    events: f64,
    runs: f64,
    dynamodb: BTreeMap<String, f64>,
    rru: f64,
    wru: f64,
    secrets: f64,
    eventbridge: f64,
    lever: f64,
    billed_ms: f64,
    log_bytes: f64,
}

impl Sum {
    /// Adds the tally's writes to `hot` by place and partition when given.
    fn of(
        t: &Tally,
        ledger: Option<&str>,
        table: &str,
        hot: Option<&mut BTreeMap<String, BTreeMap<String, f64>>>,
    ) -> Sum {
        let parts = ledger
            .map(|l| ledger_parts(l, &t.ledger))
            .unwrap_or_default();
        if let Some(hot) = hot {
            for p in parts.iter().filter(|p| p.write) {
                let place = if p.place == table { "table" } else { &p.place };
                *hot.entry(place.to_string())
                    .or_default()
                    .entry(p.pk.clone())
                    .or_default() += p.units;
            }
        }
        Sum {
            events: t.events as f64,
            runs: t.invocations as f64,
            dynamodb: t
                .dynamodb
                .iter()
                .filter(|(_, c)| **c > 0)
                .map(|(op, c)| (op.clone(), *c as f64))
                .collect(),
            rru: parts
                .iter()
                .filter(|p| !p.write)
                .map(|p| p.units)
                .sum::<f64>()
                + 0.0,
            wru: parts
                .iter()
                .filter(|p| p.write)
                .map(|p| p.units)
                .sum::<f64>()
                + 0.0,
            secrets: t.secrets as f64,
            eventbridge: t.eventbridge as f64,
            lever: t.lever as f64,
            billed_ms: t.billed_ms as f64,
            log_bytes: t.log_bytes as f64,
        }
    }

    fn map(&self, f: impl Fn(f64) -> f64) -> Sum {
        Sum {
            events: f(self.events),
            runs: f(self.runs),
            dynamodb: self
                .dynamodb
                .iter()
                .map(|(k, v)| (k.clone(), f(*v)))
                .collect(),
            rru: f(self.rru),
            wru: f(self.wru),
            secrets: f(self.secrets),
            eventbridge: f(self.eventbridge),
            lever: f(self.lever),
            billed_ms: f(self.billed_ms),
            log_bytes: f(self.log_bytes),
        }
    }

    fn scaled(&self, k: f64) -> Sum {
        self.map(|x| x * k)
    }

    /// What `self` did beyond `other` (its events and runs kept).
    fn minus(&self, other: &Sum) -> Sum {
        let less = |a: f64, b: f64| (a - b).max(0.0);
        let mut out = self.clone();
        for (op, v) in &other.dynamodb {
            if let Some(mine) = out.dynamodb.get_mut(op) {
                *mine = less(*mine, *v);
            }
        }
        out.rru = less(self.rru, other.rru);
        out.wru = less(self.wru, other.wru);
        out.secrets = less(self.secrets, other.secrets);
        out.eventbridge = less(self.eventbridge, other.eventbridge);
        out.lever = less(self.lever, other.lever);
        out.billed_ms = less(self.billed_ms, other.billed_ms);
        out.log_bytes = less(self.log_bytes, other.log_bytes);
        out
    }

    fn requests(&self) -> f64 {
        self.dynamodb.values().sum()
    }

    /// EventBridge bills each event put: the relay's events are what it published.
    fn eventbridge_events(&self, name: &str) -> f64 {
        if name.starts_with("relay") {
            self.events
        } else {
            0.0
        }
    }

    fn by_operation(&self) -> String {
        self.dynamodb
            .iter()
            .filter(|(_, v)| **v >= 0.05)
            .map(|(op, c)| format!("{op} {c:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn json(&self, name: &str) -> Value {
        json!({
            "events": self.events,
            "runs": self.runs,
            "dynamodbRequests": self.requests(),
            "dynamodbByOperation": self.dynamodb,
            "readUnits": self.rru,
            "writeUnits": self.wru,
            "secretsManagerReads": self.secrets,
            "eventBridgeRequests": self.eventbridge,
            "eventBridgeEvents": self.eventbridge_events(name),
            "leverRequests": self.lever,
            "billedMs": self.billed_ms,
            "logBytes": self.log_bytes,
        })
    }
}

const MONTH_DAYS: f64 = 365.0 / 12.0;
/// The template's memory for every function, in GB.
const MEMORY_GB: f64 = 128.0 / 1024.0;
/// Lambda's SQS event source polls each queue with five long polls of up to 20 s when idle
/// (AWS's Lambda developer guide, "Using Lambda with Amazon SQS"): requests a minute per queue.
const SQS_IDLE_POLLS_A_MINUTE: f64 = 15.0;
/// The stream's batch size in the template (the relay's invocations per event at the least).
const RELAY_BATCH: f64 = 100.0;

/// The counted requests in dollars: a tenant-month line by line, its connect, and the stack's own.
fn cost(
    connect: &[(String, Sum)],
    day: &[(String, Sum)],
    stack: &[(String, Sum)],
    metrics: usize,
) -> String {
    let prices: Value = serde_json::from_str(include_str!("../bench/prices.json"))
        .expect("tests/bench/prices.json");
    let price = |k: &str| {
        prices["prices"][k]["usd"]
            .as_f64()
            .unwrap_or_else(|| panic!("tests/bench/prices.json has no price `{k}`"))
    };
    let template = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/template.yaml"
    ));
    let resources = |kind: &str| template.matches(&format!("Type: {kind}\n")).count() as f64;
    let total = |sums: &[(String, Sum)], f: &dyn Fn(&Sum) -> f64| {
        sums.iter().map(|(_, s)| f(s)).sum::<f64>()
    };
    let of = |name: &str, f: &dyn Fn(&Sum) -> f64| {
        day.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, s)| f(s))
            .sum::<f64>()
    };
    let gb_s = |ms: f64| ms / 1000.0 * MEMORY_GB;
    let logs_gb = |bytes: f64| bytes / 1e9;
    let m = MONTH_DAYS;
    let webhooks = of("webhook receivers", &|s| s.events);
    let pushes = of("push-note", &|s| s.events);
    let sms = of("transcript-ingest", &|s| s.events);
    let relayed = of("relay", &|s| s.events);
    let log_bytes = total(day, &|s| s.log_bytes);
    // (line, quantity a month, unit, dollars)
    let tenant: Vec<(String, f64, &str, f64)> = vec![
        (
            "DynamoDB write units".into(),
            total(day, &|s| s.wru) * m,
            "WRU",
            price("dynamodbWriteUnit"),
        ),
        (
            "DynamoDB read units".into(),
            total(day, &|s| s.rru) * m,
            "RRU",
            price("dynamodbReadUnit"),
        ),
        (
            "Secrets Manager: the tenant's two secrets".into(),
            2.0,
            "secret-months",
            price("secret"),
        ),
        (
            "Secrets Manager reads".into(),
            total(day, &|s| s.secrets) * m,
            "calls",
            price("secretsManagerCall"),
        ),
        (
            "EventBridge events to the vendor".into(),
            relayed * m,
            "events",
            price("eventBridgeEvent"),
        ),
        (
            "HTTP API requests (webhooks)".into(),
            webhooks * m,
            "requests",
            price("httpApiRequest"),
        ),
        (
            "SQS requests: pushes and SMS sent, received and deleted one by one (at most)".into(),
            (pushes + sms) * 3.0 * m,
            "requests",
            price("sqsRequest"),
        ),
        (
            "Lambda invocations: one a webhook, push and SMS (at most), the relay's batches".into(),
            (webhooks + pushes + sms + relayed / RELAY_BATCH) * m,
            "invocations",
            price("lambdaRequest"),
        ),
        (
            "Lambda duration at 128 MB (as run here against the emulator)".into(),
            gb_s(total(day, &|s| s.billed_ms)) * m,
            "GB-s",
            price("lambdaGbSecondArm"),
        ),
        (
            "CloudWatch Logs ingested".into(),
            logs_gb(log_bytes) * m,
            "GB",
            price("logIngestGb"),
        ),
        (
            "CloudWatch Logs stored (a month's, kept 30 days)".into(),
            logs_gb(log_bytes) * m,
            "GB-months",
            price("logStoreGbMonth"),
        ),
    ];
    let once: Vec<(String, f64, &str, f64)> = vec![
        (
            "DynamoDB write units".into(),
            total(connect, &|s| s.wru),
            "WRU",
            price("dynamodbWriteUnit"),
        ),
        (
            "DynamoDB read units".into(),
            total(connect, &|s| s.rru),
            "RRU",
            price("dynamodbReadUnit"),
        ),
        (
            "EventBridge events".into(),
            total(connect, &|s| s.eventbridge_events("relay")),
            "events",
            price("eventBridgeEvent"),
        ),
        (
            "Lambda duration at 128 MB".into(),
            gb_s(total(connect, &|s| s.billed_ms)),
            "GB-s",
            price("lambdaGbSecondArm"),
        ),
    ];
    let idle_runs = total(stack, &|s| s.runs) * m;
    let queues = template
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("EventSourceArn: !GetAtt ") && l.ends_with("Queue.Arn"))
        .count() as f64;
    let fixed: Vec<(String, f64, &str, f64)> = vec![
        (
            "Lambda invocations: sync each minute, transcript-flush every 5".into(),
            idle_runs,
            "invocations",
            price("lambdaRequest"),
        ),
        (
            "Lambda duration of those runs with nothing due".into(),
            gb_s(total(stack, &|s| s.billed_ms)) * m,
            "GB-s",
            price("lambdaGbSecondArm"),
        ),
        (
            "DynamoDB read units of those runs".into(),
            total(stack, &|s| s.rru) * m,
            "RRU",
            price("dynamodbReadUnit"),
        ),
        (
            "CloudWatch Logs of those runs".into(),
            logs_gb(total(stack, &|s| s.log_bytes)) * m,
            "GB",
            price("logIngestGb"),
        ),
        (
            format!("SQS: the event sources' long polls of {queues} queues, idle"),
            queues * SQS_IDLE_POLLS_A_MINUTE * 1440.0 * m,
            "requests",
            price("sqsRequest"),
        ),
        (
            "Secrets Manager: the stack's secrets".into(),
            resources("AWS::SecretsManager::Secret"),
            "secret-months",
            price("secret"),
        ),
        (
            "CloudWatch custom metrics (each name and dimension emitted in this run)".into(),
            metrics as f64,
            "metrics",
            price("customMetric"),
        ),
        (
            "CloudWatch alarms".into(),
            resources("AWS::CloudWatch::Alarm"),
            "alarms",
            price("alarm"),
        ),
        (
            "CloudWatch dashboard (free within an account's first three)".into(),
            resources("AWS::CloudWatch::Dashboard"),
            "dashboards",
            price("dashboard"),
        ),
    ];
    let mut md = String::new();
    let table = |md: &mut String, title: &str, lines: &[(String, f64, &str, f64)]| {
        let _ = writeln!(
            md,
            "\n{title}\n\n| line | quantity | unit | price (USD) | USD |\n|---|---|---|---|---|"
        );
        let mut sum = 0.0;
        for (line, q, unit, p) in lines {
            let q_p = q * p;
            sum += q_p;
            let q = if *q >= 100.0 {
                format!("{q:.0}")
            } else {
                format!("{q:.3}")
            };
            let _ = writeln!(md, "| {line} | {q} | {unit} | {p} | {:.4} |", q_p);
        }
        let _ = writeln!(md, "| **total** | | | | **{sum:.4}** |");
        sum
    };
    let _ = writeln!(
        md,
        "\n### Cost, counted\n\nThe counts above at the prices in tests/bench/prices.json ({}, read {}); a month is {m:.2} days.",
        prices["region"].as_str().unwrap_or("?"),
        prices["read"].as_str().unwrap_or("?")
    );
    let per_tenant = table(&mut md, "A tenant-month:", &tenant);
    let at_connect = table(&mut md, "A tenant's connect (its backfill), once:", &once);
    let stack_month = table(
        &mut md,
        "The stack's own, a month, whatever the number of tenants:",
        &fixed,
    );
    let _ = writeln!(
        md,
        "\nAt 1,000 tenants: {:.0} USD a month ({per_tenant:.2} a tenant and {stack_month:.2} for the stack), {:.2} USD to connect them all.",
        per_tenant * 1000.0 + stack_month,
        at_connect * 1000.0,
    );
    md
}
