//! RudderStack: the data plane's HTTP API (`POST /v1/batch`, checked against
//! rudder-server's `gateway/openapi.yaml`, answering as its gateway does:
//! plain-text bodies, `OK` on success) and the control plane's User
//! Suppression API (`POST /v2/regulations`, `GET /v2/regulations`,
//! `DELETE /v2/regulations/{id}`), which has no description in
//! vendor-specs: its rules follow RudderStack's API page (Bearer token;
//! `regulationType` `suppress` or `suppress_with_delete`; `users[]` each
//! with a `userId`; `sourceIds` only with `suppress`, `destinationIds` only
//! with `suppress_with_delete`, never both; 201 with one regulation per
//! user; the list pages through `paging.next`).
//!
//! RudderStack documents no processing state for a regulation: the list
//! shows `id`, `canceled`, `regulationType` and `attributes` only. The fake
//! models exactly that, plus a listing delay (a new regulation shows up in
//! the list only after N listings) that tests can script.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::openapi::Spec;
use crate::{Journal, Recorded, Running, forced_answer, serve};

pub const WRITE_KEY: &str = "2Ab7RsWriteKeyTest";
pub const API_TOKEN: &str = "rs_sat_test_token";
/// rudder-server's default `Gateway.maxReqSizeInKB`.
pub const MAX_REQUEST_BYTES: usize = 4000 * 1024;
/// What RudderStack's SDKs allow per event (they drop larger ones).
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
const PROVIDERS: &[&str] = &["custom", "oneTrust", "ketch", "iubenda"];

/// What RudderStack received for one `userId`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub traits: Map<String, Value>,
    /// `context.consentManagement` of the last identify.
    pub consent: Option<Value>,
    pub identifies: usize,
    /// The last event's `timestamp`.
    pub timestamp: Option<String>,
    pub deleted: bool,
    pub suppressed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Regulation {
    pub id: String,
    pub regulation_type: String,
    pub attributes: Map<String, Value>,
    pub source_ids: Vec<String>,
    pub destination_ids: Vec<String>,
    pub canceled: bool,
    /// Listings it stays out of before it shows.
    pub hidden_for: u32,
}

#[derive(Debug, Default)]
struct Model {
    profiles: BTreeMap<String, Profile>,
    message_ids: std::collections::HashSet<String>,
    regulations: Vec<Regulation>,
    next_id: u64,
    listing_delay: u32,
    page_size: usize,
}

#[derive(Clone)]
struct AppState {
    journal: Journal,
    spec: Arc<Spec>,
    model: Arc<Mutex<Model>>,
}

pub struct Fake {
    pub url: String,
    pub journal: Journal,
    model: Arc<Mutex<Model>>,
    _running: Running,
}

pub async fn start() -> Fake {
    let journal = Journal::default();
    let model = Arc::new(Mutex::new(Model {
        page_size: 50,
        ..Model::default()
    }));
    let state = AppState {
        journal: journal.clone(),
        spec: Arc::new(Spec::load("rudderstack/gateway-openapi.yaml")),
        model: model.clone(),
    };
    let running = serve(Router::new().fallback(handle).with_state(state)).await;
    Fake {
        url: running.url.clone(),
        journal,
        model,
        _running: running,
    }
}

impl Fake {
    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn profile(&self, user_id: &str) -> Option<Profile> {
        self.model().profiles.get(user_id).cloned()
    }

    pub fn profiles(&self) -> BTreeMap<String, Profile> {
        self.model().profiles.clone()
    }

    pub fn regulations(&self) -> Vec<Regulation> {
        self.model().regulations.clone()
    }

    /// New regulations show in the list only after this many listings.
    pub fn set_listing_delay(&self, listings: u32) {
        self.model().listing_delay = listings;
    }

    /// Regulations per page of `GET /v2/regulations` (default 50).
    pub fn set_page_size(&self, size: usize) {
        self.model().page_size = size.max(1);
    }

    /// Cancels a regulation as an admin would in the dashboard.
    pub fn cancel(&self, id: &str) {
        if let Some(r) = self.model().regulations.iter_mut().find(|r| r.id == id) {
            r.canceled = true;
        }
    }

