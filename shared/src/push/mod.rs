//! Pushes into Lever, exactly once: each command is claimed in the store, carried out with one
//! Lever write on the happy path, and ended as done, failed (permanent, with Lever's reason),
//! released (retry later) or parked (the tenant's key was rejected).
//!
//! A command whose earlier attempt may have written to Lever (it timed out, or died holding its
//! lease) is reconciled first: the note, feedback or panel it would create is looked for.

pub mod command;
mod feedback;
mod file;
mod interview;
pub mod parked;
pub mod render;

use crate::clock::Clock;
use crate::lever::calls::Lever;
use crate::lever::models::{ArchiveReason, Stage, TemplateField};
use crate::lever::{LeverApi, LeverError};
use crate::secrets::SecretStore;
use crate::store::{
    CommandClaim, CommandEnd, CommandRecord, CommandStore, InterviewMap, StatsStore, TenantStatus,
    TenantStore,
};
use crate::tenant::{TenantContext, Tenants};
use command::{Body, Command, InterviewAction, InterviewCommand, PushKind};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Instant;

/// What became of a command.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Outcome {
    Done {
        result: Value,
    },
    /// Done or failed before; nothing was written now.
    Duplicate {
        record: CommandRecord,
    },
    /// Permanent: recorded with the reason, not retried.
    Failed {
        error: String,
    },
    /// Kept until the tenant reconnects.
    Parked {
        error: String,
    },
    /// Try again later (the message goes back to the queue).
    Retry {
        error: String,
    },
    /// Not a command this function can read, and without the ids to record it against: logged
    /// and counted (`CommandsInvalid`), not delivered again (it would fail the same way).
    Invalid {
        error: String,
    },
}

impl Outcome {
    /// Whether the queue should deliver the message again.
    pub fn redeliver(&self) -> bool {
        matches!(self, Outcome::Retry { .. })
    }
}

/// One attempt at a command.
struct Attempt {
    /// An earlier attempt may have written to Lever: look before writing.
    uncertain: bool,
    /// Stable across attempts (identifies feedback this command created).
    first_claimed_at: i64,
    /// This attempt wrote to Lever (a later one must look first).
    wrote: bool,
}

/// Why carrying out a command stopped.
#[derive(Debug)]
enum Stop {
    Lever(LeverError),
    /// The command cannot succeed as written (unknown stage name, template field…).
    Invalid(String),
}

impl From<LeverError> for Stop {
    fn from(e: LeverError) -> Self {
        Stop::Lever(e)
    }
}

pub struct Pusher<L, S, K, C> {
    pub kind: PushKind,
    pub lever: L,
    pub store: S,
    pub tenants: Tenants<S, K, C>,
    pub clock: C,
    /// The upload bucket report files come from (`push-file`).
    pub uploads: Option<crate::files::Uploads>,
}

impl<
    L: LeverApi,
    S: CommandStore + TenantStore + StatsStore + Clone,
    K: SecretStore,
    C: Clock + Clone,
