use super::*;

fn sk_message(m: &Message) -> String {
    format!("MSG#{:013}#{}", m.sent_at, m.message_id)
}

impl TranscriptStore for InMemoryStore {
    async fn add_message(&self, m: &Message, quiet_ms: i64) -> Result<Ingested, StoreError> {
        let mut s = self.0.lock().unwrap();
        let k = key(&m.tenant_id, &m.opportunity_id);
        if s.candidates
            .get(&k)
            .is_some_and(|c| c.view.deleted_at.is_some())
        {
            return Ok(Ingested::CandidateDeleted);
        }
        let c = s.conversations.entry(k).or_default();
        let sk = sk_message(m);
        if c.messages.contains_key(&sk) {
            return Ok(Ingested::Duplicate);
        }
        c.messages.insert(sk, (m.clone(), false));
        if c.pending == 0 && c.due_at == 0 {
            c.due_at = m.sent_at + quiet_ms;
        }
        c.pending += 1;
        c.quiet_ms = quiet_ms;
        if m.sent_at > c.last_message_at {
            c.last_message_at = m.sent_at;
            if c.batch.is_none() {
                c.due_at = m.sent_at + quiet_ms;
            }
        }
        Ok(Ingested::Stored)
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<ConversationKey>, StoreError> {
        let s = self.0.lock().unwrap();
        let mut due: Vec<(i64, ConversationKey)> = s
            .conversations
            .iter()
            .filter(|(_, c)| c.pending > 0 && c.due_at <= now_ms)
            .map(|((t, o), c)| {
                (
                    c.due_at,
                    ConversationKey {
                        tenant: t.clone(),
                        opportunity: o.clone(),
                    },
                )
            })
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, k)| k).collect())
    }

    async fn claim_batch(
        &self,
        k: &ConversationKey,
        batch_id: &str,
        now_ms: i64,
        lease_ms: i64,
        max_messages: usize,
    ) -> Result<Option<Batch>, StoreError> {
        let mut s = self.0.lock().unwrap();
        let Some(c) = s.conversations.get_mut(&key(&k.tenant, &k.opportunity)) else {
            return Ok(None);
        };
        if c.due_at > now_ms || c.pending <= 0 || c.claim_until >= now_ms {
            return Ok(None);
        }
        c.claim_until = now_ms + lease_ms;
        if let Some((id, keys)) = &c.batch {
            let messages = keys
                .iter()
                .filter_map(|sk| c.messages.get(sk))
                .map(|(m, _)| m.clone())
                .collect();
            return Ok(Some(Batch {
                id: id.clone(),
                messages,
                resumed: true,
            }));
        }
        let fresh: Vec<(String, Message)> = c
            .messages
            .iter()
            .filter(|(_, (_, flushed))| !flushed)
            .take(max_messages)
            .map(|(sk, (m, _))| (sk.clone(), m.clone()))
            .collect();
        if fresh.is_empty() {
            c.pending = 0;
            c.claim_until = 0;
            return Ok(None);
        }
        c.batch = Some((
            batch_id.to_string(),
            fresh.iter().map(|(sk, _)| sk.clone()).collect(),
        ));
        Ok(Some(Batch {
            id: batch_id.to_string(),
            messages: fresh.into_iter().map(|(_, m)| m).collect(),
            resumed: false,
        }))
    }

    async fn finish_batch(
        &self,
        k: &ConversationKey,
        batch: &Batch,
        event: &crate::events::VendorEvent,
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        let Some(c) = s.conversations.get_mut(&key(&k.tenant, &k.opportunity)) else {
            return Ok(());
        };
        for m in &batch.messages {
            if let Some(entry) = c.messages.get_mut(&sk_message(m)) {
                entry.1 = true;
            }
        }
        if c.batch.as_ref().is_some_and(|(id, _)| *id == batch.id) {
            c.pending -= batch.messages.len() as i64;
            c.batch = None;
            c.claim_until = 0;
            c.last_error = None;
            if c.pending > 0 {
                c.due_at = c.last_message_at + c.quiet_ms;
            }
            s.emit(std::slice::from_ref(event));
        }
        Ok(())
    }

    async fn release_batch(
        &self,
        k: &ConversationKey,
        error: &str,
        retry_at_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(c) = self
            .0
            .lock()
            .unwrap()
            .conversations
            .get_mut(&key(&k.tenant, &k.opportunity))
        {
            c.claim_until = 0;
            c.due_at = retry_at_ms;
            c.last_error = Some(error.to_string());
        }
        Ok(())
    }

    async fn waiting(&self, k: &ConversationKey) -> Result<usize, StoreError> {
        let s = self.0.lock().unwrap();
        Ok(s.conversations
            .get(&key(&k.tenant, &k.opportunity))
            .map_or(0, |c| c.messages.values().filter(|(_, f)| !f).count()))
    }
}