    /// Adds regulations of other users, so listings have pages to walk.
    pub fn add_unrelated_regulations(&self, n: usize) {
        let mut model = self.model();
        for i in 0..n {
            model.next_id += 1;
            let id = format!("00000000-0000-4000-8000-{:012}", model.next_id);
            let mut attributes = Map::new();
            attributes.insert("userId".into(), json!(format!("someone-else-{i}")));
            model.regulations.push(Regulation {
                id,
                regulation_type: "suppress".into(),
                attributes,
                source_ids: vec![],
                destination_ids: vec![],
                canceled: false,
                hidden_for: 0,
            });
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn control_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"message": message}))).into_response()
}

async fn handle(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let recorded = Recorded::read(req).await;
    state.journal.record(&recorded);
    if let Some(forced) = forced_answer(&state.journal).await {
        return forced;
    }
    let path = recorded.path.clone();
    match (recorded.method.as_str(), path.as_str()) {
        (_, p) if p.starts_with("/v1/") => data_plane(&state, &recorded),
        ("POST", "/v2/regulations") => create_regulations(&state, &recorded),
        ("GET", "/v2/regulations") => list_regulations(&state, &recorded),
        ("DELETE", p) if p.starts_with("/v2/regulations/") => {
            cancel_regulation(&state, &recorded, &p["/v2/regulations/".len()..])
        }
        _ => {
            state.journal.violation(format!(
                "rudderstack: no such endpoint {} {path}",
                recorded.method
            ));
            text(StatusCode::NOT_FOUND, "404 page not found")
        }
    }
}

fn data_plane(state: &AppState, req: &Recorded) -> Response {
    let journal = &state.journal;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{WRITE_KEY}:"))
    );
    match req.header("authorization") {
        None => {
            journal.violation("rudderstack /v1: no Authorization header");
            return text(
                StatusCode::UNAUTHORIZED,
                "Failed to read writeKey from header",
            );
        }
        Some(h) if h != expected => {
            journal
                .violation("rudderstack /v1: Authorization is not Basic base64(\"<writeKey>:\")");
            return text(StatusCode::UNAUTHORIZED, "Invalid Write Key");
        }
        Some(_) => {}
    }
    if req.body.len() > MAX_REQUEST_BYTES {
        journal.violation("rudderstack /v1/batch: request over Gateway.maxReqSizeInKB");
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request size exceeds max limit",
        );
    }
    if serde_json::from_slice::<Value>(&req.body).is_err() {
        journal.violation("rudderstack /v1/batch: body is not JSON");
        return text(StatusCode::BAD_REQUEST, "Invalid JSON");
    }
    let violations = state.spec.check(&req.parts());
    if !violations.is_empty() {
        for v in &violations {
            journal.violation(v.to_string());
        }
        return text(StatusCode::BAD_REQUEST, "Invalid request");
    }
    if req.path != "/v1/batch" {
        journal.violation(format!(
            "rudderstack: the hub sends {} only through /v1/batch",
            req.path
        ));
        return text(StatusCode::NOT_FOUND, "not modelled");
    }
    let body = req.json();
    let events = body["batch"].as_array().cloned().unwrap_or_default();
    for (i, event) in events.iter().enumerate() {
        if event["userId"].as_str().is_none() && event["anonymousId"].as_str().is_none() {
            journal.violation(format!(
                "rudderstack /v1/batch: batch[{i}] has no userId or anonymousId"
            ));
            return text(
                StatusCode::BAD_REQUEST,
                "Request neither has anonymousId nor userId",
            );
        }
        let size = serde_json::to_vec(event).map(|v| v.len()).unwrap_or(0);
        if size > MAX_EVENT_BYTES {
            journal.violation(format!(
                "rudderstack /v1/batch: batch[{i}] is {size} bytes, over 32 KB"
            ));
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request size exceeds max limit",
            );
        }
        let mut problems = Vec::new();
        match event.get("timestamp").and_then(Value::as_str) {
            Some(ts) if crate::is_rfc3339(ts) => {}
            Some(_) => problems.push("timestamp is not RFC 3339".to_string()),
            None => problems.push("no timestamp (the hub sends its own)".to_string()),
        }
        if event["messageId"].as_str().is_none() {
            problems.push("no messageId, so a retry is not deduplicated".into());
        }
        if let Some(cm) = event.pointer("/context/consentManagement") {
            problems.extend(consent_problems(cm));
        }
        for p in problems {
            journal.violation(format!("rudderstack /v1/batch: batch[{i}]: {p}"));
        }
    }
    let mut model = state.model.lock().unwrap_or_else(|e| e.into_inner());
    for event in &events {
        let Some(message_id) = event["messageId"].as_str() else {
            continue;
        };
        if !model.message_ids.insert(message_id.to_string()) || event["type"] != "identify" {
            continue;
        }
        let Some(user_id) = event["userId"].as_str() else {
            continue;
        };
        if model.profiles.get(user_id).is_some_and(|p| p.suppressed) {
            continue;
        }
        let profile = model.profiles.entry(user_id.to_string()).or_default();
        profile.deleted = false;
        profile.identifies += 1;
        profile.timestamp = event["timestamp"].as_str().map(String::from);
        if let Some(traits) = event["traits"].as_object() {
            for (k, v) in traits {
                profile.traits.insert(k.clone(), v.clone());
            }
        }
        if let Some(cm) = event.pointer("/context/consentManagement") {
            profile.consent = Some(cm.clone());
        }
    }
    text(StatusCode::OK, "OK")
}

