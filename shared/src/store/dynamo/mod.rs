//! The store on one DynamoDB table (the key layout is [`schema`]'s). One file per trait it
//! implements; `change` holds the guarded updates webhooks, syncs and commands share.

mod admin;
mod change;
mod command;
mod deletion;
mod outbox;
mod schema;
mod stats;
mod sync;
mod tenant;
mod transcript;
mod webhook;

pub use schema::{CONTACTS_INDEX, DELIVERIES_INDEX, DUE_INDEX, create_table};

use super::*;
use crate::webhook::{Archived, Mutation};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeValue as AV, ConditionCheck, DeleteRequest, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update, WriteRequest,
};
use change::*;
use schema::*;
use serde_json::{Map, Value};
use std::collections::HashMap;

type Item = HashMap<String, AV>;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AV {
    AV::S(v.into())
}
fn n(v: i64) -> AV {
    AV::N(v.to_string())
}
fn opt_s(v: &Option<String>) -> AV {
    v.as_ref().map_or(AV::Null(true), |v| s(v.as_str()))
}

fn unavailable<E: std::error::Error + ProvideErrorMetadata + 'static, R: std::fmt::Debug>(
    e: aws_sdk_dynamodb::error::SdkError<E, R>,
) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(e).to_string())
}

/// A conditional write's outcome: `Ok(Some(out))` written, `Ok(None)` when its condition failed.
fn conditional<T, E: std::error::Error + ProvideErrorMetadata + 'static, R: std::fmt::Debug>(
    r: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<Option<T>, StoreError> {
    match r {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
        Err(e) => Err(unavailable(e)),
    }
}

fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Malformed(e.to_string()))
}

fn get_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}
fn get_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}
fn get_json(item: &Item, k: &str) -> Map<String, Value> {
    get_s(item, k)
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Opens the connection during init so the first delivery does not pay for the TLS handshake.
    pub async fn warm_up(&self) {
        let _ = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s("#WARMUP"))
            .key("sk", s("#WARMUP"))
            .send()
            .await;
    }

    async fn query_all(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        self.query_pages(pk, None).await
    }

    /// Every item of the partition (whose sort key starts with `prefix`, if given), all pages.
    async fn query_pages(&self, pk: &str, prefix: Option<&str>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start);
            q = match prefix {
                Some(p) => q
                    .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                    .expression_attribute_values(":p", s(p)),
                None => q.key_condition_expression("pk = :pk"),
            };
            let out = q.send().await.map_err(unavailable)?;
            items.extend(out.items().iter().cloned());
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// One page of what is due at `now_ms` in a partition of the `due` index, soonest first.
    async fn due_items(
        &self,
        shard: impl Into<String>,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("dueShard = :s AND dueAt <= :now")
            .expression_attribute_values(":s", s(shard))
            .expression_attribute_values(":now", n(now_ms))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.items.unwrap_or_default())
    }

    /// Reads a keys-only index where `key` is `value`, page by page, handing each page's items to
    /// `page` until it answers false or the pages end.
    async fn query_index(
        &self,
        index: &str,
        key: &str,
        value: String,
        mut page: impl FnMut(&[Item]) -> bool + Send,
    ) -> Result<(), StoreError> {
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(format!("{key} = :k"))
                .expression_attribute_values(":k", s(value.as_str()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            if !page(out.items()) {
                return Ok(());
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(());
            }
        }
    }

    async fn delete_all(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        let requests = keys
            .into_iter()
            .map(|(pk, sk)| {
                let del = DeleteRequest::builder()
                    .key("pk", s(pk))
                    .key("sk", s(sk))
                    .build();
                build(del).map(|d| WriteRequest::builder().delete_request(d).build())
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write_all(requests).await
    }

    /// Items of the partition whose sort key starts with `prefix`.
    async fn query_prefix(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.query_pages(pk, Some(prefix)).await
    }

    async fn write_all(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            for attempt in 0.. {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(unavailable)?;
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt == 5 {
                    return Err(StoreError::Unavailable(
                        "batch write left items unprocessed".into(),
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }

    /// The items with these keys that exist, read consistently: 100 keys per `BatchGetItem`, keys
    /// DynamoDB left unprocessed asked again.
    async fn get_all(&self, keys: Vec<(String, String)>) -> Result<Vec<Item>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut out = Vec::new();
        for chunk in keys.chunks(100) {
            let keys = chunk
                .iter()
                .map(|(pk, sk)| {
                    HashMap::from([
                        ("pk".to_string(), s(pk.as_str())),
                        ("sk".to_string(), s(sk.as_str())),
                    ])
                })
                .collect();
            let mut pending = Some(build(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build(),
            )?);
            let mut backoff = std::time::Duration::from_millis(20);
            while let Some(request) = pending.take() {
                let got = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(unavailable)?;
                out.extend(
                    got.responses()
                        .and_then(|r| r.get(&self.table))
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
                pending = got
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
                if pending.is_some() {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                }
            }
        }
        Ok(out)
    }
}
