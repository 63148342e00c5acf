//! Commands from the vendor's app: JSON with `commandId`, `tenantId`, `opportunityId` and the fields
//! of its kind. Parsed strictly (unknown fields rejected) so a typo is a clear error, not a no-op.

use serde::{Deserialize, Serialize};
use serde_json::Value;

macro_rules! push_kinds {
    ($($variant:ident => $name:literal, $function:literal, $queue_env:literal;)*) => {
        /// The kinds of push, one Lambda function (and one queue) each.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum PushKind { $(#[serde(rename = $name)] $variant),* }

        impl PushKind {
            pub const ALL: [PushKind; 7] = [$(PushKind::$variant),*];
            pub const fn as_str(self) -> &'static str { match self { $(PushKind::$variant => $name),* } }
            pub const fn function_name(self) -> &'static str { match self { $(PushKind::$variant => $function),* } }
            /// The variable holding its queue's URL, for the functions that replay parked commands.
            pub const fn queue_env(self) -> &'static str { match self { $(PushKind::$variant => $queue_env),* } }
            pub fn parse(s: &str) -> Option<Self> { match s { $($name => Some(PushKind::$variant),)* _ => None } }
        }
    };
}

push_kinds! {
    Note => "note", "push-note", "PUSH_QUEUE_URL_NOTE";
    Feedback => "feedback", "push-feedback", "PUSH_QUEUE_URL_FEEDBACK";
    Stage => "stage", "push-stage", "PUSH_QUEUE_URL_STAGE";
    Archive => "archive", "push-archive", "PUSH_QUEUE_URL_ARCHIVE";
    TagsLinks => "tagsLinks", "push-tags-links", "PUSH_QUEUE_URL_TAGS_LINKS";
    Interview => "interview", "push-interview", "PUSH_QUEUE_URL_INTERVIEW";
    File => "file", "push-file", "PUSH_QUEUE_URL_FILE";
}

