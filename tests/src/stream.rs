//! The table's stream as Lambda's event source mapping reads it, for the relay: in memory (the
//! in-memory store's stream), or DynamoDB Streams in the local emulator. Records come out in the
//! Lambda event's shape (`aws_lambda_events::dynamodb::EventRecord`), so the relay reads them as it
//! reads Lambda's.

use aws_lambda_events::dynamodb::EventRecord;
use lever_bridge::relay::{OutboxRecord, Relay, RelayReport};
use serde_json::{Value, json};
use std::collections::HashMap;

pub enum Tap {
    Memory {
        store: lever_bridge::store::memory::InMemoryStore,
        next: usize,
    },
    Dynamo {
        client: aws_sdk_dynamodbstreams::Client,
        stream: String,
        /// Per shard, the last sequence number read.
        read: HashMap<String, Option<String>>,
    },
}

impl Tap {
    pub fn memory(store: &lever_bridge::store::memory::InMemoryStore) -> Tap {
        Tap::Memory {
            store: store.clone(),
            next: 0,
        }
    }

    /// From the start of the table's stream.
    pub async fn dynamo(aws: &aws_config::SdkConfig, table: &str) -> Tap {
        let ddb = aws_sdk_dynamodb::Client::new(aws);
        let stream = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("describe table")
            .table()
            .and_then(|t| t.latest_stream_arn())
            .unwrap_or_else(|| panic!("table {table} has no stream"))
            .to_string();
        Tap::Dynamo {
            client: aws_sdk_dynamodbstreams::Client::new(aws),
            stream,
            read: HashMap::new(),
        }
    }

    /// The records written since the last read, in order per shard.
    pub async fn read(&mut self) -> Vec<EventRecord> {
        match self {
            Tap::Memory { store, next } => {
                let records = store.stream_records(*next);
                *next += records.len();
                records
            }
            Tap::Dynamo {
                client,
                stream,
                read,
            } => {
                let desc = client
                    .describe_stream()
                    .stream_arn(stream.as_str())
                    .send()
                    .await
                    .expect("describe stream");
                let shards: Vec<String> = desc
                    .stream_description()
                    .map(|d| {
                        d.shards()
                            .iter()
                            .filter_map(|s| s.shard_id())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                let mut out = Vec::new();
                for shard in shards {
                    let last = read.entry(shard.clone()).or_default();
                    let mut it = client
                        .get_shard_iterator()
                        .stream_arn(stream.as_str())
                        .shard_id(&shard);
                    it = match last {
                        Some(seq) => it
                            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::AfterSequenceNumber)
                            .sequence_number(seq.as_str()),
                        None => it.shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon),
                    };
                    let mut iterator = it.send().await.expect("shard iterator").shard_iterator;
                    while let Some(i) = iterator {
                        let got = client
                            .get_records()
                            .shard_iterator(i)
                            .send()
                            .await
                            .expect("records");
                        if got.records().is_empty() {
                            break;
                        }
                        for r in got.records() {
                            out.push(lambda_record(r, stream));
                            if let Some(seq) = r.dynamodb().and_then(|d| d.sequence_number()) {
                                *last = Some(seq.to_string());
                            }
                        }
                        iterator = got.next_shard_iterator;
                    }
                }
                out
            }
        }
    }
}

/// A DynamoDB Streams record as Lambda hands it to a function.
fn lambda_record(r: &aws_sdk_dynamodbstreams::types::Record, stream: &str) -> EventRecord {
    let d = r.dynamodb();
    let image = |i: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
        Value::Object(
            i.into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), attribute(v)))
                .collect(),
        )
    };
    let record = json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|n| n.as_str()),
        "eventVersion": r.event_version(),
        "eventSource": "aws:dynamodb",
        "awsRegion": r.aws_region().unwrap_or("us-east-1"),
        "eventSourceARN": stream,
        "dynamodb": {
            "Keys": image(d.and_then(|d| d.keys.as_ref())),
            "NewImage": image(d.and_then(|d| d.new_image.as_ref())),
            "OldImage": image(d.and_then(|d| d.old_image.as_ref())),
            "SequenceNumber": d.and_then(|d| d.sequence_number()),
            "SizeBytes": d.and_then(|d| d.size_bytes()).unwrap_or(0),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    });
    serde_json::from_value(record).expect("a Lambda DynamoDB stream record")
}

