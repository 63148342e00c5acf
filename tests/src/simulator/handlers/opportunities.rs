//! Opportunities (candidates): list, read with `expand`, stage, archive, tags, links, applications.

use super::{ok, page};
use crate::simulator::Simulator;
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::paging::{self, SortKey};
use crate::simulator::params::{Caller, Params, json_object, string_list};
use crate::simulator::state::{State as Account, is_confidential, str_field};
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::{Value, json};

/// List filters (Lever's names). Repeated values of one filter are a union, filters intersect.
struct Filters<'a> {
    params: &'a Params,
    archived: Option<bool>,
    snoozed: Option<bool>,
    ranges: Vec<(&'static str, Option<i64>, Option<i64>)>,
}

impl<'a> Filters<'a> {
    fn parse(params: &'a Params) -> Result<Self, ApiError> {
        let mut ranges = Vec::new();
        for (prefix, field) in [
            ("created_at", "createdAt"),
            ("updated_at", "updatedAt"),
            ("advanced_at", "lastAdvancedAt"),
            ("archived_at", "archivedAt"),
        ] {
            let start = params.millis(&format!("{prefix}_start"))?;
            let end = params.millis(&format!("{prefix}_end"))?;
            if start.is_some() || end.is_some() {
                ranges.push((field, start, end));
            }
        }
        Ok(Filters {
            params,
            archived: params.bool("archived")?,
            snoozed: params.bool("snoozed")?,
            ranges,
        })
    }

    fn any_of(&self, name: &str, matches: impl Fn(&str) -> bool) -> bool {
        let wanted = self.params.all(name);
        wanted.is_empty() || wanted.into_iter().any(matches)
    }

    fn keep(&self, s: &Account, opp: &Value, now: i64) -> bool {
        let strings = |field: &str| -> Vec<String> {
            opp[field]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        let emails: Vec<String> = strings("emails").iter().map(|e| e.to_lowercase()).collect();
        let tags = strings("tags");
        let postings: Vec<String> = s
            .applications_of(opp)
            .iter()
            .map(|a| str_field(a, "posting").to_string())
            .collect();
        let archived = &opp["archived"];
        let time = |field: &str| match field {
            "archivedAt" => archived["archivedAt"].as_i64(),
            // Older recorded opportunities have `updatedAt: null`: they were not updated since creation.
            "updatedAt" => opp["updatedAt"].as_i64().or(opp["createdAt"].as_i64()),
            _ => opp[field].as_i64(),
        };
        let is_archived = !archived.is_null();
        self.archived.is_none_or(|a| a == is_archived)
            && self
                .snoozed
                .is_none_or(|z| z == opp["snoozedUntil"].as_i64().is_some_and(|t| t > now))
            && self.any_of("stage_id", |v| opp["stage"] == v)
            && self.any_of("posting_id", |v| postings.iter().any(|p| p == v))
            && self.any_of("email", |v| emails.contains(&v.to_lowercase()))
            && self.any_of("tag", |v| tags.iter().any(|t| t == v))
            && self.any_of("origin", |v| opp["origin"] == v)
            && self.any_of("contact_id", |v| opp["contact"] == v)
            && self.any_of("archive_reason_id", |v| archived["reason"] == v)
            && self.ranges.iter().all(|(field, start, end)| {
                time(field)
                    .is_some_and(|t| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e))
            })
    }
}

