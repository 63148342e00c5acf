//! The relay's dead letters, put back on the vendor's bus by an operator (`crate::relay::dead_letters`).

use super::{Admin, AdminError};
use crate::relay::dead_letters::MAX_REPLAY;
use serde_json::Value;
use std::time::{Duration, Instant};

/// What one replay takes when the body does not say.
const DEFAULT_MAX: u64 = 1_000;
/// Time a replay allows itself, within the admin function's 29 s.
const BUDGET: Duration = Duration::from_secs(20);

/// The replay's body: `{"max": N, "dryRun": bool}`, both optional; an error names the field.
fn replay_body(body: &[u8]) -> Result<(usize, bool), AdminError> {
    let bad = |field: &str, what: String| {
        AdminError::bad_request("invalid_field", format!("`{field}` {what}"))
    };
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).map_err(|e| {
            AdminError::bad_request(
                "invalid_json",
                format!("the body is not JSON ({e}): send {{\"max\": N, \"dryRun\": true|false}}"),
            )
        })?
    };
    let Value::Object(fields) = v else {
        return Err(AdminError::bad_request(
            "invalid_json",
            "the body must be a JSON object: {\"max\": N, \"dryRun\": true|false}",
        ));
    };
    if let Some(k) = fields
        .keys()
        .find(|k| !["max", "dryRun"].contains(&k.as_str()))
    {
        return Err(bad(
            k,
            "is not a field of this route (it takes `max` and `dryRun`)".into(),
        ));
    }
    let max = match fields.get("max") {
        None | Some(Value::Null) => DEFAULT_MAX,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(m) if (1..=MAX_REPLAY).contains(&m) => m,
            _ => {
                return Err(bad(
                    "max",
                    format!("must be a whole number from 1 to {MAX_REPLAY}, not {n}"),
                ));
            }
        },
        Some(other) => {
            return Err(bad(
                "max",
                format!("must be a whole number from 1 to {MAX_REPLAY}, not {other}"),
            ));
        }
    };
    let dry_run = match fields.get("dryRun") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(bad("dryRun", format!("must be true or false, not {other}"))),
    };
    Ok((max as usize, dry_run))
}

impl<L, S, K, C> Admin<L, S, K, C> {
    /// `POST /admin/events/replay`: the relay's dead-lettered events back on the bus, ids unchanged.
    pub async fn replay_events(&self, body: &[u8]) -> Result<Value, AdminError> {
        let (max, dry_run) = replay_body(body)?;
        let Some(replayer) = &self.settings.replay else {
            return Err(AdminError::new(
                404,
                "not_found",
                "this function does not replay the relay's dead letters (admin-events does)",
            ));
        };
        let report = replayer
            .replay(max, dry_run, Instant::now() + BUDGET)
            .await
            .map_err(|e| {
                tracing::warn!(error = e.as_str(), "replay failed");
                AdminError::new(
                    503,
                    "unavailable",
                    format!("the dead-letter queue or the bus failed: {e}. Try again: an event replayed but not yet deleted goes out once more, and consumers drop it by id"),
                )
            })?;
        tracing::info!(
            dry_run,
            replayed = report.replayed,
            refused = report.refused,
            unreadable = report.unreadable,
            left = report.left,
            "dead letters replayed"
        );
        Ok(serde_json::to_value(report).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_checked_field_by_field() {
        assert_eq!(replay_body(b"").unwrap(), (1000, false));
        assert_eq!(
            replay_body(br#"{"max": 5, "dryRun": true}"#).unwrap(),
            (5, true)
        );
        let msg = |b: &[u8]| {
            let e = replay_body(b).unwrap_err();
            assert_eq!(e.status, 400);
            e.message
        };
        assert!(msg(br#"{"max": -1}"#).starts_with("`max` must be a whole number"));
        assert!(msg(br#"{"max": 0}"#).starts_with("`max`"));
        assert!(msg(br#"{"max": "ten"}"#).starts_with("`max`"));
        assert!(msg(br#"{"dryRun": "yes"}"#).starts_with("`dryRun` must be true or false"));
        assert!(msg(br#"{"limit": 3}"#).starts_with("`limit` is not a field"));
        assert!(msg(b"max=3").starts_with("the body is not JSON"));
        assert!(msg(b"[1]").starts_with("the body must be a JSON object"));
    }
}
