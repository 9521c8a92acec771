//! Counts every SCIM request by method, resource and status, and every
//! SCIM write as an ingest (accepted on 2xx, else rejected) with its
//! latency. Labels come from a fixed set, never from the URL's ids.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;
use crate::metrics::{IngestOutcome, IngestSource};

pub async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let resource = resource_label(req.uri().path());
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD)
        && matches!(resource, "Users" | "Groups" | "Bulk");
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status();
    state
        .metrics
        .scim_request(method, resource, status.as_u16());
    if writes {
        let outcome = if status.is_success() {
            IngestOutcome::Accepted
        } else {
            IngestOutcome::Rejected
        };
        state
            .metrics
            .ingest(IngestSource::Scim, outcome, started.elapsed());
    }
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

/// The SCIM resource a path names: `/scim/v2/Users/ID` is `Users`.
fn resource_label(path: &str) -> &'static str {
    let first = path
        .strip_prefix("/scim/v2/")
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default();
    match first {
        "Users" => "Users",
        "Groups" => "Groups",
        "Bulk" => "Bulk",
        ".search" => ".search",
        "Schemas" => "Schemas",
        "ResourceTypes" => "ResourceTypes",
        "ServiceProviderConfig" => "ServiceProviderConfig",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_come_from_a_fixed_set() {
        assert_eq!(resource_label("/scim/v2/Users/abc"), "Users");
        assert_eq!(resource_label("/scim/v2/Groups"), "Groups");
        assert_eq!(resource_label("/scim/v2/ada@example.com"), "other");
        assert_eq!(resource_label("/elsewhere"), "other");
    }
}
