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

/// Answers within this, whatever the store does. A second: a commit takes
/// milliseconds when the store is well, and while PostgreSQL is down every
/// store call waits out its whole timeout (sqlx retries the connect), so
/// the probe must give up well before the 2 s an orchestrator allows.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Ready when the store can commit: 503 with the reason otherwise.
async fn readyz(State(state): State<AppState>) -> Result<&'static str, Problem> {
    let unavailable =
        |reason: String| Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Store unavailable", reason);
    match tokio::time::timeout(READY_WITHIN, state.store.ping()).await {
        Ok(Ok(())) => Ok("ready"),
        Ok(Err(e)) => {
            tracing::error!(error = %e.log_text(), "readiness: the store cannot commit");
            Err(unavailable(format!(
                "the store cannot commit: {}",
                e.log_text()
            )))
        }
        Err(_) => {
            tracing::error!("readiness: the store did not answer in time");
            Err(unavailable(format!(
                "the store did not commit within {} s",
                READY_WITHIN.as_secs()
            )))
        }
    }
}

/// The exposition, with queue gauges read from the store now: every
/// loaded destination's depth, lag and pause, whichever process delivers it.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let stats = state.store.stats().await.ok();
    let names: Vec<String> = state
        .destinations
        .load()
        .iter()
        .map(|d| d.mapping.name.clone())
        .collect();
    let reports = state.store.destination_reports(&names).await.ok();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(stats.as_ref(), reports.as_deref()),
    )
}
