//! The account's reference data: users, stages, archive reasons, postings, feedback templates.
//! Lists keep the recorded order.

use super::{ok, page};
use crate::simulator::Simulator;
use crate::simulator::error::{ApiError, ApiResult};
use crate::simulator::paging::{self, SortKey};
use crate::simulator::params::{Caller, Params};
use crate::simulator::state::{is_confidential, str_field};
use axum::extract::{Path, State};
use serde_json::Value;

/// `items` that pass `keep`, keyed by their position in the account's list.
fn by_position(items: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<(SortKey, Value)> {
    items
        .iter()
        .enumerate()
        .filter(|(_, v)| keep(v))
        .map(|(i, v)| (SortKey::position(i, str_field(v, "id")), v.clone()))
        .collect()
}

fn find(items: &[Value], id: &str, collection: &str) -> ApiResult {
    items
        .iter()
        .find(|v| v["id"] == id)
        .map(|v| ok(v.clone()))
        .ok_or_else(|| ApiError::not_found(collection, id))
}

pub(crate) async fn list_users(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
) -> ApiResult {
    caller.require("users:read")?;
    let include_deactivated = params.bool("includeDeactivated")?.unwrap_or(false);
    let emails: Vec<String> = params
        .all("email")
        .iter()
        .map(|e| e.to_lowercase())
        .collect();
    let roles = params.all("accessRole");
    sim.with_state(|s| {
        let items = by_position(&s.users, |u| {
            (include_deactivated || u["deactivatedAt"].is_null())
                && (emails.is_empty() || emails.contains(&str_field(u, "email").to_lowercase()))
                && (roles.is_empty() || roles.contains(&str_field(u, "accessRole")))
        });
        paging::page(&mut s.cursors, &params, "/users", items)
    })
    .map(page)
}

pub(crate) async fn get_user(
    State(sim): State<Simulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require("users:read")?;
    sim.with_state(|s| find(&s.users, &id, "users"))
}

pub(crate) async fn list_stages(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
) -> ApiResult {
    caller.require("stages:read")?;
    sim.with_state(|s| {
        let items = by_position(&s.stages, |_| true);
        paging::page(&mut s.cursors, &params, "/stages", items)
    })
    .map(page)
}

pub(crate) async fn get_stage(
    State(sim): State<Simulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require("stages:read")?;
    sim.with_state(|s| find(&s.stages, &id, "stages"))
}

pub(crate) async fn list_archive_reasons(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
) -> ApiResult {
    caller.require("archive_reasons:read")?;
    let kind = params.get("type").map(str::to_string);
    if let Some(k) = kind
        .as_deref()
        .filter(|k| !matches!(*k, "hired" | "non-hired"))
    {
        return Err(ApiError::bad_request(format!(
            "Invalid value for type: {k} (hired or non-hired)"
        )));
    }
    sim.with_state(|s| {
        let items = by_position(&s.archive_reasons, |r| {
            kind.as_deref().is_none_or(|k| r["type"] == k)
        });
        paging::page(&mut s.cursors, &params, "/archive_reasons", items)
    })
    .map(page)
}

pub(crate) async fn get_archive_reason(
    State(sim): State<Simulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require("archive_reasons:read")?;
    sim.with_state(|s| find(&s.archive_reasons, &id, "archive_reasons"))
}

const POSTING_STATES: &[&str] = &[
    "published",
    "internal",
    "closed",
    "draft",
    "pending",
    "rejected",
];

pub(crate) async fn list_postings(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
) -> ApiResult {
    caller.require("postings:read")?;
    let confidentiality = params.confidentiality(&caller)?;
    let states = params.all("state");
    if let Some(bad) = states.iter().find(|s| !POSTING_STATES.contains(s)) {
        return Err(ApiError::bad_request(format!(
            "Invalid posting state: {bad}"
        )));
    }
    let categories: Vec<(&str, Vec<&str>)> = ["team", "department", "location", "commitment"]
        .into_iter()
        .map(|c| (c, params.all(c)))
        .filter(|(_, values)| !values.is_empty())
        .collect();
    let tags = params.all("tag");
    sim.with_state(|s| {
        let items = by_position(&s.postings, |p| {
            confidentiality.includes(is_confidential(p), &caller)
                && (states.is_empty() || states.contains(&str_field(p, "state")))
                && categories
                    .iter()
                    .all(|(c, values)| values.contains(&str_field(&p["categories"], c)))
                && tags.iter().all(|t| {
                    p["tags"]
                        .as_array()
                        .is_some_and(|list| list.iter().any(|x| x == t))
                })
        });
        paging::page(&mut s.cursors, &params, "/postings", items)
    })
    .map(page)
}

pub(crate) async fn get_posting(
    State(sim): State<Simulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require("postings:read")?;
    sim.with_state(|s| {
        s.posting(&id)
            .filter(|p| caller.confidential() || !is_confidential(p))
            .map(|p| ok(p.clone()))
            .ok_or_else(|| ApiError::not_found("postings", &id))
    })
}

pub(crate) async fn list_templates(
    State(sim): State<Simulator>,
    caller: Caller,
    params: Params,
) -> ApiResult {
    caller.require("feedback_templates:read")?;
    sim.with_state(|s| {
        let items = by_position(&s.templates, |_| true);
        paging::page(&mut s.cursors, &params, "/feedback_templates", items)
    })
    .map(page)
}

pub(crate) async fn get_template(
    State(sim): State<Simulator>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require("feedback_templates:read")?;
    sim.with_state(|s| find(&s.templates, &id, "feedback_templates"))
}
