//! The webhook receiver's behaviour, each scenario run twice: on the in-memory store and secrets,
//! and on DynamoDB and Secrets Manager in the local emulator through the real AWS SDK.

use futures::future::join_all;
use lever_bridge::clock::SystemClock;
use lever_bridge::clock::{Clock, ManualClock};
use lever_bridge::events::InMemoryEvents;
use lever_bridge::receiver::{Receiver, Reply};
use lever_bridge::relay::Relay;
use lever_bridge::secrets::{CachedSecrets, InMemorySecrets, Redacted, SecretStore};
use lever_bridge::store::dynamo::DynamoStore;
use lever_bridge::store::{DeletionOutcome, Delivery, Recorded, WebhookStore};
use lever_bridge::webhook::{EventKind, MAX_AGE_MS, sign};
use lever_bridge_tests::stream::Mapping;
use lever_bridge_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;

type Rx<S, K> = Receiver<S, K, Arc<ManualClock>>;

struct Harness<S, K> {
    store: S,
    /// The vendor's bus, fed by the relay from the store's stream.
    events: Arc<InMemoryEvents>,
    /// The relay's dead-letter queue.
    dead_letters: Arc<lever_bridge::relay::dead_letters::DeadLetterQueue>,
    mapping: tokio::sync::Mutex<Mapping<S, Arc<InMemoryEvents>, SystemClock>>,
    clock: Arc<ManualClock>,
    secrets: K,
    /// One receiver per kind, sharing store and clock, as ten functions share the table.
    receivers: Vec<Arc<Rx<S, K>>>,
}

impl<B: Backend> Harness<B, B::Secrets> {
    async fn make() -> Self {
        let (store, secrets) = B::make().await;
        let tap = store.tap().await;
        Self::with(store, secrets, tap)
    }
}

impl<
    S: WebhookStore
        + lever_bridge::store::StatsStore
        + lever_bridge::store::OutboxStore
        + lever_bridge::store::DeletionStore
        + Clone
        + 'static,
    K: SecretStore + Clone + 'static,
> Harness<S, K>
{
    fn with(store: S, secrets: K, tap: lever_bridge_tests::stream::Tap) -> Self {
        let events = Arc::new(InMemoryEvents::default());
        let dead_letters = Arc::new(lever_bridge::relay::dead_letters::DeadLetterQueue::memory());
        let relay = Relay::new(
            store.clone(),
            events.clone(),
            dead_letters.clone(),
            SystemClock,
        );
        let mapping = tokio::sync::Mutex::new(Mapping::new(tap, relay));
        let clock = Arc::new(ManualClock::at(now_ms()));
        let receivers = EventKind::ALL
            .iter()
            .map(|&kind| {
                Arc::new(Receiver::new(
                    kind,
                    store.clone(),
                    CachedSecrets::new(secrets.clone(), clock.clone(), 300_000),
                    clock.clone(),
                    url_keys(),
                ))
            })
            .collect();
        Harness {
            store,
            events,
            dead_letters,
            mapping,
            clock,
            secrets,
            receivers,
        }
    }

    /// Runs the relay over what the stream holds (as its event source mapping would).
    async fn relay(&self) -> lever_bridge::relay::RelayReport {
        self.mapping.lock().await.run().await
    }

    /// What reached the vendor's bus once the relay published everything the stream holds.
    async fn published(&self) -> Vec<lever_bridge::events::VendorEvent> {
        let report = self.relay().await;
        assert_eq!(report.failed_at, None, "the relay published everything");
        self.events.events()
    }

    fn rx(&self, kind: EventKind) -> &Arc<Rx<S, K>> {
        &self.receivers[EventKind::ALL.iter().position(|k| *k == kind).unwrap()]
    }

    async fn send(&self, kind: EventKind, tenant: &str, body: &[u8]) -> Reply {
        self.rx(kind).receive(tenant, &url_key(tenant), body).await
    }

    /// Applies every pending deletion as the sync does once Lever confirms it (the sync's own
    /// tests ask the simulator); returns how many there were.
    async fn confirm_deletions(&self) -> usize {
        let now = self.clock.now_ms();
        let due = self.store.due_deletions(now, 100).await.unwrap();
        for p in &due {
            lever_bridge::sync::deletions::apply(&self.store, p, now)
                .await
                .unwrap();
        }
        due.len()
    }

    /// A tenant whose webhooks are all signed with one token; returns (tenant id, token).
    async fn tenant(&self) -> (String, String) {
        let (id, token) = (unique("tenant"), random_hex(24));
        self.secrets
            .save(&id, &secret_for_all(&token))
            .await
            .unwrap();
        (id, token)
    }

    fn now(&self) -> i64 {
        use lever_bridge::clock::Clock;
        self.clock.now_ms()
    }
}

fn status(r: &Reply) -> (u16, &str) {
    (
        r.status,
        r.body
            .get("status")
            .or_else(|| r.body.get("error"))
            .and_then(Value::as_str)
            .unwrap_or(""),
    )
}

