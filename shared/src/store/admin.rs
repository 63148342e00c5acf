//! What the onboarding API keeps besides the tenant record: pending OAuth authorizations, the
//! owner, postings and the vendor's role mapping, and the erasure of a tenant.

use super::{StoreError, SyncStore};
use serde::{Deserialize, Serialize};
use std::future::Future;

/// tenant and environment it was issued for. Stored under a hash of the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthPending {
    /// Hex SHA-256 of the state.
    pub state_hash: String,
    pub tenant_id: String,
    pub environment: String,
    pub expires_at: i64,
    /// Started on the connect pages: the callback sends the browser back there.
    pub return_to_pages: bool,
}

/// The connect link the vendor minted for a tenant (one at a time: a new one replaces the last)
/// and the browser session it was exchanged for. Only hashes of the tokens are stored
/// ([`crate::ids::token_hash`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectLink {
    pub tenant_id: String,
    pub token_hash: String,
    pub created_at: i64,
    /// The link opens until then.
    pub expires_at: i64,
    /// Set once, when the link is opened.
    pub opened_at: Option<i64>,
    pub session_hash: Option<String>,
    pub session_expires_at: i64,
}

/// A Lever posting as the last roles sync saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostingRecord {
    pub id: String,
    pub title: String,
    /// Lever's state (`published`, `internal`, `closed`, `draft`, `pending`, `rejected`).
    pub state: Option<String>,
    pub confidential: bool,
    /// Not returned by the last sync: deleted in Lever, or no longer visible to the key.
    pub gone: bool,
    pub synced_at: i64,
}

/// What the onboarding API keeps besides the tenant record: the owner, postings and the vendor's
/// role mapping, and the erasure of a tenant.
pub trait AdminStore: SyncStore + Send + Sync {
    /// Sets the owner on an existing tenant record (an update, so a concurrent status change is
    /// not overwritten), with `event` (`ownerChanged`) in the same write. False when the tenant
    /// does not exist.
    fn set_owner(
        &self,
        tenant: &str,
        user: &str,
        event: &crate::events::VendorEvent,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Puts `event` in the outbox on the tenant's record (what happened has no item of its own
    /// here, e.g. webhooks registered in Lever). False when the tenant does not exist.
    fn tenant_event(
        &self,
        tenant: &str,
        event: &crate::events::VendorEvent,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Creates or replaces these postings.
    fn put_postings(
        &self,
        tenant: &str,
        postings: &[PostingRecord],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn postings(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<PostingRecord>, StoreError>> + Send;
    /// Maps a vendor role to a posting (`None` removes the mapping).
    fn set_role(
        &self,
        tenant: &str,
        role: &str,
        posting: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// (role id, posting id), by role id.
    fn roles(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
    /// Deletes what can be reached by key: the tenant record, its figures and rejections, postings,
    /// roles, parked commands and the dedup records of its deliveries (from the deliveries index);
    /// not the secret lease, which the deletion holds.
    /// Candidate views, contacts and command records are keyed per opportunity/command and cannot
    /// be enumerated without an index; they expire or stay orphaned (no Scan).
    fn delete_tenant_data(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stores a new OAuth state (a conditional put: false if that state exists already).
    fn put_oauth_state(
        &self,
        pending: &OAuthPending,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Consumes a state (a conditional delete: it must exist and not have expired). `None` for an
    /// unknown, used or expired state; a second take of the same state always answers `None`.
    fn take_oauth_state(
        &self,
        state_hash: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<OAuthPending>, StoreError>> + Send;
    /// Stores the tenant's connect link, replacing (and so revoking) the one before and its session.
    fn put_connect_link(
        &self,
        link: &ConnectLink,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn connect_link(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<ConnectLink>, StoreError>> + Send;
    /// Exchanges the link for a session: a conditional update that holds only while the link is
    /// the tenant's, unexpired and unopened, so a link opens once. False otherwise.
    fn open_connect_link(
        &self,
        tenant: &str,
        token_hash: &str,
        session_hash: &str,
        session_expires_at: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Revokes the tenant's link and its session. False when it had none.
    fn delete_connect_link(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