/// The consent-management object as RudderStack's docs describe it.
fn consent_problems(cm: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let ids = |key: &str| {
        cm.get(key)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().all(Value::is_string))
    };
    if !ids("allowedConsentIds") {
        out.push("consentManagement.allowedConsentIds is not an array of ids".into());
    }
    if !ids("deniedConsentIds") {
        out.push("consentManagement.deniedConsentIds is not an array of ids".into());
    }
    match cm.get("provider").and_then(Value::as_str) {
        Some(p) if PROVIDERS.contains(&p) => {}
        _ => out.push(format!(
            "consentManagement.provider is not one of {PROVIDERS:?}"
        )),
    }
    if cm.get("provider").and_then(Value::as_str) == Some("custom")
        && !matches!(
            cm.get("resolutionStrategy").and_then(Value::as_str),
            Some("and") | Some("or")
        )
    {
        out.push(
            "consentManagement.resolutionStrategy must be and/or for the custom provider".into(),
        );
    }
    out
}

fn control_auth(state: &AppState, req: &Recorded) -> Option<Response> {
    if req.header("authorization") != Some(format!("Bearer {API_TOKEN}").as_str()) {
        state
            .journal
            .violation("rudderstack /v2/regulations: Authorization is not Bearer <token>");
        return Some(control_error(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    None
}

fn create_regulations(state: &AppState, req: &Recorded) -> Response {
    if let Some(refused) = control_auth(state, req) {
        return refused;
    }
    let journal = &state.journal;
    if req
        .header("content-type")
        .map(|c| c.starts_with("application/json"))
        != Some(true)
    {
        journal.violation("rudderstack POST /v2/regulations: content-type is not application/json");
        return control_error(
            StatusCode::BAD_REQUEST,
            "content type must be application/json",
        );
    }
    let body = req.json();
    let mut problems = Vec::new();
    let kind = body["regulationType"].as_str().unwrap_or("");
    if !["suppress", "suppress_with_delete"].contains(&kind) {
        problems.push("regulationType must be suppress or suppress_with_delete".to_string());
    }
    let list = |key: &str| -> Option<Vec<String>> {
        body.get(key).map(|v| {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        })
    };
    let sources = list("sourceIds");
    let destinations = list("destinationIds");
    if sources.is_some() && destinations.is_some() {
        problems.push("specify either sourceIds or destinationIds, not both".into());
    }
    if kind == "suppress" && destinations.is_some() {
        problems.push("destinationIds go only with suppress_with_delete".into());
    }
    if kind == "suppress_with_delete" && sources.is_some() {
        problems.push("sourceIds go only with suppress".into());
    }
    let users = body["users"].as_array().cloned().unwrap_or_default();
    if users.is_empty() {
        problems.push("users must be a non-empty array".into());
    }
    for (i, user) in users.iter().enumerate() {
        if user["userId"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("users[{i}].userId is required"));
        }
    }
    if let Some(extra) = body.as_object().and_then(|o| {
        o.keys().find(|k| {
            !["regulationType", "sourceIds", "destinationIds", "users"].contains(&k.as_str())
        })
    }) {
        problems.push(format!("unknown field {extra}"));
    }
    if !problems.is_empty() {
        for p in &problems {
            journal.violation(format!("rudderstack POST /v2/regulations: {p}"));
        }
        return control_error(StatusCode::BAD_REQUEST, &problems.join("; "));
    }
    let mut model = state.model.lock().unwrap_or_else(|e| e.into_inner());
    let mut created = Vec::new();
    for user in users {
        model.next_id += 1;
        let id = format!("5d2417f6-655f-494b-aab7-{:012}", model.next_id);
        let attributes = user.as_object().cloned().unwrap_or_default();
        let user_id = attributes["userId"].as_str().unwrap_or("").to_string();
        let profile = model.profiles.entry(user_id).or_default();
        // The gateway drops a suppressed user's events from now on; deletion
        // downstream is forwarded, with no completion RudderStack reports.
        profile.suppressed = true;
        if kind == "suppress_with_delete" {
            profile.deleted = true;
            profile.traits.clear();
            profile.consent = None;
        }
        let regulation = Regulation {
            id: id.clone(),
            regulation_type: kind.to_string(),
            attributes: attributes.clone(),
            source_ids: sources.clone().unwrap_or_default(),
            destination_ids: destinations.clone().unwrap_or_default(),
            canceled: false,
            // Counted down by each listing before it filters.
            hidden_for: model.listing_delay + 1,
        };
        created.push(regulation_json(&regulation));
        model.regulations.push(regulation);
    }
    (StatusCode::CREATED, axum::Json(Value::Array(created))).into_response()
}

fn regulation_json(r: &Regulation) -> Value {
    json!({
        "id": r.id,
        "workspaceId": "2H2WbKP1613awrY1YgA9Q58wBOc",
        "canceled": r.canceled,
        "regulationType": r.regulation_type,
        "attributes": r.attributes,
    })
}

fn list_regulations(state: &AppState, req: &Recorded) -> Response {
    if let Some(refused) = control_auth(state, req) {
        return refused;
    }
    let after = req
        .query
        .iter()
        .find(|(k, _)| k == "after_cursor")
        .map(|(_, v)| v.clone());
    let mut model = state.model.lock().unwrap_or_else(|e| e.into_inner());
    let page_size = model.page_size;
    let first_page = after.is_none();
    if first_page {
        for r in model.regulations.iter_mut() {
            if r.hidden_for > 0 {
                r.hidden_for -= 1;
            }
        }
    }
    let visible: Vec<&Regulation> = model
        .regulations
        .iter()
        .filter(|r| r.hidden_for == 0)
        .collect();
    let start = match &after {
        None => 0,
        Some(cursor) => match visible.iter().position(|r| r.id == *cursor) {
            Some(i) => i + 1,
            None => {
                return control_error(StatusCode::BAD_REQUEST, "invalid after_cursor");
            }
        },
    };
    let page: Vec<Value> = visible
        .iter()
        .skip(start)
        .take(page_size)
        .map(|r| regulation_json(r))
        .collect();
    let mut paging = Map::new();
    if start + page_size < visible.len() {
        let last = &visible[start + page_size - 1].id;
        paging.insert(
            "next".into(),
            json!(format!("/v2/regulations?after_cursor={last}")),
        );
    }
    (
        StatusCode::OK,
        axum::Json(json!({"data": page, "paging": paging})),
    )
        .into_response()
}

fn cancel_regulation(state: &AppState, req: &Recorded, id: &str) -> Response {
    if let Some(refused) = control_auth(state, req) {
        return refused;
    }
    let mut model = state.model.lock().unwrap_or_else(|e| e.into_inner());
    let Some(index) = model.regulations.iter().position(|r| r.id == id) else {
        return control_error(StatusCode::NOT_FOUND, "regulation not found");
    };
    model.regulations[index].canceled = true;
    let regulation = model.regulations[index].clone();
    if regulation.regulation_type == "suppress"
        && let Some(user) = regulation.attributes.get("userId").and_then(Value::as_str)
        && let Some(profile) = model.profiles.get_mut(user)
    {
        profile.suppressed = false;
    }
    StatusCode::NO_CONTENT.into_response()
}
