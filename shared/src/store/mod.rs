//! State: webhook dedup records, the vendor's view of each candidate, and tenants.
//!
//! One DynamoDB table holds it all (see [`dynamo`]); [`memory`] is the same contract in memory for
//! unit tests. `tests/` runs one conformance suite against both.
//!
//! Each aggregate's trait and types have a file of their own (`webhook`, `tenant`, `command`,
//! `transcript`, `stats`, `admin`, `sync`, `deletion`), and so does each implementation of a trait in
//! [`dynamo`] and [`memory`]; the table's key layout is in `dynamo::schema`.

mod admin;
mod command;
mod deletion;
pub mod dynamo;
pub mod memory;
mod outbox;
mod stats;
mod sync;
mod tenant;
mod transcript;
mod webhook;

pub use admin::*;
pub use command::*;
pub use deletion::*;
pub use outbox::*;
pub use stats::*;
pub use sync::*;
pub use tenant::*;
pub use transcript::*;
pub use webhook::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A concurrent write to the same items won; the caller should retry later.
    #[error("a concurrent write to the same item won")]
    Contended,
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored item is malformed: {0}")]
    Malformed(String),
    /// The store refused the write as invalid (an item too large, say): retrying cannot help.
    #[error("the store refused the write: {0}")]
    Invalid(String),
}
