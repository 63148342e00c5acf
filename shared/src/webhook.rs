//! Lever webhooks: the ten event kinds, the envelope, the signature and what each delivery changes.
//!
//! Lever signs `token + decimal(triggeredAt)` with the webhook's own signature token (lever-api.md §1); the
//! signature does not cover `data`, so `data` is parsed leniently and treated as a hint.

use hmac::{Hmac, Mac};

/// Lever's rule for webhooks made through its API (lever-api.md §1), told wherever they are made.
pub const SUPER_ADMIN_REMINDER: &str = "Webhooks created through the API stay off until a Lever Super Admin \
switches them on: Settings > Integrations and API > Webhooks, turn on each lever-bridge webhook.";
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;

/// Largest body accepted; Lever's bodies are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Oldest `triggeredAt` accepted: Lever lets admins re-run deliveries from the last two weeks.
pub const MAX_AGE_MS: i64 = 15 * 24 * 3600 * 1000;
/// Clock skew tolerated for a `triggeredAt` in the future.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

macro_rules! event_kinds {
    ($($variant:ident => $name:literal, $function:literal;)*) => {
        /// The ten Lever webhook events, one Lambda function each.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind { $($variant),* }

        impl EventKind {
            pub const ALL: [EventKind; 10] = [$(EventKind::$variant),*];

            /// Lever's name of the event, as in the envelope's `event` and the route.
            pub const fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $name),* }
            }

            /// The Lambda function (binary) that receives this event.
            pub const fn function_name(self) -> &'static str {
                match self { $(EventKind::$variant => $function),* }
            }

            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some(EventKind::$variant),)* _ => None }
            }
        }
    };
}

event_kinds! {
    ApplicationCreated => "applicationCreated", "webhook-application-created";
    CandidateStageChange => "candidateStageChange", "webhook-candidate-stage-change";
    CandidateArchiveChange => "candidateArchiveChange", "webhook-candidate-archive-change";
    CandidateHired => "candidateHired", "webhook-candidate-hired";
    CandidateDeleted => "candidateDeleted", "webhook-candidate-deleted";
    InterviewCreated => "interviewCreated", "webhook-interview-created";
    InterviewUpdated => "interviewUpdated", "webhook-interview-updated";
    InterviewDeleted => "interviewDeleted", "webhook-interview-deleted";
    ContactCreated => "contactCreated", "webhook-contact-created";
    ContactUpdated => "contactUpdated", "webhook-contact-updated";
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delivery's envelope. Every field is optional at parse time so that a missing one is reported
/// by name instead of as a serde error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    id: Option<Value>,
    event: Option<Value>,
    triggered_at: Option<Value>,
    token: Option<Value>,
    signature: Option<Value>,
    data: Option<Value>,
}

/// A parsed, not yet verified, delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub id: Option<String>,
    pub event: String,
    pub triggered_at: i64,
    pub token: String,
    pub signature: String,
    /// `data` as an object; a missing or null `data` is an empty object (Lever's test request).
    pub data: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the body is not a JSON object")]
    NotJson,
    #[error("the body has no `{0}`")]
    Missing(&'static str),
    #[error("`{0}` has the wrong type: {1}")]
    WrongType(&'static str, &'static str),
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let raw: RawEnvelope = serde_json::from_slice(body).map_err(|_| EnvelopeError::NotJson)?;
        let string = |v: Option<Value>, name: &'static str| match v {
            None | Some(Value::Null) => Err(EnvelopeError::Missing(name)),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(EnvelopeError::WrongType(name, "a string is expected")),
        };
        let event = string(raw.event, "event")?;
        let token = string(raw.token, "token")?;
        let signature = string(raw.signature, "signature")?;
        // Only an integer is signed as Lever signs it; a float would be signed differently.
        let triggered_at = match raw.triggered_at {
            None | Some(Value::Null) => return Err(EnvelopeError::Missing("triggeredAt")),
            Some(Value::Number(n)) => n.as_i64().ok_or(EnvelopeError::WrongType(
                "triggeredAt",
                "an integer of milliseconds is expected",
            ))?,
            Some(_) => {
                return Err(EnvelopeError::WrongType(
                    "triggeredAt",
                    "an integer of milliseconds is expected",
                ));
            }
        };
        let data = match raw.data {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(EnvelopeError::WrongType("data", "an object is expected")),
        };
        let id = match raw.id {
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Ok(Envelope {
            id,
            event,
            triggered_at,
            token,
            signature,
            data,
        })
    }

    /// Lever's UI "test" request carries a real event name and `data: {}`.
    pub fn is_test(&self) -> bool {
        self.data.is_empty()
    }
}

