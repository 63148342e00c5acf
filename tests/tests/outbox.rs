//! The outbox: every vendor event leaves through the store's stream and the relay, on both stores
//! (the in-memory stream, and DynamoDB Streams in the local emulator read as Lambda's mapping reads
//! them): nothing a write stored stays unpublished, nothing is published twice.

use lever_bridge::admin::http::Group;
use lever_bridge::admin::{Admin, Settings};
use lever_bridge::clock::{ManualClock, SystemClock};
use lever_bridge::events::{Bus, EventSink, InMemoryEvents, Refused, VendorEvent};
use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::push::command::PushKind;
use lever_bridge::push::{Outcome, Pusher};
use lever_bridge::receiver::Receiver;
use lever_bridge::relay::Relay;
use lever_bridge::relay::dead_letters::DeadLetterQueue;
use lever_bridge::secrets::{CachedSecrets, Redacted, SecretStore};
use lever_bridge::store::dynamo::DynamoStore;
use lever_bridge::store::memory::InMemoryStore;
use lever_bridge::webhook::EventKind;
use lever_bridge_tests::bus::TestBus;
use lever_bridge_tests::simulator::{KeyPerms, NewOpportunity, SimConfig, Simulator};
use lever_bridge_tests::stream::Mapping;
use lever_bridge_tests::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

