//! The local stack's helper, run by `make dev` and `make test` against the local AWS emulator.
//!
//! ```text
//! lever-bridge-dev setup                                     table, event bus, and a queue that receives the bus's events
//! lever-bridge-dev tenant <id> [--token T] [--lever-url U]   creates a tenant: its record and its secret
//! lever-bridge-dev send <tenant> <event> --token T [--url U] [--data JSON]   sends a correctly signed delivery
//! lever-bridge-dev urls <tenant> [--url U]                   prints the ten webhook URLs
//! ```
//! Names come from TABLE_NAME, EVENT_BUS_NAME, SECRET_PREFIX (as the functions read them).

use lever_bridge::config::Config;
use lever_bridge::webhook::EventKind;
use lever_bridge_tests::*;
use serde_json::{Value, json};

const DEFAULT_URL: &str = "http://127.0.0.1:9000/lambda-url";

fn usage() -> ! {
    eprintln!(
        "usage:\n  lever-bridge-dev setup\n  lever-bridge-dev tenant <id> [--token T] [--lever-url U]\n  \
         lever-bridge-dev send <tenant> <event> --token T [--url U] [--data JSON]\n  lever-bridge-dev urls <tenant> [--url U]"
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

/// The URL of a webhook under `cargo lambda watch` (`base` = `.../lambda-url`) or API Gateway.
fn webhook_url(base: &str, tenant: &str, kind: EventKind) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/lambda-url") {
        format!(
            "{base}/{}/webhooks/{tenant}/{}",
            kind.function_name(),
            kind.as_str()
        )
    } else {
        format!("{base}/webhooks/{tenant}/{}", kind.as_str())
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (pos, opts) = parse(&args);
    let config = Config::from_env();
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
                lever_bridge::receiver::valid_tenant_id(id),
                "tenant ids are 1-64 letters, digits, '-' or '_'"
            );
            create_tenant(
                &aws().await,
                &config.table,
                &config.secret_prefix,
                id,
                &secret_for_all(&token),
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
                opts.get("url").copied().unwrap_or(DEFAULT_URL),
                tenant,
                kind,
            );
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
        ["urls", tenant] => {
            for kind in EventKind::ALL {
                println!(
                    "{:<24} {}",
                    kind.as_str(),
                    webhook_url(
                        opts.get("url").copied().unwrap_or(DEFAULT_URL),
                        tenant,
                        kind
                    )
                );
            }
        }
        _ => usage(),
    }
}

/// The table, the vendor bus, and a queue with a rule copying the bus's events into it, so a person
/// (or a test) can read what the vendor's app would receive.
async fn setup(config: &Config) {
    let aws = aws().await;
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
    let sqs = aws_sdk_sqs::Client::new(&aws);
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
