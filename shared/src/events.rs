//! What the vendor's app is told: one normalized event per accepted webhook, on an EventBridge bus.

use crate::store::Delivery;
use crate::webhook::{EventKind, Mutation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Mutex;

/// Source of every event this bundle puts on the vendor's bus.
pub const SOURCE: &str = "lever-bridge";

/// A change in the vendor's view of a candidate. `id` is stable across redeliveries, so a consumer
/// can drop the rare repeat that at-least-once delivery allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, thiserror::Error)]
#[error("publishing to the event bus failed: {0}")]
pub struct PublishError(pub String);

pub trait EventSink: Send + Sync {
    /// Publishes one event: `detail` is a serialized [`VendorEvent`] of kind `kind`.
    fn publish(
        &self,
        kind: &str,
        detail: &str,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// Publishes many events, (kind, detail) each; all of them or an error.
    fn publish_all(
        &self,
        events: &[(String, String)],
    ) -> impl Future<Output = Result<(), PublishError>> + Send {
        async move {
            for (kind, detail) in events {
                self.publish(kind, detail).await?;
            }
            Ok(())
        }
    }
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
}

impl EventSink for EventBridgeSink {
    async fn publish_all(&self, events: &[(String, String)]) -> Result<(), PublishError> {
        self.publish_batched(events).await
    }

    async fn publish(&self, kind: &str, detail: &str) -> Result<(), PublishError> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(kind)
            .detail(detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                PublishError(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())
            })?;
        // PutEvents answers 200 with per-entry failures; a failed entry is a failed publish.
        match out.entries().first().and_then(|e| e.error_code()) {
            None if out.failed_entry_count() == 0 => Ok(()),
            code => Err(PublishError(format!(
                "entry rejected: {}",
                code.unwrap_or("unknown")
            ))),
        }
    }
}

impl EventBridgeSink {
    fn entry(&self, kind: &str, detail: &str) -> aws_sdk_eventbridge::types::PutEventsRequestEntry {
        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(kind)
            .detail(detail)
            .build()
    }

    /// Ten entries per `PutEvents` (its limit); rejected entries are sent again a few times.
    pub async fn publish_batched(&self, events: &[(String, String)]) -> Result<(), PublishError> {
        for chunk in events.chunks(10) {
            let mut pending: Vec<&(String, String)> = chunk.iter().collect();
            for attempt in 0..4 {
                let entries = pending.iter().map(|(k, d)| self.entry(k, d)).collect();
                let out = self
                    .client
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| {
                        PublishError(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())
                    })?;
                if out.failed_entry_count() == 0 {
                    pending.clear();
                    break;
                }
                // Entries answer in request order; keep the failed ones.
                pending = pending
                    .into_iter()
                    .zip(out.entries())
                    .filter(|(_, r)| r.error_code().is_some())
                    .map(|(e, _)| e)
                    .collect();
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            if !pending.is_empty() {
                return Err(PublishError(format!("{} entries rejected", pending.len())));
            }
        }
        Ok(())
    }
}

/// Collects events in memory; can be told to fail, for fault tests.
#[derive(Debug, Default)]
pub struct InMemoryEvents {
    events: Mutex<Vec<VendorEvent>>,
    failures_left: Mutex<usize>,
}

impl InMemoryEvents {
    pub fn events(&self) -> Vec<VendorEvent> {
        self.events.lock().unwrap().clone()
    }
    /// The next `n` publishes fail.
    pub fn fail_next(&self, n: usize) {
        *self.failures_left.lock().unwrap() = n;
    }
}

impl EventSink for InMemoryEvents {
    async fn publish(&self, _kind: &str, detail: &str) -> Result<(), PublishError> {
        let event: VendorEvent =
            serde_json::from_str(detail).map_err(|e| PublishError(e.to_string()))?;
        {
            let mut left = self.failures_left.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(PublishError("injected failure".into()));
            }
        }
        self.events.lock().unwrap().push(event);
        Ok(())
    }
}

impl<S: EventSink + ?Sized> EventSink for std::sync::Arc<S> {
    fn publish(
        &self,
        kind: &str,
        detail: &str,
    ) -> impl Future<Output = Result<(), PublishError>> + Send {
        (**self).publish(kind, detail)
    }
    fn publish_all(
        &self,
        events: &[(String, String)],
    ) -> impl Future<Output = Result<(), PublishError>> + Send {
        (**self).publish_all(events)
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
    let (before, after, contact) = match m {
        Mutation::Stage {
            from, to, contact, ..
        } => (
            json!({ "stageId": from }),
            json!({ "stageId": to }),
            contact.clone(),
        ),
        Mutation::Archive { from, to, .. } => {
            (json!({ "archived": from }), json!({ "archived": to }), None)
        }
        Mutation::Hired { .. } => (Value::Null, json!({ "hired": true }), None),
        Mutation::Deleted { opportunity } => {
            (json!({ "opportunityId": opportunity }), Value::Null, None)
        }
        Mutation::Application {
            application,
            posting,
            ..
        } => (
            Value::Null,
            json!({ "applicationId": application, "postingId": posting }),
            None,
        ),
        Mutation::InterviewUpsert {
            interview,
            panel,
            data,
            ..
        } => (
            Value::Null,
            json!({ "interviewId": interview, "panelId": panel, "data": data }),
            None,
        ),
        Mutation::InterviewDelete {
            interview, panel, ..
        } => (
            json!({ "interviewId": interview, "panelId": panel }),
            Value::Null,
            None,
        ),
        Mutation::Contact { contact, data } => (
            Value::Null,
            json!({ "contactId": contact, "data": data }),
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
