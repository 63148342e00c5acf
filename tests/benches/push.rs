//! Push throughput against the simulator's Lever rate limit (10 requests/s per key, bursts of 20):
//! one key, then ten keys at once. And the transcript backlog: 10,000 due conversations across 20
//! tenants, drained by flush runs. Run with `make bench` (it starts the local AWS emulator).

use futures::future::join_all;
use lever_bridge::clock::SystemClock;
use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::push::command::PushKind;
use lever_bridge::push::{Outcome, Pusher};
use lever_bridge::secrets::{InMemorySecrets, SecretStore};
use lever_bridge::store::{Message, TenantStore, TranscriptStore};
use lever_bridge::transcript::{FlushConfig, Transcripts};
use lever_bridge_tests::simulator::{KeyPerms, NewOpportunity, SimConfig, Simulator};
use lever_bridge_tests::*;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RATE: f64 = 10.0;
const BURST: f64 = 20.0;

/// The least time Lever's bucket allows for `n` requests on one key.
fn minimum(n: usize) -> f64 {
    ((n as f64 - BURST) / RATE).max(0.0)
}

/// Pushes on `keys` keys at once. With `dynamodb` the command store is DynamoDB in the emulator
/// (requests per push counted); without, the in-memory store, so that the emulator's own limits
/// (it fails under thousands of concurrent requests) do not stand in for Lever's.
async fn push_run(keys: usize, per_key: usize, dynamodb: bool) {
    if dynamodb {
        let aws = aws().await;
        let (ddb, ddb_count) = counted_dynamodb(&aws);
        let (_, table) = fresh_table(&aws).await;
        push_with(
            keys,
            per_key,
            lever_bridge::store::dynamo::DynamoStore::new(ddb, table),
            Some(ddb_count),
        )
        .await
    } else {
        push_with(
            keys,
            per_key,
            lever_bridge::store::memory::InMemoryStore::default(),
            None,
        )
        .await
    }
}

