//! The `/v1` routes, one module per resource. Each handler first checks its one permission.

mod feedback;
mod files;
mod notes;
mod opportunities;
mod panels;
mod reference;
mod webhooks;

use super::Simulator;
use super::error::ApiError;
use super::gate;
use axum::Router;
use axum::extract::{OriginalUri, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde_json::{Value, json};

pub(crate) fn routes(sim: Simulator) -> Router<Simulator> {
    use feedback as fb;
    use opportunities as op;
    use reference as rf;
    Router::new()
        .route("/users", get(rf::list_users))
        .route("/users/{id}", get(rf::get_user))
        .route("/stages", get(rf::list_stages))
        .route("/stages/{id}", get(rf::get_stage))
        .route("/archive_reasons", get(rf::list_archive_reasons))
        .route("/archive_reasons/{id}", get(rf::get_archive_reason))
        .route("/postings", get(rf::list_postings))
        .route("/postings/{id}", get(rf::get_posting))
        .route("/feedback_templates", get(rf::list_templates))
        .route("/feedback_templates/{id}", get(rf::get_template))
        .route("/opportunities", get(op::list))
        .route("/opportunities/deleted", get(op::list_deleted))
        .route("/opportunities/{opp}", get(op::get_one))
        .route("/opportunities/{opp}/stage", put(op::put_stage))
        .route("/opportunities/{opp}/archived", put(op::put_archived))
        .route("/opportunities/{opp}/addTags", post(op::add_tags))
        .route("/opportunities/{opp}/removeTags", post(op::remove_tags))
        .route("/opportunities/{opp}/addLinks", post(op::add_links))
        .route("/opportunities/{opp}/removeLinks", post(op::remove_links))
        .route(
            "/opportunities/{opp}/applications",
            get(op::list_applications),
        )
        .route(
            "/opportunities/{opp}/applications/{id}",
            get(op::get_application),
        )
        .route(
            "/opportunities/{opp}/notes",
            get(notes::list).post(notes::create),
        )
        .route("/opportunities/{opp}/notes/{id}", get(notes::get_one))
        .route(
            "/opportunities/{opp}/feedback",
            get(fb::list).post(fb::create),
        )
        .route("/opportunities/{opp}/feedback/{id}", get(fb::get_one))
        .route(
            "/opportunities/{opp}/panels",
            get(panels::list).post(panels::create),
        )
        .route(
            "/opportunities/{opp}/panels/{id}",
            get(panels::get_one)
                .put(panels::update)
                .delete(panels::remove),
        )
        .route(
            "/opportunities/{opp}/interviews",
            get(panels::list_interviews),
        )
        .route(
            "/opportunities/{opp}/interviews/{id}",
            get(panels::get_interview),
        )
        .route(
            "/opportunities/{opp}/files",
            get(files::list)
                .post(files::upload)
                // The handler bounds the upload itself (Lever's 30 MB, as it streams).
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", delete(webhooks::remove))
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        // After the routes and fallbacks, so unknown routes are authenticated and logged too.
        .layer(axum::middleware::from_fn_with_state(sim, gate::gate))
}

/// Lever: 404 when "the request method and path supplied do not specify a known action".
pub(crate) async fn unknown_route(req: Request) -> Response {
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path().to_string(), |o| o.0.path().to_string());
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!("{} {} does not specify a known action", req.method(), path),
    )
    .into_response()
}

/// `{data: value}` with `status`.
fn data(status: StatusCode, value: Value) -> Response {
    (status, axum::Json(json!({ "data": value }))).into_response()
}

fn ok(value: Value) -> Response {
    data(StatusCode::OK, value)
}

/// A list page, already in its envelope.
fn page(envelope: Value) -> Response {
    (StatusCode::OK, axum::Json(envelope)).into_response()
}

/// `GET /opportunities/:opp/<kind>`: one opportunity's notes, feedback, panels or files, newest
/// first, paged, for a key with `permission`.
fn list_of(
    sim: &Simulator,
    caller: &super::params::Caller,
    params: &super::params::Params,
    opp: &str,
    (kind, permission): (&str, &str),
    items: fn(&super::state::State) -> &std::collections::HashMap<String, Vec<Value>>,
) -> super::error::ApiResult {
    caller.require(permission)?;
    sim.with_state(|s| {
        s.opp(opp, caller)?;
        let list = items(s)
            .get(opp)
            .into_iter()
            .flatten()
            .map(|x| (super::paging::SortKey::newest_first(x), x.clone()))
            .collect();
        let path = format!("/opportunities/{opp}/{kind}");
        super::paging::page(&mut s.cursors, params, &path, list)
    })
    .map(page)
}
