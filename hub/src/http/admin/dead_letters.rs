//! `/admin/dead-letters...`: list, inspect, replay, discard.

use axum::extract::State;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{ReadAdmin, WriteAdmin};
use super::extract::{Json, Path, Query};
use crate::AppState;
use crate::admin::AdminError;
use crate::admin::dead_letters::{
    self, DeadLetterList, DeadLetterView, Discarded, Replayed, Selection,
};
use crate::http::problem::Problem;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(replay_selected))
        .routes(routes!(get, discard))
        .routes(routes!(replay_one))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this destination's.
    destination: Option<String>,
}

/// Dead letters waiting for a replay, oldest first.
#[utoipa::path(
    get, path = "/admin/dead-letters", tag = "dead-letters", params(ListQuery),
    responses((status = 200, body = DeadLetterList)),
)]
async fn list(
    _: ReadAdmin,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<DeadLetterList>, Problem> {
    Ok(axum::Json(
        dead_letters::list(&state, q.destination.as_deref()).await?,
    ))
}

/// Which dead letters to replay: name a destination, an id, or set `all`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    destination: Option<String>,
    id: Option<String>,
    #[serde(default)]
    all: bool,
}

impl ReplayRequest {
    fn selection(self) -> Result<Selection, AdminError> {
        match (self.destination, self.id, self.all) {
            (Some(d), None, false) => Ok(Selection::Destination(d)),
            (None, Some(id), false) => Ok(Selection::Id(id)),
            (None, None, true) => Ok(Selection::All),
            (None, None, false) => Err(AdminError::Invalid(
                "name a destination, an id, or set all".into(),
            )),
            _ => Err(AdminError::Invalid(
                "name only one of destination, id and all".into(),
            )),
        }
    }
}

/// Queues dead letters again: of a destination, one by id, or all.
#[utoipa::path(
    post, path = "/admin/dead-letters/replay", tag = "dead-letters",
    request_body(content = ReplayRequest, content_type = "application/json"),
    responses(
        (status = 200, body = Replayed),
        (status = 422, description = "A body of the wrong shape", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn replay_selected(
    _: WriteAdmin,
    State(state): State<AppState>,
    Json(req): Json<ReplayRequest>,
) -> Result<axum::Json<Replayed>, Problem> {
    let selection = req.selection()?;
    Ok(axum::Json(dead_letters::replay(&state, &selection).await?))
}

/// One dead letter, with the vendor's last answer and the attempts that led to it.
#[utoipa::path(
    get, path = "/admin/dead-letters/{id}", tag = "dead-letters",
    params(("id" = String, Path, description = "The dead letter's id")),
    responses((status = 200, body = DeadLetterView), (status = 404, body = Problem, content_type = "application/problem+json")),
)]
async fn get(
    _: ReadAdmin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<DeadLetterView>, Problem> {
    Ok(axum::Json(dead_letters::get(&state, &id).await?))
}

/// Queues one dead letter again (the subject's current state goes out).
#[utoipa::path(
    post, path = "/admin/dead-letters/{id}/replay", tag = "dead-letters",
    params(("id" = String, Path, description = "The dead letter's id")),
    responses((status = 200, body = Replayed), (status = 404, body = Problem, content_type = "application/problem+json")),
)]
async fn replay_one(
    _: WriteAdmin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Replayed>, Problem> {
    Ok(axum::Json(dead_letters::replay_one(&state, &id).await?))
}

/// Drops a dead letter without delivering it.
#[utoipa::path(
    delete, path = "/admin/dead-letters/{id}", tag = "dead-letters",
    params(("id" = String, Path, description = "The dead letter's id")),
    responses((status = 200, body = Discarded), (status = 404, body = Problem, content_type = "application/problem+json")),
)]
async fn discard(
    _: WriteAdmin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Discarded>, Problem> {
    Ok(axum::Json(dead_letters::discard(&state, &id).await?))
}
