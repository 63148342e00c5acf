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
    assert_eq!(generated.len(), 27, "7 commands, 1 message, 19 events");
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
