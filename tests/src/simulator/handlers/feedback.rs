//! Feedback forms (scorecards). `POST` needs `perform_as`, a known template, known field ids and
//! values of each field's type as Lever documents them (lever-api.md §5): choice fields
//! (score-system, dropdown, multiple-choice) the option's text, yes/no fields `"yes"`/`"no"`,
//! scores an integer 1-4, multiple-select an array of option texts, dates ms. `panel` and
//! `interview` together attach the form to an interview of that panel.

use super::{data, ok};
use crate::simulator::Simulator;
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::params::{Caller, Params, json_object, opt_i64, opt_string};
use crate::simulator::state::{new_id, str_field};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

pub(crate) async fn list(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
) -> ApiResult {
    super::list_of(
        &sim,
        &caller,
        &params,
        &opp,
        ("feedback", "feedback:read"),
        |s| &s.feedback,
    )
}

pub(crate) async fn get_one(
    State(sim): State<Simulator>,
    caller: Caller,
    Path((opp, id)): Path<(String, String)>,
) -> ApiResult {
    caller.require("feedback:read")?;
    sim.with_state(|s| {
        s.opp(&opp, &caller)?;
        s.feedback
            .get(&opp)
            .into_iter()
            .flatten()
            .find(|f| f["id"] == id.as_str())
            .map(|f| ok(f.clone()))
            .ok_or_else(|| ApiError::not_found("feedback", &id))
    })
}

pub(crate) async fn create(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require("feedback:write")?;
    sim.with_state(|s| {
        s.opp(&opp, &caller)?;
        let user = params.perform_as(&s.users, true)?;
        let body = json_object(&body)?;
        let template_id = opt_string(&body, "baseTemplateId")?
            .ok_or_else(|| ApiError::bad_request("baseTemplateId is required"))?;
        let template = s.template(&template_id).cloned().ok_or_else(|| {
            ApiError::bad_request(format!(
                "baseTemplateId {template_id} is not a feedback template"
            ))
        })?;
        let values = field_values(&body, &template)?;
        let (panel, interview) = interview_link(s, &opp, &body)?;
        let now = crate::now_ms();
        let created_at = opt_i64(&body, "createdAt")?.unwrap_or(now);
        let completed_at = opt_i64(&body, "completedAt")?.unwrap_or(now);
        let fields: Vec<Value> = template["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let mut f = f.clone();
                f["value"] = values
                    .get(str_field(&f, "id"))
                    .cloned()
                    .unwrap_or(Value::Null);
                f
            })
            .collect();
        let form = json!({
            "id": new_id(),
            "type": "interview",
            "text": template["text"],
            "instructions": template["instructions"],
            "fields": fields,
            "baseTemplateId": template_id,
            "interview": interview,
            "panel": panel,
            "user": user,
            "createdAt": created_at,
            "updatedAt": now,
            "completedAt": completed_at,
            "deletedAt": null,
        });
        s.feedback.entry(opp).or_default().push(form.clone());
        Ok(data(StatusCode::CREATED, form))
    })
}

/// `fieldValues` checked against the template: field id → value.
fn field_values(
    body: &Map<String, Value>,
    template: &Value,
) -> Result<Map<String, Value>, ApiError> {
    let entries = match body.get("fieldValues") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ApiError::bad_request("fieldValues must be an array")),
    };
    let mut values = Map::new();
    for (i, entry) in entries.iter().enumerate() {
        let id = entry["id"].as_str().ok_or_else(|| {
            ApiError::bad_request(format!(
                "fieldValues[{i}] needs an id (a template field id)"
            ))
        })?;
        let field = template["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["id"] == id)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "fieldValues[{i}]: {id} is not a field of template {}",
                    template["id"].as_str().unwrap_or_default()
                ))
            })?;
        if values.contains_key(id) {
            return Err(ApiError::bad_request(format!(
                "fieldValues[{i}]: field {id} is given twice"
            )));
        }
        let value = entry.get("value").cloned().unwrap_or(Value::Null);
        check_value(field, &value).map_err(|why| {
            ApiError::bad_request(format!(
                "fieldValues[{i}] ({}, {}): {why}",
                str_field(field, "text"),
                str_field(field, "type")
            ))
        })?;
        values.insert(id.to_string(), value);
    }
    Ok(values)
}

/// Whether `value` fits the field's type. Null leaves the field unanswered.
fn check_value(field: &Value, value: &Value) -> Result<(), String> {
    if value.is_null() {
        return Ok(());
    }
    let options: Vec<&str> = field["options"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["text"].as_str())
        .collect();
    let one_of = |v: &Value| match v.as_str() {
        Some(s) if options.is_empty() || options.contains(&s) => Ok(()),
        Some(s) => Err(format!(
            "{s:?} is not one of the field's options ({})",
            field["options"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["text"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => Err("the value must be a string (an option's text)".into()),
    };
    match str_field(field, "type") {
        "text" | "textarea" | "code" => value
            .is_string()
            .then_some(())
            .ok_or_else(|| "the value must be a string".into()),
        "score-system" | "dropdown" | "multiple-choice" => one_of(value),
        "score" => value
            .as_i64()
            .filter(|n| (1..=4).contains(n))
            .map(|_| ())
            .ok_or_else(|| "the value must be an integer from 1 to 4".into()),
        "multiple-select" => value
            .as_array()
            .ok_or_else(|| "the value must be an array of option texts".to_string())?
            .iter()
            .try_for_each(one_of),
        "yes-no" => match value {
            Value::String(s) if matches!(s.as_str(), "yes" | "no") => Ok(()),
            _ => Err("the value must be \"yes\" or \"no\"".into()),
        },
        "date" => value
            .as_i64()
            .map(|_| ())
            .ok_or_else(|| "the value must be a timestamp in ms".into()),
        // UNCERTAIN formats below: checked leniently by JSON type.
        "currency" => value
            .is_number()
            .then_some(())
            .ok_or_else(|| "the value must be a number".into()),
        "scorecard" => value
            .as_array()
            .filter(|items| items.iter().all(|i| i["score"].is_i64()))
            .map(|_| ())
            .ok_or_else(|| "the value must be an array of {score: integer}".into()),
        _ => Ok(()),
    }
}

/// Optional `panel` + `interview`: both or neither, and the interview must be in the panel.
fn interview_link(
    s: &crate::simulator::state::State,
    opp: &str,
    body: &Map<String, Value>,
) -> Result<(Value, Value), ApiError> {
    let panel = opt_string(body, "panel")?;
    let interview = opt_string(body, "interview")?;
    match (panel, interview) {
        (None, None) => Ok((Value::Null, Value::Null)),
        (Some(p), Some(i)) => {
            let found = s
                .panels
                .get(opp)
                .into_iter()
                .flatten()
                .find(|x| x["id"] == p.as_str())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("panel {p} is not a panel of this opportunity"))
                })?;
            let known = found["interviews"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x["id"] == i.as_str());
            if !known {
                return Err(ApiError::bad_request(format!(
                    "interview {i} is not in panel {p}"
                )));
            }
            Ok((json!(p), json!(i)))
        }
        _ => Err(ApiError::bad_request(
            "panel and interview must be given together",
        )),
    }
}
