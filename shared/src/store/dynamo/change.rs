//! The guarded updates a Lever change makes to the candidate's items, shared by webhooks, syncs and
//! commands: each field group carries the `triggeredAt` that set it, and every write is guarded by
//! it, so older changes never win; and what a cancelled transaction says about why.

use super::*;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::Update;

pub(super) const GUARD: &str = "(attribute_not_exists(changedAt) OR changedAt < :t)";

/// An update of one item: key, expression, condition and values.
pub(super) struct Change {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) update: String,
    pub(super) condition: String,
    pub(super) values: Vec<(String, AV)>,
}

impl Change {
    pub(super) async fn send(self, client: &Client, table: &str) -> Result<(), StoreError> {
        self.send_raw(client, table).await.map_err(unavailable)?;
        Ok(())
    }

    pub(super) async fn send_raw(
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

    pub(super) fn into_update(self, table: &str) -> Result<Update, StoreError> {
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

pub(super) const NOT_DELETED: &str = "attribute_not_exists(deletedAt)";

/// The fields of the candidate item one mutation sets, the time attribute guarding them, and their
/// values (placeholders suffixed with `i`, so several groups can share one update).
pub(super) struct Group {
    pub(super) set: String,
    pub(super) at: &'static str,
    pub(super) values: Vec<(String, AV)>,
}

impl Group {
    /// `attribute_not_exists(at) OR at < :t`: older changes never win.
    pub(super) fn guard(&self, i: usize) -> String {
        format!("(attribute_not_exists({at}) OR {at} < :t{i})", at = self.at)
    }
}

pub(super) fn group(
    tenant: &str,
    m: &Mutation,
    t: i64,
    expires_at: i64,
    i: usize,
) -> Option<Group> {
    let p = |name: &str| format!(":{name}{i}");
    let (set, at, mut values) = match m {
        Mutation::Stage { to, contact, .. } => {
            let mut set = format!("stageId = {}, stageSince = {}", p("v"), p("t"));
            let mut values = vec![(p("v"), s(to.as_str()))];
            if let Some(c) = contact {
                set += &format!(
                    ", contactId = if_not_exists(contactId, {c}), contactKey = if_not_exists(contactKey, {k})",
                    c = p("c"),
                    k = p("k")
                );
                values.push((p("c"), s(c.as_str())));
                values.push((p("k"), s(pk_contact(tenant, c))));
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
pub(super) fn change_for(
    tenant: &str,
    m: &Mutation,
    t: i64,
    expires_at: i64,
) -> (Change, Option<String>) {
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
            let g = group(tenant, m, t, expires_at, 0).expect("a candidate-level mutation");
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
                sk_application(application),
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
                sk_interview(interview),
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
                sk_interview(interview),
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
pub(super) fn application_parent(pk: String, application: &str) -> Change {
    Change {
        pk,
        sk: SK_CANDIDATE.into(),
        update: "ADD appIds :app".into(),
        condition: NOT_DELETED.into(),
        values: vec![(":app".into(), AV::Ss(vec![application.to_string()]))],
    }
}

impl DynamoStore {
    /// Sends one `TransactWriteItems`: `None` when written, or why a condition cancelled it
    /// (`Seen`, `Stale`); contention, throttling and invalid writes are errors.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Cancelled>, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error().and_then(cancelled) {
                Some(Cancelled::Contended) => Err(StoreError::Contended),
                Some(Cancelled::Throttled) => Err(StoreError::Unavailable("throttled".into())),
                Some(Cancelled::Invalid(why)) => Err(StoreError::Invalid(why)),
                Some(c) => Ok(Some(c)),
                None => Err(unavailable(e)),
            },
        }
    }
}

/// Why a transaction was cancelled, from its items' reasons.
pub(super) enum Cancelled {
    /// The first item (a dedup record or a claim) failed its condition: written before.
    Seen,
    /// Another item failed its condition: newer state is in place.
    Stale,
    /// Another transaction on the same items was in flight: worth retrying at once.
    Contended,
    /// DynamoDB throttled it: retry later.
    Throttled,
    /// DynamoDB refused it as invalid (an item too large, say): retrying cannot help.
    Invalid(String),
}

pub(super) fn cancelled(
    err: &aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
) -> Option<Cancelled> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match err {
        E::TransactionCanceledException(e) => {
            let reasons = e.cancellation_reasons();
            let code = |c: &str| reasons.iter().any(|r| r.code() == Some(c));
            let failed = |r: &aws_sdk_dynamodb::types::CancellationReason| {
                r.code() == Some("ConditionalCheckFailed")
            };
            Some(if reasons.first().is_some_and(failed) {
                Cancelled::Seen
            } else if reasons.iter().any(failed) {
                Cancelled::Stale
            } else if code("TransactionConflict") {
                Cancelled::Contended
            } else if code("ThrottlingError")
                || code("ProvisionedThroughputExceeded")
                || code("RequestLimitExceeded")
            {
                Cancelled::Throttled
            } else {
                let why: Vec<String> = reasons
                    .iter()
                    .filter(|r| r.code().is_some_and(|c| c != "None"))
                    .map(|r| {
                        format!(
                            "{}: {}",
                            r.code().unwrap_or_default(),
                            r.message().unwrap_or_default()
                        )
                    })
                    .collect();
                Cancelled::Invalid(why.join("; "))
            })
        }
        E::TransactionInProgressException(_) => Some(Cancelled::Contended),
        _ => None,
    }
}