on_both_stores!(
    first_delivery_applies_and_publishes_one_event,
    sequential_redeliveries_are_duplicates,
    concurrent_redeliveries_have_exactly_one_effect,
    older_events_never_overwrite_newer_state,
    every_kind_applies_to_the_view,
    deleted_candidates_are_erased_and_stay_deleted,
    a_contact_stays_while_another_of_its_opportunities_is_stored,
    rotated_token_is_accepted_after_one_reread,
    a_tenants_token_does_not_open_another_tenant,
    rejections_keep_a_code_once_a_minute_across_instances,
    malformed_deliveries_get_their_status_and_change_nothing,
    test_request_is_acknowledged_without_effect,
    an_unavailable_bus_loses_nothing,
    a_confirmation_that_dies_before_the_erasure_is_finished_once,
    dedup_records_expire_after_the_rerun_window,
);

async fn first_delivery_applies_and_publishes_one_event<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    let data = json!({"opportunityId": "opp-1", "contactId": "c-1", "fromStageId": "lead-new", "toStageId": "lead-reached-out"});
    let (_, body) = delivery(EventKind::CandidateStageChange, &tok, h.now() - 1000, data);
    assert_eq!(
        status(
            &h.send(EventKind::CandidateStageChange, &tenant, &body)
                .await
        ),
        (200, "accepted")
    );
    let view = h.store.candidate(&tenant, "opp-1").await.unwrap().unwrap();
    assert_eq!(view.stage.unwrap().id, "lead-reached-out");
    assert_eq!(view.contact_id.as_deref(), Some("c-1"));
    let events = h.published().await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (
            e.tenant_id.as_str(),
            e.kind.as_str(),
            e.opportunity_id.as_deref()
        ),
        (tenant.as_str(), "candidateStageChange", Some("opp-1"))
    );
    assert_eq!(
        (e.before.clone(), e.after.clone()),
        (
            json!({"stageId": "lead-new"}),
            json!({"stageId": "lead-reached-out"})
        )
    );
    assert!(!e.stale);
    // The status page's figures come from the dedup records.
    let stat = h
        .store
        .webhook_stat(&tenant, EventKind::CandidateStageChange, 0)
        .await
        .unwrap();
    assert_eq!((stat.deliveries, stat.last_received_at), (1, Some(e.at)));
    assert_eq!(
        h.store
            .webhook_stat(&tenant, EventKind::CandidateHired, 0)
            .await
            .unwrap()
            .deliveries,
        0
    );
}

async fn sequential_redeliveries_are_duplicates<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    let (_, body) = delivery(
        EventKind::CandidateHired,
        &tok,
        h.now(),
        json!({"opportunityId": "opp-1"}),
    );
    let replies: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(h.send(EventKind::CandidateHired, &tenant, &body).await);
        }
        v
    };
    assert_eq!(status(&replies[0]), (200, "accepted"));
    for r in &replies[1..] {
        assert_eq!(status(r), (200, "duplicate"));
    }
    assert_eq!(h.published().await.len(), 1);
    assert!(
        h.store
            .candidate(&tenant, "opp-1")
            .await
            .unwrap()
            .unwrap()
            .hired
    );
}

async fn concurrent_redeliveries_have_exactly_one_effect<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    let data = json!({"opportunityId": "opp-1", "fromStageId": "a", "toStageId": "b"});
    let (_, body) = delivery(EventKind::CandidateStageChange, &tok, h.now(), data);
    let rx = h.rx(EventKind::CandidateStageChange).clone();
    let tasks = (0..20).map(|_| {
        let (rx, tenant, body) = (rx.clone(), tenant.clone(), body.clone());
        tokio::spawn(async move { rx.receive(&tenant, &url_key(&tenant), &body).await })
    });
    let replies: Vec<Reply> = join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let accepted = replies
        .iter()
        .filter(|r| status(r) == (200, "accepted"))
        .count();
    assert_eq!(accepted, 1, "{replies:?}");
    for r in &replies {
        assert!(
            matches!(status(r), (200, "accepted" | "duplicate")),
            "{r:?}"
        );
    }
    assert_eq!(h.published().await.len(), 1);
    // Once the first is done, every copy is a plain duplicate.
    assert_eq!(
        status(
            &h.send(EventKind::CandidateStageChange, &tenant, &body)
                .await
        ),
        (200, "duplicate")
    );
    assert_eq!(h.published().await.len(), 1);
}

