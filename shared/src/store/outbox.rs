//! The outbox: every vendor event is written in the same write as the change it reports, in the
//! `outbox` attribute of the item that write changes, and leaves through the table's stream (the
//! `relay` function, `crate::relay`). The relay remembers what it published, so a stream record
//! delivered twice is published once.

use super::StoreError;
use std::collections::HashSet;
use std::future::Future;

/// The attribute that carries an item's events: a JSON array of vendor events.
pub const OUTBOX_ATTRIBUTE: &str = "outbox";

pub trait OutboxStore: Send + Sync {
    /// Which of these event ids were published already.
    fn relayed(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<HashSet<String>, StoreError>> + Send;
    /// Records that these events were published (kept as long as a delivery's dedup record).
    fn mark_relayed(
        &self,
        ids: &[String],
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
