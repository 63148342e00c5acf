//! The relay: publishes the vendor events the table's stream carries (the outbox), each once.
//!
//! Every write that owes the vendor an event puts it in the `outbox` attribute of an item it
//! changes (`store::OUTBOX_ATTRIBUTE`), in the same write. The `relay` function reads the table's
//! stream (an event source mapping whose filter keeps only images with an outbox), takes from each
//! record the events its new image carries and its old image did not, and publishes them, ten per
//! `PutEvents`. The stream delivers at least once (and the local emulator sometimes twice), so the
//! relay remembers what it published (`OutboxStore`): a repeated record publishes nothing, and a
//! record that could not be published is reported as the batch's first failure, which the mapping
//! retries from (the records before it are done).

use crate::clock::Clock;
use crate::events::{EventSink, VendorEvent, from_outbox};
use crate::store::{OUTBOX_ATTRIBUTE, OutboxStore};
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::Serialize;
use std::collections::HashSet;

/// One stream record as the relay sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    /// The stream's sequence number: what a batch failure names.
    pub sequence: String,
    /// The events the write added, or why they cannot be read.
    pub events: Result<Vec<VendorEvent>, String>,
}

fn outbox(image: &serde_dynamo::Item) -> Result<Vec<VendorEvent>, String> {
    match image.get(OUTBOX_ATTRIBUTE) {
        None => Ok(Vec::new()),
        Some(serde_dynamo::AttributeValue::S(json)) => from_outbox(json),
        Some(_) => Err("the outbox is not a string".into()),
    }
}

impl OutboxRecord {
    /// The events a stream record's write added: those of its new image its old image lacked (a
    /// change to an item that leaves its outbox alone adds none).
    pub fn of(record: &EventRecord) -> OutboxRecord {
        let change = &record.change;
        let events = outbox(&change.new_image).map(|new| {
            let old: HashSet<String> = outbox(&change.old_image)
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.id)
                .collect();
            new.into_iter().filter(|e| !old.contains(&e.id)).collect()
        });
        OutboxRecord {
            sequence: change.sequence_number.clone().unwrap_or_default(),
            events,
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayReport {
    pub records: usize,
    pub published: usize,
    /// Events published before (a repeated record): not published again.
    pub repeats: usize,
    /// The first record not done: the mapping retries the batch from it.
    pub failed_at: Option<String>,
}

pub struct Relay<S, E, C> {
    pub store: S,
    pub events: E,
    pub clock: C,
}

impl<S: OutboxStore, E: EventSink, C: Clock> Relay<S, E, C> {
    pub fn new(store: S, events: E, clock: C) -> Self {
        Relay {
            store,
            events,
            clock,
        }
    }

    /// Publishes the batch's events; records after the first failure are left for the retry.
    pub async fn relay(&self, records: &[OutboxRecord]) -> RelayReport {
        let mut report = RelayReport {
            records: records.len(),
            ..Default::default()
        };
        // A record that cannot be read stops the batch there (after bisecting and retries, the
        // mapping sends it to the on-failure queue): nothing is skipped silently.
        let readable = records
            .iter()
            .position(|r| r.events.is_err())
            .unwrap_or(records.len());
        if let Some(bad) = records.get(readable) {
            tracing::error!(sequence = bad.sequence.as_str(), error = ?bad.events.as_ref().err(), "unreadable outbox record");
            report.failed_at = Some(bad.sequence.clone());
        }
        let records = &records[..readable];
        let mut ids: Vec<String> = Vec::new();
        for r in records {
            for e in r.events.as_ref().into_iter().flatten() {
                if !ids.contains(&e.id) {
                    ids.push(e.id.clone());
                }
            }
        }
        if ids.is_empty() {
            return report;
        }
        let done = match self.store.relayed(&ids).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(error = %e, "the relay's record is unavailable");
                report.failed_at = Some(records[0].sequence.clone());
                return report;
            }
        };
        let mut seen = HashSet::new();
        let pending: Vec<VendorEvent> = records
            .iter()
            .flat_map(|r| r.events.as_ref().into_iter().flatten())
            .filter(|e| !done.contains(&e.id) && seen.insert(e.id.clone()))
            .cloned()
            .collect();
        report.repeats = ids.len() - pending.len();
        if report.repeats > 0 {
            metrics::counter!("EventsRepeated").increment(report.repeats as u64);
        }
        // Each `PutEvents` worth (ten) is recorded as published as soon as it is, so a relay that
        // dies mid-batch leaves at most one request's events to publish again.
        let mut out: HashSet<String> = done;
        for chunk in pending.chunks(10) {
            let rejected: HashSet<String> = self.events.publish(chunk).await.into_iter().collect();
            let published: Vec<String> = chunk
                .iter()
                .map(|e| e.id.clone())
                .filter(|id| !rejected.contains(id))
                .collect();
            report.published += published.len();
            metrics::counter!("EventsRelayed").increment(published.len() as u64);
            out.extend(published.iter().cloned());
            if !published.is_empty()
                && let Err(e) = self
                    .store
                    .mark_relayed(&published, self.clock.now_ms())
                    .await
            {
                // Published all the same; a repeat of these records could publish them again.
                tracing::warn!(error = %e, events = published.len(), "published events not recorded as such");
            }
            if published.is_empty() {
                // The bus took none of them: the rest would fare no better now.
                break;
            }
        }
        let unpublished = pending.len() - report.published;
        if let Some(first) = records.iter().find(|r| {
            r.events
                .as_ref()
                .is_ok_and(|es| es.iter().any(|e| !out.contains(&e.id)))
        }) {
            tracing::warn!(
                unpublished,
                sequence = first.sequence.as_str(),
                "events not published: the batch is retried from this record"
            );
            metrics::counter!("RelayFailed").increment(unpublished as u64);
            report.failed_at = Some(first.sequence.clone());
        }
        report
    }

