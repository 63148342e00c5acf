//! The store on one DynamoDB table (`pk`, `sk`; TTL on `expiresAt`).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | tenant | `T#<tenant>` | `#TENANT` |
//! | dedup record of a delivery | `T#<tenant>#D#<token>` | `#DEDUP` |
//! | candidate (stage, archive, hired; tombstone once deleted) | `T#<tenant>#O#<opportunity>` | `#CANDIDATE` |
//! | application / interview of a candidate | `T#<tenant>#O#<opportunity>` | `APP#<id>` / `IV#<id>` |
//! | contact | `T#<tenant>#C#<contact>` | `#CONTACT` |
//!
//! Attribute names are compound words so none is a DynamoDB reserved word. Each field group carries
//! the `triggeredAt` that set it, and every write is guarded by it: older deliveries never win.

use super::*;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeValue as AV, ConditionCheck, DeleteRequest, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update, WriteRequest,
};
use std::collections::HashMap;

type Item = HashMap<String, AV>;

const SK_CANDIDATE: &str = "#CANDIDATE";
const SK_DEDUP: &str = "#DEDUP";
const SK_CONTACT: &str = "#CONTACT";
const SK_TENANT: &str = "#TENANT";
const GUARD: &str = "(attribute_not_exists(changedAt) OR changedAt < :t)";

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
fn pk_opp(t: &str, o: &str) -> String {
    format!("T#{t}#O#{o}")
}
fn pk_dedup(d: &Delivery<'_>) -> String {
    format!("T#{}#D#{}", d.tenant, d.token)
}
fn pk_contact(t: &str, c: &str) -> String {
    format!("T#{t}#C#{c}")
}

fn unavailable<E: std::error::Error + ProvideErrorMetadata + 'static, R: std::fmt::Debug>(
    e: aws_sdk_dynamodb::error::SdkError<E, R>,
) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(e).to_string())
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

fn dedup_record(item: &Item) -> DedupRecord {
    DedupRecord {
        done: item
            .get("isDone")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        lease_until: get_n(item, "leaseUntil").unwrap_or(0),
        event: get_s(item, "eventJson"),
    }
}