> Pusher<L, S, K, C>
{
    pub fn new(kind: PushKind, lever: L, store: S, secrets: K, clock: C) -> Self {
        let tenants = Tenants::new(store.clone(), secrets, clock.clone(), 60_000);
        Pusher {
            kind,
            lever,
            store,
            tenants,
            clock,
            uploads: None,
        }
    }

    pub async fn handle(&self, raw: Value, deadline: Instant) -> Outcome {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "push",
            kind = self.kind.as_str(),
            tenant = raw
                .get("tenantId")
                .and_then(serde_json::Value::as_str)
                .unwrap_or(""),
            command = raw
                .get("commandId")
                .and_then(serde_json::Value::as_str)
                .unwrap_or(""),
        );
        let outcome = self.carry_out(raw, deadline).instrument(span.clone()).await;
        // A command given back to its queue says why: an operator sees the cause (an AWS refusal
        // naming the action, a store that is down) beside the retry count.
        if let Outcome::Retry { error } = &outcome {
            span.in_scope(|| {
                tracing::warn!(error = error.as_str(), "push given back to be retried")
            });
        }
        count(&outcome);
        outcome
    }

    async fn carry_out(&self, raw: Value, deadline: Instant) -> Outcome {
        let now = self.clock.now_ms();
        let command = match Command::parse(self.kind, raw) {
            Ok(c) => c,
            Err(invalid) => {
                metrics::counter!("CommandsInvalid").increment(1);
                let Some(ids) = invalid.ids else {
                    tracing::warn!(
                        error = invalid.message.as_str(),
                        "a command that cannot be read or recorded: dropped"
                    );
                    return Outcome::Invalid {
                        error: invalid.message,
                    };
                };
                // Readable enough to record: the vendor sees the failure in the status.
                return self
                    .record_failure(
                        (&ids.tenant_id, &ids.command_id, &ids.opportunity_id),
                        invalid.message,
                        now,
                    )
                    .await;
            }
        };
        let env = &command.envelope;
        let ctx = match self.tenants.context(&env.tenant_id, deadline).await {
            Ok(Some(ctx)) => ctx,
            Ok(None) => {
                return self
                    .record_failure(
                        (&env.tenant_id, &env.command_id, &env.opportunity_id),
                        format!("unknown tenant `{}`", env.tenant_id),
                        now,
                    )
                    .await;
            }
            Err(e) => {
                return Outcome::Retry {
                    error: e.to_string(),
                };
            }
        };
        let (uncertain, first_claimed_at, was_parked, attempt_no) = match self
            .store
            .claim_command(&env.tenant_id, &env.command_id, self.kind.as_str(), now)
            .await
        {
            Ok(CommandClaim::Go {
                uncertain,
                first_claimed_at,
                was_parked,
                attempt,
            }) => (uncertain, first_claimed_at, was_parked, attempt),
            Ok(CommandClaim::Finished(record)) => return Outcome::Duplicate { record },
            Ok(CommandClaim::Busy) => {
                return Outcome::Retry {
                    error: "another attempt is carrying out this command".into(),
                };
            }
            Err(e) => {
                return Outcome::Retry {
                    error: e.to_string(),
                };
            }
        };
        // A record cached as disconnected may predate a reconnection by another function (the
        // replay of this very command, say): look again before parking.
        let ctx = if ctx.tenant.status == TenantStatus::Disconnected {
            match self.tenants.reload_context(&env.tenant_id, deadline).await {
                Ok(Some(fresh)) => fresh,
                _ => ctx,
            }
        } else {
            ctx
        };
        let end = if ctx.tenant.status == TenantStatus::Disconnected {
            let why = ctx
                .tenant
                .status_reason
                .clone()
                .unwrap_or_else(|| "the tenant is disconnected".into());
            CommandEnd::Parked {
                error: why,
                command: command.raw.clone(),
                kind: self.kind.as_str().to_string(),
            }
        } else {
            let mut attempt = Attempt {
                uncertain,
                first_claimed_at,
                wrote: false,
            };
            let mut result = self.execute(&command, &ctx, deadline, &mut attempt).await;
            // A 401 with credentials this instance cached: the tenant may have been given new ones
            // since. Tried once more with what is stored now, unless this attempt already wrote
            // (one of two notes): then the next attempt looks first, as after any partial write.
            if let Err(Stop::Lever(LeverError::Unauthorized(_))) = &result
                && !attempt.wrote
                && let Ok(Some(fresh)) = self.tenants.reload_context(&env.tenant_id, deadline).await
                && fresh.account.auth != ctx.account.auth
                && fresh.tenant.status != TenantStatus::Disconnected
            {
                result = self.execute(&command, &fresh, deadline, &mut attempt).await;
            }
            match result {
                Ok(result) => CommandEnd::Done { result },
                Err(Stop::Invalid(error)) => CommandEnd::Failed { error },
                Err(Stop::Lever(LeverError::Unauthorized(msg))) => {
                    let why = format!("Lever rejected the API key (401): {msg}");
                    if let Err(e) = self.tenants.disconnect(&env.tenant_id, &why).await {
                        tracing::error!(error = %e, "could not mark the tenant disconnected");
                    }
                    CommandEnd::Parked {
                        error: why,
                        command: command.raw.clone(),
                        kind: self.kind.as_str().to_string(),
                    }
                }
                // A partial success (one of two notes) also makes the next attempt look first.
                Err(Stop::Lever(e)) if e.is_retryable() => CommandEnd::Released {
                    error: e.to_string(),
                    uncertain: e.outcome_unknown() || attempt.wrote,
                },
                Err(Stop::Lever(e)) => CommandEnd::Failed {
                    error: e.to_string(),
                },
            }
        };
        let ended_at = self.clock.now_ms();
        let event = crate::events::push_outcome(
            self.kind.as_str(),
            &env.tenant_id,
            &env.command_id,
            &env.opportunity_id,
            &end,
            attempt_no,
            ended_at,
        );
        if let Err(e) = self
            .store
            .end_command(
                &env.tenant_id,
                &env.command_id,
                &end,
                was_parked,
                event.as_ref(),
                ended_at,
            )
            .await
        {
            // The lease runs out and a retry reconciles: nothing is lost, nothing doubled.
            tracing::error!(error = %e, command = env.command_id, "could not record the outcome");
            return Outcome::Retry {
                error: e.to_string(),
            };
        }
        // Figures for the status page: best effort, the outcome itself is recorded.
        if let Err(e) = self
            .store
            .count_push(&env.tenant_id, &end, self.clock.now_ms())
            .await
        {
            tracing::warn!(error = %e, "could not count the push");
        }
        let outcome = match end {
            CommandEnd::Done { result } => Outcome::Done { result },
            CommandEnd::Failed { error } => Outcome::Failed { error },
            CommandEnd::Released { error, .. } => Outcome::Retry { error },
            CommandEnd::Parked { error, .. } => Outcome::Parked { error },
        };
        tracing::info!(outcome = outcome_name(&outcome), "push ended");
        outcome
    }

    async fn record_failure(&self, ids: (&str, &str, &str), error: String, now: i64) -> Outcome {
        let (tenant, id, opportunity) = ids;
        match self
            .store
            .claim_command(tenant, id, self.kind.as_str(), now)
            .await
        {
            Ok(CommandClaim::Go {
                was_parked,
                attempt,
                ..
            }) => {
                let end = CommandEnd::Failed {
                    error: error.clone(),
                };
                let event = crate::events::push_outcome(
                    self.kind.as_str(),
                    tenant,
                    id,
                    opportunity,
                    &end,
                    attempt,
                    now,
                );
                if let Err(e) = self
                    .store
                    .end_command(tenant, id, &end, was_parked, event.as_ref(), now)
                    .await
                {
                    return Outcome::Retry {
                        error: e.to_string(),
                    };
                }
                if let Err(e) = self.store.count_push(tenant, &end, now).await {
                    tracing::warn!(error = %e, "could not count the push");
                }
                Outcome::Failed { error }
            }
            Ok(CommandClaim::Finished(record)) => Outcome::Duplicate { record },
            Ok(CommandClaim::Busy) => Outcome::Retry {
                error: "another attempt is carrying out this command".into(),
            },
            Err(e) => Outcome::Retry {
                error: e.to_string(),
            },
        }
    }

    async fn execute(
        &self,
        c: &Command,
        ctx: &TenantContext,
        deadline: Instant,
        attempt: &mut Attempt,
    ) -> Result<Value, Stop> {
        let uncertain = attempt.uncertain;
        let lever = Lever::new(&self.lever, &ctx.account, deadline);
        let opp = c.envelope.opportunity_id.as_str();
        let perform_as = c
            .envelope
            .perform_as
            .as_deref()
            .or(ctx.tenant.owner_user_id.as_deref());
        let required_user = || {
            perform_as.ok_or_else(|| Stop::Invalid("Lever needs a user to attribute this to: set the tenant's owner or pass `performAs`".into()))
        };
        match &c.body {
            Body::Note(n) => {
                let parts = render::note_parts(&c.envelope.command_id, n);
                let existing = if uncertain {
                    lever.notes(opp).await?
                } else {
                    Vec::new()
                };
                let mut ids = Vec::new();
                for part in parts {
                    let marker = render::marker(&part.reference);
                    if let Some(found) = existing.iter().find(|note| note.contains(&marker)) {
                        ids.push(found.id.clone());
                        continue;
                    }
                    ids.push(
                        lever
                            .create_note(opp, &part.text, part.secret, perform_as)
                            .await?
                            .id,
                    );
                    attempt.wrote = true;
                }
                Ok(json!({ "noteIds": ids }))
            }
            Body::Feedback(f) => self.feedback(&lever, c, f, required_user()?, attempt).await,
            Body::Stage(s) => {
                let stage = match (&s.stage_id, &s.stage) {
                    (Some(id), _) => id.clone(),
                    (None, Some(name)) => by_name(
                        &lever.stages().await?,
                        name,
                        |st: &Stage| &st.text,
                        |st| &st.id,
                    )
                    .ok_or_else(|| Stop::Invalid(format!("no stage named `{name}` in Lever")))?,
                    (None, None) => unreachable!("validated"),
                };
                let o = lever.move_stage(opp, &stage, perform_as).await?;
                Ok(json!({ "stageId": o.stage.map(|s| s.id).unwrap_or(stage) }))
            }
            Body::Archive(a) => {
                let reason = match (&a.reason_id, &a.reason) {
                    (Some(id), _) => Some(id.clone()),
                    (None, Some(name)) => Some(
                        by_name(
                            &lever.archive_reasons().await?,
                            name,
                            |r: &ArchiveReason| &r.text,
                            |r| &r.id,
                        )
                        .ok_or_else(|| {
                            Stop::Invalid(format!("no archive reason named `{name}` in Lever"))
                        })?,
                    ),
                    (None, None) => None,
                };
                let o = lever
                    .set_archived(opp, reason.as_deref(), perform_as)
                    .await?;
                Ok(json!({ "archived": o.archived.and_then(|a| a.reason) }))
            }
            Body::TagsLinks(t) => {
                for (op, field, values) in [
                    ("addTags", "tags", &t.add_tags),
                    ("removeTags", "tags", &t.remove_tags),
                    ("addLinks", "links", &t.add_links),
                    ("removeLinks", "links", &t.remove_links),
                ] {
                    if !values.is_empty() {
                        lever.edit_set(opp, op, field, values, perform_as).await?;
                    }
                }
                Ok(
                    json!({ "tags": t.add_tags.len() + t.remove_tags.len(), "links": t.add_links.len() + t.remove_links.len() }),
                )
            }
            Body::Interview(i) => {
                self.interview(&lever, c, i, required_user()?, attempt)
                    .await
            }
            Body::File(f) => self.file(&lever, c, f, required_user()?, attempt).await,
        }
    }
}

