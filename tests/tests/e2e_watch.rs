//! All ten webhook functions end to end: real Lambda runtime under `cargo lambda watch`, real AWS
//! SDK against the emulator, vendor events read back from a queue subscribed to the bus.
//! `make test` starts the stack and sets LEVER_BRIDGE_WATCH_URL.

use lever_bridge::config::Config;
use lever_bridge::store::WebhookStore;
use lever_bridge::store::dynamo::DynamoStore;
use lever_bridge::webhook::EventKind;
use lever_bridge_tests::*;
use serde_json::{Value, json};
use std::time::Duration;

fn watch_url() -> String {
    std::env::var("LEVER_BRIDGE_WATCH_URL").expect("LEVER_BRIDGE_WATCH_URL is not set: run the tests with `make test`, which starts cargo lambda watch")
}

async fn post(
    client: &reqwest::Client,
    tenant: &str,
    kind: EventKind,
    body: Vec<u8>,
) -> (u16, Value) {
    let url = format!(
        "{}/{}/webhooks/{tenant}/{}",
        watch_url(),
        kind.function_name(),
        kind.as_str()
    );
    let res = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST to cargo lambda watch");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Vendor events for `tenant` that reached the queue, waiting until `n` arrived.
async fn vendor_events(
    aws: &aws_config::SdkConfig,
    bus: &str,
    tenant: &str,
    n: usize,
) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let url = sqs
        .get_queue_url()
        .queue_name(format!("{bus}-vendor-events"))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let mut seen = Vec::new();
    for _ in 0..120 {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            let envelope: Value = serde_json::from_str(m.body().unwrap_or("{}")).unwrap();
            if envelope["detail"]["tenantId"] == tenant {
                seen.push(envelope);
                sqs.delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            } else {
                // Another test's event: visible again at once, for that test to read.
                sqs.change_message_visibility()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            }
        }
        if seen.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    seen
}

#[tokio::test]
async fn all_ten_functions_through_cargo_lambda_watch() {
    let config = Config::from_env();
    let aws = aws().await;
    let tenant = unique("e2e");
    let signing = random_hex(24);
    create_tenant(
        &aws,
        &config.table,
        &config.secret_prefix,
        &tenant,
        &secret_for_all(&signing),
        "https://api.lever.co/v1",
    )
    .await;
    // The first request to each function compiles and starts it.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();

    let order = [
        EventKind::CandidateStageChange,
        EventKind::ApplicationCreated,
        EventKind::CandidateArchiveChange,
        EventKind::CandidateHired,
        EventKind::InterviewCreated,
        EventKind::InterviewUpdated,
        EventKind::InterviewDeleted,
        EventKind::ContactCreated,
        EventKind::ContactUpdated,
        EventKind::CandidateDeleted,
    ];
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    let t0 = now_ms() - 60_000;
    for (i, kind) in order.into_iter().enumerate() {
        let (_, body) = delivery(
            kind,
            &signing,
            t0 + i as i64 * 1000,
            sample_data(kind, "opp-e2e"),
        );
        assert_eq!(
            post(&client, &tenant, kind, body.clone()).await,
            (200, json!({"status": "accepted"})),
            "{kind}"
        );
        assert_eq!(
            post(&client, &tenant, kind, body).await,
            (200, json!({"status": "duplicate"})),
            "{kind} redelivered"
        );
        if kind == EventKind::InterviewUpdated {
            let view = store
                .candidate(&tenant, "opp-e2e")
                .await
                .unwrap()
                .expect("candidate stored");
            assert!(view.hired && view.stage.is_some() && view.archived.is_some());
            assert_eq!((view.applications.len(), view.interviews.len()), (1, 1));
        }
    }
    let view = store
        .candidate(&tenant, "opp-e2e")
        .await
        .unwrap()
        .expect("tombstone");
    assert!(view.deleted_at.is_some() && view.stage.is_none() && view.interviews.is_empty());
    assert!(store.contact(&tenant, "contact-1").await.unwrap().is_none());

    // Lever's test request, and a forged delivery.
    let (_, test) = delivery(EventKind::CandidateHired, &signing, now_ms(), json!({}));
    assert_eq!(
        post(&client, &tenant, EventKind::CandidateHired, test).await,
        (200, json!({"status": "test"}))
    );
    let (_, forged) = delivery(
        EventKind::CandidateHired,
        "not-the-token",
        now_ms(),
        json!({"opportunityId": "x"}),
    );
    assert_eq!(
        post(&client, &tenant, EventKind::CandidateHired, forged)
            .await
            .0,
        401
    );

    let events = vendor_events(&aws, &config.event_bus, &tenant, order.len()).await;
    let mut kinds: Vec<&str> = events
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    kinds.sort();
    let mut expected: Vec<&str> = order.iter().map(|k| k.as_str()).collect();
    expected.sort();
    assert_eq!(
        kinds, expected,
        "one vendor event per accepted delivery, none for duplicates"
    );
    assert!(events.iter().all(|e| e["source"] == "lever-bridge"));
}

