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

/// Every dead letter of one destination.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ByDestination {
    #[schema(min_length = 1)]
    destination: String,
}

/// One dead letter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ById {
    #[schema(min_length = 1)]
    id: String,
}

/// Every dead letter (`false` selects none).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Everything {
    all: bool,
}

/// Which dead letters to replay: of a destination, one by id, or all.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
enum ReplayRequest {
    Destination(ByDestination),
    Id(ById),
    All(Everything),
}

impl ReplayRequest {
    /// None: nothing selected (`all` false).
    fn selection(self) -> Option<Selection> {
        match self {
            ReplayRequest::Destination(d) => Some(Selection::Destination(d.destination)),
            ReplayRequest::Id(i) => Some(Selection::Id(i.id)),
            ReplayRequest::All(Everything { all }) => all.then_some(Selection::All),
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
    Json(req): Json<Option<ReplayRequest>>,
) -> Result<axum::Json<Replayed>, Problem> {
    let req =
        req.ok_or_else(|| AdminError::Invalid("name a destination, an id, or set all".into()))?;
    Ok(axum::Json(match req.selection() {
        Some(selection) => dead_letters::replay(&state, &selection).await?,
        None => Replayed { replayed: 0 },
    }))
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
