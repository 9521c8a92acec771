//! The HTTP surface: one module per area, merged under one trace layer.
//! `/webhooks/{source}` -> `webhooks.rs`, `/admin/...` -> `admin.rs`,
//! `/healthz` `/readyz` `/metrics` -> `health.rs`.

pub mod admin;
pub mod health;
pub mod problem;
pub mod scim;
pub mod webhooks;

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use tower_http::trace::TraceLayer;

use crate::AppState;
use problem::Problem;

pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .merge(webhooks::router())
        .merge(admin::router())
        .merge(health::router())
        .merge(scim::router())
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "Not found", None) })
        .layer(
            // The matched route, never the raw URI: query strings can hold PII.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_else(|| "unmatched".into());
                tracing::info_span!("request", method = %req.method(), route = %route)
            }),
        )
        .with_state(state)
}
