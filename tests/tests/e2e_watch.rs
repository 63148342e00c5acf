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
    for _ in 0..60 {
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