/// An update of one item: key, expression, condition and values.
struct Change {
    pk: String,
    sk: String,
    update: String,
    condition: String,
    values: Vec<(&'static str, AV)>,
}

impl Change {
    fn into_update(self, table: &str) -> Result<Update, StoreError> {
        let mut b = Update::builder()
            .table_name(table)
            .key("pk", s(self.pk))
            .key("sk", s(self.sk))
            .update_expression(self.update)
            .condition_expression(self.condition);
        for (k, v) in self.values {
            b = b.expression_attribute_values(k, v);
        }
        build(b.build())
    }
}

/// The guarded update a mutation makes, and whether it needs the candidate not to be deleted.
fn change_for(tenant: &str, m: &Mutation, t: i64, expires_at: i64) -> (Change, Option<String>) {
    let not_deleted = "attribute_not_exists(deletedAt)";
    let candidate = |opp: &str, set: &str, at: &str, mut values: Vec<(&'static str, AV)>| {
        values.extend([(":o", s(opp)), (":t", n(t))]);
        Change {
            pk: pk_opp(tenant, opp),
            sk: SK_CANDIDATE.into(),
            update: format!("SET opportunityId = :o, {set}"),
            condition: format!("{not_deleted} AND (attribute_not_exists({at}) OR {at} < :t)"),
            values,
        }
    };
    match m {
        Mutation::Stage { opportunity, to, contact, .. } => {
            let (set, mut values) = ("stageId = :v, stageSince = :t", vec![(":v", s(to.as_str()))]);
            let set = match contact {
                Some(c) => {
                    values.push((":c", s(c.as_str())));
                    format!("{set}, contactId = if_not_exists(contactId, :c)")
                }
                None => set.to_string(),
            };
            (candidate(opportunity, &set, "stageSince", values), None)
        }
        Mutation::Archive { opportunity, to, .. } => {
            let v = to.as_ref().map_or(AV::Null(true), |a| {
                AV::M(HashMap::from([
                    ("reason".to_string(), opt_s(&a.reason)),
                    ("archivedAt".to_string(), a.archived_at.map_or(AV::Null(true), n)),
                ]))
            });
            (candidate(opportunity, "archiveState = :v, archiveAt = :t", "archiveAt", vec![(":v", v)]), None)
        }
        Mutation::Hired { opportunity } => {
            (candidate(opportunity, "isHired = :v, hiredAt = :t", "hiredAt", vec![(":v", AV::Bool(true))]), None)
        }
        Mutation::Deleted { opportunity } => {
            let mut c = candidate(opportunity, "deletedAt = :t, expiresAt = :x", "deletedAt", vec![(":x", n(expires_at))]);
            c.condition = not_deleted.into();
            (c, None)
        }
        Mutation::Application { opportunity, application, posting } => (
            Change {
                pk: pk_opp(tenant, opportunity),
                sk: format!("APP#{application}"),
                update: "SET applicationId = :a, postingId = :p, changedAt = :t".into(),
                condition: GUARD.into(),
                values: vec![(":a", s(application.as_str())), (":p", opt_s(posting)), (":t", n(t))],
            },
            Some(pk_opp(tenant, opportunity)),
        ),
        Mutation::InterviewUpsert { opportunity, interview, panel, data } => (
            Change {
                pk: pk_opp(tenant, opportunity),
                sk: format!("IV#{interview}"),
                update: "SET interviewId = :i, panelId = :p, payloadJson = :d, changedAt = :t REMOVE deletedAt, expiresAt".into(),
                condition: GUARD.into(),
                values: vec![
                    (":i", s(interview.as_str())),
                    (":p", opt_s(panel)),
                    (":d", s(Value::Object(data.clone()).to_string())),
                    (":t", n(t)),
                ],
            },
            Some(pk_opp(tenant, opportunity)),
        ),
        // A tombstone, so an older create or update arriving late cannot bring the interview back.
        Mutation::InterviewDelete { opportunity, interview, .. } => (
            Change {
                pk: pk_opp(tenant, opportunity),
                sk: format!("IV#{interview}"),
                update: "SET interviewId = :i, changedAt = :t, deletedAt = :t, expiresAt = :x REMOVE payloadJson, panelId".into(),
                condition: GUARD.into(),
                values: vec![(":i", s(interview.as_str())), (":t", n(t)), (":x", n(expires_at))],
            },
            Some(pk_opp(tenant, opportunity)),
        ),
        Mutation::Contact { contact, data } => (
            Change {
                pk: pk_contact(tenant, contact),
                sk: SK_CONTACT.into(),
                update: "SET contactId = :c, payloadJson = :d, changedAt = :t".into(),
                condition: GUARD.into(),
                values: vec![(":c", s(contact.as_str())), (":d", s(Value::Object(data.clone()).to_string())), (":t", n(t))],
            },
            None,
        ),
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
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

    fn claim_put(&self, d: &Delivery<'_>, event: &str, now_ms: i64) -> Result<Put, StoreError> {
        build(
            Put::builder()
                .table_name(&self.table)
                .item("pk", s(pk_dedup(d)))
                .item("sk", s(SK_DEDUP))
                .item("isDone", AV::Bool(false))
                .item("leaseUntil", n(now_ms + LEASE_MS))
                .item("eventJson", s(event))
                .item("eventKind", s(d.kind.as_str()))
                .item("triggeredAt", n(d.triggered_at))
                .item("expiresAt", n(d.expires_at_secs(now_ms)))
                // DynamoDB's TTL deletes late: an expired record counts as absent.
                .condition_expression("attribute_not_exists(pk) OR expiresAt < :now")
                .expression_attribute_values(":now", n(now_ms / 1000))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build(),
        )
    }

    /// The dedup record as it stands now, read consistently.
    async fn dedup(&self, d: &Delivery<'_>) -> Result<DedupRecord, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk_dedup(d)))
            .key("sk", s(SK_DEDUP))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        // Gone between the failed write and this read (expired and deleted): a retry will claim it.
        out.item().map(dedup_record).ok_or(StoreError::Contended)
    }

    async fn update_dedup(
        &self,
        d: &Delivery<'_>,
        update: &str,
        condition: &str,
        values: &[(&str, AV)],
    ) -> Result<bool, StoreError> {
        let mut b = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk_dedup(d)))
            .key("sk", s(SK_DEDUP))
            .update_expression(update)
            .condition_expression(condition);
        for (k, v) in values {
            b = b.expression_attribute_values(*k, v.clone());
        }
        match b.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn query_all(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            items.extend(out.items().iter().cloned());
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    async fn delete_all(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|(pk, sk)| {
                    let del = DeleteRequest::builder()
                        .key("pk", s(pk.as_str()))
                        .key("sk", s(sk.as_str()))
                        .build();
                    build(del).map(|d| WriteRequest::builder().delete_request(d).build())
                })
                .collect::<Result<_, _>>()?;
            for attempt in 0.. {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(unavailable)?;
                requests = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt == 5 {
                    return Err(StoreError::Unavailable(
                        "batch delete left items unprocessed".into(),
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }
}

/// Why a transaction was cancelled, item by item.
enum Cancelled {
    /// The first item (the claim) failed its condition; the old record if DynamoDB returned it.
    Seen(Option<DedupRecord>),
    Stale,
    Contended,
}

fn cancelled(
    err: &aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
) -> Option<Cancelled> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match err {
        E::TransactionCanceledException(e) => {
            let reasons = e.cancellation_reasons();
            let failed = |r: &aws_sdk_dynamodb::types::CancellationReason| {
                r.code() == Some("ConditionalCheckFailed")
            };
            if reasons.first().is_some_and(failed) {
                Some(Cancelled::Seen(reasons[0].item().map(dedup_record)))
            } else if reasons.iter().any(failed) {
                Some(Cancelled::Stale)
            } else {
                Some(Cancelled::Contended)
            }
        }
        E::TransactionInProgressException(_) => Some(Cancelled::Contended),
        _ => None,
    }
}

impl WebhookStore for DynamoStore {
    async fn claim_apply(
        &self,
        d: &Delivery<'_>,
        m: &Mutation,
        event: &str,
        now_ms: i64,
    ) -> Result<Claim, StoreError> {
        let (change, parent) = change_for(d.tenant, m, d.triggered_at, d.expires_at_secs(now_ms));
        let mut items = vec![
            TransactWriteItem::builder()
                .put(self.claim_put(d, event, now_ms)?)
                .build(),
            TransactWriteItem::builder()
                .update(change.into_update(&self.table)?)
                .build(),
        ];
        if let Some(pk) = parent {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(SK_CANDIDATE))
                .condition_expression("attribute_not_exists(deletedAt)")
                .build();
            items.push(
                TransactWriteItem::builder()
                    .condition_check(build(check)?)
                    .build(),
            );
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Claim::Applied),
            Err(e) => match e.as_service_error().and_then(cancelled) {
                Some(Cancelled::Seen(Some(rec))) => Ok(Claim::Seen(rec)),
                Some(Cancelled::Seen(None)) => self.dedup(d).await.map(Claim::Seen),
                Some(Cancelled::Stale) => Ok(Claim::Stale),
                Some(Cancelled::Contended) => Err(StoreError::Contended),
                None => Err(unavailable(e)),
            },
        }
    }

    async fn claim_only(
        &self,
        d: &Delivery<'_>,
        event: &str,
        now_ms: i64,
    ) -> Result<Claim, StoreError> {
        let put = self.claim_put(d, event, now_ms)?;
        let req = self
            .client
            .put_item()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .set_condition_expression(put.condition_expression().map(str::to_string))
            .set_expression_attribute_values(put.expression_attribute_values().cloned())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match req.send().await {
            Ok(_) => Ok(Claim::Applied),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c)) => match c.item() {
                    Some(item) => Ok(Claim::Seen(dedup_record(item))),
                    None => self.dedup(d).await.map(Claim::Seen),
                },
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn take_over(
        &self,
        d: &Delivery<'_>,
        seen_lease: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.update_dedup(
            d,
            "SET leaseUntil = :new",
            "isDone = :false AND leaseUntil = :seen",
            &[
                (":new", n(now_ms + LEASE_MS)),
                (":false", AV::Bool(false)),
                (":seen", n(seen_lease)),
            ],
        )
        .await
    }

    async fn complete(&self, d: &Delivery<'_>) -> Result<(), StoreError> {
        self.update_dedup(
            d,
            "SET isDone = :true REMOVE eventJson",
            "attribute_exists(pk)",
            &[(":true", AV::Bool(true))],
        )
        .await
        .map(drop)
    }

    async fn release(&self, d: &Delivery<'_>) -> Result<(), StoreError> {
        self.update_dedup(
            d,
            "SET leaseUntil = :zero",
            "isDone = :false",
            &[(":zero", n(0)), (":false", AV::Bool(false))],
        )
        .await
        .map(drop)
    }

    async fn purge(&self, tenant: &str, opportunity: &str) -> Result<(), StoreError> {
        let pk = pk_opp(tenant, opportunity);
        let items = self.query_all(&pk).await?;
        let mut doomed = Vec::new();
        let mut tombstone = None;
        for item in &items {
            match get_s(item, "sk").as_deref() {
                Some(SK_CANDIDATE) => tombstone = Some(item),
                Some(sk) => doomed.push((pk.clone(), sk.to_string())),
                None => {}
            }
        }
        let Some(candidate) = tombstone else {
            return self.delete_all(doomed).await;
        };
        if let Some(contact) = get_s(candidate, "contactId") {
            doomed.push((pk_contact(tenant, &contact), SK_CONTACT.to_string()));
        }
        self.delete_all(doomed).await?;
        // Rewrite the candidate as a bare tombstone: deletion time and expiry, nothing else.
        let (Some(deleted_at), Some(expires_at)) =
            (get_n(candidate, "deletedAt"), get_n(candidate, "expiresAt"))
        else {
            return Ok(());
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(SK_CANDIDATE))
            .item("opportunityId", s(opportunity))
            .item("deletedAt", n(deleted_at))
            .item("expiresAt", n(expires_at))
            .condition_expression("attribute_exists(deletedAt)")
            .send()
            .await;
        match put {
            Err(e)
                if !e
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(unavailable(e))
            }
            _ => Ok(()),
        }
    }

    async fn candidate(
        &self,
        tenant: &str,
        opportunity: &str,
    ) -> Result<Option<CandidateView>, StoreError> {
        let items = self.query_all(&pk_opp(tenant, opportunity)).await?;
        if items.is_empty() {
            return Ok(None);
        }
        let mut view = CandidateView {
            opportunity_id: opportunity.to_string(),
            ..Default::default()
        };
        for item in &items {
            let sk = get_s(item, "sk").unwrap_or_default();
            if sk == SK_CANDIDATE {
                view.deleted_at = get_n(item, "deletedAt");
                view.stage = get_s(item, "stageId")
                    .zip(get_n(item, "stageSince"))
                    .map(|(id, since)| Stage { id, since });
                view.archived = item
                    .get("archiveState")
                    .and_then(|v| v.as_m().ok())
                    .map(|m| Archived {
                        reason: get_s(m, "reason"),
                        archived_at: get_n(m, "archivedAt"),
                    });
                view.hired = item
                    .get("isHired")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false);
                view.contact_id = get_s(item, "contactId");
            } else if let Some(id) = sk.strip_prefix("APP#") {
                let at = get_n(item, "changedAt").unwrap_or(0);
                view.applications.insert(
                    id.to_string(),
                    Application {
                        posting_id: get_s(item, "postingId"),
                        at,
                    },
                );
            } else if let Some(id) = sk.strip_prefix("IV#") {
                if item.contains_key("deletedAt") {
                    continue;
                }
                let iv = Interview {
                    panel_id: get_s(item, "panelId"),
                    data: get_json(item, "payloadJson"),
                    at: get_n(item, "changedAt").unwrap_or(0),
                };
                view.interviews.insert(id.to_string(), iv);
            }
        }
        if view.deleted_at.is_some() {
            view.applications.clear();
            view.interviews.clear();
        }
        Ok(Some(view))
    }