async fn older_events_never_overwrite_newer_state<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    let t = h.now() - 60_000;
    let stage = |to: &str| json!({"opportunityId": "opp-1", "toStageId": to});
    let (_, newer) = delivery(
        EventKind::CandidateStageChange,
        &tok,
        t + 10,
        stage("offer"),
    );
    let (_, older) = delivery(EventKind::CandidateStageChange, &tok, t, stage("lead-new"));
    assert_eq!(
        status(
            &h.send(EventKind::CandidateStageChange, &tenant, &newer)
                .await
        ),
        (200, "accepted")
    );
    assert_eq!(
        status(
            &h.send(EventKind::CandidateStageChange, &tenant, &older)
                .await
        ),
        (200, "stale")
    );
    // A stale delivery is still a delivery: its redelivery is a duplicate.
    assert_eq!(
        status(
            &h.send(EventKind::CandidateStageChange, &tenant, &older)
                .await
        ),
        (200, "duplicate")
    );

    let archived = json!({"opportunityId": "opp-1", "fromArchived": null, "toArchived": {"archivedAt": t + 5, "reason": "r-1"}});
    let unarchived = json!({"opportunityId": "opp-1", "fromArchived": {"archivedAt": t - 5, "reason": "r-0"}, "toArchived": null});
    let (_, a) = delivery(EventKind::CandidateArchiveChange, &tok, t + 5, archived);
    let (_, u) = delivery(EventKind::CandidateArchiveChange, &tok, t + 1, unarchived);
    assert_eq!(
        status(&h.send(EventKind::CandidateArchiveChange, &tenant, &a).await),
        (200, "accepted")
    );
    assert_eq!(
        status(&h.send(EventKind::CandidateArchiveChange, &tenant, &u).await),
        (200, "stale")
    );

    let iv = json!({"opportunityId": "opp-1", "interviewId": "iv-1", "panelId": "p-1"});
    let (_, deleted) = delivery(EventKind::InterviewDeleted, &tok, t + 20, iv.clone());
    let (_, updated) = delivery(EventKind::InterviewUpdated, &tok, t + 15, iv);
    assert_eq!(
        status(&h.send(EventKind::InterviewDeleted, &tenant, &deleted).await),
        (200, "accepted")
    );
    assert_eq!(
        status(&h.send(EventKind::InterviewUpdated, &tenant, &updated).await),
        (200, "stale")
    );

    let view = h.store.candidate(&tenant, "opp-1").await.unwrap().unwrap();
    assert_eq!(
        view.stage.map(|s| (s.id, s.since)),
        Some(("offer".to_string(), t + 10))
    );
    assert_eq!(view.archived.and_then(|a| a.reason).as_deref(), Some("r-1"));
    assert!(
        view.interviews.is_empty(),
        "an older update must not bring a deleted interview back"
    );
    let events = h.published().await;
    assert_eq!(events.len(), 6, "one event per accepted delivery");
    assert_eq!(events.iter().filter(|e| e.stale).count(), 3);
}

async fn every_kind_applies_to_the_view<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    let t = h.now() - 100_000;
    for (i, kind) in EventKind::ALL
        .into_iter()
        .filter(|k| !matches!(k, EventKind::CandidateDeleted | EventKind::InterviewDeleted))
        .enumerate()
    {
        let (_, body) = delivery(kind, &tok, t + i as i64, sample_data(kind, "opp-1"));
        assert_eq!(
            status(&h.send(kind, &tenant, &body).await),
            (200, "accepted"),
            "{kind}"
        );
    }
    let view = h.store.candidate(&tenant, "opp-1").await.unwrap().unwrap();
    assert_eq!(
        view.stage.unwrap().id,
        "00922a60-7c15-422b-b086-f62000824fd7"
    );
    assert_eq!(
        view.archived.unwrap().reason.as_deref(),
        Some("63dd55b2-a99f-4e7b-985f-22c7bf80ab42")
    );
    assert!(view.hired);
    assert_eq!(
        view.applications
            .get("app-1")
            .and_then(|a| a.posting_id.clone())
            .as_deref(),
        Some("posting-1")
    );
    let iv = view.interviews.get("iv-1").expect("interview stored");
    assert_eq!(
        (iv.panel_id.as_deref(), iv.data.get("date")),
        (Some("panel-1"), Some(&json!(1_700_000_000_000i64)))
    );
    let contact = h
        .store
        .contact(&tenant, "contact-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.data.get("name"), Some(&json!("Ada Lovelace")));

    let (_, del) = delivery(
        EventKind::InterviewDeleted,
        &tok,
        t + 50,
        sample_data(EventKind::InterviewDeleted, "opp-1"),
    );
    assert_eq!(
        status(&h.send(EventKind::InterviewDeleted, &tenant, &del).await),
        (200, "accepted")
    );
    assert!(
        h.store
            .candidate(&tenant, "opp-1")
            .await
            .unwrap()
            .unwrap()
            .interviews
            .is_empty()
    );
    assert_eq!(h.published().await.len(), 9);
}

async fn deleted_candidates_are_erased_and_stay_deleted<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    let t = h.now() - 100_000;
    for (i, kind) in [
        EventKind::CandidateStageChange,
        EventKind::ApplicationCreated,
        EventKind::InterviewCreated,
    ]
    .into_iter()
    .enumerate()
    {
        let (_, body) = delivery(kind, &tok, t + i as i64, sample_data(kind, "opp-1"));
        assert_eq!(
            status(&h.send(kind, &tenant, &body).await),
            (200, "accepted")
        );
    }
    let (_, body) = delivery(
        EventKind::ContactCreated,
        &tok,
        t,
        sample_data(EventKind::ContactCreated, "opp-1"),
    );
    h.send(EventKind::ContactCreated, &tenant, &body).await;
    // Another candidate of the same tenant is untouched.
    let (_, other) = delivery(
        EventKind::CandidateHired,
        &tok,
        t,
        json!({"opportunityId": "opp-2"}),
    );
    h.send(EventKind::CandidateHired, &tenant, &other).await;

    let (_, del) = delivery(
        EventKind::CandidateDeleted,
        &tok,
        t + 10,
        json!({"opportunityId": "opp-1"}),
    );
    assert_eq!(
        status(&h.send(EventKind::CandidateDeleted, &tenant, &del).await),
        (200, "pending")
    );
    let view = h.store.candidate(&tenant, "opp-1").await.unwrap().unwrap();
    assert_eq!(
        (view.deleted_at, view.applications.len()),
        (None, 1),
        "nothing changes before Lever confirms"
    );
    assert!(
        !h.published()
            .await
            .iter()
            .any(|e| e.kind == "candidateDeleted")
    );
    assert_eq!(h.confirm_deletions().await, 1);
    let view = h.store.candidate(&tenant, "opp-1").await.unwrap().unwrap();
    assert_eq!(view.deleted_at, Some(h.now()));
    assert_eq!(
        (
            view.stage,
            view.contact_id,
            view.applications.len(),
            view.interviews.len()
        ),
        (None, None, 0, 0)
    );
    assert!(
        h.store
            .contact(&tenant, "contact-1")
            .await
            .unwrap()
            .is_none(),
        "the candidate's contact is erased"
    );
    assert!(
        h.store
            .candidate(&tenant, "opp-2")
            .await
            .unwrap()
            .unwrap()
            .hired
    );

    // Late deliveries about the deleted candidate bring nothing back.
    for kind in [
        EventKind::CandidateStageChange,
        EventKind::ApplicationCreated,
        EventKind::InterviewUpdated,
        EventKind::CandidateHired,
    ] {
        let (_, late) = delivery(kind, &tok, t + 5, sample_data(kind, "opp-1"));
        assert_eq!(
            status(&h.send(kind, &tenant, &late).await),
            (200, "stale"),
            "{kind}"
        );
    }
    assert_eq!(
        h.published()
            .await
            .iter()
            .filter(|e| e.kind == "candidateDeleted")
            .count(),
        1
    );
    let view = h.store.candidate(&tenant, "opp-1").await.unwrap().unwrap();
    assert_eq!(
        (
            view.stage,
            view.hired,
            view.applications.len(),
            view.interviews.len()
        ),
        (None, false, 0, 0)
    );
}