    /// A Lambda DynamoDB stream event: its batch failure, if any, for the event source mapping.
    pub async fn handle(&self, event: &Event) -> DynamoDbEventResponse {
        let records: Vec<OutboxRecord> = event.records.iter().map(OutboxRecord::of).collect();
        let report = self.relay(&records).await;
        tracing::info!(
            records = report.records,
            published = report.published,
            repeats = report.repeats,
            "relay batch"
        );
        let mut response = DynamoDbEventResponse::default();
        if let Some(seq) = report.failed_at {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(seq);
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// The invocation's payload, as Lambda passes it: a batch that is not a stream event fails the
    /// invocation, so the mapping retries it and finally hands it to its on-failure destination.
    pub async fn handle_payload(
        &self,
        payload: serde_json::Value,
    ) -> Result<DynamoDbEventResponse, crate::queue::Unreadable> {
        let event: Event =
            serde_json::from_value(payload).map_err(|e| crate::queue::Unreadable {
                source_name: "DynamoDB stream",
                message: e.to_string(),
            })?;
        Ok(self.handle(&event).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::events::{InMemoryEvents, to_outbox};
    use crate::store::memory::InMemoryStore;
    use serde_json::json;

    fn event(id: &str) -> VendorEvent {
        VendorEvent::outcome(id.into(), "acme", "pushDone", None, json!({}), 1)
    }

    fn record(seq: &str, new: Option<&[VendorEvent]>, old: Option<&[VendorEvent]>) -> EventRecord {
        let image = |e: Option<&[VendorEvent]>| match e {
            Some(e) => json!({"pk": {"S": "x"}, "outbox": {"S": to_outbox(e)}}),
            None => json!({"pk": {"S": "x"}}),
        };
        serde_json::from_value(json!({
            "eventID": seq,
            "eventName": "MODIFY",
            "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1",
            "dynamodb": {"SequenceNumber": seq, "SizeBytes": 1, "NewImage": image(new), "OldImage": image(old)},
        }))
        .unwrap()
    }

    #[test]
    fn a_record_carries_what_its_write_added_to_the_outbox() {
        let (a, b) = (event("a"), event("b"));
        let added = OutboxRecord::of(&record(
            "1",
            Some(&[a.clone(), b.clone()]),
            Some(std::slice::from_ref(&a)),
        ));
        assert_eq!(added.events, Ok(vec![b]));
        let one = std::slice::from_ref(&a);
        let untouched = OutboxRecord::of(&record("2", Some(one), Some(one)));
        assert_eq!(untouched.events, Ok(vec![]));
        let mut bad = record("3", None, None);
        bad.change.new_image.insert(
            "outbox".into(),
            serde_dynamo::AttributeValue::S("not json".into()),
        );
        assert!(OutboxRecord::of(&bad).events.is_err());
    }

    /// A payload that is not a stream batch used to be answered with no failures, which the mapping
    /// takes for a batch relayed in full: its events were never published. It now fails.
    #[tokio::test]
    async fn a_batch_that_is_not_a_stream_event_fails_the_invocation() {
        let bus = std::sync::Arc::new(InMemoryEvents::default());
        let relay = Relay::new(InMemoryStore::default(), bus.clone(), ManualClock::at(1));
        let err = relay
            .handle_payload(json!({"Records": [{"eventID": 7, "dynamodb": "?"}]}))
            .await
            .expect_err("an unreadable batch fails");
        assert!(
            err.to_string()
                .starts_with("not a readable DynamoDB stream event"),
            "{err}"
        );
        let ok = relay
            .handle_payload(
                serde_json::to_value(json!({"Records": [record("1", Some(&[event("a")]), None)]}))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(ok.batch_item_failures.is_empty());
        assert_eq!(bus.events().len(), 1);
    }

    #[tokio::test]
    async fn published_once_and_failures_name_the_first_unpublished_record() {
        let store = InMemoryStore::default();
        let bus = std::sync::Arc::new(InMemoryEvents::default());
        let relay = Relay::new(store, bus.clone(), ManualClock::at(1));
        let batch = vec![
            OutboxRecord::of(&record("1", Some(&[event("a")]), None)),
            OutboxRecord::of(&record("2", Some(&[event("b"), event("c")]), None)),
        ];
        // The bus refuses `a` and `b`: `c` goes out, and the batch fails at `a`'s record.
        bus.fail_next(2);
        let first = relay.relay(&batch).await;
        assert_eq!(
            (first.published, first.failed_at.as_deref()),
            (1, Some("1"))
        );
        // The mapping retries from that record: `c` is not published again.
        let again = relay.relay(&batch).await;
        assert_eq!(
            (again.published, again.repeats, again.failed_at),
            (2, 1, None)
        );
        let repeat = relay.relay(&batch).await;
        assert_eq!((repeat.published, repeat.repeats), (0, 3));
        let ids: Vec<String> = bus.events().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["c", "a", "b"]);
        // An unreadable record stops the batch there, after the records before it.
        let mut bad = record("4", None, None);
        bad.change.new_image.insert(
            "outbox".into(),
            serde_dynamo::AttributeValue::S("[1]".into()),
        );
        let batch = vec![
            OutboxRecord::of(&record("3", Some(&[event("d")]), None)),
            OutboxRecord::of(&bad),
        ];
        let report = relay.relay(&batch).await;
        assert_eq!(
            (report.published, report.failed_at.as_deref()),
            (1, Some("4"))
        );
    }
}
