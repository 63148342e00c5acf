//! Scorecards: a feedback form from one of the account's templates, each value checked against its
//! field's type as Lever documents it, optionally attached to an interview (the vendor's, mapped
//! to Lever's panel and interview, or Lever's ids given as they are).

use super::*;
use command::FeedbackCommand;

impl<
    L: LeverApi,
    S: CommandStore + TenantStore + StatsStore + Clone,
    K: SecretStore,
    C: Clock + Clone,
> Pusher<L, S, K, C>
{
    pub(super) async fn feedback(
        &self,
        lever: &Lever<'_, L>,
        c: &Command,
        f: &FeedbackCommand,
        user: &str,
        attempt: &Attempt,
    ) -> Result<Value, Stop> {
        let opp = c.envelope.opportunity_id.as_str();
        let link = self.interview_link(c, f).await?;
        let templates = lever.feedback_templates().await?;
        let template = templates
            .iter()
            .find(|t| t.id == f.template_id)
            .ok_or_else(|| {
                Stop::Invalid(format!("no feedback template `{}` in Lever", f.template_id))
            })?;
        let mut values = Vec::new();
        for given in &f.fields {
            let field = template
                .fields
                .iter()
                .find(|t| {
                    given.id.as_deref() == Some(t.id.as_str())
                        || given
                            .text
                            .as_deref()
                            .is_some_and(|x| x.eq_ignore_ascii_case(t.text.trim()))
                })
                .ok_or_else(|| {
                    Stop::Invalid(format!(
                        "template `{}` has no field {}",
                        template.text,
                        given.id.as_deref().or(given.text.as_deref()).unwrap_or("")
                    ))
                })?;
            let value = field_value(field, &given.value).map_err(Stop::Invalid)?;
            values.push(json!({"id": field.id, "value": value}));
        }
        let missing: Vec<&str> = template
            .fields
            .iter()
            .filter(|t| {
                t.required == Some(true) && !values.iter().any(|v| v["id"] == t.id.as_str())
            })
            .map(|t| t.text.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Stop::Invalid(format!(
                "required fields without a value: {}",
                missing.join(", ")
            )));
        }
        // A fixed completedAt identifies this command's feedback when an attempt is reconciled.
        let completed_at = f.completed_at.unwrap_or(attempt.first_claimed_at);
        if attempt.uncertain
            && let Some(found) = lever.feedback(opp).await?.into_iter().find(|fb| {
                fb.base_template_id.as_deref() == Some(f.template_id.as_str())
                    && fb.completed_at == Some(completed_at)
            })
        {
            return Ok(json!({ "feedbackId": found.id }));
        }
        let mut body = json!({"baseTemplateId": f.template_id, "completedAt": completed_at, "fieldValues": values});
        if let Some((panel, interview)) = &link {
            body["panel"] = json!(panel);
            body["interview"] = json!(interview);
        }
        let created = lever.create_feedback(opp, body, user).await?;
        let mut result = json!({ "feedbackId": created.id });
        if let Some((panel, interview)) = link {
            result["panelId"] = json!(panel);
            result["leverInterviewId"] = json!(interview);
        }
        Ok(result)
    }

    /// Lever's panel and interview the scorecard goes on, if the command names one.
    async fn interview_link(
        &self,
        c: &Command,
        f: &FeedbackCommand,
    ) -> Result<Option<(String, String)>, Stop> {
        match (&f.interview_id, &f.panel_id, &f.lever_interview_id) {
            (None, None, None) => Ok(None),
            (None, Some(panel), Some(interview)) => Ok(Some((panel.clone(), interview.clone()))),
            (Some(vendor), None, None) => {
                let map = self
                    .store
                    .interview_map(&c.envelope.tenant_id, vendor)
                    .await
                    .map_err(|e| {
                        Stop::Lever(LeverError::Transport {
                            message: e.to_string(),
                            maybe_applied: false,
                        })
                    })?;
                match map {
                    Some(m) if m.opportunity_id != c.envelope.opportunity_id => {
                        Err(Stop::Invalid(format!(
                            "interview `{vendor}` belongs to opportunity {}, not {}",
                            m.opportunity_id, c.envelope.opportunity_id
                        )))
                    }
                    Some(InterviewMap {
                        panel_id,
                        interview_ids,
                        ..
                    }) if !interview_ids.is_empty() => {
                        Ok(Some((panel_id, interview_ids[0].clone())))
                    }
                    _ => Err(Stop::Invalid(format!(
                        "interview `{vendor}` is not in Lever: schedule it first (push-interview)"
                    ))),
                }
            }
            _ => Err(Stop::Invalid(
                "name the interview by `interviewId` (the vendor's, as scheduled through push-interview) \
or by both `panelId` and `leverInterviewId` (Lever's)"
                    .into(),
            )),
        }
    }
}

/// The value Lever takes for a field, from what the vendor sent: choice fields take the option's
/// text (an option id or a text in another case is mapped to it), yes/no fields `"yes"`/`"no"`
/// (a boolean is mapped), scores an integer 1-4, multiple-select an array of option texts, dates
/// ms since the epoch.
pub(super) fn field_value(field: &TemplateField, v: &Value) -> Result<Value, String> {
    let wrong = |expected: &str| {
        Err(format!(
            "field `{}` ({}) takes {expected}, not {v}",
            field.text, field.kind
        ))
    };
    let option = |s: &str| {
        field.options.iter().find_map(|o| {
            let text = o.get("text").and_then(Value::as_str)?;
            (text.eq_ignore_ascii_case(s.trim())
                || o.get("optionId").and_then(Value::as_str) == Some(s))
            .then(|| json!(text))
        })
    };
    let names = || {
        field
            .options
            .iter()
            .filter_map(|o| o.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match field.kind.as_str() {
        "text" | "textarea" | "code" => match v {
            Value::String(_) => Ok(v.clone()),
            _ => wrong("text"),
        },
        "yes-no" => match v {
            Value::Bool(b) => Ok(json!(if *b { "yes" } else { "no" })),
            Value::String(s) if ["yes", "no"].contains(&s.to_ascii_lowercase().as_str()) => {
                Ok(json!(s.to_ascii_lowercase()))
            }
            _ => wrong("\"yes\" or \"no\""),
        },
        "date" => match v.as_i64() {
            Some(_) => Ok(v.clone()),
            None => wrong("a date in ms since the epoch (an integer)"),
        },
        "score" => match v.as_i64() {
            Some(1..=4) => Ok(v.clone()),
            _ => wrong("an integer from 1 to 4"),
        },
        "score-system" | "dropdown" | "multiple-choice" => match v.as_str().and_then(option) {
            Some(p) => Ok(p),
            None => wrong(&format!("one of: {}", names())),
        },
        "multiple-select" => {
            let picked: Option<Vec<Value>> = v
                .as_array()
                .and_then(|items| items.iter().map(|i| i.as_str().and_then(option)).collect());
            match picked {
                Some(p) => Ok(Value::Array(p)),
                None => wrong(&format!("an array of: {}", names())),
            }
        }
        _ => Ok(v.clone()),
    }
}
