//! Segment: the HTTP Tracking API (`POST /v1/batch`, checked against
//! `segment/segment-tracking.derived.yaml`) and the Public API's regulations
//! (`POST /regulations`, `GET /regulations/{regulateId}`), which have no
//! description in vendor-specs: their rules here follow Segment's Public API
//! reference (Bearer token; `regulationType`, `subjectType`, `subjectIds`
//! required; the enums of `CreateWorkspaceRegulationV1Input`; the answer
//! `{"data": {"regulateId"}}`; a regulation's `overallStatus`).
//!
//! Both APIs are served by one fake (their paths do not overlap), so a test
//! points `base_url` and `public_api_url` at the same [`Fake::url`].

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::openapi::Spec;
use crate::{Journal, Recorded, Running, forced_answer, serve};

/// The write key the fake's source has.
pub const WRITE_KEY: &str = "seg_wk_test_0123456789";
/// The Public API token the fake's workspace accepts.
pub const PUBLIC_API_TOKEN: &str = "sgp_test_token_abcdef";
/// Segment's documented limits.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
pub const MAX_BATCH_EVENTS: usize = 2500;
pub const MAX_SUBJECT_IDS: usize = 5000;

const REGULATION_TYPES: &[&str] = &[
    "DELETE_INTERNAL",
    "DELETE_ONLY",
    "SUPPRESS_ONLY",
    "SUPPRESS_WITH_DELETE",
    "SUPPRESS_WITH_DELETE_INTERNAL",
    "UNSUPPRESS",
];

/// What Segment holds for one `userId`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// Traits merged over every identify, as Segment's profiles merge them.
    pub traits: Map<String, Value>,
    /// `context.consent.categoryPreferences` of the last identify.
    pub consent: Option<Map<String, Value>>,
    pub identifies: usize,
    pub deleted: bool,
    pub suppressed: bool,
}

/// One regulation the workspace holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Regulation {
    pub id: String,
    pub regulation_type: String,
    pub subject_ids: Vec<String>,
    /// Status polls answered so far.
    pub polls: u32,
    /// The status it ends in once `polls` reaches the script's count.
    pub outcome: String,
    pub pending_polls: u32,
}

#[derive(Debug, Default)]
struct Model {
    profiles: BTreeMap<String, Profile>,
    message_ids: HashSet<String>,
    regulations: BTreeMap<String, Regulation>,
    next_id: u64,
    /// Polls a new regulation stays RUNNING before it ends.
    pending_polls: u32,
    /// The status the next regulations end in (FINISHED unless scripted).
    outcomes: std::collections::VecDeque<String>,
}

#[derive(Clone)]
struct AppState {
    journal: Journal,
    spec: Arc<Spec>,
    model: Arc<Mutex<Model>>,
}

/// A running Segment fake.
pub struct Fake {
    pub url: String,
    pub journal: Journal,
    model: Arc<Mutex<Model>>,
    _running: Running,
}

/// Starts the fake on a loopback port.
pub async fn start() -> Fake {
    let journal = Journal::default();
    let model = Arc::new(Mutex::new(Model {
        pending_polls: 1,
        ..Model::default()
    }));
    let state = AppState {
        journal: journal.clone(),
        spec: Arc::new(Spec::load("segment/segment-tracking.derived.yaml")),
        model: model.clone(),
    };
    let app = Router::new().fallback(handle).with_state(state);
    let running = serve(app).await;
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

    /// The profile Segment holds for `user_id`.
    pub fn profile(&self, user_id: &str) -> Option<Profile> {
        self.model().profiles.get(user_id).cloned()
    }

    pub fn profiles(&self) -> BTreeMap<String, Profile> {
        self.model().profiles.clone()
    }

    pub fn regulations(&self) -> Vec<Regulation> {
        self.model().regulations.values().cloned().collect()
    }

    /// New regulations answer RUNNING for this many status polls before
    /// they end (default 1).
    pub fn set_regulation_polls(&self, polls: u32) {
        self.model().pending_polls = polls;
    }

    /// The next regulations created end in these statuses, in order
    /// (`FAILED`, `INVALID`, `NOT_SUPPORTED`, `PARTIAL_SUCCESS`, ...);
    /// after them, `FINISHED`.
    pub fn script_regulation_outcomes(&self, outcomes: &[&str]) {
        self.model()
            .outcomes
            .extend(outcomes.iter().map(|s| s.to_string()));
    }
}

async fn handle(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let recorded = Recorded::read(req).await;
    state.journal.record(&recorded);
    if let Some(forced) = forced_answer(&state.journal).await {
        return forced;
    }
    let path = recorded.path.clone();
    match (recorded.method.as_str(), path.as_str()) {
        (_, p) if p.starts_with("/v1/") => tracking(&state, &recorded),
        ("POST", "/regulations") => create_regulation(&state, &recorded),
        ("GET", p) if p.starts_with("/regulations/") => {
            get_regulation(&state, &recorded, &p["/regulations/".len()..])
        }
        _ => {
            state.journal.violation(format!(
                "segment: no such endpoint {} {path}",
                recorded.method
            ));
            public_error(StatusCode::NOT_FOUND, "not-found", "Resource not found")
        }
    }
}

