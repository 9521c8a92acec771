//! `shopify`: customers through the Admin GraphQL API
//! (`{base_url}/admin/api/{api_version}/graphql.json`,
//! `X-Shopify-Access-Token`), version 2025-01 by default.
//!
//! 2025-01 has no upsert (`customerSet` takes an identifier only from
//! 2025-04), so a batch is at most two calls: a query that finds the
//! customers the hub has no Shopify id for yet (`customerByIdentifier` by
//! email, or `customer(id:)` for withdrawals and erasures, which need to know
//! whether an email or phone is there), then one mutation document with one
//! aliased mutation per item and purpose: `customerCreate` (consent inside
//! the input) or `customerUpdate` plus `customerEmailMarketingConsentUpdate`
//! and `customerSmsMarketingConsentUpdate`. Each item's outcome comes from
//! its own aliases: `userErrors` fail that item alone, with their messages.
//!
//! Throttling follows `extensions.cost`: a `THROTTLED` error, an HTTP 429,
//! or a bucket left with fewer points than the call just cost makes the
//! destination wait `(requested - currentlyAvailable) / restoreRate`.
//!
//! Erasure is `customerRequestDataErasure` (a request Shopify carries out
//! later, 10 days or more, longer for customers with recent orders) or
//! `customerDelete`, by the `delete_with` setting. The API exposes no state
//! of an erasure request, so `check` asks for the customer: erased when the
//! customer is gone or its personal fields are all empty.

mod document;
mod fields;
mod plan;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::classify::{Class, classify_status, retry_after};
use crate::settings::{self, Secret};
use crate::{
    Action, BatchPolicy, BatchResult, CheckResult, Connector, ConnectorError, ConnectorKind,
    DestinationSignal, Http, Item, ItemOutcome, RateLimit, Ticket, TicketStatus,
};
use document::{Cost, Document};
use plan::Plan;

/// Items per call: up to three mutations each (update and two consents) at
/// 10 points is 750 points, under Shopify's 1,000-point single-query limit.
const MAX_ITEMS: usize = 25;
const MUTATION_COST: f64 = 10.0;
const ERASURE_CHECK: Duration = Duration::from_secs(24 * 3600);
const CUSTOMER_SELECTION: &str = "{ customer { id } userErrors { field message } }";
const CONSENT_SELECTION: &str = "{ userErrors { field message code } }";

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteWith {
    /// `customerRequestDataErasure`: Shopify redacts the customer's
    /// personal data (asynchronous).
    DataErasure,
    /// `customerDelete`: removes the customer (refused when it has orders).
    CustomerDelete,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShopifySettings {
    /// The `*.myshopify.com` domain.
    shop: String,
    access_token: Secret,
    #[serde(default = "default_api_version")]
    api_version: String,
    /// Default `https://{shop}`.
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default = "default_delete_with")]
    delete_with: DeleteWith,
    #[serde(default = "default_email_purpose")]
    email_purpose: String,
    #[serde(default = "default_sms_purpose")]
    sms_purpose: String,
    #[serde(default = "default_namespace")]
    metafield_namespace: String,
    /// `marketingOptInLevel` sent with a subscription.
    #[serde(default = "default_opt_in_level")]
    opt_in_level: String,
    /// The plan's restore rate in points per second (Standard 100).
    #[serde(default = "default_restore_rate")]
    restore_rate: u32,
}

fn default_api_version() -> String {
    "2025-01".into()
}
fn default_delete_with() -> DeleteWith {
    DeleteWith::DataErasure
}
fn default_email_purpose() -> String {
    "marketing_email".into()
}
fn default_sms_purpose() -> String {
    "marketing_sms".into()
}
fn default_namespace() -> String {
    "hub".into()
}
fn default_opt_in_level() -> String {
    "SINGLE_OPT_IN".into()
}
fn default_restore_rate() -> u32 {
    100
}

#[derive(Debug)]
pub struct ShopifyConnector {
    endpoint: url::Url,
    access_token: Secret,
    delete_with: DeleteWith,
    email_purpose: String,
    sms_purpose: String,
    namespace: String,
    opt_in_level: String,
    restore_rate: u32,
}

/// What the lookup found for one item.
#[derive(Debug, Clone, Default)]
struct Known {
    id: Option<String>,
    has_email: bool,
    has_phone: bool,
}