on_both_stores!(
    the_bus_refusing_for_longer_than_every_retry_loses_and_doubles_nothing,
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

/// Two stage changes of one candidate (its item's outbox is replaced by the second write).
async fn two_writes_to_one_candidate<B: Backend>(store: &B, secrets: &B::Secrets, tenant: &str) {
    let clock = Arc::new(ManualClock::at(now_ms()));
    let rx = Receiver::new(
        EventKind::CandidateStageChange,
        store.clone(),
        CachedSecrets::new(secrets.clone(), clock.clone(), 300_000),
        clock,
        url_keys(),
    );
    for (i, to) in ["lead-reached-out", "offer"].into_iter().enumerate() {
        let mut data = sample_data(EventKind::CandidateStageChange, "opp-twice");
        data["toStageId"] = json!(to);
        let at = now_ms() - 2000 + i as i64 * 1000;
        let (_, body) = delivery(EventKind::CandidateStageChange, SIGNING, at, data);
        let answer = rx.receive(tenant, &url_key(tenant), &body).await;
        assert_eq!(answer.body["status"], "accepted", "{:?}", answer.body);
    }
}

async fn replay(
    admin: &Admin<Arc<HttpLever>, impl Backend, impl SecretStore, SystemClock>,
    body: Value,
) -> (u16, Value) {
    replay_raw(admin, &body.to_string()).await
}

/// The replay route with `body` as sent, its answer held to the OpenAPI document.
async fn replay_raw(
    admin: &Admin<Arc<HttpLever>, impl Backend, impl SecretStore, SystemClock>,
    body: &str,
) -> (u16, Value) {
    let reply = admin
        .handle(
            &[Group::Events],
            "POST",
            "/admin/events/replay",
            body.as_bytes(),
        )
        .await;
    lever_bridge_tests::openapi::check_answer(
        "POST",
        "/admin/events/replay",
        reply.status,
        reply.content_type,
        &reply.body,
    );
    (reply.status, reply.value())
}

/// The relay's mapping from the stream's start onto `bus`, with its dead-letter queue.
async fn mapping_on<B: Backend>(store: &B, bus: &TestBus) -> Mapping<B, Bus, SystemClock> {
    Mapping::new(
        store.tap().await,
        Relay::new(store.clone(), bus.sink(), bus.dead_letters(), SystemClock),
    )
}

/// An admin with the bus's replayer (admin-events).
fn events_admin<B: Backend>(
    store: &B,
    secrets: &B::Secrets,
    bus: &TestBus,
) -> Admin<Arc<HttpLever>, B, B::Secrets, SystemClock> {
    let mut settings = Settings::new(&lever_bridge::config::Config::default(), None, None, None);
    settings.replay = Some(bus.replayer());
    Admin::new(
        Arc::new(HttpLever::new(
            RateLimiter::new(10.0, 20),
            RetryPolicy::default(),
        )),
        store.clone(),
        secrets.clone(),
        SystemClock,
        settings,
    )
}

/// The bus refuses every event for longer than every retry while 200 webhooks, two writes to one
/// candidate and 50 pushes are accepted. Before, the relay failed the batch until the mapping gave
/// up on its records (their events lost). Now the stream is never held back: every refused event is
/// in the dead-letter queue, whole; once the bus is back the replay route puts each on it once.
async fn the_bus_refusing_for_longer_than_every_retry_loses_and_doubles_nothing<B: Backend>() {
    let (store, secrets) = B::make().await;
    let sim = Simulator::start(SimConfig::default()).await;
    let tenant = tenant(&store, &secrets, &sim).await;
    let bus = B::test_bus().await;
    bus.set_down().await;
    let mut mapping = mapping_on(&store, &bus).await;

    deliveries(&store, &secrets, &tenant, 200).await;
    two_writes_to_one_candidate(&store, &secrets, &tenant).await;
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
    // One pass over the stream: no batch fails, nothing waits behind a refused event.
    let report = mapping.run().await;
    assert_eq!(
        (
            report.failed_at.as_deref(),
            mapping.pending(),
            report.published
        ),
        (None, 0, 0),
        "the stream was never blocked: {report:?}"
    );
    const WRITTEN: usize = 252;
    assert_eq!(report.dead_lettered, WRITTEN, "{report:?}");
    assert!(bus.arrived().await.is_empty());

    bus.set_up().await;
    let admin = events_admin(&store, &secrets, &bus);
    // A dry run counts and changes nothing.
    let (status, dry) = replay(&admin, json!({"dryRun": true, "max": 1000})).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        (
            &dry["wouldReplay"],
            &dry["replayed"],
            &dry["left"],
            &dry["unreadable"]
        ),
        (&json!(WRITTEN), &json!(0), &json!(WRITTEN), &json!(0)),
        "{dry}"
    );
    assert!(bus.arrived().await.is_empty());
    // Two replays of at most 200: everything, once, and the queue empty.
    let (_, first) = replay(&admin, json!({"max": 200})).await;
    assert_eq!(
        (&first["replayed"], &first["more"]),
        (&json!(200), &json!(true)),
        "{first}"
    );
    let (_, second) = replay(&admin, json!({"max": 200})).await;
    assert_eq!(
        (&second["replayed"], &second["left"], &second["more"]),
        (&json!(WRITTEN - 200), &json!(0), &json!(false)),
        "{second}"
    );
    let events = bus.arrived().await;
    assert_eq!(events.len(), WRITTEN, "every event arrived");
    assert_eq!(unique_ids(&events), WRITTEN, "none twice");
    assert_eq!(events.iter().filter(|e| e.kind == "pushDone").count(), 50);
    let twice: Vec<&Value> = events
        .iter()
        .filter(|e| e.opportunity_id.as_deref() == Some("opp-twice"))
        .map(|e| &e.after["stageId"])
        .collect();
    assert_eq!(twice.len(), 2, "both writes to one candidate: {twice:?}");
    assert_eq!(
        bus.dead_letters().depth().await.unwrap(),
        0,
        "the queue is empty"
    );
    // The stream's at-least-once: reading it all again publishes and dead-letters nothing.
    let mut again = mapping_on(&store, &bus).await;
    let report = again.run().await;
    assert_eq!(
        (report.published, report.dead_lettered, report.repeats),
        (0, 0, WRITTEN),
        "{report:?}"
    );
    assert_eq!(bus.arrived().await.len(), WRITTEN);
}

