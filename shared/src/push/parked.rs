//! Commands parked while Lever refused their tenant's credentials: sent back to their kinds' queues
//! when the tenant reconnects (a new key, the OAuth callback, a connection test that passes again, or
//! by hand), oldest first; failed with the reason when they have waited too long.
//!
//! A replayed command is the vendor's message again: its push claims it by `commandId` (a parked
//! record may be claimed), so a command replayed twice still writes to Lever once, and its parked
//! entry goes when that attempt ends done or failed.

use super::command::PushKind;
use crate::events::VendorEvent;
use crate::store::{CommandEnd, CommandStore, ParkedCommand, StoreError};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// SQS takes at most this many messages per `SendMessageBatch`.
const BATCH: usize = 10;

/// Where replayed commands go: the push functions' queues.
///
/// An enum rather than a trait: the admin functions hold one in their settings, for SQS deployed
/// and in memory in tests, without a type parameter on every admin handler.
pub enum PushQueues {
    /// The deployed queues (`PUSH_QUEUE_URL_<KIND>`).
    Sqs {
        client: aws_sdk_sqs::Client,
        urls: HashMap<PushKind, String>,
    },
    /// What would have been sent, in order (tests hand it to the push functions).
    Memory(Mutex<Vec<(PushKind, Value)>>),
}

impl std::fmt::Debug for PushQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushQueues::Sqs { urls, .. } => f.debug_struct("Sqs").field("urls", urls).finish(),
            PushQueues::Memory(m) => f
                .debug_struct("Memory")
                .field("held", &m.lock().unwrap().len())
                .finish(),
        }
    }
}

impl PushQueues {
    pub fn memory() -> Self {
        PushQueues::Memory(Mutex::default())
    }

    /// Takes what the in-memory queues hold (empty for SQS).
    pub fn take(&self) -> Vec<(PushKind, Value)> {
        match self {
            PushQueues::Memory(m) => std::mem::take(&mut *m.lock().unwrap()),
            PushQueues::Sqs { .. } => Vec::new(),
        }
    }

    /// Sends up to [`BATCH`] commands of one kind; answers the indexes that were accepted.
    async fn send(&self, kind: PushKind, commands: &[&Value]) -> Result<Vec<usize>, String> {
        match self {
            PushQueues::Memory(m) => {
                m.lock()
                    .unwrap()
                    .extend(commands.iter().map(|c| (kind, (*c).clone())));
                Ok((0..commands.len()).collect())
            }
            PushQueues::Sqs { client, urls } => {
                let url = urls
                    .get(&kind)
                    .ok_or_else(|| format!("no queue URL for push kind `{}`", kind.as_str()))?;
                let bodies: Vec<String> = commands.iter().map(|c| c.to_string()).collect();
                let sent = crate::queue::send_batch(client, url, &bodies).await?;
                for f in &sent.refused {
                    tracing::warn!(refused = f.as_str(), "a replayed command was not queued");
                }
                Ok(sent.accepted)
            }
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    /// Commands sent back to their queues.
    pub replayed: usize,
    pub by_kind: BTreeMap<&'static str, usize>,
    /// Commands that could not be sent (still parked, for the next replay), with why.
    pub not_sent: Vec<String>,
}

fn opportunity(c: &Value) -> &str {
    c["opportunityId"].as_str().unwrap_or_default()
}

/// `pushReplayed`: the command went back to its queue; its outcome follows as `pushDone` or
/// `pushFailed`.
fn replayed_event(tenant: &str, p: &ParkedCommand, at: i64) -> VendorEvent {
    VendorEvent::outcome(
        format!("{tenant}/cmd/{}/replayed/{}", p.id, p.replays + 1),
        tenant,
        "pushReplayed",
        Some(opportunity(&p.command)),
        crate::events::payload::to_value(crate::events::payload::PushReplayed {
            command_id: p.id.clone(),
            push: p.kind.clone(),
            parked_at: p.parked_at,
        }),
        at,
    )
}

/// Sends every parked command of `tenant` back to its kind's queue, oldest first.
pub async fn replay<S: CommandStore>(
    store: &S,
    queues: &PushQueues,
    tenant: &str,
    now_ms: i64,
) -> Result<Replayed, StoreError> {
    let parked = store.parked(tenant).await?;
    let mut report = Replayed::default();
    // Per kind, keeping the order they were parked in.
    let mut by_kind: Vec<(PushKind, Vec<&ParkedCommand>)> = Vec::new();
    for p in &parked {
        // Entries parked before kinds were kept: the command's record knows it.
        let kind = match PushKind::parse(&p.kind) {
            Some(k) => Some(k),
            None => store
                .command(tenant, &p.id)
                .await?
                .and_then(|r| PushKind::parse(&r.kind)),
        };
        let Some(kind) = kind else {
            report
                .not_sent
                .push(format!("{}: unknown push kind `{}`", p.id, p.kind));
            continue;
        };
        match by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, list)) => list.push(p),
            None => by_kind.push((kind, vec![p])),
        }
    }
    for (kind, list) in by_kind {
        for chunk in list.chunks(BATCH) {
            let bodies: Vec<&Value> = chunk.iter().map(|p| &p.command).collect();
            let sent = match queues.send(kind, &bodies).await {
                Ok(sent) => sent,
                Err(e) => {
                    report
                        .not_sent
                        .extend(chunk.iter().map(|p| format!("{}: {e}", p.id)));
                    continue;
                }
            };
            for (i, p) in chunk.iter().enumerate() {
                if !sent.contains(&i) {
                    report
                        .not_sent
                        .push(format!("{}: the queue did not take it", p.id));
                    continue;
                }
                // The event is best effort beside the command itself, which is queued already.
                if let Err(e) = store
                    .mark_replayed(tenant, &p.id, &replayed_event(tenant, p, now_ms), now_ms)
                    .await
                {
                    tracing::warn!(tenant, command = p.id, error = %e, "could not record the replay");
                }
                report.replayed += 1;
                *report.by_kind.entry(kind.as_str()).or_default() += 1;
            }
        }
    }
    tracing::info!(
        tenant,
        replayed = report.replayed,
        not_sent = report.not_sent.len(),
        "parked commands replayed"
    );
    Ok(report)
}