impl ShopifyConnector {
    pub fn from_settings(settings: &Value) -> Result<Self, ConnectorError> {
        let s: ShopifySettings = settings::parse(settings)?;
        settings::require("access_token", &s.access_token)?;
        let shop_ok = s.shop.strip_suffix(".myshopify.com").is_some_and(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
        if !shop_ok {
            return Err(ConnectorError::Invalid(
                "shop: expected the shop's NAME.myshopify.com domain".into(),
            ));
        }
        let version_ok = s.api_version == "unstable"
            || (s.api_version.len() == 7
                && s.api_version.as_bytes()[4] == b'-'
                && s.api_version.chars().filter(char::is_ascii_digit).count() == 6);
        if !version_ok {
            return Err(ConnectorError::Invalid(
                "api_version: expected a release like 2025-01".into(),
            ));
        }
        if !fields::valid_key(&s.metafield_namespace) {
            return Err(ConnectorError::Invalid(
                "metafield_namespace: 2 to 64 letters, digits, - or _".into(),
            ));
        }
        if !["SINGLE_OPT_IN", "CONFIRMED_OPT_IN", "UNKNOWN"].contains(&s.opt_in_level.as_str()) {
            return Err(ConnectorError::Invalid(
                "opt_in_level: expected SINGLE_OPT_IN, CONFIRMED_OPT_IN or UNKNOWN".into(),
            ));
        }
        if s.restore_rate == 0 {
            return Err(ConnectorError::Invalid(
                "restore_rate: must be at least 1".into(),
            ));
        }
        let base = match &s.base_url {
            Some(b) => settings::http_url("base_url", b)?,
            None => settings::http_url("shop", &format!("https://{}", s.shop))?,
        };
        Ok(Self {
            endpoint: settings::join(&base, &format!("admin/api/{}/graphql.json", s.api_version)),
            access_token: s.access_token,
            delete_with: s.delete_with,
            email_purpose: s.email_purpose,
            sms_purpose: s.sms_purpose,
            namespace: s.metafield_namespace,
            opt_in_level: s.opt_in_level,
            restore_rate: s.restore_rate,
        })
    }

    fn consent(&self, subscribed: bool) -> Value {
        json!({
            "marketingState": if subscribed { "SUBSCRIBED" } else { "UNSUBSCRIBED" },
            "marketingOptInLevel": self.opt_in_level,
            "consentUpdatedAt": crate::tracking::now_rfc3339(),
        })
    }

    /// Sends one document; Ok is a 200 answer's JSON, Err every item's
    /// outcome and the destination's signal.
    async fn call(&self, http: &Http<'_>, body: Value) -> Result<(u16, Value), Failure> {
        let request = http
            .client()
            .post(self.endpoint.clone())
            .header("X-Shopify-Access-Token", self.access_token.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let resp = http.send(request).await.map_err(|e| Failure {
            status: None,
            outcome: ItemOutcome::Retry {
                reason: e.to_string(),
            },
            signal: None,
        })?;
        let answer: Value = resp.json().unwrap_or(Value::Null);
        let class = classify_status(resp.status, &resp.headers, &resp.body);
        let failure = |outcome: ItemOutcome, signal: Option<DestinationSignal>| Failure {
            status: Some(resp.status),
            outcome,
            signal,
        };
        match class {
            Class::Success => {}
            Class::Throttle { reason, .. } => {
                let wait = retry_after(&resp.headers)
                    .or_else(|| Cost::read(&answer).and_then(|c| c.wait_for(c.requested)))
                    .unwrap_or(crate::classify::DEFAULT_THROTTLE);
                return Err(failure(
                    ItemOutcome::Retry {
                        reason: reason.clone(),
                    },
                    Some(DestinationSignal::Throttle {
                        retry_after: wait,
                        reason,
                    }),
                ));
            }
            Class::Pause { reason } => {
                return Err(failure(
                    ItemOutcome::Retry {
                        reason: reason.clone(),
                    },
                    Some(DestinationSignal::Pause { reason }),
                ));
            }
            // 402 frozen, 404 shop or version not found, 423 locked: nothing
            // will go through until an admin acts; keep the jobs.
            Class::Permanent { reason } if matches!(resp.status, 402 | 404 | 423) => {
                return Err(failure(
                    ItemOutcome::Retry {
                        reason: reason.clone(),
                    },
                    Some(DestinationSignal::Pause { reason }),
                ));
            }
            Class::Permanent { reason } => {
                return Err(failure(ItemOutcome::Permanent { reason }, None));
            }
            Class::Retry { reason } => return Err(failure(ItemOutcome::Retry { reason }, None)),
        }
        let errors = document::errors(&answer);
        if let Some((_, message, _)) = errors
            .iter()
            .find(|(c, _, _)| c.as_deref() == Some("THROTTLED"))
        {
            let wait = Cost::read(&answer)
                .and_then(|c| c.wait_for(c.requested))
                .unwrap_or(crate::classify::DEFAULT_THROTTLE);
            let reason = format!("Shopify: {message} (THROTTLED)");
            return Err(failure(
                ItemOutcome::Retry {
                    reason: reason.clone(),
                },
                Some(DestinationSignal::Throttle {
                    retry_after: wait,
                    reason,
                }),
            ));
        }
        if answer.get("data").is_none_or(Value::is_null) {
            let message = errors
                .iter()
                .map(|(code, m, _)| match code {
                    Some(c) => format!("{m} ({c})"),
                    None => m.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let reason = format!("Shopify refused the query: {message}");
            if errors
                .iter()
                .any(|(c, _, _)| c.as_deref() == Some("ACCESS_DENIED"))
            {
                return Err(failure(
                    ItemOutcome::Retry {
                        reason: reason.clone(),
                    },
                    Some(DestinationSignal::Pause { reason }),
                ));
            }
            if errors
                .iter()
                .any(|(c, _, _)| c.as_deref() == Some("INTERNAL_SERVER_ERROR"))
            {
                return Err(failure(ItemOutcome::Retry { reason }, None));
            }
            return Err(failure(ItemOutcome::Permanent { reason }, None));
        }
        Ok((resp.status, answer))
    }

    /// Finds the customers of the items that need an id (or, for
    /// withdrawals and erasures, need to know the email and phone).
    async fn lookup(
        &self,
        http: &Http<'_>,
        batch: &[Item],
        known: &mut [Known],
        done: &mut BTreeMap<usize, ItemOutcome>,
    ) -> Result<Option<Cost>, Failure> {
        let mut doc = Document::default();
        for (i, item) in batch.iter().enumerate() {
            let alias = format!("l{i}");
            match (&item.action, &item.record_id) {
                (Action::Upsert(_), Some(id)) => known[i].id = Some(id.clone()),
                (Action::Upsert(fields), None) => {
                    if let Some(email) = fields.get("email").and_then(Value::as_str) {
                        doc.add(
                            &alias,
                            "customerByIdentifier",
                            "identifier",
                            "CustomerIdentifierInput!",
                            json!({"emailAddress": email}),
                            "{ id }",
                            1.0,
                        );
                    }
                }
                (_, Some(id)) => doc.add(
                    &alias,
                    "customer",
                    "id",
                    "ID!",
                    json!(id),
                    "{ id email phone }",
                    1.0,
                ),
                (_, None) => match item.identity_str("email") {
                    Some(email) => doc.add(
                        &alias,
                        "customerByIdentifier",
                        "identifier",
                        "CustomerIdentifierInput!",
                        json!({"emailAddress": email}),
                        "{ id email phone }",
                        1.0,
                    ),
                    // Never delivered by email, never created: Shopify holds nothing.
                    None => {
                        done.insert(i, ItemOutcome::Delivered { record_id: None });
                    }
                },
            }
        }
        if doc.is_empty() {
            return Ok(None);
        }
        let (_, answer) = self
            .call(http, doc.body("query", "HubFindCustomers"))
            .await?;
        for i in 0..batch.len() {
            let Some(found) = answer.pointer(&format!("/data/l{i}")) else {
                continue;
            };
            if found.is_null() {
                if !matches!(batch[i].action, Action::Upsert(_)) {
                    done.insert(i, ItemOutcome::Delivered { record_id: None });
                }
                continue;
            }
            known[i] = Known {
                id: found["id"].as_str().map(String::from),
                has_email: found["email"].as_str().is_some(),
                has_phone: found["phone"].as_str().is_some(),
            };
        }
        Ok(Cost::read(&answer))
    }
}

/// A call that failed as a whole.
struct Failure {
    status: Option<u16>,
    outcome: ItemOutcome,
    signal: Option<DestinationSignal>,
}

#[async_trait::async_trait]
impl Connector for ShopifyConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Shopify
    }

    fn batch_policy(&self) -> BatchPolicy {
        BatchPolicy {
            max_items: MAX_ITEMS,
            max_bytes: None,
            mixed_actions: true,
        }
    }

    /// The bucket refills `restore_rate` points a second; a full batch of
    /// creates costs 250 points, so about one call per 250 / rate seconds.
    /// The bucket's own answers (`extensions.cost`) throttle beyond that.
    fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit {
            calls: self.restore_rate,
            per: Duration::from_secs((MAX_ITEMS as u64) * (MUTATION_COST as u64)),
        })
    }

