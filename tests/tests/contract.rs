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