/// Fields every command has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub command_id: String,
    pub tenant_id: String,
    pub opportunity_id: String,
    /// The Lever user the write is attributed to; the tenant's owner when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perform_as: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssessmentResponse {
    pub question: String,
    #[serde(default)]
    pub answer: String,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub max_score: Option<f64>,
    /// Shown only in a secret note.
    #[serde(default)]
    pub confidential: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assessment {
    pub name: String,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub max_score: Option<f64>,
    /// e.g. "passed", "failed".
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub completed_at: Option<i64>,
    #[serde(default)]
    pub responses: Vec<AssessmentResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NoteCommand {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub assessment: Option<Assessment>,
    /// Post the whole note as secret (visible to users with confidential access only).
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldValue {
    /// The template field's id, or its label in `text`.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedbackCommand {
    pub template_id: String,
    pub fields: Vec<FieldValue>,
    #[serde(default)]
    pub completed_at: Option<i64>,
    /// The interview the scorecard is for: the vendor's id, as scheduled through push-interview…
    #[serde(default)]
    pub interview_id: Option<String>,
    /// …or Lever's panel and interview ids.
    #[serde(default)]
    pub panel_id: Option<String>,
    #[serde(default)]
    pub lever_interview_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageCommand {
    #[serde(default)]
    pub stage_id: Option<String>,
    /// The stage's name as shown in Lever, when the id is not known.
    #[serde(default)]
    pub stage: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveCommand {
    #[serde(default)]
    pub reason_id: Option<String>,
    /// The archive reason's name, when the id is not known.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub unarchive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagsLinksCommand {
    #[serde(default)]
    pub add_tags: Vec<String>,
    #[serde(default)]
    pub remove_tags: Vec<String>,
    #[serde(default)]
    pub add_links: Vec<String>,
    #[serde(default)]
    pub remove_links: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum InterviewAction {
    Schedule,
    Update,
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InterviewCommand {
    pub action: InterviewAction,
    /// The vendor's id of the interview: later updates and the cancel find Lever's panel by it.
    pub interview_id: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    /// Start, ms since the epoch.
    #[serde(default)]
    pub start: Option<i64>,
    #[serde(default)]
    pub duration_minutes: Option<i64>,
    /// Lever user ids of the interviewers.
    #[serde(default)]
    pub interviewers: Vec<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub feedback_template_id: Option<String>,
    #[serde(default)]
    pub external_url: Option<String>,
}

/// A report file in the stack's upload bucket, attached to the opportunity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileCommand {
    /// The object's key in the upload bucket, under `<tenantId>/`.
    pub object_key: String,
    /// The name Lever shows (default: the key's last segment); its extension decides the type.
    #[serde(default)]
    pub file_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Note(NoteCommand),
    Feedback(FeedbackCommand),
    Stage(StageCommand),
    Archive(ArchiveCommand),
    TagsLinks(TagsLinksCommand),
    Interview(InterviewCommand),
    File(FileCommand),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub kind: PushKind,
    pub envelope: Envelope,
    pub body: Body,
    /// The command as received, kept to park it.
    pub raw: Value,
}

/// A command that cannot be carried out as written. `ids` are present when the envelope parsed, so
/// the failure can be recorded against the command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub message: String,
    pub ids: Option<Envelope>,
}

impl Command {
    pub fn parse(kind: PushKind, raw: Value) -> Result<Command, Invalid> {
        let Some(obj) = raw.as_object() else {
            return Err(Invalid {
                message: "a command is a JSON object".into(),
                ids: None,
            });
        };
        let envelope: Envelope = crate::input::read(raw.clone()).map_err(|e| Invalid {
            message: format!("command: {e}"),
            ids: None,
        })?;
        let invalid = |message: String| Invalid {
            message,
            ids: Some(envelope.clone()),
        };
        for (name, v) in [
            ("commandId", &envelope.command_id),
            ("opportunityId", &envelope.opportunity_id),
        ] {
            if !crate::ids::plain_id(v) {
                return Err(Invalid {
                    message: format!(
                        "`{name}` must be 1-128 letters, digits, '-', '_', '.' or ':'"
                    ),
                    ids: None,
                });
            }
        }
        if !crate::ids::tenant_id(&envelope.tenant_id) {
            return Err(Invalid {
                message: "`tenantId` must be 1-64 letters, digits, '-' or '_'".into(),
                ids: None,
            });
        }
        if let Some(k) = obj.get("kind").and_then(Value::as_str)
            && k != kind.as_str()
        {
            return Err(invalid(format!(
                "this function carries out `{}` commands, not `{k}`",
                kind.as_str()
            )));
        }
        // The kind's own fields: everything but the envelope's.
        let mut fields = obj.clone();
        for k in [
            "commandId",
            "tenantId",
            "opportunityId",
            "performAs",
            "kind",
        ] {
            fields.remove(k);
        }
        let fields = Value::Object(fields);
        let parse_err = |e: String| invalid(format!("{} command: {e}", kind.as_str()));
        let body = match kind {
            PushKind::Note => {
                let c: NoteCommand = crate::input::read(fields).map_err(parse_err)?;
                match (&c.text, &c.assessment) {
                    (Some(t), None) if !t.trim().is_empty() => {}
                    (None, Some(a)) if !a.name.trim().is_empty() => {}
                    _ => return Err(invalid("a note command has either a non-empty `text` or an `assessment` with a `name`".into())),
                }
                Body::Note(c)
            }
            PushKind::Feedback => {
                let c: FeedbackCommand = crate::input::read(fields).map_err(parse_err)?;
                if c.fields.is_empty()
                    || c.fields.iter().any(|f| f.id.is_none() && f.text.is_none())
                {
                    return Err(invalid("feedback needs `fields`, each with an `id` or a `text` naming the template field".into()));
                }
                Body::Feedback(c)
            }
            PushKind::Stage => {
                let c: StageCommand = crate::input::read(fields).map_err(parse_err)?;
                if c.stage_id.is_some() == c.stage.is_some() {
                    return Err(invalid(
                        "a stage command has exactly one of `stageId` and `stage`".into(),
                    ));
                }
                Body::Stage(c)
            }
            PushKind::Archive => {
                let c: ArchiveCommand = crate::input::read(fields).map_err(parse_err)?;
                let given = [c.reason_id.is_some(), c.reason.is_some(), c.unarchive]
                    .iter()
                    .filter(|b| **b)
                    .count();
                if given != 1 {
                    return Err(invalid("an archive command has exactly one of `reasonId`, `reason` and `unarchive: true`".into()));
                }
                Body::Archive(c)
            }
            PushKind::TagsLinks => {
                let c: TagsLinksCommand = crate::input::read(fields).map_err(parse_err)?;
                if c.add_tags.is_empty()
                    && c.remove_tags.is_empty()
                    && c.add_links.is_empty()
                    && c.remove_links.is_empty()
                {
                    return Err(invalid(
                        "a tagsLinks command adds or removes at least one tag or link".into(),
                    ));
                }
                Body::TagsLinks(c)
            }
            PushKind::Interview => {
                let c: InterviewCommand = crate::input::read(fields).map_err(parse_err)?;
                if !crate::ids::plain_id(&c.interview_id) {
                    return Err(invalid(
                        "`interviewId` must be 1-128 letters, digits, '-', '_', '.' or ':'".into(),
                    ));
                }
                if c.action != InterviewAction::Cancel
                    && (c.start.is_none()
                        || c.duration_minutes.is_none()
                        || c.interviewers.is_empty())
                {
                    return Err(invalid("scheduling or updating an interview needs `start`, `durationMinutes` and `interviewers`".into()));
                }
                Body::Interview(c)
            }
            PushKind::File => {
                let c: FileCommand = crate::input::read(fields).map_err(parse_err)?;
                if c.object_key.is_empty() || c.object_key.len() > 1024 {
                    return Err(invalid(
                        "`objectKey` is the report's key in the upload bucket (1-1024 characters)"
                            .into(),
                    ));
                }
                if c.file_name
                    .as_deref()
                    .is_some_and(|n| n.trim().is_empty() || n.len() > 255 || n.contains('/'))
                {
                    return Err(invalid(
                        "`fileName` is a file name of 1-255 characters without '/'".into(),
                    ));
                }
                Body::File(c)
            }
        };
        Ok(Command {
            kind,
            envelope,
            body,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base(extra: Value) -> Value {
        let mut v = json!({"commandId": "c-1", "tenantId": "acme", "opportunityId": "opp-1"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    }

    #[test]
    fn valid_commands_parse() {
        for (kind, extra) in [
            (PushKind::Note, json!({"text": "Hello"})),
            (
                PushKind::Note,
                json!({"assessment": {"name": "Test", "score": 8, "maxScore": 10, "responses": [{"question": "Q", "answer": "A"}]}}),
            ),
            (
                PushKind::Feedback,
                json!({"templateId": "t", "fields": [{"text": "Rating", "value": "4 - Strong Hire"}]}),
            ),
            (PushKind::Stage, json!({"stageId": "lead-new"})),
            (PushKind::Archive, json!({"unarchive": true})),
            (PushKind::TagsLinks, json!({"addTags": ["a"]})),
            (
                PushKind::Interview,
                json!({"action": "cancel", "interviewId": "iv-1"}),
            ),
            (
                PushKind::Interview,
                json!({"action": "schedule", "interviewId": "iv-1", "start": 1, "durationMinutes": 30, "interviewers": ["u"]}),
            ),
        ] {
            let c = Command::parse(kind, base(extra.clone()))
                .unwrap_or_else(|e| panic!("{kind:?} {extra}: {e}"));
            assert_eq!(c.envelope.command_id, "c-1");
        }
    }

    #[test]
    fn invalid_commands_say_what_is_wrong() {
        for (kind, cmd, says) in [
            (PushKind::Note, json!([1]), "JSON object"),
            (
                PushKind::Note,
                json!({"tenantId": "acme", "opportunityId": "o", "text": "x"}),
                "commandId",
            ),
            (PushKind::Note, base(json!({"text": ""})), "non-empty"),
            (
                PushKind::Note,
                base(json!({"text": "x", "colour": "red"})),
                "`colour` is not a field here (it takes text, assessment, secret)",
            ),
            (
                PushKind::Note,
                base(json!({"text": "x", "kind": "stage"})),
                "not `stage`",
            ),
            (PushKind::Stage, base(json!({})), "exactly one"),
            (
                PushKind::Stage,
                base(json!({"stageId": 5})),
                "`stageId` must be a string, not a number",
            ),
            (
                PushKind::Note,
                base(json!({"assessment": {"name": "x", "score": "high"}})),
                "`assessment.score` must be a number, not a string",
            ),
            (
                PushKind::Feedback,
                base(json!({"fields": [{"text": "t", "value": 1}]})),
                "`templateId` is required",
            ),
            (
                PushKind::Archive,
                base(json!({"reasonId": "r", "unarchive": true})),
                "exactly one",
            ),
            (PushKind::TagsLinks, base(json!({})), "at least one"),
            (
                PushKind::Interview,
                base(json!({"action": "schedule", "interviewId": "i"})),
                "needs `start`",
            ),
            (
                PushKind::Interview,
                base(json!({"action": "reschedule", "interviewId": "i"})),
                "`action` must be one of schedule, update, cancel, not `reschedule`",
            ),
            (
                PushKind::Feedback,
                base(json!({"templateId": "t", "fields": [{"value": 1}]})),
                "`id` or a `text`",
            ),
        ] {
            let err = Command::parse(kind, cmd.clone()).expect_err(&cmd.to_string());
            assert!(err.message.contains(says), "{cmd}: {}", err.message);
        }
        let bad_id = base(json!({"text": "x", "opportunityId": "../users"}));
        assert!(
            Command::parse(PushKind::Note, bad_id)
                .unwrap_err()
                .message
                .contains("opportunityId")
        );
    }
}