    async fn contact(&self, tenant: &str, contact: &str) -> Result<Option<Contact>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk_contact(tenant, contact)))
            .key("sk", s(SK_CONTACT))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item().map(|item| Contact {
            contact_id: contact.to_string(),
            data: get_json(item, "payloadJson"),
            at: get_n(item, "changedAt").unwrap_or(0),
        }))
    }
}

impl TenantStore for DynamoStore {
    async fn put_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        let status = serde_json::to_value(t.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("T#{}", t.id)))
            .item("sk", s(SK_TENANT))
            .item("tenantId", s(t.id.as_str()))
            .item("leverBaseUrl", s(t.lever_base_url.as_str()))
            .item("ownerUserId", opt_s(&t.owner_user_id))
            .item("tenantStatus", s(status))
            .item("createdAt", n(t.created_at))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("T#{id}")))
            .key("sk", s(SK_TENANT))
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let status = get_s(item, "tenantStatus").unwrap_or_default();
        Ok(Some(Tenant {
            id: id.to_string(),
            lever_base_url: get_s(item, "leverBaseUrl")
                .ok_or_else(|| StoreError::Malformed("tenant without leverBaseUrl".into()))?,
            owner_user_id: get_s(item, "ownerUserId"),
            status: serde_json::from_value(Value::String(status))
                .map_err(|e| StoreError::Malformed(e.to_string()))?,
            created_at: get_n(item, "createdAt").unwrap_or(0),
        }))
    }
}

/// Creates the table as the SAM template does (local stack and tests only).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };
    let attr = |name: &str| {
        build(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build(),
        )
    };
    let key = |name: &str, kt| {
        build(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kt)
                .build(),
        )
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .send()
        .await;
    match created {
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(e) => return Err(unavailable(e)),
        Ok(_) => {}
    }
    let ttl = build(
        TimeToLiveSpecification::builder()
            .attribute_name("expiresAt")
            .enabled(true)
            .build(),
    )?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}