/// A Lever contact (the person) can have several opportunities; deleting one used to erase the
/// contact the others still refer to.
async fn a_contact_stays_while_another_of_its_opportunities_is_stored<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    let t = h.now() - 100_000;
    let kind = EventKind::CandidateStageChange;
    for (i, opp) in ["opp-1", "opp-2"].into_iter().enumerate() {
        let (_, body) = delivery(kind, &tok, t + i as i64, sample_data(kind, opp));
        assert_eq!(
            status(&h.send(kind, &tenant, &body).await),
            (200, "accepted")
        );
    }
    let contact = EventKind::ContactCreated;
    let (_, body) = delivery(contact, &tok, t, sample_data(contact, "opp-1"));
    h.send(contact, &tenant, &body).await;
    let delete = |opp: &str, at: i64| {
        delivery(
            EventKind::CandidateDeleted,
            &tok,
            at,
            json!({"opportunityId": opp}),
        )
        .1
    };
    let deleted = h
        .send(
            EventKind::CandidateDeleted,
            &tenant,
            &delete("opp-1", t + 10),
        )
        .await;
    assert_eq!(status(&deleted), (200, "pending"));
    assert_eq!(h.confirm_deletions().await, 1);
    assert!(
        h.store
            .contact(&tenant, "contact-1")
            .await
            .unwrap()
            .is_some(),
        "opp-2 still refers to the contact"
    );
    let deleted = h
        .send(
            EventKind::CandidateDeleted,
            &tenant,
            &delete("opp-2", t + 11),
        )
        .await;
    assert_eq!(status(&deleted), (200, "pending"));
    assert_eq!(h.confirm_deletions().await, 1);
    assert!(
        h.store
            .contact(&tenant, "contact-1")
            .await
            .unwrap()
            .is_none(),
        "the last opportunity gone, the contact is erased"
    );
}

async fn rotated_token_is_accepted_after_one_reread<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, old) = h.tenant().await;
    let kind = EventKind::CandidateHired;
    let (_, body) = delivery(kind, &old, h.now(), json!({"opportunityId": "opp-1"}));
    assert_eq!(
        status(&h.send(kind, &tenant, &body).await),
        (200, "accepted")
    );

    // The admin regenerates the token in Lever and pastes it; the old one stays valid meanwhile.
    let new = random_hex(24);
    let mut secret = secret_for_all(&old);
    secret.webhook_tokens.insert(
        kind.as_str().into(),
        vec![Redacted::new(&new), Redacted::new(&old)],
    );
    h.secrets.save(&tenant, &secret).await.unwrap();
    h.clock.advance(10_000);
    let (_, body) = delivery(kind, &new, h.now(), json!({"opportunityId": "opp-2"}));
    assert_eq!(
        status(&h.send(kind, &tenant, &body).await),
        (200, "accepted"),
        "a warm instance re-reads the secret on a mismatch"
    );
    let (_, body) = delivery(kind, &old, h.now(), json!({"opportunityId": "opp-3"}));
    assert_eq!(
        status(&h.send(kind, &tenant, &body).await),
        (200, "accepted"),
        "the previous token is still valid"
    );

    // Once the old token is removed, it fails (after the cache notices).
    secret
        .webhook_tokens
        .insert(kind.as_str().into(), vec![Redacted::new(&new)]);
    h.secrets.save(&tenant, &secret).await.unwrap();
    h.clock.advance(300_000);
    let (_, body) = delivery(kind, &old, h.now(), json!({"opportunityId": "opp-4"}));
    assert_eq!(
        status(&h.send(kind, &tenant, &body).await),
        (401, "unauthorized")
    );
}

