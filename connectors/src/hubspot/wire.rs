//! HubSpot's request and answer bodies, and how its answers are read:
//! per-input results and errors of the batch endpoints, its error body, its
//! rate-limit policy names and headers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::classify::{Class, cut, retry_after, summarize_body};
use crate::http::VendorResponse;

/// `POST /crm/v3/objects/contacts/batch/upsert`
#[derive(Debug, Serialize)]
pub struct UpsertBatch {
    pub inputs: Vec<UpsertInput>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsertInput {
    /// The value of `id_property` that addresses the contact.
    pub id: String,
    pub id_property: String,
    /// Echoed in the result; its presence also makes HubSpot answer a
    /// partly failed batch with 207 and per-input errors.
    pub object_write_trace_id: String,
    pub properties: BTreeMap<String, String>,
}

/// The answer of a batch endpoint (200, or 207 with `errors`).
#[derive(Debug, Deserialize)]
pub struct BatchAnswer<R> {
    #[serde(default = "Vec::new")]
    pub results: Vec<R>,
    #[serde(default)]
    pub errors: Vec<StandardError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsertResult {
    /// HubSpot's record id of the contact.
    pub id: String,
    #[serde(default)]
    pub object_write_trace_id: Option<String>,
    #[serde(default)]
    pub properties: Map<String, Value>,
}

/// One failed input of a batch (HubSpot's `StandardError`).
#[derive(Debug, Default, Deserialize)]
pub struct StandardError {
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub message: String,
    /// `{"objectWriteTraceId": ["..."]}`, `{"ids": ["..."]}`, ...
    #[serde(default)]
    pub context: Map<String, Value>,
}

impl StandardError {
    /// The strings of `context[key]`.
    pub fn context_values(&self, key: &str) -> Vec<&str> {
        match self.context.get(key) {
            Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(value)) => vec![value.as_str()],
            _ => Vec::new(),
        }
    }

    /// Every string anywhere in `context`.
    pub fn all_context_values(&self) -> Vec<&str> {
        self.context
            .keys()
            .flat_map(|k| self.context_values(k))
            .collect()
    }

    pub fn reason(&self) -> String {
        cut(&format!("HubSpot {}: {}", self.category, self.message), 600)
    }

    /// Most per-input errors are about the data (invalid email, unknown
    /// property, conflict); a few say HubSpot could not do it just now.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self.category.as_str(),
            "RATE_LIMITS" | "INTERNAL_ERROR" | "SERVICE_UNAVAILABLE" | "TIMEOUT" | "LOCKED"
        )
    }
}

/// `POST /crm/v3/objects/contacts/gdpr-delete`
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GdprDelete<'a> {
    pub object_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_property: Option<&'a str>,
}

/// `POST /communication-preferences/v4/statuses/batch/unsubscribe-all`
#[derive(Debug, Serialize)]
pub struct StringInputs<'a> {
    pub inputs: Vec<&'a str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OptOutResult {
    pub subscriber_id_string: String,
}

/// HubSpot's error body. HubSpot says to treat every field as optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    message: Option<String>,
    category: Option<String>,
    error_type: Option<String>,
    policy_name: Option<String>,
}

/// The status, HubSpot's category and message, for the dead-letter record.
pub fn reason(status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            message: Some(message),
            category,
            error_type,
            ..
        }) => {
            let kind = category.or(error_type).unwrap_or_default();
            cut(&format!("HTTP {status} {kind}: {message}"), 600)
        }
        _ => summarize_body(status, body),
    }
}

/// When HubSpot's daily cap is spent: it resets at midnight in the
/// account's time zone, which the API does not tell, so ask again hourly.
pub const DAILY_LIMIT_WAIT: Duration = Duration::from_secs(3600);
/// HubSpot's rolling window, when the answer does not name it.
pub const WINDOW: Duration = Duration::from_secs(10);
/// "Locks will last for 2 seconds" (423).
pub const LOCK_WAIT: Duration = Duration::from_secs(2);
/// 477 without Retry-After: the account is moving between data centres.
pub const MIGRATION_WAIT: Duration = Duration::from_secs(300);