    fn identity_fields(&self) -> Vec<String> {
        vec!["email".into()]
    }

    async fn send(&self, http: &Http<'_>, batch: &[Item]) -> BatchResult {
        let mut result = BatchResult::default();
        let mut known = vec![Known::default(); batch.len()];
        let mut done: BTreeMap<usize, ItemOutcome> = BTreeMap::new();
        let fail_all = |f: Failure, done: &BTreeMap<usize, ItemOutcome>| BatchResult {
            status: f.status,
            outcomes: (0..batch.len())
                .map(|i| {
                    (
                        i,
                        done.get(&i).cloned().unwrap_or_else(|| f.outcome.clone()),
                    )
                })
                .collect(),
            signal: f.signal,
        };
        let lookup_cost = match self.lookup(http, batch, &mut known, &mut done).await {
            Ok(c) => c,
            Err(f) => return fail_all(f, &done),
        };
        let mut doc = Document::default();
        let mut plans: BTreeMap<usize, Plan> = BTreeMap::new();
        for (i, item) in batch.iter().enumerate() {
            if done.contains_key(&i) {
                continue;
            }
            match self.plan(i, item, &known[i], &mut doc) {
                Ok(plan) => {
                    plans.insert(i, plan);
                }
                Err(outcome) => {
                    done.insert(i, outcome);
                }
            }
        }
        // The lookup's answer says whether the bucket holds the mutations'
        // cost; if not, wait instead of spending a THROTTLED call.
        if let Some(wait) = lookup_cost.and_then(|c| c.wait_for(doc.cost)) {
            let reason = format!(
                "Shopify's cost bucket holds less than the {} points this batch needs",
                doc.cost
            );
            return fail_all(
                Failure {
                    status: Some(200),
                    outcome: ItemOutcome::Retry {
                        reason: reason.clone(),
                    },
                    signal: Some(DestinationSignal::Throttle {
                        retry_after: wait,
                        reason,
                    }),
                },
                &done,
            );
        }
        let mut answer = Value::Null;
        if !doc.is_empty() {
            match self
                .call(http, doc.body("mutation", "HubSyncCustomers"))
                .await
            {
                Err(f) => return fail_all(f, &done),
                Ok((status, a)) => {
                    result.status = Some(status);
                    answer = a;
                }
            }
        }
        let errors = document::errors(&answer);
        for (i, item) in batch.iter().enumerate() {
            if let Some(outcome) = done.remove(&i) {
                result.outcomes.push((i, outcome));
                continue;
            }
            let Some(plan) = plans.get(&i) else { continue };
            let outcome = plan.outcome(item, &known[i], &answer, &errors);
            result.outcomes.push((i, outcome));
        }
        // The bucket now holds less than another call like this one costs:
        // the next call waits for the restore rate.
        if let Some(cost) = Cost::read(&answer)
            && let Some(wait) = cost.wait_for(cost.requested)
        {
            result.signal = Some(DestinationSignal::Throttle {
                retry_after: wait,
                reason: format!(
                    "Shopify's cost bucket holds {} of the {} points a call like this costs",
                    cost.available, cost.requested
                ),
            });
        }
        result
    }

