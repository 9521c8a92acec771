//! `/admin/erasure-receipts...`: proof of completed erasures.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::ReadAdmin;
use super::extract::{Path, Query};
use crate::AppState;
use crate::admin::erasure_receipts::{self as receipts, ReceiptList};
use crate::http::problem::Problem;
use crate::store::ErasureReceipt;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReceiptQuery {
    /// At most this many receipts (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Erasure receipts, newest first.
#[utoipa::path(
    get, path = "/admin/erasure-receipts", tag = "erasure-receipts", params(ReceiptQuery),
    responses((status = 200, body = ReceiptList)),
)]
async fn list(
    _: ReadAdmin,
    State(state): State<AppState>,
    Query(q): Query<ReceiptQuery>,
) -> Result<axum::Json<ReceiptList>, Problem> {
    let limit = crate::admin::limit(q.limit, 100)?;
    Ok(axum::Json(receipts::list(&state, limit).await?))
}

/// The receipt of one erased subject.
#[utoipa::path(
    get, path = "/admin/erasure-receipts/{subject_id}", tag = "erasure-receipts",
    params(("subject_id" = String, Path, description = "The erased subject's hub id")),
    responses((status = 200, body = ErasureReceipt), (status = 404, body = Problem, content_type = "application/problem+json")),
)]
async fn get(
    _: ReadAdmin,
    State(state): State<AppState>,
    Path(subject_id): Path<String>,
) -> Result<axum::Json<ErasureReceipt>, Problem> {
    Ok(axum::Json(receipts::get(&state, &subject_id).await?))
}
