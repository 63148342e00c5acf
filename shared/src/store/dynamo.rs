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
const SK_OAUTH_LEASE: &str = "#OAUTHLEASE";
const SK_OAUTH_STATE: &str = "#OAUTHSTATE";
const SK_SYNC: &str = "#SYNC";
/// The `due` index partition of sync jobs (conversations use `DUE#<n>`).
const SYNC_SHARD: &str = "SYNC";
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
fn pk_tenant(t: &str) -> String {
    format!("T#{t}")
}
fn pk_contact(t: &str, c: &str) -> String {
    format!("T#{t}#C#{c}")
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
    values: Vec<(String, AV)>,
}

impl Change {
    async fn send(self, client: &Client, table: &str) -> Result<(), StoreError> {
        self.send_raw(client, table).await.map_err(unavailable)?;
        Ok(())
    }

    async fn send_raw(
        self,
        client: &Client,
        table: &str,
    ) -> Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        >,
    > {
        let mut b = client
            .update_item()
            .table_name(table)
            .key("pk", s(self.pk))
            .key("sk", s(self.sk))
            .update_expression(self.update)
            .condition_expression(self.condition);
        for (k, v) in self.values {
            b = b.expression_attribute_values(k, v);
        }
        b.send().await
    }

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

const NOT_DELETED: &str = "attribute_not_exists(deletedAt)";

/// The fields of the candidate item one mutation sets, the time attribute guarding them, and their
/// values (placeholders suffixed with `i`, so several groups can share one update).
struct Group {
    set: String,
    at: &'static str,
    values: Vec<(String, AV)>,
}

impl Group {
    /// `attribute_not_exists(at) OR at < :t`: older changes never win.
    fn guard(&self, i: usize) -> String {
        format!("(attribute_not_exists({at}) OR {at} < :t{i})", at = self.at)
    }
}

fn group(m: &Mutation, t: i64, expires_at: i64, i: usize) -> Option<Group> {
    let p = |name: &str| format!(":{name}{i}");
    let (set, at, mut values) = match m {
        Mutation::Stage { to, contact, .. } => {
            let mut set = format!("stageId = {}, stageSince = {}", p("v"), p("t"));
            let mut values = vec![(p("v"), s(to.as_str()))];
            if let Some(c) = contact {
                set += &format!(", contactId = if_not_exists(contactId, {})", p("c"));
                values.push((p("c"), s(c.as_str())));
            }
            (set, "stageSince", values)
        }
        Mutation::Archive { to, .. } => {
            let v = to.as_ref().map_or(AV::Null(true), |a| {
                AV::M(HashMap::from([
                    ("reason".to_string(), opt_s(&a.reason)),
                    (
                        "archivedAt".to_string(),
                        a.archived_at.map_or(AV::Null(true), n),
                    ),
                ]))
            });
            let set = format!("archiveState = {}, archiveAt = {}", p("v"), p("t"));
            (set, "archiveAt", vec![(p("v"), v)])
        }
        Mutation::Hired { .. } => {
            let set = format!("isHired = {}, hiredAt = {}", p("v"), p("t"));
            (set, "hiredAt", vec![(p("v"), AV::Bool(true))])
        }
        Mutation::Deleted { .. } => {
            let set = format!("deletedAt = {}, expiresAt = {}", p("t"), p("x"));
            (set, "deletedAt", vec![(p("x"), n(expires_at))])
        }
        _ => return None,
    };
    values.push((p("t"), n(t)));
    Some(Group { set, at, values })
}

/// The guarded update a mutation makes, and whether it needs the candidate not to be deleted.
fn change_for(tenant: &str, m: &Mutation, t: i64, expires_at: i64) -> (Change, Option<String>) {
    let guarded = |sk: String, update: &str, values: Vec<(&str, AV)>| Change {
        pk: pk_opp(tenant, m.opportunity().unwrap_or_default()),
        sk,
        update: update.into(),
        condition: GUARD.into(),
        values: values
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    };
    let parent = m.opportunity().map(|o| pk_opp(tenant, o));
    match m {
        Mutation::Stage { opportunity, .. }
        | Mutation::Archive { opportunity, .. }
        | Mutation::Hired { opportunity }
        | Mutation::Deleted { opportunity } => {
            let g = group(m, t, expires_at, 0).expect("a candidate-level mutation");
            let condition = match m {
                Mutation::Deleted { .. } => NOT_DELETED.to_string(),
                _ => format!("{NOT_DELETED} AND {}", g.guard(0)),
            };
            let mut values = g.values;
            values.push((":o".into(), s(opportunity.as_str())));
            let change = Change {
                pk: pk_opp(tenant, opportunity),
                sk: SK_CANDIDATE.into(),
                update: format!("SET opportunityId = :o, {}", g.set),
                condition,
                values,
            };
            (change, None)
        }
        Mutation::Application {
            application,
            posting,
            ..
        } => (
            guarded(
                format!("APP#{application}"),
                "SET applicationId = :a, postingId = :p, changedAt = :t",
                vec![
                    (":a", s(application.as_str())),
                    (":p", opt_s(posting)),
                    (":t", n(t)),
                ],
            ),
            parent,
        ),
        Mutation::InterviewUpsert {
            interview,
            panel,
            data,
            ..
        } => (
            guarded(
                format!("IV#{interview}"),
                "SET interviewId = :i, panelId = :p, payloadJson = :d, changedAt = :t REMOVE deletedAt, expiresAt",
                vec![
                    (":i", s(interview.as_str())),
                    (":p", opt_s(panel)),
                    (":d", s(Value::Object(data.clone()).to_string())),
                    (":t", n(t)),
                ],
            ),
            parent,
        ),
        // A tombstone, so an older create or update arriving late cannot bring the interview back.
        Mutation::InterviewDelete { interview, .. } => (
            guarded(
                format!("IV#{interview}"),
                "SET interviewId = :i, changedAt = :t, deletedAt = :t, expiresAt = :x REMOVE payloadJson, panelId",
                vec![
                    (":i", s(interview.as_str())),
                    (":t", n(t)),
                    (":x", n(expires_at)),
                ],
            ),
            parent,
        ),
        Mutation::Contact { contact, data } => (
            Change {
                pk: pk_contact(tenant, contact),
                sk: SK_CONTACT.into(),
                update: "SET contactId = :c, payloadJson = :d, changedAt = :t".into(),
                condition: GUARD.into(),
                values: vec![
                    (":c".into(), s(contact.as_str())),
                    (":d".into(), s(Value::Object(data.clone()).to_string())),
                    (":t".into(), n(t)),
                ],
            },
            None,
        ),
    }
}

/// The candidate item's update that records an application (its id in `appIds`, for syncs),
/// which also checks the candidate is not deleted.
fn application_parent(pk: String, application: &str) -> Change {
    Change {
        pk,
        sk: SK_CANDIDATE.into(),
        update: "ADD appIds :app".into(),
        condition: NOT_DELETED.into(),
        values: vec![(":app".into(), AV::Ss(vec![application.to_string()]))],
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
                .item("hookKey", s(hook_key(d.tenant, d.kind)))
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
        conditional(b.send().await).map(|o| o.is_some())
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
        match (parent, m) {
            (Some(pk), Mutation::Application { application, .. }) => items.push(
                TransactWriteItem::builder()
                    .update(application_parent(pk, application).into_update(&self.table)?)
                    .build(),
            ),
            (Some(pk), _) => {
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(SK_CANDIDATE))
                    .condition_expression(NOT_DELETED)
                    .build();
                items.push(
                    TransactWriteItem::builder()
                        .condition_check(build(check)?)
                        .build(),
                );
            }
            (None, _) => {}
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
        conditional(put).map(drop)
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
    async fn set_tenant_status(
        &self,
        id: &str,
        status: TenantStatus,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.update_tenant_status(id, status, reason, now_ms).await
    }

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
            .item("statusReason", opt_s(&t.status_reason))
            .item("timeZone", opt_s(&t.time_zone))
            .item(
                "transcriptQuietMinutes",
                t.transcript_quiet_minutes.map_or(AV::Null(true), n),
            )
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
            status_reason: get_s(item, "statusReason"),
            time_zone: get_s(item, "timeZone"),
            transcript_quiet_minutes: get_n(item, "transcriptQuietMinutes"),
            created_at: get_n(item, "createdAt").unwrap_or(0),
        }))
    }

    async fn acquire_refresh_lease(
        &self,
        tenant: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("T#{tenant}")))
            .item("sk", s(SK_OAUTH_LEASE))
            .item("holder", s(holder))
            .item("leaseUntil", n(until_ms))
            // TTL cleans up a lease whose holder died; the condition below never relies on it.
            .item("expiresAt", n(until_ms / 1000 + 3600))
            .condition_expression("attribute_not_exists(pk) OR leaseUntil < :now")
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        conditional(res).map(|o| o.is_some())
    }

    async fn release_refresh_lease(&self, tenant: &str, holder: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("T#{tenant}")))
            .key("sk", s(SK_OAUTH_LEASE))
            .condition_expression("holder = :h")
            .expression_attribute_values(":h", s(holder))
            .send()
            .await;
        conditional(res).map(drop)
    }
}