/// An attribute value in DynamoDB's JSON.
fn attribute(v: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    match v {
        A::S(s) => json!({"S": s}),
        A::N(n) => json!({"N": n}),
        A::Bool(b) => json!({"BOOL": b}),
        A::Null(b) => json!({"NULL": b}),
        A::Ss(v) => json!({"SS": v}),
        A::Ns(v) => json!({"NS": v}),
        A::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect::<serde_json::Map<_, _>>()})
        }
        A::L(l) => json!({"L": l.iter().map(attribute).collect::<Vec<_>>()}),
        A::B(b) => {
            json!({"B": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b.as_ref())})
        }
        A::Bs(v) => {
            json!({"BS": v.iter().map(|b| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b.as_ref())).collect::<Vec<_>>()})
        }
        _ => json!({"NULL": true}),
    }
}

/// The relay's event source mapping, in a test: reads the stream and relays it in batches; a
/// batch that reports a failure is retried from that record the next time.
pub struct Mapping<S, E, C> {
    pub tap: Tap,
    pub relay: Relay<S, E, C>,
    pending: Vec<EventRecord>,
    pub batch: usize,
}

impl<S, E, C> Mapping<S, E, C>
where
    S: lever_bridge::store::OutboxStore,
    E: lever_bridge::events::EventSink,
    C: lever_bridge::clock::Clock,
{
    pub fn new(tap: Tap, relay: Relay<S, E, C>) -> Self {
        Mapping {
            tap,
            relay,
            pending: Vec::new(),
            batch: 100,
        }
    }

    /// Reads what the stream holds now, without relaying it yet.
    pub async fn poll(&mut self) {
        self.pending.extend(self.tap.read().await);
    }

    /// Relays what the stream holds now, batch by batch, stopping at a failed batch (whose
    /// records from the failure on wait for the next call, as the mapping retries them).
    pub async fn run(&mut self) -> RelayReport {
        self.poll().await;
        let mut total = RelayReport::default();
        while !self.pending.is_empty() {
            let n = self.pending.len().min(self.batch);
            let records: Vec<OutboxRecord> =
                self.pending[..n].iter().map(OutboxRecord::of).collect();
            // Every event the tests' writes owe the vendor keeps to the contract.
            for e in records
                .iter()
                .filter_map(|r| r.events.as_ref().ok())
                .flatten()
            {
                crate::contract::check_event(e);
            }
            let report = self.relay.relay(&records).await;
            total.records += report.records;
            total.published += report.published;
            total.repeats += report.repeats;
            total.dead_lettered += report.dead_lettered;
            total.unreadable += report.unreadable;
            let Some(seq) = report.failed_at else {
                self.pending.drain(..n);
                continue;
            };
            let at = records.iter().position(|r| r.sequence == seq).unwrap_or(0);
            self.pending.drain(..at);
            total.failed_at = Some(seq);
            return total;
        }
        total
    }

    /// Records read but not relayed yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// Whether a stream record (in Lambda's JSON) passes an event source mapping's filter pattern
/// (the event-pattern forms the template uses: nested objects, lists of values, `exists`, `prefix`).
pub fn matches(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(k, p)| match record.get(k) {
            Some(v) if !v.is_null() => matches(p, v),
            _ => p.as_array().is_some_and(|alts| {
                alts.iter()
                    .any(|a| a.get("exists") == Some(&Value::Bool(false)))
            }),
        }),
        Value::Array(alternatives) => alternatives.iter().any(|a| match a {
            Value::Object(op) if op.contains_key("exists") => op["exists"] == Value::Bool(true),
            Value::Object(op) if op.contains_key("prefix") => record
                .as_str()
                .zip(op["prefix"].as_str())
                .is_some_and(|(v, p)| v.starts_with(p)),
            literal => literal == record,
        }),
        literal => literal == record,
    }
}

