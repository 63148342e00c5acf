use super::*;
use crate::events::{VendorEvent, to_outbox};
use std::collections::HashSet;

impl Inner {
    /// Appends a stream record for a write that carried `events`, as DynamoDB Streams would
    /// (the new image's outbox; the relay reads it as it reads the real stream).
    pub(super) fn emit(&mut self, events: &[VendorEvent]) {
        if events.is_empty() {
            return;
        }
        let sequence = format!("{:021}", self.stream.len() + 1);
        self.stream.push(serde_json::json!({
            "eventID": sequence,
            "eventName": "INSERT",
            "awsRegion": "local",
            "eventSource": "aws:dynamodb",
            "dynamodb": {
                "SequenceNumber": sequence,
                "SizeBytes": 0,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
                "NewImage": {OUTBOX_ATTRIBUTE: {"S": to_outbox(events)}},
            },
        }));
    }
}

impl InMemoryStore {
    /// The stream's records from position `from` on (what a test relays, as the event source
    /// mapping would).
    pub fn stream_records(&self, from: usize) -> Vec<aws_lambda_events::dynamodb::EventRecord> {
        let s = self.0.lock().unwrap();
        s.stream
            .get(from..)
            .unwrap_or_default()
            .iter()
            .map(|r| serde_json::from_value(r.clone()).expect("a stream record reads back"))
            .collect()
    }
}

impl OutboxStore for InMemoryStore {
    async fn relayed(&self, ids: &[String]) -> Result<HashSet<String>, StoreError> {
        let s = self.0.lock().unwrap();
        Ok(ids
            .iter()
            .filter(|id| s.relayed.contains(*id))
            .cloned()
            .collect())
    }

    async fn mark_relayed(&self, ids: &[String], _now_ms: i64) -> Result<(), StoreError> {
        self.0.lock().unwrap().relayed.extend(ids.iter().cloned());
        Ok(())
    }
}
