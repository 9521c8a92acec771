//! `braze`: user profiles in Braze, keyed by `external_id` = the hub id.
//!
//! - Upsert: `POST /users/track`, up to 75 attribute objects per call (the
//!   `batch_size` setting; 50 for contracts with the combined 50 limit).
//!   Consent maps to Braze's own: `email_subscribe` follows `email_purpose`
//!   (`opted_in` / `unsubscribed`), each configured subscription group its
//!   purpose (`subscribed` / `unsubscribed`). Braze reports a bad object as
//!   a minor error with its `index` in the `attributes` array: only that
//!   item fails.
//! - Withdrawal: `/users/track` with `_update_existing_only` (never creates a
//!   profile), `email_subscribe: unsubscribed` and every configured group
//!   unsubscribed; suppression also sets `push_subscribe: unsubscribed`.
//! - Erasure: `POST /users/delete`, 50 `external_ids` per call (Braze queues
//!   it and answers a count; there is nothing to poll).
//! - Limits: `rate_limit` calls per 3 s (3,000 for `/users/track`); a 429,
//!   or an answer with `X-RateLimit-Remaining: 0`, throttles the
//!   destination until `X-RateLimit-Reset`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::classify::{Class, cut, retry_after, summarize_body};
use crate::partition::{self, Merged};
use crate::settings::{self, Secret};
use crate::{
    ActionKind, BatchPolicy, BatchResult, Connector, ConnectorError, ConnectorKind,
    DestinationSignal, Http, Item, ItemOutcome, RateLimit, VendorResponse,
};

