//! The admin API's OpenAPI document (`shared/schemas/admin.openapi.json`), and the check that an
//! answer keeps to it: its status is documented for its route, and its body validates against the
//! documented schema.

use serde_json::{Value, json};
use std::sync::OnceLock;

pub fn path() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/schemas/admin.openapi.json"
    ))
}

/// The committed document.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let text =
            std::fs::read_to_string(path()).unwrap_or_else(|e| panic!("{}: {e}", path().display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path().display()))
    })
}

/// Why `value` breaks `schema`, a schema of the document (its `$ref`s into the document resolve).
pub fn violations(schema: &Value, value: &Value) -> Vec<String> {
    let wrapper = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document()["components"],
        "allOf": [schema],
    });
    let validator = match jsonschema::validator_for(&wrapper) {
        Ok(v) => v,
        Err(e) => return vec![format!("not a schema: {e}")],
    };
    validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// The documented operation of a method and concrete path.
pub fn operation(method: &str, path: &str) -> Option<&'static Value> {
    let template = lever_bridge::admin::http::route_template(method, path)?;
    document()["paths"][template]
        .get(method.to_ascii_lowercase())
        .filter(|o| o.is_object())
}

/// An answer of the admin API keeps to the document: a documented status of its route, and a
/// body of the documented schema (JSON) or content type (HTML).
pub fn check_answer(method: &str, path: &str, status: u16, content_type: &str, body: &str) {
    let path = path.split('?').next().unwrap_or(path);
    let Some(template) = lever_bridge::admin::http::route_template(method, path) else {
        // Unrouted: the router's own 404/405, documented once for every route.
        assert!(
            [404, 405].contains(&status),
            "{method} {path} answered {status} outside every route"
        );
        return;
    };
    let op = operation(method, path)
        .unwrap_or_else(|| panic!("{method} {template} is not in the OpenAPI document"));
    let responses = &op["responses"];
    let mut response = responses
        .get(status.to_string())
        .or_else(|| responses.get("default"))
        .unwrap_or_else(|| {
            panic!(
                "{method} {template} answered {status}, which the OpenAPI document does not list"
            )
        });
    if let Some(r) = response.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        response = &document()["components"]["responses"][name];
    }
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let Some(content) = response["content"].get(media) else {
        panic!("{method} {template} {status}: no `{media}` content in the OpenAPI document");
    };
    if media != "application/json" {
        return;
    }
    let value: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{method} {template} {status}: not JSON: {e}"));
    let errors = violations(&content["schema"], &value);
    assert!(
        errors.is_empty(),
        "{method} {template} {status} breaks the OpenAPI document:\n  {}\n{value}",
        errors.join("\n  ")
    );
}
