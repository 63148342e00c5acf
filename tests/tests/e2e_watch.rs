//! All ten webhook functions end to end: real Lambda runtime under `cargo lambda watch`, real AWS
//! SDK against the emulator, vendor events read back from a queue subscribed to the bus.
//! `make test` starts the stack and sets LEVER_BRIDGE_WATCH_URL.

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
    let keys = local_url_keys(&aws().await, &LocalStack::from_env().event_bus).await;
    let url = lever_bridge::urlkey::webhook_url(
        &format!("{}/{}", watch_url(), kind.function_name()),
        tenant,
        &keys.key(tenant, 0),
        kind.as_str(),
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

/// Every vendor event read from the queue so far, whichever test's tenant it is for: each reader
/// drains the queue into it, so no test's events hide another's (the tests share one queue).
static READ: std::sync::Mutex<Vec<Value>> = std::sync::Mutex::new(Vec::new());

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
    let mine = || -> Vec<Value> {
        READ.lock()
            .unwrap()
            .iter()
            .filter(|e| e["detail"]["tenantId"] == tenant)
            .cloned()
            .collect()
    };
    for _ in 0..240 {
        if mine().len() >= n {
            break;
        }
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            let envelope: Value = serde_json::from_str(m.body().unwrap_or("{}")).unwrap();
            // What reaches the bus keeps to the contract.
            let kind = envelope["detail-type"].as_str().unwrap_or_default();
            let errors = contract::violations(
                &lever_bridge::contract::event_name(kind),
                &envelope["detail"],
            );
            assert!(errors.is_empty(), "{envelope}: {errors:?}");
            READ.lock().unwrap().push(envelope);
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        if out.messages().is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    mine()
}

#[tokio::test]
async fn all_ten_functions_through_cargo_lambda_watch() {
    let config = LocalStack::from_env();
    let aws = aws().await;
    let tenant = unique("e2e");
    let signing = random_hex(24);
    // Lever, for the sync to confirm deletions with.
    let sim = lever_bridge_tests::simulator::Simulator::start(Default::default()).await;
    let key = random_hex(16);
    sim.add_key(&key, lever_bridge_tests::simulator::KeyPerms::all());
    let mut secret = secret_for_all(&signing);
    secret.api_key = Some(lever_bridge::secrets::Redacted::new(&key));
    create_tenant(
        &aws,
        &config.table,
        &config.secret_prefix,
        &tenant,
        &secret,
        &sim.base_url(),
    )
    .await;
    // The first request to each function compiles and starts it.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();

    // Every kind, the deletion last (it erases what the others wrote).
    let order: Vec<EventKind> = EventKind::ALL
        .into_iter()
        .filter(|k| *k != EventKind::CandidateDeleted)
        .chain([EventKind::CandidateDeleted])
        .collect();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    let t0 = now_ms() - 60_000;
    for (i, &kind) in order.iter().enumerate() {
        let (_, body) = delivery(
            kind,
            &signing,
            t0 + i as i64 * 1000,
            sample_data(kind, "opp-e2e"),
        );
        let first = if kind == EventKind::CandidateDeleted {
            "pending"
        } else {
            "accepted"
        };
        assert_eq!(
            post(&client, &tenant, kind, body.clone()).await,
            (200, json!({ "status": first })),
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
    // A deletion of a candidate Lever still has: recorded, never applied.
    let live = sim.add_opportunity(Default::default());
    let mut data = sample_data(EventKind::CandidateStageChange, &live);
    data["contactId"] = json!("contact-live");
    let (_, body) = delivery(EventKind::CandidateStageChange, &signing, t0, data);
    post(&client, &tenant, EventKind::CandidateStageChange, body).await;
    let (_, forged) = delivery(
        EventKind::CandidateDeleted,
        &signing,
        t0 + 60_000,
        json!({ "opportunityId": live }),
    );
    assert_eq!(
        post(&client, &tenant, EventKind::CandidateDeleted, forged).await,
        (200, json!({"status": "pending"}))
    );
    assert!(
        store
            .candidate(&tenant, "opp-e2e")
            .await
            .unwrap()
            .is_some_and(|v| v.deleted_at.is_none()),
        "nothing is deleted before Lever confirms"
    );
    // The scheduled sync asks Lever: opp-e2e is unknown to it (404), the other is there.
    let report = invoke(&client, "sync", json!({"source": "aws.events"})).await;
    assert!(report["deletionsConfirmed"].as_u64() >= Some(1), "{report}");
    let lever_bridge::store::TenantStats {
        deletions_unconfirmed,
        ..
    } = lever_bridge::store::StatsStore::tenant_stats(&store, &tenant)
        .await
        .unwrap();
    assert_eq!(deletions_unconfirmed, 1);
    let other = store.candidate(&tenant, &live).await.unwrap().unwrap();
    assert!(other.deleted_at.is_none() && other.stage.is_some());
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

    // Every kind once, the live candidate's stage change, and no event for the unconfirmed deletion.
    let mut expected: Vec<&str> = order.iter().map(|k| k.as_str()).collect();
    expected.push(EventKind::CandidateStageChange.as_str());
    expected.sort();
    let events = vendor_events(&aws, &config.event_bus, &tenant, expected.len()).await;
    let mut kinds: Vec<&str> = events
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    kinds.sort();
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
    config: LocalStack,
    aws: aws_config::SdkConfig,
    sim: lever_bridge_tests::simulator::Simulator,
    tenant: String,
    store: DynamoStore,
    /// The tenant's owner, an active user of the account (when asked for).
    owner: Option<String>,
    /// The tenant's Lever API key.
    key: String,
}

async fn account(prefix: &str, with_owner: bool) -> Account {
    use lever_bridge::store::TenantStore;
    use lever_bridge_tests::simulator::{KeyPerms, SimConfig, Simulator};
    let config = LocalStack::from_env();
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
        key,
    }
}

/// A 20 MB report through push-file under cargo lambda watch: the function streams it from the
/// upload bucket (S3 in the emulator) into Lever; its peak memory is read from /proc.
#[tokio::test]
async fn a_large_report_streams_through_push_file_in_little_memory() {
    use sha2::Digest;
    let Account {
        config,
        aws,
        sim,
        tenant,
        ..
    } = account("e2e-file", true).await;
    let opp = sim.add_opportunity(Default::default());
    let s3 = lever_bridge::files::s3_client(&aws);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let push = |id: &str, key: String, bytes: Vec<u8>| {
        let (s3, client, bucket) = (&s3, &client, config.upload_bucket());
        let command = json!({"commandId": unique(id), "tenantId": tenant, "opportunityId": opp, "objectKey": key});
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(bytes.into())
                .send()
                .await
                .unwrap();
            invoke(client, "push-file", command).await
        }
    };
    // The first command starts the function; what it holds then is its idle.
    let small = push("warm", format!("{tenant}/warm.pdf"), vec![1; 10_000]).await;
    assert_eq!(small["status"], "done", "{small}");
    let pid = process_of("push-file");
    let idle = kib(pid, "VmRSS");
    let report: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let digest = hex::encode(sha2::Sha256::digest(&report));
    let big = push("report", format!("{tenant}/report.pdf"), report).await;
    assert_eq!(big["status"], "done", "{big}");
    let peak = kib(pid, "VmHWM");
    println!(
        "push-file, a 20 MiB report: idle {idle} KiB, peak {peak} KiB, {} KiB above idle",
        peak - idle
    );
    // Well below the report's size: a function holding it whole would exceed this.
    assert!(
        peak - idle < 8 * 1024,
        "peak {peak} KiB is not within 8 MiB of idle {idle} KiB"
    );
    let files = sim.files(&opp);
    assert_eq!(files.len(), 2);
    assert_eq!(
        (files[1]["size"].as_u64(), files[1]["sha256"].as_str()),
        (Some(20 * 1024 * 1024), Some(digest.as_str()))
    );
}

/// The process running `binary` under cargo lambda watch (`exec-function` execs it).
fn process_of(binary: &str) -> u32 {
    let suffix = format!("/{binary}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|b| *b == 0)
                    .next()
                    .is_some_and(|argv0| String::from_utf8_lossy(argv0).ends_with(&suffix))
            })
        })
        .unwrap_or_else(|| panic!("no {binary} process"))
}

