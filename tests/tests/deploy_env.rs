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
