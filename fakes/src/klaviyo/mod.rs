//! A fake of Klaviyo's profile, subscription and data-privacy endpoints
//! (JSON:API, revision 2026-07-15), on loopback under `/api`. Every request
//! is checked as Klaviyo would: `Authorization: Klaviyo-API-Key <key>`, a
//! `revision` header, `application/vnd.api+json`, and the operation and body
//! against Klaviyo's own description (`vendor-specs/klaviyo`), then the
//! rules it leaves out (profiles per job, bytes per request and profile,
//! exactly one identifier for a deletion). A request that fails is answered
//! with Klaviyo's error document and recorded as a violation.
//!
//! It keeps profiles, runs bulk import jobs that report `queued`, then
//! `processing`, then `complete` (with import errors) or `cancelled` over a
//! scriptable number of polls, applies subscribe / unsubscribe jobs, and
//! lets a deletion take effect after a scriptable number of reads. Rate
//! limits are fixed windows per endpoint (burst per second, steady per
//! minute, Klaviyo's values by default): over either, a 429 with
//! `Retry-After`; under, `RateLimit-Limit`/`-Remaining`/`-Reset`.

mod limits;
mod model;
mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use limits::{Windows, take_call};
pub use model::{DeletionRequest, Profile};
use model::{ImportJob, Model, PendingDeletion, parse_equals};
use routes::route;

use crate::openapi::Spec;
use crate::{Journal, Recorded, Running, forced_answer, serve};

/// The private key the fake accepts.
pub const API_KEY: &str = "pk_fake_0123456789abcdef0123456789";
/// The list the fake holds.
pub const LIST_ID: &str = "Y6nRLr";
/// The newest revision the fake (and its description) knows.
pub const REVISION: &str = "2026-07-15";
pub const MAX_IMPORT_PROFILES: usize = 10_000;
pub const MAX_SUBSCRIBE_PROFILES: usize = 1000;
pub const MAX_UNSUBSCRIBE_PROFILES: usize = 100;
pub const MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_PROFILE_BYTES: usize = 100 * 1024;

#[derive(Clone)]
struct App {
    journal: Journal,
    spec: Arc<Spec>,
    model: Arc<Mutex<Model>>,
    limits: Arc<Mutex<HashMap<String, Windows>>>,
    url: Arc<Mutex<String>>,
}

/// A running Klaviyo fake.
pub struct KlaviyoFake {
    /// `http://127.0.0.1:PORT`: the connector's `base_url`.
    pub url: String,
    pub journal: Journal,
    model: Arc<Mutex<Model>>,
    limits: Arc<Mutex<HashMap<String, Windows>>>,
    _running: Running,
}

/// Starts a fake with no profiles and list [`LIST_ID`].
pub async fn start() -> KlaviyoFake {
    let journal = Journal::default();
    let model = Arc::new(Mutex::new(Model::new()));
    let limits = Arc::new(Mutex::new(HashMap::new()));
    let url = Arc::new(Mutex::new(String::new()));
    let app = App {
        journal: journal.clone(),
        spec: Arc::new(Spec::load("klaviyo/klaviyo-profiles-privacy.served.json")),
        model: model.clone(),
        limits: limits.clone(),
        url: url.clone(),
    };
    let router = axum::Router::new().fallback(handle).with_state(app);
    let running = serve(router).await;
    *url.lock().unwrap_or_else(|e| e.into_inner()) = running.url.clone();
    KlaviyoFake {
        url: running.url.clone(),
        journal,
        model,
        limits,
        _running: running,
    }
}

impl KlaviyoFake {
    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn profiles(&self) -> Vec<Profile> {
        self.model().profiles.values().cloned().collect()
    }

    pub fn profile(&self, id: &str) -> Option<Profile> {
        self.model().profiles.get(id).cloned()
    }

    pub fn profile_by_email(&self, email: &str) -> Option<Profile> {
        let m = self.model();
        let id = m.find("email", email).into_iter().next()?;
        m.profiles.get(&id).cloned()
    }

    pub fn profile_by_external_id(&self, external_id: &str) -> Option<Profile> {
        let m = self.model();
        let id = m.find("external_id", external_id).into_iter().next()?;
        m.profiles.get(&id).cloned()
    }

    /// Whether a profile with this id was deleted for good.
    pub fn is_deleted(&self, id: &str) -> bool {
        self.model().deleted.contains(id)
    }

    /// Every data-privacy deletion requested, in order.
    pub fn deletion_requests(&self) -> Vec<DeletionRequest> {
        self.model().deletion_requests.clone()
    }

    /// The status a job last reported (`queued`, `processing`, `complete`,
    /// `cancelled`), and its import errors.
    pub fn job(&self, id: &str) -> Option<(String, usize)> {
        self.model()
            .jobs
            .get(id)
            .map(|j| (j.status.to_string(), j.errors.len()))
    }

    /// Adds a profile as if it had been there before the test; its id.
    pub fn insert_profile(&self, email: &str, external_id: Option<&str>) -> String {
        let mut attrs = Map::new();
        attrs.insert("email".into(), Value::from(email));
        if let Some(x) = external_id {
            attrs.insert("external_id".into(), Value::from(x));
        }
        self.model()
            .upsert(&attrs)
            .map(|(id, _)| id)
            .unwrap_or_default()
    }

    /// Klaviyo refuses this address with `detail`: a 400 from
    /// profile-import and subscription jobs, an import error in a bulk job.
    pub fn refuse_email(&self, email: &str, detail: &str) {
        self.model()
            .refused
            .insert(email.to_lowercase(), detail.to_string());
    }

