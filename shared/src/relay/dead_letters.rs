//! The relay's dead letters: what it could not put on the vendor's bus, kept whole in a queue of its
//! own until an operator replays it (`POST /admin/events/replay`).
//!
//! An event the bus still refuses after the sink's own retries, and a stream record whose outbox
//! cannot be read, are written here by the relay itself, so neither holds back the records behind
//! it and neither is lost when the item's next write replaces its outbox. A replay puts the events
//! back on the bus with their ids unchanged (a consumer that had one drops it by id) and deletes a
//! message only once the bus took its event; unreadable records are listed, never replayed.

use crate::events::{Bus, EventSink, SOURCE, VendorEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Mutex;
use std::time::Instant;

/// SQS's limit on a message (256 KiB), less room for the letter around an image.
const MAX_BODY: usize = 250 * 1024;
/// How long a replay hides the messages it holds (longer than the admin function's 29 s, so no
/// other replay takes them meanwhile); what it does not delete it makes visible again at its end.
const VISIBILITY_SECS: i32 = 60;

/// One message of the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum DeadLetter {
    /// An event the bus refused after the relay's retries, whole, with the bus's last error.
    Event {
        event: Box<DeadEvent>,
        error: String,
        /// The stream record it came from.
        sequence: String,
        /// When the relay gave it up, ms.
        dead_at: i64,
    },
    /// A stream record whose outbox cannot be read: its keys, its new image as the stream carried
    /// it (`None` when it is too large for a message; the item's keys find it) and why.
    Unreadable {
        sequence: String,
        keys: Value,
        new_image: Option<Value>,
        reason: String,
        dead_at: i64,
    },
}

/// An event as it goes on the bus: the `PutEvents` entry's fields and the event itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadEvent {
    pub id: String,
    pub source: String,
    pub detail_type: String,
    pub tenant_id: String,
    /// The event's own time (`detail.at`), ms.
    pub time: i64,
    pub detail: VendorEvent,
}

impl DeadLetter {
    pub fn event(event: &VendorEvent, error: &str, sequence: &str, now_ms: i64) -> DeadLetter {
        DeadLetter::Event {
            event: Box::new(DeadEvent {
                id: event.id.clone(),
                source: SOURCE.to_string(),
                detail_type: event.kind.clone(),
                tenant_id: event.tenant_id.clone(),
                time: event.at,
                detail: event.clone(),
            }),
            error: error.to_string(),
            sequence: sequence.to_string(),
            dead_at: now_ms,
        }
    }

    /// An unreadable record; its image is left out when the message would be too large for SQS.
    pub fn unreadable(
        sequence: &str,
        keys: Value,
        new_image: Value,
        reason: &str,
        now_ms: i64,
    ) -> DeadLetter {
        let mut letter = DeadLetter::Unreadable {
            sequence: sequence.to_string(),
            keys,
            new_image: Some(new_image),
            reason: reason.to_string(),
            dead_at: now_ms,
        };
        if letter.body().len() > MAX_BODY
            && let DeadLetter::Unreadable {
                new_image, reason, ..
            } = &mut letter
        {
            *new_image = None;
            reason.push_str(" (the image is too large for the queue: read the item by its keys)");
        }
        letter
    }

    pub fn body(&self) -> String {
        serde_json::to_string(self).expect("dead letters serialize")
    }
}

/// A message as a receive hands it out.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    handle: String,
    body: String,
}

#[derive(Debug, Default)]
pub struct MemoryQueue {
    next: u64,
    /// (message id, body, held by a receive)
    messages: Vec<(String, String, bool)>,
    down: bool,
}

/// The relay's dead-letter queue (`RELAY_DEAD_LETTER_QUEUE_URL`), or one in memory for tests.
pub enum DeadLetterQueue {
    Sqs {
        client: aws_sdk_sqs::Client,
        url: String,
    },
    Memory(Mutex<MemoryQueue>),
}

impl std::fmt::Debug for DeadLetterQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeadLetterQueue::Sqs { url, .. } => f.debug_struct("Sqs").field("url", url).finish(),
            DeadLetterQueue::Memory(_) => f.write_str("Memory"),
        }
    }
}

fn sqs_error<E: std::error::Error + 'static>(what: &str, e: E) -> String {
    format!(
        "{what} failed: {}",
        aws_sdk_sqs::error::DisplayErrorContext(&e)
    )
}

impl DeadLetterQueue {
    pub fn memory() -> Self {
        DeadLetterQueue::Memory(Mutex::default())
    }

    /// While down, the in-memory queue refuses every send (for tests).
    pub fn set_down(&self, down: bool) {
        if let DeadLetterQueue::Memory(m) = self {
            m.lock().unwrap().down = down;
        }
    }

    /// Every letter the in-memory queue holds (empty for SQS).
    pub fn letters(&self) -> Vec<DeadLetter> {
        match self {
            DeadLetterQueue::Memory(m) => m
                .lock()
                .unwrap()
                .messages
                .iter()
                .filter_map(|(_, b, _)| serde_json::from_str(b).ok())
                .collect(),
            DeadLetterQueue::Sqs { .. } => Vec::new(),
        }
    }

