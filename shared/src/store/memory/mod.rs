//! The store contract in memory, for unit tests. Same guards as the DynamoDB store; one file per
//! trait it implements.

mod admin;
mod command;
mod deletion;
mod outbox;
mod stats;
mod sync;
mod tenant;
mod transcript;
mod webhook;

use super::*;
use crate::webhook::Mutation;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct Candidate {
    view: CandidateView,
    archive_at: Option<i64>,
    hired_at: Option<i64>,
    /// The sync page that last wrote it and the events it owes.
    sync_mark: Option<(String, usize)>,
}

struct InterviewRec {
    interview: Interview,
    deleted: bool,
}

#[derive(Default)]
struct Inner {
    /// Dedup records: (tenant, token) → expiry (epoch s).
    dedup: HashMap<(String, String), i64>,
    /// The table's stream as Lambda would see it: one record per write that carried events.
    stream: Vec<Value>,
    /// Events the relay published.
    relayed: std::collections::HashSet<String>,
    candidates: HashMap<(String, String), Candidate>,
    applications: HashMap<(String, String), BTreeMap<String, Application>>,
    interviews: HashMap<(String, String), BTreeMap<String, InterviewRec>>,
    contacts: HashMap<(String, String), Contact>,
    tenants: HashMap<String, Tenant>,
    commands: HashMap<(String, String), CommandRec>,
    parked: HashMap<String, BTreeMap<String, ParkedCommand>>,
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
    /// `candidateDeleted` deliveries waiting for Lever's word, by (tenant, token).
    pending_deletions: BTreeMap<(String, String), deletion::Pending>,
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

struct CommandRec {
    record: CommandRecord,
    lease_until: i64,
    uncertain: bool,
    first_claimed_at: i64,
    /// Parked once and not yet done or failed (its parked entry goes when it ends).
    parked: bool,
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

#[derive(Default)]
struct AdminData {
    postings: HashMap<String, BTreeMap<String, PostingRecord>>,
    roles: HashMap<String, BTreeMap<String, String>>,
    connect_links: HashMap<String, ConnectLink>,
}
