//! The vendor's contract as JSON Schemas (draft 2020-12), generated from the types the functions
//! read and write: one schema per command kind (`push::command`), one for the SMS message
//! transcript-ingest reads (`transcript::MessageEvent`), and one per vendor event kind
//! (`events::VendorEvent` with `before` and `after` typed by `events::payload`). The committed
//! copies in `shared/schemas/` are these (a test compares them), and every command, message and
//! event the tests send or receive is validated against them.
//!
//! Built only with the `schema` feature (the tests and the generator), so no function links it.

use crate::events::payload;
use crate::push::command::{self as cmd, PushKind};
use crate::webhook::EventKind;
use schemars::JsonSchema;
use serde_json::{Map, Value, json};

/// One schema of the contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The file's stem in `shared/schemas/` (and of its sample in `tests/events/`).
    pub name: String,
    pub schema: Value,
}

/// What a message of the contract is: its schema's stem.
pub fn command_name(kind: PushKind) -> String {
    format!("command.{}", kind.as_str())
}
pub const MESSAGE_NAME: &str = "message.transcript";
pub fn event_name(kind: &str) -> String {
    format!("event.{kind}")
}

/// The root schema of `T` (its `$defs` apart).
fn root<T: JsonSchema>(defs: &mut Map<String, Value>) -> Value {
    let mut v = serde_json::to_value(schemars::schema_for!(T)).expect("schemas serialize");
    if let Some(Value::Object(d)) = v.as_object_mut().and_then(|o| o.remove("$defs")) {
        defs.extend(d);
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("$schema");
        o.remove("title");
    }
    v
}

fn document(
    name: &str,
    title: &str,
    description: &str,
    mut body: Value,
    defs: Map<String, Value>,
) -> Entry {
    let o = body.as_object_mut().expect("an object schema");
    let mut doc = Map::new();
    doc.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    doc.insert(
        "$id".into(),
        json!(format!(
            "https://lever-bridge.dev/schemas/{name}.schema.json"
        )),
    );
    doc.insert("title".into(), json!(title));
    doc.insert("description".into(), json!(description));
    doc.extend(std::mem::take(o));
    if !defs.is_empty() {
        doc.insert("$defs".into(), Value::Object(defs));
    }
    Entry {
        name: name.to_string(),
        schema: Value::Object(doc),
    }
}

fn properties(v: &mut Value) -> &mut Map<String, Value> {
    v.as_object_mut()
        .and_then(|o| o.get_mut("properties"))
        .and_then(Value::as_object_mut)
        .expect("an object schema with properties")
}

