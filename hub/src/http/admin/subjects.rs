//! `/admin/subjects...`: search, view, consent, timeline, export, erase.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{ReadAdmin, WriteAdmin};
use super::extract::{Path, Query};
use crate::AppState;
use crate::admin::subjects::{
    self, ConsentView, ErasureStarted, SubjectList, SubjectView, Timeline,
};
use crate::http::problem::Problem;
use crate::store::SubjectReport;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(view))
        .routes(routes!(consent))
        .routes(routes!(timeline))
        .routes(routes!(export))
        .routes(routes!(erase))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// A hub id, an `externalId` (of any source) or an e-mail address.
    #[param(min_length = 1, example = "user1@example.com")]
    q: String,
    /// At most this many subjects (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Finds subjects by hub id, externalId or e-mail (exact match).
#[utoipa::path(
    get, path = "/admin/subjects", tag = "subjects", params(SearchQuery),
    responses((status = 200, body = SubjectList)),
)]
async fn search(
    _: ReadAdmin,
    State(state): State<AppState>,
    Query(q): Query<SearchQuery>,
) -> Result<axum::Json<SubjectList>, Problem> {
    let limit = crate::admin::limit(q.limit, 50)?;
    Ok(axum::Json(subjects::search(&state, &q.q, limit).await?))
}

/// A subject's profile, consent, consent ledger and the destinations holding it.
#[utoipa::path(
    get, path = "/admin/subjects/{subject}", tag = "subjects",
    params(("subject" = String, Path, description = "Hub id or SOURCE:externalId", example = "ciam:cust-1")),
    responses((status = 200, body = SubjectView), (status = 404, body = Problem, content_type = "application/problem+json")),
)]
async fn view(
    _: ReadAdmin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<axum::Json<SubjectView>, Problem> {
    Ok(axum::Json(subjects::view(&state, &subject).await?))
}

/// Current consent and its full history.
#[utoipa::path(
    get, path = "/admin/subjects/{subject}/consent", tag = "subjects",
    params(("subject" = String, Path, description = "Hub id or SOURCE:externalId", example = "ciam:cust-1")),
    responses((status = 200, body = ConsentView), (status = 404, body = Problem, content_type = "application/problem+json")),
)]
async fn consent(
    _: ReadAdmin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<axum::Json<ConsentView>, Problem> {
    Ok(axum::Json(subjects::consent(&state, &subject).await?))
}

/// The delivery timeline of a subject, per destination.
#[utoipa::path(
    get, path = "/admin/subjects/{subject}/timeline", tag = "subjects",
    params(("subject" = String, Path, description = "Hub id or SOURCE:externalId", example = "ciam:cust-1")),
    responses((status = 200, body = Timeline), (status = 404, body = Problem, content_type = "application/problem+json")),
)]
async fn timeline(
    _: ReadAdmin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<axum::Json<Timeline>, Problem> {
    Ok(axum::Json(subjects::timeline(&state, &subject).await?))
}

/// Everything the hub holds about a subject (GDPR art. 15).
#[utoipa::path(
    get, path = "/admin/subjects/{subject}/export", tag = "subjects",
    params(("subject" = String, Path, description = "Hub id or SOURCE:externalId", example = "ciam:cust-1")),
    responses((status = 200, body = SubjectReport), (status = 404, body = Problem, content_type = "application/problem+json")),
)]
async fn export(
    _: ReadAdmin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<axum::Json<SubjectReport>, Problem> {
    Ok(axum::Json(subjects::export(&state, &subject).await?))
}

/// Erases a subject (GDPR art. 17): a delete to every destination that may
/// hold it, then its PII is removed and a receipt kept. Needs a write token.
#[utoipa::path(
    post, path = "/admin/subjects/{subject}/erase", tag = "subjects",
    params(("subject" = String, Path, description = "Hub id or SOURCE:externalId", example = "ciam:cust-1")),
    responses(
        (status = 202, body = ErasureStarted),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already being erased", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn erase(
    _: WriteAdmin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<(StatusCode, axum::Json<ErasureStarted>), Problem> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(subjects::erase(&state, &subject).await?),
    ))
}