async fn a_tenants_token_does_not_open_another_tenant<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (a, tok_a) = h.tenant().await;
    let (b, _) = h.tenant().await;
    let (_, body) = delivery(
        EventKind::CandidateHired,
        &tok_a,
        h.now(),
        json!({"opportunityId": "opp-1"}),
    );
    let on_b = h.send(EventKind::CandidateHired, &b, &body).await;
    let unknown = h
        .send(EventKind::CandidateHired, "no-such-tenant", &body)
        .await;
    assert_eq!(on_b.status, 401);
    assert_eq!(
        on_b, unknown,
        "a known tenant answers exactly like an unknown one"
    );
    // The known tenant's admin sees why; nothing is written for a made-up tenant.
    let stat = h
        .store
        .webhook_stat(&b, EventKind::CandidateHired, 0)
        .await
        .unwrap();
    assert_eq!(stat.last_rejection.as_deref(), Some("bad_signature"));
    assert!(
        h.store
            .webhook_stat("no-such-tenant", EventKind::CandidateHired, 0)
            .await
            .unwrap()
            .last_rejection
            .is_none()
    );
    assert_eq!(
        status(&h.send(EventKind::CandidateHired, &a, &body).await),
        (200, "accepted")
    );
    assert!(h.store.candidate(&b, "opp-1").await.unwrap().is_none());
}

async fn malformed_deliveries_get_their_status_and_change_nothing<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    let now = h.now();
    let kind = EventKind::CandidateStageChange;
    let data = json!({"opportunityId": "opp-1", "toStageId": "offer"});
    let good = |t: i64| {
        let token = random_hex(24);
        json!({"token": token, "triggeredAt": t, "event": kind.as_str(), "signature": sign(&tok, &token, t), "data": data})
    };
    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = good(now);
        f(v.as_object_mut().unwrap());
        v.to_string().into_bytes()
    };
    let sig = |s: &str| {
        let s = s.to_string();
        with(&move |m| {
            m.insert("signature".into(), json!(s));
        })
    };
    let full = good(now)["signature"].as_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<u8>, &str, u16)> = vec![
        (
            "not JSON",
            b"event=candidateStageChange".to_vec(),
            &tenant,
            400,
        ),
        ("empty body", Vec::new(), &tenant, 400),
        ("JSON array", b"[]".to_vec(), &tenant, 400),
        ("JSON string", b"\"hello\"".to_vec(), &tenant, 400),
        ("no event", with(&|m| drop(m.remove("event"))), &tenant, 400),
        ("no token", with(&|m| drop(m.remove("token"))), &tenant, 400),
        (
            "no triggeredAt",
            with(&|m| drop(m.remove("triggeredAt"))),
            &tenant,
            400,
        ),
        (
            "no signature",
            with(&|m| drop(m.remove("signature"))),
            &tenant,
            400,
        ),
        (
            "triggeredAt as text",
            with(&|m| drop(m.insert("triggeredAt".into(), json!(now.to_string())))),
            &tenant,
            400,
        ),
        (
            "triggeredAt as float",
            with(&|m| drop(m.insert("triggeredAt".into(), json!(now as f64 + 0.5)))),
            &tenant,
            400,
        ),
        (
            "data not an object",
            with(&|m| drop(m.insert("data".into(), json!("x")))),
            &tenant,
            400,
        ),
        (
            "event of another kind",
            with(&|m| drop(m.insert("event".into(), json!("candidateHired")))),
            &tenant,
            400,
        ),
        (
            "unknown event",
            with(&|m| drop(m.insert("event".into(), json!("somethingElse")))),
            &tenant,
            400,
        ),
        (
            "over 256 KiB",
            with(&|m| drop(m.insert("padding".into(), json!("x".repeat(300 * 1024))))),
            &tenant,
            413,
        ),
        ("empty signature", sig(""), &tenant, 401),
        ("truncated signature", sig(&full[..40]), &tenant, 401),
        (
            "over-long signature",
            sig(&format!("{full}ab")),
            &tenant,
            401,
        ),
        ("non-hex signature", sig(&"g".repeat(64)), &tenant, 401),
        (
            "signed with another key",
            sig(&sign("other", "t", now)),
            &tenant,
            401,
        ),
        (
            "older than 15 days",
            good(now - MAX_AGE_MS - 60_000).to_string().into_bytes(),
            &tenant,
            401,
        ),
        (
            "10 minutes ahead",
            good(now + 600_000).to_string().into_bytes(),
            &tenant,
            401,
        ),
        (
            "unknown tenant",
            good(now).to_string().into_bytes(),
            "nobody",
            401,
        ),
        (
            "tenant id with a separator",
            good(now).to_string().into_bytes(),
            "a#b",
            401,
        ),
        (
            "empty tenant id",
            good(now).to_string().into_bytes(),
            "",
            401,
        ),
    ];
    for (why, body, tenant, expected) in &cases {
        let r = h.send(kind, tenant, body).await;
        assert_eq!(r.status, *expected, "{why}: {r:?}");
        assert!(
            r.body["error"].is_string() && r.body["message"].is_string(),
            "{why}: {r:?}"
        );
    }
    let bad_sig = h.send(kind, &tenant, &sig("")).await;
    let unknown = h
        .send(kind, "nobody", &good(now).to_string().into_bytes())
        .await;
    assert_eq!(bad_sig, unknown, "one answer for every signature failure");
    assert!(h.store.candidate(&tenant, "opp-1").await.unwrap().is_none());
    assert!(h.published().await.is_empty());
}

