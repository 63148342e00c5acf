//! The vendor's contract holds: the committed schemas are the ones the Rust types generate, and
//! every sample keeps to its schema. (Every command, message and event the other tests send or
//! receive is validated against the same files: `lever_bridge_tests::contract`.)

use lever_bridge_tests::contract::{self, REGENERATE};

#[test]
fn the_committed_schemas_are_the_generated_ones() {
    let (generated, committed) = (contract::generated(), contract::committed());
    let mut problems: Vec<String> = Vec::new();
    for (name, text) in &generated {
        match committed.get(name) {
            None => problems.push(format!("shared/schemas/{name} is missing")),
            Some(c) if c != text => problems.push(format!(
                "shared/schemas/{name} differs from what the types generate"
            )),
            Some(_) => {}
        }
    }
    for name in committed.keys().filter(|n| !generated.contains_key(*n)) {
        problems.push(format!("shared/schemas/{name} is no longer generated"));
    }
    assert!(
        problems.is_empty(),
        "{}\nRun `{REGENERATE}` and commit shared/schemas/.",
        problems.join("\n")
    );
    assert_eq!(generated.len(), 29, "7 commands, 1 message, 21 events");
}

#[test]
fn every_schema_is_a_titled_described_draft_2020_12_schema() {
    for (name, text) in contract::committed() {
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        for field in ["title", "description", "$id"] {
            assert!(
                schema[field].as_str().is_some_and(|t| !t.is_empty()),
                "{name} has no {field}"
            );
        }
    }
}

/// One sample of every command, message and event in `tests/events/`, each the example of its
/// schema, each kept to it, and each read by the code as it reads the real thing.
#[test]
fn every_message_has_a_sample_that_keeps_to_its_schema_and_the_code_reads() {
    use lever_bridge::push::command::{Command, PushKind};
    let catalog = lever_bridge::contract::catalog();
    for entry in &catalog {
        let name = &entry.name;
        let sample =
            contract::sample(name).unwrap_or_else(|| panic!("tests/events/{name}.json is missing"));
        let errors = contract::violations(name, &sample);
        assert!(errors.is_empty(), "tests/events/{name}.json: {errors:?}");
        if let Some(kind) = name.strip_prefix("command.") {
            let kind = PushKind::parse(kind).unwrap();
            Command::parse(kind, sample.clone())
                .unwrap_or_else(|e| panic!("tests/events/{name}.json: {e}"));
        } else if name == lever_bridge::contract::MESSAGE_NAME {
            lever_bridge::transcript::parse_message(sample.clone(), i64::MAX / 2)
                .unwrap_or_else(|e| panic!("tests/events/{name}.json: {e}"));
        } else {
            let e: lever_bridge::events::VendorEvent = serde_json::from_value(sample.clone())
                .unwrap_or_else(|e| panic!("tests/events/{name}.json: {e}"));
            assert_eq!(lever_bridge::contract::event_name(&e.kind), *name);
        }
    }
    let samples = std::fs::read_dir(contract::samples_dir()).unwrap().count();
    assert_eq!(samples, catalog.len(), "one sample per schema, no other");
}

/// The admin API's OpenAPI document has exactly the routes the router serves.
#[test]
fn the_openapi_document_has_every_route_and_no_other() {
    use std::collections::BTreeSet;
    let doc = lever_bridge_tests::openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "put", "post", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| (m.to_ascii_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = lever_bridge::admin::http::ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "served but not in shared/schemas/admin.openapi.json: {missing:?}; documented but not served: {extra:?}"
    );
    // Every operation is SigV4-authorised, but the OAuth callback a browser reaches from Lever.
    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_ascii_lowercase()];
        let open = op["security"] == serde_json::json!([]);
        assert_eq!(
            open,
            path == "/admin/oauth/callback",
            "{method} {path}: security {}",
            op["security"]
        );
        assert!(op["operationId"].is_string(), "{method} {path}");
    }
}

/// Every example in the document keeps to the schema it illustrates.
#[test]
fn the_openapi_documents_examples_keep_to_their_schemas() {
    fn walk(v: &serde_json::Value, at: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(serde_json::Value::Array(examples)) = o.get("examples")
                    && (o.contains_key("type")
                        || o.contains_key("$ref")
                        || o.contains_key("properties"))
                {
                    for (i, e) in examples.iter().enumerate() {
                        for err in lever_bridge_tests::openapi::violations(v, e) {
                            out.push(format!("{at} example {i}: {err}"));
                        }
                    }
                }
                for (k, c) in o {
                    walk(c, &format!("{at}/{k}"), out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    walk(c, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    walk(lever_bridge_tests::openapi::document(), "", &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The README's admin API examples (`admin -X … "$(out AdminBaseUrl)/admin/…" -d '…'`) name
/// documented routes, and their bodies keep to the documented request schemas.
#[test]
fn the_readmes_admin_examples_keep_to_the_openapi_document() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let mut seen = 0;
    for line in readme
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("admin "))
    {
        let Some((_, rest)) = line.split_once("$(out AdminBaseUrl)") else {
            continue;
        };
        let path = rest.split(['"', '?']).next().unwrap();
        let method = line
            .split_once("-X ")
            .map_or("GET", |(_, m)| m.split_whitespace().next().unwrap());
        let op = lever_bridge_tests::openapi::operation(method, path)
            .unwrap_or_else(|| panic!("README: {method} {path} is not in the OpenAPI document"));
        if let Some((_, body)) = line.split_once("-d '") {
            let body: serde_json::Value =
                serde_json::from_str(body.trim_end_matches('\'')).unwrap();
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            let errors = lever_bridge_tests::openapi::violations(schema, &body);
            assert!(errors.is_empty(), "README: {line}: {errors:?}");
        }
        seen += 1;
    }
    assert!(seen >= 6, "the README's admin examples: {seen}");
}
