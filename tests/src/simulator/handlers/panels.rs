//! Interview panels and their interviews. Writes need `perform_as`; the real `POST` answers 201
//! single-wrapped `{data: panel}` (the docs show `data.data`). `PUT` replaces the whole panel (an
//! interview keeps its id when the PUT names it). Only `externallyManaged` panels (made through the
//! API) may be changed or deleted.

use super::{data, ok, page};
use crate::simulator::Simulator;
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::paging::{self, SortKey};
use crate::simulator::params::{Caller, Params, json_object, opt_i64, opt_string};
use crate::simulator::state::{State as Account, new_id, str_field};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

const REMINDERS: &[&str] = &["once", "daily", "frequently", "none"];
/// Lever's built-in template meaning "no feedback form" (seen in the interview recording).
const NO_FEEDBACK: &str = "no-feedback";

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
        ("panels", "panels:read"),
        |s| &s.panels,
    )
}

pub(crate) async fn get_one(
    State(sim): State<Simulator>,
    caller: Caller,
    Path((opp, id)): Path<(String, String)>,
) -> ApiResult {
    caller.require("panels:read")?;
    sim.with_state(|s| {
        s.opp(&opp, &caller)?;
        find_panel(s, &opp, &id).map(|p| ok(p.clone()))
    })
}

fn find_panel<'a>(s: &'a Account, opp: &str, id: &str) -> Result<&'a Value, ApiError> {
    s.panels
        .get(opp)
        .into_iter()
        .flatten()
        .find(|p| p["id"] == id)
        .ok_or_else(|| ApiError::not_found("panels", id))
}

/// Only panels the API made may be changed through it.
fn check_managed(panel: &Value) -> Result<(), ApiError> {
    if panel["externallyManaged"] == true {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Panel {} is not externally managed: only panels created through the API can be changed",
            str_field(panel, "id")
        )))
    }
}

pub(crate) async fn create(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require("panels:write")?;
    sim.with_state(|s| {
        s.opp(&opp, &caller)?;
        let user = params.perform_as(&s.users, true)?.unwrap_or_default();
        let body = json_object(&body)?;
        let panel = build_panel(s, &opp, &body, &user, None)?;
        s.panels.entry(opp).or_default().push(panel.clone());
        Ok(data(StatusCode::CREATED, panel))
    })
}