async fn push_with<S>(keys: usize, per_key: usize, store: S, ddb_count: Option<RequestCounter>)
where
    S: lever_bridge::store::CommandStore
        + TenantStore
        + lever_bridge::store::StatsStore
        + Clone
        + 'static,
{
    let sim = Simulator::start(SimConfig::default()).await;
    let secrets = Arc::new(InMemorySecrets::default());
    let owner = sim
        .users()
        .iter()
        .find(|u| u["deactivatedAt"].is_null())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let lever = Arc::new(HttpLever::new(
        RateLimiter::new(RATE, BURST as u32),
        RetryPolicy::default(),
    ));
    let pusher = Arc::new(Pusher::new(
        PushKind::Note,
        lever,
        store.clone(),
        secrets.clone(),
        SystemClock,
    ));
    let mut work = Vec::new();
    for k in 0..keys {
        let key = random_hex(16);
        sim.add_key(&key, KeyPerms::all());
        let tenant = format!("bench-{k}");
        store
            .put_tenant(&tenant_record(&tenant, &sim.base_url(), Some(&owner)))
            .await
            .unwrap();
        secrets.save(&tenant, &api_key_secret(&key)).await.unwrap();
        let opp = sim.add_opportunity(NewOpportunity {
            name: format!("Candidate {k}"),
            ..Default::default()
        });
        for i in 0..per_key {
            work.push(json!({"commandId": format!("c-{k}-{i}"), "tenantId": tenant, "opportunityId": opp, "text": format!("assessment result {i}")}));
        }
    }
    sim.clear_requests();
    let d0 = ddb_count.as_ref().map_or(0, |c| c.get());
    let started = Instant::now();
    let outcomes = join_all(work.into_iter().map(|cmd| {
        let pusher = pusher.clone();
        tokio::spawn(async move {
            pusher
                .handle(cmd, Instant::now() + Duration::from_secs(600))
                .await
        })
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let done = outcomes
        .iter()
        .filter(|o| matches!(o.as_ref().unwrap(), Outcome::Done { .. }))
        .count();
    let requests = sim.requests();
    let limited = requests.iter().filter(|r| r.status == Some(429)).count();
    let n = keys * per_key;
    let ddb = ddb_count.map_or("(in memory)".to_string(), |c| {
        format!("{:.2}", (c.get() - d0) as f64 / n as f64)
    });
    println!(
        "| {keys} | {n} | {done} | {elapsed:.2} | {:.2} | {:.1} % | {:.1} | {:.2} % | {:.2} | {ddb} |",
        minimum(per_key),
        100.0 * minimum(per_key) / elapsed,
        done as f64 / elapsed,
        100.0 * limited as f64 / requests.len() as f64,
        requests.len() as f64 / n as f64,
    );
}

/// A backlog of due conversations drained by flush runs. With `dynamodb` the store is DynamoDB in
/// the emulator (requests per conversation counted); without, the in-memory store, so the drain is
/// bound by Lever's limits rather than the emulator's (which fails under concurrent writes).
async fn transcript_run(tenants: usize, conversations: usize, dynamodb: bool) {
    if dynamodb {
        let aws = aws().await;
        let (ddb, ddb_count) = counted_dynamodb(&aws);
        let (_, table) = fresh_table(&aws).await;
        transcripts_with(
            tenants,
            conversations,
            lever_bridge::store::dynamo::DynamoStore::new(ddb, table),
            Some(ddb_count),
        )
        .await
    } else {
        transcripts_with(
            tenants,
            conversations,
            lever_bridge::store::memory::InMemoryStore::default(),
            None,
        )
        .await
    }
}

async fn transcripts_with<S>(
    tenants: usize,
    conversations: usize,
    store: S,
    ddb_count: Option<RequestCounter>,
) where
    S: TranscriptStore + TenantStore + lever_bridge::store::StatsStore + Clone + 'static,
{
    let sim = Simulator::start(SimConfig::default()).await;
    let secrets = Arc::new(InMemorySecrets::default());
    let owner = sim
        .users()
        .iter()
        .find(|u| u["deactivatedAt"].is_null())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = now_ms();
    let per_tenant = conversations / tenants;
    let opps = sim.add_opportunities(conversations);
    let mut loads = Vec::new();
    for t in 0..tenants {
        let key = random_hex(16);
        sim.add_key(&key, KeyPerms::all());
        let tenant = format!("sms-{t}");
        store
            .put_tenant(&tenant_record(&tenant, &sim.base_url(), Some(&owner)))
            .await
            .unwrap();
        secrets.save(&tenant, &api_key_secret(&key)).await.unwrap();
        for c in 0..per_tenant {
            let m = Message {
                tenant_id: tenant.clone(),
                opportunity_id: opps[t * per_tenant + c].clone(),
                message_id: format!("m-{t}-{c}"),
                direction: "inbound".into(),
                from: "+15550100".into(),
                to: "+15550199".into(),
                body: format!("conversation {c}"),
                sent_at: now - 2 * 3_600_000 + c as i64,
                sender_name: None,
            };
            loads.push(m);
        }
    }
    // The backlog: stored as ingest stores it, all due now.
    let store2 = store.clone();
    futures::stream::iter(loads)
        .for_each_concurrent(4, |m| {
            let store = store2.clone();
            async move {
                // The emulator fails now and then under concurrent writes: try again.
                for attempt in 0.. {
                    match store.add_message(&m, 3_600_000).await {
                        Ok(_) => break,
                        Err(e) if attempt < 10 => eprintln!("retrying a message: {e}"),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        })
        .await;
    let lever = Arc::new(HttpLever::new(
        RateLimiter::new(RATE, BURST as u32),
        RetryPolicy::default(),
    ));
    let transcripts = Transcripts::new(
        lever,
        store.clone(),
        secrets,
        SystemClock,
        FlushConfig {
            tenants_at_once: 20,
            per_tenant: 4,
            ..FlushConfig::default()
        },
    );
    sim.clear_requests();
    let d0 = ddb_count.as_ref().map_or(0, |c| c.get());
    let started = Instant::now();
    let mut flushed = 0;
    let mut runs = 0;
    while flushed < conversations && runs < 20 {
        let report = transcripts
            .flush(Instant::now() + Duration::from_secs(900))
            .await;
        flushed += report.conversations;
        runs += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests = sim.requests();
    let limited = requests.iter().filter(|r| r.status == Some(429)).count();
    println!(
        "| {tenants} | {conversations} | {flushed} | {runs} | {elapsed:.1} | {:.1} | {:.1} % | {:.2} % | {} |",
        minimum(per_tenant),
        100.0 * minimum(per_tenant) / elapsed,
        100.0 * limited as f64 / requests.len().max(1) as f64,
        ddb_count.map_or("(in memory)".to_string(), |c| format!(
            "{:.2}",
            (c.get() - d0) as f64 / flushed.max(1) as f64
        )),
    );
}

use futures::StreamExt;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    println!(
        "push-note throughput against the simulator's limit ({RATE}/s per key, bursts of {BURST})"
    );
    println!(
        "| keys | commands | done | seconds | minimum s | share of limit | notes/s | 429 share | Lever req/push | DynamoDB req/push |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let per_key = if quick { 120 } else { 300 };
    push_run(1, per_key, true).await;
    push_run(1, per_key, false).await;
    push_run(10, per_key, false).await;
    println!();
    println!("transcript backlog drain");
    println!(
        "| tenants | conversations | flushed | runs | seconds | minimum s | share of limit | 429 share | DynamoDB req/conversation |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    if quick {
        transcript_run(20, 2_000, false).await;
        transcript_run(4, 200, true).await;
    } else {
        transcript_run(20, 10_000, false).await;
        transcript_run(4, 400, true).await;
    }
}
