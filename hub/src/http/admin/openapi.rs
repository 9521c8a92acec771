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

/// What every string the hub takes in must match: no NUL character, which
/// nothing the hub holds can contain (PostgreSQL cannot even compare it), so
/// every route refuses it with 400.
const NO_NUL: &str = "^[^\\x00]*$";

/// Adds [`NO_NUL`] to every string schema in `schema` (and the components
/// it refers to, once each).
fn refuse_nul(
    schema: &mut serde_json::Value,
    components: &mut serde_json::Value,
    seen: &mut Vec<String>,
) {
    use serde_json::Value;
    let Value::Object(map) = schema else { return };
    if let Some(Value::String(r)) = map.get("$ref") {
        let name = r.trim_start_matches("#/components/schemas/").to_string();
        if !seen.contains(&name) {
            seen.push(name.clone());
            if let Some(mut target) = components.get_mut(&name).map(std::mem::take) {
                refuse_nul(&mut target, components, seen);
                components[&name] = target;
            }
        }
        return;
    }
    let is_string = match map.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
        _ => false,
    };
    if is_string && !map.contains_key("pattern") && !map.contains_key("enum") {
        map.insert("pattern".into(), NO_NUL.into());
    }
    for value in map.values_mut() {
        match value {
            Value::Object(_) => refuse_nul(value, components, seen),
            Value::Array(items) => items
                .iter_mut()
                .for_each(|i| refuse_nul(i, components, seen)),
            _ => {}
        }
    }
}

/// Every parameter and request body: strings without NUL.
fn document_nul_refusal(doc: &mut serde_json::Value) {
    let mut components = doc["components"]["schemas"].take();
    let mut seen = Vec::new();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths
            .values_mut()
            .filter_map(|item| item.as_object_mut())
            .flat_map(|item| item.values_mut())
        {
            if let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) {
                for p in params {
                    refuse_nul(&mut p["schema"], &mut components, &mut seen);
                }
            }
            if let Some(content) = op.pointer_mut("/requestBody/content") {
                refuse_nul(content, &mut components, &mut seen);
            }
        }
    }
    doc["components"]["schemas"] = components;
}

/// The complete document, as served.
pub fn document() -> serde_json::Value {
    let mut doc = super::api().into_openapi();
    add_shared(&mut doc);
    let mut json = serde_json::to_value(&doc).unwrap_or_default();
    document_nul_refusal(&mut json);
    json
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
