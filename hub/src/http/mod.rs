//! The HTTP surface: one module per area, merged under one trace layer.
//! `/webhooks/{source}` -> `webhooks.rs`, `/admin/...` -> `admin/`,
//! `/console/...` -> `console/`, `/healthz` `/readyz` `/metrics` -> `health.rs`.

pub mod admin;
pub mod console;
pub mod health;
pub mod problem;
pub mod scim;
pub mod webhooks;

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::trace::TraceLayer;

use crate::AppState;
use problem::Problem;

pub fn router(state: AppState) -> axum::Router {
    layered(
        axum::Router::new()
            .merge(webhooks::router())
            .merge(admin::router())
            .merge(console::router())
            .merge(health::router())
            .merge(scim::router(state.clone())),
        state,
    )
}

/// What a `--role worker` process serves: `/healthz`, `/readyz` and
/// `/metrics`, so an orchestrator can probe it and scrape its delivery
/// counters; every other path is 404.
pub fn worker_router(state: AppState) -> axum::Router {
    layered(health::router(), state)
}

/// The fallback, the URL check and the trace span every route gets. With
/// span export on, a caller's W3C `traceparent` header makes the request
/// span part of the caller's trace.
fn layered(routes: axum::Router<AppState>, state: AppState) -> axum::Router {
    let join_callers = state.config.telemetry.enabled();
    routes
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "Not found", None) })
        .layer(axum::middleware::from_fn(refuse_nul_in_url))
        .layer(
            // The matched route, never the raw URI: query strings can hold PII.
            TraceLayer::new_for_http().make_span_with(move |req: &Request| {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_else(|| "unmatched".into());
                let span = tracing::info_span!("request", method = %req.method(), route = %route);
                if join_callers {
                    let caller = req
                        .headers()
                        .get("traceparent")
                        .and_then(|v| v.to_str().ok());
                    crate::telemetry::join_traces(&span, caller);
                }
                span
            }),
        )
        .with_state(state)
}

/// A NUL (`%00`) in a path segment or query value can name nothing the hub
/// holds, and PostgreSQL cannot even compare it: every route refuses it with
/// 400 in its protocol's error format before any handler or store sees it.
async fn refuse_nul_in_url(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let nul = |part: Option<&str>| part.is_some_and(|p| p.contains("%00"));
    if !nul(Some(uri.path())) && !nul(uri.query()) {
        return next.run(req).await;
    }
    let detail = "the request URL must not contain a NUL character (%00)";
    if uri.path().starts_with("/scim/") {
        crate::scim_model::ScimError::invalid_value(detail).into_response()
    } else if uri.path().starts_with("/console") {
        console::ConsoleError::BadRequest(detail.into()).into_response()
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "Bad request URL",
            detail.to_string(),
        )
        .into_response()
    }
}