fn tracking_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"success": false, "code": code, "message": message})),
    )
        .into_response()
}

fn public_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/vnd.segment.v1+json")],
        json!({"errors": [{"type": kind, "message": message}]}).to_string(),
    )
        .into_response()
}

fn tracking(state: &AppState, req: &Recorded) -> Response {
    let journal = &state.journal;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{WRITE_KEY}:"))
    );
    if req.header("authorization") != Some(expected.as_str()) {
        journal.violation("segment /v1: Authorization is not Basic base64(\"<writeKey>:\")");
        return tracking_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Invalid write key",
        );
    }
    if req.body.len() > MAX_BATCH_BYTES {
        journal.violation(format!(
            "segment /v1/batch: {} bytes, over the 500 KB batch limit",
            req.body.len()
        ));
        return tracking_error(
            StatusCode::BAD_REQUEST,
            "payload_too_large",
            "Batch payload exceeds 500KB",
        );
    }
    let violations = state.spec.check(&req.parts());
    if !violations.is_empty() {
        for v in &violations {
            journal.violation(v.to_string());
        }
        return tracking_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &violations[0].to_string(),
        );
    }
    if req.path != "/v1/batch" {
        // The single-event endpoints validate, but this fake models batches only.
        journal.violation(format!(
            "segment: the hub sends {} only through /v1/batch",
            req.path
        ));
        return tracking_error(StatusCode::NOT_FOUND, "not_found", "not modelled");
    }
    let body = req.json();
    let events = body["batch"].as_array().cloned().unwrap_or_default();
    for (i, event) in events.iter().enumerate() {
        let size = serde_json::to_vec(event).map(|v| v.len()).unwrap_or(0);
        if size > MAX_EVENT_BYTES {
            journal.violation(format!(
                "segment /v1/batch: batch[{i}] is {size} bytes, over 32 KB"
            ));
            return tracking_error(
                StatusCode::BAD_REQUEST,
                "payload_too_large",
                "Event payload exceeds 32KB",
            );
        }
    }
    if events.len() > MAX_BATCH_EVENTS {
        // Segment answers 200 and drops the events.
        journal.violation(format!(
            "segment /v1/batch: {} events, over 2,500: all dropped",
            events.len()
        ));
        return (StatusCode::OK, axum::Json(json!({"success": true}))).into_response();
    }
    let mut model = state.model.lock().unwrap_or_else(|e| e.into_inner());
    for (i, event) in events.iter().enumerate() {
        let Some(message_id) = event["messageId"].as_str() else {
            journal.violation(format!(
                "segment /v1/batch: batch[{i}] has no messageId, so a retry is not deduplicated"
            ));
            continue;
        };
        if let Some(ts) = event.get("timestamp").and_then(Value::as_str)
            && !crate::is_rfc3339(ts)
        {
            journal.violation(format!(
                "segment /v1/batch: batch[{i}].timestamp is not ISO 8601"
            ));
        }
        if !model.message_ids.insert(message_id.to_string()) {
            continue; // a duplicate: Segment drops it
        }
        if event["type"] != "identify" {
            continue;
        }
        let Some(user_id) = event["userId"].as_str() else {
            continue;
        };
        if let Some(c) = event.pointer("/context/consent")
            && !c["categoryPreferences"].is_object()
        {
            journal.violation(format!(
                "segment /v1/batch: batch[{i}].context.consent has no categoryPreferences object"
            ));
        }
        let suppressed = model.profiles.get(user_id).is_some_and(|p| p.suppressed);
        if suppressed {
            continue; // Segment drops a suppressed user's events
        }
        let profile = model.profiles.entry(user_id.to_string()).or_default();
        profile.deleted = false;
        profile.identifies += 1;
        if let Some(traits) = event["traits"].as_object() {
            for (k, v) in traits {
                profile.traits.insert(k.clone(), v.clone());
            }
        }
        if let Some(prefs) = event
            .pointer("/context/consent/categoryPreferences")
            .and_then(Value::as_object)
        {
            profile.consent = Some(prefs.clone());
        }
    }
    (StatusCode::OK, axum::Json(json!({"success": true}))).into_response()
}

fn public_api_auth(state: &AppState, req: &Recorded) -> Option<Response> {
    let expected = format!("Bearer {PUBLIC_API_TOKEN}");
    if req.header("authorization") != Some(expected.as_str()) {
        state
            .journal
            .violation("segment public api: Authorization is not Bearer <token>");
        return Some(public_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
        ));
    }
    None
}

