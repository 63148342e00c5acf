//! The local stack's helper, run by `make dev` and `make test` against the local AWS emulator.
//!
//! ```text
//! lever-bridge-dev setup                                     table, event bus, and a queue that receives the bus's events
//! lever-bridge-dev tenant <id> [--token T] [--api-key K] [--lever-url U]   creates a tenant: its record and its secret
//! lever-bridge-dev send <tenant> <event> --token T [--url U] [--data JSON]   sends a correctly signed delivery
//! lever-bridge-dev urls <tenant> [--url U]                   prints the ten webhook URLs
//! lever-bridge-dev gateway --watch URL                       serves the template's HTTP APIs locally (see gateway)
//! lever-bridge-dev exec-function <binary> [args]             runs a function with the template's environment
//! lever-bridge-dev mappings --watch URL                      runs the template's stream event source mappings
//! lever-bridge-dev vendor-events                             prints the vendor's events as they arrive
//! lever-bridge-dev schemas                                   writes the contract's JSON Schemas into shared/schemas/
//! ```
//! Names come from STACK_NAME, TABLE_NAME, EVENT_BUS_NAME, SECRET_PREFIX; the functions file
//! (`infra/template_env.py`'s output) from LEVER_BRIDGE_FUNCTIONS; each function's role credentials
//! (`tests/local_iam.py`'s output) from LEVER_BRIDGE_ROLES.

use lever_bridge::webhook::EventKind;
use lever_bridge_tests::*;
use serde_json::{Value, json};

const DEFAULT_URL: &str = "http://127.0.0.1:9000/lambda-url";

fn usage() -> ! {
    eprintln!(
        "usage:\n  lever-bridge-dev setup\n  lever-bridge-dev tenant <id> [--token T] [--api-key K] [--lever-url U]\n  \
         lever-bridge-dev send <tenant> <event> --token T [--url U] [--data JSON]\n  lever-bridge-dev urls <tenant> [--url U]\n  \
         lever-bridge-dev gateway [--watch URL]\n  lever-bridge-dev exec-function <binary> [args]\n  \
         lever-bridge-dev mappings [--watch URL]\n  lever-bridge-dev vendor-events\n  lever-bridge-dev schemas"
    );
    std::process::exit(2)
}

/// `--name value` options and positional arguments.
fn parse(args: &[String]) -> (Vec<&str>, std::collections::HashMap<&str, &str>) {
    let (mut pos, mut opts) = (Vec::new(), std::collections::HashMap::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.strip_prefix("--") {
            Some(name) => {
                opts.insert(
                    name,
                    it.next().map(String::as_str).unwrap_or_else(|| usage()),
                );
            }
            None => pos.push(a.as_str()),
        }
    }
    (pos, opts)
}

/// The URL of a webhook under `cargo lambda watch` (`base` = `.../lambda-url`) or API Gateway,
/// with the tenant's URL key made from the local stack's secret.
async fn webhook_url(config: &LocalStack, base: &str, tenant: &str, kind: EventKind) -> String {
    let key = lever_bridge_tests::local_url_keys(&aws().await, &config.event_bus)
        .await
        .key(tenant, 0);
    let base = base.trim_end_matches('/');
    let base = if base.ends_with("/lambda-url") {
        format!("{base}/{}", kind.function_name())
    } else {
        base.to_string()
    };
    lever_bridge::urlkey::webhook_url(&base, tenant, &key, kind.as_str())
}

/// What Lambda itself sets in a function's environment (passed on from `cargo lambda watch`, which
/// plays Lambda), and the local stack's AWS endpoint. Everything else comes from the template.
const FROM_LAMBDA: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LD_LIBRARY_PATH",
    // Local only: where the AWS emulator listens.
    "AWS_ENDPOINT_URL",
];