/// `expand=` replaces ids with objects, as Lever does for these fields.
fn expand(s: &Account, opp: &Value, params: &Params) -> Value {
    let mut out = opp.clone();
    let user = |id: &Value| {
        id.as_str()
            .and_then(|id| s.user(id).cloned())
            .unwrap_or_else(|| id.clone())
    };
    for what in params.all("expand") {
        match what {
            "stage" => {
                if let Some(stage) = s.stages.iter().find(|st| st["id"] == opp["stage"]) {
                    out["stage"] = stage.clone();
                }
            }
            "owner" | "sourcedBy" => out[what] = user(&opp[what]),
            "followers" => {
                out["followers"] = opp["followers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(user)
                    .collect()
            }
            "applications" => out["applications"] = Value::Array(s.applications_of(opp)),
            "contact" => {
                if let Some(contact) = opp["contact"].as_str().and_then(|c| s.contacts.get(c)) {
                    out["contact"] = contact.clone();
                }
            }
            _ => {}
        }
    }
    out
}

pub(crate) async fn list(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
) -> ApiResult {
    caller.require("opportunities:read")?;
    let confidentiality = params.confidentiality(&caller)?;
    let filters = Filters::parse(&params)?;
    let now = crate::now_ms();
    sim.with_state(|s| {
        let items: Vec<(SortKey, String)> = s
            .opportunities
            .values()
            .filter(|o| confidentiality.includes(is_confidential(o), &caller))
            .filter(|o| filters.keep(s, o, now))
            .map(|o| (SortKey::newest_first(o), str_field(o, "id").to_string()))
            .collect();
        let mut cursors = std::mem::take(&mut s.cursors);
        let out = paging::page_by(&mut cursors, &params, "/opportunities", items, |id| {
            expand(s, &s.opportunities[&id], &params)
        });
        s.cursors = cursors;
        out
    })
    .map(page)
}

/// Candidates deleted in the account (`deleted_at_start` / `deleted_at_end`), newest first.
pub(crate) async fn list_deleted(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
) -> ApiResult {
    caller.require("opportunities:read")?;
    let start = params.millis("deleted_at_start")?;
    let end = params.millis("deleted_at_end")?;
    sim.with_state(|s| {
        let items: Vec<(SortKey, Value)> = s
            .deleted
            .iter()
            .filter(|d| {
                let at = d["deletedAt"].as_i64().unwrap_or(0);
                start.is_none_or(|s| at >= s) && end.is_none_or(|e| at <= e)
            })
            .map(|d| {
                let key = SortKey(
                    -d["deletedAt"].as_i64().unwrap_or(0),
                    str_field(d, "id").to_string(),
                );
                (key, d.clone())
            })
            .collect();
        paging::page(&mut s.cursors, &params, "/opportunities/deleted", items)
    })
    .map(page)
}

pub(crate) async fn get_one(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
) -> ApiResult {
    caller.require("opportunities:read")?;
    sim.with_state(|s| Ok(ok(expand(s, s.opp(&opp, &caller)?, &params))))
}

/// Marks an opportunity as touched by an API write.
fn touch(opp: &mut Value, now: i64) {
    opp["updatedAt"] = json!(now);
    opp["lastInteractionAt"] = json!(now);
}

pub(crate) async fn put_stage(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require("opportunities:write")?;
    sim.with_state(|s| {
        s.opp(&opp, &caller)?;
        let user = params.perform_as(&s.users, false)?;
        let body = json_object(&body)?;
        let stage = body
            .get("stage")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::bad_request("stage is required (a stage id)"))?;
        if s.stage_index(stage).is_none() {
            return Err(ApiError::not_found("stages", stage));
        }
        let now = crate::now_ms();
        let change = s.stage_change(stage, user.as_deref(), now);
        let o = s.opp_mut(&opp, &caller)?;
        // UNCERTAIN: whether Lever records a change to the stage the candidate is already in; a
        // retried PUT is treated as the no-op it means.
        if o["stage"] != stage {
            o["stage"] = json!(stage);
            if let Some(changes) = o["stageChanges"].as_array_mut() {
                changes.push(change);
            }
            o["lastAdvancedAt"] = json!(now);
            touch(o, now);
        }
        Ok(ok(o.clone()))
    })
}

