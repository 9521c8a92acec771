//! `GET /healthz` (the process answers), `GET /readyz` (the store answers),
//! `GET /metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::problem::Problem;
use crate::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .route("/metrics", axum::routing::get(metrics))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, Problem> {
    state.store.ping().await.map_err(|e| {
        tracing::error!(error = %e, "store not reachable");
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Store unavailable", None)
    })?;
    Ok("ready")
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let stats = state.store.stats().await.ok();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(stats.as_ref()),
    )
}