/// One of the template's event source mappings on the table's stream, run against its function
/// under `cargo lambda watch` as Lambda runs it: records that pass the filter, in batches of its
/// size; a batch failure retried from the failed record; a function error bisected; a record still
/// failing after its retries is given up (logged, as the on-failure destination would hold it).
pub struct StreamMapping {
    pub name: String,
    pub function: String,
    pub filters: Vec<Value>,
    pub batch: usize,
    pub retries: i64,
    pub bisect: bool,
    pub tap: Tap,
    pub invoke_url: String,
}

impl StreamMapping {
    /// From the functions file's mapping entry; `watch` is `cargo lambda watch`'s address.
    pub fn new(spec: &Value, tap: Tap, watch: &str) -> StreamMapping {
        let function = spec["function"].as_str().unwrap_or_default().to_string();
        StreamMapping {
            name: spec["name"].as_str().unwrap_or_default().to_string(),
            invoke_url: format!(
                "{}/2015-03-31/functions/{function}/invocations",
                watch.trim_end_matches('/')
            ),
            function,
            filters: spec["filters"].as_array().cloned().unwrap_or_default(),
            batch: spec["batchSize"].as_u64().unwrap_or(100).max(1) as usize,
            retries: spec["maximumRetryAttempts"].as_i64().unwrap_or(-1),
            bisect: spec["bisectOnError"].as_bool().unwrap_or(false),
            tap,
        }
    }

    fn passes(&self, r: &EventRecord) -> bool {
        let json = serde_json::to_value(r).unwrap_or_default();
        self.filters.is_empty() || self.filters.iter().any(|f| matches(f, &json))
    }

