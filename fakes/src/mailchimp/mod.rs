//! A fake of Mailchimp's Marketing API 3.0 audience-member endpoints, on
//! loopback under `/3.0`. Every request is checked as Mailchimp would:
//! HTTP Basic with the API key as password (or a bearer OAuth token),
//! the operation, content type and body against Mailchimp's own description
//! (`vendor-specs/mailchimp`), then the rules the description leaves out
//! (500 members per batch, `email_address` and `status` on each member).
//! A request that fails is answered with Mailchimp's problem+json and
//! recorded as a violation. It keeps the audience (members by subscriber
//! hash, permanently deleted addresses), answers the batch endpoint with
//! `new_members` / `updated_members` / `errors`, and models the one limit
//! Mailchimp has: 10 simultaneous connections per key, the 11th gets 429.
//!
//! Knobs: [`MailchimpFake::reject_email`] (that member fails in a batch
//! with the given message), [`MailchimpFake::require_merge_field`],
//! [`MailchimpFake::set_latency`] and [`MailchimpFake::set_max_connections`]
//! (to provoke the connection limit), and `journal.force(...)` for any
//! answer (429, 401, 5xx) on the next requests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};

mod routes;

use crate::openapi::Spec;
use crate::{Journal, Recorded, Running, forced_answer, serve};
use routes::route;

/// The API key the fake accepts (data centre `us6`).
pub const API_KEY: &str = "0123456789abcdef0123456789abcdef-us6";
/// The OAuth token the fake accepts as `Authorization: Bearer`.
pub const OAUTH_TOKEN: &str = "mc-oauth-token-0123456789";
/// The audience the fake holds.
pub const LIST_ID: &str = "a1b2c3d4e5";
/// Members per `POST /lists/{list_id}`.
pub const MAX_MEMBERS: usize = 500;
/// Simultaneous connections per key.
pub const MAX_CONNECTIONS: usize = 10;

/// One member of the audience, as the fake holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// The subscriber hash.
    pub id: String,
    pub email_address: String,
    pub unique_email_id: String,
    pub status: String,
    pub merge_fields: Map<String, Value>,
}

impl Member {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "email_address": self.email_address,
            "unique_email_id": self.unique_email_id,
            "contact_id": format!("c{}", &self.unique_email_id),
            "status": self.status,
            "merge_fields": self.merge_fields,
            "list_id": LIST_ID,
            "tags": [],
            "tags_count": 0,
            "last_changed": "2026-11-23T10:00:00+00:00",
        })
    }
}

#[derive(Debug)]
struct Model {
    members: BTreeMap<String, Member>,
    /// Subscriber hashes of permanently deleted members.
    forgotten: BTreeSet<String>,
    /// Lowercased emails a batch refuses, with the message.
    rejected: HashMap<String, String>,
    required_merge_fields: Vec<String>,
    latency: Duration,
    max_connections: usize,
    in_flight: usize,
    next_id: u64,
}

#[derive(Clone)]
struct App {
    journal: Journal,
    spec: Arc<Spec>,
    model: Arc<Mutex<Model>>,
}

/// A running Mailchimp fake.
pub struct MailchimpFake {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// What the connector's `base_url` is set to: `{url}/3.0`.
    pub base_url: String,
    pub journal: Journal,
    model: Arc<Mutex<Model>>,
    _running: Running,
}

/// Starts a fake holding an empty audience [`LIST_ID`].
pub async fn start() -> MailchimpFake {
    let journal = Journal::default();
    let model = Arc::new(Mutex::new(Model {
        members: BTreeMap::new(),
        forgotten: BTreeSet::new(),
        rejected: HashMap::new(),
        required_merge_fields: Vec::new(),
        latency: Duration::ZERO,
        max_connections: MAX_CONNECTIONS,
        in_flight: 0,
        next_id: 1,
    }));
    let app = App {
        journal: journal.clone(),
        spec: Arc::new(Spec::load("mailchimp/marketing-lists-members.served.json")),
        model: model.clone(),
    };
    let router = axum::Router::new().fallback(handle).with_state(app);
    let running = serve(router).await;
    MailchimpFake {
        base_url: format!("{}/3.0", running.url),
        url: running.url.clone(),
        journal,
        model,
        _running: running,
    }
}

impl MailchimpFake {
    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The member with this address, if the audience holds one.
    pub fn member(&self, email: &str) -> Option<Member> {
        self.model().members.get(&subscriber_hash(email)).cloned()
    }

    pub fn members(&self) -> Vec<Member> {
        self.model().members.values().cloned().collect()
    }

    /// Whether the address was permanently deleted (and cannot come back).
    pub fn is_forgotten(&self, email: &str) -> bool {
        self.model().forgotten.contains(&subscriber_hash(email))
    }