    async fn check(&self, http: &Http<'_>, tickets: &[Ticket]) -> CheckResult {
        let mut result = CheckResult::default();
        let mut doc = Document::default();
        let mut aliases: BTreeMap<&str, String> = BTreeMap::new();
        for ticket in tickets {
            if !aliases.contains_key(ticket.ticket.as_str()) {
                let alias = format!("k{}", aliases.len());
                doc.add(
                    &alias,
                    "customer",
                    "id",
                    "ID!",
                    json!(ticket.ticket),
                    "{ id email phone firstName lastName }",
                    1.0,
                );
                aliases.insert(&ticket.ticket, alias);
            }
        }
        if doc.is_empty() {
            return result;
        }
        let answer = match self.call(http, doc.body("query", "HubErasures")).await {
            Ok((status, a)) => {
                result.status = Some(status);
                a
            }
            Err(f) => {
                result.status = f.status;
                result.signal = f.signal;
                return result; // every ticket is asked about again
            }
        };
        for (i, ticket) in tickets.iter().enumerate() {
            let alias = &aliases[ticket.ticket.as_str()];
            let Some(customer) = answer.pointer(&format!("/data/{alias}")) else {
                continue;
            };
            let erased = customer.is_null()
                || ["email", "phone", "firstName", "lastName"]
                    .iter()
                    .all(|k| customer[*k].is_null());
            let status = if erased {
                TicketStatus::Confirmed { record_id: None }
            } else {
                TicketStatus::Pending {
                    check_after: ERASURE_CHECK,
                }
            };
            result.statuses.push((i, status));
        }
        if let Some(cost) = Cost::read(&answer)
            && let Some(wait) = cost.wait_for(cost.requested)
        {
            result.signal = Some(DestinationSignal::Throttle {
                retry_after: wait,
                reason: "Shopify's cost bucket is low".into(),
            });
        }
        result
    }
}