    /// Sends the letters, ten per request: an error when any of them was not taken.
    pub async fn send(&self, letters: &[DeadLetter]) -> Result<(), String> {
        match self {
            DeadLetterQueue::Memory(m) => {
                let mut q = m.lock().unwrap();
                if q.down {
                    return Err("the in-memory dead-letter queue is down".into());
                }
                for l in letters {
                    q.next += 1;
                    let id = format!("m-{}", q.next);
                    q.messages.push((id, l.body(), false));
                }
                Ok(())
            }
            DeadLetterQueue::Sqs { client, url } => {
                for chunk in letters.chunks(10) {
                    let bodies: Vec<String> = chunk.iter().map(DeadLetter::body).collect();
                    // A batch's bodies share SQS's size limit: large ones go one by one.
                    let groups: Vec<&[String]> =
                        if bodies.iter().map(String::len).sum::<usize>() > MAX_BODY {
                            bodies.chunks(1).collect()
                        } else {
                            vec![&bodies[..]]
                        };
                    for group in groups {
                        let sent = crate::queue::send_batch(client, url, group).await?;
                        if let Some(f) = sent.refused.first() {
                            return Err(format!(
                                "SendMessageBatch refused {} of {}: {f}",
                                sent.refused.len(),
                                group.len(),
                            ));
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Up to ten messages, hidden from other receivers for [`VISIBILITY_SECS`].
    async fn receive(&self, max: usize) -> Result<Vec<Received>, String> {
        let max = max.clamp(1, 10);
        match self {
            DeadLetterQueue::Memory(m) => {
                let mut q = m.lock().unwrap();
                Ok(q.messages
                    .iter_mut()
                    .filter(|(_, _, held)| !*held)
                    .take(max)
                    .map(|(id, body, held)| {
                        *held = true;
                        Received {
                            id: id.clone(),
                            handle: id.clone(),
                            body: body.clone(),
                        }
                    })
                    .collect())
            }
            DeadLetterQueue::Sqs { client, url } => {
                let out = client
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(max as i32)
                    .visibility_timeout(VISIBILITY_SECS)
                    .send()
                    .await
                    .map_err(|e| sqs_error("ReceiveMessage", e))?;
                Ok(out
                    .messages()
                    .iter()
                    .filter_map(|m| {
                        Some(Received {
                            id: m.message_id()?.to_string(),
                            handle: m.receipt_handle()?.to_string(),
                            body: m.body().unwrap_or_default().to_string(),
                        })
                    })
                    .collect())
            }
        }
    }

    /// Deletes (`keep == false`) or makes visible again (`keep == true`) the messages, ten per request.
    async fn finish(&self, messages: &[&Received], keep: bool) -> Result<(), String> {
        match self {
            DeadLetterQueue::Memory(m) => {
                let mut q = m.lock().unwrap();
                let handles: Vec<&str> = messages.iter().map(|r| r.handle.as_str()).collect();
                if keep {
                    for (id, _, held) in q.messages.iter_mut() {
                        if handles.contains(&id.as_str()) {
                            *held = false;
                        }
                    }
                } else {
                    q.messages
                        .retain(|(id, _, _)| !handles.contains(&id.as_str()));
                }
                Ok(())
            }
            DeadLetterQueue::Sqs { client, url } => {
                for chunk in messages.chunks(10) {
                    let failed = if keep {
                        let entries = chunk.iter().enumerate().map(|(i, r)| {
                            aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry::builder()
                                .id(i.to_string())
                                .receipt_handle(&r.handle)
                                .visibility_timeout(0)
                                .build()
                                .map_err(|e| e.to_string())
                        });
                        let out = client
                            .change_message_visibility_batch()
                            .queue_url(url)
                            .set_entries(Some(entries.collect::<Result<Vec<_>, _>>()?))
                            .send()
                            .await
                            .map_err(|e| sqs_error("ChangeMessageVisibilityBatch", e))?;
                        out.failed().len()
                    } else {
                        let entries = chunk.iter().enumerate().map(|(i, r)| {
                            aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                                .id(i.to_string())
                                .receipt_handle(&r.handle)
                                .build()
                                .map_err(|e| e.to_string())
                        });
                        let out = client
                            .delete_message_batch()
                            .queue_url(url)
                            .set_entries(Some(entries.collect::<Result<Vec<_>, _>>()?))
                            .send()
                            .await
                            .map_err(|e| sqs_error("DeleteMessageBatch", e))?;
                        out.failed().len()
                    };
                    if failed > 0 {
                        return Err(format!("{failed} of {} messages not finished", chunk.len()));
                    }
                }
                Ok(())
            }
        }
    }

    /// How many messages the queue holds (SQS: its approximate counts, visible and in flight).
    pub async fn depth(&self) -> Result<usize, String> {
        match self {
            DeadLetterQueue::Memory(m) => Ok(m.lock().unwrap().messages.len()),
            DeadLetterQueue::Sqs { client, url } => {
                use aws_sdk_sqs::types::QueueAttributeName as A;
                let out = client
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(A::ApproximateNumberOfMessages)
                    .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
                    .send()
                    .await
                    .map_err(|e| sqs_error("GetQueueAttributes", e))?;
                let count = |a: A| {
                    out.attributes()
                        .and_then(|m| m.get(&a))
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0)
                };
                Ok(count(A::ApproximateNumberOfMessages)
                    + count(A::ApproximateNumberOfMessagesNotVisible))
            }
        }
    }
}

/// The most a replay takes in one request.
pub const MAX_REPLAY: u64 = 10_000;

/// What a replay did, or in a dry run would do.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    pub dry_run: bool,
    /// Events the bus took (a dry run: 0).
    pub replayed: usize,
    /// Events a dry run found to replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_replay: Option<usize>,
    /// Events the bus refused again: left in the queue.
    pub refused: usize,
    /// Unreadable records seen: left in the queue, never replayed.
    pub unreadable: usize,
    /// Messages the queue holds after the replay (SQS's approximate count).
    pub left: usize,
    /// Whether messages were left unseen for lack of time or of `max`: replay again.
    pub more: bool,
    /// Each event replayed (or found) with what the bus said when the relay gave it up.
    pub events: Vec<Value>,
    /// Each unreadable record with its reason.
    pub unreadable_records: Vec<Value>,
}

/// Puts dead-lettered events back on the bus.
#[derive(Debug)]
pub struct Replayer {
    pub queue: std::sync::Arc<DeadLetterQueue>,
    pub bus: Bus,
}

impl Replayer {
    /// Takes up to `max` messages, stopping before `deadline`; every message it does not delete
    /// is visible again when it answers.
    pub async fn replay(
        &self,
        max: usize,
        dry_run: bool,
        deadline: Instant,
    ) -> Result<ReplayReport, String> {
        let mut report = ReplayReport {
            dry_run,
            ..Default::default()
        };
        let mut held: Vec<Received> = Vec::new();
        let mut seen = 0;
        let result = async {
            while seen < max && Instant::now() < deadline {
                let batch = self.queue.receive(max - seen).await?;
                if batch.is_empty() {
                    return Ok(());
                }
                seen += batch.len();
                let mut events: Vec<(Received, DeadEvent, String)> = Vec::new();
                for m in batch {
                    match serde_json::from_str::<DeadLetter>(&m.body) {
                        Ok(DeadLetter::Event { event, error, .. }) => {
                            events.push((m, *event, error))
                        }
                        Ok(DeadLetter::Unreadable {
                            sequence,
                            keys,
                            reason,
                            dead_at,
                            ..
                        }) => {
                            report.unreadable_records.push(serde_json::json!({
                                "messageId": m.id, "sequence": sequence, "keys": keys,
                                "reason": reason, "deadAt": dead_at,
                            }));
                            held.push(m);
                        }
                        Err(e) => {
                            report.unreadable_records.push(serde_json::json!({
                                "messageId": m.id,
                                "reason": format!("not a dead letter of the relay's: {e}"),
                            }));
                            held.push(m);
                        }
                    }
                }
                for (_, e, error) in &events {
                    report.events.push(serde_json::json!({
                        "id": e.id, "tenantId": e.tenant_id, "kind": e.detail_type, "error": error,
                    }));
                }
                if dry_run {
                    report.would_replay = Some(report.would_replay.unwrap_or(0) + events.len());
                    held.extend(events.into_iter().map(|(m, _, _)| m));
                    continue;
                }
                let detail: Vec<VendorEvent> =
                    events.iter().map(|(_, e, _)| e.detail.clone()).collect();
                let refused = self.bus.publish(&detail).await;
                let (again, taken): (Vec<_>, Vec<_>) = events
                    .into_iter()
                    .partition(|(_, e, _)| refused.iter().any(|r| r.id == e.id));
                if !taken.is_empty() {
                    let done: Vec<&Received> = taken.iter().map(|(m, _, _)| m).collect();
                    // Published: a message not deleted now would only be replayed again, which a
                    // consumer drops by id.
                    self.queue.finish(&done, false).await?;
                    report.replayed += taken.len();
                }
                report.refused += again.len();
                held.extend(again.into_iter().map(|(m, _, _)| m));
                if !refused.is_empty() {
                    // The bus is still refusing: the rest would fare no better now.
                    return Ok(());
                }
            }
            report.more = true;
            Ok::<(), String>(())
        }
        .await;
        report.unreadable = report.unreadable_records.len();
        let held: Vec<&Received> = held.iter().collect();
        let released = self.queue.finish(&held, true).await;
        result?;
        released?;
        report.left = self.queue.depth().await?;
        if report.left == 0 {
            report.more = false;
        }
        metrics::counter!("EventsReplayed").increment(report.replayed as u64);
        Ok(report)
    }
}
