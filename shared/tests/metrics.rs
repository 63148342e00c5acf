//! The functions' metrics come out as CloudWatch embedded-metric-format documents. Its own test
//! binary: the metrics recorder is global to the process.

use lever_bridge::clock::ManualClock;
use lever_bridge::receiver::Receiver;
use lever_bridge::secrets::{CachedSecrets, InMemorySecrets, Redacted, SecretStore, TenantSecret};
use lever_bridge::store::memory::InMemoryStore;
use lever_bridge::webhook::{EventKind, sign};
use serde_json::{Value, json};
use std::sync::Arc;

#[tokio::test]
async fn webhook_outcomes_are_emitted_as_emf() {
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("LeverBridge")
        .with_dimension("Service", "lever-bridge")
        .init()
        .unwrap();
    let secrets = Arc::new(InMemorySecrets::default());
    let keys = lever_bridge::urlkey::UrlKeys::new("a webhook URL key secret of 32 characters");
    let key = keys.key("acme", 0);
    let mut secret = TenantSecret::default();
    secret
        .webhook_tokens
        .insert("candidateHired".into(), vec![Redacted::new("tok")]);
    secrets.save("acme", &secret).await.unwrap();
    let clock = Arc::new(ManualClock::at(1_700_000_000_000));
    let rx = Receiver::new(
        EventKind::CandidateHired,
        InMemoryStore::default(),
        CachedSecrets::new(secrets, clock.clone(), 60_000),
        clock,
        keys.clone(),
    );
    let t = 1_700_000_000_000i64;
    let body = json!({"event": "candidateHired", "token": "abc", "triggeredAt": t, "signature": sign("tok", "abc", t), "data": {"opportunityId": "o"}}).to_string();
    assert_eq!(rx.receive("acme", &key, body.as_bytes()).await.status, 200);
    assert_eq!(rx.receive("acme", &key, body.as_bytes()).await.status, 200);
    assert_eq!(rx.receive("acme", &key, b"{}").await.status, 400);

    let mut out = Vec::new();
    collector.flush(&mut out).unwrap();
    let docs: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let value = |name: &str| docs.iter().find_map(|d| d.get(name).cloned());
    assert_eq!(value("WebhookAccepted"), Some(json!(1)));
    assert_eq!(value("WebhookDuplicate"), Some(json!(1)));
    assert_eq!(value("WebhookRejected"), Some(json!(1)));
    let doc = docs
        .iter()
        .find(|d| d.get("WebhookAccepted").is_some())
        .unwrap();
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "LeverBridge"
    );
    assert_eq!(doc["Service"], "lever-bridge");
    assert!(
        docs.iter()
            .any(|d| d.get("Reason") == Some(&json!("invalid_envelope"))),
        "{docs:?}"
    );
}
