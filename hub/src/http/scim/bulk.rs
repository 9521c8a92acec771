//! `POST /scim/v2/Bulk` (RFC 7644 3.7): many User and Group writes in one
//! request.
//!
//! Each operation runs through the same handler as its single request
//! (`/Users`, `/Groups/{id}`, ...), with the client's credentials, and
//! **commits on its own**: a Bulk request is not a transaction, and an
//! operation that fails leaves the ones before it committed (RFC 7644 allows
//! this; `failOnErrors` stops the processing after that many errors).
//!
//! `bulkId:NAME` in a path or anywhere in `data` (e.g. a Group's
//! `members[].value`) stands for the id of the resource the operation with
//! `bulkId` NAME created. Operations are processed in request order, except
//! that one referring to a bulkId that a later operation defines waits until
//! that one ran; a reference that never resolves (unknown, failed or
//! circular) fails its operation with 409 `invalidValue`.
//!
//! Limits, advertised in ServiceProviderConfig: [`MAX_OPERATIONS`] operations
//! (413 `tooMany` beyond) and [`MAX_PAYLOAD`] bytes (413 `tooLarge`).

use std::collections::{HashMap, HashSet};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, header};
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use super::auth::ScimClient;
use super::{ScimJson, ScimResponse};
use crate::AppState;
use crate::scim_model::{ScimError, ScimType};

pub const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// Most operations in one Bulk request.
pub const MAX_OPERATIONS: usize = 1000;
/// Largest Bulk request body, in bytes (the SCIM body limit).
pub const MAX_PAYLOAD: usize = super::MAX_BODY;

const BULK_PREFIX: &str = "bulkId:";

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/Bulk", axum::routing::post(bulk))
}

/// One operation of the request, checked.
struct Operation {
    method: Method,
    bulk_id: Option<String>,
    version: Option<String>,
    path: String,
    data: Option<Value>,
}

async fn bulk(
    State(state): State<AppState>,
    _client: ScimClient,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ScimError> {
    let Value::Object(request) = body else {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            "a BulkRequest must be a JSON object",
        ));
    };
    let get = |name: &str| {
        request
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let fail_on_errors = match get("failOnErrors") {
        None | Some(Value::Null) => usize::MAX,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => {
                return Err(ScimError::bad(
                    ScimType::InvalidValue,
                    "failOnErrors must be a positive integer",
                ));
            }
        },
    };
    let Some(Value::Array(raw_ops)) = get("Operations") else {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            "a BulkRequest needs an Operations array",
        ));
    };
    if raw_ops.len() > MAX_OPERATIONS {
        return Err(ScimError::TooMany(format!(
            "{} operations: maxOperations is {MAX_OPERATIONS}",
            raw_ops.len()
        )));
    }
    let ops: Vec<Result<Operation, ScimError>> = raw_ops.iter().map(parse_operation).collect();

    let app = super::users::router()
        .merge(super::groups::router())
        .with_state(state);
    let mut resolved: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Value> = Vec::with_capacity(ops.len());
    let mut errors = 0usize;
    let mut pending: Vec<usize> = (0..ops.len()).collect();
    'rounds: while !pending.is_empty() {
        // bulkIds that operations still to run will define.
        let defined_later: HashSet<&str> = pending
            .iter()
            .filter_map(|&i| ops[i].as_ref().ok()?.bulk_id.as_deref())
            .collect();
        let mut waiting = Vec::new();
        let mut progressed = false;
        for &i in &pending {
            if errors >= fail_on_errors {
                break 'rounds;
            }
            let op = match &ops[i] {
                Ok(op) => op,
                Err(e) => {
                    errors += 1;
                    progressed = true;
                    results.push(failure(
                        raw_ops[i].get("method"),
                        bulk_id_of(&raw_ops[i]),
                        e,
                    ));
                    continue;
                }
            };
            let refs = references(op);
            if refs.iter().any(|r| {
                !resolved.contains_key(r)
                    && defined_later.contains(r.as_str())
                    && op.bulk_id.as_deref() != Some(r)
            }) {
                waiting.push(i);
                continue;
            }
            progressed = true;
            let outcome = run(&app, &headers, op, &resolved).await;
            match outcome {
                Ok((result, id)) => {
                    if let (Some(b), Some(id)) = (&op.bulk_id, id) {
                        resolved.insert(b.clone(), id);
                    }
                    let failed = result["status"]
                        .as_str()
                        .and_then(|s| s.parse::<u16>().ok())
                        .is_none_or(|s| s >= 400);
                    if failed {
                        errors += 1;
                    }
                    results.push(result);
                }
                Err(e) => {
                    errors += 1;
                    results.push(failure(
                        Some(&json!(op.method.as_str())),
                        op.bulk_id.as_deref(),
                        &e,
                    ));
                }
            }
        }
        if !progressed {
            // Circular references: none of them can run.
            for &i in &waiting {
                if errors >= fail_on_errors {
                    break;
                }
                errors += 1;
                if let Ok(op) = &ops[i] {
                    results.push(failure(
                        Some(&json!(op.method.as_str())),
                        op.bulk_id.as_deref(),
                        &unresolved(&references(op).join(", ")),
                    ));
                }
            }
            break;
        }
        pending = waiting;
    }
    Ok(ScimResponse::ok(json!({
        "schemas": [BULK_RESPONSE_URN],
        "Operations": results,
    })))
}