impl DynamoStore {
    async fn update_tenant_status(
        &self,
        id: &str,
        status: TenantStatus,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let status = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("T#{id}")))
            .key("sk", s(SK_TENANT))
            .update_expression("SET tenantStatus = :s, statusReason = :r, statusAt = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":s", s(status))
            .expression_attribute_values(":r", s(reason))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        conditional(res).map(drop)
    }
}

/// Creates the table as the SAM template does (local stack and tests only).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType as T, TimeToLiveSpecification,
    };
    let attr = |name: &str, t: T| {
        build(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(t)
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
    let due = GlobalSecondaryIndex::builder()
        .index_name(DUE_INDEX)
        .key_schema(key("dueShard", KeyType::Hash)?)
        .key_schema(key("dueAt", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes("tenantId")
                .non_key_attributes("opportunityId")
                .build(),
        );
    let deliveries = GlobalSecondaryIndex::builder()
        .index_name(DELIVERIES_INDEX)
        .key_schema(key("hookKey", KeyType::Hash)?)
        .key_schema(key("triggeredAt", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        );
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", T::S)?)
        .attribute_definitions(attr("sk", T::S)?)
        .attribute_definitions(attr("dueShard", T::S)?)
        .attribute_definitions(attr("dueAt", T::N)?)
        .attribute_definitions(attr("hookKey", T::S)?)
        .attribute_definitions(attr("triggeredAt", T::N)?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(build(due.build())?)
        .global_secondary_indexes(build(deliveries.build())?)
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

fn pk_command(t: &str, id: &str) -> String {
    format!("T#{t}#CMD#{id}")
}
fn pk_parked(t: &str) -> String {
    format!("T#{t}#PARKED")
}
fn pk_interview_map(t: &str, id: &str) -> String {
    format!("T#{t}#IVMAP#{id}")
}
const SK_COMMAND: &str = "#CMD";
const SK_MAP: &str = "#MAP";

fn state_name(s: CommandState) -> &'static str {
    match s {
        CommandState::Claimed => "claimed",
        CommandState::Released => "released",
        CommandState::Done => "done",
        CommandState::Failed => "failed",
        CommandState::Parked => "parked",
    }
}

fn command_record(item: &Item) -> CommandRecord {
    let state = match get_s(item, "commandStatus").as_deref() {
        Some("done") => CommandState::Done,
        Some("failed") => CommandState::Failed,
        Some("parked") => CommandState::Parked,
        Some("released") => CommandState::Released,
        _ => CommandState::Claimed,
    };
    CommandRecord {
        state,
        kind: get_s(item, "kindName").unwrap_or_default(),
        attempts: get_n(item, "attempts").unwrap_or(0) as u32,
        result: get_s(item, "resultJson").and_then(|j| serde_json::from_str(&j).ok()),
        error: get_s(item, "lastError"),
        updated_at: get_n(item, "updatedAt").unwrap_or(0),
    }
}

impl CommandStore for DynamoStore {
    async fn claim_command(
        &self,
        tenant: &str,
        id: &str,
        kind: &str,
        now_ms: i64,
    ) -> Result<CommandClaim, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk_command(tenant, id)))
            .key("sk", s(SK_COMMAND))
            .update_expression(
                "SET commandStatus = :claimed, leaseUntil = :lease, attempts = if_not_exists(attempts, :zero) + :one, \
                 firstClaimedAt = if_not_exists(firstClaimedAt, :now), kindName = :kind, expiresAt = :exp, updatedAt = :now",
            )
            .condition_expression(
                "attribute_not_exists(pk) OR commandStatus IN (:released, :parked) OR (commandStatus = :claimed AND leaseUntil < :now)",
            )
            .expression_attribute_values(":claimed", s("claimed"))
            .expression_attribute_values(":released", s("released"))
            .expression_attribute_values(":parked", s("parked"))
            .expression_attribute_values(":lease", n(now_ms + COMMAND_LEASE_MS))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":kind", s(kind))
            .expression_attribute_values(":exp", n((now_ms + COMMAND_RETENTION_MS) / 1000))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(out) => {
                let old = out.attributes().cloned().unwrap_or_default();
                let old_state = get_s(&old, "commandStatus");
                Ok(CommandClaim::Go {
                    // A claim whose lease ran out belonged to an attempt that died mid-flight.
                    uncertain: old.get("isUncertain").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false)
                        || old_state.as_deref() == Some("claimed"),
                    first_claimed_at: get_n(&old, "firstClaimedAt").unwrap_or(now_ms),
                    attempt: get_n(&old, "attempts").unwrap_or(0) as u32 + 1,
                    was_parked: old_state.as_deref() == Some("parked"),
                })
            }
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c)) => {
                    let record = match c.item() {
                        Some(item) => command_record(item),
                        None => self.command(tenant, id).await?.ok_or(StoreError::Contended)?,
                    };
                    Ok(match record.state {
                        CommandState::Done | CommandState::Failed => CommandClaim::Finished(record),
                        _ => CommandClaim::Busy,
                    })
                }
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn end_command(
        &self,
        tenant: &str,
        id: &str,
        end: &CommandEnd,
        was_parked: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (state, set, mut values) = match end {
            CommandEnd::Done { result } => (
                CommandState::Done,
                "resultJson = :r REMOVE leaseUntil, isUncertain",
                vec![(":r", s(result.to_string()))],
            ),
            CommandEnd::Failed { error } => (
                CommandState::Failed,
                "lastError = :e REMOVE leaseUntil",
                vec![(":e", s(error.as_str()))],
            ),
            CommandEnd::Released {
                error,
                uncertain: true,
            } => (
                CommandState::Released,
                "lastError = :e, isUncertain = :u REMOVE leaseUntil",
                vec![(":e", s(error.as_str())), (":u", AV::Bool(true))],
            ),
            // Leaves an earlier attempt's uncertainty in place.
            CommandEnd::Released {
                error,
                uncertain: false,
            } => (
                CommandState::Released,
                "lastError = :e REMOVE leaseUntil",
                vec![(":e", s(error.as_str()))],
            ),
            CommandEnd::Parked { error, .. } => (
                CommandState::Parked,
                "lastError = :e REMOVE leaseUntil",
                vec![(":e", s(error.as_str()))],
            ),
        };
        values.extend([(":s", s(state_name(state))), (":now", n(now_ms))]);
        let change = Change {
            pk: pk_command(tenant, id),
            sk: SK_COMMAND.into(),
            update: format!("SET commandStatus = :s, updatedAt = :now, {set}"),
            condition: "attribute_exists(pk)".into(),
            values: values
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        };
        let extra = match end {
            CommandEnd::Parked { command, .. } => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(pk_parked(tenant)))
                    .item("sk", s(id))
                    .item("commandJson", s(command.to_string()))
                    .item("parkedAt", n(now_ms));
                Some(
                    TransactWriteItem::builder()
                        .put(build(put.build())?)
                        .build(),
                )
            }
            CommandEnd::Done { .. } | CommandEnd::Failed { .. } if was_parked => {
                let del = aws_sdk_dynamodb::types::Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(pk_parked(tenant)))
                    .key("sk", s(id));
                Some(
                    TransactWriteItem::builder()
                        .delete(build(del.build())?)
                        .build(),
                )
            }
            _ => None,
        };
        match extra {
            None => change.send(&self.client, &self.table).await,
            Some(extra) => {
                let items = vec![
                    TransactWriteItem::builder()
                        .update(change.into_update(&self.table)?)
                        .build(),
                    extra,
                ];
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .send()
                    .await
                    .map_err(unavailable)?;
                Ok(())
            }
        }
    }

    async fn command(&self, tenant: &str, id: &str) -> Result<Option<CommandRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk_command(tenant, id)))
            .key("sk", s(SK_COMMAND))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item().map(command_record))
    }

    async fn parked(&self, tenant: &str) -> Result<Vec<Value>, StoreError> {
        let items = self.query_all(&pk_parked(tenant)).await?;
        Ok(items
            .iter()
            .filter_map(|i| get_s(i, "commandJson"))
            .filter_map(|j| serde_json::from_str(&j).ok())
            .collect())
    }

    async fn interview_map(
        &self,
        tenant: &str,
        interview: &str,
    ) -> Result<Option<InterviewMap>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk_interview_map(tenant, interview)))
            .key("sk", s(SK_MAP))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out
            .item()
            .and_then(|i| get_s(i, "mapJson"))
            .and_then(|j| serde_json::from_str(&j).ok()))
    }

    async fn put_interview_map(
        &self,
        tenant: &str,
        interview: &str,
        map: &InterviewMap,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(map).map_err(|e| StoreError::Malformed(e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk_interview_map(tenant, interview)))
            .item("sk", s(SK_MAP))
            .item("mapJson", s(json))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_interview_map(&self, tenant: &str, interview: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk_interview_map(tenant, interview)))
            .key("sk", s(SK_MAP))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

