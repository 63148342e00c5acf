//! The functions run with what `infra/template.yaml` gives them: every function's configuration loads
//! from the environment the template sets for it (the local stack derives it with
//! `infra/template_env.py`, and runs the functions under `cargo lambda watch` with exactly that). A
//! variable a function reads that the template does not give it fails here, naming both.

use lever_bridge::config::{Config, Env};
use lever_bridge::function::Function;
use lever_bridge_tests::functions_file;
use serde_json::Value;
use std::collections::BTreeMap;

fn environment(functions: &Value, name: &str) -> BTreeMap<String, String> {
    functions["functions"][name]["environment"]
        .as_object()
        .unwrap_or_else(|| panic!("the template has no function {name}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

#[test]
fn the_template_deploys_every_function_and_no_other() {
    let functions = functions_file();
    let mut deployed: Vec<&str> = functions["functions"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    deployed.sort();
    let mut ours: Vec<&str> = Function::all().iter().map(|f| f.name()).collect();
    ours.sort();
    assert_eq!(deployed, ours);
}

#[test]
fn every_function_reads_only_what_the_template_gives_it() {
    let functions = functions_file();
    let failures: Vec<String> = Function::all()
        .into_iter()
        .filter_map(|f| {
            let env = Env::from_pairs(environment(&functions, f.name()));
            Config::load(f, &env)
                .err()
                .map(|e| format!("{}: {e}", f.name()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn what_the_template_gives_is_what_the_functions_need() {
    let functions = functions_file();
    let stack = std::env::var("STACK_NAME").unwrap();
    for f in Function::all() {
        let env = environment(&functions, f.name());
        let config = Config::load(f, &Env::from_pairs(env.clone())).unwrap();
        // The metrics' Service dimension, so two stacks' alarms stay apart.
        assert_eq!(config.stack_name, stack, "{}", f.name());
        if f.calls_lever() {
            let oauth = config
                .oauth
                .as_ref()
                .unwrap_or_else(|| panic!("{}: calls Lever but gets no OAuth client", f.name()));
            // The client secret is read from Secrets Manager, never given as a value.
            assert_eq!(
                oauth.client_secret,
                lever_bridge::config::ClientSecret::Named(format!("{stack}/lever-oauth-client")),
                "{}",
                f.name()
            );
        } else {
            assert!(
                !env.keys().any(|k| k.starts_with("LEVER_OAUTH")),
                "{} does not call Lever and must not be told about the OAuth client",
                f.name()
            );
        }
        if f.publishes_events() {
            assert_eq!(
                config.event_bus,
                std::env::var("EVENT_BUS_NAME").unwrap(),
                "{}",
                f.name()
            );
        }
        assert!(
            !env.values()
                .any(|v| v == lever_bridge_tests::simulator::SIM_CLIENT_SECRET),
            "{}: a secret in the environment",
            f.name()
        );
    }
}

/// The table the local stack runs on (`create_table`) is the template's: its keys, attribute types,
/// indexes and their projections, stream and TTL. An index added to one and not the other would
/// pass every local test and fail deployed (a query naming an index the table lacks).
#[tokio::test]
async fn the_local_table_is_the_templates() {
    use aws_sdk_dynamodb::types::{AttributeDefinition, KeySchemaElement};
    let functions = functions_file();
    let want = &functions["tables"]["Table"];
    let aws = lever_bridge_tests::aws().await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let table = std::env::var("TABLE_NAME").unwrap();
    let t = ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let t = t.table().unwrap();
    let keys = |schema: &[KeySchemaElement]| -> Value {
        schema
            .iter()
            .map(|k| serde_json::json!([k.attribute_name(), k.key_type().as_str()]))
            .collect()
    };
    let mut attributes: Vec<Value> = t
        .attribute_definitions()
        .iter()
        .map(|a: &AttributeDefinition| {
            serde_json::json!([a.attribute_name(), a.attribute_type().as_str()])
        })
        .collect();
    attributes.sort_by_key(Value::to_string);
    let indexes: serde_json::Map<String, Value> = t
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            let p = g.projection().unwrap();
            let mut non_key: Vec<&str> =
                p.non_key_attributes().iter().map(String::as_str).collect();
            non_key.sort_unstable();
            (
                g.index_name().unwrap().to_string(),
                serde_json::json!({
                    "keys": keys(g.key_schema()),
                    "projection": p.projection_type().unwrap().as_str(),
                    "nonKeyAttributes": non_key,
                }),
            )
        })
        .collect();
    let ttl = ddb
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let local = serde_json::json!({
        "attributes": attributes,
        "keys": keys(t.key_schema()),
        "indexes": indexes,
        "stream": t.stream_specification().and_then(|s| s.stream_view_type()).map(|v| v.as_str()),
        "ttl": ttl.time_to_live_description().and_then(|d| d.attribute_name()),
    });
    assert_eq!(
        &local, want,
        "create_table (shared/src/store/dynamo/schema.rs) against infra/template.yaml"
    );
}
