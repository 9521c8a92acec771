//! Salesforce on loopback: the OAuth 2.0 token endpoint (client
//! credentials and JWT bearer) and the REST API's sObject Collections
//! (upsert by external id, delete by ids) plus delete by external id.
//!
//! Checks as Salesforce would: the token request's form against
//! `TokenRequest` of `salesforce/salesforce-rest.derived.yaml`, the client
//! secret, or the JWT assertion's RS256 signature (against the public key
//! the test gives, [`Fake::set_jwt_public_key`]) and its claims (`iss`,
//! `sub`, `aud`, `exp` at most 3 minutes ahead); API calls need
//! `Authorization: Bearer` with a token it issued, the body validates
//! against the collection schemas (200 records, `attributes.type`), the API
//! version is v46.0 or later. Every answer carries
//! `Sforce-Limit-Info: api-usage=N/MAX`; past MAX calls answer 403
//! `REQUEST_LIMIT_EXCEEDED`.
//!
//! Knobs: `journal.force(..)` (API calls only, never the token endpoint),
//! [`Fake::expire_sessions`], [`Fake::refuse_sessions`],
//! [`Fake::refuse_credentials`], [`Fake::fail_record`],
//! [`Fake::set_api_usage`], [`Fake::set_known_fields`]. Record model:
//! [`Fake::record_by_external_id`], [`Fake::record`], [`Fake::records`],
//! [`Fake::token_requests`].

mod oauth;
mod sobjects;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::openapi::Spec;
use crate::reply;
use crate::{Journal, Recorded, Running, forced_answer, serve};

pub const CLIENT_ID: &str = "3MVG9fake.consumer.key";
pub const CLIENT_SECRET: &str = "fake-consumer-secret";
pub const USERNAME: &str = "integration@example.com.fake";
/// A test-only RSA key (PKCS#8 PEM) for the JWT bearer flow: give the
/// connector this and the fake its public half.
pub const TEST_KEY_PEM: &str = include_str!("../../testdata/salesforce-jwt-test-key.pem");
/// Another test-only key (PKCS#1 PEM) the fake was not given.
pub const OTHER_KEY_PEM: &str = include_str!("../../testdata/salesforce-jwt-other-key.pem");

/// One record as the org holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub sobject: String,
    pub fields: Map<String, Value>,
    /// In the recycle bin.
    pub deleted: bool,
}

#[derive(Debug)]
struct Model {
    client_id: String,
    client_secret: String,
    username: String,
    /// RSAPublicKey (PKCS#1) DER of the connected app's certificate.
    jwt_public_key: Option<Vec<u8>>,
    /// The `aud` the assertion must carry (default: the fake's URL).
    audience: String,
    instance_url: String,
    issued: u64,
    valid_tokens: BTreeSet<String>,
    refuse_sessions: bool,
    refuse_credentials: bool,
    token_requests: usize,
    records: BTreeMap<String, Record>,
    next_id: u64,
    /// External id value -> (statusCode, message) of a forced record error.
    failing: BTreeMap<String, (String, String)>,
    /// sObject -> its fields; absent: any field is known.
    known_fields: BTreeMap<String, BTreeSet<String>>,
    api_used: u64,
    api_max: u64,
}

