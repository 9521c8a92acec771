//! `/admin/deliveries`: recent delivery attempts.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::ReadAdmin;
use super::extract::Query;
use crate::AppState;
use crate::admin::deliveries::{self, DeliveryList};
use crate::http::problem::Problem;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveryQuery {
    /// Only this subject: hub id or SOURCE:externalId.
    subject: Option<String>,
    /// At most this many attempts (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Recent delivery attempts, newest first.
#[utoipa::path(
    get, path = "/admin/deliveries", tag = "deliveries", params(DeliveryQuery),
    responses((status = 200, body = DeliveryList), (status = 404, description = "Unknown subject", body = Problem, content_type = "application/problem+json")),
)]
async fn list(
    _: ReadAdmin,
    State(state): State<AppState>,
    Query(q): Query<DeliveryQuery>,
) -> Result<axum::Json<DeliveryList>, Problem> {
    let limit = crate::admin::limit(q.limit, 100)?;
    Ok(axum::Json(
        deliveries::list(&state, q.subject.as_deref(), limit).await?,
    ))
}
