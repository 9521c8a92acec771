//! `/admin/...`: the admin API, one file per resource (the URL's first
//! segment after `/admin/` names it: `/admin/dead-letters/{id}` ->
//! `dead_letters.rs`, `/admin/erasure-receipts` -> `erasure_receipts.rs`). Handlers are thin: authenticate (`auth`), extract,
//! call the matching function of [`crate::admin`], render. Every route is
//! registered through utoipa-axum, so it is in `/admin/openapi.json` by
//! construction (`openapi.rs`).

pub mod auth;
mod changes;
mod dead_letters;
mod deliveries;
mod destinations;
mod erasure_receipts;
mod extract;
mod mappings;
pub mod openapi;
mod subjects;

use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;

use super::problem::Problem;
use crate::AppState;
use crate::admin::AdminError;

pub use auth::{AdminIdentity, ReadAdmin, Scope, WriteAdmin, authenticate};

/// The admin routes with their OpenAPI description, before it is split off.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(subjects::router())
        .merge(destinations::router())
        .merge(dead_letters::router())
        .merge(deliveries::router())
        .merge(changes::router())
        .merge(mappings::router())
        .merge(erasure_receipts::router())
        .merge(openapi::router())
}

pub fn router() -> axum::Router<AppState> {
    api().split_for_parts().0
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Problem {
        let not_found = |title| Problem::new(StatusCode::NOT_FOUND, title, e.to_string());
        match &e {
            AdminError::UnknownSubject => not_found("Unknown subject"),
            AdminError::UnknownDestination(_) => not_found("Unknown destination"),
            AdminError::UnknownDeadLetter => not_found("Unknown dead letter"),
            AdminError::UnknownReceipt => not_found("Unknown erasure receipt"),
            AdminError::Invalid(detail) => {
                Problem::new(StatusCode::BAD_REQUEST, "Bad request", detail.clone())
            }
            AdminError::Conflict { title, detail } => {
                Problem::new(StatusCode::CONFLICT, title, detail.clone())
            }
            AdminError::Store(store) => {
                tracing::error!(error = %store.log_text(), "admin request failed");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Store unavailable", None)
            }
        }
    }
}