const SK_CONVERSATION: &str = "#CONV";
/// Index of accepted deliveries per tenant and kind, by `triggeredAt` (keys only).
pub const DELIVERIES_INDEX: &str = "deliveries";
const SK_STATS: &str = "#STATS";

fn hook_key(tenant: &str, kind: crate::webhook::EventKind) -> String {
    format!("T#{tenant}#K#{}", kind.as_str())
}
/// Index of conversations waiting for their transcript: sparse (only conversations with messages
/// to post carry `dueShard`), sharded so no partition is hot, sorted by `dueAt`.
pub const DUE_INDEX: &str = "due";
const DUE_SHARDS: u64 = 8;

fn sk_message(m: &Message) -> String {
    format!("MSG#{:013}#{}", m.sent_at, m.message_id)
}

fn due_shard(key: &ConversationKey) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{}/{}", key.tenant, key.opportunity).as_bytes());
    format!("DUE#{}", u64::from(h[0]) % DUE_SHARDS)
}

fn message_item(m: &Message, pk: &str) -> Item {
    let mut item = Item::from([
        ("pk".to_string(), s(pk)),
        ("sk".to_string(), s(sk_message(m))),
        (
            "messageJson".to_string(),
            s(serde_json::to_string(m).unwrap_or_default()),
        ),
        ("sentAt".to_string(), n(m.sent_at)),
    ]);
    item.insert("messageId".into(), s(m.message_id.as_str()));
    item
}

