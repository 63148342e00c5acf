use super::*;

impl CommandStore for InMemoryStore {
    async fn claim_command(
        &self,
        tenant: &str,
        id: &str,
        kind: &str,
        now_ms: i64,
    ) -> Result<CommandClaim, StoreError> {
        let mut s = self.0.lock().unwrap();
        let k = key(tenant, id);
        let Some(c) = s.commands.get_mut(&k) else {
            let record = CommandRecord {
                state: CommandState::Claimed,
                kind: kind.into(),
                attempts: 1,
                result: None,
                error: None,
                updated_at: now_ms,
            };
            s.commands.insert(
                k,
                CommandRec {
                    record,
                    lease_until: now_ms + COMMAND_LEASE_MS,
                    uncertain: false,
                    first_claimed_at: now_ms,
                },
            );
            return Ok(CommandClaim::Go {
                uncertain: false,
                first_claimed_at: now_ms,
                attempt: 1,
                was_parked: false,
            });
        };
        let old = c.record.state;
        match old {
            CommandState::Done | CommandState::Failed => {
                return Ok(CommandClaim::Finished(c.record.clone()));
            }
            CommandState::Claimed if c.lease_until >= now_ms => return Ok(CommandClaim::Busy),
            _ => {}
        }
        c.record.state = CommandState::Claimed;
        c.record.attempts += 1;
        c.record.updated_at = now_ms;
        c.lease_until = now_ms + COMMAND_LEASE_MS;
        Ok(CommandClaim::Go {
            uncertain: c.uncertain || old == CommandState::Claimed,
            first_claimed_at: c.first_claimed_at,
            attempt: c.record.attempts,
            was_parked: old == CommandState::Parked,
        })
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
        let mut s = self.0.lock().unwrap();
        let Some(c) = s.commands.get_mut(&key(tenant, id)) else {
            return Ok(());
        };
        c.record.updated_at = now_ms;
        c.lease_until = 0;
        let mut parked = None;
        match end {
            CommandEnd::Done { result } => {
                c.record.state = CommandState::Done;
                c.record.result = Some(result.clone());
                c.uncertain = false;
            }
            CommandEnd::Failed { error } => {
                c.record.state = CommandState::Failed;
                c.record.error = Some(error.clone());
            }
            CommandEnd::Released { error, uncertain } => {
                c.record.state = CommandState::Released;
                c.record.error = Some(error.clone());
                c.uncertain |= uncertain;
            }
            CommandEnd::Parked { error, command } => {
                c.record.state = CommandState::Parked;
                c.record.error = Some(error.clone());
                parked = Some(command.clone());
            }
        }
        let done = matches!(end, CommandEnd::Done { .. } | CommandEnd::Failed { .. });
        if let Some(command) = parked {
            s.parked
                .entry(tenant.to_string())
                .or_default()
                .insert(id.to_string(), command);
        } else if done && was_parked {
            s.parked.entry(tenant.to_string()).or_default().remove(id);
        }
        if let Some(e) = event {
            s.emit(std::slice::from_ref(e));
        }
        Ok(())
    }

    async fn command(&self, tenant: &str, id: &str) -> Result<Option<CommandRecord>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .commands
            .get(&key(tenant, id))
            .map(|c| c.record.clone()))
    }

    async fn parked(&self, tenant: &str) -> Result<Vec<Value>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .parked
            .get(tenant)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn interview_map(
        &self,
        tenant: &str,
        interview: &str,
    ) -> Result<Option<InterviewMap>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .interview_maps
            .get(&key(tenant, interview))
            .cloned())
    }

    async fn put_interview_map(
        &self,
        tenant: &str,
        interview: &str,
        map: &InterviewMap,
    ) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .interview_maps
            .insert(key(tenant, interview), map.clone());
        Ok(())
    }

    async fn delete_interview_map(&self, tenant: &str, interview: &str) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .interview_maps
            .remove(&key(tenant, interview));
        Ok(())
    }
}
