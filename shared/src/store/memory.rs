//! The store contract in memory, for unit tests. Same guards as the DynamoDB store.

use super::*;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct Candidate {
    view: CandidateView,
    archive_at: Option<i64>,
    hired_at: Option<i64>,
    /// The sync page that last wrote it and the events it owes.
    sync_mark: Option<(String, String)>,
}

struct InterviewRec {
    interview: Interview,
    deleted: bool,
}

#[derive(Default)]
struct Inner {
    dedup: HashMap<(String, String), (DedupRecord, i64)>,
    candidates: HashMap<(String, String), Candidate>,
    applications: HashMap<(String, String), BTreeMap<String, Application>>,
    interviews: HashMap<(String, String), BTreeMap<String, InterviewRec>>,
    contacts: HashMap<(String, String), Contact>,
    tenants: HashMap<String, Tenant>,
    commands: HashMap<(String, String), CommandRec>,
    parked: HashMap<String, BTreeMap<String, Value>>,
    interview_maps: HashMap<(String, String), InterviewMap>,
    conversations: HashMap<(String, String), Conversation>,
    /// Accepted deliveries: (tenant, kind, triggeredAt).
    deliveries: Vec<(String, crate::webhook::EventKind, i64)>,
    rejections: HashMap<(String, crate::webhook::EventKind), (i64, String)>,
    stats: HashMap<String, TenantStats>,
    admin: AdminData,
    /// OAuth refresh leases: tenant → (holder, until ms).
    leases: HashMap<String, (String, i64)>,
    /// Pending OAuth states by hash.
    oauth_states: HashMap<String, OAuthPending>,
    sync_jobs: HashMap<String, SyncJob>,
}

#[derive(Default)]
struct Conversation {
    /// Messages by `MSG#<sentAt>#<id>`, with whether they were posted.
    messages: BTreeMap<String, (Message, bool)>,
    pending: i64,
    last_message_at: i64,
    due_at: i64,
    claim_until: i64,
    batch: Option<(String, Vec<String>)>,
    last_error: Option<String>,
    quiet_ms: i64,
}

fn sk_message(m: &Message) -> String {
    format!("MSG#{:013}#{}", m.sent_at, m.message_id)
}

struct CommandRec {
    record: CommandRecord,
    lease_until: i64,
    uncertain: bool,
    first_claimed_at: i64,
}

/// Cheap to clone: clones share one state, as functions share one table.
#[derive(Default, Clone)]
pub struct InMemoryStore(std::sync::Arc<Mutex<Inner>>);

