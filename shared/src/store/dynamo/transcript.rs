use super::*;

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
        let queries =
            (0..DUE_SHARDS).map(|shard| self.due_items(due_partition(shard), now_ms, limit));
        let mut found = Vec::new();
        for items in futures::future::join_all(queries).await {
            for item in &items? {
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
            .filter(|i| get_s(i, "sk").is_some_and(|sk| sk.starts_with(SK_MESSAGE)));
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
        event: &crate::events::VendorEvent,
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
                &format!("SET pending = pending - :n, {OUTBOX_ATTRIBUTE} = :o REMOVE claimUntil, batchId, batchKeys, lastError"),
                Some("batchId = :b"),
                vec![
                    (":n", n(batch.messages.len() as i64)),
                    (":b", s(batch.id.as_str())),
                    (":o", s(crate::events::to_outbox(std::slice::from_ref(event)))),
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
                get_s(i, "sk").is_some_and(|sk| sk.starts_with(SK_MESSAGE))
                    && !i.contains_key("flushedAt")
            })
            .count())
    }
}
