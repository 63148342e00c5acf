//! A pending deletion is its delivery's dedup record with `dueShard` = [`DELETION_SHARD`] (so the
//! sparse `due` index finds it), `tenantId` and `opportunityId`, and the event it owes in
//! `pendingEvent`, which confirmation moves into the outbox.

use super::*;
use crate::events::{VendorEvent, to_outbox};

/// Settles a pending item: it leaves the `due` index, keeping `deletion` as what Lever said.
const SETTLE: &str = "SET deletion = :how REMOVE dueShard, dueAt, pendingEvent";
const PENDING: &str = "attribute_exists(dueShard)";

impl DynamoStore {
    fn settle(&self, p: &PendingDeletion, how: &str) -> Result<Update, StoreError> {
        build(
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(pk_pending_deletion(p)))
                .key("sk", s(SK_DEDUP))
                .update_expression(SETTLE)
                .condition_expression(PENDING)
                .expression_attribute_values(":how", s(how))
                .build(),
        )
    }
}

impl DeletionStore for DynamoStore {
    async fn record_deletion(
        &self,
        d: &Delivery<'_>,
        opportunity: &str,
        event: &VendorEvent,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        let put = self.dedup_put(d, None, now_ms)?;
        let mut item = put.item().clone();
        item.insert("dueShard".into(), s(DELETION_SHARD));
        item.insert("dueAt".into(), n(now_ms));
        item.insert("tenantId".into(), s(d.tenant));
        item.insert("opportunityId".into(), s(opportunity));
        item.insert(
            "pendingEvent".into(),
            s(to_outbox(std::slice::from_ref(event))),
        );
        self.put_once(put, item).await
    }

    async fn due_deletions(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<PendingDeletion>, StoreError> {
        Ok(self
            .due_items(DELETION_SHARD, now_ms, limit)
            .await?
            .iter()
            .filter_map(|i| {
                let tenant = get_s(i, "tenantId")?;
                let token = get_s(i, "pk")?
                    .strip_prefix(&format!("T#{tenant}#D#"))?
                    .to_string();
                Some(PendingDeletion {
                    opportunity: get_s(i, "opportunityId")?,
                    tenant,
                    token,
                })
            })
            .collect())
    }

    async fn claim_deletion(
        &self,
        p: &PendingDeletion,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk_pending_deletion(p)))
            .key("sk", s(SK_DEDUP))
            .update_expression("SET dueAt = :until")
            .condition_expression("attribute_exists(dueShard) AND dueAt <= :now")
            .expression_attribute_values(":until", n(until_ms))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        Ok(conditional(update)?.is_some())
    }

    async fn confirm_deletion(
        &self,
        p: &PendingDeletion,
        now_ms: i64,
    ) -> Result<DeletionOutcome, StoreError> {
        let m = Mutation::Deleted {
            opportunity: p.opportunity.clone(),
        };
        let (change, _) = change_for(&p.tenant, &m, now_ms, expiry_secs(now_ms));
        let take_event = build(
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(pk_pending_deletion(p)))
                .key("sk", s(SK_DEDUP))
                .update_expression(format!(
                    "SET {OUTBOX_ATTRIBUTE} = pendingEvent REMOVE pendingEvent"
                ))
                .condition_expression("attribute_exists(pendingEvent)")
                .build(),
        )?;
        let items = vec![
            TransactWriteItem::builder().update(take_event).build(),
            TransactWriteItem::builder()
                .update(change.into_update(&self.table)?)
                .build(),
        ];
        Ok(match self.transact(items).await? {
            // Written by an earlier run (`Seen`): its event is in the outbox.
            None | Some(Cancelled::Seen) => DeletionOutcome::Confirmed,
            Some(_) => DeletionOutcome::AlreadyDeleted,
        })
    }

    async fn settle_deletion(
        &self,
        p: &PendingDeletion,
        how: &'static str,
    ) -> Result<(), StoreError> {
        // One item: a conditional update, not a transaction (half the write units).
        let u = self.settle(p, how)?;
        let update = self
            .client
            .update_item()
            .table_name(u.table_name())
            .set_key(Some(u.key().clone()))
            .update_expression(u.update_expression())
            .set_condition_expression(u.condition_expression().map(str::to_string))
            .set_expression_attribute_values(u.expression_attribute_values().cloned())
            .send()
            .await;
        conditional(update).map(drop)
    }

    async fn reject_deletion(&self, p: &PendingDeletion, _now_ms: i64) -> Result<(), StoreError> {
        let count = build(
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(pk_tenant(&p.tenant)))
                .key("sk", s(SK_STATS))
                .update_expression("ADD deletionsUnconfirmed :one")
                .expression_attribute_values(":one", n(1))
                .build(),
        )?;
        let items = vec![
            TransactWriteItem::builder()
                .update(self.settle(p, "unconfirmed")?)
                .build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        // Settled before (`Seen`): counted then.
        self.transact(items).await.map(drop)
    }

    async fn defer_deletion(&self, p: &PendingDeletion, due_at_ms: i64) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk_pending_deletion(p)))
            .key("sk", s(SK_DEDUP))
            .update_expression("SET dueAt = :at ADD attempts :one")
            .condition_expression(PENDING)
            .expression_attribute_values(":at", n(due_at_ms))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        conditional(update).map(drop)
    }
}
