//! SMS conversations into Lever: every message is stored once (`transcript-ingest`), and once a
//! conversation has been quiet for its tenant's quiet period the flush (`transcript-flush`, on a
//! schedule) posts it as one transcript note.
//!
//! Exactly once: a flush claims the conversation and fixes the batch of messages before posting;
//! a run that dies at any step leaves the batch fixed, and the next run resumes it, looking for the
//! note (by its reference line) before posting.

pub mod render;

pub use chrono_tz::Tz;

use crate::clock::Clock;
use crate::lever::calls::Lever;
use crate::lever::{LeverApi, LeverError};
use crate::queue::Handled;
use crate::secrets::SecretStore;
use crate::store::{
    Batch, ConversationKey, Ingested, Message, StatsStore, TenantStatus, TenantStore,
    TranscriptStore,
};
use crate::tenant::Tenants;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// The quiet period when the tenant sets none.
pub const DEFAULT_QUIET_MINUTES: i64 = 60;

/// One SMS message as the texting product sends it to transcript-ingest (one per SQS message).
#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageEvent {
    /// 1-64 letters, digits, '-' or '_'.
    pub tenant_id: String,
    /// The candidate's Lever opportunity id.
    pub opportunity_id: String,
    /// The texting product's id of the message: a message sent twice is stored once.
    pub message_id: String,
    /// `inbound` (from the candidate) or `outbound`.
    pub direction: String,
    pub from: String,
    pub to: String,
    /// 1 to 10,000 bytes of text.
    pub body: String,
    /// When it was sent, ms since the epoch (not in the future).
    pub sent_at: i64,
    /// Who sent it, as the transcript names them.
    #[serde(default)]
    pub sender_name: Option<String>,
}

/// Reads and checks a message event; the error says what is wrong.
pub fn parse_message(raw: Value, now_ms: i64) -> Result<Message, String> {
    let e: MessageEvent = crate::input::read(raw).map_err(|e| format!("message: {e}"))?;
    if !crate::ids::tenant_id(&e.tenant_id) {
        return Err("`tenantId` must be 1-64 letters, digits, '-' or '_'".into());
    }
    for (name, v) in [
        ("opportunityId", &e.opportunity_id),
        ("messageId", &e.message_id),
    ] {
        if !crate::ids::plain_id(v) {
            return Err(format!(
                "`{name}` must be 1-128 letters, digits, '-', '_', '.' or ':'"
            ));
        }
    }
    if e.direction != "inbound" && e.direction != "outbound" {
        return Err(format!(
            "`direction` is `inbound` or `outbound`, not `{}`",
            e.direction
        ));
    }
    if e.body.trim().is_empty() || e.body.len() > 10_000 {
        return Err("`body` must be 1 to 10,000 bytes of text".into());
    }
    if e.sent_at <= 0 || e.sent_at > now_ms + 24 * 3600 * 1000 {
        return Err("`sentAt` must be ms since the epoch, not in the future".into());
    }
    Ok(Message {
        tenant_id: e.tenant_id,
        opportunity_id: e.opportunity_id,
        message_id: e.message_id,
        direction: e.direction,
        from: e.from,
        to: e.to,
        body: e.body,
        sent_at: e.sent_at,
        sender_name: e.sender_name.filter(|n| !n.trim().is_empty()),
    })
}

fn quiet_ms(t: &crate::store::Tenant) -> i64 {
    t.transcript_quiet_minutes
        .filter(|m| *m > 0)
        .unwrap_or(DEFAULT_QUIET_MINUTES)
        * 60_000
}

pub struct Transcripts<L, S, K, C> {
    pub lever: L,
    pub store: S,
    pub tenants: Tenants<S, K, C>,
    pub clock: C,
    pub config: FlushConfig,
}