    /// Adds a member as if it had been there before the test.
    pub fn insert_member(&self, email: &str, status: &str) {
        let mut m = self.model();
        let member = m.new_member(email, status, Map::new());
        m.members.insert(member.id.clone(), member);
    }

    /// A batch refuses this address with `message` (Mailchimp's per-member
    /// error, `ERROR_GENERIC`).
    pub fn reject_email(&self, email: &str, message: &str) {
        self.model()
            .rejected
            .insert(email.to_lowercase(), message.to_string());
    }

    /// New members without this merge field are refused, as Mailchimp does
    /// for a required merge field.
    pub fn require_merge_field(&self, tag: &str) {
        self.model().required_merge_fields.push(tag.to_string());
    }

    /// Every request is held this long before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        self.model().latency = latency;
    }

    /// Simultaneous connections allowed before a 429.
    pub fn set_max_connections(&self, n: usize) {
        self.model().max_connections = n;
    }
}

impl Model {
    fn new_member(
        &mut self,
        email: &str,
        status: &str,
        merge_fields: Map<String, Value>,
    ) -> Member {
        self.next_id += 1;
        Member {
            id: subscriber_hash(email),
            email_address: email.to_string(),
            unique_email_id: format!("{:010x}", self.next_id),
            status: status.to_string(),
            merge_fields,
        }
    }
}

/// Hex MD5 of the lowercased address.
pub fn subscriber_hash(email: &str) -> String {
    Md5::digest(email.to_lowercase().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Mailchimp's error document.
pub fn problem(status: u16, title: &str, detail: &str) -> Response {
    problem_with(status, title, detail, None)
}

fn problem_with(status: u16, title: &str, detail: &str, errors: Option<Value>) -> Response {
    let mut body = json!({
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": "00000000-0000-4000-8000-000000000000",
    });
    if let Some(errors) = errors {
        body["errors"] = errors;
    }
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        [("content-type", "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

fn ok_json(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Counts a connection while it is open.
struct Connection(Arc<Mutex<Model>>);

impl Drop for Connection {
    fn drop(&mut self) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.in_flight = m.in_flight.saturating_sub(1);
    }
}

async fn handle(State(app): State<App>, req: axum::extract::Request) -> Response {
    let rec = Recorded::read(req).await;
    app.journal.record(&rec);
    let (over, latency) = {
        let mut m = app.model.lock().unwrap_or_else(|e| e.into_inner());
        m.in_flight += 1;
        (m.in_flight > m.max_connections, m.latency)
    };
    let _connection = Connection(app.model.clone());
    if over {
        return problem(
            429,
            "Too Many Requests",
            "You have exceeded the limit of 10 simultaneous connections.",
        );
    }
    if let Some(answer) = forced_answer(&app.journal).await {
        return answer;
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(answer) = authenticate(&app.journal, &rec) {
        return answer;
    }
    let violations = app.spec.check(&rec.parts());
    if !violations.is_empty() {
        let detail = violations
            .iter()
            .map(|v| v.0.clone())
            .collect::<Vec<_>>()
            .join("; ");
        for v in violations {
            app.journal.violation(v.0);
        }
        return problem(
            400,
            "Invalid Resource",
            &format!("The resource submitted could not be validated: {detail}"),
        );
    }
    route(&app, &rec)
}

/// Basic with the key as password (any user), or Bearer with the token:
/// the refusal, if any.
fn authenticate(journal: &Journal, rec: &Recorded) -> Option<Response> {
    let Some(header) = rec.header("authorization") else {
        journal.violation(format!(
            "{} {}: no Authorization header",
            rec.method, rec.path
        ));
        return Some(problem(
            401,
            "API Key Missing",
            "Your request did not include an API key.",
        ));
    };
    let invalid = || {
        problem(
            401,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        )
    };
    if let Some(token) = header.strip_prefix("Bearer ") {
        return if token == OAUTH_TOKEN {
            None
        } else {
            Some(invalid())
        };
    }
    let Some(encoded) = header.strip_prefix("Basic ") else {
        journal.violation(format!(
            "{} {}: Authorization is neither Basic nor Bearer",
            rec.method, rec.path
        ));
        return Some(invalid());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((_user, key)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        journal.violation(format!(
            "{} {}: Basic credentials are not base64 of user:key",
            rec.method, rec.path
        ));
        return Some(invalid());
    };
    if key == API_KEY {
        return None;
    }
    let same_account =
        key.rsplit_once('-').map(|(k, _)| k) == API_KEY.rsplit_once('-').map(|(k, _)| k);
    if same_account {
        return Some(problem(
            403,
            "Wrong Datacenter",
            "The API key provided is linked to a different datacenter.",
        ));
    }
    Some(invalid())
}

/// Mailchimp's address check, roughly: one `@`, a dotted domain, no spaces.
pub fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && email.len() <= 254
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|p| !p.is_empty())
}