/// Parked commands older than this many days are failed by the hourly sync (`PARKED_MAX_DAYS`).
pub const DEFAULT_MAX_PARKED_DAYS: i64 = 14;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// What [`expire`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Expiry {
    /// Failed now, for waiting longer than the limit.
    pub expired: usize,
    /// Within two days of the limit (the alarm's figure).
    pub near_expiry: usize,
}

/// Fails the tenant's commands parked longer than `max_days` (each with a `pushFailed` event
/// naming why) and counts those within two days of it.
pub async fn expire<S: CommandStore>(
    store: &S,
    tenant: &str,
    max_days: i64,
    now_ms: i64,
) -> Result<Expiry, StoreError> {
    let mut out = Expiry::default();
    let limit = now_ms - max_days * DAY_MS;
    let warn = limit + 2 * DAY_MS;
    for p in store.parked(tenant).await? {
        if p.parked_at < limit {
            let why = format!(
                "parked for more than {max_days} days without the tenant reconnecting ({})",
                p.error
                    .as_deref()
                    .unwrap_or("Lever refused its credentials")
            );
            if fail(store, tenant, &p, &why, now_ms).await? {
                out.expired += 1;
            }
        } else if p.parked_at < warn {
            out.near_expiry += 1;
        }
    }
    Ok(out)
}

/// Fails every parked command of a tenant being deleted, so the vendor hears of each.
pub async fn fail_all<S: CommandStore>(
    store: &S,
    tenant: &str,
    why: &str,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let mut failed = 0;
    for p in store.parked(tenant).await? {
        if fail(store, tenant, &p, why, now_ms).await? {
            failed += 1;
        }
    }
    Ok(failed)
}

async fn fail<S: CommandStore>(
    store: &S,
    tenant: &str,
    p: &ParkedCommand,
    why: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let end = CommandEnd::Failed {
        error: why.to_string(),
    };
    let Some(event) = crate::events::push_outcome(
        &p.kind,
        tenant,
        &p.id,
        opportunity(&p.command),
        &end,
        0,
        now_ms,
    ) else {
        return Ok(false);
    };
    store.fail_parked(tenant, &p.id, why, &event, now_ms).await
}
