//! Tenant secrets, cached per warm instance: two Secrets Manager secrets per tenant, so the webhook
//! functions can read the signature tokens and never the Lever credentials.
//!
//! `<prefix><tenantId>/webhooks`: `{"webhookTokens": {"candidateStageChange": ["current", "previous"],
//! ...}, "urlGeneration": 0}` (a kind's tokens may also be a single string);
//! `<prefix><tenantId>/lever`: `{"apiKey": "..."}` or `{"oauth": {...}}`.

use crate::clock::Clock;
use crate::webhook::EventKind;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

/// A secret string that never shows in Debug output or logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    pub fn new(s: impl Into<String>) -> Self {
        Redacted(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Redacted>,
    /// Signature tokens per event name; several are valid at once while a token is rotated.
    #[serde(default, deserialize_with = "one_or_many")]
    pub webhook_tokens: BTreeMap<String, Vec<Redacted>>,
    /// OAuth tokens, for a tenant connected through `/admin/oauth/*` instead of an API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthTokens>,
    /// The generation of the tenant's webhook URL key (`crate::urlkey`): rotating moves it on.
    #[serde(default)]
    pub url_generation: u32,
    /// Per event name, the id of the Lever webhook the first token came from: a webhook at the
    /// tenant's URL with another id has a token nobody holds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub webhook_ids: BTreeMap<String, String>,
}

/// A tenant's OAuth tokens: Lever's access token (1 h), the refresh token (rotated on every refresh)
/// and when the access token expires (ms since epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthTokens {
    pub access_token: Redacted,
    pub refresh_token: Redacted,
    pub expires_at: i64,
    /// When these tokens were obtained (ms); the newest pair wins.
    #[serde(default)]
    pub obtained_at: i64,
}

/// At most this many signature tokens per kind: the current one and those of a rotation in progress.
pub const MAX_TOKENS: usize = 3;

impl TenantSecret {
    pub fn tokens(&self, kind: EventKind) -> &[Redacted] {
        self.webhook_tokens
            .get(kind.as_str())
            .map_or(&[], Vec::as_slice)
    }

    /// `oauth` or `apiKey`: the credentials the functions use (OAuth wins should both be stored).
    pub fn auth_kind(&self) -> Option<&'static str> {
        match (&self.oauth, &self.api_key) {
            (Some(_), _) => Some("oauth"),
            (None, Some(_)) => Some("apiKey"),
            (None, None) => None,
        }
    }

    /// Puts `token` first among the kind's signature tokens, keeping the previous ones (a
    /// rotation, at most [`MAX_TOKENS`]) when asked.
    pub fn add_token(&mut self, kind: EventKind, token: Redacted, keep_previous: bool) {
        let list = self
            .webhook_tokens
            .entry(kind.as_str().to_string())
            .or_default();
        list.retain(|t| t != &token);
        if !keep_previous {
            list.clear();
        }
        list.insert(0, token);
        list.truncate(MAX_TOKENS);
    }

    /// A new tenant's first secret. Its URL keys start at a random generation, so a tenant deleted
    /// and connected again under the same id finds none of its earlier URLs valid (the keys are a
    /// function of tenant and generation alone).
    pub fn first() -> TenantSecret {
        TenantSecret {
            url_generation: fastrand::u32(1..crate::urlkey::FIRST_GENERATIONS),
            ..TenantSecret::default()
        }
    }

    /// The token of the Lever webhook `id` (just made), first among the kind's.
    pub fn set_webhook(&mut self, kind: EventKind, id: &str, token: Redacted) {
        self.add_token(kind, token, true);
        self.webhook_ids
            .insert(kind.as_str().to_string(), id.to_string());
    }

    /// The id of the Lever webhook whose token is the kind's first.
    pub fn webhook_id(&self, kind: EventKind) -> Option<&str> {
        self.webhook_ids.get(kind.as_str()).map(String::as_str)
    }
}

impl AsRef<str> for Redacted {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Vec<Redacted>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Redacted),
        Many(Vec<Redacted>),
    }
    let raw = BTreeMap::<String, OneOrMany>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| match v {
            OneOrMany::One(t) => (k, vec![t]),
            OneOrMany::Many(ts) => (k, ts),
        })
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secrets store unavailable: {0}")]
    Unavailable(String),
    #[error("tenant secret is not valid JSON of the expected shape")]
    Malformed,
}