/// cargo's runner for the functions under `cargo lambda watch`: replaces this process with
/// `binary`, its environment being exactly what the template gives the function plus what Lambda
/// sets (the runtime API, the region, credentials).
fn exec_function(binary: &str, args: &[String]) -> ! {
    use std::os::unix::process::CommandExt;
    let name = std::path::Path::new(binary)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let functions = functions_file();
    let Some(env) = functions["functions"][&name]["environment"].as_object() else {
        eprintln!("lever-bridge-dev: {name} is not a function of infra/template.yaml");
        std::process::exit(1)
    };
    let mut cmd = std::process::Command::new(binary);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "en_US.UTF-8")
        .env("TZ", ":UTC");
    for (k, v) in std::env::vars() {
        // cargo lambda watch also sets AWS_LAMBDA_MAX_CONCURRENCY, which Lambda sets only on
        // managed instances.
        let lambda = k.starts_with("AWS_LAMBDA_") && k != "AWS_LAMBDA_MAX_CONCURRENCY";
        if lambda || FROM_LAMBDA.contains(&k.as_str()) {
            cmd.env(k, v);
        }
    }
    for (k, v) in env {
        cmd.env(k, v.as_str().unwrap_or_default());
    }
    // Its role's credentials, as Lambda gives them (tests/local_iam.py made the roles), in place of
    // the stack's own.
    if let Ok(path) = std::env::var("LEVER_BRIDGE_ROLES") {
        let roles: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| {
                eprintln!("lever-bridge-dev: cannot read the roles file {path}");
                std::process::exit(1)
            });
        for key in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ] {
            let Some(value) = roles[&name][key].as_str() else {
                eprintln!("lever-bridge-dev: {path} has no role for {name}");
                std::process::exit(1)
            };
            cmd.env(key, value);
        }
    }
    let err = cmd.exec();
    eprintln!("lever-bridge-dev: cannot run {binary}: {err}");
    std::process::exit(1)
}

/// Serves every HTTP API of the functions file on its local URL, forwarding to `watch`.
async fn gateway(watch: &str) {
    let functions = functions_file();
    let apis = functions["apis"].as_object().cloned().unwrap_or_default();
    let mut servers = Vec::new();
    for (api, url) in apis {
        let url = url.as_str().unwrap_or_default().to_string();
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .unwrap_or_else(|e| panic!("gateway: cannot listen on {addr} for {api}: {e}"));
        let routes = lever_bridge_tests::gateway::routes(&functions, &api);
        println!("{api}: {url} ({} routes)", routes.len());
        let watch = watch.to_string();
        servers.push(tokio::spawn(async move {
            lever_bridge_tests::gateway::serve(listener, routes, &watch).await
        }));
    }
    for s in servers {
        s.await.ok();
    }
}

/// The template's event source mappings, run against the functions under `cargo lambda watch` as
/// Lambda runs them: the table's stream to the relay, and each queue the local stack has (the push
/// queues, `<stack>-<function>`) to its function.
async fn mappings(config: &LocalStack, watch: &str) {
    let functions = functions_file();
    let aws = aws().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let mut running = Vec::new();
    for spec in functions["mappings"].as_array().into_iter().flatten() {
        if spec["source"] == "Table.StreamArn" {
            let tap = lever_bridge_tests::stream::Tap::dynamo(&aws, &config.table).await;
            let mapping = lever_bridge_tests::stream::StreamMapping::new(spec, tap, watch);
            println!(
                "{}: the table's stream -> {}",
                mapping.name, mapping.function
            );
            running.push(tokio::spawn(mapping.run()));
            continue;
        }
        let function = spec["function"].as_str().unwrap_or_default();
        let queue = format!("{}-{function}", config.event_bus);
        let Ok(url) = sqs.get_queue_url().queue_name(&queue).send().await else {
            println!("{}: no local queue {queue}: not run", spec["name"]);
            continue;
        };
        let url = url.queue_url.unwrap_or_default();
        let arn = format!("arn:aws:sqs:us-east-1:123456789012:{queue}");
        let mapping =
            lever_bridge_tests::stream::QueueMapping::new(spec, sqs.clone(), url, arn, watch);
        println!("{}: queue {queue} -> {}", mapping.name, mapping.function);
        running.push(tokio::spawn(mapping.run()));
    }
    for r in running {
        r.await.ok();
    }
}

