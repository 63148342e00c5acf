//! Lever's paging: `limit` 1..100 (default 100) and `offset` = the previous page's `next`, an opaque
//! token. Real tokens are URL-encoded JSON arrays such as `%5B3%2C1491435120000%2C%22<uuid>%22%5D`;
//! ours look the same. Only tokens this simulator issued, for the same path and filters, are
//! accepted. Paging is keyset-based (after the last item's sort key), so items added between pages
//! neither repeat nor shift the next page.

use super::error::ApiError;
use super::params::Params;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Value, json};
use std::collections::HashMap;

/// What `encodeURIComponent` leaves alone, as in the recorded tokens (`-` and `.` stay).
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

pub(crate) const MAX_LIMIT: usize = 100;

/// A list's order: ascending by (number, id). Lists sorted newest first use `-createdAt`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SortKey(pub i64, pub String);

impl SortKey {
    /// Position in a fixed list (fixture order).
    pub fn position(index: usize, id: &str) -> Self {
        SortKey(index as i64, id.to_string())
    }

    /// Newest first by `createdAt`, ties by id.
    pub fn newest_first(item: &Value) -> Self {
        SortKey(
            -item["createdAt"].as_i64().unwrap_or(0),
            item["id"].as_str().unwrap_or_default().to_string(),
        )
    }
}

#[derive(Default)]
pub(crate) struct Cursors {
    seq: u64,
    /// Decoded token (the JSON array text) → what it continues.
    issued: HashMap<String, Cursor>,
}

struct Cursor {
    scope: String,
    after: SortKey,
}

impl Cursors {
    fn issue(&mut self, scope: String, after: SortKey) -> String {
        self.seq += 1;
        let token = json!([self.seq, after.0.unsigned_abs(), after.1]).to_string();
        let encoded = utf8_percent_encode(&token, URI_COMPONENT).to_string();
        self.issued.insert(token, Cursor { scope, after });
        encoded
    }

    /// The key to continue after, for a token as received in the query string. Clients pass the
    /// `next` value either as is (the query decoding yields the JSON text) or encoded once more
    /// (yielding `%5B…`); both are accepted.
    fn resume(&self, raw: &str, scope: &str) -> Option<&SortKey> {
        let token = if raw.starts_with('%') {
            percent_decode_str(raw).decode_utf8().ok()?.into_owned()
        } else {
            raw.to_string()
        };
        self.issued
            .get(&token)
            .filter(|c| c.scope == scope)
            .map(|c| &c.after)
    }
}

pub(crate) fn limit(params: &Params) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(MAX_LIMIT),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid limit {v}: must be an integer between 1 and {MAX_LIMIT}"
                ))
            }),
    }
}

/// One page of `items` as Lever's envelope: `{data, hasNext, next}`, with `next` left out on the
/// last page (as recorded).
pub(crate) fn page(
    cursors: &mut Cursors,
    params: &Params,
    path: &str,
    items: Vec<(SortKey, Value)>,
) -> Result<Value, ApiError> {
    page_by(cursors, params, path, items, |v| v)
}

/// [`page`] rendering only the items on the page (large lists sort cheap keys, not objects).
pub(crate) fn page_by<T>(
    cursors: &mut Cursors,
    params: &Params,
    path: &str,
    mut items: Vec<(SortKey, T)>,
    render: impl Fn(T) -> Value,
) -> Result<Value, ApiError> {
    let limit = limit(params)?;
    let scope = params.scope(path);
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let start = match params.get("offset").filter(|o| !o.is_empty()) {
        None => 0,
        Some(raw) => {
            let after = cursors
                .resume(raw, &scope)
                .ok_or_else(|| ApiError::bad_request("Invalid offset token"))?;
            items.partition_point(|(k, _)| k <= after)
        }
    };
    let end = (start + limit).min(items.len());
    let has_next = end < items.len();
    let next = has_next.then(|| cursors.issue(scope, items[end - 1].0.clone()));
    let data: Vec<Value> = items.drain(start..end).map(|(_, v)| render(v)).collect();
    let mut envelope = json!({"data": data, "hasNext": has_next});
    if let Some(next) = next {
        envelope["next"] = Value::String(next);
    }
    Ok(envelope)
}
