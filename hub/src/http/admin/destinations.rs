//! `/admin/destinations...`: state and numbers; pause, resume, backfill.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{ReadAdmin, WriteAdmin};
use super::extract::{Json, Path};
use crate::AppState;
use crate::admin::AdminError;
use crate::admin::destinations::{
    self, BackfillStarted, DestinationList, DestinationView, StateChange,
};
use crate::http::problem::Problem;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(backfill))
}

/// Every loaded destination: state, queue, lag, last hour's outcomes,
/// error rate, last error and latest backfill.
#[utoipa::path(
    get, path = "/admin/destinations", tag = "destinations",
    responses((status = 200, body = DestinationList)),
)]
async fn list(
    _: ReadAdmin,
    State(state): State<AppState>,
) -> Result<axum::Json<DestinationList>, Problem> {
    Ok(axum::Json(destinations::list(&state).await?))
}

/// One destination.
#[utoipa::path(
    get, path = "/admin/destinations/{name}", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name", example = "crm")),
    responses((status = 200, body = DestinationView), (status = 404, body = Problem, content_type = "application/problem+json")),
)]
async fn get(
    _: ReadAdmin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::Json<DestinationView>, Problem> {
    Ok(axum::Json(destinations::get(&state, &name).await?))
}

/// Longest pause reason kept.
const MAX_REASON: usize = 500;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PauseRequest {
    /// Why (shown with the state); default "paused by an admin".
    #[schema(max_length = 500)]
    reason: Option<String>,
}

/// Stops deliveries to the destination until resumed; its jobs are kept.
#[utoipa::path(
    post, path = "/admin/destinations/{name}/pause", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name", example = "crm")),
    request_body(content = Option<PauseRequest>, content_type = "application/json"),
    responses(
        (status = 200, body = StateChange),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A body of the wrong shape", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn pause(
    _: WriteAdmin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(req): Json<PauseRequest>,
) -> Result<axum::Json<StateChange>, Problem> {
    if req
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON)
    {
        return Err(
            AdminError::Invalid(format!("reason is longer than {MAX_REASON} characters")).into(),
        );
    }
    Ok(axum::Json(
        destinations::pause(&state, &name, req.reason.as_deref()).await?,
    ))
}

/// Delivers to the destination again: what it missed goes out, latest state only.
#[utoipa::path(
    post, path = "/admin/destinations/{name}/resume", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name", example = "crm")),
    responses((status = 200, body = StateChange), (status = 404, body = Problem, content_type = "application/problem+json")),
)]
async fn resume(
    _: WriteAdmin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::Json<StateChange>, Problem> {
    Ok(axum::Json(destinations::resume(&state, &name).await?))
}

/// Queues every subject for the destination, in the background (or resumes
/// an unfinished run); the destination's `backfill` shows its progress.
#[utoipa::path(
    post, path = "/admin/destinations/{name}/backfill", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name", example = "crm")),
    responses(
        (status = 202, body = BackfillStarted),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A backfill is running", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn backfill(
    _: WriteAdmin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, axum::Json<BackfillStarted>), Problem> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(destinations::backfill(&state, &name).await?),
    ))
}