async fn test_request_is_acknowledged_without_effect<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    for kind in EventKind::ALL {
        let (_, body) = delivery(kind, &tok, h.now(), json!({}));
        assert_eq!(
            status(&h.send(kind, &tenant, &body).await),
            (200, "test"),
            "{kind}"
        );
    }
    // Lever's documented test request body: no opportunity id, no effect.
    let (_, body) = delivery(
        EventKind::CandidateHired,
        &tok,
        h.now(),
        json!({"somethingNew": true}),
    );
    assert_eq!(
        status(&h.send(EventKind::CandidateHired, &tenant, &body).await),
        (200, "ignored")
    );
    // A test request with a bad signature still fails, so the admin sees a misconfiguration.
    let (_, body) = delivery(EventKind::CandidateHired, "wrong", h.now(), json!({}));
    assert_eq!(
        h.send(EventKind::CandidateHired, &tenant, &body)
            .await
            .status,
        401
    );
    assert!(h.published().await.is_empty());

    // Lever signs the token and time, never the data: a recorded test request or ignored
    // delivery replayed with other data (a forged deletion, say) is a duplicate without effect.
    let stage = json!({"opportunityId": "opp-live", "toStageId": "lead-new"});
    let (_, first) = delivery(EventKind::CandidateStageChange, &tok, h.now(), stage);
    assert_eq!(
        status(
            &h.send(EventKind::CandidateStageChange, &tenant, &first)
                .await
        ),
        (200, "accepted")
    );
    for (kind, data) in [
        (EventKind::CandidateDeleted, json!({})),
        (EventKind::CandidateDeleted, json!({"somethingNew": true})),
    ] {
        let (_, body) = delivery(kind, &tok, h.now(), data);
        let mut forged: Value = serde_json::from_slice(&body).unwrap();
        forged["data"] = json!({"opportunityId": "opp-live"});
        let forged = forged.to_string().into_bytes();
        assert_eq!(h.send(kind, &tenant, &body).await.status, 200);
        assert_eq!(
            status(&h.send(kind, &tenant, &forged).await),
            (200, "duplicate"),
            "a recorded signature with other data"
        );
    }
    let view = h
        .store
        .candidate(&tenant, "opp-live")
        .await
        .unwrap()
        .unwrap();
    assert!(view.deleted_at.is_none(), "the candidate is not tombstoned");
}

async fn an_unavailable_bus_loses_nothing<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    let (_, body) = delivery(
        EventKind::CandidateHired,
        &tok,
        h.now(),
        json!({"opportunityId": "opp-1"}),
    );
    // The bus is down: the webhook does not depend on it (its event is in the outbox).
    h.events.set_down(true);
    assert_eq!(
        status(&h.send(EventKind::CandidateHired, &tenant, &body).await),
        (200, "accepted")
    );
    // The relay keeps it in its dead-letter queue and goes on.
    let report = h.relay().await;
    assert_eq!(
        (
            report.failed_at.as_deref(),
            report.published,
            report.dead_lettered
        ),
        (None, 0, 1),
        "{report:?}"
    );
    assert!(h.events.events().is_empty());
    assert_eq!(
        status(&h.send(EventKind::CandidateHired, &tenant, &body).await),
        (200, "duplicate")
    );
    // Back up: a replay publishes it, once.
    h.events.set_down(false);
    assert_eq!(
        h.published().await.len(),
        0,
        "a repeat of the stream publishes nothing"
    );
    let replayer = lever_bridge::relay::dead_letters::Replayer {
        queue: h.dead_letters.clone(),
        bus: lever_bridge::events::Bus::Memory(h.events.clone()),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let replayed = replayer.replay(10, false, deadline).await.unwrap();
    assert_eq!((replayed.replayed, replayed.left), (1, 0), "{replayed:?}");
    assert_eq!(h.published().await.len(), 1);
    assert_eq!(h.events.events()[0].kind, "candidateHired");
    assert!(
        h.store
            .candidate(&tenant, "opp-1")
            .await
            .unwrap()
            .unwrap()
            .hired
    );
}

async fn a_confirmation_that_dies_before_the_erasure_is_finished_once<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    let kind = EventKind::CandidateDeleted;
    let t = h.now();
    let (_, stage) = delivery(
        EventKind::CandidateStageChange,
        &tok,
        t - 10,
        sample_data(EventKind::CandidateStageChange, "opp-1"),
    );
    h.send(EventKind::CandidateStageChange, &tenant, &stage)
        .await;
    let (_, body) = delivery(kind, &tok, t, json!({"opportunityId": "opp-1"}));
    assert_eq!(
        status(&h.send(kind, &tenant, &body).await),
        (200, "pending")
    );
    // The first confirmation commits the tombstone and its event, then the run dies before
    // erasing and settling.
    let due = h.store.due_deletions(h.now(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        h.store.confirm_deletion(&due[0], h.now()).await.unwrap(),
        DeletionOutcome::Confirmed
    );
    assert!(
        h.store
            .candidate(&tenant, "opp-1")
            .await
            .unwrap()
            .unwrap()
            .stage
            .is_some(),
        "not yet purged"
    );
    // Lever's retry of the webhook is a duplicate; the next run finishes the erasure.
    assert_eq!(
        status(&h.send(kind, &tenant, &body).await),
        (200, "duplicate")
    );
    assert_eq!(h.confirm_deletions().await, 1, "still due");
    assert!(
        h.store
            .candidate(&tenant, "opp-1")
            .await
            .unwrap()
            .unwrap()
            .stage
            .is_none(),
        "the next run purged"
    );
    assert_eq!(h.confirm_deletions().await, 0, "settled");
    let deleted = h
        .published()
        .await
        .into_iter()
        .filter(|e| e.kind == "candidateDeleted")
        .count();
    assert_eq!(deleted, 1, "the event is published once");
}