fn key(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

fn newer(at: Option<i64>, t: i64) -> bool {
    at.is_none_or(|at| at < t)
}

impl Inner {
    fn seen(&self, d: &Delivery<'_>, now_ms: i64) -> Option<DedupRecord> {
        self.dedup
            .get(&key(d.tenant, d.token))
            .filter(|(_, exp)| *exp >= now_ms / 1000)
            .map(|(r, _)| r.clone())
    }

    fn claim(&mut self, d: &Delivery<'_>, event: &str, now_ms: i64) {
        self.deliveries
            .push((d.tenant.to_string(), d.kind, d.triggered_at));
        let rec = DedupRecord {
            done: false,
            lease_until: now_ms + LEASE_MS,
            event: Some(event.to_string()),
        };
        self.dedup
            .insert(key(d.tenant, d.token), (rec, d.expires_at_secs(now_ms)));
    }

    /// Applies `m` if its guard holds; false when the change is stale.
    fn apply(&mut self, tenant: &str, m: &Mutation, t: i64) -> bool {
        let deleted = |s: &Self, opp: &str| {
            s.candidates
                .get(&key(tenant, opp))
                .is_some_and(|c| c.view.deleted_at.is_some())
        };
        match m {
            Mutation::Contact { contact, data } => {
                let k = key(tenant, contact);
                if !newer(self.contacts.get(&k).map(|c| c.at), t) {
                    return false;
                }
                self.contacts.insert(
                    k,
                    Contact {
                        contact_id: contact.clone(),
                        data: data.clone(),
                        at: t,
                    },
                );
                true
            }
            Mutation::Application {
                opportunity,
                application,
                posting,
            } => {
                if deleted(self, opportunity) {
                    return false;
                }
                let apps = self
                    .applications
                    .entry(key(tenant, opportunity))
                    .or_default();
                if !newer(apps.get(application).map(|a| a.at), t) {
                    return false;
                }
                apps.insert(
                    application.clone(),
                    Application {
                        posting_id: posting.clone(),
                        at: t,
                    },
                );
                true
            }
            Mutation::InterviewUpsert {
                opportunity,
                interview,
                ..
            }
            | Mutation::InterviewDelete {
                opportunity,
                interview,
                ..
            } => {
                if deleted(self, opportunity) {
                    return false;
                }
                let ivs = self.interviews.entry(key(tenant, opportunity)).or_default();
                if !newer(ivs.get(interview).map(|i| i.interview.at), t) {
                    return false;
                }
                let rec = match m {
                    Mutation::InterviewUpsert { panel, data, .. } => InterviewRec {
                        interview: Interview {
                            panel_id: panel.clone(),
                            data: data.clone(),
                            at: t,
                        },
                        deleted: false,
                    },
                    _ => InterviewRec {
                        interview: Interview {
                            panel_id: None,
                            data: Map::new(),
                            at: t,
                        },
                        deleted: true,
                    },
                };
                ivs.insert(interview.clone(), rec);
                true
            }
            Mutation::Stage { opportunity, .. }
            | Mutation::Archive { opportunity, .. }
            | Mutation::Hired { opportunity }
            | Mutation::Deleted { opportunity } => {
                let c = self.candidates.entry(key(tenant, opportunity)).or_default();
                if c.view.deleted_at.is_some() {
                    return false;
                }
                c.view.opportunity_id.clone_from(opportunity);
                match m {
                    Mutation::Stage { to, contact, .. } => {
                        if !newer(c.view.stage.as_ref().map(|s| s.since), t) {
                            return false;
                        }
                        c.view.stage = Some(Stage {
                            id: to.clone(),
                            since: t,
                        });
                        if c.view.contact_id.is_none() {
                            c.view.contact_id.clone_from(contact);
                        }
                    }
                    Mutation::Archive { to, .. } => {
                        if !newer(c.archive_at, t) {
                            return false;
                        }
                        c.archive_at = Some(t);
                        c.view.archived.clone_from(to);
                    }
                    Mutation::Hired { .. } => {
                        if !newer(c.hired_at, t) {
                            return false;
                        }
                        c.hired_at = Some(t);
                        c.view.hired = true;
                    }
                    _ => c.view.deleted_at = Some(t),
                }
                true
            }
        }
    }
}

impl WebhookStore for InMemoryStore {
    async fn claim_apply(
        &self,
        d: &Delivery<'_>,
        m: &Mutation,
        event: &str,
        now_ms: i64,
    ) -> Result<Claim, StoreError> {
        let mut s = self.0.lock().unwrap();
        if let Some(rec) = s.seen(d, now_ms) {
            return Ok(Claim::Seen(rec));
        }
        if !s.apply(d.tenant, m, d.triggered_at) {
            return Ok(Claim::Stale);
        }
        s.claim(d, event, now_ms);
        Ok(Claim::Applied)
    }

    async fn claim_only(
        &self,
        d: &Delivery<'_>,
        event: &str,
        now_ms: i64,
    ) -> Result<Claim, StoreError> {
        let mut s = self.0.lock().unwrap();
        if let Some(rec) = s.seen(d, now_ms) {
            return Ok(Claim::Seen(rec));
        }
        s.claim(d, event, now_ms);
        Ok(Claim::Applied)
    }

    async fn take_over(
        &self,
        d: &Delivery<'_>,
        seen_lease: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        match s.dedup.get_mut(&key(d.tenant, d.token)) {
            Some((r, _)) if !r.done && r.lease_until == seen_lease => {
                r.lease_until = now_ms + LEASE_MS;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn complete(&self, d: &Delivery<'_>) -> Result<(), StoreError> {
        if let Some((r, _)) = self
            .0
            .lock()
            .unwrap()
            .dedup
            .get_mut(&key(d.tenant, d.token))
        {
            r.done = true;
            r.event = None;
        }
        Ok(())
    }

    async fn release(&self, d: &Delivery<'_>) -> Result<(), StoreError> {
        if let Some((r, _)) = self
            .0
            .lock()
            .unwrap()
            .dedup
            .get_mut(&key(d.tenant, d.token))
        {
            r.lease_until = 0;
        }
        Ok(())
    }

    async fn purge(&self, tenant: &str, opportunity: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        let k = key(tenant, opportunity);
        s.conversations.remove(&k);
        s.applications.remove(&k);
        s.interviews.remove(&k);
        let contact = s.candidates.get_mut(&k).and_then(|c| {
            let deleted_at = c.view.deleted_at;
            let contact = c.view.contact_id.take();
            *c = Candidate::default();
            c.view = CandidateView {
                opportunity_id: opportunity.to_string(),
                deleted_at,
                ..Default::default()
            };
            contact
        });
        if let Some(contact) = contact {
            s.contacts.remove(&key(tenant, &contact));
        }
        Ok(())
    }

    async fn candidate(
        &self,
        tenant: &str,
        opportunity: &str,
    ) -> Result<Option<CandidateView>, StoreError> {
        let s = self.0.lock().unwrap();
        let k = key(tenant, opportunity);
        let mut view = match s.candidates.get(&k) {
            Some(c) => c.view.clone(),
            None if s.applications.contains_key(&k) || s.interviews.contains_key(&k) => {
                CandidateView {
                    opportunity_id: opportunity.to_string(),
                    ..Default::default()
                }
            }
            None => return Ok(None),
        };
        if view.deleted_at.is_none() {
            view.applications = s.applications.get(&k).cloned().unwrap_or_default();
            view.interviews = s
                .interviews
                .get(&k)
                .map(|m| {
                    m.iter()
                        .filter(|(_, r)| !r.deleted)
                        .map(|(id, r)| (id.clone(), r.interview.clone()))
                        .collect()
                })
                .unwrap_or_default();
        }
        Ok(Some(view))
    }

    async fn contact(&self, tenant: &str, contact: &str) -> Result<Option<Contact>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .contacts
            .get(&key(tenant, contact))
            .cloned())
    }
}

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

impl TenantStore for InMemoryStore {
    async fn set_tenant_status(
        &self,
        id: &str,
        status: TenantStatus,
        reason: &str,
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(t) = self.0.lock().unwrap().tenants.get_mut(id) {
            t.status = status;
            t.status_reason = Some(reason.to_string());
        }
        Ok(())
    }

    async fn put_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .tenants
            .insert(t.id.clone(), t.clone());
        Ok(())
    }
    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        Ok(self.0.lock().unwrap().tenants.get(id).cloned())
    }

    async fn acquire_refresh_lease(
        &self,
        tenant: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.leases
            .get(tenant)
            .is_some_and(|(_, until)| *until >= now_ms)
        {
            return Ok(false);
        }
        s.leases
            .insert(tenant.to_string(), (holder.to_string(), until_ms));
        Ok(true)
    }

    async fn release_refresh_lease(&self, tenant: &str, holder: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.leases.get(tenant).is_some_and(|(h, _)| h == holder) {
            s.leases.remove(tenant);
        }
        Ok(())
    }
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

impl StatsStore for InMemoryStore {
    async fn record_rejection(
        &self,
        tenant: &str,
        kind: crate::webhook::EventKind,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .rejections
            .insert((tenant.to_string(), kind), (at_ms, reason.to_string()));
        Ok(())
    }

    async fn webhook_stat(
        &self,
        tenant: &str,
        kind: crate::webhook::EventKind,
        since_ms: i64,
    ) -> Result<WebhookStat, StoreError> {
        let s = self.0.lock().unwrap();
        let times: Vec<i64> = s
            .deliveries
            .iter()
            .filter(|(t, k, at)| t == tenant && *k == kind && *at >= since_ms)
            .map(|(_, _, at)| *at)
            .collect();
        let rejection = s.rejections.get(&(tenant.to_string(), kind));
        Ok(WebhookStat {
            deliveries: times.len() as u64,
            last_received_at: times.iter().max().copied(),
            last_rejected_at: rejection.map(|r| r.0),
            last_rejection: rejection.map(|r| r.1.clone()),
        })
    }

    async fn count_push(
        &self,
        tenant: &str,
        end: &CommandEnd,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        let st = s.stats.entry(tenant.to_string()).or_default();
        match end {
            CommandEnd::Done { .. } => st.pushes_done += 1,
            CommandEnd::Released { .. } => {}
            CommandEnd::Failed { error } | CommandEnd::Parked { error, .. } => {
                if matches!(end, CommandEnd::Failed { .. }) {
                    st.pushes_failed += 1;
                } else {
                    st.pushes_parked += 1;
                }
                st.last_push_error = Some(error.clone());
                st.last_push_error_at = Some(at_ms);
            }
        }
        Ok(())
    }

    async fn add_waiting(&self, tenant: &str, delta: i64) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .stats
            .entry(tenant.to_string())
            .or_default()
            .transcript_messages_waiting += delta;
        Ok(())
    }

    async fn tenant_stats(&self, tenant: &str) -> Result<TenantStats, StoreError> {
        let mut st = self
            .0
            .lock()
            .unwrap()
            .stats
            .get(tenant)
            .cloned()
            .unwrap_or_default();
        st.transcript_messages_waiting = st.transcript_messages_waiting.max(0);
        Ok(st)
    }
}

