//! `webhook`: POSTs each change to a URL in Standard Webhooks' recommended
//! shape, `{"type", "timestamp", "subject", "data"}`, signed with the
//! destination's `whsec_` secret.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::classify::{classify_response, classify_transport_error};
use crate::standard_webhooks::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret};
use crate::{Action, Connector, ConnectorError, ConnectorKind, DeliveryItem, Outcome, RateLimit};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookSettings {
    url: url::Url,
    secret: String,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    timeout: Duration,
    /// Requests per second the receiver accepts; the engine keeps to it.
    #[serde(default)]
    rate_limit: Option<f64>,
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
}

/// The body a receiver gets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WebhookEvent {
    #[serde(rename = "type")]
    pub event_type: String,
    pub timestamp: String,
    pub subject: String,
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl WebhookConnector {
    pub fn from_settings(settings: &serde_json::Value) -> Result<Self, ConnectorError> {
        let s: WebhookSettings =
            serde_json::from_value(settings.clone()).map_err(ConnectorError::Settings)?;
        if !matches!(s.url.scheme(), "http" | "https") {
            return Err(ConnectorError::Invalid("url must be http or https".into()));
        }
        let rate_limit = match s.rate_limit {
            None => None,
            Some(r) if r.is_finite() && r > 0.0 => Some(RateLimit {
                per_second: r,
                burst: r.ceil().clamp(1.0, 10_000.0) as u32,
            }),
            Some(_) => {
                return Err(ConnectorError::Invalid(
                    "rate_limit must be a positive number of requests per second".into(),
                ));
            }
        };
        Ok(Self {
            url: s.url,
            secret: WebhookSecret::parse(&s.secret)?,
            timeout: s.timeout,
            rate_limit,
        })
    }

    pub fn event_for(item: &DeliveryItem, now: chrono::DateTime<chrono::Utc>) -> WebhookEvent {
        let (event_type, data) = match &item.action {
            Action::Upsert(fields) => ("profile.upserted", fields.clone()),
            Action::Delete => ("profile.deleted", Default::default()),
            Action::Suppress => ("profile.suppressed", Default::default()),
            Action::Unsubscribe => ("profile.unsubscribed", Default::default()),
        };
        WebhookEvent {
            event_type: event_type.into(),
            timestamp: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            subject: item.subject_id.clone(),
            data,
        }
    }

    async fn send_one(&self, client: &reqwest::Client, item: &DeliveryItem) -> Outcome {
        let now = chrono::Utc::now();
        let body = match serde_json::to_vec(&Self::event_for(item, now)) {
            Ok(b) => b,
            Err(e) => {
                return Outcome::Permanent {
                    status: None,
                    reason: format!("could not encode body: {e}"),
                };
            }
        };
        let ts = now.timestamp();
        let signature = self.secret.sign(&item.delivery_id, ts, &body);
        let sent = client
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_ID, &item.delivery_id)
            .header(HEADER_TIMESTAMP, ts.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                // The body only matters for the dead-letter record.
                let text = if status >= 300 {
                    resp.text().await.unwrap_or_default()
                } else {
                    String::new()
                };
                classify_response(status, &headers, &text)
            }
            Err(e) => classify_transport_error(&e),
        }
    }
}

#[async_trait::async_trait]
impl Connector for WebhookConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Webhook
    }

    fn max_batch(&self) -> usize {
        1
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }

    async fn send(&self, client: &reqwest::Client, items: &[DeliveryItem]) -> Vec<Outcome> {
        futures::future::join_all(items.iter().map(|item| self.send_one(client, item))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standard_webhooks::verify;
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::{Arc, Mutex};

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    type Seen = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

    async fn receiver(status: StatusCode) -> (String, Seen) {
        let seen: Seen = Default::default();
        let s = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let s = s.clone();
                async move {
                    s.lock().unwrap().push((headers, body.to_vec()));
                    (status, "nope")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/hook"), seen)
    }

    fn item(action: Action) -> DeliveryItem {
        DeliveryItem {
            subject_id: "0190-subject".into(),
            delivery_id: "msg_123".into(),
            action,
        }
    }

    #[tokio::test]
    async fn posts_signed_standard_webhook_body() {
        crate::install_crypto_provider();
        let (url, seen) = receiver(StatusCode::NO_CONTENT).await;
        let c = WebhookConnector::from_settings(&serde_json::json!({"url": url, "secret": SECRET}))
            .unwrap();
        let mut fields = serde_json::Map::new();
        fields.insert("email".into(), "ada@example.com".into());
        let out = c
            .send(&reqwest::Client::new(), &[item(Action::Upsert(fields))])
            .await;
        assert_eq!(out, vec![Outcome::Delivered { status: Some(204) }]);
        let (headers, body) = seen.lock().unwrap().pop().unwrap();
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        assert_eq!(h(HEADER_ID), Some("msg_123"));
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let now = chrono::Utc::now().timestamp();
        verify(
            &[secret],
            h(HEADER_ID),
            h(HEADER_TIMESTAMP),
            h(HEADER_SIGNATURE),
            &body,
            now,
            300,
        )
        .unwrap();
        let event: WebhookEvent = serde_json::from_slice(&body).unwrap();
        assert_eq!(event.event_type, "profile.upserted");
        assert_eq!(event.subject, "0190-subject");
        assert_eq!(event.data["email"], "ada@example.com");
    }

    #[tokio::test]
    async fn delete_has_empty_data_and_errors_are_classified() {
        crate::install_crypto_provider();
        let (url, seen) = receiver(StatusCode::BAD_REQUEST).await;
        let c = WebhookConnector::from_settings(&serde_json::json!({"url": url, "secret": SECRET}))
            .unwrap();
        let out = c
            .send(&reqwest::Client::new(), &[item(Action::Delete)])
            .await;
        assert_eq!(
            out,
            vec![Outcome::Permanent {
                status: Some(400),
                reason: "HTTP 400: nope".into()
            }]
        );
        let (_, body) = seen.lock().unwrap().pop().unwrap();
        let event: WebhookEvent = serde_json::from_slice(&body).unwrap();
        assert_eq!(event.event_type, "profile.deleted");
        assert!(event.data.is_empty());
    }

    #[tokio::test]
    async fn connection_refused_is_retried() {
        crate::install_crypto_provider();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        drop(listener);
        let c = WebhookConnector::from_settings(&serde_json::json!({"url": url, "secret": SECRET}))
            .unwrap();
        let out = c
            .send(&reqwest::Client::new(), &[item(Action::Suppress)])
            .await;
        assert!(matches!(out[0], Outcome::Retry { status: None, .. }));
    }

    #[test]
    fn rejects_bad_settings() {
        assert!(
            WebhookConnector::from_settings(
                &serde_json::json!({"url": "ftp://x", "secret": SECRET})
            )
            .is_err()
        );
        assert!(
            WebhookConnector::from_settings(
                &serde_json::json!({"url": "http://x", "secret": "plain"})
            )
            .is_err()
        );
        assert!(
            WebhookConnector::from_settings(
                &serde_json::json!({"url": "http://x", "secret": SECRET, "bogus": 1})
            )
            .is_err()
        );
    }
}