impl Model {
    fn by_external(&self, sobject: &str, field: &str, value: &str) -> Option<&Record> {
        self.records.values().find(|r| {
            !r.deleted
                && r.sobject == sobject
                && r.fields.get(field).and_then(Value::as_str) == Some(value)
        })
    }
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

/// A running fake org.
pub struct Fake {
    /// `http://127.0.0.1:PORT`: login URL and instance URL at once.
    pub url: String,
    pub journal: Journal,
    model: Arc<Mutex<Model>>,
    _running: Running,
}

/// Starts a fake org that takes [`CLIENT_ID`] / [`CLIENT_SECRET`], and JWT
/// assertions for [`USERNAME`] once a public key is set.
pub async fn start() -> Fake {
    let journal = Journal::default();
    let model = Arc::new(Mutex::new(Model {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        username: USERNAME.into(),
        jwt_public_key: None,
        audience: String::new(),
        instance_url: String::new(),
        issued: 0,
        valid_tokens: BTreeSet::new(),
        refuse_sessions: false,
        refuse_credentials: false,
        token_requests: 0,
        records: BTreeMap::new(),
        next_id: 0,
        failing: BTreeMap::new(),
        known_fields: BTreeMap::new(),
        api_used: 0,
        api_max: 15_000,
    }));
    let app = App {
        journal: journal.clone(),
        model: model.clone(),
        spec: Arc::new(Spec::load("salesforce/salesforce-rest.derived.yaml")),
    };
    let running = serve(axum::Router::new().fallback(handle).with_state(app)).await;
    {
        let mut m = model.lock().unwrap_or_else(|e| e.into_inner());
        m.audience = running.url.clone();
        m.instance_url = running.url.clone();
    }
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

    /// The public half of the key the JWT assertions must be signed with,
    /// as PKCS#1 `RSAPublicKey` DER (see [`rsa_public_key`]).
    pub fn set_jwt_public_key(&self, der: Vec<u8>) {
        self.model().jwt_public_key = Some(der);
    }

    /// The `aud` assertions must carry (default: [`Fake::url`]).
    pub fn set_jwt_audience(&self, audience: &str) {
        self.model().audience = audience.into();
    }

    /// Every token issued so far stops working (a session timeout).
    pub fn expire_sessions(&self) {
        self.model().valid_tokens.clear();
    }

    /// While on, every API call answers 401 `INVALID_SESSION_ID`, even
    /// with a fresh token.
    pub fn refuse_sessions(&self, on: bool) {
        self.model().refuse_sessions = on;
    }

    /// While on, the token endpoint answers 400 `invalid_grant`.
    pub fn refuse_credentials(&self, on: bool) {
        self.model().refuse_credentials = on;
    }

    /// The record with this external id value fails with this error.
    pub fn fail_record(&self, external_id: &str, status_code: &str, message: &str) {
        self.model()
            .failing
            .insert(external_id.into(), (status_code.into(), message.into()));
    }

    /// The org's API allocation: `used` calls of `max` spent.
    pub fn set_api_usage(&self, used: u64, max: u64) {
        let mut m = self.model();
        m.api_used = used;
        m.api_max = max;
    }

    /// Only these fields exist on `sobject`; others answer 400 INVALID_FIELD.
    pub fn set_known_fields(&self, sobject: &str, fields: &[&str]) {
        self.model().known_fields.insert(
            sobject.into(),
            fields.iter().map(|f| f.to_string()).collect(),
        );
    }

    /// How many token requests arrived.
    pub fn token_requests(&self) -> usize {
        self.model().token_requests
    }

    /// The live record of `sobject` whose `field` holds `value`.
    pub fn record_by_external_id(&self, sobject: &str, field: &str, value: &str) -> Option<Record> {
        self.model().by_external(sobject, field, value).cloned()
    }

    /// A record by id, deleted ones included.
    pub fn record(&self, id: &str) -> Option<Record> {
        self.model().records.get(id).cloned()
    }

    pub fn records(&self) -> Vec<Record> {
        self.model().records.values().cloned().collect()
    }

    /// A record that exists before the test.
    pub fn seed_record(&self, sobject: &str, fields: Map<String, Value>) -> String {
        let mut m = self.model();
        let id = sobjects::new_id(&mut m, sobject);
        m.records.insert(
            id.clone(),
            Record {
                id: id.clone(),
                sobject: sobject.into(),
                fields,
                deleted: false,
            },
        );
        id
    }
}

/// The PKCS#1 `RSAPublicKey` DER of a PEM private key (PKCS#8 or PKCS#1),
/// for [`Fake::set_jwt_public_key`].
pub fn rsa_public_key(private_pem: &str) -> Option<Vec<u8>> {
    oauth::public_key_of(private_pem)
}

/// Salesforce's error array.
pub(crate) fn errors(code: &str, message: &str) -> Value {
    json!([{ "message": message, "errorCode": code }])
}

async fn handle(State(app): State<App>, req: Request) -> Response {
    let rec = Recorded::read(req).await;
    app.journal.record(&rec);
    if rec.path == "/services/oauth2/token" {
        return oauth::token(&app, &rec);
    }
    if rec.path.starts_with("/services/data/") {
        return sobjects::api(&app, &rec).await;
    }
    app.journal.violation(format!(
        "salesforce {} {}: no such resource",
        rec.method, rec.path
    ));
    reply::json(
        404,
        &[],
        &errors("NOT_FOUND", "The requested resource does not exist"),
    )
}

/// `forced_answer` for API calls.
async fn forced(app: &App) -> Option<Response> {
    forced_answer(&app.journal).await
}
