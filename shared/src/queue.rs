//! One way to take work from SQS: a batch whose failed messages are reported back (so only they are
//! delivered again), or, when invoked directly (`cargo lambda invoke`), a single item answered in full.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::StreamExt;
use serde_json::Value;
use std::future::Future;

/// What became of one item: whether the queue should deliver it again, and the answer to show.
pub struct Handled {
    pub redeliver: bool,
    pub answer: Value,
}

/// A batch an event source delivered that the function cannot read. The invocation fails with it,
/// so Lambda delivers the whole batch again (and, past the source's retries, to its dead-letter
/// destination) instead of counting its messages as handled.
#[derive(Debug, thiserror::Error)]
#[error("not a readable {source_name} event: {message}")]
pub struct Unreadable {
    pub source_name: &'static str,
    pub message: String,
}

impl From<Unreadable> for lambda_runtime::Diagnostic {
    fn from(e: Unreadable) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "Unreadable".into(),
            error_message: e.to_string(),
        }
    }
}

/// Runs `handle` on each record of an SQS event (at most `concurrency` at once) or on the payload
/// itself when it is not an SQS event.
pub async fn each_item<F, Fut>(
    payload: Value,
    concurrency: usize,
    handle: F,
) -> Result<Value, Unreadable>
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = Handled>,
{
    if payload.get("Records").is_none() {
        return Ok(handle(payload).await.answer);
    }
    let event: SqsEvent = serde_json::from_value(payload).map_err(|e| Unreadable {
        source_name: "SQS",
        message: e.to_string(),
    })?;
    let handle = &handle;
    let results: Vec<(String, bool)> = futures::stream::iter(event.records)
        .map(|record| async move {
            let id = record.message_id.unwrap_or_default();
            let redeliver =
                match serde_json::from_str::<Value>(record.body.as_deref().unwrap_or("")) {
                    Ok(body) => handle(body).await.redeliver,
                    Err(e) => {
                        // Left to the queue's redrive policy: it ends in the dead-letter queue, visible.
                        tracing::error!(message_id = id, error = %e, "message body is not JSON");
                        true
                    }
                };
            (id, redeliver)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for (id, redeliver) in results {
        if redeliver {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    Ok(serde_json::to_value(response).unwrap_or(Value::Null))
}

/// What one `SendMessageBatch` did: the indexes SQS took, and a line for each it refused.
#[derive(Debug, Default)]
pub struct SentBatch {
    pub accepted: Vec<usize>,
    pub refused: Vec<String>,
}

/// Sends up to ten bodies in one `SendMessageBatch` (the one way this crate sends to SQS).
pub async fn send_batch(
    client: &aws_sdk_sqs::Client,
    url: &str,
    bodies: &[String],
) -> Result<SentBatch, String> {
    let entries = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(b)
                .build()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = client
        .send_message_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| {
            format!(
                "SendMessageBatch failed: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?;
    Ok(SentBatch {
        accepted: out
            .successful()
            .iter()
            .filter_map(|s| s.id().parse().ok())
            .collect(),
        refused: out
            .failed()
            .iter()
            .map(|f| {
                format!(
                    "entry {}: {} {}",
                    f.id(),
                    f.code(),
                    f.message().unwrap_or_default()
                )
            })
            .collect(),
    })
}
