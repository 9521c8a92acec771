//! The default classification of an HTTP answer, for vendors that follow
//! plain HTTP semantics. Connectors whose vendors say more (per-item
//! results, error codes in a 200) classify those themselves and fall back
//! to this for the rest.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::{DestinationSignal, ItemOutcome};

/// When a vendor throttles without saying for how long.
pub const DEFAULT_THROTTLE: Duration = Duration::from_secs(1);

/// What an HTTP status means for the items of the call that got it.
#[derive(Clone, Debug, PartialEq)]
pub enum Class {
    Success,
    /// 408, 425, 5xx: try again later.
    Retry {
        reason: String,
    },
    /// 429: the destination waits `retry_after` (the vendor's Retry-After, or
    /// [`DEFAULT_THROTTLE`]).
    Throttle {
        retry_after: Duration,
        reason: String,
    },
    /// 401/403: our credentials are refused; the destination pauses.
    Pause {
        reason: String,
    },
    /// Any other 4xx (and 3xx): will never succeed as sent.
    Permanent {
        reason: String,
    },
}

impl Class {
    /// The same class with the vendor's own message (read from its error
    /// body) instead of the generic summary.
    pub fn with_reason(self, reason: String) -> Class {
        match self {
            Class::Success => Class::Success,
            Class::Retry { .. } => Class::Retry { reason },
            Class::Throttle { retry_after, .. } => Class::Throttle {
                retry_after,
                reason,
            },
            Class::Pause { .. } => Class::Pause { reason },
            Class::Permanent { .. } => Class::Permanent { reason },
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Class::Success => "delivered",
            Class::Retry { reason }
            | Class::Throttle { reason, .. }
            | Class::Pause { reason }
            | Class::Permanent { reason } => reason,
        }
    }

    /// What each item of the call gets: delivered (no record id), dead
    /// letter, or retry (a throttle or pause holds the item back; the
    /// destination's [`Class::signal`] says why).
    pub fn item_outcome(&self) -> ItemOutcome {
        match self {
            Class::Success => ItemOutcome::Delivered { record_id: None },
            Class::Permanent { reason } => ItemOutcome::Permanent {
                reason: reason.clone(),
            },
            other => ItemOutcome::Retry {
                reason: other.reason().to_string(),
            },
        }
    }

    /// What the answer says about the whole destination: throttle or pause.
    pub fn signal(&self) -> Option<DestinationSignal> {
        match self {
            Class::Throttle {
                retry_after,
                reason,
            } => Some(DestinationSignal::Throttle {
                retry_after: *retry_after,
                reason: reason.clone(),
            }),
            Class::Pause { reason } => Some(DestinationSignal::Pause {
                reason: reason.clone(),
            }),
            _ => None,
        }
    }
}

/// 2xx success; 429 (and 503 with `Retry-After`) throttles for the time the
/// vendor asks; 408, 425 and other 5xx
/// retry; 401/403 pause the destination; any other status is permanent.
pub fn classify_status(status: u16, headers: &HeaderMap, body: &[u8]) -> Class {
    let reason = || summarize_body(status, body);
    match status {
        200..=299 => Class::Success,
        429 => Class::Throttle {
            retry_after: retry_after(headers).unwrap_or(DEFAULT_THROTTLE),
            reason: reason(),
        },
        // A 503 that says when to come back is the vendor pacing us.
        503 if retry_after(headers).is_some() => Class::Throttle {
            retry_after: retry_after(headers).unwrap_or(DEFAULT_THROTTLE),
            reason: reason(),
        },
        408 | 425 | 500..=599 => Class::Retry { reason: reason() },
        401 | 403 => Class::Pause { reason: reason() },
        _ => Class::Permanent { reason: reason() },
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The status and the first 512 bytes of a vendor's answer, for the
/// dead-letter record.
pub fn summarize_body(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut end = text.len().min(512);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", &text[..end])
    }
}

/// `text` cut to at most `max` bytes, on a character boundary: vendor
/// messages quoted into a dead letter stay short.
pub fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = retry {
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn success_statuses_are_delivered() {
        assert_eq!(classify_status(204, &headers(None), b""), Class::Success);
    }

    #[test]
    fn temporary_statuses_retry_and_429_throttles_for_retry_after() {
        for s in [408, 500, 502, 503] {
            assert!(matches!(
                classify_status(s, &headers(None), b""),
                Class::Retry { .. }
            ));
        }
        match classify_status(429, &headers(Some("2")), b"") {
            Class::Throttle { retry_after, .. } => assert_eq!(retry_after, Duration::from_secs(2)),
            other => panic!("{other:?}"),
        }
        match classify_status(429, &headers(None), b"") {
            Class::Throttle { retry_after, .. } => assert_eq!(retry_after, DEFAULT_THROTTLE),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn auth_failures_pause_and_other_client_errors_are_permanent() {
        assert!(matches!(
            classify_status(401, &headers(None), b""),
            Class::Pause { .. }
        ));
        assert_eq!(
            classify_status(400, &headers(None), b"bad email"),
            Class::Permanent {
                reason: "HTTP 400: bad email".into()
            }
        );
    }

    #[test]
    fn retry_after_accepts_http_dates() {
        let future = std::time::SystemTime::now() + Duration::from_secs(120);
        let h = headers(Some(&httpdate::fmt_http_date(future)));
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        assert_eq!(retry_after(&headers(Some("soon"))), None);
        assert_eq!(
            retry_after(&headers(Some("1.5"))),
            Some(Duration::from_millis(1500))
        );
    }
}