/// What the vendor's app receives: the queue subscribed to the bus, each event printed once.
async fn vendor_events(config: &LocalStack) {
    let sqs = aws_sdk_sqs::Client::new(&aws().await);
    let url = sqs
        .get_queue_url()
        .queue_name(format!("{}-vendor-events", config.event_bus))
        .send()
        .await
        .expect("the vendor events queue (lever-bridge-dev setup)")
        .queue_url
        .unwrap_or_default();
    loop {
        let Ok(out) = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
        else {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        };
        for m in out.messages() {
            let envelope: Value =
                serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or_default();
            let d = &envelope["detail"];
            println!(
                "vendor event: {} tenant={} {}{}",
                envelope["detail-type"].as_str().unwrap_or("?"),
                d["tenantId"].as_str().unwrap_or("?"),
                d["opportunityId"]
                    .as_str()
                    .map(|o| format!("opportunity={o} "))
                    .unwrap_or_default(),
                d["after"]
            );
            if let Some(h) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(&url)
                    .receipt_handle(h)
                    .send()
                    .await
                    .ok();
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Before any runtime starts: it replaces the process.
    if let [cmd, binary, rest @ ..] = args.as_slice()
        && cmd == "exec-function"
    {
        exec_function(binary, rest);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(args));
}

async fn run(args: Vec<String>) {
    let (pos, opts) = parse(&args);
    // The one command that needs no stack.
    if pos.as_slice() == ["schemas"] {
        let n = lever_bridge_tests::contract::write().expect("shared/schemas/ written");
        println!("{n} schemas in shared/schemas/");
        return;
    }
    let config = LocalStack::from_env();
    match pos.as_slice() {
        ["setup"] => setup(&config).await,
        ["tenant", id] => {
            let token = opts
                .get("token")
                .map_or_else(|| random_hex(24), |t| t.to_string());
            let lever = opts
                .get("lever-url")
                .copied()
                .unwrap_or("https://api.lever.co/v1");
            assert!(
                lever_bridge::ids::tenant_id(id),
                "tenant ids are 1-64 letters, digits, '-' or '_'"
            );
            let mut secret = secret_for_all(&token);
            if let Some(key) = opts.get("api-key") {
                secret.api_key = Some(lever_bridge::secrets::Redacted::new(*key));
            }
            create_tenant(
                &aws().await,
                &config.table,
                &config.secret_prefix,
                id,
                &secret,
                lever,
            )
            .await;
            println!("tenant {id} created; every webhook kind is signed with token {token}");
        }
        ["send", tenant, event] => {
            let kind = EventKind::parse(event).unwrap_or_else(|| usage());
            let token = opts.get("token").unwrap_or_else(|| usage());
            let data: Value = match opts.get("data") {
                Some(d) => serde_json::from_str(d).expect("--data is JSON"),
                None => sample_data(kind, "demo-opportunity"),
            };
            let url = webhook_url(
                &config,
                opts.get("url").copied().unwrap_or(DEFAULT_URL),
                tenant,
                kind,
            )
            .await;
            let (_, body) = delivery(kind, token, now_ms(), data);
            let res = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("POST");
            println!(
                "POST {url}\n{} {}",
                res.status(),
                res.text().await.unwrap_or_default()
            );
        }
        ["mappings"] => {
            mappings(
                &config,
                opts.get("watch")
                    .copied()
                    .unwrap_or("http://127.0.0.1:9000"),
            )
            .await;
        }
        ["vendor-events"] => vendor_events(&config).await,

        ["gateway"] => {
            gateway(
                opts.get("watch")
                    .copied()
                    .unwrap_or("http://127.0.0.1:9000"),
            )
            .await;
        }
        ["urls", tenant] => {
            for kind in EventKind::ALL {
                println!(
                    "{:<24} {}",
                    kind.as_str(),
                    webhook_url(
                        &config,
                        opts.get("url").copied().unwrap_or(DEFAULT_URL),
                        tenant,
                        kind
                    )
                    .await
                );
            }
        }
        _ => usage(),
    }
}

/// The table, the vendor bus, a queue with a rule copying the bus's events into it (so a person or a
/// test can read what the vendor's app would receive), and the OAuth client's secret the template
/// creates (`<stack>/lever-oauth-client`), holding the simulator's client secret.
async fn setup(config: &LocalStack) {
    let aws = aws().await;
    let stack = std::env::var("STACK_NAME").expect("STACK_NAME");
    let sm = aws_sdk_secretsmanager::Client::new(&aws);
    let name = format!("{stack}/lever-oauth-client");
    let value =
        json!({"clientSecret": lever_bridge_tests::simulator::SIM_CLIENT_SECRET}).to_string();
    if sm
        .put_secret_value()
        .secret_id(&name)
        .secret_string(&value)
        .send()
        .await
        .is_err()
    {
        sm.create_secret()
            .name(&name)
            .secret_string(&value)
            .send()
            .await
            .expect("OAuth client secret");
    }
    lever_bridge::store::dynamo::create_table(&aws_sdk_dynamodb::Client::new(&aws), &config.table)
        .await
        .expect("table");
    let events = aws_sdk_eventbridge::Client::new(&aws);
    if let Err(e) = events
        .create_event_bus()
        .name(&config.event_bus)
        .send()
        .await
    {
        assert!(
            e.as_service_error()
                .is_some_and(|e| e.is_resource_already_exists_exception()),
            "event bus: {e:?}"
        );
    }
    // The webhook URLs' key secret (the template's WebhookUrlKeySecret), made once per stack.
    let url_key = format!("{}/webhook-url-key", config.event_bus);
    if sm
        .describe_secret()
        .secret_id(&url_key)
        .send()
        .await
        .is_err()
    {
        sm.create_secret()
            .name(&url_key)
            .secret_string(random_hex(32))
            .send()
            .await
            .expect("webhook URL key secret");
    }
    // The upload bucket push-file reads report files from.
    let s3 = lever_bridge::files::s3_client(&aws);
    if let Err(e) = s3
        .create_bucket()
        .bucket(config.upload_bucket())
        .send()
        .await
    {
        assert!(
            e.as_service_error().is_some_and(|e| e.is_bucket_already_owned_by_you()
                || e.is_bucket_already_exists()),
            "upload bucket: {e:?}"
        );
    }
    let sqs = aws_sdk_sqs::Client::new(&aws);
    // The push queues (`<stack>-push-<kind>`, the local values of the template's Push*Queue):
    // parked commands are replayed onto them.
    for kind in lever_bridge::push::command::PushKind::ALL {
        sqs.create_queue()
            .queue_name(format!("{}-{}", config.event_bus, kind.function_name()))
            .send()
            .await
            .expect("push queue");
    }
    // The relay's dead-letter queue (the template's RelayDeadLetterQueue).
    sqs.create_queue()
        .queue_name(format!("{}-relay-dead-letters", config.event_bus))
        .send()
        .await
        .expect("relay dead-letter queue");
    let queue_name = format!("{}-vendor-events", config.event_bus);
    let queue = sqs
        .create_queue()
        .queue_name(&queue_name)
        .send()
        .await
        .expect("queue");
    let url = queue.queue_url().expect("queue url");
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("arn");
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("arn")
        .clone();
    let rule = format!("{}-to-queue", config.event_bus);
    let pattern = json!({"source": [lever_bridge::events::SOURCE]}).to_string();
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&config.event_bus)
        .event_pattern(pattern)
        .send()
        .await
        .expect("rule");
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("vendor-events-queue")
        .arn(arn)
        .build()
        .expect("target");
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&config.event_bus)
        .targets(target)
        .send()
        .await
        .expect("target");
    println!(
        "table {}, event bus {}, vendor events queue {url}",
        config.table, config.event_bus
    );
}