/// Each outcome by its metric's literal name, so the template check finds what the dashboard names.
fn count(o: &Outcome) {
    match o {
        Outcome::Done { .. } => metrics::counter!("PushDone").increment(1),
        Outcome::Duplicate { .. } => metrics::counter!("PushDuplicate").increment(1),
        Outcome::Failed { .. } | Outcome::Invalid { .. } => {
            metrics::counter!("PushFailed").increment(1)
        }
        Outcome::Parked { .. } => metrics::counter!("PushParked").increment(1),
        Outcome::Retry { .. } => metrics::counter!("PushRetried").increment(1),
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Done { .. } => "done",
        Outcome::Duplicate { .. } => "duplicate",
        Outcome::Failed { .. } => "failed",
        Outcome::Parked { .. } => "parked",
        Outcome::Retry { .. } => "retry",
        Outcome::Invalid { .. } => "invalid",
    }
}

/// The id of the item whose name matches, ignoring case and surrounding space.
fn by_name<T>(
    items: &[T],
    name: &str,
    text: impl Fn(&T) -> &String,
    id: impl Fn(&T) -> &String,
) -> Option<String> {
    items
        .iter()
        .find(|x| text(x).trim().eq_ignore_ascii_case(name.trim()))
        .map(|x| id(x).clone())
}

/// Commands of one SQS batch carried at once.
pub const BATCH_CONCURRENCY: usize = 8;

/// One invocation: an SQS batch (answering the messages to redeliver) or one command (answering its outcome).
pub async fn handle_event<L, S, K, C>(
    pusher: &Pusher<L, S, K, C>,
    payload: Value,
    deadline: Instant,
) -> Result<Value, crate::queue::Unreadable>
where
    L: LeverApi,
    S: CommandStore + TenantStore + StatsStore + Clone,
    K: SecretStore,
    C: Clock + Clone,
{
    crate::queue::each_item(payload, BATCH_CONCURRENCY, |command| async move {
        let outcome = pusher.handle(command, deadline).await;
        crate::queue::Handled {
            redeliver: outcome.redeliver(),
            answer: serde_json::to_value(&outcome).unwrap_or(Value::Null),
        }
    })
    .await
}
