//! `/scim/v2/...`: the SCIM 2.0 service provider (RFC 7644). One file per
//! resource (`users.rs`, `groups.rs`, `discovery.rs`, `bulk.rs`); `auth.rs` checks the
//! client's bearer token, `error.rs` renders errors and `application/scim+json`.
//! `resource.rs` holds the handlers `/Users` and `/Groups` share.

pub mod auth;
pub mod bulk;
pub mod discovery;
pub mod error;
pub mod groups;
mod metrics;
mod resource;
pub mod users;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::AppState;
use crate::scim_model::{ScimError, ScimType};
pub use error::ScimResponse;

/// Largest accepted request body.
pub const MAX_BODY: usize = 1024 * 1024;

/// The SCIM routes, each request counted (`metrics.rs`).
pub fn router(state: AppState) -> axum::Router<AppState> {
    let scim = axum::Router::new()
        .merge(users::router())
        .merge(groups::router())
        .merge(discovery::router())
        .merge(bulk::router())
        .route("/.search", axum::routing::post(resource::root_search))
        .fallback(|| async { ScimError::NotFound("no such SCIM endpoint".into()) });
    axum::Router::new()
        .nest("/scim/v2", scim)
        .layer(axum::middleware::from_fn_with_state(state, metrics::count))
}

/// A request's JSON body: `application/scim+json` or `application/json`
/// (any parameters, e.g. `charset`; no `Content-Type` at all is read as
/// JSON too), at most [`MAX_BODY`] bytes, with no NUL in any string. Any
/// other media type is refused with 415 before the body is read.
pub struct ScimJson(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for ScimJson {
    type Rejection = ScimError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ScimError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let essence = ct
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim();
            let json = ["application/scim+json", "application/json"]
                .iter()
                .any(|m| essence.eq_ignore_ascii_case(m));
            if !json {
                return Err(ScimError::UnsupportedMediaType(
                    "send the body as application/scim+json (or application/json)".into(),
                ));
            }
        }
        json_body(req.into_body()).await.map(ScimJson)
    }
}

/// Reads a JSON body; refuses one over the limit, not JSON, or holding NUL.
async fn json_body(body: Body) -> Result<serde_json::Value, ScimError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ScimError::TooLarge(format!("the body limit is {MAX_BODY} bytes")))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        ScimError::bad(
            ScimType::InvalidSyntax,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    if let Some(at) = crate::input::find_nul(&value, "") {
        return Err(ScimError::invalid_value(format!(
            "{at} must not contain a NUL character"
        )));
    }
    Ok(value)
}

/// The decoded query string.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `http(s)://host/scim/v2`, for `meta.location` and `Location`.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{proto}://{host}/scim/v2")
}

/// Whether an `If-Match` / `If-None-Match` list names `version` (or `*`).
fn names_version(value: &HeaderValue, version: i64) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    text.split(',').map(str::trim).any(|tag| {
        tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == version.to_string()
    })
}

/// 412 unless `If-Match` is absent or names the current version.
pub fn check_if_match(headers: &HeaderMap, version: i64) -> Result<(), ScimError> {
    match headers.get(header::IF_MATCH) {
        Some(v) if !names_version(v, version) => Err(ScimError::PreconditionFailed),
        _ => Ok(()),
    }
}

/// True when `If-None-Match` names the current version (GET answers 304).
pub fn not_modified(headers: &HeaderMap, version: i64) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| names_version(v, version))
}

/// Rings the delivery workers after a commit.
pub fn wake(state: &AppState) {
    state.wake.wake_all();
}

pub fn status_only(status: StatusCode) -> ScimResponse {
    ScimResponse::new(status, None)
}