pub(crate) async fn update(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path((opp, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    caller.require("panels:write")?;
    sim.with_state(|s| {
        s.opp(&opp, &caller)?;
        let user = params.perform_as(&s.users, true)?.unwrap_or_default();
        let existing = find_panel(s, &opp, &id)?.clone();
        check_managed(&existing)?;
        let body = json_object(&body)?;
        let panel = build_panel(s, &opp, &body, &user, Some(&existing))?;
        let slot = s
            .panels
            .get_mut(&opp)
            .and_then(|ps| ps.iter_mut().find(|p| p["id"] == id.as_str()))
            .expect("found above");
        *slot = panel.clone();
        Ok(ok(panel))
    })
}

pub(crate) async fn remove(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path((opp, id)): Path<(String, String)>,
) -> ApiResult {
    caller.require("panels:write")?;
    sim.with_state(|s| {
        s.opp(&opp, &caller)?;
        params.perform_as(&s.users, true)?;
        check_managed(find_panel(s, &opp, &id)?)?;
        if let Some(panels) = s.panels.get_mut(&opp) {
            panels.retain(|p| p["id"] != id.as_str());
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

/// Every interview of the opportunity's panels, in the interview recording's shape.
fn interviews(s: &Account, opp: &str) -> Vec<Value> {
    s.panels
        .get(opp)
        .into_iter()
        .flatten()
        .flat_map(|p| p["interviews"].as_array().cloned().unwrap_or_default())
        .collect()
}

pub(crate) async fn list_interviews(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
) -> ApiResult {
    caller.require("interviews:read")?;
    sim.with_state(|s| {
        s.opp(&opp, &caller)?;
        let items = interviews(s, &opp)
            .into_iter()
            .map(|i| {
                (
                    SortKey(i["date"].as_i64().unwrap_or(0), str_field(&i, "id").into()),
                    i,
                )
            })
            .collect();
        let path = format!("/opportunities/{opp}/interviews");
        paging::page(&mut s.cursors, &params, &path, items)
    })
    .map(page)
}

pub(crate) async fn get_interview(
    State(sim): State<Simulator>,
    caller: Caller,
    Path((opp, id)): Path<(String, String)>,
) -> ApiResult {
    caller.require("interviews:read")?;
    sim.with_state(|s| {
        s.opp(&opp, &caller)?;
        interviews(s, &opp)
            .into_iter()
            .find(|i| i["id"] == id.as_str())
            .map(ok)
            .ok_or_else(|| ApiError::not_found("interviews", &id))
    })
}

fn reminder(body: &Map<String, Value>, default: &str) -> Result<String, ApiError> {
    match opt_string(body, "feedbackReminder")?.filter(|r| !r.is_empty()) {
        None => Ok(default.to_string()),
        Some(r) if REMINDERS.contains(&r.as_str()) => Ok(r),
        Some(r) => Err(ApiError::bad_request(format!(
            "feedbackReminder {r} is not one of {}",
            REMINDERS.join(", ")
        ))),
    }
}

fn check_template(s: &Account, id: &str) -> Result<(), ApiError> {
    if id == NO_FEEDBACK || s.template(id).is_some() {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "feedbackTemplate {id} is not a feedback template"
        )))
    }
}

/// A panel from a POST or PUT body, validated as Lever documents it.
fn build_panel(
    s: &Account,
    opp_id: &str,
    body: &Map<String, Value>,
    user: &str,
    existing: Option<&Value>,
) -> Result<Value, ApiError> {
    let opp = &s.opportunities[opp_id];
    let timezone = opt_string(body, "timezone")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("timezone is required"))?;
    let panel_reminder = reminder(body, "daily")?;
    let applications: Vec<String> = match body.get("applications") {
        None | Some(Value::Null) => s
            .applications_of(opp)
            .iter()
            .filter(|a| a["archived"].is_null())
            .map(|a| str_field(a, "id").to_string())
            .collect(),
        Some(Value::Array(ids)) if ids.is_empty() => {
            return Err(ApiError::bad_request(
                "applications must not be an empty array",
            ));
        }
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| {
                id.as_str()
                    .filter(|id| s.applications_of(opp).iter().any(|a| a["id"] == *id))
                    .map(str::to_string)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "application {id} is not an application of this opportunity"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "applications must be an array of ids",
            ));
        }
    };
    let postings: Vec<Value> = applications
        .iter()
        .filter_map(|a| s.applications.get(a))
        .map(|a| a["posting"].clone())
        .collect();
    let specs = match body.get("interviews") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => {
            return Err(ApiError::bad_request(
                "interviews must be a non-empty array",
            ));
        }
    };
    let panel_id = existing.map_or_else(new_id, |p| str_field(p, "id").to_string());
    let now = crate::now_ms();
    let previous: Vec<Value> = existing
        .and_then(|p| p["interviews"].as_array().cloned())
        .unwrap_or_default();
    let mut interviews = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let bad = |why: String| ApiError::bad_request(format!("interviews[{i}]: {why}"));
        let spec = spec
            .as_object()
            .ok_or_else(|| bad("must be an object".into()))?;
        let (id, created_at) = match opt_string(spec, "id").map_err(|e| bad(e.message))? {
            None => (new_id(), now),
            Some(id) => {
                let old = previous
                    .iter()
                    .find(|p| p["id"] == id.as_str())
                    .ok_or_else(|| {
                        bad(format!(
                            "{id} is not an interview of this panel (new interviews have no id)"
                        ))
                    })?;
                (id, old["createdAt"].as_i64().unwrap_or(now))
            }
        };
        let date = opt_i64(spec, "date")
            .map_err(|e| bad(e.message))?
            .ok_or_else(|| bad("date is required (ms)".into()))?;
        let duration = opt_i64(spec, "duration")
            .map_err(|e| bad(e.message))?
            .filter(|d| *d > 0)
            .ok_or_else(|| bad("duration is required (minutes, > 0)".into()))?;
        let template = opt_string(spec, "feedbackTemplate").map_err(|e| bad(e.message))?;
        if let Some(t) = &template {
            check_template(s, t).map_err(|e| bad(e.message))?;
        }
        let interviewers = match spec.get("interviewers") {
            Some(Value::Array(list)) if !list.is_empty() => list,
            _ => return Err(bad("interviewers must be a non-empty array".into())),
        };
        let interviewers = interviewers
            .iter()
            .map(|who| {
                let uid = who["id"].as_str().unwrap_or_default();
                let found = s
                    .user(uid)
                    .filter(|u| u["deactivatedAt"].is_null())
                    .ok_or_else(|| bad(format!("interviewer {uid:?} is not an active user")))?;
                let own = who["feedbackTemplate"].as_str().map(str::to_string);
                if let Some(t) = &own {
                    check_template(s, t).map_err(|e| bad(e.message))?;
                }
                Ok(json!({
                    "id": uid,
                    "name": found["name"],
                    "email": found["email"],
                    "feedbackTemplate": own.or(template.clone()).unwrap_or_else(|| NO_FEEDBACK.into()),
                }))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let text = |name: &str| opt_string(spec, name).map_err(|e| bad(e.message));
        interviews.push(json!({
            "id": id,
            "panel": panel_id,
            "subject": text("subject")?,
            "note": text("note")?,
            "interviewers": interviewers,
            "timezone": timezone,
            "createdAt": created_at,
            "date": date,
            "duration": duration,
            "location": text("location")?,
            "feedbackTemplate": template,
            "feedbackForms": [],
            "feedbackReminder": reminder(spec, &panel_reminder).map_err(|e| bad(e.message))?,
            "user": user,
            "stage": opp["stage"],
            "canceledAt": null,
            "postings": postings,
            "gcalEventUrl": null,
            "opportunityId": opp_id,
        }));
    }
    let start = interviews.iter().filter_map(|i| i["date"].as_i64()).min();
    let end = interviews
        .iter()
        .filter_map(|i| Some(i["date"].as_i64()? + i["duration"].as_i64()? * 60_000))
        .max();
    Ok(json!({
        "id": panel_id,
        "applications": applications,
        "canceledAt": null,
        "createdAt": existing.map_or(json!(now), |p| p["createdAt"].clone()),
        "start": start,
        "end": end,
        "timezone": timezone,
        "feedbackReminder": panel_reminder,
        "user": user,
        "stage": opp["stage"],
        "note": opt_string(body, "note")?,
        "externallyManaged": true,
        "externalUrl": opt_string(body, "externalUrl")?,
        "interviews": interviews,
    }))
}
