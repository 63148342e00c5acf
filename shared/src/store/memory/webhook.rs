use super::*;
use crate::events::VendorEvent;

impl Inner {
    pub(super) fn seen(&self, d: &Delivery<'_>, now_ms: i64) -> bool {
        self.dedup
            .get(&key(d.tenant, d.token))
            .is_some_and(|exp| *exp >= now_ms / 1000)
    }

    /// The delivery's dedup record, its event in the outbox.
    pub(super) fn record(&mut self, d: &Delivery<'_>, event: Option<&VendorEvent>, now_ms: i64) {
        self.deliveries
            .push((d.tenant.to_string(), d.kind, d.triggered_at));
        self.dedup
            .insert(key(d.tenant, d.token), d.expires_at_secs(now_ms));
        if let Some(e) = event {
            self.emit(std::slice::from_ref(e));
        }
    }

    /// Applies `m` if its guard holds; false when the change is stale.
    pub(super) fn apply(&mut self, tenant: &str, m: &Mutation, t: i64) -> bool {
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
    async fn apply_delivery(
        &self,
        d: &Delivery<'_>,
        m: &Mutation,
        event: &VendorEvent,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.seen(d, now_ms) {
            return Ok(Recorded::Duplicate);
        }
        if !s.apply(d.tenant, m, d.triggered_at) {
            return Ok(Recorded::Stale);
        }
        s.record(d, Some(event), now_ms);
        Ok(Recorded::Applied)
    }

    async fn record_delivery(
        &self,
        d: &Delivery<'_>,
        event: Option<&VendorEvent>,
        now_ms: i64,
    ) -> Result<Recorded, StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.seen(d, now_ms) {
            return Ok(Recorded::Duplicate);
        }
        s.record(d, event, now_ms);
        Ok(Recorded::Applied)
    }

    async fn purge(&self, tenant: &str, opportunity: &str) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        let k = key(tenant, opportunity);
        if s.candidates
            .get(&k)
            .is_none_or(|c| c.view.deleted_at.is_none())
        {
            return Ok(());
        }
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
        // Kept while another of the tenant's candidates refers to it.
        if let Some(contact) = contact {
            let referred = s.candidates.iter().any(|((t, _), c)| {
                t == tenant && c.view.contact_id.as_deref() == Some(contact.as_str())
            });
            if !referred {
                s.contacts.remove(&key(tenant, &contact));
            }
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
