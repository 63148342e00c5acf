//! What the vendor's app is told, on an EventBridge bus: one normalized event per change in Lever
//! (an accepted webhook, a change a sync found) and one per outcome of what the bundle did (pushes,
//! transcripts, connections, backfills). Events are written to the outbox with the change they
//! report (`store::OUTBOX_ATTRIBUTE`) and published by the relay (`crate::relay`).

use crate::store::Delivery;
use crate::webhook::{EventKind, Mutation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;
use std::sync::Mutex;

/// Source of every event this bundle puts on the vendor's bus.
pub const SOURCE: &str = "lever-bridge";

/// A change in the vendor's view of a candidate. `id` is stable across redeliveries, so a consumer
/// can drop the rare repeat that at-least-once delivery allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct VendorEvent {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opportunity_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    pub before: Value,
    pub after: Value,
    /// Lever's `triggeredAt`, ms.
    pub at: i64,
    /// True when newer state was already in place: recorded, nothing changed.
    pub stale: bool,
    /// Filled in by the initial backfill, not by a live change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backfill: bool,
    /// A change no webhook delivered, found by reconciliation with Lever.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recovered: bool,
}

impl VendorEvent {
    /// An event about something the bundle did (a push, a transcript, a tenant's connection, a
    /// backfill), not a change in Lever: `after` says what, `at` is when.
    pub fn outcome(
        id: String,
        tenant: &str,
        kind: &str,
        opportunity: Option<&str>,
        after: Value,
        at: i64,
    ) -> Self {
        VendorEvent {
            id,
            tenant_id: tenant.to_string(),
            kind: kind.to_string(),
            opportunity_id: opportunity.map(str::to_string),
            contact_id: None,
            before: Value::Null,
            after,
            at,
            stale: false,
            backfill: false,
            recovered: false,
        }
    }
}

/// What became of a push command, for the vendor's app (`pushDone` with Lever's ids, `pushFailed`
/// with Lever's reason, `pushParked`); `None` for a retry, which is not an outcome yet. The id is
/// stable for one outcome (a parked command's includes the attempt, as it may be parked again).
pub fn push_outcome(
    push: &str,
    tenant: &str,
    command: &str,
    opportunity: &str,
    end: &crate::store::CommandEnd,
    attempt: u32,
    at: i64,
) -> Option<VendorEvent> {
    use crate::store::CommandEnd;
    use payload::{PushDone, PushError, to_value};
    let (command_id, push) = (command.to_string(), push.to_string());
    let (kind, id, after) = match end {
        CommandEnd::Done { result } => (
            "pushDone",
            "done".to_string(),
            to_value(PushDone {
                command_id,
                push,
                result: result.clone(),
            }),
        ),
        CommandEnd::Failed { error } => (
            "pushFailed",
            "failed".to_string(),
            to_value(PushError {
                command_id,
                push,
                error: error.clone(),
            }),
        ),
        CommandEnd::Parked { error, .. } => (
            "pushParked",
            format!("parked/{attempt}"),
            to_value(PushError {
                command_id,
                push,
                error: error.clone(),
            }),
        ),
        CommandEnd::Released { .. } => return None,
    };
    Some(VendorEvent::outcome(
        format!("{tenant}/cmd/{command}/{id}"),
        tenant,
        kind,
        Some(opportunity),
        after,
        at,
    ))
}

/// A conversation posted as transcript notes (`transcriptPosted`): one per batch.
pub fn transcript_posted(
    key: &crate::store::ConversationKey,
    batch: &crate::store::Batch,
    note_ids: Vec<String>,
    at: i64,
) -> VendorEvent {
    let sent = batch.messages.iter().map(|m| m.sent_at);
    VendorEvent::outcome(
        format!("{}/transcript/{}", key.tenant, batch.id),
        &key.tenant,
        "transcriptPosted",
        Some(&key.opportunity),
        payload::to_value(payload::TranscriptPosted {
            batch_id: batch.id.clone(),
            note_ids,
            messages: batch.messages.len(),
            first_sent_at: sent.clone().min(),
            last_sent_at: sent.max(),
        }),
        at,
    )
}

/// A tenant's connection changed (`tenantConnected`, `tenantDisconnected` with the reason).
pub fn tenant_event(
    tenant: &str,
    status: crate::store::TenantStatus,
    reason: Option<&str>,
    at: i64,
) -> VendorEvent {
    let (kind, name) = match status {
        crate::store::TenantStatus::Disconnected => ("tenantDisconnected", "disconnected"),
        _ => ("tenantConnected", "connected"),
    };
    VendorEvent::outcome(
        format!("{tenant}/tenant/{name}/{at}"),
        tenant,
        kind,
        None,
        payload::to_value(payload::TenantChange {
            status: name.to_string(),
            reason: reason.map(str::to_string),
        }),
        at,
    )
}