fn bulk_id_of(raw: &Value) -> Option<&str> {
    crate::scim_model::get_ci(raw, "bulkId").and_then(Value::as_str)
}

fn unresolved(what: &str) -> ScimError {
    ScimError::bad(
        ScimType::InvalidValue,
        format!("bulkId reference {what} does not resolve to a created resource"),
    )
}

fn parse_operation(raw: &Value) -> Result<Operation, ScimError> {
    let field = |name: &str| crate::scim_model::get_ci(raw, name);
    if !raw.is_object() {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            "an operation must be an object",
        ));
    }
    let method = match field("method").and_then(Value::as_str) {
        Some(m) if m.eq_ignore_ascii_case("POST") => Method::POST,
        Some(m) if m.eq_ignore_ascii_case("PUT") => Method::PUT,
        Some(m) if m.eq_ignore_ascii_case("PATCH") => Method::PATCH,
        Some(m) if m.eq_ignore_ascii_case("DELETE") => Method::DELETE,
        _ => {
            return Err(ScimError::bad(
                ScimType::InvalidSyntax,
                "an operation's method must be POST, PUT, PATCH or DELETE",
            ));
        }
    };
    let bulk_id = match field("bulkId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => {
            return Err(ScimError::bad(
                ScimType::InvalidSyntax,
                "bulkId must be a non-empty string",
            ));
        }
    };
    let path = field("path")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::bad(ScimType::InvalidSyntax, "an operation needs a path"))?;
    let mut segments = path.trim_start_matches('/').split('/');
    let kind = segments.next().unwrap_or_default();
    let id = segments.next();
    let well_formed = (kind == "Users" || kind == "Groups")
        && segments.next().is_none()
        && id.is_none_or(|id| !id.is_empty() && !id.starts_with('.'))
        && !path.contains(['?', '#'])
        && (method == Method::POST) == id.is_none();
    if !well_formed {
        return Err(ScimError::bad(
            ScimType::InvalidPath,
            format!("{method} {path:?} is not an operation on /Users or /Groups"),
        ));
    }
    let data = field("data").filter(|d| !d.is_null()).cloned();
    if method != Method::DELETE && data.is_none() {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            format!("{method} needs data"),
        ));
    }
    Ok(Operation {
        method,
        bulk_id,
        version: field("version").and_then(Value::as_str).map(str::to_string),
        path: format!("/{}", path.trim_start_matches('/')),
        data,
    })
}

/// The bulkIds an operation refers to, in its path and data.
fn references(op: &Operation) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |s: &str| {
        if let Some(name) = s.strip_prefix(BULK_PREFIX)
            && !out.iter().any(|o| o == name)
        {
            out.push(name.to_string());
        }
    };
    for segment in op.path.split('/') {
        add(segment);
    }
    fn walk(v: &Value, add: &mut dyn FnMut(&str)) {
        match v {
            Value::String(s) => add(s),
            Value::Array(items) => items.iter().for_each(|i| walk(i, add)),
            Value::Object(m) => m.values().for_each(|i| walk(i, add)),
            _ => {}
        }
    }
    if let Some(d) = &op.data {
        walk(d, &mut add);
    }
    out
}

