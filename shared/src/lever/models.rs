//! Lever's objects, read leniently: every field optional, unknown fields ignored, and the shapes
//! the documentation shows as well as those real responses have (lever-api.md §4).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// An id that Lever sends either as a string or, expanded, as an object with `id` (and `text`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ref {
    pub id: String,
    pub text: Option<String>,
}

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(id) => Ref { id, text: None },
            Value::Object(m) => Ref {
                id: m
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                text: m
                    .get("text")
                    .or_else(|| m.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
            _ => Ref::default(),
        })
    }
}

/// `null` as the default, for fields Lever sends as null.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Archived {
    pub reason: Option<String>,
    pub archived_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Phone {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Urls {
    pub list: Option<String>,
    pub show: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Opportunity {
    pub id: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub contact: Option<Ref>,
    #[serde(deserialize_with = "nullable")]
    pub emails: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub phones: Vec<Phone>,
    pub stage: Option<Ref>,
    pub archived: Option<Archived>,
    #[serde(deserialize_with = "nullable")]
    pub tags: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub links: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub applications: Vec<Ref>,
    pub owner: Option<Ref>,
    pub urls: Option<Urls>,
    pub confidentiality: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NoteField {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub text: Option<String>,
    pub value: Value,
    pub created_at: Option<i64>,
    pub user: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default, from = "RawNote")]
pub struct Note {
    pub id: String,
    pub text: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub fields: Vec<NoteField>,
    pub user: Option<String>,
    pub secret: Option<bool>,
    pub created_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

/// Reads answer `id`; creation answers the whole note plus `noteId` (recorded), or `noteId` alone (documented).
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawNote {
    id: Option<String>,
    note_id: Option<String>,
    text: Option<String>,
    #[serde(deserialize_with = "nullable")]
    fields: Vec<NoteField>,
    user: Option<String>,
    secret: Option<bool>,
    created_at: Option<i64>,
    deleted_at: Option<i64>,
}

impl From<RawNote> for Note {
    fn from(r: RawNote) -> Self {
        Note {
            id: r.id.or(r.note_id).unwrap_or_default(),
            text: r.text,
            fields: r.fields,
            user: r.user,
            secret: r.secret,
            created_at: r.created_at,
            deleted_at: r.deleted_at,
        }
    }
}

impl Note {
    /// Whether any of the note's text contains `needle` (used to find a note this bundle wrote).
    pub fn contains(&self, needle: &str) -> bool {
        self.text.as_deref().is_some_and(|t| t.contains(needle))
            || self
                .fields
                .iter()
                .any(|f| f.value.as_str().is_some_and(|v| v.contains(needle)))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct User {
    pub id: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub access_role: Option<String>,
    pub deactivated_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Stage {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ArchiveReason {
    pub id: String,
    pub text: String,
    pub status: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Posting {
    pub id: String,
    #[serde(deserialize_with = "nullable")]
    pub text: String,
    pub state: Option<String>,
    pub confidentiality: Option<String>,
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TemplateField {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub text: String,
    pub required: Option<bool>,
    /// Choices of a multiple-choice or dropdown field.
    #[serde(deserialize_with = "nullable")]
    pub options: Vec<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FeedbackTemplate {
    pub id: String,
    #[serde(deserialize_with = "nullable")]
    pub text: String,
    #[serde(deserialize_with = "nullable")]
    pub fields: Vec<TemplateField>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Feedback {
    pub id: String,
    pub base_template_id: Option<String>,
    pub completed_at: Option<i64>,
    pub user: Option<Ref>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Interview {
    pub id: String,
    pub panel: Option<String>,
    pub subject: Option<String>,
    pub date: Option<i64>,
    pub duration: Option<i64>,
    pub location: Option<String>,
    pub feedback_template: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Panel {
    pub id: String,
    pub note: Option<String>,
    pub external_url: Option<String>,
    pub externally_managed: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub interviews: Vec<Interview>,
    /// Application ids the panel is for (a PUT without them resets them).
    #[serde(deserialize_with = "nullable")]
    pub applications: Vec<String>,
    pub feedback_reminder: Option<String>,
}

/// A file attached to an opportunity.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LeverFile {
    pub id: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub size: Option<u64>,
    pub uploaded_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Webhook {
    pub id: String,
    pub event: String,
    pub url: String,
    pub configuration: Option<Value>,
}

impl Webhook {
    /// Only the answer to creating a webhook carries its signature token.
    pub fn signature_token(&self) -> Option<&str> {
        self.configuration.as_ref()?.get("signatureToken")?.as_str()
    }
}

/// Unwraps `{data: x}`, and the double `{data: {data: x}}` the documentation shows for some creations.
pub fn unwrap_data(v: Value) -> Value {
    match v {
        Value::Object(mut m) if m.contains_key("data") => match m.remove("data") {
            Some(Value::Object(mut inner)) if inner.len() == 1 && inner.contains_key("data") => {
                inner.remove("data").unwrap_or(Value::Null)
            }
            Some(other) => other,
            None => Value::Null,
        },
        other => other,
    }
}

/// A list's `data`: an array, or a lone object where the documentation shows one (`archive_reasons?type=hired`).
pub fn list_data(body: &Value) -> Vec<Value> {
    match body.get("data") {
        Some(Value::Array(items)) => items.clone(),
        Some(obj @ Value::Object(_)) => vec![obj.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        serde_json::from_slice(&crate::fixtures::read(name)).unwrap()
    }

    fn one<T: serde::de::DeserializeOwned>(name: &str) -> T {
        serde_json::from_value(unwrap_data(fixture(name))).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn list<T: serde::de::DeserializeOwned>(name: &str) -> Vec<T> {
        let items = list_data(&fixture(name));
        serde_json::from_value(Value::Array(items)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Every fixture the client reads parses into its model, documented and recorded shapes alike.
    #[test]
    fn every_fixture_the_client_reads_parses() {
        for f in [
            "api_GET_opportunity_single_lever-docs.json",
            "api_GET_opportunity_single_real-recorded_nango.json",
            "api_PUT_opportunity_stage_real-recorded_nango.json",
            "api_PUT_opportunity_archived_real-recorded_nango.json",
            "api_GET_opportunity_expand-owner_synthetic_the-sid-dani.json",
        ] {
            let o: Opportunity = one(f);
            assert!(!o.id.is_empty(), "{f}");
        }
        let stage: Opportunity = one("api_PUT_opportunity_stage_real-recorded_nango.json");
        assert_eq!(
            stage.stage.unwrap().id,
            "lead-reached-out",
            "slug stage ids"
        );
        assert!(
            stage
                .urls
                .unwrap()
                .show
                .unwrap()
                .starts_with("https://hire.lever.co/candidates/")
        );
        for f in [
            "api_GET_opportunities_list_lever-docs.json",
            "api_GET_opportunities_list_paginated_real-scrubbed_the-sid-dani.json",
            "api_GET_opportunities_list_synthetic_the-sid-dani.json",
            "api_GET_opportunities_paginated_page01_real-recorded_nango.json",
            "api_GET_opportunities_paginated_page11_real-recorded_nango.json",
            "api_GET_opportunities_deleted_empty_real-recorded_nango.json",
        ] {
            for o in list::<Value>(f) {
                let o: Opportunity =
                    serde_json::from_value(o).unwrap_or_else(|e| panic!("{f}: {e}"));
                assert!(!o.id.is_empty() || f.contains("deleted"));
            }
        }
        for f in [
            "api_POST_note_201_real-recorded_nango.json",
            "api_POST_note_201_lever-docs.json",
            "api_GET_note_single_real-recorded_nango.json",
            "api_GET_notes_single_lever-docs.json",
        ] {
            let n: Note = one(f);
            assert!(!n.id.is_empty(), "{f}");
        }
        let notes: Vec<Note> = list("api_GET_notes_list_lever-docs.json");
        assert!(notes[0].contains("move forward with Teresa"));
        for f in [
            "api_GET_users_list_lever-docs.json",
            "api_GET_users_list_real-recorded_nango.json",
            "api_GET_users_list_synthetic_the-sid-dani.json",
        ] {
            assert!(!list::<User>(f).is_empty(), "{f}");
        }
        for f in [
            "api_GET_user_single_lever-docs.json",
            "api_GET_user_single_real-recorded_nango.json",
        ] {
            assert!(!one::<User>(f).id.is_empty());
        }
        for f in [
            "api_GET_stages_list_lever-docs.json",
            "api_GET_stages_list_real-recorded_nango.json",
        ] {
            assert!(
                list::<Stage>(f)
                    .iter()
                    .all(|s| !s.id.is_empty() && !s.text.is_empty()),
                "{f}"
            );
        }
        assert!(
            !one::<Stage>("api_GET_stage_single_lever-docs.json")
                .id
                .is_empty()
        );
        for f in [
            "api_GET_archive_reasons_list_lever-docs.json",
            "api_GET_archive_reasons_list_real-recorded_nango.json",
            "api_GET_archive_reasons_type-hired_lever-docs.json",
        ] {
            assert!(!list::<ArchiveReason>(f).is_empty(), "{f}");
        }
        for f in [
            "api_GET_archive_reason_single_lever-docs.json",
            "api_GET_archive_reason_single_real-recorded_nango.json",
        ] {
            assert!(!one::<ArchiveReason>(f).id.is_empty());
        }
        for f in [
            "api_GET_postings_list_lever-docs.json",
            "api_GET_postings_list_real-recorded_nango.json",
            "api_GET_postings_list_paginated_real-scrubbed_the-sid-dani.json",
        ] {
            assert!(list::<Posting>(f).iter().all(|p| !p.id.is_empty()), "{f}");
        }
        for f in [
            "api_GET_posting_single_lever-docs.json",
            "api_GET_posting_single_real-recorded_nango.json",
        ] {
            assert!(!one::<Posting>(f).text.is_empty());
        }
        let templates: Vec<FeedbackTemplate> =
            list("api_GET_feedback_templates_list_real-scrubbed_the-sid-dani.json");
        assert!(templates.iter().any(|t| !t.fields.is_empty()));
        for f in [
            "api_GET_interview_single_lever-docs.json",
            "api_GET_interview_single_real-recorded_nango.json",
        ] {
            assert!(!one::<Interview>(f).id.is_empty(), "{f}");
        }
        assert!(!list::<Interview>("api_GET_interviews_list_lever-docs.json").is_empty());
        for f in [
            "api_GET_webhooks_list_lever-docs.json",
            "api_GET_webhooks_list_real-recorded_nango.json",
            "api_GET_webhooks_list_empty_synthetic_the-sid-dani.json",
        ] {
            let _: Vec<Webhook> = list(f);
        }
        for f in [
            "api_POST_webhook_201_signatureToken_lever-docs.json",
            "api_POST_webhook_201_signatureToken_real-recorded_nango.json",
        ] {
            assert!(one::<Webhook>(f).signature_token().is_some(), "{f}");
        }
    }

    #[test]
    fn single_and_double_data_wrapping() {
        let panel = serde_json::json!({"id": "p", "interviews": [{"id": "i"}]});
        for wrapped in [
            serde_json::json!({"data": panel}),
            serde_json::json!({"data": {"data": panel}}),
        ] {
            let p: Panel = serde_json::from_value(unwrap_data(wrapped)).unwrap();
            assert_eq!((p.id.as_str(), p.interviews.len()), ("p", 1));
        }
    }
}
