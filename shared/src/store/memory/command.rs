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
                    parked: false,
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
            was_parked: c.parked,
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
            CommandEnd::Parked {
                error,
                command,
                kind,
            } => {
                c.record.state = CommandState::Parked;
                c.record.error = Some(error.clone());
                c.parked = true;
                parked = Some((command.clone(), kind.clone(), error.clone()));
            }
        }
        let done = matches!(end, CommandEnd::Done { .. } | CommandEnd::Failed { .. });
        if done {
            c.parked = false;
        }
        if let Some((command, kind, error)) = parked {
            let entry = s
                .parked
                .entry(tenant.to_string())
                .or_default()
                .entry(id.to_string())
                .or_insert_with(|| ParkedCommand {
                    id: id.to_string(),
                    kind: String::new(),
                    command: Value::Null,
                    parked_at: now_ms,
                    error: None,
                    replays: 0,
                });
            entry.kind = kind;
            entry.command = command;
            entry.error = Some(error);
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

    async fn parked(&self, tenant: &str) -> Result<Vec<ParkedCommand>, StoreError> {
        let mut parked: Vec<ParkedCommand> = self
            .0
            .lock()
            .unwrap()
            .parked
            .get(tenant)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        parked.sort_by(|a, b| (a.parked_at, &a.id).cmp(&(b.parked_at, &b.id)));
        Ok(parked)
    }

    async fn mark_replayed(
        &self,
        tenant: &str,
        id: &str,
        event: &crate::events::VendorEvent,
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        let Some(p) = s.parked.get_mut(tenant).and_then(|m| m.get_mut(id)) else {
            return Ok(());
        };
        p.replays += 1;
        s.emit(std::slice::from_ref(event));
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
        let mut s = self.0.lock().unwrap();
        let Some(c) = s.commands.get_mut(&key(tenant, id)) else {
            return Ok(false);
        };
        let in_flight = c.record.state == CommandState::Claimed && c.lease_until >= now_ms;
        if !c.parked
            || in_flight
            || matches!(c.record.state, CommandState::Done | CommandState::Failed)
        {
            return Ok(false);
        }
        c.parked = false;
        c.lease_until = 0;
        c.record.state = CommandState::Failed;
        c.record.error = Some(error.to_string());
        c.record.updated_at = now_ms;
        if let Some(m) = s.parked.get_mut(tenant) {
            m.remove(id);
        }
        s.emit(std::slice::from_ref(event));
        Ok(true)
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
