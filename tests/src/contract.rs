//! The vendor's contract on disk: the JSON Schemas `lever_bridge::contract` generates, committed
//! in `shared/schemas/` with their samples (`tests/events/`) as examples, and validators over the
//! committed copies that the tests hold every command, message and event to.

use lever_bridge::contract::{self, Entry};
use lever_bridge::events::VendorEvent;
use lever_bridge::push::command::PushKind;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

/// `shared/schemas/`: the committed schemas.
pub fn schemas_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/schemas"))
}

/// `tests/events/`: one sample of every command, message and event.
pub fn samples_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/events"))
}

/// The command that writes the schemas anew.
pub const REGENERATE: &str = "make schemas";

/// The sample of `name`, if there is one.
pub fn sample(name: &str) -> Option<Value> {
    let path = samples_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Every schema file as it should be: the generated schema with its sample as its example.
pub fn generated() -> BTreeMap<String, String> {
    contract::catalog()
        .into_iter()
        .map(|Entry { name, mut schema }| {
            if let (Some(example), Some(o)) = (sample(&name), schema.as_object_mut()) {
                o.insert("examples".into(), Value::Array(vec![example]));
            }
            let text = serde_json::to_string_pretty(&schema).expect("schemas serialize") + "\n";
            (format!("{name}.schema.json"), text)
        })
        .collect()
}

/// Every schema file as committed.
pub fn committed() -> BTreeMap<String, String> {
    let Ok(dir) = std::fs::read_dir(schemas_dir()) else {
        return BTreeMap::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".schema.json"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(e.path()).unwrap_or_default())
        })
        .collect()
}

/// Writes the generated schemas into `shared/schemas/` and removes the ones no longer generated.
pub fn write() -> std::io::Result<usize> {
    let dir = schemas_dir();
    std::fs::create_dir_all(&dir)?;
    let files = generated();
    for stale in committed().keys().filter(|k| !files.contains_key(*k)) {
        std::fs::remove_file(dir.join(stale))?;
    }
    for (name, text) in &files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(files.len())
}

fn validators() -> &'static BTreeMap<String, jsonschema::Validator> {
    static V: OnceLock<BTreeMap<String, jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        committed()
            .into_iter()
            .map(|(file, text)| {
                let schema: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("shared/schemas/{file}: {e}"));
                let v = jsonschema::validator_for(&schema)
                    .unwrap_or_else(|e| panic!("shared/schemas/{file} is not a schema: {e}"));
                (file.trim_end_matches(".schema.json").to_string(), v)
            })
            .collect()
    })
}

/// Why `value` breaks the schema `name` (empty when it keeps to it).
pub fn violations(name: &str, value: &Value) -> Vec<String> {
    let Some(v) = validators().get(name) else {
        return vec![format!(
            "no schema `{name}` in shared/schemas/ (run `{REGENERATE}`)"
        )];
    };
    v.iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn check(name: &str, value: &Value) {
    let errors = violations(name, value);
    assert!(
        errors.is_empty(),
        "{value} breaks the contract's schema `{name}`:\n  {}\n(a change of behaviour needs `{REGENERATE}`)",
        errors.join("\n  ")
    );
}

/// A vendor event as it goes on the bus: it must keep to its kind's schema.
pub fn check_event(e: &VendorEvent) {
    check(
        &contract::event_name(&e.kind),
        &serde_json::to_value(e).expect("events serialize"),
    );
}

/// A command the code accepts must keep to its kind's schema.
pub fn check_command(kind: PushKind, command: &Value) {
    check(&contract::command_name(kind), command);
}

/// An SMS message the code accepts must keep to the message schema.
pub fn check_message(message: &Value) {
    check(contract::MESSAGE_NAME, message);
}