async fn dedup_records_expire_after_the_rerun_window<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let now = h.now();
    let tenant = unique("tenant");
    let d = Delivery {
        tenant: &tenant,
        token: "tok",
        kind: EventKind::CandidateHired,
        triggered_at: now - 1000,
    };
    let m = lever_bridge::webhook::Mutation::Hired {
        opportunity: "opp-1".into(),
    };
    let event = lever_bridge::events::vendor_event(&d, &m);
    let record = |at| h.store.record_delivery(&d, Some(&event), at);
    assert_eq!(record(now).await.unwrap(), Recorded::Applied);
    // Still remembered at the end of the window in which Lever could re-run it.
    assert_eq!(record(now + MAX_AGE_MS).await.unwrap(), Recorded::Duplicate);
    // Past it (and a day more), the record counts as gone even before DynamoDB's TTL deletes it.
    let expired = now + MAX_AGE_MS + 25 * 3600 * 1000;
    assert_eq!(record(expired).await.unwrap(), Recorded::Applied);
}

/// Round trips of a first delivery and of a duplicate, counted at the SDK (each request sent).
#[tokio::test]
async fn dynamodb_round_trips_per_delivery() {
    let aws = aws().await;
    let (_, table) = fresh_table(&aws).await;
    let (client, counter) = counted_dynamodb(&aws);
    let tap = lever_bridge_tests::stream::Tap::dynamo(&aws, &table).await;
    let h = Harness::with(
        DynamoStore::new(client, table),
        Arc::new(InMemorySecrets::default()),
        tap,
    );
    let (tenant, tok) = h.tenant().await;
    let (_, body) = delivery(
        EventKind::CandidateStageChange,
        &tok,
        h.now(),
        sample_data(EventKind::CandidateStageChange, "opp-1"),
    );
    let before = counter.get();
    assert_eq!(
        status(
            &h.send(EventKind::CandidateStageChange, &tenant, &body)
                .await
        ),
        (200, "accepted")
    );
    let first = counter.get() - before;
    let ops = counter.by_operation();
    assert_eq!(
        (first, ops.get("TransactWriteItems").copied()),
        (1, Some(1)),
        "a first delivery is one TransactWriteItems: {ops:?}"
    );
    let before = counter.get();
    assert_eq!(
        status(
            &h.send(EventKind::CandidateStageChange, &tenant, &body)
                .await
        ),
        (200, "duplicate")
    );
    assert_eq!(
        counter.get() - before,
        1,
        "a duplicate costs one round trip"
    );
    assert_eq!(h.secrets.loads(), 1, "a warm instance read the secret once");
}

/// DynamoDB cancels a transaction for a conflict with another one in flight, for throttling, or for
/// a write it refuses. A conflict is retried at once (it usually clears in milliseconds); throttling
/// is a 503, so Lever delivers again later; a refused write cannot succeed on any retry, so it is
/// acknowledged with its cause logged rather than making Lever send it five more times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transaction_is_retried_deferred_or_acknowledged_by_its_cause() {
    let h = Harness::<DynamoStore, <DynamoStore as Backend>::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    let table = h.store.table().to_string();
    let kind = EventKind::CandidateStageChange;
    let at = h.now() - 10_000;
    let stage_of = |opp: &'static str| {
        let store = &h.store;
        let tenant = &tenant;
        async move {
            store
                .candidate(tenant, opp)
                .await
                .unwrap()
                .and_then(|v| v.stage)
                .map(|s| s.id)
        }
    };

    // Two conflicts: retried in the same invocation, applied.
    cancel_next_transactions(&table, "TransactionConflict", 2).await;
    let (_, body) = delivery(kind, &tok, at, sample_data(kind, "opp-1"));
    assert_eq!(
        status(&h.send(kind, &tenant, &body).await),
        (200, "accepted")
    );
    assert!(stage_of("opp-1").await.is_some());

    // Conflicts that outlast the retries, then throttling: 503 and nothing written; Lever's
    // redelivery is applied.
    for (code, times) in [("TransactionConflict", 5), ("ThrottlingError", 1)] {
        let opp = if code == "ThrottlingError" {
            "opp-3"
        } else {
            "opp-2"
        };
        cancel_next_transactions(&table, code, times).await;
        let (_, body) = delivery(kind, &tok, at, sample_data(kind, opp));
        let r = h.send(kind, &tenant, &body).await;
        assert_eq!(r.status, 503, "{code}: {}", r.body);
        assert_eq!(stage_of(opp).await, None, "{code}");
        assert_eq!(
            status(&h.send(kind, &tenant, &body).await),
            (200, "accepted"),
            "{code}"
        );
        assert!(stage_of(opp).await.is_some(), "{code}");
    }

    // A write DynamoDB refuses: acknowledged, so Lever stops; nothing written.
    cancel_next_transactions(&table, "ValidationError", 1).await;
    let (_, body) = delivery(kind, &tok, at, sample_data(kind, "opp-4"));
    assert_eq!(
        status(&h.send(kind, &tenant, &body).await),
        (200, "ignored")
    );
    assert_eq!(stage_of("opp-4").await, None);
}

