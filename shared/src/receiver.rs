//! The webhook receiver: parse, verify, drop duplicates, apply. One per event kind.
//!
//! A first delivery is one `TransactWriteItems`: the delivery's dedup record, holding the vendor
//! event for the outbox (published by the relay from the table's stream, `crate::relay`), and the
//! guarded change. A concurrent copy loses the dedup record's condition and is a duplicate; there
//! is no lease, no publish and no second write on the request path. A `candidateDeleted` is only
//! recorded: the sync applies it once Lever confirms (`crate::sync::deletions`).

use crate::clock::Clock;
use crate::events::vendor_event;
use crate::secrets::{CachedSecrets, SecretStore};
use crate::store::{DeletionStore, Delivery, Recorded, StatsStore, StoreError, WebhookStore};
use crate::webhook::{
    Envelope, EnvelopeError, EventKind, MAX_BODY_BYTES, Mutation, verify, within_window,
};
use serde_json::{Value, json};

/// What to answer Lever: a status and a small JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// Why the delivery was turned away, when it was.
    pub rejected: Option<&'static str>,
}

impl Reply {
    fn ok(status: &str) -> Self {
        Reply {
            status: 200,
            body: json!({ "status": status }),
            rejected: None,
        }
    }
    pub fn error(status: u16, error: &str, message: impl Into<String>) -> Self {
        Reply {
            status,
            body: json!({ "error": error, "message": message.into() }),
            rejected: None,
        }
    }
    /// One answer for every authentication failure, so it tells nothing about which tenants exist.
    fn unauthorized() -> Self {
        Reply::error(401, "unauthorized", "the signature could not be verified")
    }
}

/// A rejection in the metrics: in all, by reason and by Lever event (the dashboard's widgets).
fn count_rejected(reason: &'static str, kind: EventKind) {
    metrics::counter!("WebhookRejected").increment(1);
    metrics::counter!("WebhookRejectedByReason", "Reason" => reason).increment(1);
    metrics::counter!("WebhookRejectedByKind", "Kind" => kind.as_str()).increment(1);
}

/// An accepted delivery in the metrics: in all, and by Lever event.
fn count_accepted(kind: EventKind) {
    metrics::counter!("WebhookAccepted").increment(1);
    metrics::counter!("WebhookAcceptedByKind", "Kind" => kind.as_str()).increment(1);
}

/// Why a delivery was turned away: a label for logs and metrics.
fn rejected(reason: &'static str, kind: EventKind, tenant: &str, reply: Reply) -> Reply {
    tracing::warn!(
        reason,
        event = kind.as_str(),
        tenant,
        status = reply.status,
        "webhook rejected"
    );
    count_rejected(reason, kind);
    Reply {
        rejected: Some(reason),
        ..reply
    }
}