/// One record whose outbox cannot be read among good ones, in one batch through the emulator's
/// stream: the good ones arrive, the poison one is in the dead-letter queue with its image and
/// reason, listed by a replay and never replayed.
#[tokio::test]
async fn a_poison_record_among_good_ones_is_dead_lettered_and_listed() {
    let (store, secrets) = DynamoStore::make().await;
    let sim = Simulator::start(SimConfig::default()).await;
    let tenant = tenant(&store, &secrets, &sim).await;
    let bus = DynamoStore::test_bus().await;
    bus.set_up().await;
    deliveries(&store, &secrets, &tenant, 5).await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws().await);
    use aws_sdk_dynamodb::types::AttributeValue as A;
    ddb.put_item()
        .table_name(store.table())
        .item("pk", A::S(format!("POISON#{tenant}")))
        .item("sk", A::S("x".into()))
        .item("outbox", A::S("not json".into()))
        .send()
        .await
        .expect("a poison item");
    deliveries(&store, &secrets, &tenant, 5).await;
    let mut mapping = mapping_on(&store, &bus).await;
    let report = mapping.run().await;
    assert_eq!(
        (
            report.published,
            report.unreadable,
            report.failed_at.as_deref()
        ),
        (10, 1, None),
        "{report:?}"
    );
    assert_eq!(bus.arrived().await.len(), 10, "the good ones arrived");
    let admin = events_admin(&store, &secrets, &bus);
    for _ in 0..2 {
        let (status, v) = replay(&admin, json!({})).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            (&v["replayed"], &v["unreadable"], &v["left"]),
            (&json!(0), &json!(1), &json!(1)),
            "{v}"
        );
        let listed = &v["unreadableRecords"][0];
        assert!(
            listed["reason"]
                .as_str()
                .unwrap()
                .starts_with("the outbox is not a list of vendor events"),
            "{listed}"
        );
        assert_eq!(listed["keys"]["pk"]["S"], format!("POISON#{tenant}"));
    }
    assert_eq!(bus.arrived().await.len(), 10, "never replayed");
    // The message holds the raw new image.
    let sqs = aws_sdk_sqs::Client::new(&aws().await);
    let out = sqs
        .receive_message()
        .queue_url(bus.dead_letter_url().unwrap())
        .send()
        .await
        .unwrap();
    let letter: Value = serde_json::from_str(out.messages()[0].body().unwrap()).unwrap();
    assert_eq!(
        (&letter["kind"], &letter["newImage"]["outbox"]["S"]),
        (&json!("unreadable"), &json!("not json"))
    );
}

/// Bad input to the replay route is a 400 that names the field; nothing is taken from the queue.
#[tokio::test]
async fn bad_input_to_the_replay_route_names_the_field() {
    let (store, secrets) = InMemoryStore::make().await;
    let bus = InMemoryStore::test_bus().await;
    let admin = events_admin(&store, &secrets, &bus);
    for (body, says) in [
        (
            r#"{"max": -1}"#,
            "`max` must be a whole number from 1 to 10000, not -1",
        ),
        (r#"{"max": 2.5}"#, "`max` must be a whole number"),
        (r#"{"dryRun": 1}"#, "`dryRun` must be true or false"),
        ("max=5", "the body is not JSON"),
    ] {
        let (status, v) = replay_raw(&admin, body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().starts_with(says),
            "{body}: {v}"
        );
    }
    let reply = admin
        .handle(&[Group::Events], "GET", "/admin/events/replay", b"")
        .await;
    assert_eq!(reply.status, 405);
}

/// A bus that takes its time, so a relay can be killed while it publishes.
struct SlowBus(Arc<InMemoryEvents>, Duration);

impl EventSink for SlowBus {
    async fn publish(&self, events: &[VendorEvent]) -> Vec<Refused> {
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
        Relay::new(
            store.clone(),
            slow,
            Arc::new(DeadLetterQueue::memory()),
            SystemClock,
        ),
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
