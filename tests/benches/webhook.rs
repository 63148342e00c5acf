//! Warm cost of one webhook delivery: the receiver with the real SDK clients against the local
//! emulator, as a warm Lambda instance runs it; then the relay's cost per event, publishing what
//! those deliveries put in the outbox. Requests are counted at each SDK client.
//! Run with `make bench` (it starts the emulator).

use lever_bridge::clock::SystemClock;
use lever_bridge::events::EventBridgeSink;
use lever_bridge::receiver::Receiver;
use lever_bridge::secrets::{CachedSecrets, SecretsManagerStore};
use lever_bridge::store::dynamo::DynamoStore;
use lever_bridge::webhook::EventKind;
use lever_bridge_tests::*;
use std::time::{Duration, Instant};

const N: usize = 1000;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let aws = aws().await;
    let (_, table) = fresh_table(&aws).await;
    let (dynamo, ddb_count) = counted_dynamodb(&aws);
    let sm_count = RequestCounter::default();
    let sm = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&aws)
            .interceptor(sm_count.clone())
            .build(),
    );
    let eb_count = RequestCounter::default();
    let eb = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&aws)
            .interceptor(eb_count.clone())
            .build(),
    );
    let bus = unique("bus");
    eb.create_event_bus().name(&bus).send().await.expect("bus");
    let prefix = format!("{}/", unique("bench"));
    let secrets = SecretsManagerStore::new(sm, &prefix, lever_bridge::secrets::Parts::ALL);
    let store = DynamoStore::new(dynamo, &table);
    store.warm_up().await;
    let tap = lever_bridge_tests::stream::Tap::dynamo(&aws, &table).await;
    let receiver = Receiver::new(
        EventKind::CandidateStageChange,
        store.clone(),
        CachedSecrets::new(secrets, SystemClock, 300_000),
        SystemClock,
        url_keys(),
    );
    let token = random_hex(24);
    use lever_bridge::secrets::SecretStore;
    receiver
        .secrets
        .inner()
        .save("bench", &secret_for_all(&token))
        .await
        .unwrap();
    let kind = EventKind::CandidateStageChange;
    let bodies: Vec<Vec<u8>> = (0..N + 20)
        .map(|i| {
            delivery(
                kind,
                &token,
                now_ms(),
                sample_data(kind, &format!("opp-{}", i % 200)),
            )
            .1
        })
        .collect();

    // Warm-up: connections open, secret cached, as on a warm instance.
    for body in &bodies[..20] {
        assert_eq!(
            receiver
                .receive("bench", &url_key("bench"), body)
                .await
                .status,
            200
        );
    }
    let (d0, s0, e0) = (ddb_count.get(), sm_count.get(), eb_count.get());
    let mut first = Vec::with_capacity(N);
    for body in &bodies[20..] {
        let t = Instant::now();
        let r = receiver.receive("bench", &url_key("bench"), body).await;
        first.push(t.elapsed());
        assert_eq!(r.status, 200, "{r:?}");
    }
    let (d1, s1, e1) = (ddb_count.get(), sm_count.get(), eb_count.get());
    let mut dup = Vec::with_capacity(N);
    for body in &bodies[20..] {
        let t = Instant::now();
        let r = receiver.receive("bench", &url_key("bench"), body).await;
        dup.push(t.elapsed());
        assert_eq!(r.body["status"], "duplicate");
    }
    let (d2, s2, e2) = (ddb_count.get(), sm_count.get(), eb_count.get());
    // The relay: everything those deliveries wrote to the outbox, in batches of 100 records.
    let relay = lever_bridge::relay::Relay::new(
        store,
        EventBridgeSink::new(eb, &bus),
        std::sync::Arc::new(lever_bridge::relay::dead_letters::DeadLetterQueue::memory()),
        SystemClock,
    );
    let mut mapping = lever_bridge_tests::stream::Mapping::new(tap, relay);
    let t = Instant::now();
    let report = mapping.run().await;
    let relay_time = t.elapsed();
    assert_eq!(report.failed_at, None);
    assert_eq!(report.published, N + 20, "{report:?}");
    let (d3, s3, e3) = (ddb_count.get(), sm_count.get(), eb_count.get());
    first.sort();
    dup.sort();
    let n = N as f64;
    println!("warm candidateStageChange deliveries against the local emulator, {N} each");
    println!(
        "| delivery | p50 ms | p90 ms | p99 ms | DynamoDB req | Secrets Manager req | EventBridge req |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, lat, d, s, e) in [
        ("first", &first, d1 - d0, s1 - s0, e1 - e0),
        ("duplicate", &dup, d2 - d1, s2 - s1, e2 - e1),
    ] {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            percentile(lat, 0.5),
            percentile(lat, 0.9),
            percentile(lat, 0.99),
            d as f64 / n,
            s as f64 / n,
            e as f64 / n
        );
    }
    let events = report.published as f64;
    println!(
        "| relay, per event (batches of 100 stream records) | {:.3} (mean) | – | – | {:.2} | {:.2} | {:.2} |",
        relay_time.as_secs_f64() * 1000.0 / events,
        (d3 - d2) as f64 / events,
        (s3 - s2) as f64 / events,
        (e3 - e2) as f64 / events
    );
}
