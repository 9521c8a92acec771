//! What Segment and RudderStack share: their Segment-spec tracking API.
//! An `identify` event per subject, sent in one `POST /v1/batch` with the
//! source's write key as the Basic-auth user and an empty password, and a
//! per-event size limit that the connectors check before sending so that
//! one oversized event fails alone instead of taking its batch with it.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::{CallError, Http, VendorResponse};

/// Both vendors refuse (Segment) or drop (RudderStack's SDKs) events over this.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;

/// `Basic base64("<writeKey>:")`: the colon stays, the password is empty.
pub fn basic_write_key(write_key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{write_key}:"))
    )
}

/// One `identify` event of a batch.
pub fn identify(
    user_id: &str,
    traits: Map<String, Value>,
    context: Map<String, Value>,
    message_id: &str,
    timestamp: &str,
) -> Value {
    json!({
        "type": "identify",
        "userId": user_id,
        "traits": traits,
        "context": context,
        "messageId": message_id,
        "timestamp": timestamp,
    })
}

/// The encoded size of one event, as it sits in the batch array.
pub fn event_bytes(event: &Value) -> usize {
    serde_json::to_vec(event)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
        + 1
}

/// Now, RFC 3339 with milliseconds and `Z`.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `POST {url}` with `{"batch": events, "sentAt": now}`.
pub async fn post_batch(
    http: &Http<'_>,
    url: url::Url,
    write_key: &str,
    events: Vec<Value>,
) -> Result<VendorResponse, CallError> {
    let body = json!({"batch": events, "sentAt": now_rfc3339()});
    let body = serde_json::to_vec(&body).map_err(|_| CallError::Build)?;
    http.send(
        http.client()
            .post(url)
            .header(reqwest::header::AUTHORIZATION, basic_write_key(write_key))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body),
    )
    .await
}