pub(crate) async fn put_archived(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require("opportunities:write")?;
    sim.with_state(|s| {
        s.opp(&opp, &caller)?;
        params.perform_as(&s.users, false)?;
        let body = json_object(&body)?;
        let reason = match body.get("reason") {
            None => {
                return Err(ApiError::bad_request(
                    "reason is required (an archive reason id, or null to unarchive)",
                ));
            }
            Some(Value::Null) => None,
            Some(Value::String(r)) => Some(r.clone()),
            Some(_) => return Err(ApiError::bad_request("reason must be a string or null")),
        };
        if let Some(r) = &reason
            && !s.archive_reasons.iter().any(|a| a["id"] == *r)
        {
            return Err(ApiError::not_found("archive_reasons", r));
        }
        let clean = match body.get("cleanInterviews") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::bad_request("cleanInterviews must be a boolean")),
        };
        if let Some(req) = body.get("requisitionId").filter(|v| !v.is_null()) {
            // The simulated account has no requisitions.
            return Err(ApiError::not_found(
                "requisitions",
                req.as_str().unwrap_or_default(),
            ));
        }
        let now = crate::now_ms();
        let archived = reason
            .as_ref()
            .map_or(Value::Null, |r| json!({"reason": r, "archivedAt": now}));
        let o = s.opp_mut(&opp, &caller)?;
        o["archived"] = archived.clone();
        touch(o, now);
        let o = o.clone();
        for app in o["applications"].as_array().into_iter().flatten() {
            if let Some(a) = app.as_str().and_then(|a| s.applications.get_mut(a)) {
                a["archived"] = archived.clone();
            }
        }
        if clean && reason.is_some() {
            remove_pending_interviews(s, &opp, now);
        }
        Ok(ok(o))
    })
}

/// `cleanInterviews`: interviews still to come go, and panels left empty with them.
fn remove_pending_interviews(s: &mut Account, opp: &str, now: i64) {
    if let Some(panels) = s.panels.get_mut(opp) {
        for panel in panels.iter_mut() {
            if let Some(interviews) = panel["interviews"].as_array_mut() {
                interviews.retain(|i| i["date"].as_i64().is_some_and(|d| d < now));
            }
        }
        panels.retain(|p| p["interviews"].as_array().is_some_and(|i| !i.is_empty()));
    }
}

/// addTags / removeTags / addLinks / removeLinks: set semantics, so a retry changes nothing.
fn edit_set(
    sim: &Simulator,
    caller: &Caller,
    params: &Params,
    opp: &str,
    body: &[u8],
    field: &str,
    add: bool,
) -> ApiResult {
    caller.require("opportunities:write")?;
    sim.with_state(|s| {
        s.opp(opp, caller)?;
        params.perform_as(&s.users, false)?;
        let values = string_list(&json_object(body)?, field)?;
        let o = s.opp_mut(opp, caller)?;
        let mut current: Vec<Value> = o[field].as_array().cloned().unwrap_or_default();
        let before = current.clone();
        for v in values {
            let v = json!(v);
            if add && !current.contains(&v) {
                current.push(v);
            } else if !add {
                current.retain(|c| *c != v);
            }
        }
        if current != before {
            o[field] = Value::Array(current);
            touch(o, crate::now_ms());
        }
        Ok(ok(o.clone()))
    })
}

pub(crate) async fn add_tags(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
    body: Bytes,
) -> ApiResult {
    edit_set(&sim, &caller, &params, &opp, &body, "tags", true)
}

pub(crate) async fn remove_tags(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
    body: Bytes,
) -> ApiResult {
    edit_set(&sim, &caller, &params, &opp, &body, "tags", false)
}

pub(crate) async fn add_links(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
    body: Bytes,
) -> ApiResult {
    edit_set(&sim, &caller, &params, &opp, &body, "links", true)
}

pub(crate) async fn remove_links(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
    body: Bytes,
) -> ApiResult {
    edit_set(&sim, &caller, &params, &opp, &body, "links", false)
}

pub(crate) async fn list_applications(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
    Path(opp): Path<String>,
) -> ApiResult {
    caller.require("applications:read")?;
    sim.with_state(|s| {
        let o = s.opp(&opp, &caller)?;
        let items = s
            .applications_of(o)
            .into_iter()
            .map(|a| (SortKey::newest_first(&a), a))
            .collect();
        let path = format!("/opportunities/{opp}/applications");
        paging::page(&mut s.cursors, &params, &path, items)
    })
    .map(page)
}

pub(crate) async fn get_application(
    State(sim): State<Simulator>,
    caller: Caller,
    Path((opp, id)): Path<(String, String)>,
) -> ApiResult {
    caller.require("applications:read")?;
    sim.with_state(|s| {
        s.applications_of(s.opp(&opp, &caller)?)
            .into_iter()
            .find(|a| a["id"] == id.as_str())
            .map(ok)
            .ok_or_else(|| ApiError::not_found("applications", &id))
    })
}
