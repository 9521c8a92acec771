//! `webhook`: POSTs each change to a URL in Standard Webhooks' recommended
//! shape, `{"type", "timestamp", "subject", "data"}`, signed with the
//! destination's `whsec_` secret. With `batch` set, several changes go in
//! one signed POST as `{"type": "batch", "events": [...]}`; a receiver
//! answers 2xx for all, or 207 with a result per event id.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::classify::{Class, classify_status, summarize_body};
use crate::standard_webhooks::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret};
use crate::{
    Action, BatchPolicy, BatchResult, Connector, ConnectorError, ConnectorKind, Http, Item,
    ItemOutcome, RateLimit,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookSettings {
    url: String,
    secret: String,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    timeout: Duration,
    /// Requests per second the receiver accepts; the engine keeps to it.
    #[serde(default)]
    rate_limit: Option<f64>,
    /// Several events per POST.
    #[serde(default)]
    batch: Option<BatchSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchSettings {
    max_items: usize,
    /// Bytes of event data per POST at most.
    #[serde(default)]
    max_bytes: Option<usize>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug)]
pub struct WebhookConnector {
    url: url::Url,
    secret: WebhookSecret,
    timeout: Duration,
    rate_limit: Option<RateLimit>,
    batch: Option<BatchPolicy>,
}

/// The body a receiver gets for one change (and each entry of a batch).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WebhookEvent {
    /// The delivery id (also the `webhook-id` of a single POST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub timestamp: String,
    pub subject: String,
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// A batch POST's body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WebhookBatch {
    #[serde(rename = "type")]
    pub batch_type: String,
    pub timestamp: String,
    pub events: Vec<WebhookEvent>,
}

/// A 207 answer to a batch: the events that did not simply succeed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchAnswer {
    pub results: Vec<EventResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventResult {
    pub id: String,
    pub status: u16,
    #[serde(default)]
    pub error: Option<String>,
}

impl WebhookConnector {
    pub fn from_settings(settings: &serde_json::Value) -> Result<Self, ConnectorError> {
        let s: WebhookSettings = crate::settings::parse(settings)?;
        // The url crate's message would quote the input.
        let url = url::Url::parse(&s.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| ConnectorError::Invalid("url: expected an http or https URL".into()))?;
        let rate_limit = match s.rate_limit {
            None => None,
            Some(r) if (1.0..=1_000_000.0).contains(&r) => {
                Some(RateLimit::per_second(r.round() as u32))
            }
            Some(_) => {
                return Err(ConnectorError::Invalid(
                    "rate_limit must be a number of requests per second, at least 1".into(),
                ));
            }
        };
        let batch = match s.batch {
            None => None,
            Some(b) if (1..=10_000).contains(&b.max_items) => Some(BatchPolicy {
                max_items: b.max_items,
                max_bytes: b.max_bytes,
                mixed_actions: true,
            }),
            Some(_) => {
                return Err(ConnectorError::Invalid(
                    "batch.max_items must be between 1 and 10000".into(),
                ));
            }
        };
        Ok(Self {
            url,
            secret: WebhookSecret::parse(&s.secret)?,
            timeout: s.timeout,
            rate_limit,
            batch,
        })
    }

    pub fn event_for(item: &Item, now: chrono::DateTime<chrono::Utc>) -> WebhookEvent {
        let (event_type, data) = match &item.action {
            Action::Upsert(fields) => ("profile.upserted", fields.clone()),
            Action::Delete => ("profile.deleted", Default::default()),
            Action::Suppress => ("profile.suppressed", Default::default()),
            Action::Unsubscribe => ("profile.unsubscribed", Default::default()),
        };
        WebhookEvent {
            id: None,
            event_type: event_type.into(),
            timestamp: timestamp(now),
            subject: item.subject_id.clone(),
            data,
        }
    }

    fn signed_post(&self, http: &Http<'_>, id: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
        let ts = chrono::Utc::now().timestamp();
        let signature = self.secret.sign(id, ts, &body);
        http.client()
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_ID, id)
            .header(HEADER_TIMESTAMP, ts.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(body)
    }