#[derive(Debug, Clone)]
pub struct FlushConfig {
    /// How long a flush holds a conversation.
    pub lease_ms: i64,
    /// Longest note; longer transcripts are split into numbered parts (`TRANSCRIPT_MAX_NOTE_CHARS`).
    pub max_note_chars: usize,
    /// Most messages in one transcript; the rest go into the next.
    pub max_messages: usize,
    /// Tenants flushed at once (each paced by its own Lever rate limit).
    pub tenants_at_once: usize,
    /// Conversations of one tenant in flight at once.
    pub per_tenant: usize,
    /// When a conversation that failed is tried again.
    pub retry_after_ms: i64,
    /// Stop claiming this long before the deadline.
    pub margin: Duration,
}

impl Default for FlushConfig {
    fn default() -> Self {
        FlushConfig {
            lease_ms: 5 * 60_000,
            max_note_chars: 10_000,
            max_messages: 500,
            tenants_at_once: 64,
            per_tenant: 4,
            retry_after_ms: 10 * 60_000,
            margin: Duration::from_secs(3),
        }
    }
}

/// What one flush run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlushReport {
    pub conversations: usize,
    pub notes: usize,
    pub messages: usize,
    /// Given back to be tried later (Lever failed, or the tenant is disconnected).
    pub released: usize,
    /// Stopped before the deadline with conversations still due.
    pub stopped_early: bool,
    /// Longest time a flushed conversation waited past its due time, ms.
    pub max_lag_ms: i64,
}

enum One {
    Flushed {
        notes: usize,
        messages: usize,
        lag_ms: i64,
    },
    Released,
    Skipped,
}

impl<
    L: LeverApi,
    S: TranscriptStore + TenantStore + StatsStore + Clone,
    K: SecretStore,
    C: Clock + Clone,