/// Invokes a function the way `cargo lambda invoke` does: the Lambda Invoke API that watch serves.
async fn invoke(client: &reqwest::Client, function: &str, payload: Value) -> Value {
    let base = watch_url();
    let root = base.trim_end_matches("/lambda-url");
    let url = format!("{root}/2015-03-31/functions/{function}/invocations");
    let res = client
        .post(&url)
        .json(&payload)
        .send()
        .await
        .expect("invoke through cargo lambda watch");
    assert!(res.status().is_success(), "{function}: {}", res.status());
    res.json().await.expect("JSON answer")
}

/// A Lever account in a fresh simulator with a key that may do everything, and a tenant on it in
/// the stack's table and secrets (the functions under watch read them).
struct Account {
    config: Config,
    aws: aws_config::SdkConfig,
    sim: lever_bridge_tests::simulator::Simulator,
    tenant: String,
    store: DynamoStore,
    /// The tenant's owner, an active user of the account (when asked for).
    owner: Option<String>,
}

async fn account(prefix: &str, with_owner: bool) -> Account {
    use lever_bridge::store::TenantStore;
    use lever_bridge_tests::simulator::{KeyPerms, SimConfig, Simulator};
    let config = Config::from_env();
    let aws = aws().await;
    let sim = Simulator::start(SimConfig::default()).await;
    let key = random_hex(16);
    sim.add_key(&key, KeyPerms::all());
    let tenant = unique(prefix);
    let secret = lever_bridge::secrets::TenantSecret {
        api_key: Some(lever_bridge::secrets::Redacted::new(&key)),
        ..Default::default()
    };
    create_tenant(
        &aws,
        &config.table,
        &config.secret_prefix,
        &tenant,
        &secret,
        &sim.base_url(),
    )
    .await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    let owner = with_owner.then(|| {
        sim.users()
            .iter()
            .find(|u| u["deactivatedAt"].is_null())
            .and_then(|u| u["id"].as_str())
            .expect("an active user")
            .to_string()
    });
    store
        .put_tenant(&tenant_record(&tenant, &sim.base_url(), owner.as_deref()))
        .await
        .unwrap();
    Account {
        config,
        aws,
        sim,
        tenant,
        store,
        owner,
    }
}

/// A push and a transcript through the real Lambda runtime: the functions run under cargo lambda
/// watch and talk to the simulator (Lever) and the emulator (AWS).
#[tokio::test]
async fn push_and_transcript_functions_through_cargo_lambda_watch() {
    use lever_bridge_tests::simulator::NewOpportunity;
    let Account {
        sim, tenant, owner, ..
    } = account("e2e-push", true).await;
    let owner = owner.unwrap();
    let opp = sim.add_opportunity(NewOpportunity {
        name: "Grace Hopper".into(),
        ..Default::default()
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();

    let command = json!({"commandId": unique("cmd"), "tenantId": tenant, "opportunityId": opp, "text": "Scored 92/100 on the exercise."});
    let first = invoke(&client, "push-note", command.clone()).await;
    assert_eq!(first["status"], "done", "{first}");
    assert_eq!(
        invoke(&client, "push-note", command).await["status"],
        "duplicate"
    );
    let notes = sim.notes(&opp);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["user"], json!(owner));

    // A message quiet for over an hour is due at once.
    let message = json!({"tenantId": tenant, "opportunityId": opp, "messageId": unique("sms"), "direction": "inbound",
        "from": "+15550100", "to": "+15550199", "body": "Thanks, see you Thursday!", "sentAt": now_ms() - 2 * 3_600_000, "senderName": "Grace Hopper"});
    assert_eq!(
        invoke(&client, "transcript-ingest", message).await["status"],
        "stored"
    );
    let report = invoke(
        &client,
        "transcript-flush",
        json!({"source": "aws.events", "detail-type": "Scheduled Event"}),
    )
    .await;
    assert!(
        report["conversations"].as_u64().unwrap_or(0) >= 1,
        "{report}"
    );
    let transcripts: Vec<Value> = sim
        .notes(&opp)
        .into_iter()
        .filter(|n| n.to_string().contains("SMS conversation with Grace Hopper"))
        .collect();
    assert_eq!(transcripts.len(), 1);
}

/// A backfill through the real Lambda runtime: `sync` (invoked as its schedule would) reads every
/// candidate from the simulator and publishes one backfill event per candidate on the vendor bus.
#[tokio::test]
async fn sync_function_through_cargo_lambda_watch() {
    use lever_bridge::store::SyncStore;
    let Account {
        config,
        aws,
        sim,
        tenant,
        store,
        ..
    } = account("e2e-sync", false).await;
    sim.add_opportunities(150);
    store
        .put_sync_job(&lever_bridge::sync::new_backfill(&tenant, None, now_ms()))
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let report = invoke(
        &client,
        "sync",
        json!({"source": "aws.events", "detail-type": "Scheduled Event"}),
    )
    .await;
    let total = sim.opportunity_ids().len();
    assert!(
        report["opportunities"].as_u64().unwrap_or(0) >= total as u64,
        "{report}"
    );
    let job = store.sync_job(&tenant).await.unwrap().expect("job");
    assert!(job.finished_at.is_some(), "{job:?}");
    assert_eq!(job.done, total as i64);
    let events = vendor_events(&aws, &config.event_bus, &tenant, total).await;
    assert_eq!(events.len(), total, "one event per candidate");
    assert!(
        events
            .iter()
            .all(|e| e["detail-type"] == "candidateBackfilled" && e["detail"]["backfill"] == true)
    );
}
