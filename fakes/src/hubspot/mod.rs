//! HubSpot on loopback: CRM v3 contacts (batch upsert, GDPR delete) and the
//! communication-preferences v4 batch opt-out.
//!
//! Every request is checked as HubSpot would: `Authorization: Bearer`
//! with the private app token, the operation, query and body against
//! HubSpot's published description (`hubspot/contacts-v3.json`; for the
//! opt-out, the subset of HubSpot's v4 description in
//! [`subscriptions::spec`]), 100 inputs per batch, unique ids. A request
//! that fails is answered with HubSpot's error body and recorded as a
//! violation. The 10-second window is enforced: the call over
//! [`Fake::set_rate_limit`] (default 100) within 10 s gets HubSpot's
//! `TEN_SECONDLY_ROLLING` 429 with its `X-HubSpot-RateLimit-*` headers.
//!
//! Knobs: `journal.force(..)` for any answer; [`Fake::fail_input`] to make
//! one contact fail with a chosen error; [`Fake::add_unique_property`];
//! [`Fake::set_rate_limit`]. Record model: [`Fake::contact_by`],
//! [`Fake::contacts`], [`Fake::opted_out`], [`Fake::erased`],
//! [`Fake::blocklisted`].

mod contacts;
mod subscriptions;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::openapi::Spec;
use crate::reply;
use crate::{Journal, Recorded, Running, forced_answer, serve};

/// The private app token the fake takes unless told otherwise.
pub const TOKEN: &str = "pat-na1-00000000-fake-hub";
/// HubSpot's rolling window.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Inputs per batch call.
pub const MAX_INPUTS: usize = 100;

/// A contact as HubSpot holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: String,
    pub properties: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug)]
struct Model {
    token: String,
    next_id: u64,
    contacts: BTreeMap<String, Contact>,
    erased: BTreeSet<String>,
    blocklist: BTreeSet<String>,
    opted_out: BTreeSet<String>,
    /// Properties with unique values, which `idProperty` may name.
    unique: BTreeSet<String>,
    /// id value -> (category, message) of a forced per-input error.
    failing: BTreeMap<String, (String, String)>,
    /// Accepted calls within the window.
    calls: VecDeque<Instant>,
    limit: usize,
    daily_limit: u64,
    daily_used: u64,
}

impl Model {
    fn find(&self, property: &str, value: &str) -> Option<&Contact> {
        if property == "hs_object_id" {
            return self.contacts.get(value);
        }
        let value = normalize(property, value);
        self.contacts
            .values()
            .find(|c| c.properties.get(property).is_some_and(|v| *v == value))
    }
}

/// HubSpot keeps emails lowercased.
fn normalize(property: &str, value: &str) -> String {
    if property == "email" {
        value.trim().to_lowercase()
    } else {
        value.to_string()
    }
}

#[derive(Clone)]
struct App {
    journal: Journal,
    model: Arc<Mutex<Model>>,
    contacts_spec: Arc<Spec>,
    subscriptions_spec: Arc<Spec>,
}

impl App {
    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake HubSpot.
pub struct Fake {
    /// `http://127.0.0.1:PORT`: the connector's `base_url`.
    pub url: String,
    pub journal: Journal,
    model: Arc<Mutex<Model>>,
    _running: Running,
}

/// Starts a fake HubSpot that takes [`TOKEN`].
pub async fn start() -> Fake {
    let journal = Journal::default();
    let model = Arc::new(Mutex::new(Model {
        token: TOKEN.into(),
        next_id: 1000,
        contacts: BTreeMap::new(),
        erased: BTreeSet::new(),
        blocklist: BTreeSet::new(),
        opted_out: BTreeSet::new(),
        unique: ["email", "hs_object_id"].map(String::from).into(),
        failing: BTreeMap::new(),
        calls: VecDeque::new(),
        limit: 100,
        daily_limit: 250_000,
        daily_used: 0,
    }));
    let app = App {
        journal: journal.clone(),
        model: model.clone(),
        contacts_spec: Arc::new(Spec::load("hubspot/contacts-v3.json")),
        subscriptions_spec: Arc::new(subscriptions::spec()),
    };
    let running = serve(axum::Router::new().fallback(handle).with_state(app)).await;
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

    /// The contact whose `property` has `value` (`hs_object_id`: by id).
    pub fn contact_by(&self, property: &str, value: &str) -> Option<Contact> {
        self.model().find(property, value).cloned()
    }

    pub fn contacts(&self) -> Vec<Contact> {
        self.model().contacts.values().cloned().collect()
    }

    /// Whether the email is opted out of all email subscriptions.
    pub fn opted_out(&self, email: &str) -> bool {
        self.model()
            .opted_out
            .contains(&email.trim().to_lowercase())
    }

    /// Whether the contact with this id was GDPR-deleted.
    pub fn erased(&self, id: &str) -> bool {
        self.model().erased.contains(id)
    }

    /// Whether a GDPR delete blocklisted an email that matched no contact.
    pub fn blocklisted(&self, email: &str) -> bool {
        self.model()
            .blocklist
            .contains(&email.trim().to_lowercase())
    }

    /// Lets `idProperty` name this property (a custom unique property).
    pub fn add_unique_property(&self, name: &str) {
        self.model().unique.insert(name.into());
    }

    /// The input whose id is `id_value` fails with this category and message.
    pub fn fail_input(&self, id_value: &str, category: &str, message: &str) {
        self.model().failing.insert(
            normalize("email", id_value),
            (category.into(), message.into()),
        );
    }

    /// Calls per 10 seconds before the 429 (HubSpot: 100, 190, 250).
    pub fn set_rate_limit(&self, calls: usize) {
        self.model().limit = calls;
    }

    /// A contact that exists before the test, with these properties.
    pub fn seed_contact(&self, properties: &[(&str, &str)]) -> String {
        let mut model = self.model();
        model.next_id += 1;
        let id = model.next_id.to_string();
        let mut props: BTreeMap<String, String> = properties
            .iter()
            .map(|(k, v)| (k.to_string(), normalize(k, v)))
            .collect();
        props.insert("hs_object_id".into(), id.clone());
        let now = reply::now();
        model.contacts.insert(
            id.clone(),
            Contact {
                id: id.clone(),
                properties: props,
                created_at: now.clone(),
                updated_at: now,
            },
        );
        id
    }
}

/// HubSpot's error body.
pub(crate) fn error_body(category: &str, message: &str, context: Value) -> Value {
    json!({
        "status": "error",
        "message": message,
        "correlationId": reply::request_id(),
        "category": category,
        "context": context,
        "links": {},
    })
}

impl App {
    fn rate_headers(&self, model: &Model) -> Vec<(String, String)> {
        let remaining = model.limit.saturating_sub(model.calls.len());
        vec![
            (
                "x-hubspot-ratelimit-interval-milliseconds".into(),
                WINDOW.as_millis().to_string(),
            ),
            ("x-hubspot-ratelimit-max".into(), model.limit.to_string()),
            (
                "x-hubspot-ratelimit-remaining".into(),
                remaining.to_string(),
            ),
            (
                "x-hubspot-ratelimit-daily".into(),
                model.daily_limit.to_string(),
            ),
            (
                "x-hubspot-ratelimit-daily-remaining".into(),
                model
                    .daily_limit
                    .saturating_sub(model.daily_used)
                    .to_string(),
            ),
        ]
    }

