//! Shopify's Admin GraphQL API, customers only:
//! `POST /admin/api/{version}/graphql.json` with `X-Shopify-Access-Token`.
//! Every query document and its variables are validated against the Admin
//! API schema in vendor-specs (`shopify/admin_schema_2025-01.json.gz`) with
//! [`crate::graphql`]; one that does not validate is answered with GraphQL
//! errors, as Shopify does, and recorded as a violation.
//!
//! The fake keeps a cost bucket (`maximumAvailable`, `currentlyAvailable`,
//! `restoreRate`), charges each query its requested cost (10 points per
//! mutation, 1 per object query: Shopify's rule of thumb), answers
//! `THROTTLED` with `extensions.cost` when the cost does not fit, and
//! executes the customer mutations against a model of the shop's customers
//! (`userErrors` as Shopify words them: invalid or taken email, unknown id,
//! customers with orders that cannot be deleted, consent without an email).
//! `customerRequestDataErasure` is a request: the customer disappears from
//! `customer(id:)` only after the scripted number of polls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

mod customers;

use crate::graphql::GraphQlSchema;
use crate::{Journal, Recorded, Running, forced_answer, serve};
use customers::execute;

pub const ACCESS_TOKEN: &str = "shpat_test_0123456789abcdef";
pub const API_VERSION: &str = "2025-01";
pub const SCHEMA: &str = "shopify/admin_schema_2025-01.json.gz";
/// Shopify's single-query ceiling.
pub const MAX_QUERY_COST: f64 = 1000.0;

/// One customer as the shop holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Customer {
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub note: Option<String>,
    pub locale: Option<String>,
    pub tags: Vec<String>,
    /// (namespace, key) -> (type, value)
    pub metafields: BTreeMap<(String, String), (String, String)>,
    /// `marketingState` of email marketing consent.
    pub email_marketing: Option<String>,
    pub email_opt_in_level: Option<String>,
    pub sms_marketing: Option<String>,
    pub orders: u32,
    /// `customer(id:)` polls left before an erasure request takes effect.
    pub erasure_pending: Option<u32>,
}

#[derive(Debug)]
struct Bucket {
    maximum: f64,
    available: f64,
    restore_rate: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.available = (self.available + elapsed * self.restore_rate).min(self.maximum);
        self.at = now;
    }
}

#[derive(Debug)]
struct Model {
    customers: BTreeMap<String, Customer>,
    next_id: u64,
    bucket: Bucket,
    erased: Vec<String>,
    /// Polls an erasure request stays pending (default 2).
    erasure_polls: u32,
    /// Answer THROTTLED with HTTP 429 instead of 200.
    throttle_status: u16,
}

#[derive(Clone)]
struct AppState {
    journal: Journal,
    schema: GraphQlSchema,
    model: Arc<Mutex<Model>>,
}

pub struct Fake {
    pub url: String,
    pub journal: Journal,
    model: Arc<Mutex<Model>>,
    _running: Running,
}

/// The Admin schema, loaded once per process (it is 9 MB of JSON).
pub fn admin_schema() -> GraphQlSchema {
    static SCHEMA_CELL: std::sync::OnceLock<GraphQlSchema> = std::sync::OnceLock::new();
    SCHEMA_CELL
        .get_or_init(|| GraphQlSchema::load_introspection(SCHEMA))
        .clone()
}