/// The tenant's owner was picked or changed (`ownerChanged`): the Lever user pushes and transcript
/// notes are attributed to from now on.
pub fn owner_changed(
    tenant: &str,
    user_id: &str,
    name: &str,
    email: Option<&str>,
    previous: Option<&str>,
    at: i64,
) -> VendorEvent {
    let mut e = VendorEvent::outcome(
        format!("{tenant}/owner/{user_id}/{at}"),
        tenant,
        "ownerChanged",
        None,
        payload::to_value(payload::Owner {
            user_id: user_id.to_string(),
            name: Some(name.to_string()),
            email: email.map(str::to_string),
        }),
        at,
    );
    if let Some(p) = previous {
        e.before = payload::to_value(payload::Owner {
            user_id: p.to_string(),
            name: None,
            email: None,
        });
    }
    e
}

/// Webhooks were registered in Lever for the tenant (`webhooksRegistered`), each kind with what
/// registering did.
pub fn webhooks_registered(
    tenant: &str,
    webhooks: Vec<payload::RegisteredWebhook>,
    at: i64,
) -> VendorEvent {
    VendorEvent::outcome(
        format!("{tenant}/webhooks/registered/{at}"),
        tenant,
        "webhooksRegistered",
        None,
        payload::to_value(payload::WebhooksRegistered {
            webhooks,
            reminder: crate::webhook::SUPER_ADMIN_REMINDER.to_string(),
        }),
        at,
    )
}

/// A backfill finished (`backfillFinished`): every candidate of the tenant is in the vendor's view.
pub fn backfill_finished(job: &crate::store::SyncJob, at: i64) -> VendorEvent {
    VendorEvent::outcome(
        format!("{}/backfill/{}", job.tenant, job.job_id),
        &job.tenant,
        "backfillFinished",
        None,
        payload::to_value(payload::BackfillFinished {
            job_id: job.job_id.clone(),
            candidates: job.done,
            changed: job.changed,
            started_at: job.started_at,
        }),
        at,
    )
}

/// The `outbox` attribute's value: the events a write owes, as a JSON array.
pub fn to_outbox(events: &[VendorEvent]) -> String {
    serde_json::to_string(events).expect("vendor events serialize")
}

/// The events of an `outbox` attribute.
pub fn from_outbox(json: &str) -> Result<Vec<VendorEvent>, String> {
    serde_json::from_str(json)
        .map_err(|e| format!("the outbox is not a list of vendor events: {e}"))
}

/// An event the bus did not take, with the bus's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub id: String,
    /// The bus's error code and message, or why the call failed.
    pub error: String,
}

pub trait EventSink: Send + Sync {
    /// Publishes `events` (detail-type: each event's kind), sending entries the bus rejected
    /// again a few times. Answers the events that could not be published, each with its reason.
    fn publish(&self, events: &[VendorEvent]) -> impl Future<Output = Vec<Refused>> + Send;
}

pub struct EventBridgeSink {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeSink {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        EventBridgeSink {
            client,
            bus: bus.into(),
        }
    }

    fn entry(&self, e: &VendorEvent) -> aws_sdk_eventbridge::types::PutEventsRequestEntry {
        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(&e.kind)
            .detail(serde_json::to_string(e).expect("vendor events serialize"))
            .build()
    }
}

impl EventSink for EventBridgeSink {
    /// Ten entries per `PutEvents` (its limit); only the entries the bus rejected are sent again,
    /// four attempts in all (0.7 s of back-off): what is still refused is the caller's to keep.
    async fn publish(&self, events: &[VendorEvent]) -> Vec<Refused> {
        let mut failed = Vec::new();
        for chunk in events.chunks(10) {
            let mut pending: Vec<(&VendorEvent, String)> =
                chunk.iter().map(|e| (e, String::new())).collect();
            for attempt in 0..4 {
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                let entries = pending.iter().map(|(e, _)| self.entry(e)).collect();
                let out = match self
                    .client
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) => out,
                    Err(e) => {
                        let error = format!(
                            "PutEvents failed: {}",
                            aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                        );
                        tracing::warn!(attempt, error, "PutEvents failed");
                        for p in &mut pending {
                            p.1.clone_from(&error);
                        }
                        continue;
                    }
                };
                if out.failed_entry_count() == 0 {
                    pending.clear();
                    break;
                }
                // Entries answer in request order; keep the rejected ones, with their reason.
                pending = pending
                    .into_iter()
                    .zip(out.entries())
                    .filter_map(|((e, _), r)| {
                        r.error_code().map(|code| {
                            (
                                e,
                                format!("{code}: {}", r.error_message().unwrap_or_default()),
                            )
                        })
                    })
                    .collect();
            }
            failed.extend(pending.into_iter().map(|(e, error)| Refused {
                id: e.id.clone(),
                error,
            }));
        }
        failed
    }
}