fn required(v: &Value) -> Vec<Value> {
    v.get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A command of `kind`: the envelope's fields, the kind's own, and `kind` itself if sent.
fn command<T: JsonSchema>(kind: PushKind, what: &str) -> Entry {
    let mut defs = Map::new();
    let envelope = root::<cmd::Envelope>(&mut defs);
    let mut body = root::<T>(&mut defs);
    let mut props = envelope["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    props.insert(
        "kind".into(),
        json!({"const": kind.as_str(), "description": "The command's kind; optional, as its queue says it."}),
    );
    props.extend(std::mem::take(properties(&mut body)));
    let mut req = required(&envelope);
    req.extend(required(&body));
    let o = body.as_object_mut().expect("an object schema");
    o.insert("properties".into(), Value::Object(props));
    o.insert("required".into(), Value::Array(req));
    o.insert("additionalProperties".into(), json!(false));
    o.remove("description");
    document(
        &command_name(kind),
        &format!("{} command", kind.function_name()),
        &format!(
            "A command the vendor's app sends to the {} queue ({what}). One JSON object per SQS \
             message; unknown fields are refused, so a typo fails the command with the field's name.",
            kind.function_name()
        ),
        body,
        defs,
    )
}

/// Makes a payload's schema, adding what it refers to into the document's `$defs`.
type Payload = fn(&mut Map<String, Value>) -> Value;

/// What an event kind's `before` and `after` hold (`null` where there is nothing).
struct Shape {
    kind: String,
    description: &'static str,
    before: Option<Payload>,
    after: Option<Payload>,
}

/// The previous owner (its id alone), or `null` for the first.
fn owner_or_null(defs: &mut Map<String, Value>) -> Value {
    json!({"anyOf": [root::<payload::Owner>(defs), {"type": "null"}]})
}

fn shape(
    kind: &str,
    description: &'static str,
    before: Option<Payload>,
    after: Option<Payload>,
) -> Shape {
    Shape {
        kind: kind.to_string(),
        description,
        before,
        after,
    }
}

fn event(s: Shape) -> Entry {
    let mut defs = Map::new();
    let mut body = root::<crate::events::VendorEvent>(&mut defs);
    let null = json!({"type": "null"});
    let props = properties(&mut body);
    props.insert(
        "kind".into(),
        json!({"const": s.kind, "description": "The event's kind, also its EventBridge detail-type."}),
    );
    props.insert(
        "before".into(),
        s.before.map_or_else(|| null.clone(), |f| f(&mut defs)),
    );
    props.insert("after".into(), s.after.map_or(null, |f| f(&mut defs)));
    let o = body.as_object_mut().expect("an object schema");
    o.insert("additionalProperties".into(), json!(false));
    o.remove("description");
    document(
        &event_name(&s.kind),
        &format!("{} event", s.kind),
        &format!(
            "{} On the vendor's EventBridge bus: source `lever-bridge`, detail-type `{}`, this as \
             `detail`. `id` is stable: a consumer drops a repeat by it.",
            s.description, s.kind
        ),
        body,
        defs,
    )
}

fn webhook_shape(kind: EventKind) -> Shape {
    use payload::*;
    let k = kind.as_str();
    match kind {
        EventKind::ApplicationCreated => shape(
            k,
            "Lever created an application (a webhook, or found by a reconciliation: `recovered`).",
            None,
            Some(root::<Application>),
        ),
        EventKind::CandidateStageChange => shape(
            k,
            "A candidate moved to another stage in Lever.",
            Some(root::<Stage>),
            Some(root::<Stage>),
        ),
        EventKind::CandidateArchiveChange => shape(
            k,
            "A candidate was archived (with the reason) or unarchived in Lever.",
            Some(root::<Archive>),
            Some(root::<Archive>),
        ),
        EventKind::CandidateHired => shape(
            k,
            "A candidate was hired in Lever.",
            None,
            Some(root::<Hired>),
        ),
        EventKind::CandidateDeleted => shape(
            k,
            "A candidate was deleted in Lever (confirmed with Lever before it is told).",
            Some(root::<Deleted>),
            None,
        ),
        EventKind::InterviewCreated => shape(
            k,
            "An interview was scheduled in Lever.",
            None,
            Some(root::<Interview>),
        ),
        EventKind::InterviewUpdated => shape(
            k,
            "An interview changed in Lever.",
            None,
            Some(root::<Interview>),
        ),
        EventKind::InterviewDeleted => shape(
            k,
            "An interview was removed in Lever.",
            Some(root::<InterviewRef>),
            None,
        ),
        EventKind::ContactCreated => shape(
            k,
            "A contact was created in Lever.",
            None,
            Some(root::<Contact>),
        ),
        EventKind::ContactUpdated => shape(
            k,
            "A contact changed in Lever.",
            None,
            Some(root::<Contact>),
        ),
    }
}

/// Every schema of the contract, in a fixed order.
pub fn catalog() -> Vec<Entry> {
    use payload::*;
    let mut out = Vec::new();
    for kind in PushKind::ALL {
        out.push(match kind {
            PushKind::Note => {
                command::<cmd::NoteCommand>(kind, "a note: free text or an assessment's results")
            }
            PushKind::Feedback => {
                command::<cmd::FeedbackCommand>(kind, "a scorecard from a feedback template")
            }
            PushKind::Stage => {
                command::<cmd::StageCommand>(kind, "a move to a stage, by id or by name")
            }
            PushKind::Archive => {
                command::<cmd::ArchiveCommand>(kind, "archive with a reason, or unarchive")
            }
            PushKind::TagsLinks => {
                command::<cmd::TagsLinksCommand>(kind, "tags and links added or removed")
            }
            PushKind::Interview => command::<cmd::InterviewCommand>(
                kind,
                "an interview scheduled, updated or cancelled",
            ),
            PushKind::File => {
                command::<cmd::FileCommand>(kind, "a report file from the upload bucket")
            }
        });
    }
    let mut defs = Map::new();
    let mut message = root::<crate::transcript::MessageEvent>(&mut defs);
    if let Some(o) = message.as_object_mut() {
        o.remove("description");
    }
    out.push(document(
        MESSAGE_NAME,
        "transcript-ingest message",
        "One SMS message the texting product sends to the transcript-ingest queue (one per SQS \
         message). A conversation is posted to Lever as one transcript note an hour after its last \
         message; a message sent twice (same `messageId`) is stored once.",
        message,
        defs,
    ));
    for kind in EventKind::ALL {
        out.push(event(webhook_shape(kind)));
    }
    for s in [
        shape(
            crate::sync::snapshot::BACKFILLED,
            "A candidate filled in by the backfill that follows a connection (`backfill: true`).",
            None,
            Some(root::<Backfilled>),
        ),
        shape(
            "pushDone",
            "A command was carried out, with Lever's ids.",
            None,
            Some(root::<PushDone>),
        ),
        shape(
            "pushFailed",
            "A command failed for good, with the reason.",
            None,
            Some(root::<PushError>),
        ),
        shape(
            "pushParked",
            "Lever refused the tenant's credentials: the command waits until the tenant reconnects.",
            None,
            Some(root::<PushError>),
        ),
        shape(
            "pushReplayed",
            "A parked command went back to its queue (its pushDone or pushFailed follows).",
            None,
            Some(root::<PushReplayed>),
        ),
        shape(
            "transcriptPosted",
            "A conversation was posted to Lever as transcript notes.",
            None,
            Some(root::<TranscriptPosted>),
        ),
        shape(
            "tenantConnected",
            "A tenant connected, or reconnected.",
            None,
            Some(root::<TenantChange>),
        ),
        shape(
            "tenantDisconnected",
            "Lever refused a tenant's credentials: it must connect again.",
            None,
            Some(root::<TenantChange>),
        ),
        shape(
            "ownerChanged",
            "The tenant's owner was picked or changed: pushes and transcript notes are attributed to this Lever user.",
            Some(owner_or_null),
            Some(root::<Owner>),
        ),
        shape(
            "webhooksRegistered",
            "Webhooks were registered in Lever for the tenant (a Super Admin must switch them on).",
            None,
            Some(root::<WebhooksRegistered>),
        ),
        shape(
            "backfillFinished",
            "Every candidate of a newly connected tenant is in the vendor's view.",
            None,
            Some(root::<BackfillFinished>),
        ),
    ] {
        out.push(event(s));
    }
    out
}

/// The event kinds the catalog has a schema for.
pub fn event_kinds() -> Vec<String> {
    catalog()
        .into_iter()
        .filter_map(|e| e.name.strip_prefix("event.").map(str::to_string))
        .collect()
}
