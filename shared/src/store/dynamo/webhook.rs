use super::*;
use crate::events::{VendorEvent, to_outbox};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

impl DynamoStore {
    /// The delivery's dedup record, holding its event for the outbox; written only if the delivery
    /// was not recorded before (DynamoDB's TTL deletes late: an expired record counts as absent).
    pub(super) fn dedup_put(
        &self,
        d: &Delivery<'_>,
        event: Option<&VendorEvent>,
        now_ms: i64,
    ) -> Result<Put, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(pk_dedup(d)))
            .item("sk", s(SK_DEDUP));
        let put = match event {
            Some(e) => put.item(OUTBOX_ATTRIBUTE, s(to_outbox(std::slice::from_ref(e)))),
            None => put,
        };
        build(
            put.item("eventKind", s(d.kind.as_str()))
                .item("hookKey", s(hook_key(d.tenant, d.kind)))
                .item("triggeredAt", n(d.triggered_at))
                .item("expiresAt", n(d.expires_at_secs(now_ms)))
                .condition_expression("attribute_not_exists(pk) OR expiresAt < :now")
                .expression_attribute_values(":now", n(now_ms / 1000))
                .build(),
        )
    }

    /// Writes `item` under the dedup record's condition: `Duplicate` when it was recorded before.
    pub(super) async fn put_once(&self, put: Put, item: Item) -> Result<Recorded, StoreError> {
        let req = self
            .client
            .put_item()
            .table_name(put.table_name())
            .set_item(Some(item))
            .set_condition_expression(put.condition_expression().map(str::to_string))
            .set_expression_attribute_values(put.expression_attribute_values().cloned());
        Ok(match conditional(req.send().await)? {
            Some(_) => Recorded::Applied,
            None => Recorded::Duplicate,
        })
    }
}

impl WebhookStore for DynamoStore {
    /// One `TransactWriteItems`: the dedup record and the guarded change (and, for an application
    /// or an interview, the check that the candidate is not deleted).
    async fn apply_delivery(
        &self,
        d: &Delivery<'_>,
        m: &Mutation,
        event: &VendorEvent,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        let (change, parent) = change_for(d.tenant, m, d.triggered_at, d.expires_at_secs(now_ms));
        let mut items = vec![
            TransactWriteItem::builder()
                .put(self.dedup_put(d, Some(event), now_ms)?)
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
        Ok(match self.transact(items).await? {
            None => Recorded::Applied,
            Some(Cancelled::Seen) => Recorded::Duplicate,
            Some(_) => Recorded::Stale,
        })
    }

    async fn record_delivery(
        &self,
        d: &Delivery<'_>,
        event: Option<&VendorEvent>,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        let put = self.dedup_put(d, event, now_ms)?;
        let item = put.item().clone();
        self.put_once(put, item).await
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
        // Only a tombstoned candidate is erased: a live one is never touched.
        let Some(candidate) = tombstone.filter(|c| c.contains_key("deletedAt")) else {
            return Ok(());
        };
        if let Some(contact) = get_s(candidate, "contactId")
            && !self.contact_has_another(tenant, &contact, &pk).await?
        {
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
            } else if let Some(id) = sk.strip_prefix(SK_APPLICATION) {
                let at = get_n(item, "changedAt").unwrap_or(0);
                view.applications.insert(
                    id.to_string(),
                    Application {
                        posting_id: get_s(item, "postingId"),
                        at,
                    },
                );
            } else if let Some(id) = sk.strip_prefix(SK_INTERVIEW) {
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

impl DynamoStore {
    /// Whether a candidate other than `own` (a partition key) refers to the contact. The index is
    /// eventually consistent: a candidate linked to the contact this very moment may be missed,
    /// and the contact's next webhook writes its item again.
    async fn contact_has_another(
        &self,
        tenant: &str,
        contact: &str,
        own: &str,
    ) -> Result<bool, StoreError> {
        let mut found = false;
        self.query_index(
            CONTACTS_INDEX,
            "contactKey",
            pk_contact(tenant, contact),
            |items| {
                found = items
                    .iter()
                    .any(|i| get_s(i, "pk").is_some_and(|pk| pk != own));
                !found
            },
        )
        .await?;
        Ok(found)
    }
}
