//! Backfill against the simulator's Lever rate limit (10 requests/s per key, bursts of 20; pages
//! of 100): 10,000 opportunities into the in-memory store for the wall time against the limit's
//! minimum, and 1,000 into DynamoDB in the emulator for the DynamoDB requests and writes per
//! opportunity (counted at the SDK). Run with `make bench` (it starts the local AWS emulator).

use lever_bridge::clock::ManualClock;
use lever_bridge::events::InMemoryEvents;
use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::secrets::{InMemorySecrets, Redacted, SecretStore, TenantSecret};
use lever_bridge::sync::{SyncConfig, Syncer};
use lever_bridge_tests::simulator::{KeyPerms, SimConfig, Simulator};
use lever_bridge_tests::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RATE: f64 = 10.0;
const BURST: f64 = 20.0;

async fn backfill<S: Backend>(label: &str, store: S, n: usize, ddb: Option<RequestCounter>) {
    let sim = Simulator::start(SimConfig::default()).await;
    let key = random_hex(16);
    sim.add_key(&key, KeyPerms::all());
    sim.add_opportunities(n);
    let total = sim.opportunity_ids().len();
    let tenant = unique("bench-sync");
    store
        .put_tenant(&tenant_record(&tenant, &sim.base_url(), None))
        .await
        .unwrap();
    let secrets = Arc::new(InMemorySecrets::default());
    let secret = TenantSecret {
        api_key: Some(Redacted::new(&key)),
        ..Default::default()
    };
    secrets.save(&tenant, &secret).await.unwrap();
    let events = Arc::new(InMemoryEvents::default());
    let lever = Arc::new(HttpLever::new(
        RateLimiter::new(RATE, BURST as u32),
        RetryPolicy::default(),
    ));
    let sync = Syncer::new(
        lever,
        store.clone(),
        secrets,
        Arc::new(ManualClock::at(now_ms())),
        SyncConfig::default(),
    );
    sync.start_backfill(&tenant).await.unwrap();
    sim.clear_requests();
    let before = ddb.as_ref().map(|c| c.by_operation()).unwrap_or_default();
    let started = Instant::now();
    let report = sync.run(started + Duration::from_secs(900)).await;
    let secs = started.elapsed().as_secs_f64();
    let requests = sim.requests();
    let limited = requests.iter().filter(|r| r.status == Some(429)).count();
    let pages = requests
        .iter()
        .filter(|r| r.path.ends_with("/opportunities") && !r.query.contains("created_at_end"))
        .count();
    // Lever's bucket: a burst of 20, then 10 a second.
    let minimum_all = ((requests.len() as f64 - BURST) / RATE).max(0.0);
    let minimum_pages = pages as f64 / RATE;
    let job = store.sync_job(&tenant).await.unwrap().unwrap();
    assert!(job.finished_at.is_some(), "{job:?}");
    assert_eq!(job.done as usize, total);
    let per_opp = |ops: &[&str]| -> String {
        let Some(c) = &ddb else {
            return "–".into();
        };
        let after = c.by_operation();
        let n: u64 = ops
            .iter()
            .map(|op| after.get(*op).copied().unwrap_or(0) - before.get(*op).copied().unwrap_or(0))
            .sum();
        format!("{:.2}", n as f64 / total as f64)
    };
    println!(
        "| {label} | {total} | {} | {pages} | {} | {secs:.1} | {minimum_pages:.1} | {:.0} % | {minimum_all:.1} | {:.0} % | {:.2} % | {} | {} | {} |",
        report.opportunities,
        requests.len(),
        100.0 * minimum_pages / secs,
        100.0 * minimum_all / secs,
        100.0 * limited as f64 / requests.len().max(1) as f64,
        per_opp(&[
            "UpdateItem",
            "TransactWriteItems",
            "PutItem",
            "BatchWriteItem",
            "DeleteItem"
        ]),
        per_opp(&["BatchGetItem", "GetItem", "Query"]),
        match &ddb {
            Some(c) => format!(
                "{:?}",
                c.by_operation()
                    .into_iter()
                    .map(|(k, v)| (k.clone(), v - before.get(&k).copied().unwrap_or(0)))
                    .filter(|(_, v)| *v > 0)
                    .collect::<Vec<_>>()
            ),
            None => "–".into(),
        }
    );
    // The relay publishes one event per candidate (measured apart: runtime bench).
    let mut mapping = store.mapping(events.clone()).await;
    mapping.run().await;
    let candidates = events
        .events()
        .iter()
        .filter(|e| e.opportunity_id.is_some())
        .count();
    assert_eq!(candidates, total);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    println!(
        "backfill against the simulator's limit ({RATE}/s per key, bursts of {BURST}, pages of 100)"
    );
    println!(
        "| store | opportunities | read | pages | Lever requests | seconds | pages at 10/s | share | every request at the limit | share | 429 share | DynamoDB write requests/opp | DynamoDB read requests/opp | DynamoDB requests by operation |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let memory = lever_bridge::store::memory::InMemoryStore::default();
    backfill(
        "in memory",
        memory,
        if quick { 2_000 } else { 10_000 },
        None,
    )
    .await;
    let aws = aws().await;
    let (client, counter) = counted_dynamodb(&aws);
    let (_, table) = fresh_table(&aws).await;
    let store = lever_bridge::store::dynamo::DynamoStore::new(client, table);
    backfill(
        "DynamoDB (emulator)",
        store,
        if quick { 300 } else { 1_000 },
        Some(counter),
    )
    .await;
}