/// Collects events in memory; can be told to fail, for fault tests.
#[derive(Debug, Default)]
pub struct InMemoryEvents {
    events: Mutex<Vec<VendorEvent>>,
    failures_left: Mutex<usize>,
    down: std::sync::atomic::AtomicBool,
}

impl InMemoryEvents {
    pub fn events(&self) -> Vec<VendorEvent> {
        self.events.lock().unwrap().clone()
    }
    /// The next `n` events fail.
    pub fn fail_next(&self, n: usize) {
        *self.failures_left.lock().unwrap() = n;
    }
    /// While down, every event fails (an outage of the bus).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
}

impl EventSink for InMemoryEvents {
    async fn publish(&self, events: &[VendorEvent]) -> Vec<Refused> {
        let mut failed = Vec::new();
        for e in events {
            let fail = self.down.load(std::sync::atomic::Ordering::SeqCst) || {
                let mut left = self.failures_left.lock().unwrap();
                let fail = *left > 0;
                *left = left.saturating_sub(1);
                fail
            };
            if fail {
                failed.push(Refused {
                    id: e.id.clone(),
                    error: "InternalFailure: the in-memory bus is failing".into(),
                });
            } else {
                self.events.lock().unwrap().push(e.clone());
            }
        }
        failed
    }
}

impl<S: EventSink + ?Sized> EventSink for std::sync::Arc<S> {
    fn publish(&self, events: &[VendorEvent]) -> impl Future<Output = Vec<Refused>> + Send {
        (**self).publish(events)
    }
}

/// The normalized event: Lever's own before and after where the delivery carries them.
pub fn vendor_event(d: &Delivery<'_>, m: &Mutation) -> VendorEvent {
    change_event(
        format!("{}/{}", d.tenant, d.token),
        d.tenant,
        d.kind,
        m,
        d.triggered_at,
    )
}

/// The event of one change of kind `kind` at `at` (Lever's time), whatever found it.
pub fn change_event(
    id: String,
    tenant: &str,
    kind: EventKind,
    m: &Mutation,
    at: i64,
) -> VendorEvent {
    use payload::{to_value as v, *};
    let (before, after, contact) = match m {
        Mutation::Stage {
            from, to, contact, ..
        } => (
            v(Stage {
                stage_id: from.clone(),
            }),
            v(Stage {
                stage_id: Some(to.clone()),
            }),
            contact.clone(),
        ),
        Mutation::Archive { from, to, .. } => (
            v(Archive {
                archived: from.clone(),
            }),
            v(Archive {
                archived: to.clone(),
            }),
            None,
        ),
        Mutation::Hired { .. } => (Value::Null, v(Hired { hired: true }), None),
        Mutation::Deleted { opportunity } => (
            v(Deleted {
                opportunity_id: opportunity.clone(),
            }),
            Value::Null,
            None,
        ),
        Mutation::Application {
            application,
            posting,
            ..
        } => (
            Value::Null,
            v(Application {
                application_id: application.clone(),
                posting_id: posting.clone(),
            }),
            None,
        ),
        Mutation::InterviewUpsert {
            interview,
            panel,
            data,
            ..
        } => (
            Value::Null,
            v(Interview {
                interview_id: interview.clone(),
                panel_id: panel.clone(),
                data: data.clone(),
            }),
            None,
        ),
        Mutation::InterviewDelete {
            interview, panel, ..
        } => (
            v(InterviewRef {
                interview_id: interview.clone(),
                panel_id: panel.clone(),
            }),
            Value::Null,
            None,
        ),
        Mutation::Contact { contact, data } => (
            Value::Null,
            v(Contact {
                contact_id: contact.clone(),
                data: data.clone(),
            }),
            Some(contact.clone()),
        ),
    };
    VendorEvent {
        id,
        tenant_id: tenant.to_string(),
        kind: kind.as_str().to_string(),
        opportunity_id: m.opportunity().map(str::to_string),
        contact_id: contact,
        before,
        after,
        at,
        stale: false,
        backfill: false,
        recovered: false,
    }
}

/// The vendor's bus as the functions that publish hold it: EventBridge when deployed, in memory in
/// tests (one type, so the admin settings need no generic for it).
pub enum Bus {
    EventBridge(EventBridgeSink),
    Memory(std::sync::Arc<InMemoryEvents>),
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bus::EventBridge(s) => f.debug_tuple("EventBridge").field(&s.bus).finish(),
            Bus::Memory(_) => f.write_str("Memory"),
        }
    }
}