pub async fn start() -> Fake {
    let journal = Journal::default();
    let model = Arc::new(Mutex::new(Model {
        customers: BTreeMap::new(),
        next_id: 7_000_000_000_000,
        bucket: Bucket {
            maximum: 2000.0,
            available: 2000.0,
            restore_rate: 100.0,
            at: Instant::now(),
        },
        erased: Vec::new(),
        erasure_polls: 2,
        throttle_status: 200,
    }));
    let schema = tokio::task::spawn_blocking(admin_schema)
        .await
        .expect("load the Admin schema");
    let state = AppState {
        journal: journal.clone(),
        schema,
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

    pub fn customer(&self, id: &str) -> Option<Customer> {
        self.model().customers.get(id).cloned()
    }

    pub fn customer_by_email(&self, email: &str) -> Option<Customer> {
        self.model()
            .customers
            .values()
            .find(|c| c.email.as_deref() == Some(email))
            .cloned()
    }

    pub fn customers(&self) -> Vec<Customer> {
        self.model().customers.values().cloned().collect()
    }

    /// Customers whose erasure took effect.
    pub fn erased(&self) -> Vec<String> {
        self.model().erased.clone()
    }

    /// Sets the cost bucket: size, points now, points restored per second.
    pub fn set_bucket(&self, maximum: f64, available: f64, restore_rate: f64) {
        let mut m = self.model();
        m.bucket = Bucket {
            maximum,
            available,
            restore_rate,
            at: Instant::now(),
        };
    }

    /// Points in the bucket now.
    pub fn available(&self) -> f64 {
        let mut m = self.model();
        m.bucket.refill();
        m.bucket.available
    }

    /// Answer THROTTLED with this HTTP status (200 by default; some shops
    /// are reported to see 429).
    pub fn set_throttle_status(&self, status: u16) {
        self.model().throttle_status = status;
    }

    /// Polls of `customer(id:)` an erasure stays pending.
    pub fn set_erasure_polls(&self, polls: u32) {
        self.model().erasure_polls = polls;
    }

    /// Gives a customer orders (so `customerDelete` refuses it).
    pub fn add_orders(&self, id: &str, orders: u32) {
        if let Some(c) = self.model().customers.get_mut(id) {
            c.orders += orders;
        }
    }

    /// Puts a customer in the shop (created by someone else).
    pub fn insert_customer(&self, email: &str) -> String {
        let mut m = self.model();
        m.next_id += 1;
        let id = format!("gid://shopify/Customer/{}", m.next_id);
        m.customers.insert(
            id.clone(),
            Customer {
                id: id.clone(),
                email: Some(email.to_string()),
                ..Customer::default()
            },
        );
        id
    }
}

fn json_reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn handle(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let recorded = Recorded::read(req).await;
    state.journal.record(&recorded);
    if let Some(forced) = forced_answer(&state.journal).await {
        return forced;
    }
    let journal = &state.journal;
    let segments: Vec<&str> = recorded.path.trim_matches('/').split('/').collect();
    let version = match segments.as_slice() {
        ["admin", "api", version, "graphql.json"] if recorded.method == "POST" => *version,
        _ => {
            journal.violation(format!(
                "shopify: no such endpoint {} {}",
                recorded.method, recorded.path
            ));
            return json_reply(StatusCode::NOT_FOUND, json!({"errors": "Not Found"}));
        }
    };
    if recorded.header("x-shopify-access-token") != Some(ACCESS_TOKEN) {
        journal.violation("shopify: X-Shopify-Access-Token missing or wrong");
        return json_reply(
            StatusCode::UNAUTHORIZED,
            json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
        );
    }
    if version != API_VERSION {
        journal.violation(format!(
            "shopify: API version {version} is not the one this fake's schema describes ({API_VERSION})"
        ));
        return json_reply(StatusCode::NOT_FOUND, json!({"errors": "Not Found"}));
    }
    if !recorded
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        journal.violation("shopify: content-type is not application/json");
        return json_reply(StatusCode::BAD_REQUEST, json!({"errors": "Bad Request"}));
    }
    let body: Value = match serde_json::from_slice(&recorded.body) {
        Ok(b) => b,
        Err(_) => {
            journal.violation("shopify: body is not JSON");
            return json_reply(StatusCode::BAD_REQUEST, json!({"errors": "Bad Request"}));
        }
    };
    let Some(query) = body["query"].as_str() else {
        journal.violation("shopify: body has no query");
        return json_reply(
            StatusCode::BAD_REQUEST,
            json!({"errors": [{"message": "Parameter Missing or Invalid"}]}),
        );
    };
    let variables = body["variables"].as_object().cloned().unwrap_or_default();
    let checked = match state
        .schema
        .check(query, body["operationName"].as_str(), &variables)
    {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                journal.violation(format!("shopify: query does not validate: {e}"));
            }
            let errors: Vec<Value> = errors
                .iter()
                .map(|m| json!({"message": m, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}))
                .collect();
            return json_reply(StatusCode::OK, json!({"errors": errors}));
        }
    };
    let cost: f64 = checked
        .fields
        .iter()
        .map(|_| if checked.is_mutation { 10.0 } else { 1.0 })
        .sum();
    let mut model = state.model.lock().unwrap_or_else(|e| e.into_inner());
    model.bucket.refill();
    if cost > MAX_QUERY_COST {
        journal.violation(format!(
            "shopify: query cost {cost} over the single-query maximum"
        ));
        let extensions = cost_extensions(&model.bucket, cost, None);
        return json_reply(
            StatusCode::OK,
            json!({"errors": [{"message": format!("Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\ncost of a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk operations should be used instead.\nSee https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"), "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": MAX_QUERY_COST}}], "extensions": extensions}),
        );
    }
    if cost > model.bucket.available {
        let extensions = cost_extensions(&model.bucket, cost, None);
        let status = StatusCode::from_u16(model.throttle_status).unwrap_or(StatusCode::OK);
        return json_reply(
            status,
            json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}], "extensions": extensions}),
        );
    }
    model.bucket.available -= cost;
    let mut data = Map::new();
    for field in &checked.fields {
        let full = match execute(&mut model, journal, &checked, field) {
            Some(v) => v,
            None => Value::Null,
        };
        data.insert(field.key.clone(), checked.project(&field.key, &full));
    }
    let extensions = cost_extensions(&model.bucket, cost, Some(cost));
    json_reply(
        StatusCode::OK,
        json!({"data": data, "extensions": extensions}),
    )
}

fn cost_extensions(bucket: &Bucket, requested: f64, actual: Option<f64>) -> Value {
    json!({"cost": {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": {
            "maximumAvailable": bucket.maximum,
            "currentlyAvailable": bucket.available.floor(),
            "restoreRate": bucket.restore_rate,
        }
    }})
}
