//! The relay: publishes the vendor events the table's stream carries (the outbox), each once.
//!
//! Every write that owes the vendor an event puts it in the `outbox` attribute of an item it
//! changes (`store::OUTBOX_ATTRIBUTE`), in the same write. The `relay` function reads the table's
//! stream (an event source mapping whose filter keeps only images with an outbox), takes from each
//! record the events its new image carries and its old image did not, and publishes them, ten per
//! `PutEvents`. The stream delivers at least once (and the local emulator sometimes twice), so the
//! relay remembers what it published (`OutboxStore`): a repeated record publishes nothing.
//!
//! What the bus still refuses after the sink's retries, and a record whose outbox cannot be read,
//! go whole to the relay's dead-letter queue ([`dead_letters`]) and the batch goes on: nothing holds
//! back the records behind them, and nothing is lost when an item's next write replaces its outbox.
//! Only the relay itself failing (its record of what it published, the dead-letter queue) fails the
//! batch at its first record not done, which the mapping retries from.

pub mod dead_letters;

use crate::clock::Clock;
use crate::events::{EventSink, VendorEvent, from_outbox};
use crate::store::{OUTBOX_ATTRIBUTE, OutboxStore};
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use dead_letters::{DeadLetter, DeadLetterQueue};
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// One stream record as the relay sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    /// The stream's sequence number: what a batch failure names.
    pub sequence: String,
    /// The events the write added, or why they cannot be read.
    pub events: Result<Vec<VendorEvent>, String>,
    /// An unreadable record's keys and new image (DynamoDB JSON), for its dead letter.
    pub raw: Option<(Value, Value)>,
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
        let raw = events.is_err().then(|| {
            (
                serde_json::to_value(&change.keys).unwrap_or_default(),
                serde_json::to_value(&change.new_image).unwrap_or_default(),
            )
        });
        OutboxRecord {
            sequence: change.sequence_number.clone().unwrap_or_default(),
            events,
            raw,
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayReport {
    pub records: usize,
    pub published: usize,
    /// Events published (or dead-lettered) before (a repeated record): not published again.
    pub repeats: usize,
    /// Events the bus refused, now in the dead-letter queue.
    pub dead_lettered: usize,
    /// Records whose outbox could not be read, now in the dead-letter queue.
    pub unreadable: usize,
    /// The first record not done: the mapping retries the batch from it.
    pub failed_at: Option<String>,
}

pub struct Relay<S, E, C> {
    pub store: S,
    pub events: E,
    pub dead_letters: Arc<DeadLetterQueue>,
    pub clock: C,
}

impl<S: OutboxStore, E: EventSink, C: Clock> Relay<S, E, C> {
    pub fn new(store: S, events: E, dead_letters: Arc<DeadLetterQueue>, clock: C) -> Self {
        Relay {
            store,
            events,
            dead_letters,
            clock,
        }
    }

    /// Publishes the batch's events; what the bus refuses and what cannot be read is
    /// dead-lettered. Fails at the first record not done only when the relay itself fails.
    pub async fn relay(&self, records: &[OutboxRecord]) -> RelayReport {
        let mut report = RelayReport {
            records: records.len(),
            ..Default::default()
        };
        let now = self.clock.now_ms();
        // Per record, the dead letters it owes.
        let mut letters: Vec<(usize, DeadLetter)> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if let Err(reason) = &r.events {
                tracing::error!(
                    sequence = r.sequence.as_str(),
                    reason,
                    "unreadable outbox record"
                );
                let (keys, image) = r.raw.clone().unwrap_or_default();
                letters.push((
                    i,
                    DeadLetter::unreadable(&r.sequence, keys, image, reason, now),
                ));
                report.unreadable += 1;
            }
        }
        let mut ids: Vec<String> = Vec::new();
        for r in records {
            for e in r.events.as_ref().into_iter().flatten() {
                if !ids.contains(&e.id) {
                    ids.push(e.id.clone());
                }
            }
        }
        let done = if ids.is_empty() {
            HashSet::new()
        } else {
            match self.store.relayed(&ids).await {
                Ok(done) => done,
                Err(e) => {
                    tracing::warn!(error = %e, "the relay's record is unavailable");
                    report.failed_at = records.first().map(|r| r.sequence.clone());
                    return report;
                }
            }
        };
        // Each event with the first record that carries it.
        let mut first_of: HashMap<&str, usize> = HashMap::new();
        let mut pending: Vec<&VendorEvent> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            for e in r.events.as_ref().into_iter().flatten() {
                if !done.contains(&e.id) && !first_of.contains_key(e.id.as_str()) {
                    first_of.insert(&e.id, i);
                    pending.push(e);
                }
            }
        }
        report.repeats = ids.len() - pending.len();
        if report.repeats > 0 {
            metrics::counter!("EventsRepeated").increment(report.repeats as u64);
        }
        // Each `PutEvents` worth (ten) is recorded as published as soon as it is, so a relay that
        // dies mid-batch leaves at most one request's events to publish again.
        let mut refused_ids: Vec<String> = Vec::new();
        for chunk in pending.chunks(10) {
            let events: Vec<VendorEvent> = chunk.iter().map(|e| (*e).clone()).collect();
            let refused = self.events.publish(&events).await;
            let published: Vec<String> = chunk
                .iter()
                .filter(|e| !refused.iter().any(|r| r.id == e.id))
                .map(|e| e.id.clone())
                .collect();
            report.published += published.len();
            metrics::counter!("EventsRelayed").increment(published.len() as u64);
            if !published.is_empty()
                && let Err(e) = self.store.mark_relayed(&published, now).await
            {
                // Published all the same; a repeat of these records could publish them again.
                tracing::warn!(error = %e, events = published.len(), "published events not recorded as such");
            }
            for r in refused {
                let Some(e) = chunk.iter().find(|e| e.id == r.id) else {
                    continue;
                };
                let at = first_of[e.id.as_str()];
                tracing::warn!(
                    event = e.id.as_str(),
                    error = r.error.as_str(),
                    "the bus refused an event: dead-lettered"
                );
                letters.push((
                    at,
                    DeadLetter::event(e, &r.error, &records[at].sequence, now),
                ));
                refused_ids.push(r.id);
            }
        }
        if letters.is_empty() {
            return report;
        }
        letters.sort_by_key(|(i, _)| *i);
        let body: Vec<DeadLetter> = letters.iter().map(|(_, l)| l.clone()).collect();
        match self.dead_letters.send(&body).await {
            Ok(()) => {
                report.dead_lettered = refused_ids.len();
                metrics::counter!("EventsDeadLettered").increment(refused_ids.len() as u64);
                metrics::counter!("RecordsUnreadable").increment(report.unreadable as u64);
                // Kept by the queue now: a repeat of their records does not send them again.
                if !refused_ids.is_empty()
                    && let Err(e) = self.store.mark_relayed(&refused_ids, now).await
                {
                    tracing::warn!(error = %e, events = refused_ids.len(), "dead-lettered events not recorded as such");
                }
            }
            Err(e) => {
                // The relay itself failing: the mapping retries from the first record not done.
                let first = &records[letters[0].0];
                tracing::error!(
                    error = e.as_str(),
                    sequence = first.sequence.as_str(),
                    "the dead-letter queue refused: the batch is retried from this record"
                );
                metrics::counter!("RelayFailed").increment(letters.len() as u64);
                report.unreadable = 0;
                report.failed_at = Some(first.sequence.clone());
            }
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
            dead_lettered = report.dead_lettered,
            unreadable = report.unreadable,
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
        let bus = Arc::new(InMemoryEvents::default());
        let (relay, _) = relay_on(&bus);
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

    fn relay_on(
        bus: &Arc<InMemoryEvents>,
    ) -> (
        Relay<InMemoryStore, Arc<InMemoryEvents>, ManualClock>,
        Arc<DeadLetterQueue>,
    ) {
        let queue = Arc::new(DeadLetterQueue::memory());
        let relay = Relay::new(
            InMemoryStore::default(),
            bus.clone(),
            queue.clone(),
            ManualClock::at(1),
        );
        (relay, queue)
    }

    fn poison(seq: &str) -> EventRecord {
        let mut bad = record(seq, None, None);
        bad.change.new_image.insert(
            "outbox".into(),
            serde_dynamo::AttributeValue::S("[1]".into()),
        );
        bad
    }

    /// The bus refusing used to fail the batch at the refused event's record until the mapping
    /// gave up on it (its event lost); the refused events now wait, whole, in the dead-letter
    /// queue, and the batch goes on.
    #[tokio::test]
    async fn refused_events_are_dead_lettered_whole_and_the_batch_goes_on() {
        let bus = Arc::new(InMemoryEvents::default());
        let (relay, queue) = relay_on(&bus);
        let batch = vec![
            OutboxRecord::of(&record("1", Some(&[event("a")]), None)),
            OutboxRecord::of(&record("2", Some(&[event("b"), event("c")]), None)),
        ];
        // The bus refuses `a` and `b` through every retry: `c` goes out, `a` and `b` are kept.
        bus.fail_next(2);
        let first = relay.relay(&batch).await;
        assert_eq!(
            (first.published, first.dead_lettered, first.failed_at),
            (1, 2, None)
        );
        let letters = queue.letters();
        let kept: Vec<(&str, &str)> = letters
            .iter()
            .map(|l| match l {
                DeadLetter::Event {
                    event, sequence, ..
                } => (event.id.as_str(), sequence.as_str()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kept, [("a", "1"), ("b", "2")]);
        let DeadLetter::Event {
            event: e, error, ..
        } = &letters[0]
        else {
            unreachable!()
        };
        assert_eq!(
            (
                e.source.as_str(),
                e.detail_type.as_str(),
                e.tenant_id.as_str()
            ),
            (crate::events::SOURCE, "pushDone", "acme")
        );
        assert!(error.contains("InternalFailure"), "{error}");
        // A repeat of the records publishes nothing and dead-letters nothing again.
        let repeat = relay.relay(&batch).await;
        assert_eq!(
            (repeat.published, repeat.dead_lettered, repeat.repeats),
            (0, 0, 3)
        );
        assert_eq!(queue.letters().len(), 2);
        let ids: Vec<String> = bus.events().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["c"]);
    }

    /// An unreadable record used to stop its batch there: it and every record behind it waited
    /// for the mapping to give up. It is dead-lettered with its image and reason instead.
    #[tokio::test]
    async fn a_poison_record_is_dead_lettered_and_the_records_behind_it_go_out() {
        let bus = Arc::new(InMemoryEvents::default());
        let (relay, queue) = relay_on(&bus);
        let batch = vec![
            OutboxRecord::of(&record("1", Some(&[event("a")]), None)),
            OutboxRecord::of(&poison("2")),
            OutboxRecord::of(&record("3", Some(&[event("b")]), None)),
        ];
        let report = relay.relay(&batch).await;
        assert_eq!(
            (report.published, report.unreadable, report.failed_at),
            (2, 1, None)
        );
        let ids: Vec<String> = bus.events().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["a", "b"]);
        let [
            DeadLetter::Unreadable {
                sequence,
                new_image,
                reason,
                ..
            },
        ] = &queue.letters()[..]
        else {
            panic!("{:?}", queue.letters())
        };
        assert_eq!(sequence, "2");
        assert!(
            reason.starts_with("the outbox is not a list of vendor events"),
            "{reason}"
        );
        assert_eq!(new_image.as_ref().unwrap()["outbox"]["S"], "[1]");
    }

    /// Only the relay itself failing fails the batch: a dead-letter queue that refuses leaves the
    /// batch to the mapping from the first record whose letter was not kept.
    #[tokio::test]
    async fn a_dead_letter_queue_that_refuses_fails_the_batch_at_its_first_letter() {
        let bus = Arc::new(InMemoryEvents::default());
        let (relay, queue) = relay_on(&bus);
        queue.set_down(true);
        let batch = vec![
            OutboxRecord::of(&record("1", Some(&[event("a")]), None)),
            OutboxRecord::of(&poison("2")),
            OutboxRecord::of(&record("3", Some(&[event("b")]), None)),
        ];
        bus.fail_next(1);
        let report = relay.relay(&batch).await;
        assert_eq!(
            (report.published, report.failed_at.as_deref()),
            (1, Some("1"))
        );
        // The retry from that record: `b` is a repeat, `a` and the poison record are kept now.
        queue.set_down(false);
        let again = relay.relay(&batch).await;
        assert_eq!(
            (again.published, again.repeats, again.failed_at),
            (1, 1, None)
        );
        assert_eq!(queue.letters().len(), 1, "the poison record alone");
        let ids: Vec<String> = bus.events().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["b", "a"]);
    }

    /// A letter too large for SQS keeps its keys and reason, not the image.
    #[test]
    fn an_image_too_large_for_the_queue_is_left_out() {
        let image = json!({"outbox": {"S": "x".repeat(300 * 1024)}});
        let l = DeadLetter::unreadable("9", json!({"pk": {"S": "k"}}), image, "bad", 1);
        assert!(l.body().len() < 256 * 1024);
        let DeadLetter::Unreadable {
            new_image,
            reason,
            keys,
            ..
        } = l
        else {
            unreachable!()
        };
        assert!(new_image.is_none() && reason.contains("read the item by its keys"));
        assert_eq!(keys["pk"]["S"], "k");
    }
}