    /// Counts the call in the window; `Err` with the 429 when it is full.
    fn admit(&self) -> Result<Vec<(String, String)>, Box<Response>> {
        let mut model = self.model();
        let now = Instant::now();
        while model
            .calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            model.calls.pop_front();
        }
        if model.calls.len() >= model.limit {
            let headers = self.rate_headers(&model);
            return Err(Box::new(reply::json(
                429,
                &headers,
                &json!({
                    "status": "error",
                    "message": "You have reached your ten secondly limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": reply::request_id(),
                    "policyName": "TEN_SECONDLY_ROLLING",
                    "requestId": reply::request_id(),
                }),
            )));
        }
        model.calls.push_back(now);
        model.daily_used += 1;
        Ok(self.rate_headers(&model))
    }

    fn spec_for(&self, path: &str) -> &Spec {
        if path.starts_with("/communication-preferences/") {
            &self.subscriptions_spec
        } else {
            &self.contacts_spec
        }
    }
}

async fn handle(State(app): State<App>, req: Request) -> Response {
    let rec = Recorded::read(req).await;
    app.journal.record(&rec);
    let mut violations: Vec<String> = app
        .spec_for(&rec.path)
        .check(&rec.parts())
        .into_iter()
        .map(|v| v.0)
        .collect();
    let auth = rec.header("authorization").map(str::to_string);
    let scheme_ok = auth.as_deref().is_some_and(|a| a.starts_with("Bearer "));
    if !scheme_ok {
        violations.push(format!(
            "hubspot {} {}: no `Authorization: Bearer <private app token>`",
            rec.method, rec.path
        ));
    }
    for v in &violations {
        app.journal.violation(v.clone());
    }
    if let Some(resp) = forced_answer(&app.journal).await {
        return resp;
    }
    let token_ok = auth.as_deref() == Some(format!("Bearer {}", app.model().token).as_str());
    if !token_ok {
        return reply::json(
            401,
            &[],
            &error_body(
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                json!({}),
            ),
        );
    }
    let headers = match app.admit() {
        Ok(h) => h,
        Err(resp) => return *resp,
    };
    if !violations.is_empty() {
        return reply::json(
            400,
            &headers,
            &error_body(
                "VALIDATION_ERROR",
                &format!("Invalid input: {}", violations.join("; ")),
                json!({}),
            ),
        );
    }
    let body = rec.json();
    let (status, answer) = match (rec.method.as_str(), rec.path.as_str()) {
        ("POST", "/crm/v3/objects/contacts/batch/upsert") => contacts::upsert(&app, &rec, &body),
        ("POST", "/crm/v3/objects/contacts/gdpr-delete") => contacts::gdpr_delete(&app, &body),
        ("POST", "/communication-preferences/v4/statuses/batch/unsubscribe-all") => {
            subscriptions::unsubscribe_all(&app, &rec, &body)
        }
        (method, path) => {
            app.journal.violation(format!(
                "hubspot {method} {path}: not an operation the hub's connector should call"
            ));
            (
                404,
                Some(error_body(
                    "OBJECT_NOT_FOUND",
                    "resource not found",
                    json!({}),
                )),
            )
        }
    };
    match answer {
        Some(body) => reply::json(status, &headers, &body),
        None => reply::empty(status, &headers),
    }
}