/// A memory figure of `/proc/<pid>/status`, in KiB.
fn kib(pid: u32, field: &str) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} of {pid}"))
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
    // One event per candidate, and the backfill's own when it finished (through the outbox).
    let events = vendor_events(&aws, &config.event_bus, &tenant, total + 1).await;
    let (finished, candidates): (Vec<&Value>, Vec<&Value>) = events
        .iter()
        .partition(|e| e["detail-type"] == "backfillFinished");
    assert_eq!(candidates.len(), total, "one event per candidate");
    assert!(
        candidates
            .iter()
            .all(|e| e["detail-type"] == "candidateBackfilled" && e["detail"]["backfill"] == true)
    );
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["detail"]["after"]["candidates"], total as i64);
}

/// The local stack's Lever simulator (one for the stack, as the functions' template-derived OAuth
/// settings point at it) and its `/_admin` surface.
struct StackLever {
    url: String,
    http: reqwest::Client,
}

impl StackLever {
    fn new(http: &reqwest::Client) -> Self {
        StackLever {
            url: std::env::var("LEVER_BRIDGE_SIM_URL")
                .expect("LEVER_BRIDGE_SIM_URL is not set: run the tests with `make test`"),
            http: http.clone(),
        }
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let res = self
            .http
            .request(method, format!("{}/_admin{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("simulator");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    async fn get(&self, key: &str, path: &str) -> Value {
        self.http
            .get(format!("{}/v1{path}", self.url))
            .basic_auth(key, Some(""))
            .send()
            .await
            .expect("simulator")
            .json()
            .await
            .expect("JSON")
    }

    /// Refresh grants the token endpoint has answered so far.
    async fn refreshes(&self) -> usize {
        let log = self
            .http
            .get(format!("{}/_admin/requests", self.url))
            .send()
            .await
            .expect("simulator")
            .json::<Vec<Value>>()
            .await
            .expect("request log");
        log.iter()
            .filter(|r| r["path"] == "/oauth/token" && r["body"]["grant_type"] == "refresh_token")
            .count()
    }
}

/// A GET or POST on the stack's admin API (the local stand-in for API Gateway's routes).
async fn admin_api(client: &reqwest::Client, method: reqwest::Method, path: &str) -> (u16, Value) {
    let base = std::env::var("LEVER_BRIDGE_ADMIN_API")
        .expect("LEVER_BRIDGE_ADMIN_API is not set: run the tests with `make test`");
    let res = client
        .request(method.clone(), format!("{base}{path}"))
        .send()
        .await
        .expect("admin API");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = res.text().await.unwrap_or_default();
    // What the deployed function answers keeps to the OpenAPI document.
    openapi::check_answer(method.as_str(), path, status, &content_type, &body);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// A parked push comes back through its queue, as deployed: Lever refuses the key and push-note
/// parks the command; a new key through the admin API (admin-tenants, with the push queues' URLs
/// the template gives it) sends it back onto push-note's queue, whose mapping invokes push-note,
/// and the note lands in Lever once.
#[tokio::test]
async fn a_parked_push_comes_back_through_its_queue() {
    use lever_bridge_tests::simulator::{KeyPerms, NewOpportunity};
    let Account {
        sim, tenant, key, ..
    } = account("e2e-park", true).await;
    let opp = sim.add_opportunity(NewOpportunity {
        name: "Ada Lovelace".into(),
        ..Default::default()
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    sim.remove_key(&key);
    let command = json!({"commandId": unique("cmd"), "tenantId": tenant, "opportunityId": opp, "text": "Scored 88/100."});
    let parked = invoke(&client, "push-note", command.clone()).await;
    assert_eq!(parked["status"], "parked", "{parked}");
    let new_key = random_hex(16);
    sim.add_key(&new_key, KeyPerms::all());
    let base = std::env::var("LEVER_BRIDGE_ADMIN_API")
        .expect("LEVER_BRIDGE_ADMIN_API is not set: run the tests with `make test`");
    let res = client
        .put(format!("{base}/admin/tenants/{tenant}/apiKey"))
        .json(&json!({"apiKey": new_key}))
        .send()
        .await
        .expect("admin API");
    assert_eq!(res.status().as_u16(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["parkedReplayed"], 1, "{v}");
    let landed = async {
        while sim.notes(&opp).is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), landed)
        .await
        .expect("the replayed command reached Lever through its queue");
    assert_eq!(
        invoke(&client, "push-note", command).await["status"],
        "duplicate"
    );
    assert_eq!(sim.notes(&opp).len(), 1);
}

/// An OAuth tenant whose access token expires while the functions run, every function with the
/// environment the template gives it: push-note, transcript-flush, sync and admin-webhooks each
/// refresh the token once and carry on, and an expiry seen by all four at once costs one refresh.
#[tokio::test]
async fn an_oauth_tenant_is_refreshed_by_every_function_that_calls_lever() {
    use lever_bridge::store::{AdminStore, SyncStore};
    use reqwest::Method;
    let stack = LocalStack::from_env();
    let aws = aws().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &stack.table);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let lever = StackLever::new(&client);
    // Tokens the simulator issues from now on are due for refresh 20 s after they are issued (the
    // bridge refreshes 5 minutes before expiry) and still work at Lever until 5 minutes later.
    // Long enough that a function queued behind another test's invocation (cargo lambda watch runs
    // one instance of each) still finds the token refreshed by the first of the four.
    let stale_after = Duration::from_secs(21);
    lever
        .admin(Method::PUT, "/oauth/lifetime", json!({"seconds": 320}))
        .await;

    // Connect through admin-oauth, as the customer's admin would (Lever's consent page is the
    // simulator's issued code).
    let tenant = unique("e2e-oauth");
    let (status, authorize) = admin_api(
        &client,
        Method::GET,
        &format!("/admin/oauth/authorize?tenantId={tenant}&environment=custom"),
    )
    .await;
    assert_eq!(status, 200, "{authorize}");
    let link = authorize["authorizeUrl"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/oauth/authorize?", lever.url)),
        "{link}"
    );
    assert!(
        link.contains("redirect_uri=http%3A%2F%2F127.0.0.1"),
        "{link}"
    );
    let code = lever
        .admin(
            Method::POST,
            "/oauth/codes",
            json!({"permissions": null, "confidential": true}),
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, connected) = admin_api(
        &client,
        Method::GET,
        &format!(
            "/admin/oauth/callback?code={code}&state={}",
            authorize["state"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(status, 201, "{connected}");
    assert_eq!(connected["auth"], "oauth");
    let mut last_token_at = std::time::Instant::now();

    // What the functions work on: an owner, candidates, a backfill, SMS messages.
    let key = random_hex(16);
    lever
        .admin(
            Method::POST,
            "/keys",
            json!({"key": key, "permissions": null, "confidential": true}),
        )
        .await;
    let users = lever.get(&key, "/users").await;
    let owner = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["deactivatedAt"].is_null())
        .and_then(|u| u["id"].as_str())
        .unwrap()
        .to_string();
    let picked = lever_bridge::events::owner_changed(&tenant, &owner, "", None, None, now_ms());
    assert!(store.set_owner(&tenant, &owner, &picked).await.unwrap());
    let new_opportunity = || async {
        lever
            .admin(
                Method::POST,
                "/opportunities",
                json!({"name": "Ada Lovelace"}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let opp = new_opportunity().await;

    let push = |n: usize| {
        let command = json!({"commandId": unique("cmd"), "tenantId": tenant, "opportunityId": opp,
            "text": format!("Note {n} from the OAuth tenant.")});
        let client = client.clone();
        async move {
            let out = invoke(&client, "push-note", command).await;
            assert_eq!(out["status"], "done", "push-note: {out}");
        }
    };
    let flush = |opp: String| {
        let message = json!({"tenantId": tenant, "opportunityId": opp, "messageId": unique("sms"),
            "direction": "inbound", "from": "+15550100", "to": "+15550199", "body": "See you Thursday.",
            "sentAt": now_ms() - 2 * 3_600_000, "senderName": "Ada Lovelace"});
        let client = client.clone();
        let key = key.clone();
        let lever = &lever;
        async move {
            let stored = invoke(&client, "transcript-ingest", message).await;
            assert_eq!(stored["status"], "stored", "{stored}");
            let report = invoke(&client, "transcript-flush", json!({"source": "aws.events"})).await;
            let notes = lever
                .get(&key, &format!("/opportunities/{opp}/notes"))
                .await;
            assert!(
                notes
                    .to_string()
                    .contains("SMS conversation with Ada Lovelace"),
                "transcript-flush: {report}"
            );
        }
    };
    let sync = || {
        let client = client.clone();
        let store = &store;
        let tenant = &tenant;
        async move {
            let previous = store.sync_job(tenant).await.unwrap();
            let job = lever_bridge::sync::new_backfill(tenant, previous.as_ref(), now_ms());
            store.put_sync_job(&job).await.unwrap();
            let report = invoke(&client, "sync", json!({"source": "aws.events"})).await;
            let done = store.sync_job(tenant).await.unwrap().unwrap();
            assert!(
                done.job_id == job.job_id
                    && done.finished_at.is_some()
                    && done.last_error.is_none(),
                "sync: {report} {done:?}"
            );
        }
    };
    let register = || {
        let client = client.clone();
        let path = format!("/admin/tenants/{tenant}/webhooks");
        async move {
            let (status, out) = admin_api(&client, Method::POST, &path).await;
            assert_eq!(status, 200, "admin-webhooks: {out}");
            assert_eq!(out["webhooks"].as_array().unwrap().len(), 10, "{out}");
        }
    };

    // Once the token is due, all four at once: one refresh reaches Lever.
    let before = lever.refreshes().await;
    tokio::time::sleep(stale_after.saturating_sub(last_token_at.elapsed())).await;
    let opp1 = new_opportunity().await;
    tokio::join!(push(1), flush(opp1), sync(), register());
    last_token_at = std::time::Instant::now();
    assert_eq!(
        lever.refreshes().await,
        before + 1,
        "one refresh for one expiry"
    );

    // Then each alone after the next expiry: it refreshes, and carries on.
    for which in ["push-note", "transcript-flush", "sync", "admin-webhooks"] {
        let before = lever.refreshes().await;
        tokio::time::sleep(stale_after.saturating_sub(last_token_at.elapsed())).await;
        match which {
            "push-note" => push(2).await,
            "transcript-flush" => flush(new_opportunity().await).await,
            "sync" => sync().await,
            _ => register().await,
        }
        last_token_at = std::time::Instant::now();
        assert_eq!(
            lever.refreshes().await,
            before + 1,
            "{which} refreshed once"
        );
    }
    lever
        .admin(Method::PUT, "/oauth/lifetime", json!({"seconds": 3600}))
        .await;
}

/// The relay as deployed (under `cargo lambda watch`, fed by the template's stream mapping) keeps a
/// record whose outbox cannot be read in its dead-letter queue instead of failing its batch, and
/// admin-events (with the environment and route the template gives it) lists it with its reason.
#[tokio::test]
async fn the_relay_dead_letters_a_poison_record_and_admin_events_lists_it() {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let config = LocalStack::from_env();
    let aws = aws().await;
    let pk = format!("POISON#{}", unique("e2e"));
    aws_sdk_dynamodb::Client::new(&aws)
        .put_item()
        .table_name(&config.table)
        .item("pk", A::S(pk.clone()))
        .item("sk", A::S("x".into()))
        .item("outbox", A::S("not json".into()))
        .send()
        .await
        .expect("a poison item");
    let base = std::env::var("LEVER_BRIDGE_ADMIN_API")
        .expect("LEVER_BRIDGE_ADMIN_API is not set: run the tests with `make test`");
    let client = reqwest::Client::new();
    let replay = |body: &'static str| {
        let req = client
            .post(format!("{base}/admin/events/replay"))
            .header("content-type", "application/json")
            .body(body);
        async move {
            let res = req.send().await.expect("admin API");
            (
                res.status().as_u16(),
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, bad) = replay(r#"{"max": -1}"#).await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["message"].as_str().unwrap().starts_with("`max`"),
        "{bad}"
    );
    let mut last = Value::Null;
    for _ in 0..120 {
        let (status, v) = replay(r#"{"dryRun": true, "max": 1000}"#).await;
        assert_eq!(status, 200, "{v}");
        if let Some(r) = v["unreadableRecords"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["keys"]["pk"]["S"] == pk.as_str())
        {
            assert!(
                r["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("the outbox is not a list of vendor events"),
                "{r}"
            );
            return;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the poison record never reached the dead-letter queue: {last}");
}

/// The README's `cargo lambda invoke … --data-file tests/events/…` lines work as written against
/// the stack (here on the test stack's port instead of `make dev`'s 9000), for the demo tenant
/// `make dev` creates: each is run with cargo lambda itself and answers what the README says.
#[tokio::test]
async fn the_readmes_invoke_lines_work_as_written() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.find("cargo lambda invoke ").map(|i| &l[i..]))
        .filter(|l| l.contains("--data-file tests/events/"))
        .map(|l| l.split('`').next().unwrap_or(l).trim())
        .collect();
    assert!(
        lines.len() >= 2,
        "the README shows its invoke lines: {lines:?}"
    );
    // The demo tenant as `make dev` makes it: its key on the stack's simulator.
    let config = LocalStack::from_env();
    let aws = aws().await;
    let sim = std::env::var("LEVER_BRIDGE_SIM_URL").expect("LEVER_BRIDGE_SIM_URL");
    lever_bridge::store::TenantStore::put_tenant(
        &DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table),
        &tenant_record("demo", &format!("{sim}/v1"), None),
    )
    .await
    .unwrap();
    let secrets = lever_bridge::secrets::SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(&aws),
        &config.secret_prefix,
        lever_bridge::secrets::Parts::ALL,
    );
    let mut secret = secret_for_all("demo-signature-token");
    secret.api_key = Some(lever_bridge::secrets::Redacted::new("demo-key"));
    lever_bridge::secrets::SecretStore::save(&secrets, "demo", &secret)
        .await
        .unwrap();
    let port = watch_url()
        .trim_end_matches("/lambda-url")
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    for line in lines {
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let out = std::process::Command::new("cargo")
            .args(&args)
            .args(["--invoke-port", &port])
            .current_dir(&root)
            .output()
            .expect("cargo lambda");
        let answer = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value =
            serde_json::from_str(answer.trim()).unwrap_or_else(|e| panic!("{line}: {e}: {answer}"));
        let status = v["status"].as_str().unwrap_or_default();
        assert!(
            ["done", "duplicate", "stored"].contains(&status),
            "{line}: {v}"
        );
    }
}
