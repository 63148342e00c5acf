//! A tenant as a push sees it: its record (owner, Lever environment, status) and its Lever
//! credentials, cached per warm instance.

use crate::clock::Clock;
use crate::lever::oauth::{OAuthClient, OAuthError};
use crate::lever::{Account, Auth};
use crate::secrets::{CachedSecrets, OAuthTokens, SecretStore, SecretsError, TenantSecret};
use crate::store::{StoreError, Tenant, TenantStatus, TenantStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An access token expiring within this is refreshed before use.
pub const REFRESH_MARGIN_MS: i64 = 5 * 60_000;
/// How long the tenant's secret lease lasts: longer than everything its holder does, each step
/// bounded (re-reading the secret, Lever's token call, saving the new tokens with retries), so no
/// second instance can take the lease over while the first still holds a refresh token Lever is
/// retiring.
pub const REFRESH_LEASE_MS: i64 = 60_000;
/// Re-reading the secret under the lease.
const READ_BUDGET: Duration = Duration::from_secs(5);
/// The token call: the OAuth client's 10 s HTTP timeout and reading its client secret.
const TOKEN_BUDGET: Duration = Duration::from_secs(15);
/// Saving the new tokens, retried (the old refresh token is dead: the new one must be stored).
const SAVE_BUDGET: Duration = Duration::from_secs(30);
const _: () = assert!(
    (READ_BUDGET.as_millis() + TOKEN_BUDGET.as_millis() + SAVE_BUDGET.as_millis())
        < REFRESH_LEASE_MS as u128
);
/// Kept free after the token call for saving the new tokens: once Lever answers, the old refresh
/// token is dead, so the token call ends this long before the invocation's deadline.
const SAVE_RESERVE: Duration = Duration::from_secs(8);
/// One save attempt: a hung request is given up and tried again within the reserve, rather than
/// holding the new refresh token until the invocation is killed.
const SAVE_ATTEMPT: Duration = Duration::from_secs(3);
/// The least the token call is given; with less time left no refresh is started.
const TOKEN_MIN: Duration = Duration::from_secs(2);
/// The least re-reading the secret is given.
const READ_MIN: Duration = Duration::from_secs(1);
/// The time a refresh needs before the invocation's deadline to be started at all.
pub const REFRESH_MIN: Duration =
    Duration::from_secs(READ_MIN.as_secs() + TOKEN_MIN.as_secs() + SAVE_RESERVE.as_secs());

/// What is left of the invocation, less `keep`.
fn left(deadline: Instant, keep: Duration) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .saturating_sub(keep)
}

fn no_time(what: &str) -> TenantError {
    TenantError::OAuth(format!(
        "not enough of this invocation is left to {what} and save the new tokens: left to the next one"
    ))
}

/// `step` within `budget`, or an error naming it.
async fn within<T>(
    budget: Duration,
    what: &str,
    step: impl Future<Output = Result<T, TenantError>>,
) -> Result<T, TenantError> {
    tokio::time::timeout(budget, step)
        .await
        .unwrap_or_else(|_| {
            Err(TenantError::OAuth(format!(
                "{what} took longer than {budget:?}"
            )))
        })
}