fn message_of(item: &Item) -> Option<Message> {
    serde_json::from_str(&get_s(item, "messageJson")?).ok()
}

impl DynamoStore {
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

    async fn update_conversation(
        &self,
        key: &ConversationKey,
        update: &str,
        condition: Option<&str>,
        values: Vec<(&str, AV)>,
        all_new: bool,
    ) -> Result<Option<Item>, StoreError> {
        let mut b = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk_opp(&key.tenant, &key.opportunity)))
            .key("sk", s(SK_CONVERSATION))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_string));
        for (k, v) in values {
            b = b.expression_attribute_values(k, v);
        }
        if all_new {
            b = b.return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        }
        Ok(conditional(b.send().await)?.map(|out| out.attributes().cloned().unwrap_or_default()))
    }
}

impl TranscriptStore for DynamoStore {
    async fn add_message(&self, m: &Message, quiet_ms: i64) -> Result<Ingested, StoreError> {
        let key = ConversationKey {
            tenant: m.tenant_id.clone(),
            opportunity: m.opportunity_id.clone(),
        };
        let pk = pk_opp(&m.tenant_id, &m.opportunity_id);
        let due = m.sent_at + quiet_ms;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(message_item(m, &pk)))
            .condition_expression("attribute_not_exists(pk)");
        let conversation = Update::builder()
            .table_name(&self.table)
            .key("pk", s(pk.as_str()))
            .key("sk", s(SK_CONVERSATION))
            .update_expression(
                "SET tenantId = :t, opportunityId = :o, pending = if_not_exists(pending, :zero) + :one, dueShard = :shard, \
                 dueAt = if_not_exists(dueAt, :due), lastMessageAt = if_not_exists(lastMessageAt, :sent), quietMs = :q",
            )
            .expression_attribute_values(":t", s(m.tenant_id.as_str()))
            .expression_attribute_values(":o", s(m.opportunity_id.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":shard", s(due_shard(&key)))
            .expression_attribute_values(":due", n(due))
            .expression_attribute_values(":sent", n(m.sent_at))
            .expression_attribute_values(":q", n(quiet_ms));
        let alive = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(pk.as_str()))
            .key("sk", s(SK_CANDIDATE))
            .condition_expression("attribute_not_exists(deletedAt)");
        let items = vec![
            TransactWriteItem::builder()
                .put(build(put.build())?)
                .build(),
            TransactWriteItem::builder()
                .update(build(conversation.build())?)
                .build(),
            TransactWriteItem::builder()
                .condition_check(build(alive.build())?)
                .build(),
        ];
        if let Err(e) = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
            return match e.as_service_error() {
                Some(E::TransactionCanceledException(c)) => {
                    let failed = |i: usize| {
                        c.cancellation_reasons().get(i).and_then(|r| r.code())
                            == Some("ConditionalCheckFailed")
                    };
                    if failed(0) {
                        Ok(Ingested::Duplicate)
                    } else if failed(2) {
                        Ok(Ingested::CandidateDeleted)
                    } else {
                        Err(StoreError::Contended)
                    }
                }
                _ => Err(unavailable(e)),
            };
        }
        // The flush time follows the newest message; an older one arriving late does not move it.
        // While a batch is fixed the flush time stays, so a batch whose run died is finished as soon
        // as its lease runs out; finishing it sets the flush time from the newest message.
        let moved = self
            .update_conversation(
                &key,
                "SET lastMessageAt = :sent, dueAt = :due",
                Some("lastMessageAt < :sent AND attribute_not_exists(batchId)"),
                vec![(":sent", n(m.sent_at)), (":due", n(due))],
                false,
            )
            .await?;
        if moved.is_none() {
            self.update_conversation(
                &key,
                "SET lastMessageAt = :sent",
                Some("lastMessageAt < :sent"),
                vec![(":sent", n(m.sent_at))],
                false,
            )
            .await?;
        }
        Ok(Ingested::Stored)
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<ConversationKey>, StoreError> {
        let queries = (0..DUE_SHARDS).map(|shard| {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("dueShard = :s AND dueAt <= :now")
                .expression_attribute_values(":s", s(format!("DUE#{shard}")))
                .expression_attribute_values(":now", n(now_ms))
                .limit(limit.min(1000) as i32)
                .send()
        });
        let mut found = Vec::new();
        for out in futures::future::join_all(queries).await {
            let out = out.map_err(unavailable)?;
            for item in out.items() {
                if let (Some(tenant), Some(opportunity), Some(due)) = (
                    get_s(item, "tenantId"),
                    get_s(item, "opportunityId"),
                    get_n(item, "dueAt"),
                ) {
                    found.push((
                        due,
                        ConversationKey {
                            tenant,
                            opportunity,
                        },
                    ));
                }
            }
        }
        found.sort();
        Ok(found.into_iter().take(limit).map(|(_, k)| k).collect())
    }

    async fn claim_batch(
        &self,
        key: &ConversationKey,
        batch_id: &str,
        now_ms: i64,
        lease_ms: i64,
        max_messages: usize,
    ) -> Result<Option<Batch>, StoreError> {
        let lease = now_ms + lease_ms;
        let claimed = self
            .update_conversation(
                key,
                "SET claimUntil = :lease",
                Some("dueAt <= :now AND pending > :zero AND (attribute_not_exists(claimUntil) OR claimUntil < :now)"),
                vec![(":lease", n(lease)), (":now", n(now_ms)), (":zero", n(0))],
                true,
            )
            .await?;
        let Some(conversation) = claimed else {
            return Ok(None);
        };
        let items = self
            .query_all(&pk_opp(&key.tenant, &key.opportunity))
            .await?;
        let messages = items
            .iter()
            .filter(|i| get_s(i, "sk").is_some_and(|sk| sk.starts_with("MSG#")));
        // A batch fixed by an earlier run is resumed as it was.
        if let (Some(id), Some(keys)) = (
            get_s(&conversation, "batchId"),
            conversation.get("batchKeys").and_then(|v| v.as_ss().ok()),
        ) {
            let batch: Vec<Message> = messages
                .filter(|i| get_s(i, "sk").is_some_and(|sk| keys.contains(&sk)))
                .filter_map(message_of)
                .collect();
            return Ok(Some(Batch {
                id,
                messages: batch,
                resumed: true,
            }));
        }
        let fresh: Vec<(String, Message)> = messages
            .filter(|i| !i.contains_key("flushedAt"))
            .filter_map(|i| Some((get_s(i, "sk")?, message_of(i)?)))
            .take(max_messages)
            .collect();
        if fresh.is_empty() {
            // The count drifted (e.g. a purge): nothing to post, leave the index.
            self.update_conversation(
                key,
                "SET pending = :zero REMOVE dueShard, claimUntil",
                None,
                vec![(":zero", n(0))],
                false,
            )
            .await?;
            return Ok(None);
        }
        let keys: Vec<String> = fresh.iter().map(|(k, _)| k.clone()).collect();
        let fixed = self
            .update_conversation(
                key,
                "SET batchId = :b, batchKeys = :k",
                Some("claimUntil = :lease"),
                vec![
                    (":b", s(batch_id)),
                    (":k", AV::Ss(keys)),
                    (":lease", n(lease)),
                ],
                false,
            )
            .await?;
        Ok(fixed.map(|_| Batch {
            id: batch_id.to_string(),
            messages: fresh.into_iter().map(|(_, m)| m).collect(),
            resumed: false,
        }))
    }

    async fn finish_batch(
        &self,
        key: &ConversationKey,
        batch: &Batch,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let pk = pk_opp(&key.tenant, &key.opportunity);
        let expires = (now_ms + COMMAND_RETENTION_MS) / 1000;
        let requests = batch
            .messages
            .iter()
            .map(|m| {
                let mut item = message_item(m, &pk);
                item.insert("flushedAt".into(), n(now_ms));
                item.insert("batchId".into(), s(batch.id.as_str()));
                // Kept a while so a redelivered message id is still recognised, then expired.
                item.insert("expiresAt".into(), n(expires));
                build(
                    aws_sdk_dynamodb::types::PutRequest::builder()
                        .set_item(Some(item))
                        .build(),
                )
                .map(|p| WriteRequest::builder().put_request(p).build())
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write_all(requests).await?;
        let updated = self
            .update_conversation(
                key,
                "SET pending = pending - :n REMOVE claimUntil, batchId, batchKeys, lastError",
                Some("batchId = :b"),
                vec![
                    (":n", n(batch.messages.len() as i64)),
                    (":b", s(batch.id.as_str())),
                ],
                true,
            )
            .await?;
        match updated {
            // Out of the index unless a message arrived meanwhile.
            Some(c) if get_n(&c, "pending").unwrap_or(0) <= 0 => {
                self.update_conversation(
                    key,
                    "REMOVE dueShard",
                    Some("pending <= :zero"),
                    vec![(":zero", n(0))],
                    false,
                )
                .await?;
            }
            // Messages that arrived during the flush: due a quiet period after the newest.
            Some(_) => {
                self.update_conversation(
                    key,
                    "SET dueAt = lastMessageAt + quietMs",
                    Some("attribute_not_exists(batchId)"),
                    Vec::new(),
                    false,
                )
                .await?;
            }
            None => {}
        }
        Ok(())
    }

    async fn release_batch(
        &self,
        key: &ConversationKey,
        error: &str,
        retry_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.update_conversation(
            key,
            "SET lastError = :e, dueAt = :retry REMOVE claimUntil",
            Some("attribute_exists(pk)"),
            vec![(":e", s(error)), (":retry", n(retry_at_ms))],
            false,
        )
        .await?;
        Ok(())
    }

    async fn waiting(&self, key: &ConversationKey) -> Result<usize, StoreError> {
        let items = self
            .query_all(&pk_opp(&key.tenant, &key.opportunity))
            .await?;
        Ok(items
            .iter()
            .filter(|i| {
                get_s(i, "sk").is_some_and(|sk| sk.starts_with("MSG#"))
                    && !i.contains_key("flushedAt")
            })
            .count())
    }
}

impl DynamoStore {
    async fn add_counters(
        &self,
        tenant: &str,
        add: &str,
        set: Option<&str>,
        values: Vec<(&str, AV)>,
    ) -> Result<(), StoreError> {
        let update = match set {
            Some(set) => format!("ADD {add} SET {set}"),
            None => format!("ADD {add}"),
        };
        let mut b = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("T#{tenant}")))
            .key("sk", s(SK_STATS))
            .update_expression(update);
        for (k, v) in values {
            b = b.expression_attribute_values(k, v);
        }
        b.send().await.map_err(unavailable)?;
        Ok(())
    }
}