> Transcripts<L, S, K, C>
{
    pub fn new(lever: L, store: S, secrets: K, clock: C, config: FlushConfig) -> Self {
        let tenants = Tenants::new(store.clone(), secrets, clock.clone(), 60_000);
        Transcripts {
            lever,
            store,
            tenants,
            clock,
            config,
        }
    }

    /// Stores one message event.
    pub async fn ingest(&self, raw: Value) -> Handled {
        let invalid = |error: String| {
            tracing::warn!(%error, "message rejected");
            Handled {
                redeliver: true,
                answer: json!({"status": "invalid", "error": error}),
            }
        };
        let m = match parse_message(raw, self.clock.now_ms()) {
            Ok(m) => m,
            // It would fail the same way every time: counted, never delivered again.
            Err(error) => {
                tracing::warn!(%error, "message refused");
                metrics::counter!("MessagesInvalid").increment(1);
                return Handled {
                    redeliver: false,
                    answer: json!({"status": "invalid", "error": error}),
                };
            }
        };
        let tenant = match self.tenants.record(&m.tenant_id).await {
            Ok(Some(t)) => t,
            Ok(None) => return invalid(format!("unknown tenant `{}`", m.tenant_id)),
            Err(e) => {
                return Handled {
                    redeliver: true,
                    answer: json!({"status": "retry", "error": e.to_string()}),
                };
            }
        };
        match self.store.add_message(&m, quiet_ms(&tenant)).await {
            Ok(Ingested::Stored) => {
                if let Err(e) = self.store.add_waiting(&m.tenant_id, 1).await {
                    tracing::warn!(error = %e, "could not count the waiting message");
                }
                Handled {
                    redeliver: false,
                    answer: json!({"status": "stored", "dueAt": m.sent_at + quiet_ms(&tenant)}),
                }
            }
            Ok(Ingested::Duplicate) => Handled {
                redeliver: false,
                answer: json!({"status": "duplicate"}),
            },
            Ok(Ingested::CandidateDeleted) => Handled {
                redeliver: false,
                answer: json!({"status": "ignored", "reason": "the candidate was deleted"}),
            },
            Err(e) => Handled {
                redeliver: true,
                answer: json!({"status": "retry", "error": e.to_string()}),
            },
        }
    }

    /// Posts every due conversation it can before `deadline`, tenants in parallel.
    pub async fn flush(&self, deadline: Instant) -> FlushReport {
        // Stop claiming `margin` before the deadline, or a quarter of the budget when that is short.
        let margin = self
            .config
            .margin
            .min(deadline.saturating_duration_since(Instant::now()) / 4);
        let mut report = FlushReport::default();
        let mut attempted: HashSet<ConversationKey> = HashSet::new();
        loop {
            let now = self.clock.now_ms();
            let due: Vec<ConversationKey> = match self.store.due(now, 1000).await {
                Ok(d) => d.into_iter().filter(|k| !attempted.contains(k)).collect(),
                Err(e) => {
                    tracing::error!(error = %e, "could not read the due conversations");
                    break;
                }
            };
            if due.is_empty() {
                break;
            }
            if Instant::now() + margin >= deadline {
                report.stopped_early = true;
                break;
            }
            attempted.extend(due.iter().cloned());
            let mut by_tenant: BTreeMap<String, Vec<ConversationKey>> = BTreeMap::new();
            for k in due {
                by_tenant.entry(k.tenant.clone()).or_default().push(k);
            }
            let results: Vec<Vec<One>> = futures::stream::iter(by_tenant.into_values())
                .map(|keys| async move {
                    futures::stream::iter(keys)
                        .map(|k| async move { self.flush_one(&k, deadline, margin).await })
                        .buffer_unordered(self.config.per_tenant)
                        .collect::<Vec<One>>()
                        .await
                })
                .buffer_unordered(self.config.tenants_at_once)
                .collect()
                .await;
            for one in results.into_iter().flatten() {
                match one {
                    One::Flushed {
                        notes,
                        messages,
                        lag_ms,
                    } => {
                        report.conversations += 1;
                        report.notes += notes;
                        report.messages += messages;
                        report.max_lag_ms = report.max_lag_ms.max(lag_ms);
                    }
                    One::Released => report.released += 1,
                    One::Skipped => {}
                }
            }
            if Instant::now() + margin >= deadline {
                report.stopped_early = true;
                break;
            }
        }
        metrics::gauge!("TranscriptFlushLagSeconds").set(report.max_lag_ms as f64 / 1000.0);
        metrics::counter!("TranscriptsPosted").increment(report.conversations as u64);
        tracing::info!(?report, "transcript flush");
        report
    }

    async fn flush_one(&self, key: &ConversationKey, deadline: Instant, margin: Duration) -> One {
        if Instant::now() + margin >= deadline {
            return One::Skipped;
        }
        let now = self.clock.now_ms();
        let ctx = match self.tenants.context(&key.tenant, deadline).await {
            Ok(Some(ctx)) if ctx.tenant.status != TenantStatus::Disconnected => ctx,
            // A disconnected or unknown tenant keeps its buffer: tried again later, nothing lost.
            Ok(_) => {
                return self
                    .release(
                        key,
                        "the tenant is not connected",
                        now + self.config.retry_after_ms,
                    )
                    .await;
            }
            Err(e) => return self.release(key, &e.to_string(), now + 60_000).await,
        };
        let batch_id = format!("transcript-{now:x}-{:04x}", fastrand::u16(..));
        let batch = match self
            .store
            .claim_batch(
                key,
                &batch_id,
                now,
                self.config.lease_ms,
                self.config.max_messages,
            )
            .await
        {
            Ok(Some(b)) => b,
            Ok(None) => return One::Skipped,
            Err(e) => {
                tracing::warn!(error = %e, tenant = key.tenant, "could not claim a conversation");
                return One::Skipped;
            }
        };
        let tz = ctx
            .tenant
            .time_zone
            .as_deref()
            .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
            .unwrap_or(chrono_tz::UTC);
        let lever = Lever::new(&self.lever, &ctx.account, deadline);
        match self
            .post(&lever, key, &batch, tz, ctx.tenant.owner_user_id.as_deref())
            .await
        {
            Ok(note_ids) => {
                let notes = note_ids.len();
                let event =
                    crate::events::transcript_posted(key, &batch, note_ids, self.clock.now_ms());
                if let Err(e) = self
                    .store
                    .finish_batch(key, &batch, &event, self.clock.now_ms())
                    .await
                {
                    // The batch stays fixed: the next run finds the note and finishes it.
                    tracing::error!(error = %e, tenant = key.tenant, "transcript posted but not marked");
                    return One::Released;
                }
                if let Err(e) = self
                    .store
                    .add_waiting(&key.tenant, -(batch.messages.len() as i64))
                    .await
                {
                    tracing::warn!(error = %e, "could not count the posted messages");
                }
                let last = batch
                    .messages
                    .iter()
                    .map(|m| m.sent_at)
                    .max()
                    .unwrap_or(now);
                One::Flushed {
                    notes,
                    messages: batch.messages.len(),
                    lag_ms: (now - (last + quiet_ms(&ctx.tenant))).max(0),
                }
            }
            Err(LeverError::Unauthorized(msg)) => {
                let why = format!("Lever rejected the API key (401): {msg}");
                if let Err(e) = self.tenants.disconnect(&key.tenant, &why).await {
                    tracing::error!(error = %e, "could not mark the tenant disconnected");
                }
                self.release(key, &why, now + self.config.retry_after_ms)
                    .await
            }
            Err(e) if e.is_retryable() => self.release(key, &e.to_string(), now + 60_000).await,
            Err(e) => {
                self.release(key, &e.to_string(), now + self.config.retry_after_ms)
                    .await
            }
        }
    }

    /// Posts the batch's notes, skipping those an earlier run already posted.
    async fn post(
        &self,
        lever: &Lever<'_, L>,
        key: &ConversationKey,
        batch: &Batch,
        tz: chrono_tz::Tz,
        owner: Option<&str>,
    ) -> Result<Vec<String>, LeverError> {
        let parts = render::transcript(&batch.id, &batch.messages, tz, self.config.max_note_chars);
        let existing = if batch.resumed {
            lever.notes(&key.opportunity).await?
        } else {
            Vec::new()
        };
        let mut ids = Vec::with_capacity(parts.len());
        for part in &parts {
            let marker = crate::push::render::marker(&part.reference);
            if let Some(note) = existing.iter().find(|n| n.contains(&marker)) {
                ids.push(note.id.clone());
                continue;
            }
            let note = lever
                .create_note(&key.opportunity, &part.text, false, owner)
                .await?;
            ids.push(note.id);
        }
        Ok(ids)
    }

    async fn release(&self, key: &ConversationKey, error: &str, retry_at: i64) -> One {
        tracing::warn!(
            tenant = key.tenant,
            opportunity = key.opportunity,
            error,
            "transcript not posted; tried again later"
        );
        if let Err(e) = self.store.release_batch(key, error, retry_at).await {
            tracing::error!(error = %e, "could not release the conversation; its lease runs out");
        }
        One::Released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_events_are_checked() {
        let now = 1_795_428_000_000;
        let ok = json!({"tenantId": "acme", "opportunityId": "o-1", "messageId": "SM1", "direction": "inbound", "from": "+1", "to": "+2", "body": "hi", "sentAt": now});
        assert!(parse_message(ok.clone(), now).is_ok());
        for (field, value, says) in [
            ("direction", json!("sideways"), "inbound"),
            ("body", json!("  "), "body"),
            ("sentAt", json!(now + 2 * 86_400_000), "future"),
            (
                "sentAt",
                json!("yesterday"),
                "`sentAt` must be a whole number, not a string",
            ),
            ("messageId", json!("a/b"), "messageId"),
            ("tenantId", json!(""), "tenantId"),
            ("colour", json!("red"), "`colour` is not a field here"),
        ] {
            let mut bad = ok.clone();
            bad[field] = value;
            let err = parse_message(bad, now).unwrap_err();
            assert!(err.contains(says), "{field}: {err}");
        }
        let mut missing = ok;
        missing.as_object_mut().unwrap().remove("to");
        assert!(
            parse_message(missing, now)
                .unwrap_err()
                .contains("`to` is required")
        );
    }
}