    /// Polls a bulk import job takes to report `complete` (default 2:
    /// `queued`, then `complete`; 3 adds a `processing`).
    pub fn set_job_polls(&self, polls: u32) {
        self.model().job_polls = polls.max(1);
    }

    /// The next bulk import job ends `cancelled` instead.
    pub fn cancel_next_job(&self) {
        self.model().cancel_next_job = true;
    }

    /// Reads of a profile after its deletion that still find it (default 1).
    pub fn set_deletion_reads(&self, reads: u32) {
        self.model().deletion_reads = reads;
    }

    /// The endpoint's windows (first segment after `/api/`, e.g.
    /// `profile-import`): `burst` calls a second, `steady` a minute.
    pub fn set_rate_limit(&self, endpoint: &str, burst: u32, steady: u32) {
        let now = Instant::now();
        self.limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                endpoint.to_string(),
                Windows {
                    burst,
                    steady,
                    burst_start: now,
                    burst_count: 0,
                    steady_start: now,
                    steady_count: 0,
                },
            );
    }
}

/// Klaviyo's error document with one error.
pub fn error(
    status: u16,
    code: &str,
    title: &str,
    detail: &str,
    pointer: Option<&str>,
) -> Response {
    let mut e = json!({
        "id": "00000000-0000-4000-8000-000000000000",
        "status": status,
        "code": code,
        "title": title,
        "detail": detail,
    });
    if let Some(p) = pointer {
        e["source"] = json!({"pointer": p});
    }
    errors(status, vec![e])
}

fn errors(status: u16, errors: Vec<Value>) -> Response {
    reply(status, Some(json!({ "errors": errors })))
}

fn reply(status: u16, body: Option<Value>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    match body {
        Some(body) => (
            status,
            [("content-type", "application/vnd.api+json")],
            body.to_string(),
        )
            .into_response(),
        None => status.into_response(),
    }
}

async fn handle(State(app): State<App>, req: axum::extract::Request) -> Response {
    let rec = Recorded::read(req).await;
    app.journal.record(&rec);
    if let Some(answer) = forced_answer(&app.journal).await {
        return answer;
    }
    if let Some(answer) = authenticate(&app.journal, &rec) {
        return answer;
    }
    let endpoint = rec
        .path
        .strip_prefix("/api/")
        .and_then(|p| p.split('/').next())
        .unwrap_or("")
        .to_string();
    let headers = match take_call(&app, &endpoint) {
        Ok(headers) => headers,
        Err(answer) => return *answer,
    };
    let mut answer = checked(&app, &rec);
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            answer.headers_mut().insert(name, v);
        }
    }
    answer
}

fn checked(app: &App, rec: &Recorded) -> Response {
    let refuse = |violations: Vec<String>, detail: &str, parameter: Option<&str>| {
        for v in &violations {
            app.journal.violation(v.clone());
        }
        let mut e = json!({
            "id": "00000000-0000-4000-8000-000000000000",
            "status": 400, "code": "invalid", "title": "Invalid input.",
            "detail": format!("{detail}: {}", violations.join("; ")),
        });
        if let Some(p) = parameter {
            e["source"] = json!({ "parameter": p });
        }
        errors(400, vec![e])
    };
    if let Some(revision) = rec.header("revision")
        && !revision_ok(revision)
    {
        return refuse(
            vec![format!(
                "{} {}: revision {revision:?} is not a revision up to {REVISION}",
                rec.method, rec.path
            )],
            "Invalid revision",
            Some("revision"),
        );
    }
    let violations: Vec<String> = app
        .spec
        .check(&rec.parts())
        .into_iter()
        .map(|v| v.0)
        .collect();
    if !violations.is_empty() {
        return refuse(violations, "The request does not match the API", None);
    }
    if rec.body.len() > MAX_REQUEST_BYTES {
        app.journal.violation(format!(
            "{} {}: {} bytes, Klaviyo takes {MAX_REQUEST_BYTES}",
            rec.method,
            rec.path,
            rec.body.len()
        ));
        return error(
            413,
            "request_too_large",
            "Request too large.",
            "The payload exceeds 5 MB.",
            None,
        );
    }
    route(app, rec)
}

/// `Klaviyo-API-Key <key>`, nothing else: the refusal, if any.
fn authenticate(journal: &Journal, rec: &Recorded) -> Option<Response> {
    let Some(header) = rec.header("authorization") else {
        journal.violation(format!(
            "{} {}: no Authorization header",
            rec.method, rec.path
        ));
        return Some(error(
            401,
            "not_authenticated",
            "Authentication credentials were not provided.",
            "Missing or invalid private key.",
            None,
        ));
    };
    let Some(key) = header.strip_prefix("Klaviyo-API-Key ") else {
        journal.violation(format!(
            "{} {}: Authorization is not `Klaviyo-API-Key <key>`",
            rec.method, rec.path
        ));
        return Some(error(
            401,
            "not_authenticated",
            "Authentication credentials were not provided.",
            "Missing or invalid private key.",
            None,
        ));
    };
    if key != API_KEY {
        return Some(error(
            401,
            "authentication_failed",
            "Incorrect authentication credentials.",
            "Incorrect authentication credentials.",
            None,
        ));
    }
    None
}

/// `YYYY-MM-DD[.suffix]`, not newer than the fake's revision.
fn revision_ok(revision: &str) -> bool {
    let date = revision.split_once('.').map(|(d, _)| d).unwrap_or(revision);
    let shape = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shape && date <= REVISION
}
