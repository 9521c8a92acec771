//! Salesforce's REST bodies and how its answers are read: per-record
//! SaveResults of sObject Collections, its error array, `Sforce-Limit-Info`
//! and `REQUEST_LIMIT_EXCEEDED` (Salesforce throttles with a 403, never 429).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::classify::{Class, cut, summarize_body};
use crate::http::VendorResponse;
use crate::{DestinationSignal, ItemOutcome};

/// sObject Collections take at most 200 records (or ids) per call.
pub const MAX_RECORDS: usize = 200;

/// `TotalRequests` is a rolling 24-hour allocation that Salesforce does not
/// say when it frees up: ask again after this.
pub const DAILY_LIMIT_WAIT: Duration = Duration::from_secs(600);
/// `ConcurrentRequests` (long-running calls of 20 s or more) frees up in
/// seconds.
pub const CONCURRENT_LIMIT_WAIT: Duration = Duration::from_secs(30);

/// `PATCH .../composite/sobjects/{sobject}/{externalIdField}`
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Collection {
    pub all_or_none: bool,
    pub records: Vec<Map<String, Value>>,
}

/// One record's result, in request order.
#[derive(Debug, Deserialize)]
pub struct SaveResult {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<RecordError>,
}

/// A per-record error (`statusCode`; top-level errors say `errorCode`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordError {
    #[serde(default)]
    pub status_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

/// A request-level error: `[{"message": "...", "errorCode": "..."}]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_code: String,
}

fn api_errors(body: &[u8]) -> Vec<ApiError> {
    serde_json::from_slice(body).unwrap_or_default()
}

pub fn is_invalid_session(body: &[u8]) -> bool {
    api_errors(body)
        .iter()
        .any(|e| e.error_code == "INVALID_SESSION_ID")
}

/// The status and Salesforce's error codes and messages.
pub fn reason(status: u16, body: &[u8]) -> String {
    let errors = api_errors(body);
    if errors.is_empty() {
        return summarize_body(status, body);
    }
    let text: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.error_code, e.message))
        .collect();
    cut(&format!("HTTP {status} {}", text.join("; ")), 600)
}

/// A whole-call answer read the Salesforce way: `REQUEST_LIMIT_EXCEEDED`
/// (403) throttles; other 401/403 pause; 408/5xx retry; other 3xx/4xx are
/// permanent.
pub fn classify(resp: &VendorResponse) -> Class {
    let reason = reason(resp.status, &resp.body);
    match resp.status {
        200..=299 => Class::Success,
        403 => match limit_wait(&resp.body) {
            Some(retry_after) => Class::Throttle {
                retry_after,
                reason,
            },
            None => Class::Pause { reason },
        },
        401 => Class::Pause { reason },
        408 | 429 | 500..=599 => Class::Retry { reason },
        _ => Class::Permanent { reason },
    }
}

fn limit_wait(body: &[u8]) -> Option<Duration> {
    let errors = api_errors(body);
    let limit = errors
        .iter()
        .find(|e| e.error_code == "REQUEST_LIMIT_EXCEEDED")?;
    Some(if limit.message.contains("Concurrent") {
        CONCURRENT_LIMIT_WAIT
    } else {
        DAILY_LIMIT_WAIT
    })
}

/// `Sforce-Limit-Info: api-usage=18/5000` as (used, max).
pub fn api_usage(resp: &VendorResponse) -> Option<(u64, u64)> {
    let value = resp.header("sforce-limit-info")?;
    let usage = value
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("api-usage="))?;
    let (used, max) = usage.split_once('/')?;
    Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
}

/// A throttle when the answer says the org's API allocation is spent, so
/// the next call does not waste itself on a 403.
pub fn usage_signal(resp: &VendorResponse) -> Option<DestinationSignal> {
    let (used, max) = api_usage(resp)?;
    (max > 0 && used >= max).then(|| DestinationSignal::Throttle {
        retry_after: DAILY_LIMIT_WAIT,
        reason: format!("Salesforce API requests used: {used} of {max} (Sforce-Limit-Info)"),
    })
}

/// What a record's result means for its item.
pub fn record_outcome(result: &SaveResult) -> ItemOutcome {
    if result.success {
        return ItemOutcome::Delivered {
            record_id: result.id.clone(),
        };
    }
    let reason = cut(
        &format!(
            "Salesforce {}",
            result
                .errors
                .iter()
                .map(|e| {
                    if e.fields.is_empty() {
                        format!("{}: {}", e.status_code, e.message)
                    } else {
                        format!("{}: {} ({})", e.status_code, e.message, e.fields.join(", "))
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        ),
        600,
    );
    let temporary = result.errors.iter().all(|e| {
        matches!(
            e.status_code.as_str(),
            "UNABLE_TO_LOCK_ROW"
                | "ALL_OR_NONE_OPERATION_ROLLED_BACK"
                | "SERVER_UNAVAILABLE"
                | "REQUEST_RUNNING_TOO_LONG"
        )
    }) && !result.errors.is_empty();
    if temporary {
        ItemOutcome::Retry { reason }
    } else {
        ItemOutcome::Permanent { reason }
    }
}

/// A delete result for a record that is gone already.
pub fn already_deleted(result: &SaveResult) -> bool {
    result
        .errors
        .iter()
        .any(|e| e.status_code == "ENTITY_IS_DELETED")
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn resp(status: u16, limit: Option<&str>, body: &str) -> VendorResponse {
        let mut headers = HeaderMap::new();
        if let Some(l) = limit {
            headers.insert("sforce-limit-info", HeaderValue::from_str(l).unwrap());
        }
        VendorResponse {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn request_limit_exceeded_throttles_and_other_403s_pause() {
        let total =
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert!(matches!(
            classify(&resp(403, None, total)),
            Class::Throttle { retry_after, .. } if retry_after == DAILY_LIMIT_WAIT
        ));
        let concurrent = r#"[{"message":"ConcurrentRequests (Concurrent API Requests) Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert!(matches!(
            classify(&resp(403, None, concurrent)),
            Class::Throttle { retry_after, .. } if retry_after == CONCURRENT_LIMIT_WAIT
        ));
        let denied =
            r#"[{"message":"API is disabled for this User","errorCode":"API_DISABLED_FOR_ORG"}]"#;
        assert!(matches!(
            classify(&resp(403, None, denied)),
            Class::Pause { .. }
        ));
    }

    #[test]
    fn sforce_limit_info_is_read() {
        let r = resp(200, Some("api-usage=5000/5000"), "[]");
        assert_eq!(api_usage(&r), Some((5000, 5000)));
        assert!(usage_signal(&r).is_some());
        assert!(usage_signal(&resp(200, Some("api-usage=18/5000"), "[]")).is_none());
        assert!(usage_signal(&resp(200, None, "[]")).is_none());
    }

    #[test]
    fn record_errors_carry_code_message_and_fields() {
        let result: SaveResult = serde_json::from_str(
            r#"{"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [LastName]","fields":["LastName"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            record_outcome(&result),
            ItemOutcome::Permanent {
                reason: "Salesforce REQUIRED_FIELD_MISSING: Required fields are missing: [LastName] (LastName)".into()
            }
        );
        let locked: SaveResult = serde_json::from_str(
            r#"{"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access to this record"}]}"#,
        )
        .unwrap();
        assert!(matches!(record_outcome(&locked), ItemOutcome::Retry { .. }));
    }
}