/// Which of a tenant's two secrets a store reads and writes: the webhook signature tokens
/// (`<prefix><tenant>/webhooks`, the only one the webhook functions may read) and the Lever
/// credentials (`<prefix><tenant>/lever`: the API key or the OAuth tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub webhooks: bool,
    pub lever: bool,
}

impl Parts {
    pub const NONE: Parts = Parts {
        webhooks: false,
        lever: false,
    };
    pub const WEBHOOKS: Parts = Parts {
        webhooks: true,
        lever: false,
    };
    pub const LEVER: Parts = Parts {
        webhooks: false,
        lever: true,
    };
    pub const ALL: Parts = Parts {
        webhooks: true,
        lever: true,
    };
}

/// The webhooks secret's JSON.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhooksPart {
    #[serde(default, deserialize_with = "one_or_many")]
    webhook_tokens: BTreeMap<String, Vec<Redacted>>,
    #[serde(default)]
    url_generation: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    webhook_ids: BTreeMap<String, String>,
}

/// The Lever credentials secret's JSON.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeverPart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key: Option<Redacted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oauth: Option<OAuthTokens>,
}

pub trait SecretStore: Send + Sync {
    /// The tenant's secret (the parts this store reads), `None` when the tenant has none.
    fn load(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<TenantSecret>, SecretsError>> + Send;
    /// Creates or replaces the tenant's secret (the parts this store writes).
    fn save(
        &self,
        tenant: &str,
        secret: &TenantSecret,
    ) -> impl Future<Output = Result<(), SecretsError>> + Send;
    /// Deletes the tenant's secrets at once (no recovery window). Deleting a missing one is fine.
    fn delete(&self, tenant: &str) -> impl Future<Output = Result<(), SecretsError>> + Send;
}

/// A tenant's secrets in Secrets Manager: `<prefix><tenant>/webhooks` and `<prefix><tenant>/lever`,
/// of which it reads and writes `parts` (a function's role allows no more).
pub struct SecretsManagerStore {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
    parts: Parts,
}

const WEBHOOKS: &str = "webhooks";
const LEVER: &str = "lever";

impl SecretsManagerStore {
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        prefix: impl Into<String>,
        parts: Parts,
    ) -> Self {
        SecretsManagerStore {
            client,
            prefix: prefix.into(),
            parts,
        }
    }

    /// The secret's name: `<prefix><tenant>/<part>`.
    pub fn name(&self, tenant: &str, part: &str) -> String {
        format!("{}{tenant}/{part}", self.prefix)
    }