impl StatsStore for DynamoStore {
    async fn record_rejection(
        &self,
        tenant: &str,
        kind: crate::webhook::EventKind,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("T#{tenant}")))
            .item("sk", s(format!("REJECT#{}", kind.as_str())))
            .item("rejectedAt", n(at_ms))
            .item("reason", s(reason))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn webhook_stat(
        &self,
        tenant: &str,
        kind: crate::webhook::EventKind,
        since_ms: i64,
    ) -> Result<WebhookStat, StoreError> {
        let hook = hook_key(tenant, kind);
        let query = || {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(DELIVERIES_INDEX)
                .key_condition_expression("hookKey = :h AND triggeredAt >= :since")
                .expression_attribute_values(":h", s(hook.as_str()))
                .expression_attribute_values(":since", n(since_ms))
        };
        let last = query().scan_index_forward(false).limit(1).send();
        let rejection = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("T#{tenant}")))
            .key("sk", s(format!("REJECT#{}", kind.as_str())))
            .send();
        let (last, rejection) = futures::join!(last, rejection);
        let mut stat = WebhookStat {
            last_received_at: last
                .map_err(unavailable)?
                .items()
                .first()
                .and_then(|i| get_n(i, "triggeredAt")),
            ..WebhookStat::default()
        };
        if let Some(r) = rejection.map_err(unavailable)?.item() {
            stat.last_rejected_at = get_n(r, "rejectedAt");
            stat.last_rejection = get_s(r, "reason");
        }
        let mut start = None;
        loop {
            let out = query()
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            stat.deliveries += out.count().max(0) as u64;
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(stat);
            }
        }
    }

    async fn count_push(
        &self,
        tenant: &str,
        end: &CommandEnd,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        match end {
            CommandEnd::Done { .. } => {
                self.add_counters(tenant, "pushesDone :one", None, vec![(":one", n(1))])
                    .await
            }
            CommandEnd::Released { .. } => Ok(()),
            CommandEnd::Failed { error } | CommandEnd::Parked { error, .. } => {
                let counter = if matches!(end, CommandEnd::Failed { .. }) {
                    "pushesFailed :one"
                } else {
                    "pushesParked :one"
                };
                self.add_counters(
                    tenant,
                    counter,
                    Some("lastPushError = :e, lastPushErrorAt = :at"),
                    vec![(":one", n(1)), (":e", s(error.as_str())), (":at", n(at_ms))],
                )
                .await
            }
        }
    }

    async fn add_waiting(&self, tenant: &str, delta: i64) -> Result<(), StoreError> {
        self.add_counters(
            tenant,
            "transcriptMessagesWaiting :d",
            None,
            vec![(":d", n(delta))],
        )
        .await
    }

    async fn tenant_stats(&self, tenant: &str) -> Result<TenantStats, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("T#{tenant}")))
            .key("sk", s(SK_STATS))
            .send()
            .await
            .map_err(unavailable)?;
        let Some(i) = out.item() else {
            return Ok(TenantStats::default());
        };
        Ok(TenantStats {
            pushes_done: get_n(i, "pushesDone").unwrap_or(0),
            pushes_failed: get_n(i, "pushesFailed").unwrap_or(0),
            pushes_parked: get_n(i, "pushesParked").unwrap_or(0),
            last_push_error: get_s(i, "lastPushError"),
            last_push_error_at: get_n(i, "lastPushErrorAt"),
            transcript_messages_waiting: get_n(i, "transcriptMessagesWaiting").unwrap_or(0).max(0),
        })
    }
}

