//! Braze on loopback: `/users/track` (attributes) and `/users/delete`.
//!
//! Checks as Braze would: `Authorization: Bearer` with the REST key, the
//! body against `braze/braze-users.derived.yaml` (75 objects per array, an
//! identifier per object, enums of `email_subscribe` and subscription
//! states, one identifier kind and 50 ids per delete), and the combined
//! limit of objects per call ([`Fake::set_object_limit`], default 75).
//! Answers as Braze does: 201 with `attributes_processed` and minor errors
//! (`{type, input_array, index}`) for objects it refused, fatal 400s with
//! `{"message": ...}`, and `X-RateLimit-Limit/Remaining/Reset` on every
//! answer; the call past [`Fake::set_rate_limit`] within the window gets
//! a 429.
//!
//! Knobs: `journal.force(..)`, [`Fake::fail_external_id`],
//! [`Fake::set_rate_limit`], [`Fake::set_object_limit`]. Record model:
//! [`Fake::user`], [`Fake::users`], [`Fake::deleted`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::openapi::Spec;
use crate::reply;
use crate::{Journal, Recorded, Running, forced_answer, serve};

pub const API_KEY: &str = "fake-braze-rest-key-0000";

/// A user profile as Braze holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    pub external_id: String,
    /// Standard and custom attributes, subscription states excluded.
    pub attributes: Map<String, Value>,
    pub email_subscribe: Option<String>,
    pub push_subscribe: Option<String>,
    /// subscription group id -> `subscribed` | `unsubscribed`
    pub subscription_groups: BTreeMap<String, String>,
}

#[derive(Debug)]
struct Model {
    api_key: String,
    users: BTreeMap<String, User>,
    deleted: BTreeSet<String>,
    failing: BTreeMap<String, String>,
    object_limit: usize,
    limit: u64,
    window: Duration,
    window_start: SystemTime,
    window_calls: u64,
}

#[derive(Clone)]
struct App {
    journal: Journal,
    model: Arc<Mutex<Model>>,
    spec: Arc<Spec>,
}

