use super::*;

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
                    // Kept across retries of a replayed command, so its parked entry goes when it ends.
                    was_parked: old.contains_key("isParked"),
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
        event: Option<&crate::events::VendorEvent>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (state, set, mut values) = match end {
            CommandEnd::Done { result } => (
                CommandState::Done,
                "resultJson = :r REMOVE leaseUntil, isUncertain, isParked",
                vec![(":r", s(result.to_string()))],
            ),
            CommandEnd::Failed { error } => (
                CommandState::Failed,
                "lastError = :e REMOVE leaseUntil, isParked",
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
                "lastError = :e, isParked = :t REMOVE leaseUntil",
                vec![(":e", s(error.as_str())), (":t", AV::Bool(true))],
            ),
        };
        values.extend([(":s", s(state_name(state))), (":now", n(now_ms))]);
        let outbox = match event {
            Some(e) => {
                values.push((":o", s(crate::events::to_outbox(std::slice::from_ref(e)))));
                format!(", {OUTBOX_ATTRIBUTE} = :o")
            }
            None => String::new(),
        };
        let change = Change {
            pk: pk_command(tenant, id),
            sk: SK_COMMAND.into(),
            update: format!("SET commandStatus = :s, updatedAt = :now{outbox}, {set}"),
            condition: "attribute_exists(pk)".into(),
            values: values
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        };
        let extra = match end {
            // Parking again keeps the first parkedAt: the expiry counts from it.
            CommandEnd::Parked {
                command,
                kind,
                error,
            } => {
                let up = Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(pk_parked(tenant)))
                    .key("sk", s(id))
                    .update_expression(
                        "SET commandJson = :c, pushKind = :k, lastError = :e, parkedAt = if_not_exists(parkedAt, :now)",
                    )
                    .expression_attribute_values(":c", s(command.to_string()))
                    .expression_attribute_values(":k", s(kind.as_str()))
                    .expression_attribute_values(":e", s(error.as_str()))
                    .expression_attribute_values(":now", n(now_ms));
                Some(
                    TransactWriteItem::builder()
                        .update(build(up.build())?)
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

    async fn parked(&self, tenant: &str) -> Result<Vec<ParkedCommand>, StoreError> {
        let items = self.query_all(&pk_parked(tenant)).await?;
        let mut parked: Vec<ParkedCommand> = items
            .iter()
            .filter_map(|i| {
                Some(ParkedCommand {
                    id: get_s(i, "sk")?,
                    kind: get_s(i, "pushKind").unwrap_or_default(),
                    command: serde_json::from_str(&get_s(i, "commandJson")?).ok()?,
                    parked_at: get_n(i, "parkedAt").unwrap_or(0),
                    error: get_s(i, "lastError"),
                    replays: get_n(i, "replays").unwrap_or(0) as u32,
                })
            })
            .collect();
        parked.sort_by(|a, b| (a.parked_at, &a.id).cmp(&(b.parked_at, &b.id)));
        Ok(parked)
    }

    async fn mark_replayed(
        &self,
        tenant: &str,
        id: &str,
        event: &crate::events::VendorEvent,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let change = Change {
            pk: pk_parked(tenant),
            sk: id.to_string(),
            update: format!("SET replayedAt = :now, {OUTBOX_ATTRIBUTE} = :o ADD replays :one"),
            condition: "attribute_exists(pk)".into(),
            values: vec![
                (":now".into(), n(now_ms)),
                (
                    ":o".into(),
                    s(crate::events::to_outbox(std::slice::from_ref(event))),
                ),
                (":one".into(), n(1)),
            ],
        };
        conditional(change.send_raw(&self.client, &self.table).await)?;
        Ok(())
    }

    async fn fail_parked(
        &self,
        tenant: &str,
        id: &str,
        error: &str,
        event: &crate::events::VendorEvent,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let record = Change {
            pk: pk_command(tenant, id),
            sk: SK_COMMAND.into(),
            update: format!(
                "SET commandStatus = :failed, lastError = :e, updatedAt = :now, {OUTBOX_ATTRIBUTE} = :o REMOVE isParked, leaseUntil"
            ),
            // Parked, or a replay of it that was released or died: not one in flight.
            condition: "attribute_exists(isParked) AND (commandStatus IN (:parked, :released) OR (commandStatus = :claimed AND leaseUntil < :now))".into(),
            values: vec![
                (":failed".into(), s(state_name(CommandState::Failed))),
                (":parked".into(), s(state_name(CommandState::Parked))),
                (":released".into(), s(state_name(CommandState::Released))),
                (":claimed".into(), s(state_name(CommandState::Claimed))),
                (":e".into(), s(error)),
                (":now".into(), n(now_ms)),
                (
                    ":o".into(),
                    s(crate::events::to_outbox(std::slice::from_ref(event))),
                ),
            ],
        };
        let del = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .key("pk", s(pk_parked(tenant)))
            .key("sk", s(id));
        let items = vec![
            TransactWriteItem::builder()
                .update(record.into_update(&self.table)?)
                .build(),
            TransactWriteItem::builder()
                .delete(build(del.build())?)
                .build(),
        ];
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            // No longer parked (a replay claimed it): the parked entry goes when that attempt ends.
            Err(e)
                if matches!(
                    e.as_service_error().and_then(cancelled),
                    Some(Cancelled::Seen)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
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