    /// Polls the stream and invokes the function until the process ends.
    pub async fn run(mut self) {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .expect("HTTP client");
        let mut pending: Vec<EventRecord> = Vec::new();
        let (mut attempts, mut size) = (0i64, self.batch);
        loop {
            let fresh: Vec<EventRecord> = self
                .tap
                .read()
                .await
                .into_iter()
                .filter(|r| self.passes(r))
                .collect();
            pending.extend(fresh);
            if pending.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                continue;
            }
            let n = pending.len().min(size);
            let event = json!({"Records": &pending[..n]});
            let answer = http.post(&self.invoke_url).json(&event).send().await;
            let failed: Result<Option<String>, String> = match answer {
                Ok(res)
                    if res.status().is_success()
                        && !res.headers().contains_key("x-amz-function-error") =>
                {
                    let body: Value = res.json().await.unwrap_or_default();
                    Ok(body["batchItemFailures"]
                        .as_array()
                        .and_then(|f| f.first())
                        .and_then(|f| f["itemIdentifier"].as_str())
                        .map(str::to_string))
                }
                Ok(res) => Err(format!("status {}", res.status())),
                Err(e) => Err(e.to_string()),
            };
            match failed {
                Ok(None) => {
                    pending.drain(..n);
                    (attempts, size) = (0, self.batch);
                    continue;
                }
                Ok(Some(seq)) => {
                    let at = pending[..n]
                        .iter()
                        .position(|r| r.change.sequence_number.as_deref() == Some(seq.as_str()))
                        .unwrap_or(0);
                    if at > 0 {
                        attempts = 0;
                    }
                    pending.drain(..at);
                }
                Err(e) => {
                    eprintln!("{}: {} failed: {e}", self.name, self.function);
                    if self.bisect && size > 1 {
                        size = (n / 2).max(1);
                    }
                }
            }
            attempts += 1;
            if self.retries >= 0 && attempts > self.retries {
                let given_up = pending.remove(0);
                eprintln!(
                    "{}: gave up on record {:?} after {attempts} attempts (the on-failure destination)",
                    self.name, given_up.change.sequence_number
                );
                (attempts, size) = (0, self.batch);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

/// One of the template's event source mappings on an SQS queue, run against its function under
/// `cargo lambda watch` as Lambda runs it: up to its batch size per receive, the batch's failures
/// (`batchItemFailures`) left on the queue for their visibility timeout, the rest deleted; a function
/// error leaves the whole batch.
pub struct QueueMapping {
    pub name: String,
    pub function: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch: i32,
    pub sqs: aws_sdk_sqs::Client,
    pub invoke_url: String,
}

impl QueueMapping {
    pub fn new(
        spec: &Value,
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
        queue_arn: String,
        watch: &str,
    ) -> QueueMapping {
        let function = spec["function"].as_str().unwrap_or_default().to_string();
        QueueMapping {
            name: spec["name"].as_str().unwrap_or_default().to_string(),
            invoke_url: format!(
                "{}/2015-03-31/functions/{function}/invocations",
                watch.trim_end_matches('/')
            ),
            function,
            queue_url,
            queue_arn,
            batch: spec["batchSize"].as_i64().unwrap_or(10).clamp(1, 10) as i32,
            sqs,
        }
    }

    /// Polls the queue and invokes the function until the process ends.
    pub async fn run(self) {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .expect("HTTP client");
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(self.batch)
                .wait_time_seconds(1)
                .visibility_timeout(30)
                .send()
                .await;
            let messages = match received {
                Ok(out) => out.messages.unwrap_or_default(),
                Err(e) => {
                    eprintln!("{}: receive failed: {e:?}", self.name);
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            if messages.is_empty() {
                continue;
            }
            let records: Vec<Value> = messages
                .iter()
                .map(|m| {
                    json!({
                        "messageId": m.message_id(),
                        "receiptHandle": m.receipt_handle(),
                        "body": m.body(),
                        "attributes": {},
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": self.queue_arn,
                        "awsRegion": "us-east-1",
                    })
                })
                .collect();
            let answer = http
                .post(&self.invoke_url)
                .json(&json!({"Records": records}))
                .send()
                .await;
            let failed: Vec<String> = match answer {
                Ok(res)
                    if res.status().is_success()
                        && !res.headers().contains_key("x-amz-function-error") =>
                {
                    let body: Value = res.json().await.unwrap_or_default();
                    body["batchItemFailures"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string))
                        .collect()
                }
                other => {
                    eprintln!("{}: {} failed: {other:?}", self.name, self.function);
                    continue;
                }
            };
            for m in &messages {
                if failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
                    continue;
                }
                if let Some(handle) = m.receipt_handle()
                    && let Err(e) = self
                        .sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                {
                    eprintln!("{}: delete failed: {e:?}", self.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_patterns_match_as_lambda_does() {
        let outbox = json!({"dynamodb": {"NewImage": {"outbox": {"S": [{"exists": true}]}}}});
        let with = json!({"dynamodb": {"NewImage": {"pk": {"S": "a"}, "outbox": {"S": "[]"}}}});
        let without = json!({"dynamodb": {"NewImage": {"pk": {"S": "a"}}}});
        let removed = json!({"dynamodb": {"OldImage": {"outbox": {"S": "[]"}}}});
        assert!(matches(&outbox, &with));
        assert!(!matches(&outbox, &without) && !matches(&outbox, &removed));
        let name = json!({"eventName": ["INSERT", "MODIFY"]});
        assert!(matches(&name, &json!({"eventName": "MODIFY"})));
        assert!(!matches(&name, &json!({"eventName": "REMOVE"})));
        let absent = json!({"dynamodb": {"NewImage": {"outbox": [{"exists": false}]}}});
        assert!(matches(&absent, &without) && !matches(&absent, &with));
    }
}