impl App {
    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake Braze instance.
pub struct Fake {
    /// `http://127.0.0.1:PORT`: the connector's `base_url`.
    pub url: String,
    pub journal: Journal,
    model: Arc<Mutex<Model>>,
    _running: Running,
}

pub async fn start() -> Fake {
    let journal = Journal::default();
    let model = Arc::new(Mutex::new(Model {
        api_key: API_KEY.into(),
        users: BTreeMap::new(),
        deleted: BTreeSet::new(),
        failing: BTreeMap::new(),
        object_limit: 75,
        limit: 3000,
        window: Duration::from_secs(3),
        window_start: SystemTime::now(),
        window_calls: 0,
    }));
    let app = App {
        journal: journal.clone(),
        model: model.clone(),
        spec: Arc::new(Spec::load("braze/braze-users.derived.yaml")),
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

    pub fn user(&self, external_id: &str) -> Option<User> {
        self.model().users.get(external_id).cloned()
    }

    pub fn users(&self) -> Vec<User> {
        self.model().users.values().cloned().collect()
    }

    /// Whether `/users/delete` removed this profile.
    pub fn deleted(&self, external_id: &str) -> bool {
        self.model().deleted.contains(external_id)
    }

    /// The attributes object of this user fails with a minor error.
    pub fn fail_external_id(&self, external_id: &str, error: &str) {
        self.model()
            .failing
            .insert(external_id.into(), error.into());
    }

    /// Calls allowed per fixed window (Braze: 3,000 per 3 s for `/users/track`).
    pub fn set_rate_limit(&self, calls: u64, window: Duration) {
        let mut m = self.model();
        m.limit = calls;
        m.window = window;
        m.window_start = SystemTime::now();
        m.window_calls = 0;
    }

    /// Objects per call across attributes, events and purchases (75; 50
    /// for some contracts).
    pub fn set_object_limit(&self, objects: usize) {
        self.model().object_limit = objects;
    }
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl App {
    /// Counts the call; `Err` with the 429 once the window is spent.
    fn admit(&self) -> Result<Vec<(String, String)>, Box<Response>> {
        let mut m = self.model();
        let now = SystemTime::now();
        if now.duration_since(m.window_start).unwrap_or_default() >= m.window {
            m.window_start = now;
            m.window_calls = 0;
        }
        let over = m.window_calls >= m.limit;
        if !over {
            m.window_calls += 1;
        }
        let reset = epoch(m.window_start + m.window).max(epoch(now) + 1);
        let headers = vec![
            ("x-ratelimit-limit".to_string(), m.limit.to_string()),
            (
                "x-ratelimit-remaining".to_string(),
                m.limit.saturating_sub(m.window_calls).to_string(),
            ),
            ("x-ratelimit-reset".to_string(), reset.to_string()),
        ];
        if over {
            return Err(Box::new(reply::json(
                429,
                &headers,
                &json!({ "message": "API rate limit exceeded" }),
            )));
        }
        Ok(headers)
    }
}

async fn handle(State(app): State<App>, req: Request) -> Response {
    let rec = Recorded::read(req).await;
    app.journal.record(&rec);
    let where_ = format!("braze {} {}", rec.method, rec.path);
    let mut violations: Vec<String> = app
        .spec
        .check(&rec.parts())
        .into_iter()
        .map(|v| v.0)
        .collect();
    let auth = rec.header("authorization").map(str::to_string);
    if !auth.as_deref().is_some_and(|a| a.starts_with("Bearer ")) {
        violations.push(format!(
            "{where_}: no `Authorization: Bearer <REST API key>`"
        ));
    }
    let body = rec.json();
    let objects: usize = ["attributes", "events", "purchases"]
        .iter()
        .map(|k| body[k].as_array().map_or(0, Vec::len))
        .sum();
    let object_limit = app.model().object_limit;
    if rec.path == "/users/track" && objects > object_limit {
        violations.push(format!(
            "{where_}: {objects} objects; this contract takes {object_limit} per call"
        ));
    }
    for v in &violations {
        app.journal.violation(v.clone());
    }
    if let Some(resp) = forced_answer(&app.journal).await {
        return resp;
    }
    let key = app.model().api_key.clone();
    if auth.as_deref() != Some(format!("Bearer {key}").as_str()) {
        return reply::json(401, &[], &json!({ "message": "Invalid API key" }));
    }
    let headers = match app.admit() {
        Ok(h) => h,
        Err(resp) => return *resp,
    };
    if !violations.is_empty() {
        let message = if objects > object_limit {
            "Max Input Length Exceeded".to_string()
        } else if rec.path == "/users/track" && objects == 0 {
            "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
                .to_string()
        } else {
            "Invalid request".to_string()
        };
        return reply::json(
            400,
            &headers,
            &json!({ "message": message, "errors": violations }),
        );
    }
    let (status, answer) = match (rec.method.as_str(), rec.path.as_str()) {
        ("POST", "/users/track") => track(&app, &body),
        ("POST", "/users/delete") => delete(&app, &body),
        _ => {
            app.journal.violation(format!(
                "{where_}: not an endpoint the hub's connector should call"
            ));
            (404, json!({ "message": "Not Found" }))
        }
    };
    reply::json(status, &headers, &answer)
}

fn track(app: &App, body: &Value) -> (u16, Value) {
    let mut m = app.model();
    let mut errors = Vec::new();
    let mut processed = 0;
    let attributes = body["attributes"].as_array().cloned().unwrap_or_default();
    for (index, object) in attributes.iter().enumerate() {
        let Some(object) = object.as_object() else {
            continue;
        };
        let Some(external_id) = object.get("external_id").and_then(Value::as_str) else {
            // Other identifiers are valid for Braze but never sent by the hub.
            app.journal.violation(
                "braze POST /users/track: an attributes object without external_id".to_string(),
            );
            continue;
        };
        let minor =
            |text: String| json!({ "type": text, "input_array": "attributes", "index": index });
        if let Some(text) = m.failing.get(external_id) {
            errors.push(minor(text.clone()));
            continue;
        }
        if let Some(email) = object.get("email").and_then(Value::as_str)
            && !reply::is_email(email)
        {
            errors.push(minor(format!(
                "'email' must be a valid email address, got {email:?}"
            )));
            continue;
        }
        let update_only = object.get("_update_existing_only") == Some(&Value::Bool(true));
        if update_only && !m.users.contains_key(external_id) {
            processed += 1;
            continue;
        }
        processed += 1;
        m.deleted.remove(external_id);
        let user = m
            .users
            .entry(external_id.to_string())
            .or_insert_with(|| User {
                external_id: external_id.to_string(),
                ..User::default()
            });
        for (name, value) in object {
            match name.as_str() {
                "external_id" | "_update_existing_only" => {}
                "email_subscribe" => user.email_subscribe = value.as_str().map(str::to_string),
                "push_subscribe" => user.push_subscribe = value.as_str().map(str::to_string),
                "subscription_groups" => {
                    for g in value.as_array().into_iter().flatten() {
                        if let (Some(id), Some(state)) = (
                            g["subscription_group_id"].as_str(),
                            g["subscription_state"].as_str(),
                        ) {
                            user.subscription_groups.insert(id.into(), state.into());
                        }
                    }
                }
                _ if value.is_null() => {
                    user.attributes.remove(name);
                }
                _ => {
                    user.attributes.insert(name.clone(), value.clone());
                }
            }
        }
    }
    let mut answer = json!({ "message": "success", "attributes_processed": processed });
    if !errors.is_empty() {
        answer["errors"] = Value::Array(errors);
    }
    (201, answer)
}

fn delete(app: &App, body: &Value) -> (u16, Value) {
    let mut m = app.model();
    let mut deleted = 0;
    for id in body["external_ids"].as_array().into_iter().flatten() {
        if let Some(id) = id.as_str() {
            if m.users.remove(id).is_some() {
                deleted += 1;
            }
            m.deleted.insert(id.to_string());
        }
    }
    (201, json!({ "deleted": deleted, "message": "success" }))
}