    async fn send_one(&self, http: &Http<'_>, item: &Item) -> BatchResult {
        let body = match serde_json::to_vec(&Self::event_for(item, chrono::Utc::now())) {
            Ok(b) => b,
            Err(e) => {
                return BatchResult::uniform(
                    1,
                    None,
                    ItemOutcome::Permanent {
                        reason: format!("could not encode body: {e}"),
                    },
                );
            }
        };
        match http
            .send(self.signed_post(http, &item.delivery_id, body))
            .await
        {
            Ok(resp) => BatchResult::from_class(
                1,
                resp.status,
                classify_status(resp.status, &resp.headers, &resp.body),
            ),
            Err(e) => BatchResult::transport(1, &e),
        }
    }

    async fn send_batch(&self, http: &Http<'_>, items: &[Item]) -> BatchResult {
        let now = chrono::Utc::now();
        let events: Vec<WebhookEvent> = items
            .iter()
            .map(|item| WebhookEvent {
                id: Some(item.delivery_id.clone()),
                ..Self::event_for(item, now)
            })
            .collect();
        let body = WebhookBatch {
            batch_type: "batch".into(),
            timestamp: timestamp(now),
            events,
        };
        let body = match serde_json::to_vec(&body) {
            Ok(b) => b,
            Err(e) => {
                return BatchResult::uniform(
                    items.len(),
                    None,
                    ItemOutcome::Permanent {
                        reason: format!("could not encode body: {e}"),
                    },
                );
            }
        };
        // The same events give the same id, so a receiver can drop a resend.
        let id = batch_id(items);
        let resp = match http.send(self.signed_post(http, &id, body)).await {
            Ok(resp) => resp,
            Err(e) => return BatchResult::transport(items.len(), &e),
        };
        if resp.status != 207 {
            let class = classify_status(resp.status, &resp.headers, &resp.body);
            return BatchResult::from_class(items.len(), resp.status, class);
        }
        let Ok(answer) = resp.json::<BatchAnswer>() else {
            return BatchResult::uniform(
                items.len(),
                Some(207),
                ItemOutcome::Retry {
                    reason: "HTTP 207 without a readable result list".into(),
                },
            );
        };
        let by_id: HashMap<&str, &EventResult> =
            answer.results.iter().map(|r| (r.id.as_str(), r)).collect();
        let outcomes = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let outcome = match by_id.get(item.delivery_id.as_str()) {
                    None => ItemOutcome::Delivered { record_id: None },
                    Some(r) => {
                        let body = r.error.clone().unwrap_or_default();
                        match classify_status(r.status, &Default::default(), body.as_bytes()) {
                            Class::Success => ItemOutcome::Delivered { record_id: None },
                            Class::Permanent { .. } | Class::Pause { .. } => {
                                ItemOutcome::Permanent {
                                    reason: summarize_body(r.status, body.as_bytes()),
                                }
                            }
                            Class::Retry { reason } | Class::Throttle { reason, .. } => {
                                ItemOutcome::Retry { reason }
                            }
                        }
                    }
                };
                (i, outcome)
            })
            .collect();
        BatchResult {
            status: Some(207),
            outcomes,
            signal: None,
        }
    }
}

fn timestamp(now: chrono::DateTime<chrono::Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `batch_` and a digest of the events' delivery ids.
fn batch_id(items: &[Item]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for item in items {
        h.update(item.delivery_id.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("batch_{hex}")
}

#[async_trait::async_trait]
impl Connector for WebhookConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Webhook
    }

    fn batch_policy(&self) -> BatchPolicy {
        self.batch.unwrap_or(BatchPolicy::SINGLE)
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }

    async fn send(&self, http: &Http<'_>, batch: &[Item]) -> BatchResult {
        match (self.batch, batch) {
            (None, [item]) => self.send_one(http, item).await,
            (None, items) => {
                // The engine sends single items to a connector without a
                // batch policy; should it not, each item is its own POST.
                let mut result = BatchResult::default();
                for (i, item) in items.iter().enumerate() {
                    let one = self.send_one(http, item).await;
                    result.status = one.status;
                    result.signal = result.signal.or(one.signal);
                    result
                        .outcomes
                        .extend(one.outcomes.into_iter().map(|(_, o)| (i, o)));
                }
                result
            }
            (Some(_), items) => self.send_batch(http, items).await,
        }
    }
}

#[cfg(test)]
mod tests;
