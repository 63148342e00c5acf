//! IAM as deployed: every function under `cargo lambda watch` runs with its own role's credentials
//! (tests/local_iam.py made one role per function from the template's policies and switched moto's
//! enforcement on). Here a role loses one action; its function fails as a deployed one would, naming
//! the action, and nothing is lost: once the action is back, the same delivery or command goes through.
//! `make test` starts the stack and sets LEVER_BRIDGE_WATCH_URL, LEVER_BRIDGE_WEBHOOK_API,
//! LEVER_BRIDGE_ROLES and LEVER_BRIDGE_WATCH_LOG.

use lever_bridge::webhook::EventKind;
use lever_bridge_tests::*;
use serde_json::{Value, json};
use std::time::Duration;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with `make test`"))
}

/// One function's role in moto, as tests/local_iam.py made it from the functions file.
struct Role {
    iam: aws_sdk_iam::Client,
    function: String,
    name: String,
    policy: String,
    statements: Vec<Value>,
}

impl Role {
    async fn of(function: &str) -> Role {
        let roles: Value =
            serde_json::from_str(&std::fs::read_to_string(env("LEVER_BRIDGE_ROLES")).unwrap())
                .unwrap();
        let statements = functions_file()["functions"][function]["policies"]
            .as_array()
            .unwrap_or_else(|| panic!("{function} has no policies in the functions file"))
            .clone();
        Role {
            iam: aws_sdk_iam::Client::new(&aws().await),
            function: function.to_string(),
            name: roles[function]["role"].as_str().unwrap().to_string(),
            policy: roles[function]["policy"].as_str().unwrap().to_string(),
            statements,
        }
    }

    async fn put(&self, statements: Vec<Value>) {
        let document = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        self.iam
            .put_role_policy()
            .role_name(&self.name)
            .policy_name(&self.policy)
            .policy_document(document)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", self.name));
    }