    async fn get(&self, name: String) -> Result<Option<String>, SecretsError> {
        use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError as E;
        match self.client.get_secret_value().secret_id(name).send().await {
            Ok(out) => Ok(Some(
                out.secret_string()
                    .ok_or(SecretsError::Malformed)?
                    .to_string(),
            )),
            // A secret scheduled for deletion answers InvalidRequest: the tenant is gone either way.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(E::ResourceNotFoundException(_) | E::InvalidRequestException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn put(&self, name: String, body: String) -> Result<(), SecretsError> {
        let put = self
            .client
            .put_secret_value()
            .secret_id(&name)
            .secret_string(&body)
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                self.client
                    .create_secret()
                    .name(name)
                    .secret_string(body)
                    .send()
                    .await
                    .map_err(unavailable)?;
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn delete_one(&self, name: String) -> Result<(), SecretsError> {
        let res = self
            .client
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// Reads `name` when `wanted`.
async fn part<F: Future<Output = Result<Option<String>, SecretsError>>>(
    wanted: bool,
    read: F,
) -> Result<Option<String>, SecretsError> {
    if wanted { read.await } else { Ok(None) }
}

fn unavailable<E: std::error::Error>(e: E) -> SecretsError {
    SecretsError::Unavailable(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())
}

impl SecretStore for SecretsManagerStore {
    async fn load(&self, tenant: &str) -> Result<Option<TenantSecret>, SecretsError> {
        // Boxed: two SDK calls side by side would make every caller's future large.
        let (webhooks, lever) = futures::join!(
            Box::pin(part(
                self.parts.webhooks,
                self.get(self.name(tenant, WEBHOOKS))
            )),
            Box::pin(part(self.parts.lever, self.get(self.name(tenant, LEVER)))),
        );
        let (webhooks, lever) = (webhooks?, lever?);
        if webhooks.is_none() && lever.is_none() {
            return Ok(None);
        }
        let mut secret = TenantSecret::default();
        if let Some(text) = webhooks {
            let p: WebhooksPart =
                serde_json::from_str(&text).map_err(|_| SecretsError::Malformed)?;
            secret.webhook_tokens = p.webhook_tokens;
            secret.url_generation = p.url_generation;
            secret.webhook_ids = p.webhook_ids;
        }
        if let Some(text) = lever {
            let p: LeverPart = serde_json::from_str(&text).map_err(|_| SecretsError::Malformed)?;
            secret.api_key = p.api_key;
            secret.oauth = p.oauth;
        }
        Ok(Some(secret))
    }

    async fn save(&self, tenant: &str, secret: &TenantSecret) -> Result<(), SecretsError> {
        let webhooks = serde_json::to_string(&WebhooksPart {
            webhook_tokens: secret.webhook_tokens.clone(),
            url_generation: secret.url_generation,
            webhook_ids: secret.webhook_ids.clone(),
        })
        .map_err(|_| SecretsError::Malformed)?;
        let lever = serde_json::to_string(&LeverPart {
            api_key: secret.api_key.clone(),
            oauth: secret.oauth.clone(),
        })
        .map_err(|_| SecretsError::Malformed)?;
        let (w, l) = futures::join!(
            Box::pin(async {
                if self.parts.webhooks {
                    self.put(self.name(tenant, WEBHOOKS), webhooks).await
                } else {
                    Ok(())
                }
            }),
            Box::pin(async {
                if self.parts.lever {
                    self.put(self.name(tenant, LEVER), lever).await
                } else {
                    Ok(())
                }
            }),
        );
        w.and(l)
    }

    async fn delete(&self, tenant: &str) -> Result<(), SecretsError> {
        let (w, l) = futures::join!(
            Box::pin(self.delete_one(self.name(tenant, WEBHOOKS))),
            Box::pin(self.delete_one(self.name(tenant, LEVER))),
        );
        w.and(l)
    }
}

#[derive(Debug, Default)]
pub struct InMemorySecrets {
    map: Mutex<HashMap<String, TenantSecret>>,
    loads: std::sync::atomic::AtomicUsize,
}

impl InMemorySecrets {
    /// How many times `load` was called: the cache's tests count round trips with it.
    pub fn loads(&self) -> usize {
        self.loads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl SecretStore for InMemorySecrets {
    async fn load(&self, tenant: &str) -> Result<Option<TenantSecret>, SecretsError> {
        self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self.map.lock().unwrap().get(tenant).cloned())
    }
    async fn save(&self, tenant: &str, secret: &TenantSecret) -> Result<(), SecretsError> {
        self.map
            .lock()
            .unwrap()
            .insert(tenant.to_string(), secret.clone());
        Ok(())
    }
    async fn delete(&self, tenant: &str) -> Result<(), SecretsError> {
        self.map.lock().unwrap().remove(tenant);
        Ok(())
    }
}

impl<S: SecretStore + ?Sized> SecretStore for Arc<S> {
    fn load(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<TenantSecret>, SecretsError>> + Send {
        (**self).load(tenant)
    }
    fn save(
        &self,
        tenant: &str,
        secret: &TenantSecret,
    ) -> impl Future<Output = Result<(), SecretsError>> + Send {
        (**self).save(tenant, secret)
    }
    fn delete(&self, tenant: &str) -> impl Future<Output = Result<(), SecretsError>> + Send {
        (**self).delete(tenant)
    }
}

struct Entry {
    value: Option<Arc<TenantSecret>>,
    fetched_at: i64,
}

/// A per-instance cache in front of a [`SecretStore`]: a warm instance makes no call for a tenant
/// it has seen within `ttl_ms`; unknown tenants are remembered for `negative_ttl_ms` so made-up
/// tenant ids cannot drive calls to the store.
pub struct CachedSecrets<S, C> {
    inner: S,
    clock: C,
    ttl_ms: i64,
    negative_ttl_ms: i64,
    /// A forced refresh (after a signature mismatch) goes to the store at most this often per tenant.
    min_refresh_ms: i64,
    entries: Mutex<HashMap<String, Entry>>,
}

const MAX_ENTRIES: usize = 10_000;

impl<S: SecretStore, C: Clock> CachedSecrets<S, C> {
    pub fn new(inner: S, clock: C, ttl_ms: i64) -> Self {
        CachedSecrets {
            inner,
            clock,
            ttl_ms,
            negative_ttl_ms: ttl_ms.min(60_000),
            min_refresh_ms: 5_000,
            entries: Mutex::default(),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub async fn get(&self, tenant: &str) -> Result<Option<Arc<TenantSecret>>, SecretsError> {
        let now = self.clock.now_ms();
        if let Some(e) = self.entries.lock().unwrap().get(tenant) {
            let ttl = if e.value.is_some() {
                self.ttl_ms
            } else {
                self.negative_ttl_ms
            };
            if now - e.fetched_at < ttl {
                return Ok(e.value.clone());
            }
        }
        self.fetch(tenant, now).await
    }

    /// Re-reads the secret unless it was read within the last few seconds. `None` when skipped.
    pub async fn refresh(
        &self,
        tenant: &str,
    ) -> Result<Option<Option<Arc<TenantSecret>>>, SecretsError> {
        let now = self.clock.now_ms();
        let recent = self
            .entries
            .lock()
            .unwrap()
            .get(tenant)
            .is_some_and(|e| now - e.fetched_at < self.min_refresh_ms);
        if recent {
            return Ok(None);
        }
        self.fetch(tenant, now).await.map(Some)
    }

    /// Re-reads the secret now, bypassing the cache and its throttle (after another instance
    /// refreshed the tenant's OAuth tokens).
    pub async fn reload(&self, tenant: &str) -> Result<Option<Arc<TenantSecret>>, SecretsError> {
        let now = self.clock.now_ms();
        self.fetch(tenant, now).await
    }

    /// Whether the tenant's secret is in this instance's cache now (no call is made).
    pub fn knows(&self, tenant: &str) -> bool {
        let now = self.clock.now_ms();
        self.entries
            .lock()
            .unwrap()
            .get(tenant)
            .is_some_and(|e| e.value.is_some() && now - e.fetched_at < self.ttl_ms)
    }

    /// Puts a secret this instance just saved into the cache.
    pub fn remember(&self, tenant: &str, secret: TenantSecret) {
        let now = self.clock.now_ms();
        self.entries.lock().unwrap().insert(
            tenant.to_string(),
            Entry {
                value: Some(Arc::new(secret)),
                fetched_at: now,
            },
        );
    }

    async fn fetch(
        &self,
        tenant: &str,
        now: i64,
    ) -> Result<Option<Arc<TenantSecret>>, SecretsError> {
        let value = self.inner.load(tenant).await?.map(Arc::new);
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.value.is_some() && now - e.fetched_at < self.ttl_ms);
        }
        entries.insert(
            tenant.to_string(),
            Entry {
                value: value.clone(),
                fetched_at: now,
            },
        );
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn secret(tok: &str) -> TenantSecret {
        serde_json::from_str(&format!(r#"{{"apiKey":"k","webhookTokens":{{"candidateHired":"{tok}","candidateDeleted":["a","b"]}}}}"#)).unwrap()
    }

    #[test]
    fn format_accepts_one_or_many_and_hides_values() {
        let s = secret("t1");
        assert_eq!(s.tokens(EventKind::CandidateHired).len(), 1);
        assert_eq!(s.tokens(EventKind::CandidateDeleted).len(), 2);
        assert!(s.tokens(EventKind::ContactCreated).is_empty());
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("t1") && !dbg.contains("\"k\""), "{dbg}");
    }

    #[tokio::test]
    async fn warm_reads_make_no_call_until_the_ttl_passes() {
        let store = Arc::new(InMemorySecrets::default());
        store.save("t", &secret("x")).await.unwrap();
        let clock = Arc::new(ManualClock::at(1_000_000));
        let cache = CachedSecrets::new(store.clone(), clock.clone(), 300_000);
        for _ in 0..5 {
            assert!(cache.get("t").await.unwrap().is_some());
        }
        assert_eq!(store.loads(), 1);
        clock.advance(300_000);
        cache.get("t").await.unwrap();
        assert_eq!(store.loads(), 2);
    }

    #[tokio::test]
    async fn unknown_tenants_are_remembered_and_refresh_is_throttled() {
        let store = Arc::new(InMemorySecrets::default());
        let clock = Arc::new(ManualClock::at(1_000_000));
        let cache = CachedSecrets::new(store.clone(), clock.clone(), 300_000);
        assert!(cache.get("nope").await.unwrap().is_none());
        assert!(cache.get("nope").await.unwrap().is_none());
        assert_eq!(store.loads(), 1);
        assert!(
            cache.refresh("nope").await.unwrap().is_none(),
            "refresh right after a read is skipped"
        );
        clock.advance(5_000);
        store.save("nope", &secret("y")).await.unwrap();
        assert!(cache.refresh("nope").await.unwrap().unwrap().is_some());
        assert_eq!(store.loads(), 2);
    }
}