pub struct Receiver<S, K, C> {
    pub kind: EventKind,
    pub store: S,
    pub secrets: CachedSecrets<K, C>,
    pub clock: C,
    /// Checks the URL key before anything else.
    pub keys: crate::urlkey::UrlKeys,
    /// When this instance last recorded a rejection per tenant (at most one a minute).
    recorded: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl<S: WebhookStore + StatsStore + DeletionStore, K: SecretStore, C: Clock> Receiver<S, K, C> {
    pub fn new(
        kind: EventKind,
        store: S,
        secrets: CachedSecrets<K, C>,
        clock: C,
        keys: crate::urlkey::UrlKeys,
    ) -> Self {
        Receiver {
            kind,
            store,
            secrets,
            clock,
            keys,
            recorded: Default::default(),
        }
    }

    /// A delivery to `/webhooks/<tenant>/<url_key>/<event>`. A wrong URL key (or a made-up
    /// tenant) is answered 401 before anything else: no secret is read and nothing is written.
    pub async fn receive(&self, tenant: &str, url_key: &str, body: &[u8]) -> Reply {
        let Some(generation) = self.keys.check(tenant, url_key) else {
            count_rejected("url_key", self.kind);
            return Reply::unauthorized();
        };
        let reply = self.check_and_apply(tenant, generation, body).await;
        if let Some(reason) = reply.rejected {
            self.record_rejection(tenant, reason).await;
        }
        reply
    }

    /// Keeps the last rejection where the tenant's status page shows it, as its reason code
    /// (never request text): only for a tenant this instance already knows (its secret is cached,
    /// so a made-up tenant id costs neither a secret read nor a write), at most once a minute per
    /// kind here and, by a conditional write, across instances.
    async fn record_rejection(&self, tenant: &str, reason: &'static str) {
        let now = self.clock.now_ms();
        if !crate::ids::tenant_id(tenant) || !self.secrets.knows(tenant) {
            return;
        }
        {
            let mut recorded = self.recorded.lock().unwrap();
            if recorded.get(tenant).is_some_and(|at| now - at < 60_000) {
                return;
            }
            recorded.insert(tenant.to_string(), now);
        }
        if let Err(e) = self
            .store
            .record_rejection(tenant, self.kind, reason, now)
            .await
        {
            tracing::warn!(error = %e, "could not record the rejection");
        }
    }

    async fn check_and_apply(&self, tenant: &str, generation: u32, body: &[u8]) -> Reply {
        let kind = self.kind;
        if body.len() > MAX_BODY_BYTES {
            let msg = format!(
                "the body is {} bytes; at most {MAX_BODY_BYTES} are accepted",
                body.len()
            );
            return rejected(
                "too_large",
                kind,
                tenant,
                Reply::error(413, "payload_too_large", msg),
            );
        }
        let env = match Envelope::parse(body) {
            Ok(env) => env,
            Err(e) => {
                let code = if e == EnvelopeError::NotJson {
                    "invalid_json"
                } else {
                    "invalid_envelope"
                };
                return rejected(code, kind, tenant, Reply::error(400, code, e.to_string()));
            }
        };
        if env.event != kind.as_str() {
            let msg = format!(
                "this endpoint receives `{kind}` deliveries, not `{}`",
                env.event
            );
            return rejected(
                "wrong_event",
                kind,
                tenant,
                Reply::error(400, "wrong_event", msg),
            );
        }
        let now = self.clock.now_ms();
        // Checked before the tenant is looked up: the answer must not depend on the tenant.
        if !within_window(env.triggered_at, now) {
            let msg = "triggeredAt is outside the accepted window (15 days old to 5 minutes ahead)";
            return rejected(
                "outside_window",
                kind,
                tenant,
                Reply::error(401, "outside_window", msg),
            );
        }
        match self.verified(tenant, generation, &env).await {
            Ok(Verified::Yes) => {}
            Ok(Verified::RetiredUrl) => {
                return rejected("retired_url_key", kind, tenant, Reply::unauthorized());
            }
            Ok(Verified::No) => {
                return rejected("bad_signature", kind, tenant, Reply::unauthorized());
            }
            Err(e) => {
                tracing::error!(error = %e, tenant, "secret store unavailable");
                return Reply::error(
                    503,
                    "unavailable",
                    "the secret store is unavailable; retry later",
                );
            }
        }
        let d = Delivery {
            tenant,
            token: &env.token,
            kind,
            triggered_at: env.triggered_at,
        };
        // Lever signs the token and time, never the data: a verified delivery with nothing to
        // apply is recorded all the same, so its signature cannot carry other data later.
        if env.is_test() {
            tracing::info!(event = kind.as_str(), tenant, "test delivery acknowledged");
            return self.record_only(&d, "test", now).await;
        }
        let Some(mutation) = Mutation::from_data(kind, &env.data) else {
            tracing::warn!(
                event = kind.as_str(),
                tenant,
                "delivery without the ids its kind needs: acknowledged, ignored"
            );
            return self.record_only(&d, "ignored", now).await;
        };
        if let Mutation::Deleted { opportunity } = &mutation {
            return self
                .record_pending_deletion(&d, &mutation, opportunity, now)
                .await;
        }
        self.apply(&d, &mutation, now).await
    }

    /// A deletion's data is not signed: it waits for Lever's word (the sync asks, then tombstones
    /// and publishes, `crate::sync::deletions`). Recorded now, so a redelivery is a duplicate.
    async fn record_pending_deletion(
        &self,
        d: &Delivery<'_>,
        m: &Mutation,
        opportunity: &str,
        now: i64,
    ) -> Reply {
        let event = vendor_event(d, m);
        match retried(|| self.store.record_deletion(d, opportunity, &event, now)).await {
            Ok(Recorded::Duplicate) => {
                metrics::counter!("WebhookDuplicate").increment(1);
                Reply::ok("duplicate")
            }
            Ok(_) => {
                tracing::info!(
                    tenant = d.tenant,
                    "deletion recorded, to be confirmed with Lever"
                );
                count_accepted(self.kind);
                Reply::ok("pending")
            }
            Err(StoreError::Invalid(why)) => {
                tracing::error!(
                    tenant = d.tenant,
                    why,
                    "the store refused the deletion's record"
                );
                Reply::ok("ignored")
            }
            Err(e) => store_failed(d, e),
        }
    }

    /// Checks the signature against the tenant's tokens, re-reading them once on a mismatch so a
    /// token rotated minutes ago is accepted.
    async fn verified(
        &self,
        tenant: &str,
        generation: u32,
        env: &Envelope,
    ) -> Result<Verified, crate::secrets::SecretsError> {
        if !crate::ids::tenant_id(tenant) {
            return Ok(Verified::No);
        }
        // A key of a later generation than this instance's copy proves a rotation (only the stack
        // can make its MAC): read the secret again, and take the key even if the read lags.
        let ahead = |s: &crate::secrets::TenantSecret| {
            generation > s.url_generation
                && generation - s.url_generation <= crate::urlkey::ROTATIONS_AHEAD
        };
        let check = |s: &Option<std::sync::Arc<crate::secrets::TenantSecret>>| match s {
            Some(s)
                if generation < s.url_generation
                    || (generation != s.url_generation && !ahead(s)) =>
            {
                Verified::RetiredUrl
            }
            Some(s)
                if verify(
                    &env.signature,
                    &env.token,
                    env.triggered_at,
                    s.tokens(self.kind),
                ) =>
            {
                Verified::Yes
            }
            _ => Verified::No,
        };
        let cached = self.secrets.get(tenant).await?;
        let cached = match &cached {
            Some(s) if ahead(s) => self.secrets.reload(tenant).await?,
            _ => cached,
        };
        let first = check(&cached);
        if first == Verified::Yes {
            return Ok(first);
        }
        // A token pasted or a key rotated minutes ago: read once more (throttled).
        Ok(match self.secrets.refresh(tenant).await? {
            Some(fresh) => check(&fresh),
            None => first,
        })
    }

    /// Records a delivery that changes nothing; answers `status`, or `duplicate` when its token
    /// was recorded before.
    async fn record_only(&self, d: &Delivery<'_>, status: &str, now: i64) -> Reply {
        match retried(|| self.store.record_delivery(d, None, now)).await {
            Ok(Recorded::Duplicate) => {
                metrics::counter!("WebhookDuplicate").increment(1);
                Reply::ok("duplicate")
            }
            Ok(_) => Reply::ok(status),
            Err(StoreError::Invalid(why)) => {
                tracing::error!(
                    tenant = d.tenant,
                    why,
                    "the store refused the delivery's record"
                );
                Reply::ok(status)
            }
            Err(e) => store_failed(d, e),
        }
    }

    async fn apply(&self, d: &Delivery<'_>, m: &Mutation, now: i64) -> Reply {
        let mut event = vendor_event(d, m);
        let mut status = "accepted";
        let mut recorded = retried(|| self.store.apply_delivery(d, m, &event, now)).await;
        if let Ok(Recorded::Stale) = recorded {
            // Newer state is in place: recorded (so a redelivery is a duplicate), reported stale.
            event.stale = true;
            status = "stale";
            recorded = retried(|| self.store.record_delivery(d, Some(&event), now)).await;
        }
        let duplicate = match recorded {
            Ok(Recorded::Applied | Recorded::Stale) => false,
            Ok(Recorded::Duplicate) => true,
            Err(StoreError::Invalid(why)) => {
                // Retrying cannot help: acknowledged, so Lever does not send it five more times.
                tracing::error!(
                    event = d.kind.as_str(),
                    tenant = d.tenant,
                    why,
                    "the store refused the delivery's write"
                );
                return Reply::ok("ignored");
            }
            Err(e) => return store_failed(d, e),
        };
        if duplicate {
            tracing::info!(
                event = d.kind.as_str(),
                tenant = d.tenant,
                "duplicate delivery"
            );
            metrics::counter!("WebhookDuplicate").increment(1);
            return Reply::ok("duplicate");
        }
        tracing::info!(
            event = d.kind.as_str(),
            tenant = d.tenant,
            status,
            "webhook accepted"
        );
        count_accepted(self.kind);
        Reply::ok(status)
    }
}

/// What checking a delivery's signature found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verified {
    Yes,
    No,
    /// The URL's key is of a generation the tenant rotated away from.
    RetiredUrl,
}

/// A write that lost to a concurrent transaction on the same items, tried again a few times at
/// once (with jitter): the copy that lost usually finds the winner's record and is a duplicate.
async fn retried<T, F, Fut>(write: F) -> Result<T, StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0;
    loop {
        match write().await {
            Err(StoreError::Contended) if attempt < 4 => {
                attempt += 1;
                let ms = 10 * attempt + fastrand::u64(..20 * attempt);
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            other => return other,
        }
    }
}

fn store_failed(d: &Delivery<'_>, e: StoreError) -> Reply {
    match e {
        StoreError::Contended => Reply::error(
            503,
            "unavailable",
            "concurrent changes to this candidate kept winning; retry later",
        ),
        e => {
            tracing::error!(error = %e, event = d.kind.as_str(), tenant = d.tenant, "store unavailable");
            Reply::error(503, "unavailable", "the store is unavailable; retry later")
        }
    }
}