    /// The role without `action` in any statement (a statement left with none is dropped).
    async fn without(&self, action: &str) {
        let statements: Vec<Value> = self
            .statements
            .iter()
            .filter_map(|st| {
                let mut st = st.clone();
                let actions: Vec<Value> = st["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|a| a.as_str() != Some(action))
                    .cloned()
                    .collect();
                st["Action"] = json!(actions);
                (!actions.is_empty()).then_some(st)
            })
            .collect();
        assert_ne!(
            statements, self.statements,
            "{} has no {action} to take away",
            self.function
        );
        self.put(statements).await;
    }

    async fn restore(&self) {
        self.put(self.statements.clone()).await;
    }

    /// Runs `check` with `action` taken from the role, and gives it back whatever `check` does.
    async fn while_without<F: std::future::Future<Output = ()> + Send + 'static>(
        &self,
        action: &str,
        check: F,
    ) {
        self.without(action).await;
        let outcome = tokio::spawn(check).await;
        self.restore().await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// The function logs written since `from` (a byte offset into cargo lambda watch's log).
fn log_since(from: u64) -> String {
    let text = std::fs::read(env("LEVER_BRIDGE_WATCH_LOG")).unwrap_or_default();
    String::from_utf8_lossy(&text[(from as usize).min(text.len())..]).into_owned()
}

fn log_end() -> u64 {
    std::fs::metadata(env("LEVER_BRIDGE_WATCH_LOG"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Waits for a log line naming `what`, which a function writes as it fails.
async fn logged(from: u64, what: &str) -> String {
    for _ in 0..50 {
        let log = log_since(from);
        if let Some(line) = log.lines().find(|l| l.contains(what)) {
            return line.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no log line names {what}; the log since:\n{}",
        log_since(from)
    )
}

/// Whether moto enforces IAM: `LOCAL_IAM=off make test` leaves it open, and these tests then say
/// so and check nothing (a role without an action would change nothing).
fn enforced() -> bool {
    let on = std::env::var("LOCAL_IAM").as_deref() != Ok("off");
    if !on {
        eprintln!("IAM is not enforced (LOCAL_IAM=off): nothing to check");
    }
    on
}

/// One test at a time: each edits a role the functions share.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn a_webhook_whose_role_lacks_an_action_answers_5xx_and_is_taken_on_redelivery() {
    if !enforced() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let config = LocalStack::from_env();
    let aws = aws().await;
    let tenant = unique("iam-hook");
    let signing = random_hex(24);
    create_tenant(
        &aws,
        &config.table,
        &config.secret_prefix,
        &tenant,
        &secret_for_all(&signing),
        "http://127.0.0.1:9/v1",
    )
    .await;
    let kind = EventKind::CandidateStageChange;
    let keys = local_url_keys(&aws, &config.event_bus).await;
    let url = lever_bridge::urlkey::webhook_url(
        &env("LEVER_BRIDGE_WEBHOOK_API"),
        &tenant,
        &keys.key(&tenant, 0),
        kind.as_str(),
    );
    let (_, body) = delivery(kind, &signing, now_ms(), sample_data(kind, "opp-iam"));
    let post = move |body: Vec<u8>| {
        let url = url.clone();
        async move {
            let res = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("POST to the webhook API");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let role = Role::of(kind.function_name()).await;
    let from = log_end();
    let (first, again) = (post.clone(), body.clone());
    role.while_without("dynamodb:PutItem", async move {
        let (status, answer) = first(again).await;
        // Lever retries a delivery that is not answered 2xx.
        assert!(status >= 500, "{status} {answer}");
    })
    .await;
    let line = logged(from, "dynamodb:PutItem").await;
    println!("{}: {line}", role.function);
    assert!(line.contains("AccessDenied"), "{line}");
    assert!(line.contains(&role.name), "the log names the role: {line}");
    // Lever's redelivery, once the role has its action back: taken, once.
    assert_eq!(
        post(body.clone()).await,
        (200, json!({"status": "accepted"}))
    );
    assert_eq!(post(body).await, (200, json!({"status": "duplicate"})));
}

#[tokio::test]
async fn a_push_whose_role_lacks_an_action_is_retried_and_lands_once() {
    use lever_bridge::store::TenantStore;
    use lever_bridge::store::dynamo::DynamoStore;
    use lever_bridge_tests::simulator::{KeyPerms, NewOpportunity, SimConfig, Simulator};
    if !enforced() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let config = LocalStack::from_env();
    let aws = aws().await;
    let sim = Simulator::start(SimConfig::default()).await;
    let key = random_hex(16);
    sim.add_key(&key, KeyPerms::all());
    let tenant = unique("iam-push");
    create_tenant(
        &aws,
        &config.table,
        &config.secret_prefix,
        &tenant,
        &api_key_secret(&key),
        &sim.base_url(),
    )
    .await;
    let owner = sim
        .users()
        .iter()
        .find(|u| u["deactivatedAt"].is_null())
        .and_then(|u| u["id"].as_str())
        .expect("an active user")
        .to_string();
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table)
        .put_tenant(&tenant_record(&tenant, &sim.base_url(), Some(&owner)))
        .await
        .unwrap();
    let opp = sim.add_opportunity(NewOpportunity::default());
    let command = json!({"commandId": unique("cmd"), "tenantId": tenant, "opportunityId": opp, "text": "Scored 92/100."});
    let invoke = |payload: Value| async move {
        let root = env("LEVER_BRIDGE_WATCH_URL");
        let root = root.trim_end_matches("/lambda-url").to_string();
        let res = reqwest::Client::new()
            .post(format!("{root}/2015-03-31/functions/push-note/invocations"))
            .json(&payload)
            .send()
            .await
            .expect("invoke through cargo lambda watch");
        (
            res.status().as_u16(),
            res.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    let role = Role::of("push-note").await;
    let from = log_end();
    let first = command.clone();
    // The claim on the command is its first write.
    role.while_without("dynamodb:UpdateItem", async move {
        let (status, answer) = invoke(first).await;
        // A function error: Lambda gives the command back to its queue, which delivers it again.
        assert!(
            status >= 500 || answer["status"] == "retry",
            "{status} {answer}"
        );
    })
    .await;
    let line = logged(from, "dynamodb:UpdateItem").await;
    println!("{}: {line}", role.function);
    assert!(line.contains("AccessDenied"), "{line}");
    assert!(sim.notes(&opp).is_empty(), "nothing reached Lever");
    let (status, answer) = invoke(command).await;
    assert_eq!(
        (status, &answer["status"]),
        (200, &json!("done")),
        "{answer}"
    );
    assert_eq!(sim.notes(&opp).len(), 1);
}