const SK_POSTING: &str = "POSTING#";
const SK_ROLE: &str = "ROLE#";

impl DynamoStore {
    /// Items of the partition whose sort key starts with `prefix`.
    async fn query_prefix(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.query_pages(pk, Some(prefix)).await
    }

    /// Keys of the tenant's dedup records, from the deliveries index (keys only).
    async fn delivery_keys(&self, tenant: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut keys = Vec::new();
        for kind in crate::webhook::EventKind::ALL {
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(DELIVERIES_INDEX)
                    .key_condition_expression("hookKey = :h")
                    .expression_attribute_values(":h", s(hook_key(tenant, kind)))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(unavailable)?;
                keys.extend(
                    out.items()
                        .iter()
                        .filter_map(|i| Some((get_s(i, "pk")?, get_s(i, "sk")?))),
                );
                start = out.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
        }
        Ok(keys)
    }
}

impl AdminStore for DynamoStore {
    async fn put_oauth_state(&self, p: &OAuthPending) -> Result<bool, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("OAUTH#{}", p.state_hash)))
            .item("sk", s(SK_OAUTH_STATE))
            .item("tenantId", s(p.tenant_id.as_str()))
            .item("environment", s(p.environment.as_str()))
            .item("stateExpiresAt", n(p.expires_at))
            .item("expiresAt", n(p.expires_at / 1000 + 3600))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional(res).map(|o| o.is_some())
    }

    async fn take_oauth_state(
        &self,
        state_hash: &str,
        now_ms: i64,
    ) -> Result<Option<OAuthPending>, StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("OAUTH#{state_hash}")))
            .key("sk", s(SK_OAUTH_STATE))
            // Expiry is checked here, not left to TTL (which deletes late).
            .condition_expression("attribute_exists(pk) AND stateExpiresAt > :now")
            .expression_attribute_values(":now", n(now_ms))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        Ok(conditional(res)?.and_then(|out| {
            out.attributes().map(|item| OAuthPending {
                state_hash: state_hash.to_string(),
                tenant_id: get_s(item, "tenantId").unwrap_or_default(),
                environment: get_s(item, "environment").unwrap_or_default(),
                expires_at: get_n(item, "stateExpiresAt").unwrap_or(0),
            })
        }))
    }

    async fn set_owner(&self, tenant: &str, user: &str) -> Result<bool, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("T#{tenant}")))
            .key("sk", s(SK_TENANT))
            .update_expression("SET ownerUserId = :u")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":u", s(user))
            .send()
            .await;
        conditional(res).map(|o| o.is_some())
    }

    async fn put_postings(
        &self,
        tenant: &str,
        postings: &[PostingRecord],
    ) -> Result<(), StoreError> {
        let requests = postings
            .iter()
            .map(|p| {
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .item("pk", s(format!("T#{tenant}")))
                    .item("sk", s(format!("{SK_POSTING}{}", p.id)))
                    .item("postingId", s(p.id.as_str()))
                    .item("title", s(p.title.as_str()))
                    .item("postingState", opt_s(&p.state))
                    .item("confidential", AV::Bool(p.confidential))
                    .item("gone", AV::Bool(p.gone))
                    .item("syncedAt", n(p.synced_at));
                Ok(WriteRequest::builder()
                    .put_request(build(put.build())?)
                    .build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_all(requests).await
    }

    async fn postings(&self, tenant: &str) -> Result<Vec<PostingRecord>, StoreError> {
        let items = self
            .query_prefix(&format!("T#{tenant}"), SK_POSTING)
            .await?;
        Ok(items
            .iter()
            .map(|i| PostingRecord {
                id: get_s(i, "postingId").unwrap_or_default(),
                title: get_s(i, "title").unwrap_or_default(),
                state: get_s(i, "postingState"),
                confidential: i
                    .get("confidential")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false),
                gone: i
                    .get("gone")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false),
                synced_at: get_n(i, "syncedAt").unwrap_or(0),
            })
            .collect())
    }

    async fn set_role(
        &self,
        tenant: &str,
        role: &str,
        posting: Option<&str>,
    ) -> Result<(), StoreError> {
        let pk = s(format!("T#{tenant}"));
        let sk = s(format!("{SK_ROLE}{role}"));
        match posting {
            Some(p) => {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", pk)
                    .item("sk", sk)
                    .item("roleId", s(role))
                    .item("postingId", s(p))
                    .send()
                    .await
                    .map_err(unavailable)?;
            }
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", pk)
                    .key("sk", sk)
                    .send()
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(())
    }

    async fn roles(&self, tenant: &str) -> Result<Vec<(String, String)>, StoreError> {
        let items = self.query_prefix(&format!("T#{tenant}"), SK_ROLE).await?;
        Ok(items
            .iter()
            .filter_map(|i| Some((get_s(i, "roleId")?, get_s(i, "postingId")?)))
            .collect())
    }

    async fn delete_tenant_data(&self, tenant: &str) -> Result<(), StoreError> {
        let mut keys: Vec<(String, String)> = Vec::new();
        for pk in [format!("T#{tenant}"), pk_parked(tenant)] {
            keys.extend(
                self.query_all(&pk)
                    .await?
                    .iter()
                    .filter_map(|i| Some((get_s(i, "pk")?, get_s(i, "sk")?))),
            );
        }
        keys.extend(self.delivery_keys(tenant).await?);
        keys.sort();
        keys.dedup();
        self.delete_all(keys).await
    }
}

fn synced_view(item: &Item) -> SyncedView {
    SyncedView {
        stage: get_s(item, "stageId")
            .zip(get_n(item, "stageSince"))
            .map(|(id, since)| Stage { id, since }),
        archived: item
            .get("archiveState")
            .and_then(|v| v.as_m().ok())
            .map(|m| Archived {
                reason: get_s(m, "reason"),
                archived_at: get_n(m, "archivedAt"),
            }),
        archive_at: get_n(item, "archiveAt"),
        hired_at: get_n(item, "hiredAt"),
        contact_id: get_s(item, "contactId"),
        application_ids: item
            .get("appIds")
            .and_then(|v| v.as_ss().ok())
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default(),
        deleted_at: get_n(item, "deletedAt"),
        mark: get_s(item, "syncMark"),
        owed_events: get_s(item, "syncEvents"),
    }
}

fn sync_job_of(item: &Item) -> Result<SyncJob, StoreError> {
    let json = get_s(item, "jobJson").unwrap_or_default();
    let mut job: SyncJob =
        serde_json::from_str(&json).map_err(|e| StoreError::Malformed(e.to_string()))?;
    // The key attributes are the truth for what conditions check.
    job.lease_until = get_n(item, "leaseUntil").unwrap_or(0);
    job.due_at = get_n(item, "dueAt");
    Ok(job)
}

impl DynamoStore {
    fn sync_job_put(
        &self,
        job: &SyncJob,
    ) -> Result<aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder, StoreError>
    {
        let json = serde_json::to_string(job).map_err(|e| StoreError::Malformed(e.to_string()))?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk_tenant(&job.tenant)))
            .item("sk", s(SK_SYNC))
            .item("tenantId", s(job.tenant.as_str()))
            .item("jobId", s(job.job_id.as_str()))
            .item("leaseUntil", n(job.lease_until))
            .item("jobJson", s(json));
        if let Some(due) = job.due_at {
            put = put.item("dueShard", s(SYNC_SHARD)).item("dueAt", n(due));
        }
        Ok(put)
    }
}