/// Attribute objects per `/users/track` call.
pub const MAX_ATTRIBUTES: usize = 75;
/// External ids per `/users/delete` call.
pub const MAX_DELETES: usize = 50;
/// Braze's `/users/track` window.
pub const WINDOW: Duration = Duration::from_secs(3);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BrazeSettings {
    /// REST API key with `users.track` and `users.delete`.
    api_key: Secret,
    /// The instance's REST endpoint (`https://rest.fra-01.braze.eu`, ...).
    #[serde(default = "default_base_url")]
    base_url: String,
    /// The purpose `email_subscribe` follows; null leaves it to the mapping.
    #[serde(default = "default_email_purpose")]
    email_purpose: Option<String>,
    /// Subscription groups kept in step with consent.
    #[serde(default)]
    subscription_groups: Vec<GroupSettings>,
    #[serde(default = "default_batch_size")]
    batch_size: usize,
    /// `/users/track` calls per 3 seconds.
    #[serde(default = "default_rate_limit")]
    rate_limit: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSettings {
    id: String,
    /// Default: `email_purpose`.
    #[serde(default)]
    purpose: Option<String>,
}

fn default_base_url() -> String {
    "https://rest.iad-01.braze.com".into()
}

fn default_email_purpose() -> Option<String> {
    Some("marketing_email".into())
}

fn default_batch_size() -> usize {
    MAX_ATTRIBUTES
}

fn default_rate_limit() -> u32 {
    3000
}

#[derive(Debug, Clone)]
struct Group {
    id: String,
    purpose: Option<String>,
}

#[derive(Debug)]
pub struct BrazeConnector {
    base: url::Url,
    api_key: Secret,
    email_purpose: Option<String>,
    groups: Vec<Group>,
    batch_size: usize,
    rate_limit: u32,
}

/// Identifiers a mapping may not set: the hub id is the one identifier.
const RESERVED: [&str; 4] = [
    "external_id",
    "braze_id",
    "user_alias",
    "_update_existing_only",
];

impl BrazeConnector {
    pub fn from_settings(value: &Value) -> Result<Self, ConnectorError> {
        let s: BrazeSettings = settings::parse(value)?;
        if s.api_key.is_empty() {
            return Err(ConnectorError::Invalid("api_key: must not be empty".into()));
        }
        if !(1..=MAX_ATTRIBUTES).contains(&s.batch_size) {
            return Err(ConnectorError::Invalid(format!(
                "batch_size: expected 1 to {MAX_ATTRIBUTES} attribute objects per call"
            )));
        }
        if !(1..=100_000).contains(&s.rate_limit) {
            return Err(ConnectorError::Invalid(
                "rate_limit: expected calls per 3 seconds, between 1 and 100000".into(),
            ));
        }
        let mut groups = Vec::new();
        for (i, g) in s.subscription_groups.into_iter().enumerate() {
            if g.id.trim().is_empty() {
                return Err(ConnectorError::Invalid(format!(
                    "subscription_groups[{i}].id: must not be empty"
                )));
            }
            let purpose = g.purpose.or_else(|| s.email_purpose.clone());
            if purpose.is_none() {
                return Err(ConnectorError::Invalid(format!(
                    "subscription_groups[{i}].purpose: required when email_purpose is null"
                )));
            }
            groups.push(Group { id: g.id, purpose });
        }
        Ok(Self {
            base: settings::http_url("base_url", &s.base_url)?,
            api_key: s.api_key,
            email_purpose: s.email_purpose,
            groups,
            batch_size: s.batch_size,
            rate_limit: s.rate_limit,
        })
    }

    fn post(&self, http: &Http<'_>, path: &str, body: &Value) -> reqwest::RequestBuilder {
        http.client()
            .post(settings::join(&self.base, path))
            .bearer_auth(self.api_key.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .json(body)
    }

    /// An upsert's attribute object: the mapped fields, the hub id, and
    /// consent as Braze's subscription states (unless mapped explicitly).
    fn upsert_object(&self, item: &Item) -> Map<String, Value> {
        let mut object = Map::new();
        object.insert("external_id".into(), item.subject_id.clone().into());
        for (name, value) in item.fields().into_iter().flatten() {
            if !RESERVED.contains(&name.as_str()) {
                object.insert(name.clone(), value.clone());
            }
        }
        if let Some(purpose) = &self.email_purpose
            && !object.contains_key("email_subscribe")
        {
            let state = if item.granted(purpose) {
                "opted_in"
            } else {
                "unsubscribed"
            };
            object.insert("email_subscribe".into(), state.into());
        }
        if !self.groups.is_empty() && !object.contains_key("subscription_groups") {
            let groups: Vec<Value> = self
                .groups
                .iter()
                .map(|g| {
                    let granted = g.purpose.as_deref().is_some_and(|p| item.granted(p));
                    group_state(&g.id, granted)
                })
                .collect();
            object.insert("subscription_groups".into(), groups.into());
        }
        object
    }

    /// A withdrawal's attribute object: opt-outs only, on an existing
    /// profile only.
    fn withdrawal_object(&self, item: &Item) -> Map<String, Value> {
        let mut object = Map::new();
        object.insert("external_id".into(), item.subject_id.clone().into());
        object.insert("_update_existing_only".into(), true.into());
        object.insert("email_subscribe".into(), "unsubscribed".into());
        if item.action.kind() == ActionKind::Suppress {
            object.insert("push_subscribe".into(), "unsubscribed".into());
        }
        if !self.groups.is_empty() {
            let groups: Vec<Value> = self
                .groups
                .iter()
                .map(|g| group_state(&g.id, false))
                .collect();
            object.insert("subscription_groups".into(), groups.into());
        }
        object
    }

    async fn track(&self, http: &Http<'_>, objects: Vec<Map<String, Value>>) -> BatchResult {
        let len = objects.len();
        let request = self.post(http, "/users/track", &json!({ "attributes": objects }));
        let resp = match http.send(request).await {
            Ok(resp) => resp,
            Err(e) => return BatchResult::transport(len, &e),
        };
        let mut result = match classify(&resp) {
            Class::Success => {
                let mut outcomes: Vec<ItemOutcome> =
                    vec![ItemOutcome::Delivered { record_id: None }; len];
                for (index, reason) in minor_errors(&resp.body) {
                    if let Some(outcome) = outcomes.get_mut(index) {
                        *outcome = ItemOutcome::Permanent { reason };
                    }
                }
                BatchResult {
                    status: Some(resp.status),
                    outcomes: outcomes.into_iter().enumerate().collect(),
                    signal: None,
                }
            }
            class => BatchResult::from_class(len, resp.status, class),
        };
        if result.signal.is_none() {
            result.signal = quota_spent(&resp);
        }
        result
    }

    async fn delete(&self, http: &Http<'_>, items: &[&Item]) -> BatchResult {
        let mut out = Merged::new();
        let positions: Vec<usize> = (0..items.len()).collect();
        for chunk in positions.chunks(MAX_DELETES) {
            if out.stopped() {
                out.not_sent(chunk);
                continue;
            }
            let ids: Vec<&str> = chunk
                .iter()
                .map(|&k| items[k].subject_id.as_str())
                .collect();
            let request = self.post(http, "/users/delete", &json!({ "external_ids": ids }));
            let part = match http.send(request).await {
                Err(e) => BatchResult::transport(chunk.len(), &e),
                Ok(resp) => {
                    let mut part = match classify(&resp) {
                        // Braze queues the deletion and answers a count.
                        Class::Success => BatchResult::uniform(
                            chunk.len(),
                            Some(resp.status),
                            ItemOutcome::Delivered { record_id: None },
                        ),
                        class => BatchResult::from_class(chunk.len(), resp.status, class),
                    };
                    if part.signal.is_none() {
                        part.signal = quota_spent(&resp);
                    }
                    part
                }
            };
            out.add(chunk, part);
        }
        out.finish()
    }
}

fn group_state(id: &str, subscribed: bool) -> Value {
    json!({
        "subscription_group_id": id,
        "subscription_state": if subscribed { "subscribed" } else { "unsubscribed" },
    })
}

#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Vec<Value>,
}

/// `(index, message)` of each minor error about the `attributes` array.
fn minor_errors(body: &[u8]) -> Vec<(usize, String)> {
    let answer: Answer = serde_json::from_slice(body).unwrap_or_default();
    answer
        .errors
        .iter()
        .filter(|e| e["input_array"].as_str().is_none_or(|a| a == "attributes"))
        .filter_map(|e| {
            let index = usize::try_from(e["index"].as_u64()?).ok()?;
            let text = e["type"].as_str().unwrap_or("rejected");
            Some((index, format!("Braze: {text}")))
        })
        .collect()
}

/// The status and Braze's message (and its errors, when it lists some).
fn reason(status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<Answer>(body) {
        Ok(Answer {
            message: Some(message),
            errors,
        }) => {
            let details: Vec<String> = errors
                .iter()
                .map(|e| match e {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            let text = if details.is_empty() {
                format!("HTTP {status} Braze: {message}")
            } else {
                format!("HTTP {status} Braze: {message} ({})", details.join("; "))
            };
            cut(&text, 600)
        }
        _ => summarize_body(status, body),
    }
}

/// Until `X-RateLimit-Reset` (UTC epoch seconds), else `Retry-After`, else
/// Braze's 3-second window.
fn wait_for_reset(resp: &VendorResponse) -> Duration {
    let now = chrono::Utc::now().timestamp();
    resp.header("x-ratelimit-reset")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|reset| Duration::from_secs(reset.saturating_sub(now).clamp(1, 86_400) as u64))
        .or_else(|| retry_after(&resp.headers))
        .unwrap_or(WINDOW)
}

/// 2xx (201 and the 202 "queued" of maintenance included) succeeds; 429
/// throttles until the reset; 401, 403 and 404 (an unknown REST key, or
/// the wrong instance) pause; 408/5xx retry; other 4xx are permanent.
fn classify(resp: &VendorResponse) -> Class {
    let reason = || reason(resp.status, &resp.body);
    match resp.status {
        200..=299 => Class::Success,
        429 => Class::Throttle {
            retry_after: wait_for_reset(resp),
            reason: reason(),
        },
        401 | 403 | 404 => Class::Pause { reason: reason() },
        408 | 500..=599 => Class::Retry { reason: reason() },
        _ => Class::Permanent { reason: reason() },
    }
}

/// An answer that spent the last call of the window throttles until it
/// resets, so the next call is not a 429.
fn quota_spent(resp: &VendorResponse) -> Option<DestinationSignal> {
    let remaining = resp
        .header("x-ratelimit-remaining")?
        .trim()
        .parse::<u64>()
        .ok()?;
    (remaining == 0 && (200..300).contains(&resp.status)).then(|| DestinationSignal::Throttle {
        retry_after: wait_for_reset(resp),
        reason: format!(
            "Braze rate limit spent (X-RateLimit-Limit {})",
            resp.header("x-ratelimit-limit").unwrap_or("?")
        ),
    })
}

#[async_trait::async_trait]
impl Connector for BrazeConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Braze
    }

    fn batch_policy(&self) -> BatchPolicy {
        BatchPolicy {
            max_items: self.batch_size,
            max_bytes: None,
            mixed_actions: false,
        }
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit {
            calls: self.rate_limit,
            per: WINDOW,
        })
    }

    async fn send(&self, http: &Http<'_>, batch: &[Item]) -> BatchResult {
        let mut merged = Merged::new();
        for (kind, indices) in partition::by_kind(batch) {
            for chunk in indices.chunks(self.batch_size) {
                if merged.stopped() {
                    merged.not_sent(chunk);
                    continue;
                }
                let items: Vec<&Item> = chunk.iter().map(|&i| &batch[i]).collect();
                let part = match kind {
                    ActionKind::Upsert => {
                        let objects = items.iter().map(|i| self.upsert_object(i)).collect();
                        self.track(http, objects).await
                    }
                    ActionKind::Suppress | ActionKind::Unsubscribe => {
                        let objects = items.iter().map(|i| self.withdrawal_object(i)).collect();
                        self.track(http, objects).await
                    }
                    ActionKind::Delete => self.delete(http, &items).await,
                };
                merged.add(chunk, part);
            }
        }
        merged.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_errors_name_their_attribute_index() {
        let body = br#"{"message":"success","errors":[{"type":"'email_subscribe' must be one of opted_in, subscribed, unsubscribed","input_array":"attributes","index":1},{"type":"x","input_array":"events","index":0}]}"#;
        assert_eq!(
            minor_errors(body),
            vec![(
                1,
                "Braze: 'email_subscribe' must be one of opted_in, subscribed, unsubscribed"
                    .to_string()
            )]
        );
        assert_eq!(
            reason(
                400,
                br#"{"message":"Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."}"#
            ),
            "HTTP 400 Braze: Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
        );
    }
}
