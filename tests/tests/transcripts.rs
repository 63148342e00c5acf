//! SMS transcripts: stored once, posted once an hour after the last message, exactly once whatever
//! step a run dies at. Lever is the simulator; the store is DynamoDB in the local emulator.

use futures::future::join_all;
use lever_bridge::clock::{Clock, ManualClock};
use lever_bridge::lever::{HttpLever, RateLimiter, RetryPolicy};
use lever_bridge::secrets::{InMemorySecrets, Redacted, SecretStore, TenantSecret};
use lever_bridge::store::{
    ConversationKey, TenantStatus, TenantStore, TranscriptStore, WebhookStore,
};
use lever_bridge::transcript::{FlushConfig, Transcripts, render};
use lever_bridge_tests::simulator::{Fault, KeyPerms, NewOpportunity, SimConfig, Simulator};
use lever_bridge_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

type T<S> = Transcripts<Arc<HttpLever>, S, Arc<InMemorySecrets>, Arc<ManualClock>>;

/// Each scenario runs on both stores: in memory, and DynamoDB in the local emulator.
trait Backend:
    FreshStore
    + TranscriptStore
    + TenantStore
    + WebhookStore
    + lever_bridge::store::StatsStore
    + lever_bridge::store::DeletionStore
    + Clone
    + 'static
{
}

impl<
    T: FreshStore
        + TranscriptStore
        + TenantStore
        + WebhookStore
        + lever_bridge::store::StatsStore
        + lever_bridge::store::DeletionStore
        + Clone
        + 'static,
> Backend for T
{
}

on_both_stores!(
    messages_at_ten_and_ten_forty_give_one_note_due_at_eleven_forty,
    duplicates_and_late_messages_are_placed_by_time,
    two_flush_runs_at_once_post_one_note,
    a_run_that_dies_at_any_step_leaves_one_note_and_no_lost_message,
    lever_faults_during_a_flush_are_retried_by_a_later_run,
    a_rejected_key_keeps_the_buffer_and_disconnects_the_tenant,
    a_deleted_candidate_takes_its_buffered_messages_with_it,
    a_run_stops_before_its_deadline_and_leaves_the_rest,
);

/// 23 Nov 2026 10:00 UTC.
const TEN: i64 = 1_795_428_000_000;
const MIN: i64 = 60_000;

struct Rig<S> {
    sim: Simulator,
    store: S,
    clock: Arc<ManualClock>,
    tenant: String,
    key: String,
    t: T<S>,
}