/// Lever's signature: `hex(HMAC-SHA256(key = signature token, message = token + decimal(triggeredAt)))`.
pub fn sign(signature_token: &str, token: &str, triggered_at: i64) -> String {
    hex::encode(
        mac(signature_token, token, triggered_at)
            .finalize()
            .into_bytes(),
    )
}

fn mac(signature_token: &str, token: &str, triggered_at: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(signature_token.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(token.as_bytes());
    mac.update(triggered_at.to_string().as_bytes());
    mac
}

/// True when `signature` is Lever's signature under one of `keys`. The full 32 bytes are compared in
/// constant time, so an empty, truncated, over-long or non-hex signature never matches.
pub fn verify<K: AsRef<str>>(signature: &str, token: &str, triggered_at: i64, keys: &[K]) -> bool {
    let mut expected = [0u8; 32];
    if signature.len() != 64 || hex::decode_to_slice(signature, &mut expected).is_err() {
        return false;
    }
    keys.iter().filter(|k| !k.as_ref().is_empty()).any(|k| {
        mac(k.as_ref(), token, triggered_at)
            .verify_slice(&expected)
            .is_ok()
    })
}

/// Whether `triggered_at` is inside the accepted window around `now_ms`.
pub fn within_window(triggered_at: i64, now_ms: i64) -> bool {
    triggered_at >= now_ms.saturating_sub(MAX_AGE_MS)
        && triggered_at <= now_ms.saturating_add(MAX_SKEW_MS)
}

/// An archive state as Lever sends it: `{archivedAt, reason}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Archived {
    pub reason: Option<String>,
    pub archived_at: Option<i64>,
}

/// What one delivery changes in the vendor's view of a candidate.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    Stage {
        opportunity: String,
        from: Option<String>,
        to: String,
        contact: Option<String>,
    },
    Archive {
        opportunity: String,
        from: Option<Archived>,
        to: Option<Archived>,
    },
    Hired {
        opportunity: String,
    },
    Application {
        opportunity: String,
        application: String,
        posting: Option<String>,
    },
    InterviewUpsert {
        opportunity: String,
        interview: String,
        panel: Option<String>,
        data: Map<String, Value>,
    },
    InterviewDelete {
        opportunity: String,
        interview: String,
        panel: Option<String>,
    },
    Contact {
        contact: String,
        data: Map<String, Value>,
    },
    Deleted {
        opportunity: String,
    },
}

impl Mutation {
    /// Reads the change out of `data`. `None` when `data` lacks the ids the kind needs: such a
    /// delivery is acknowledged and changes nothing (a retry would carry the same body).
    pub fn from_data(kind: EventKind, data: &Map<String, Value>) -> Option<Self> {
        let opp = || text(data, &["opportunityId", "candidateId"]);
        Some(match kind {
            EventKind::CandidateStageChange => Mutation::Stage {
                opportunity: opp()?,
                from: text(data, &["fromStageId"]),
                to: text(data, &["toStageId"])?,
                contact: text(data, &["contactId"]),
            },
            EventKind::CandidateArchiveChange => Mutation::Archive {
                opportunity: opp()?,
                from: archived(data.get("fromArchived")),
                to: archived(data.get("toArchived")),
            },
            EventKind::CandidateHired => Mutation::Hired {
                opportunity: opp()?,
            },
            EventKind::CandidateDeleted => Mutation::Deleted {
                opportunity: opp()?,
            },
            EventKind::ApplicationCreated => {
                let posting = text(data, &["postingId"]);
                Mutation::Application {
                    opportunity: opp()?,
                    application: text(data, &["applicationId"]).or_else(|| posting.clone())?,
                    posting,
                }
            }
            // Interview key names are not documented (lever-api.md §1): accept the plausible spellings.
            EventKind::InterviewCreated | EventKind::InterviewUpdated => {
                Mutation::InterviewUpsert {
                    opportunity: opp()?,
                    interview: text(data, &["interviewId", "id"])?,
                    panel: text(data, &["panelId", "panel"]),
                    data: data.clone(),
                }
            }
            EventKind::InterviewDeleted => Mutation::InterviewDelete {
                opportunity: opp()?,
                interview: text(data, &["interviewId", "id"])?,
                panel: text(data, &["panelId", "panel"]),
            },
            EventKind::ContactCreated | EventKind::ContactUpdated => Mutation::Contact {
                contact: text(data, &["contactId", "contact", "id"])?,
                data: data.clone(),
            },
        })
    }