impl EventSink for Bus {
    async fn publish(&self, events: &[VendorEvent]) -> Vec<Refused> {
        match self {
            Bus::EventBridge(s) => s.publish(events).await,
            Bus::Memory(m) => m.publish(events).await,
        }
    }
}

/// What `before` and `after` hold, per kind of event: the vendor's contract (the JSON Schemas in
/// `shared/schemas/` are generated from these types), and what the constructors above write.
pub mod payload {
    use crate::webhook::Archived;
    use serde::Serialize;
    use serde_json::{Map, Value};

    pub(crate) fn to_value(v: impl Serialize) -> Value {
        serde_json::to_value(v).expect("payloads serialize")
    }

    /// A candidate's stage (`candidateStageChange`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Stage {
        /// Lever's stage id (not always a UUID: `lead-new`, `offer`); `null` when Lever did not say.
        pub stage_id: Option<String>,
    }

    /// A candidate's archive state (`candidateArchiveChange`): `null` when active.
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Archive {
        pub archived: Option<Archived>,
    }

    /// `candidateHired`.
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Hired {
        pub hired: bool,
    }

    /// The candidate a `candidateDeleted` removed.
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Deleted {
        pub opportunity_id: String,
    }

    /// An application (`applicationCreated`, and each of a backfilled candidate's).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Application {
        pub application_id: String,
        pub posting_id: Option<String>,
    }

    /// An interview as Lever's webhook described it (`interviewCreated`, `interviewUpdated`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Interview {
        pub interview_id: String,
        pub panel_id: Option<String>,
        /// The webhook's `data` as Lever sent it (its keys are not documented).
        pub data: Map<String, Value>,
    }

    /// The interview an `interviewDeleted` removed.
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct InterviewRef {
        pub interview_id: String,
        pub panel_id: Option<String>,
    }

    /// A contact as Lever's webhook described it (`contactCreated`, `contactUpdated`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Contact {
        pub contact_id: String,
        /// The webhook's `data` as Lever sent it.
        pub data: Map<String, Value>,
    }

    /// A candidate as a backfill found it (`candidateBackfilled`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Backfilled {
        pub stage_id: Option<String>,
        pub archived: Option<Archived>,
        pub hired: bool,
        pub applications: Vec<Application>,
    }

    /// A command carried out (`pushDone`), with Lever's ids.
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct PushDone {
        pub command_id: String,
        /// The command's kind: `note`, `feedback`, `stage`, `archive`, `tagsLinks`, `interview`, `file`.
        pub push: String,
        /// What Lever made, by kind: `noteIds`, `feedbackId`, `fileId`, `panelId`…
        pub result: Value,
    }

    /// A command that failed for good (`pushFailed`) or waits for its tenant (`pushParked`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct PushError {
        pub command_id: String,
        pub push: String,
        /// Why, in words that say what to fix.
        pub error: String,
    }

    /// A parked command sent back to its queue (`pushReplayed`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct PushReplayed {
        pub command_id: String,
        pub push: String,
        /// When it was parked, ms.
        pub parked_at: i64,
    }

    /// A conversation posted as transcript notes (`transcriptPosted`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct TranscriptPosted {
        pub batch_id: String,
        pub note_ids: Vec<String>,
        /// How many messages the notes hold.
        pub messages: usize,
        pub first_sent_at: Option<i64>,
        pub last_sent_at: Option<i64>,
    }

    /// A tenant's connection (`tenantConnected`, `tenantDisconnected`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct TenantChange {
        /// `connected` or `disconnected`.
        pub status: String,
        /// Why it was disconnected (Lever's refusal); `null` when connected.
        pub reason: Option<String>,
    }

    /// The tenant's owner (`ownerChanged`; `before` holds the previous owner's id alone).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Owner {
        /// The Lever user's id.
        pub user_id: String,
        pub name: Option<String>,
        pub email: Option<String>,
    }

    /// One kind's registration (`webhooksRegistered`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct RegisteredWebhook {
        /// Lever's event name, e.g. `candidateStageChange`.
        pub event: String,
        /// `created`, `exists`, `recreated`, `createdWithoutToken` or `failed`.
        pub status: String,
        /// Lever's webhook id.
        pub id: Option<String>,
    }

    /// Webhooks registered in Lever (`webhooksRegistered`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct WebhooksRegistered {
        pub webhooks: Vec<RegisteredWebhook>,
        /// A Lever Super Admin must switch API-made webhooks on before they deliver.
        pub reminder: String,
    }

    /// A finished backfill (`backfillFinished`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct BackfillFinished {
        pub job_id: String,
        /// Candidates read.
        pub candidates: i64,
        /// Candidates written into the vendor's view.
        pub changed: i64,
        pub started_at: i64,
    }
}