async fn rig_with<S: Backend>(config: FlushConfig, sim_config: SimConfig) -> Rig<S> {
    let sim = Simulator::start(sim_config).await;
    let key = random_hex(16);
    sim.add_key(&key, KeyPerms::all());
    let owner = sim
        .users()
        .iter()
        .find(|u| u["deactivatedAt"].is_null())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let store = S::fresh().await;
    let tenant = unique("sms");
    let mut record = tenant_record(&tenant, &sim.base_url(), Some(&owner));
    record.time_zone = Some("Europe/London".into());
    store.put_tenant(&record).await.unwrap();
    let secrets = Arc::new(InMemorySecrets::default());
    secrets
        .save(
            &tenant,
            &TenantSecret {
                api_key: Some(Redacted::new(&key)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::at(TEN));
    let lever = Arc::new(HttpLever::new(
        RateLimiter::new(sim_config_rate(&sim), 20),
        RetryPolicy {
            timeout: Duration::from_secs(2),
            ..RetryPolicy::default()
        },
    ));
    let t = Transcripts::new(lever, store.clone(), secrets, clock.clone(), config);
    Rig {
        sim,
        store,
        clock,
        tenant,
        key,
        t,
    }
}

fn sim_config_rate(_sim: &Simulator) -> f64 {
    10.0
}

async fn rig<S: Backend>() -> Rig<S> {
    rig_with(FlushConfig::default(), SimConfig::default()).await
}

impl<S: Backend> Rig<S> {
    fn opportunity(&self) -> String {
        self.sim.add_opportunity(NewOpportunity {
            name: "Ada Lovelace".into(),
            ..Default::default()
        })
    }

    fn message(&self, opp: &str, id: &str, direction: &str, at: i64, body: &str) -> Value {
        let (from, to, name) = if direction == "inbound" {
            ("+447700900123", "+447700900999", "Ada Lovelace")
        } else {
            ("+447700900999", "+447700900123", "Sam")
        };
        json!({"tenantId": self.tenant, "opportunityId": opp, "messageId": id, "direction": direction, "from": from, "to": to, "body": body, "sentAt": at, "senderName": name})
    }

    async fn ingest(&self, m: Value) -> String {
        // What the code accepts keeps to the contract.
        if lever_bridge::transcript::parse_message(m.clone(), i64::MAX / 2).is_ok() {
            lever_bridge_tests::contract::check_message(&m);
        }
        self.t.ingest(m).await.answer["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn flush(&self) -> lever_bridge::transcript::FlushReport {
        self.t.flush(Instant::now() + Duration::from_secs(60)).await
    }

    fn transcripts(&self, opp: &str) -> Vec<String> {
        self.sim
            .notes(opp)
            .iter()
            .map(|n| n.to_string())
            .filter(|t| t.contains("SMS conversation"))
            .collect()
    }

    fn key_of(&self, opp: &str) -> ConversationKey {
        ConversationKey {
            tenant: self.tenant.clone(),
            opportunity: opp.to_string(),
        }
    }
}

async fn messages_at_ten_and_ten_forty_give_one_note_due_at_eleven_forty<S: Backend>() {
    let rig = rig::<S>().await;
    let opp = rig.opportunity();
    assert_eq!(
        rig.ingest(rig.message(
            &opp,
            "m1",
            "outbound",
            TEN,
            "Hi Ada, are you free Thursday?"
        ))
        .await,
        "stored"
    );
    rig.clock.advance(40 * MIN);
    assert_eq!(
        rig.ingest(rig.message(&opp, "m2", "inbound", TEN + 40 * MIN, "Yes, 2pm works"))
            .await,
        "stored"
    );
    rig.clock.advance(59 * MIN); // 11:39
    assert_eq!(
        rig.flush().await.conversations,
        0,
        "not due before an hour of quiet"
    );
    assert_eq!(
        rig.store
            .tenant_stats(&rig.tenant)
            .await
            .unwrap()
            .transcript_messages_waiting,
        2
    );
    assert!(rig.transcripts(&opp).is_empty());
    rig.clock.advance(MIN); // 11:40
    let report = rig.flush().await;
    assert_eq!(
        (report.conversations, report.notes, report.messages),
        (1, 1, 2)
    );
    let notes = rig.transcripts(&opp);
    assert_eq!(notes.len(), 1, "one note, not two");
    assert!(notes[0].contains("2 messages") && notes[0].contains("Europe/London"));
    assert_eq!(
        rig.store
            .tenant_stats(&rig.tenant)
            .await
            .unwrap()
            .transcript_messages_waiting,
        0
    );
    rig.clock.advance(120 * MIN);
    assert_eq!(rig.flush().await.conversations, 0, "nothing left");
    assert_eq!(rig.transcripts(&opp).len(), 1);
}

async fn duplicates_and_late_messages_are_placed_by_time<S: Backend>() {
    let rig = rig::<S>().await;
    let opp = rig.opportunity();
    assert_eq!(
        rig.ingest(rig.message(&opp, "m2", "inbound", TEN + 40 * MIN, "second"))
            .await,
        "stored"
    );
    assert_eq!(
        rig.ingest(rig.message(&opp, "m1", "outbound", TEN, "first"))
            .await,
        "stored"
    );
    assert_eq!(
        rig.ingest(rig.message(&opp, "m2", "inbound", TEN + 40 * MIN, "second"))
            .await,
        "duplicate"
    );
    // The late, older message did not move the flush time back: due at 11:40.
    rig.clock.advance(99 * MIN);
    assert_eq!(rig.flush().await.conversations, 0);
    rig.clock.advance(MIN);
    rig.flush().await;
    let notes = rig.transcripts(&opp);
    assert_eq!(notes.len(), 1);
    let (first, second) = (
        notes[0].find("first").unwrap(),
        notes[0].find("second").unwrap(),
    );
    assert!(first < second, "placed by sentAt");
    assert_eq!(notes[0].matches("second").count(), 1, "stored once");
    assert!(
        rig.ingest(json!({"tenantId": rig.tenant, "messageId": "x"}))
            .await
            == "invalid"
    );
    // A message that breaks its schema is refused naming the field and the rule, and is never
    // delivered again (it would fail the same way into the dead-letter queue).
    let mut bad = rig.message(&opp, "m9", "inbound", TEN, "hello");
    bad["sentAt"] = json!("yesterday");
    let refused = rig.t.ingest(bad).await;
    assert!(!refused.redeliver, "{:?}", refused.answer);
    assert_eq!(
        refused.answer["error"],
        "message: `sentAt` must be a whole number, not a string"
    );
}

async fn two_flush_runs_at_once_post_one_note<S: Backend>() {
    let rig = Arc::new(rig::<S>().await);
    let opps: Vec<String> = (0..6).map(|_| rig.opportunity()).collect();
    for (i, opp) in opps.iter().enumerate() {
        rig.ingest(rig.message(opp, &format!("m{i}"), "inbound", TEN, "hello"))
            .await;
    }
    rig.clock.advance(61 * MIN);
    let runs = join_all((0..2).map(|_| {
        let rig = rig.clone();
        tokio::spawn(async move { rig.flush().await })
    }))
    .await;
    let total: usize = runs.into_iter().map(|r| r.unwrap().conversations).sum();
    assert_eq!(total, 6);
    for opp in &opps {
        assert_eq!(rig.transcripts(opp).len(), 1, "{opp}");
    }
}

/// A run dies at each step in turn; the next run (after the lease) posts exactly one note and
/// loses no message.
async fn a_run_that_dies_at_any_step_leaves_one_note_and_no_lost_message<S: Backend>() {
    for step in ["after the claim", "after the post", "between two parts"] {
        let config = FlushConfig {
            max_note_chars: 400,
            ..FlushConfig::default()
        };
        let rig = rig_with::<S>(config.clone(), SimConfig::default()).await;
        let opp = rig.opportunity();
        let count = if step == "between two parts" { 12 } else { 2 };
        for i in 0..count {
            rig.ingest(rig.message(
                &opp,
                &format!("m{i:02}"),
                if i % 2 == 0 { "inbound" } else { "outbound" },
                TEN + i * MIN,
                &format!("line {i} of the chat"),
            ))
            .await;
        }
        rig.clock.advance(count * MIN + 60 * MIN);
        // The dying run: claims and fixes the batch, then does part of the work.
        let key = rig.key_of(&opp);
        let batch = rig
            .store
            .claim_batch(&key, "dying-run", rig.clock.now_ms(), config.lease_ms, 500)
            .await
            .unwrap()
            .unwrap();
        let parts = render::transcript(
            &batch.id,
            &batch.messages,
            "Europe/London"
                .parse::<lever_bridge::transcript::Tz>()
                .unwrap(),
            config.max_note_chars,
        );
        let posted = match step {
            "after the claim" => 0,
            "after the post" => parts.len(),
            _ => 1,
        };
        let api = HttpLever::new(RateLimiter::new(10.0, 20), RetryPolicy::default());
        let account = lever_bridge::lever::Account {
            base_url: rig.sim.base_url(),
            auth: lever_bridge::lever::Auth::ApiKey(Redacted::new(&rig.key)),
        };
        let lever = lever_bridge::lever::calls::Lever::new(
            &api,
            &account,
            Instant::now() + Duration::from_secs(10),
        );
        for part in &parts[..posted] {
            lever
                .create_note(&opp, &part.text, false, None)
                .await
                .unwrap();
        }
        // Another message arrives meanwhile: it belongs in the next note.
        rig.ingest(rig.message(
            &opp,
            "late",
            "inbound",
            rig.clock.now_ms(),
            "one more thing",
        ))
        .await;
        assert_eq!(
            rig.flush().await.conversations,
            0,
            "{step}: the dying run still holds the conversation"
        );
        rig.clock.advance(config.lease_ms + 1);
        let report = rig.flush().await;
        assert_eq!(report.conversations, 1, "{step}");
        let notes = rig.transcripts(&opp);
        assert_eq!(notes.len(), parts.len(), "{step}: each part exactly once");
        for i in 0..count {
            let needle = format!("line {i} of the chat");
            assert_eq!(
                notes.iter().filter(|n| n.contains(&needle)).count(),
                1,
                "{step}: message {i}"
            );
        }
        assert!(
            notes.iter().all(|n| !n.contains("one more thing")),
            "{step}: the late message waits for the next note"
        );
        rig.clock.advance(61 * MIN);
        assert_eq!(rig.flush().await.conversations, 1);
        assert_eq!(
            rig.transcripts(&opp)
                .iter()
                .filter(|n| n.contains("one more thing"))
                .count(),
            1,
            "{step}"
        );
        assert_eq!(rig.store.waiting(&key).await.unwrap(), 0);
    }
}

async fn lever_faults_during_a_flush_are_retried_by_a_later_run<S: Backend>() {
    let rig = rig::<S>().await;
    let opp = rig.opportunity();
    rig.ingest(rig.message(&opp, "m1", "inbound", TEN, "hello"))
        .await;
    rig.clock.advance(61 * MIN);
    rig.sim.push_fault(Fault::Status(500), 1);
    let report = rig.flush().await;
    assert_eq!(
        (report.conversations, report.released),
        (0, 1),
        "a 500 on a note is not repeated blindly"
    );
    assert!(rig.transcripts(&opp).is_empty());
    rig.clock.advance(2 * MIN);
    assert_eq!(rig.flush().await.conversations, 1);
    assert_eq!(rig.transcripts(&opp).len(), 1);

    // A write that reached Lever although the answer was lost is found, not repeated.
    let opp2 = rig.opportunity();
    rig.ingest(rig.message(&opp2, "m2", "inbound", rig.clock.now_ms(), "hi"))
        .await;
    rig.clock.advance(61 * MIN);
    rig.sim.push_fault(Fault::DropAfterApply, 1);
    assert_eq!(rig.flush().await.released, 1);
    rig.clock.advance(2 * MIN);
    assert_eq!(rig.flush().await.conversations, 1);
    assert_eq!(rig.transcripts(&opp2).len(), 1);
}

async fn a_rejected_key_keeps_the_buffer_and_disconnects_the_tenant<S: Backend>() {
    let rig = rig::<S>().await;
    let opp = rig.opportunity();
    rig.ingest(rig.message(&opp, "m1", "inbound", TEN, "hello"))
        .await;
    rig.clock.advance(61 * MIN);
    rig.sim.remove_key(&rig.key);
    assert_eq!(rig.flush().await.released, 1);
    let tenant = rig.store.tenant(&rig.tenant).await.unwrap().unwrap();
    assert_eq!(tenant.status, TenantStatus::Disconnected);
    assert_eq!(
        rig.store.waiting(&rig.key_of(&opp)).await.unwrap(),
        1,
        "the message is kept"
    );
    // Reconnected: the next due run posts it.
    rig.sim.add_key(&rig.key, KeyPerms::all());
    let mut record = tenant;
    record.status = TenantStatus::Connected;
    rig.store.put_tenant(&record).await.unwrap();
    rig.clock
        .advance(FlushConfig::default().retry_after_ms + 61_000);
    assert_eq!(rig.flush().await.conversations, 1);
    assert_eq!(rig.transcripts(&opp).len(), 1);
}

async fn a_deleted_candidate_takes_its_buffered_messages_with_it<S: Backend>() {
    let rig = rig::<S>().await;
    let opp = rig.opportunity();
    rig.ingest(rig.message(&opp, "m1", "inbound", TEN, "private"))
        .await;
    let key = rig.key_of(&opp);
    assert_eq!(rig.store.waiting(&key).await.unwrap(), 1);
    // What a candidateDeleted webhook Lever confirmed does.
    let d = lever_bridge::store::Delivery {
        tenant: &rig.tenant,
        token: "tok",
        kind: lever_bridge::webhook::EventKind::CandidateDeleted,
        triggered_at: TEN + 1,
    };
    let m = lever_bridge::webhook::Mutation::Deleted {
        opportunity: opp.clone(),
    };
    let event = lever_bridge::events::vendor_event(&d, &m);
    rig.store
        .record_deletion(&d, &opp, &event, TEN + 1)
        .await
        .unwrap();
    let due = rig.store.due_deletions(TEN + 1, 10).await.unwrap();
    lever_bridge::sync::deletions::apply(&rig.store, &due[0], TEN + 1)
        .await
        .unwrap();
    assert_eq!(rig.store.waiting(&key).await.unwrap(), 0);
    assert_eq!(
        rig.ingest(rig.message(&opp, "m2", "inbound", TEN + 2, "after"))
            .await,
        "ignored"
    );
    rig.clock.advance(120 * MIN);
    assert_eq!(rig.flush().await.conversations, 0);
    assert!(rig.sim.notes(&opp).is_empty());
}

async fn a_run_stops_before_its_deadline_and_leaves_the_rest<S: Backend>() {
    let config = FlushConfig {
        margin: Duration::from_millis(200),
        ..FlushConfig::default()
    };
    let rig = rig_with::<S>(config, SimConfig::default()).await;
    let opps: Vec<String> = (0..60).map(|_| rig.opportunity()).collect();
    for (i, opp) in opps.iter().enumerate() {
        rig.ingest(rig.message(opp, &format!("m{i}"), "inbound", TEN, "hello"))
            .await;
    }
    rig.clock.advance(61 * MIN);
    // One key at 10/s with bursts of 20: about 3 s of notes, but only 1.5 s to run.
    let started = Instant::now();
    let report = rig
        .t
        .flush(Instant::now() + Duration::from_millis(1500))
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert!(
        report.stopped_early && report.conversations > 0 && report.conversations < 60,
        "{report:?}"
    );
    // Those cut off by the deadline are tried again a minute later.
    rig.clock.advance(2 * MIN);
    let report2 = rig.flush().await;
    assert_eq!(report.conversations + report2.conversations, 60);
    for opp in &opps {
        assert_eq!(rig.transcripts(opp).len(), 1);
    }
}
