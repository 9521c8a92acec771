//! `/admin/mappings...`: list, validate a posted file, preview a subject.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::ReadAdmin;
use super::extract::{Json, Path, Query};
use crate::AppState;
use crate::admin::AdminError;
use crate::admin::mappings::{self, MappingList, Preview, ValidateRequest, Validation};
use crate::http::problem::Problem;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(validate))
        .routes(routes!(preview))
}

/// The loaded mapping files.
#[utoipa::path(
    get, path = "/admin/mappings", tag = "mappings",
    responses((status = 200, body = MappingList)),
)]
async fn list(_: ReadAdmin, State(state): State<AppState>) -> axum::Json<MappingList> {
    axum::Json(mappings::list(&state))
}

/// Checks a mapping file without loading it: every problem, at
/// `file:line:col`, as `hub mappings check` reports it.
#[utoipa::path(
    post, path = "/admin/mappings/validate", tag = "mappings",
    request_body(content = ValidateRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The verdict (`valid` false with the errors)", body = Validation),
        (status = 422, description = "A body of the wrong shape", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn validate(
    _: ReadAdmin,
    State(state): State<AppState>,
    Json(req): Json<Option<ValidateRequest>>,
) -> Result<axum::Json<Validation>, Problem> {
    let req = req.ok_or_else(|| AdminError::Invalid("the body needs the file's text".into()))?;
    Ok(axum::Json(mappings::validate(&state, &req)?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PreviewQuery {
    /// Hub id or SOURCE:externalId of a stored subject.
    #[param(example = "ciam:cust-1")]
    subject: String,
}

/// What the destination would receive now for a stored subject, planned
/// as the driver plans it (nothing is sent): the exact mapped payload, and
/// which fields or purposes consent withheld, and why.
#[utoipa::path(
    get, path = "/admin/mappings/{destination}/preview", tag = "mappings",
    params(("destination" = String, Path, description = "The destination's name", example = "crm"), PreviewQuery),
    responses((status = 200, body = Preview), (status = 404, description = "Unknown destination or subject", body = Problem, content_type = "application/problem+json")),
)]
async fn preview(
    _: ReadAdmin,
    State(state): State<AppState>,
    Path(destination): Path<String>,
    Query(q): Query<PreviewQuery>,
) -> Result<axum::Json<Preview>, Problem> {
    Ok(axum::Json(
        mappings::preview(&state, &destination, &q.subject).await?,
    ))
}