#[derive(Debug, Clone)]
pub struct TenantContext {
    pub tenant: Arc<Tenant>,
    pub account: Account,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The OAuth refresh could not be done now (Lever unavailable, another instance still
    /// refreshing): worth trying again.
    #[error("OAuth refresh: {0}")]
    OAuth(String),
    /// Another instance held the tenant's secret for longer than we could wait: try again.
    #[error("the tenant's secret is being changed by another instance: try again")]
    Busy,
}

/// What refreshing a tenant's OAuth tokens gave.
#[derive(Debug, Clone)]
pub enum Refreshed {
    /// Tokens whose access token is good for more than [`REFRESH_MARGIN_MS`].
    Tokens(OAuthTokens),
    /// Lever refused the refresh token (or none is stored): the tenant is now disconnected, with
    /// this reason in its status.
    Rejected(String),
}

fn fresh(t: &OAuthTokens, now_ms: i64) -> bool {
    t.expires_at - now_ms > REFRESH_MARGIN_MS
}

fn random_holder() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// Gets the tenant fresh OAuth tokens, refreshing them at Lever when needed.
///
/// Lever rotates the refresh token on every refresh: the one sent dies the moment Lever answers.
/// If two instances refreshed at once with the same refresh token, one would get `invalid_grant`
/// (and wrongly disconnect the tenant), or, worse, both would succeed in turn and the one saving
/// last would overwrite the newer refresh token with a dead one, losing the tenant's connection.
/// So a refresh happens only under a per-tenant lease in DynamoDB (a conditional put that
/// succeeds when there is no lease or only an expired one):
/// - the holder re-reads the secret (another instance may have finished just before), refreshes,
///   saves the new pair into the tenant's secret (retrying the save: the old refresh token is
///   already dead, the new one must not be lost), and only then releases the lease;
/// - a loser does not refresh: it waits a little and re-reads the secret straight from Secrets
///   Manager (bypassing any cache) until the holder's new tokens appear, taking the lease over only
///   if the holder died and its lease expired.
///
/// Both end up with the same new access token, and exactly one refresh grant reaches Lever.
/// `secrets` must read the store itself (no cache). An `invalid_grant` (the refresh token is
/// dead, revoked, or idle for 90 days) marks the tenant disconnected.
///
/// No refresh outlives `deadline`, the invocation's: a refresh killed after Lever answered and
/// before the new refresh token was saved would disconnect the tenant for good. So none starts
/// with less than [`REFRESH_MIN`] left, the token call ends [`SAVE_RESERVE`] before the deadline,
/// and each save attempt is bounded so a hung one is tried again in time.
#[allow(clippy::too_many_arguments)]
pub async fn refresh_oauth<S: TenantStore, K: SecretStore, C: Clock>(
    store: &S,
    secrets: &K,
    oauth: &OAuthClient,
    clock: &C,
    tenant: &str,
    base_url: &str,
    wait: Duration,
    deadline: Instant,
) -> Result<Refreshed, TenantError> {
    let holder = random_holder();
    let give_up = (Instant::now() + wait).min(deadline);
    loop {
        let Some(current) = secrets.load(tenant).await?.and_then(|s| s.oauth) else {
            return Ok(Refreshed::Rejected("no OAuth tokens are stored".into()));
        };
        let now = clock.now_ms();
        if fresh(&current, now) {
            return Ok(Refreshed::Tokens(current));
        }
        if left(deadline, REFRESH_MIN).is_zero() {
            return Err(no_time("refresh"));
        }
        if store
            .acquire_refresh_lease(tenant, &holder, now, now + REFRESH_LEASE_MS)
            .await?
        {
            let result =
                refresh_under_lease(store, secrets, oauth, clock, tenant, base_url, deadline).await;
            if let Err(e) = store.release_refresh_lease(tenant, &holder).await {
                // The lease expires by itself; others wait at most REFRESH_LEASE_MS.
                tracing::warn!(tenant, error = %e, "could not release the OAuth refresh lease");
            }
            return result;
        }
        if Instant::now() >= give_up {
            return Err(TenantError::OAuth(
                "another instance is refreshing the tenant's tokens: try again".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100 + fastrand::u64(..100))).await;
    }
}

async fn refresh_under_lease<S: TenantStore, K: SecretStore, C: Clock>(
    store: &S,
    secrets: &K,
    oauth: &OAuthClient,
    clock: &C,
    tenant: &str,
    base_url: &str,
    deadline: Instant,
) -> Result<Refreshed, TenantError> {
    let read = async { Ok(secrets.load(tenant).await?) };
    let read_budget = READ_BUDGET.min(left(deadline, TOKEN_MIN + SAVE_RESERVE));
    let mut secret = within(read_budget, "reading the secret", read)
        .await?
        .unwrap_or_default();
    let Some(tokens) = secret.oauth.clone() else {
        return Ok(Refreshed::Rejected("no OAuth tokens are stored".into()));
    };
    if fresh(&tokens, clock.now_ms()) {
        return Ok(Refreshed::Tokens(tokens));
    }
    // Bounded so the lease outlives it (the client's own HTTP timeout is 10 s), and so the save
    // has its reserve before the deadline.
    let token_budget = TOKEN_BUDGET.min(left(deadline, SAVE_RESERVE));
    if token_budget < TOKEN_MIN {
        return Err(no_time("call Lever's token endpoint"));
    }
    let answer = tokio::time::timeout(token_budget, oauth.refresh(&tokens.refresh_token, base_url))
        .await
        .unwrap_or_else(|_| Err(OAuthError::Unavailable("the token call timed out".into())));
    match answer {
        Ok(set) => {
            let now = clock.now_ms();
            let new = OAuthTokens {
                access_token: set.access_token,
                // Lever rotates it; should an answer come without one, the old one stays valid.
                refresh_token: set.refresh_token.unwrap_or(tokens.refresh_token),
                expires_at: now + set.expires_in * 1000,
                obtained_at: now,
            };
            secret.oauth = Some(new.clone());
            let give_up = (Instant::now() + SAVE_BUDGET).min(deadline);
            let mut attempt = 0;
            loop {
                attempt += 1;
                let left = give_up
                    .saturating_duration_since(Instant::now())
                    .min(SAVE_ATTEMPT);
                let saved = tokio::time::timeout(left, secrets.save(tenant, &secret))
                    .await
                    .unwrap_or_else(|_| Err(SecretsError::Unavailable("saving timed out".into())));
                match saved {
                    Ok(()) => break,
                    Err(e) if Instant::now() + Duration::from_millis(200 * attempt) < give_up => {
                        tracing::warn!(tenant, attempt, error = %e, "saving refreshed OAuth tokens failed: retrying");
                        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                    }
                    Err(e) => {
                        tracing::error!(tenant, error = %e, "the refreshed OAuth tokens could not be saved: the tenant must connect again");
                        return Err(e.into());
                    }
                }
            }
            tracing::info!(tenant, "OAuth tokens refreshed");
            Ok(Refreshed::Tokens(new))
        }
        Err(OAuthError::Rejected { code, message }) => {
            let reason = format!(
                "Lever refused the OAuth refresh token ({code}: {message}): connect the account again through GET /admin/oauth/authorize"
            );
            tracing::warn!(
                tenant,
                code = code.as_str(),
                "OAuth refresh refused: tenant marked disconnected"
            );
            store
                .set_tenant_status(tenant, TenantStatus::Disconnected, &reason, clock.now_ms())
                .await?;
            Ok(Refreshed::Rejected(reason))
        }
        Err(e) => Err(TenantError::OAuth(e.to_string())),
    }
}

/// How long a deleted tenant's mark keeps writers that waited for its lease from writing its
/// secret again: longer than any of them waits (8 s) and holds the lease ([`REFRESH_LEASE_MS`]).
pub const DELETED_MARK_MS: i64 = 5 * 60_000;

/// Deletes the tenant's secret and records under its secret lease, so no writer in flight (a key
/// replacement, a token pasted, an OAuth refresh) saves the secret again after it, and leaves the
/// lease as the deleted tenant's mark (lifted when the tenant connects again). `first` runs under
/// the lease before anything is deleted.
pub async fn delete_tenant<S, K, C>(
    store: &S,
    secrets: &K,
    clock: &C,
    tenant: &str,
    wait: Duration,
    first: impl Future<Output = Result<(), TenantError>>,
) -> Result<(), TenantError>
where
    S: TenantStore + crate::store::AdminStore,
    K: SecretStore,
    C: Clock,
{
    let holder = take_lease(store, clock, tenant, wait).await?;
    let done = async {
        first.await?;
        secrets.delete(tenant).await?;
        store.delete_tenant_data(tenant).await?;
        Ok(())
    }
    .await;
    match done {
        Ok(()) => Ok(store
            .mark_deleted(tenant, clock.now_ms() + DELETED_MARK_MS)
            .await?),
        Err(e) => {
            if let Err(e) = store.release_refresh_lease(tenant, &holder).await {
                tracing::warn!(tenant, error = %e, "could not release the secret lease");
            }
            Err(e)
        }
    }
}

/// Takes the tenant's secret lease for a new holder, waiting up to `wait` for another's to end:
/// the holder, or [`TenantError::Busy`].
async fn take_lease<S: TenantStore, C: Clock>(
    store: &S,
    clock: &C,
    tenant: &str,
    wait: Duration,
) -> Result<String, TenantError> {
    let holder = random_holder();
    let give_up = Instant::now() + wait;
    loop {
        let now = clock.now_ms();
        if store
            .acquire_refresh_lease(tenant, &holder, now, now + REFRESH_LEASE_MS)
            .await?
        {
            return Ok(holder);
        }
        if Instant::now() >= give_up {
            return Err(TenantError::Busy);
        }
        tokio::time::sleep(Duration::from_millis(100 + fastrand::u64(..100))).await;
    }
}

/// Changes the tenant's secret without losing anyone else's change: under the tenant's secret
/// lease (the one an OAuth refresh holds while it rotates the refresh token), re-reads the secret as
/// stored now, applies `change` and saves the result. A writer holding an older copy would otherwise
/// write back a refresh token Lever has already retired, or drop a token pasted meanwhile. Waits up
/// to `wait` for the lease. Answers the secret as saved.
pub async fn update_secret<S: TenantStore, K: SecretStore, C: Clock>(
    store: &S,
    secrets: &K,
    clock: &C,
    tenant: &str,
    wait: Duration,
    change: impl FnOnce(&mut TenantSecret),
) -> Result<TenantSecret, TenantError> {
    let holder = take_lease(store, clock, tenant, wait).await?;
    let result = within(READ_BUDGET + SAVE_BUDGET, "changing the secret", async {
        let mut secret = match secrets.load(tenant).await? {
            Some(s) => s,
            None => TenantSecret::first(),
        };
        change(&mut secret);
        secrets.save(tenant, &secret).await?;
        Ok(secret)
    })
    .await;
    if let Err(e) = store.release_refresh_lease(tenant, &holder).await {
        tracing::warn!(tenant, error = %e, "could not release the secret lease");
    }
    result
}

pub struct Tenants<S, K, C> {
    store: S,
    secrets: CachedSecrets<K, C>,
    clock: C,
    ttl_ms: i64,
    records: Mutex<HashMap<String, (Arc<Tenant>, i64)>>,
    oauth: Option<Arc<OAuthClient>>,
    /// How long a caller waits for another instance's refresh before giving up (retried later).
    pub refresh_wait: Duration,
}

impl<S: TenantStore, K: SecretStore, C: Clock + Clone> Tenants<S, K, C> {
    pub fn new(store: S, secrets: K, clock: C, ttl_ms: i64) -> Self {
        Tenants {
            secrets: CachedSecrets::new(secrets, clock.clone(), ttl_ms),
            store,
            clock,
            ttl_ms,
            records: Mutex::default(),
            oauth: None,
            refresh_wait: Duration::from_secs(8),
        }
    }

    /// The OAuth client that refreshes OAuth tenants' tokens (the function's, from its cold start);
    /// without one an OAuth tenant's expired token cannot be refreshed.
    pub fn set_oauth(&mut self, oauth: Option<Arc<OAuthClient>>) {
        self.oauth = oauth;
    }

    pub fn secrets(&self) -> &CachedSecrets<K, C> {
        &self.secrets
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The tenant's record, cached for a minute; `None` for an unknown tenant.
    pub async fn record(&self, id: &str) -> Result<Option<Arc<Tenant>>, TenantError> {
        let now = self.clock.now_ms();
        let cached = self
            .records
            .lock()
            .unwrap()
            .get(id)
            .filter(|(_, at)| now - at < self.ttl_ms)
            .map(|(t, _)| t.clone());
        if cached.is_some() {
            return Ok(cached);
        }
        let Some(t) = self.store.tenant(id).await? else {
            return Ok(None);
        };
        let t = Arc::new(t);
        self.records
            .lock()
            .unwrap()
            .insert(id.to_string(), (t.clone(), now));
        Ok(Some(t))
    }

    /// Records the kind of credentials on a record that has none (written before the kind was
    /// kept): the status tells it from the record, not the credentials. Only then: a change of
    /// kind records itself, and a cached secret here may be older than the record.
    async fn record_auth(&self, id: &str, tenant: Arc<Tenant>, kind: Option<&str>) -> Arc<Tenant> {
        if tenant.auth.is_some() || kind.is_none() {
            return tenant;
        }
        if let Err(e) = self.store.set_tenant_auth(id, kind).await {
            tracing::warn!(tenant = id, error = %e, "could not record the kind of credentials");
            return tenant;
        }
        let t = Arc::new(Tenant {
            auth: kind.map(str::to_string),
            ..(*tenant).clone()
        });
        let now = self.clock.now_ms();
        self.records
            .lock()
            .unwrap()
            .insert(id.to_string(), (t.clone(), now));
        t
    }

    /// The tenant and its credentials; `None` for an unknown tenant or one without credentials.
    /// An OAuth refresh it needs ends before `deadline`, the invocation's (see [`refresh_oauth`]).
    pub async fn context(
        &self,
        id: &str,
        deadline: Instant,
    ) -> Result<Option<TenantContext>, TenantError> {
        let Some(tenant) = self.record(id).await? else {
            return Ok(None);
        };
        let Some(secret) = self.secrets.get(id).await? else {
            return Ok(None);
        };
        let tenant = self.record_auth(id, tenant, secret.auth_kind()).await;
        let auth = match (&secret.oauth, &secret.api_key) {
            (Some(tokens), _) => {
                let now = self.clock.now_ms();
                if fresh(tokens, now) {
                    Auth::Bearer(tokens.access_token.clone())
                } else {
                    // Boxed: the refresh's future is large and rarely needed.
                    return Box::pin(self.refreshed_context(id, tenant, tokens, deadline))
                        .await
                        .map(Some);
                }
            }
            (None, Some(key)) => Auth::ApiKey(key.clone()),
            (None, None) => return Ok(None),
        };
        let account = Account {
            base_url: tenant.lever_base_url.clone(),
            auth,
        };
        Ok(Some(TenantContext { tenant, account }))
    }

    /// The tenant and its credentials read again from the store, bypassing this instance's caches:
    /// another function may have reconnected the tenant (a new key, OAuth) since they were cached.
    pub async fn reload_context(
        &self,
        id: &str,
        deadline: Instant,
    ) -> Result<Option<TenantContext>, TenantError> {
        self.records.lock().unwrap().remove(id);
        self.secrets.reload(id).await?;
        self.context(id, deadline).await
    }

    /// The context after refreshing the tenant's OAuth tokens (see [`refresh_oauth`]).
    async fn refreshed_context(
        &self,
        id: &str,
        tenant: Arc<Tenant>,
        stale: &OAuthTokens,
        deadline: Instant,
    ) -> Result<TenantContext, TenantError> {
        let Some(oauth) = self.oauth.clone() else {
            return Err(TenantError::OAuth(
                "the tenant uses OAuth but this deployment has no OAuth client (LeverOAuthClientId)".into(),
            ));
        };
        let account = |auth| Account {
            base_url: tenant.lever_base_url.clone(),
            auth,
        };
        let result = Box::pin(refresh_oauth(
            &self.store,
            self.secrets.inner(),
            &oauth,
            &self.clock,
            id,
            &tenant.lever_base_url,
            self.refresh_wait,
            deadline,
        ))
        .await;
        match result {
            Ok(Refreshed::Tokens(tokens)) => {
                // The secret as stored now, new tokens included, replaces the cached one.
                if let Err(e) = self.secrets.reload(id).await {
                    tracing::warn!(tenant = id, error = %e, "could not re-read the secret after a refresh");
                }
                let auth = Auth::Bearer(tokens.access_token);
                Ok(TenantContext {
                    account: account(auth),
                    tenant: tenant.clone(),
                })
            }
            Ok(Refreshed::Rejected(reason)) => {
                // Disconnected: callers park or keep their work instead of calling Lever.
                self.records.lock().unwrap().remove(id);
                let mut t = (*tenant).clone();
                t.status = TenantStatus::Disconnected;
                t.status_reason = Some(reason);
                Ok(TenantContext {
                    account: account(Auth::Bearer(stale.access_token.clone())),
                    tenant: Arc::new(t),
                })
            }
            // Not refreshed now, but the access token still works for a while: use it.
            Err(e) if stale.expires_at > self.clock.now_ms() + 10_000 => {
                tracing::warn!(tenant = id, error = %e, "OAuth refresh failed: using the current access token");
                Ok(TenantContext {
                    account: account(Auth::Bearer(stale.access_token.clone())),
                    tenant: tenant.clone(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Lever rejected the tenant's credentials: record it where the status shows it.
    pub async fn disconnect(&self, id: &str, reason: &str) -> Result<(), TenantError> {
        self.records.lock().unwrap().remove(id);
        self.store
            .set_tenant_status(id, TenantStatus::Disconnected, reason, self.clock.now_ms())
            .await?;
        Ok(())
    }
}