#[derive(Default)]
pub(crate) struct AdminData {
    postings: HashMap<String, BTreeMap<String, PostingRecord>>,
    roles: HashMap<String, BTreeMap<String, String>>,
}

impl AdminStore for InMemoryStore {
    async fn put_oauth_state(&self, pending: &OAuthPending) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.oauth_states.contains_key(&pending.state_hash) {
            return Ok(false);
        }
        s.oauth_states
            .insert(pending.state_hash.clone(), pending.clone());
        Ok(true)
    }

    async fn take_oauth_state(
        &self,
        state_hash: &str,
        now_ms: i64,
    ) -> Result<Option<OAuthPending>, StoreError> {
        let mut s = self.0.lock().unwrap();
        match s.oauth_states.get(state_hash) {
            Some(p) if p.expires_at > now_ms => Ok(s.oauth_states.remove(state_hash)),
            _ => Ok(None),
        }
    }

    async fn set_owner(&self, tenant: &str, user: &str) -> Result<bool, StoreError> {
        Ok(match self.0.lock().unwrap().tenants.get_mut(tenant) {
            Some(t) => {
                t.owner_user_id = Some(user.to_string());
                true
            }
            None => false,
        })
    }

    async fn put_postings(
        &self,
        tenant: &str,
        postings: &[PostingRecord],
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        let map = s.admin.postings.entry(tenant.to_string()).or_default();
        for p in postings {
            map.insert(p.id.clone(), p.clone());
        }
        Ok(())
    }

    async fn postings(&self, tenant: &str) -> Result<Vec<PostingRecord>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .admin
            .postings
            .get(tenant)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn set_role(
        &self,
        tenant: &str,
        role: &str,
        posting: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        let map = s.admin.roles.entry(tenant.to_string()).or_default();
        match posting {
            Some(p) => map.insert(role.to_string(), p.to_string()),
            None => map.remove(role),
        };
        Ok(())
    }

    async fn roles(&self, tenant: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .admin
            .roles
            .get(tenant)
            .map(|m| m.iter().map(|(r, p)| (r.clone(), p.clone())).collect())
            .unwrap_or_default())
    }

    async fn delete_tenant_data(&self, tenant: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        s.tenants.remove(tenant);
        s.stats.remove(tenant);
        s.parked.remove(tenant);
        s.rejections.retain(|(t, _), _| t != tenant);
        s.deliveries.retain(|(t, _, _)| t != tenant);
        s.dedup.retain(|(t, _), _| t != tenant);
        s.admin.postings.remove(tenant);
        s.admin.roles.remove(tenant);
        s.sync_jobs.remove(tenant);
        Ok(())
    }
}