fn rate_headers() -> [(&'static str, &'static str); 3] {
    [
        ("x-ratelimit-remaining", "59"),
        ("x-regulation-ratelimit-remaining", "109"),
        ("content-type", "application/vnd.segment.v1+json"),
    ]
}

fn create_regulation(state: &AppState, req: &Recorded) -> Response {
    if let Some(refused) = public_api_auth(state, req) {
        return refused;
    }
    let journal = &state.journal;
    let content_type = req.header("content-type").map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if !matches!(
        content_type.as_deref(),
        Some("application/json") | Some("application/vnd.segment.v1+json")
    ) {
        journal.violation("segment POST /regulations: content-type is not JSON");
        return public_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported content type",
        );
    }
    let body = req.json();
    let mut problems = Vec::new();
    match body["regulationType"].as_str() {
        Some(t) if REGULATION_TYPES.contains(&t) => {}
        _ => problems.push(format!(
            "regulationType must be one of {REGULATION_TYPES:?}"
        )),
    }
    match body["subjectType"].as_str() {
        Some("USER_ID") => {}
        Some("OBJECT_ID") => problems.push("OBJECT_ID is for cloud-source regulations".into()),
        _ => problems.push("subjectType must be USER_ID or OBJECT_ID".into()),
    }
    let ids: Vec<String> = body["subjectIds"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() || body["subjectIds"].as_array().map(Vec::len) != Some(ids.len()) {
        problems.push("subjectIds must be a non-empty array of strings".into());
    }
    if ids.len() > MAX_SUBJECT_IDS {
        problems.push("subjectIds holds more than 5,000 ids".into());
    }
    if let Some(extra) = body.as_object().and_then(|o| {
        o.keys()
            .find(|k| !["regulationType", "subjectType", "subjectIds"].contains(&k.as_str()))
    }) {
        problems.push(format!("unknown field {extra}"));
    }
    if !problems.is_empty() {
        for p in &problems {
            journal.violation(format!("segment POST /regulations: {p}"));
        }
        return public_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            &problems.join("; "),
        );
    }
    let mut model = state.model.lock().unwrap_or_else(|e| e.into_inner());
    model.next_id += 1;
    let id = format!("reg{:024}", model.next_id);
    let outcome = model
        .outcomes
        .pop_front()
        .unwrap_or_else(|| "FINISHED".into());
    let regulation = Regulation {
        id: id.clone(),
        regulation_type: body["regulationType"].as_str().unwrap_or("").to_string(),
        subject_ids: ids,
        polls: 0,
        outcome,
        pending_polls: model.pending_polls,
    };
    model.regulations.insert(id.clone(), regulation);
    (
        StatusCode::OK,
        rate_headers(),
        json!({"data": {"regulateId": id}}).to_string(),
    )
        .into_response()
}

fn get_regulation(state: &AppState, req: &Recorded, id: &str) -> Response {
    if let Some(refused) = public_api_auth(state, req) {
        return refused;
    }
    let mut model = state.model.lock().unwrap_or_else(|e| e.into_inner());
    let Some(regulation) = model.regulations.get_mut(id) else {
        return public_error(StatusCode::NOT_FOUND, "not-found", "Regulation not found");
    };
    regulation.polls += 1;
    let done = regulation.polls > regulation.pending_polls;
    let status = if done {
        regulation.outcome.clone()
    } else if regulation.polls == 1 {
        "INITIALIZED".to_string()
    } else {
        "RUNNING".to_string()
    };
    let regulation = regulation.clone();
    if done && matches!(status.as_str(), "FINISHED" | "PARTIAL_SUCCESS") {
        for user in &regulation.subject_ids {
            let profile = model.profiles.entry(user.clone()).or_default();
            match regulation.regulation_type.as_str() {
                "SUPPRESS_WITH_DELETE" | "SUPPRESS_WITH_DELETE_INTERNAL" => {
                    *profile = Profile {
                        deleted: true,
                        suppressed: true,
                        ..Profile::default()
                    }
                }
                "DELETE_ONLY" | "DELETE_INTERNAL" => {
                    *profile = Profile {
                        deleted: true,
                        ..Profile::default()
                    }
                }
                "SUPPRESS_ONLY" => profile.suppressed = true,
                "UNSUPPRESS" => profile.suppressed = false,
                _ => {}
            }
        }
    }
    let body = json!({"data": {"regulation": {
        "id": regulation.id,
        "workspaceId": "ws_fake",
        "overallStatus": status,
        "createdAt": "2026-11-23T10:00:00.000Z",
        "finishedAt": if done { json!("2026-11-23T10:05:00.000Z") } else { Value::Null },
        "streamStatus": [],
    }}});
    (StatusCode::OK, rate_headers(), body.to_string()).into_response()
}
