//! `/admin/changes`: the change log, newest first.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::ReadAdmin;
use super::extract::Query;
use crate::AppState;
use crate::admin::changes::{self, ChangeList};
use crate::http::problem::Problem;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(recent))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ChangeQuery {
    /// Only changes older than this change id (`next_before` of a page).
    #[param(minimum = 0)]
    before: Option<i64>,
    /// At most this many changes (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Recent changes: what changed (attribute names only), from where, when.
#[utoipa::path(
    get, path = "/admin/changes", tag = "changes", params(ChangeQuery),
    responses((status = 200, body = ChangeList)),
)]
async fn recent(
    _: ReadAdmin,
    State(state): State<AppState>,
    Query(q): Query<ChangeQuery>,
) -> Result<axum::Json<ChangeList>, Problem> {
    let limit = crate::admin::limit(q.limit, 100)?;
    if q.before.is_some_and(|b| b < 0) {
        return Err(crate::admin::AdminError::Invalid("before must not be negative".into()).into());
    }
    Ok(axum::Json(changes::recent(&state, q.before, limit).await?))
}