    pub fn opportunity(&self) -> Option<&str> {
        match self {
            Mutation::Stage { opportunity, .. }
            | Mutation::Archive { opportunity, .. }
            | Mutation::Hired { opportunity }
            | Mutation::Application { opportunity, .. }
            | Mutation::InterviewUpsert { opportunity, .. }
            | Mutation::InterviewDelete { opportunity, .. }
            | Mutation::Deleted { opportunity } => Some(opportunity),
            Mutation::Contact { .. } => None,
        }
    }
}

/// The first of `keys` holding a non-empty string (or a number, for ids sent as numbers).
fn text(data: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match data.get(*k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn archived(v: Option<&Value>) -> Option<Archived> {
    let obj = v?.as_object()?;
    Some(Archived {
        reason: text(obj, &["reason"]),
        archived_at: obj.get("archivedAt").and_then(Value::as_i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: i64 = 1_700_000_000_000;

    #[test]
    fn worked_example_from_lever_md() {
        assert_eq!(
            sign("tok", "abc", T),
            "51d09b53a8185cfc8c1805637b89351ffa4b6754d1c55def7c6e7c5d3a737d27"
        );
        assert!(verify(
            "51d09b53a8185cfc8c1805637b89351ffa4b6754d1c55def7c6e7c5d3a737d27",
            "abc",
            T,
            &["tok"]
        ));
        // Upper-case hex is the same signature.
        assert!(verify(
            &sign("tok", "abc", T).to_uppercase(),
            "abc",
            T,
            &["tok"]
        ));
    }

    fn hmac_hex(key: &str, msg: &[u8]) -> String {
        let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        m.update(msg);
        hex::encode(m.finalize().into_bytes())
    }

    #[test]
    fn rejects_every_wrong_construction() {
        let good = sign("tok", "abc", T);
        let body = br#"{"token":"abc","triggeredAt":1700000000000}"#;
        let wrong = [
            ("wrong key", sign("other", "abc", T)),
            ("token alone", hmac_hex("tok", b"abc")),
            (
                "triggeredAt + token",
                hmac_hex("tok", format!("{T}abc").as_bytes()),
            ),
            ("the body", hmac_hex("tok", body)),
            (
                "float timestamp",
                hmac_hex("tok", format!("abc{T}.0").as_bytes()),
            ),
            ("separator", hmac_hex("tok", format!("abc.{T}").as_bytes())),
            ("hex-decoded key", {
                let mut m = Hmac::<Sha256>::new_from_slice(&[0xab]).unwrap();
                m.update(format!("abc{T}").as_bytes());
                hex::encode(m.finalize().into_bytes())
            }),
            ("empty", String::new()),
            ("truncated", good[..63].to_string()),
            ("half", good[..32].to_string()),
            ("over-long", format!("{good}00")),
            ("non-hex", format!("{}zz", &good[..62])),
            ("prefix of a valid one", good[..2].to_string()),
            ("whitespace", format!(" {}", &good[..63])),
        ];
        for (why, sig) in wrong {
            assert!(
                !verify(&sig, "abc", T, &["tok"]),
                "accepted a signature over {why}"
            );
        }
        assert!(verify(&good, "abc", T, &["tok"]));
        assert!(
            !verify(&good, "abc", T + 1, &["tok"]),
            "triggeredAt is covered"
        );
        assert!(!verify(&good, "abd", T, &["tok"]), "token is covered");
    }

    #[test]
    fn no_key_or_an_empty_key_never_matches() {
        let empty_key_sig = sign("", "abc", T);
        assert!(!verify(&empty_key_sig, "abc", T, &[""]));
        assert!(!verify(&sign("tok", "abc", T), "abc", T, &[] as &[&str]));
    }

    #[test]
    fn any_of_several_keys_matches_during_rotation() {
        let sig = sign("new", "abc", T);
        assert!(verify(&sig, "abc", T, &["old", "new"]));
        assert!(!verify(&sig, "abc", T, &["old"]));
    }

    #[test]
    fn window() {
        let now = T;
        assert!(within_window(now, now));
        assert!(within_window(now - MAX_AGE_MS, now));
        assert!(!within_window(now - MAX_AGE_MS - 1, now));
        assert!(within_window(now + MAX_SKEW_MS, now));
        assert!(!within_window(now + MAX_SKEW_MS + 1, now));
        assert!(!within_window(i64::MIN, now));
        assert!(!within_window(i64::MAX, now));
    }

    #[test]
    fn parses_the_documented_deliveries() {
        for (file, kind) in [
            (
                "webhook_candidateStageChange_lever-docs_example-delivery.punctuation-repaired.json",
                EventKind::CandidateStageChange,
            ),
            (
                "webhook_candidateHired_lever-docs_test-request-body.json",
                EventKind::CandidateHired,
            ),
        ] {
            let body = crate::fixtures::read(file);
            let env = Envelope::parse(&body).unwrap();
            assert_eq!(env.event, kind.as_str());
            assert_eq!(env.signature.len(), 64);
        }
    }

    #[test]
    fn envelope_is_lenient_but_names_what_is_missing() {
        let ok = json!({"event":"candidateHired","triggeredAt":T,"token":"t","signature":"s","extra":1,"data":{"opportunityId":"o","new":true}});
        let env = Envelope::parse(ok.to_string().as_bytes()).unwrap();
        assert_eq!(env.id, None);
        assert!(!env.is_test());
        let test = json!({"event":"candidateHired","triggeredAt":T,"token":"t","signature":"s"});
        assert!(
            Envelope::parse(test.to_string().as_bytes())
                .unwrap()
                .is_test()
        );
        for (field, err) in [
            ("event", EnvelopeError::Missing("event")),
            ("token", EnvelopeError::Missing("token")),
            ("signature", EnvelopeError::Missing("signature")),
            ("triggeredAt", EnvelopeError::Missing("triggeredAt")),
        ] {
            let mut v = ok.clone();
            v.as_object_mut().unwrap().remove(field);
            assert_eq!(Envelope::parse(v.to_string().as_bytes()), Err(err));
        }
        assert_eq!(Envelope::parse(b"[1]"), Err(EnvelopeError::NotJson));
        assert_eq!(Envelope::parse(b"not json"), Err(EnvelopeError::NotJson));
    }

    #[test]
    fn kinds_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert!(k.function_name().starts_with("webhook-"));
        }
        assert_eq!(EventKind::parse("candidateStagechange"), None);
    }

    #[test]
    fn mutations_read_documented_and_observed_shapes() {
        let d = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            Mutation::from_data(
                EventKind::CandidateStageChange,
                &d(json!({"opportunityId":"o","toStageId":"lead-new","fromStageId":null}))
            ),
            Some(Mutation::Stage {
                opportunity: "o".into(),
                from: None,
                to: "lead-new".into(),
                contact: None
            })
        );
        // The deprecated candidateId stands in for a missing opportunityId.
        assert!(
            Mutation::from_data(EventKind::CandidateHired, &d(json!({"candidateId":"o"})))
                .is_some()
        );
        assert_eq!(
            Mutation::from_data(
                EventKind::CandidateArchiveChange,
                &d(
                    json!({"opportunityId":"o","fromArchived":null,"toArchived":{"archivedAt":5,"reason":"r"}})
                )
            ),
            Some(Mutation::Archive {
                opportunity: "o".into(),
                from: None,
                to: Some(Archived {
                    reason: Some("r".into()),
                    archived_at: Some(5)
                })
            })
        );
        assert_eq!(
            Mutation::from_data(
                EventKind::CandidateStageChange,
                &d(json!({"opportunityId":"o"}))
            ),
            None
        );
        assert_eq!(
            Mutation::from_data(EventKind::ContactUpdated, &d(json!({"id":"c"})))
                .unwrap()
                .opportunity(),
            None
        );
    }
}