/// How long a 429 asks us to wait: `Retry-After` if HubSpot sends one; for
/// the `DAILY` policy an hour; otherwise the rest of the rolling window,
/// which HubSpot gives only as its length
/// (`X-HubSpot-RateLimit-Interval-Milliseconds`), so the whole window.
pub fn throttle_for(resp: &VendorResponse) -> Duration {
    if let Some(wait) = retry_after(&resp.headers) {
        return wait;
    }
    let body: ErrorBody = serde_json::from_slice(&resp.body).unwrap_or_default();
    if body.policy_name.as_deref() == Some("DAILY") {
        return DAILY_LIMIT_WAIT;
    }
    resp.header("x-hubspot-ratelimit-interval-milliseconds")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| (1..=86_400_000).contains(ms))
        .map(Duration::from_millis)
        .unwrap_or(WINDOW)
}

/// HubSpot's reading of a whole-call answer: 429 throttles for its window,
/// 423 (a lock) for two seconds, 477 (migration) for its Retry-After;
/// 401/403 pause; 408/5xx retry; other 4xx are permanent.
pub fn classify(resp: &VendorResponse) -> Class {
    let reason = || {
        let mut r = reason(resp.status, &resp.body);
        if resp.status == 429 {
            let remaining = resp.header("x-hubspot-ratelimit-remaining");
            let max = resp.header("x-hubspot-ratelimit-max");
            if let (Some(remaining), Some(max)) = (remaining, max) {
                r.push_str(&format!(" (remaining {remaining} of {max})"));
            }
        }
        r
    };
    match resp.status {
        200..=299 => Class::Success,
        429 => Class::Throttle {
            retry_after: throttle_for(resp),
            reason: reason(),
        },
        423 => Class::Throttle {
            retry_after: retry_after(&resp.headers).unwrap_or(LOCK_WAIT),
            reason: reason(),
        },
        477 => Class::Throttle {
            retry_after: retry_after(&resp.headers).unwrap_or(MIGRATION_WAIT),
            reason: reason(),
        },
        401 | 403 => Class::Pause { reason: reason() },
        408 | 425 | 500..=599 => Class::Retry { reason: reason() },
        _ => Class::Permanent { reason: reason() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> VendorResponse {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        VendorResponse {
            status,
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn ten_secondly_429_waits_the_window_and_daily_an_hour() {
        let body = r#"{"status":"error","message":"You have reached your ten secondly limit.","errorType":"RATE_LIMIT","correlationId":"c","policyName":"TEN_SECONDLY_ROLLING"}"#;
        let r = resp(
            429,
            &[
                ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
                ("x-hubspot-ratelimit-max", "100"),
                ("x-hubspot-ratelimit-remaining", "0"),
            ],
            body,
        );
        match classify(&r) {
            Class::Throttle {
                retry_after,
                reason,
            } => {
                assert_eq!(retry_after, Duration::from_secs(10));
                assert!(reason.contains("ten secondly limit"), "{reason}");
                assert!(reason.contains("remaining 0 of 100"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let daily = body.replace("TEN_SECONDLY_ROLLING", "DAILY");
        assert_eq!(throttle_for(&resp(429, &[], &daily)), DAILY_LIMIT_WAIT);
        assert_eq!(
            throttle_for(&resp(429, &[("retry-after", "3")], body)),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn error_bodies_give_category_and_message() {
        let r = reason(
            400,
            br#"{"status":"error","message":"Property values were not valid","correlationId":"x","category":"VALIDATION_ERROR"}"#,
        );
        assert_eq!(
            r,
            "HTTP 400 VALIDATION_ERROR: Property values were not valid"
        );
        assert_eq!(
            reason(502, b"<html>bad gateway</html>"),
            "HTTP 502: <html>bad gateway</html>"
        );
        assert!(matches!(
            classify(&resp(423, &[], "")),
            Class::Throttle { retry_after, .. } if retry_after == LOCK_WAIT
        ));
    }
}