impl SyncStore for InMemoryStore {
    async fn sync_views(
        &self,
        tenant: &str,
        opportunities: &[String],
    ) -> Result<HashMap<String, SyncedView>, StoreError> {
        let s = self.0.lock().unwrap();
        let mut out = HashMap::new();
        for opp in opportunities {
            let k = key(tenant, opp);
            let apps = s.applications.get(&k);
            let Some(c) = s.candidates.get(&k) else {
                if let Some(apps) = apps {
                    let v = SyncedView {
                        application_ids: apps.keys().cloned().collect(),
                        ..Default::default()
                    };
                    out.insert(opp.clone(), v);
                }
                continue;
            };
            let (mark, owed_events) = c.sync_mark.clone().unzip();
            out.insert(
                opp.clone(),
                SyncedView {
                    stage: c.view.stage.clone(),
                    archived: c.view.archived.clone(),
                    archive_at: c.archive_at,
                    hired_at: c.hired_at,
                    contact_id: c.view.contact_id.clone(),
                    application_ids: apps
                        .map(|a| a.keys().cloned().collect())
                        .unwrap_or_default(),
                    deleted_at: c.view.deleted_at,
                    mark,
                    owed_events,
                },
            );
        }
        Ok(out)
    }

    async fn write_sync(
        &self,
        tenant: &str,
        w: &SyncWrite,
        _now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        // All or nothing, as the one conditional write of the DynamoDB store.
        let k = key(tenant, &w.opportunity);
        let c = s.candidates.get(&k);
        if c.is_some_and(|c| c.view.deleted_at.is_some()) {
            return Ok(false);
        }
        let newer_in_place = w.changes.iter().any(|(m, t)| match m {
            Mutation::Stage { .. } => {
                !newer(c.and_then(|c| c.view.stage.as_ref().map(|s| s.since)), *t)
            }
            Mutation::Archive { .. } => !newer(c.and_then(|c| c.archive_at), *t),
            Mutation::Hired { .. } => !newer(c.and_then(|c| c.hired_at), *t),
            _ => false,
        });
        if newer_in_place {
            return Ok(false);
        }
        for (m, t) in &w.changes {
            s.apply(tenant, m, *t);
        }
        let c = s.candidates.entry(k).or_default();
        c.view.opportunity_id.clone_from(&w.opportunity);
        c.sync_mark = Some((w.mark.clone(), w.events.clone()));
        Ok(true)
    }

