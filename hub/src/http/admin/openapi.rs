//! `GET /admin/openapi.json`: the OpenAPI 3.1 document of the admin API,
//! built from the handlers' `#[utoipa::path]` attributes and the types they
//! return. Every route is added through `utoipa_axum::routes!`, which
//! registers the route and its description together; the answers every
//! route shares (400, 401, 403, 503 as problem JSON) are added here once.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::http::problem::Problem;

pub const SECURITY_SCHEME: &str = "bearer";
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "syncd hub admin API",
        description = "Subjects, destinations, dead letters, changes, mappings and erasure \
                       receipts. Every request carries an admin bearer token (`hub token new \
                       --admin NAME --scope read|write`); write routes refuse read tokens \
                       with 403. Every error is RFC 9457 problem JSON."
    ),
    components(schemas(Problem)),
    modifiers(&BearerScheme),
    tags(
        (name = "subjects", description = "Search, profile, consent, timeline, export, erasure"),
        (name = "destinations", description = "State, lag, error rate; pause, resume, backfill"),
        (name = "dead-letters", description = "Deliveries that gave up: inspect, replay, discard"),
        (name = "deliveries", description = "Delivery attempts"),
        (name = "changes", description = "The change log"),
        (name = "mappings", description = "Mapping files: list, validate, preview"),
        (name = "erasure-receipts", description = "Proof of erasures"),
        (name = "meta", description = "This document"),
    )
)]
struct BaseDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An admin token; only its SHA-256 is configured."))
                    .build(),
            ),
        );
    }
}

/// The document's frame: info, tags, the bearer scheme, the Problem schema.
pub fn base() -> OpenApi {
    BaseDoc::openapi()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

/// Adds what every route shares: bearer security (not on this document
/// itself) and its problem answers.
fn add_shared(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = path == "/admin/openapi.json";
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let r = &mut op.responses.responses;
            if !public {
                op.security = Some(vec![SecurityRequirement::new(
                    SECURITY_SCHEME,
                    Vec::<String>::new(),
                )]);
                r.entry("400".into())
                    .or_insert_with(|| problem("Malformed request: query, path or body"));
                r.entry("401".into())
                    .or_insert_with(|| problem("No valid admin bearer token"));
                r.entry("403".into()).or_insert_with(|| {
                    problem("A read-scoped token on a write route, or the admin API is off")
                });
                r.entry("503".into())
                    .or_insert_with(|| problem("The store is unavailable; retry"));
            }
        }
    }
}

/// The complete document, as served.
pub fn document() -> OpenApi {
    let mut doc = super::api().into_openapi();
    add_shared(&mut doc);
    doc
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/admin/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
async fn openapi_json() -> impl IntoResponse {
    // Built once: it describes the code, which does not change while running.
    static JSON: OnceLock<String> = OnceLock::new();
    let text = JSON
        .get_or_init(|| serde_json::to_string(&document()).unwrap_or_else(|_| "{}".to_string()));
    ([(header::CONTENT_TYPE, "application/json")], text.as_str())
}