impl SyncStore for DynamoStore {
    async fn sync_views(
        &self,
        tenant: &str,
        opportunities: &[String],
    ) -> Result<HashMap<String, SyncedView>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut out = HashMap::new();
        for chunk in opportunities.chunks(100) {
            let mut keys = Vec::with_capacity(chunk.len());
            for opp in chunk {
                keys.push(HashMap::from([
                    ("pk".to_string(), s(pk_opp(tenant, opp))),
                    ("sk".to_string(), s(SK_CANDIDATE)),
                ]));
            }
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
                for item in got
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    if let Some(opp) = get_s(item, "opportunityId") {
                        out.insert(opp, synced_view(item));
                    }
                }
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

    async fn write_sync(
        &self,
        tenant: &str,
        w: &SyncWrite,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        // Kept as long as a webhook's dedup record, like a deletion's tombstone.
        let expires_at = (now_ms + crate::webhook::MAX_AGE_MS + 24 * 3600 * 1000) / 1000;
        let pk = pk_opp(tenant, &w.opportunity);
        let mut sets = vec![
            "opportunityId = :o".to_string(),
            "syncMark = :m".into(),
            "syncEvents = :e".into(),
        ];
        let mut conditions = vec![NOT_DELETED.to_string()];
        let mut values: Vec<(String, AV)> = vec![
            (":o".into(), s(w.opportunity.as_str())),
            (":m".into(), s(w.mark.as_str())),
            (":e".into(), s(w.events.as_str())),
        ];
        let mut apps = Vec::new();
        let mut app_items = Vec::new();
        for (i, (m, t)) in w.changes.iter().enumerate() {
            if let Some(g) = group(m, *t, expires_at, i) {
                if !matches!(m, Mutation::Deleted { .. }) {
                    conditions.push(g.guard(i));
                }
                sets.push(g.set);
                values.extend(g.values);
            } else if let Mutation::Application { application, .. } = m {
                apps.push(application.clone());
                app_items.push(change_for(tenant, m, *t, expires_at).0);
            }
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !apps.is_empty() {
            update += " ADD appIds :apps";
            values.push((":apps".into(), AV::Ss(apps)));
        }
        let candidate = Change {
            pk,
            sk: SK_CANDIDATE.into(),
            update,
            condition: conditions.join(" AND "),
            values,
        };
        if app_items.is_empty() {
            return conditional(candidate.send_raw(&self.client, &self.table).await)
                .map(|o| o.is_some());
        }
        // The candidate and its new applications in one request, all or nothing.
        let mut items = vec![
            TransactWriteItem::builder()
                .update(candidate.into_update(&self.table)?)
                .build(),
        ];
        for c in app_items {
            items.push(
                TransactWriteItem::builder()
                    .update(c.into_update(&self.table)?)
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
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error().and_then(cancelled) {
                Some(Cancelled::Contended) => Err(StoreError::Contended),
                Some(_) => Ok(false),
                None => Err(unavailable(e)),
            },
        }
    }

    async fn sync_job(&self, tenant: &str) -> Result<Option<SyncJob>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_SYNC))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item().map(sync_job_of).transpose()
    }

    async fn put_sync_job(&self, job: &SyncJob) -> Result<(), StoreError> {
        self.sync_job_put(job)?.send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn claim_sync_job(
        &self,
        tenant: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<SyncJob>, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk_tenant(tenant)))
            .key("sk", s(SK_SYNC))
            .update_expression("SET leaseUntil = :u")
            .condition_expression("dueAt <= :now AND leaseUntil < :now")
            .expression_attribute_values(":u", n(until_ms))
            .expression_attribute_values(":now", n(now_ms))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match conditional(res)? {
            Some(out) => out.attributes().map(sync_job_of).transpose(),
            None => Ok(None),
        }
    }

    async fn save_sync_job(&self, job: &SyncJob, held_until: i64) -> Result<bool, StoreError> {
        let res = self
            .sync_job_put(job)?
            .condition_expression("jobId = :j AND leaseUntil = :held")
            .expression_attribute_values(":j", s(job.job_id.as_str()))
            .expression_attribute_values(":held", n(held_until))
            .send()
            .await;
        conditional(res).map(|o| o.is_some())
    }

    async fn due_sync_jobs(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("dueShard = :s AND dueAt <= :now")
            .expression_attribute_values(":s", s(SYNC_SHARD))
            .expression_attribute_values(":now", n(now_ms))
            .limit(limit.min(1000) as i32)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out
            .items()
            .iter()
            .filter_map(|i| get_s(i, "tenantId"))
            .collect())
    }
}