/// A rejection is kept as its reason code, never the request's text, at most once a minute per
/// tenant and kind across instances, and only for a tenant the instance has already read.
async fn rejections_keep_a_code_once_a_minute_across_instances<B: Backend>() {
    let h = Harness::<B, B::Secrets>::make().await;
    let (tenant, tok) = h.tenant().await;
    let kind = EventKind::CandidateHired;
    let stat = async || h.store.webhook_stat(&tenant, kind, 0).await.unwrap();
    // A stranger's wrong-event body to a tenant this instance has not read: nothing stored.
    let huge = "x".repeat(250 * 1024);
    let body =
        json!({"token": "t", "triggeredAt": h.now(), "event": huge, "signature": "00", "data": {}});
    let body = body.to_string().into_bytes();
    assert_eq!(
        status(&h.send(kind, &tenant, &body).await),
        (400, "wrong_event")
    );
    assert_eq!(
        stat().await.last_rejection,
        None,
        "an unread tenant costs no write"
    );
    // Once the tenant is known here (a delivery verified), the code alone is kept.
    let (_, good) = delivery(kind, &tok, h.now(), json!({"opportunityId": "opp-1"}));
    assert_eq!(
        status(&h.send(kind, &tenant, &good).await),
        (200, "accepted")
    );
    assert_eq!(
        status(&h.send(kind, &tenant, &body).await),
        (400, "wrong_event")
    );
    let first = stat().await;
    assert_eq!(first.last_rejection.as_deref(), Some("wrong_event"));
    // Another instance, 10 s later: within the minute, no second write.
    let other = Receiver::new(
        kind,
        h.store.clone(),
        CachedSecrets::new(h.secrets.clone(), h.clock.clone(), 300_000),
        h.clock.clone(),
        url_keys(),
    );
    h.clock.advance(10_000);
    let (_, bad) = delivery(kind, "wrong", h.now(), json!({"opportunityId": "opp-1"}));
    assert_eq!(
        other.receive(&tenant, &url_key(&tenant), &bad).await.status,
        401
    );
    assert_eq!(stat().await.last_rejected_at, first.last_rejected_at);
    h.clock.advance(60_000);
    assert_eq!(
        other.receive(&tenant, &url_key(&tenant), &bad).await.status,
        401
    );
    assert_eq!(
        stat().await.last_rejection.as_deref(),
        Some("bad_signature")
    );
}

/// Strangers cost nothing: 10,000 deliveries to made-up tenants and 1,000 to a real tenant with a
/// wrong URL key are answered 401 with no Secrets Manager call and no DynamoDB request (counted at
/// the SDK clients); a rejected body's text is never stored; Lever's next delivery is accepted.
#[tokio::test]
async fn strangers_cost_no_secret_read_and_no_write() {
    use lever_bridge::secrets::{Parts, SecretsManagerStore};
    let aws = aws().await;
    let (_, table) = fresh_table(&aws).await;
    let (dynamo, ddb) = counted_dynamodb(&aws);
    let sm_count = RequestCounter::default();
    let sm = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&aws)
            .interceptor(sm_count.clone())
            .build(),
    );
    let prefix = format!("{}/", unique("strangers"));
    let secrets = SecretsManagerStore::new(sm, &prefix, Parts::WEBHOOKS);
    let (tenant, tok) = (unique("tenant"), random_hex(24));
    SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(&aws),
        &prefix,
        Parts::ALL,
    )
    .save(&tenant, &secret_for_all(&tok))
    .await
    .unwrap();
    let clock = Arc::new(ManualClock::at(now_ms()));
    let rx = Receiver::new(
        EventKind::CandidateDeleted,
        DynamoStore::new(dynamo, &table),
        CachedSecrets::new(secrets, clock.clone(), 300_000),
        clock.clone(),
        url_keys(),
    );
    let kind = EventKind::CandidateDeleted;
    let (_, body) = delivery(kind, &tok, now_ms(), json!({"opportunityId": "opp-1"}));
    let (before_sm, before_ddb) = (sm_count.get(), ddb.get());
    for i in 0..10_000 {
        let stranger = format!("t{i}-{}", random_hex(4));
        let key = url_keys().key(&format!("{stranger}x"), 0);
        assert_eq!(rx.receive(&stranger, &key, &body).await.status, 401);
    }
    let huge = json!({"token": "t", "triggeredAt": now_ms(), "event": "x".repeat(250 * 1024),
        "signature": "00", "data": {}})
    .to_string()
    .into_bytes();
    for i in 0..1_000 {
        let wrong = format!("0.{}", random_hex(16));
        let body = if i % 2 == 0 { &body } else { &huge };
        assert_eq!(rx.receive(&tenant, &wrong, body).await.status, 401);
    }
    assert_eq!(sm_count.get() - before_sm, 0, "no Secrets Manager call");
    assert_eq!(ddb.get() - before_ddb, 0, "no DynamoDB request");
    let reply = rx.receive(&tenant, &url_key(&tenant), &body).await;
    assert_eq!(status(&reply), (200, "pending"));
}
