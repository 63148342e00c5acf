//! The outbox: every vendor event leaves through the store's stream and the relay, on both stores
//! (the in-memory stream, and DynamoDB Streams in the local emulator read as Lambda's mapping reads
//! them): nothing a write stored stays unpublished, nothing is published twice.

use lever_bridge::clock::{ManualClock, SystemClock};
use lever_bridge::events::{EventSink, InMemoryEvents, VendorEvent};
use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::push::command::PushKind;
use lever_bridge::push::{Outcome, Pusher};
use lever_bridge::receiver::Receiver;
use lever_bridge::relay::Relay;
use lever_bridge::secrets::{CachedSecrets, Redacted, SecretStore};
use lever_bridge::webhook::EventKind;
use lever_bridge_tests::simulator::{KeyPerms, NewOpportunity, SimConfig, Simulator};
use lever_bridge_tests::stream::Mapping;
use lever_bridge_tests::*;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

on_both_stores!(
    the_bus_down_for_a_while_loses_and_doubles_nothing,
    a_relay_killed_mid_batch_loses_and_doubles_nothing,
);

const SIGNING: &str = "outbox-signature-token";

/// A tenant with every webhook signed by [`SIGNING`] and an API key of `sim`.
async fn tenant<B: Backend>(store: &B, secrets: &B::Secrets, sim: &Simulator) -> String {
    let tenant = unique("outbox");
    let key = random_hex(16);
    sim.add_key(&key, KeyPerms::all());
    let owner = sim
        .users()
        .iter()
        .find(|u| u["deactivatedAt"].is_null())
        .and_then(|u| u["id"].as_str())
        .unwrap()
        .to_string();
    store
        .put_tenant(&tenant_record(&tenant, &sim.base_url(), Some(&owner)))
        .await
        .unwrap();
    let mut secret = secret_for_all(SIGNING);
    secret.api_key = Some(Redacted::new(&key));
    secrets.save(&tenant, &secret).await.unwrap();
    tenant
}

/// `n` accepted deliveries of every kind but deletion, each on its own candidate, each also
/// redelivered once (a duplicate owes nothing).
async fn deliveries<B: Backend>(store: &B, secrets: &B::Secrets, tenant: &str, n: usize) {
    let clock = Arc::new(ManualClock::at(now_ms()));
    let kinds: Vec<EventKind> = EventKind::ALL
        .into_iter()
        .filter(|k| *k != EventKind::CandidateDeleted)
        .collect();
    for i in 0..n {
        let kind = kinds[i % kinds.len()];
        let rx = Receiver::new(
            kind,
            store.clone(),
            CachedSecrets::new(secrets.clone(), clock.clone(), 300_000),
            clock.clone(),
            url_keys(),
        );
        let mut data = sample_data(kind, &format!("opp-{i}"));
        if let Some(c) = data.get_mut("contactId") {
            *c = json!(format!("contact-{i}"));
        }
        let (_, body) = delivery(kind, SIGNING, now_ms() - 1000, data);
        assert_eq!(
            rx.receive(tenant, &url_key(tenant), &body).await.body["status"],
            "accepted"
        );
        assert_eq!(
            rx.receive(tenant, &url_key(tenant), &body).await.body["status"],
            "duplicate"
        );
    }
}

fn unique_ids(events: &[VendorEvent]) -> usize {
    events
        .iter()
        .map(|e| e.id.as_str())
        .collect::<HashSet<_>>()
        .len()
}

/// EventBridge is unavailable while 200 webhooks and 50 pushes are accepted: every answer is
/// unaffected, and once the bus is back exactly 250 events reach it, none twice.
async fn the_bus_down_for_a_while_loses_and_doubles_nothing<B: Backend>() {
    let (store, secrets) = B::make().await;
    let sim = Simulator::start(SimConfig::default()).await;
    let tenant = tenant(&store, &secrets, &sim).await;
    let bus = Arc::new(InMemoryEvents::default());
    let mut mapping = store.mapping(bus.clone()).await;
    bus.set_down(true);

    deliveries(&store, &secrets, &tenant, 200).await;
    let pusher = Pusher::new(
        PushKind::Note,
        Arc::new(HttpLever::new(
            RateLimiter::new(10.0, 20),
            RetryPolicy::default(),
        )),
        store.clone(),
        secrets.clone(),
        SystemClock,
    );
    let opp = sim.add_opportunity(NewOpportunity {
        name: "Ada".into(),
        ..Default::default()
    });
    for i in 0..50 {
        let command = json!({"commandId": format!("c-{i}"), "tenantId": tenant, "opportunityId": opp, "text": format!("note {i}")});
        let outcome = pusher
            .handle(command, Instant::now() + Duration::from_secs(30))
            .await;
        assert!(matches!(outcome, Outcome::Done { .. }), "{outcome:?}");
    }
    // The relay keeps trying while the bus is down; nothing reaches it.
    for _ in 0..3 {
        let report = mapping.run().await;
        assert!(report.failed_at.is_some(), "{report:?}");
    }
    assert!(bus.events().is_empty());

    bus.set_down(false);
    let mut rounds = 0;
    loop {
        rounds += 1;
        let report = mapping.run().await;
        if report.failed_at.is_none() && mapping.pending() == 0 {
            break;
        }
        assert!(rounds < 10, "{report:?}");
    }
    let events = bus.events();
    assert_eq!(events.len(), 250, "every event, once");
    assert_eq!(unique_ids(&events), 250, "none twice");
    assert_eq!(events.iter().filter(|e| e.kind == "pushDone").count(), 50);
    assert_eq!(events.iter().filter(|e| e.tenant_id == tenant).count(), 250);
    // The stream's at-least-once: reading it all again publishes nothing new.
    let mut again = store.mapping(bus.clone()).await;
    let report = again.run().await;
    assert_eq!(
        (report.published, bus.events().len()),
        (0, 250),
        "{report:?}"
    );
}

/// A bus that takes its time, so a relay can be killed while it publishes.
struct SlowBus(Arc<InMemoryEvents>, Duration);

impl EventSink for SlowBus {
    async fn publish(&self, events: &[VendorEvent]) -> Vec<String> {
        tokio::time::sleep(self.1).await;
        self.0.publish(events).await
    }
}

/// The relay is killed in the middle of a batch (its invocation ends while it publishes), and
/// Lambda's mapping runs the batch again: every event is published, none twice.
async fn a_relay_killed_mid_batch_loses_and_doubles_nothing<B: Backend>() {
    let (store, secrets) = B::make().await;
    let sim = Simulator::start(SimConfig::default()).await;
    let tenant = tenant(&store, &secrets, &sim).await;
    deliveries(&store, &secrets, &tenant, 45).await;
    let bus = Arc::new(InMemoryEvents::default());
    let slow = SlowBus(bus.clone(), Duration::from_millis(300));
    let mut mapping = Mapping::new(
        store.tap().await,
        Relay::new(store.clone(), slow, SystemClock),
    );
    mapping.poll().await;
    // Killed after about two of its five requests.
    let killed = tokio::time::timeout(Duration::from_millis(750), mapping.run()).await;
    assert!(killed.is_err(), "the relay was still publishing");
    let before = bus.events().len();
    assert!(before > 0 && before < 45, "killed mid-batch: {before}");
    let report = mapping.run().await;
    assert_eq!(report.failed_at, None);
    let events = bus.events();
    assert_eq!(events.len(), 45, "every event, once: {report:?}");
    assert_eq!(unique_ids(&events), 45);
    assert!(
        report.repeats >= before,
        "what the killed run published was not published again"
    );
}