    async fn sync_job(&self, tenant: &str) -> Result<Option<SyncJob>, StoreError> {
        Ok(self.0.lock().unwrap().sync_jobs.get(tenant).cloned())
    }

    async fn put_sync_job(&self, job: &SyncJob) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        s.sync_jobs.insert(job.tenant.clone(), job.clone());
        Ok(())
    }

    async fn claim_sync_job(
        &self,
        tenant: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<SyncJob>, StoreError> {
        let mut s = self.0.lock().unwrap();
        let Some(job) = s.sync_jobs.get_mut(tenant) else {
            return Ok(None);
        };
        if job.due_at.is_none_or(|d| d > now_ms) || job.lease_until >= now_ms {
            return Ok(None);
        }
        job.lease_until = until_ms;
        Ok(Some(job.clone()))
    }

    async fn save_sync_job(&self, job: &SyncJob, held_until: i64) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        match s.sync_jobs.get_mut(&job.tenant) {
            Some(cur) if cur.job_id == job.job_id && cur.lease_until == held_until => {
                *cur = job.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn due_sync_jobs(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let s = self.0.lock().unwrap();
        let mut due: Vec<(i64, String)> = s
            .sync_jobs
            .values()
            .filter_map(|j| {
                j.due_at
                    .filter(|d| *d <= now_ms)
                    .map(|d| (d, j.tenant.clone()))
            })
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, t)| t).collect())
    }
}