/// `bulkId:NAME` replaced by the id NAME created.
fn substitute(v: &Value, resolved: &HashMap<String, String>) -> Result<Value, ScimError> {
    Ok(match v {
        Value::String(s) => match s.strip_prefix(BULK_PREFIX) {
            Some(name) => Value::String(resolved.get(name).cloned().ok_or_else(|| unresolved(s))?),
            None => v.clone(),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| substitute(i, resolved))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, resolved)?)))
                .collect::<Result<Map<_, _>, ScimError>>()?,
        ),
        other => other.clone(),
    })
}

/// Runs one operation through the resource's own handler; returns its
/// BulkResponse entry and, for a create, the new id.
async fn run(
    app: &axum::Router,
    headers: &HeaderMap,
    op: &Operation,
    resolved: &HashMap<String, String>,
) -> Result<(Value, Option<String>), ScimError> {
    let mut path = String::new();
    for segment in op.path.split('/').skip(1) {
        path.push('/');
        match segment.strip_prefix(BULK_PREFIX) {
            Some(name) => path.push_str(resolved.get(name).ok_or_else(|| unresolved(segment))?),
            None => path.push_str(segment),
        }
    }
    let uri: axum::http::Uri = path
        .parse()
        .map_err(|_| ScimError::invalid_path(format!("{path:?} is not a valid path")))?;
    let mut req = Request::builder().method(op.method.clone()).uri(uri);
    for name in [header::AUTHORIZATION, header::HOST] {
        if let Some(v) = headers.get(&name) {
            req = req.header(name, v);
        }
    }
    if let Some(v) = headers.get("x-forwarded-proto") {
        req = req.header("x-forwarded-proto", v);
    }
    if let Some(version) = &op.version {
        req = req.header(header::IF_MATCH, version.as_str());
    }
    let body = match &op.data {
        Some(d) => {
            req = req.header(header::CONTENT_TYPE, "application/scim+json");
            Body::from(substitute(d, resolved)?.to_string())
        }
        None => Body::empty(),
    };
    let req = req.body(body).map_err(|_| {
        ScimError::bad(
            ScimType::InvalidSyntax,
            "the operation is not a valid request",
        )
    })?;
    let resp = match app.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status();
    let version = resp
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let mut entry = Map::new();
    entry.insert("method".into(), op.method.as_str().into());
    if let Some(b) = &op.bulk_id {
        entry.insert("bulkId".into(), b.clone().into());
    }
    if let Some(v) = version {
        entry.insert("version".into(), v.into());
    }
    let location = answer
        .pointer("/meta/location")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(l) = location {
        entry.insert("location".into(), l.into());
    }
    entry.insert("status".into(), status.as_u16().to_string().into());
    if status.is_client_error() || status.is_server_error() {
        entry.insert("response".into(), answer.clone());
    }
    let id = (op.method == Method::POST && status.is_success())
        .then(|| answer.get("id").and_then(Value::as_str).map(str::to_string))
        .flatten();
    Ok((Value::Object(entry), id))
}

/// The BulkResponse entry of an operation that failed before running.
fn failure(method: Option<&Value>, bulk_id: Option<&str>, e: &ScimError) -> Value {
    let mut entry = Map::new();
    if let Some(m) = method.and_then(Value::as_str) {
        entry.insert("method".into(), m.to_ascii_uppercase().into());
    }
    if let Some(b) = bulk_id {
        entry.insert("bulkId".into(), b.into());
    }
    // An unresolved reference is a conflict with the rest of the request.
    let status = match e.scim_type() {
        Some(ScimType::InvalidValue) if e.to_string().starts_with("bulkId reference") => 409,
        _ => e.status(),
    };
    let mut response = e.body();
    response["status"] = status.to_string().into();
    entry.insert("status".into(), status.to_string().into());
    entry.insert("response".into(), response);
    Value::Object(entry)
}
