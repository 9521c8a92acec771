//! The default classification of an HTTP answer, shared by connectors whose
//! vendor follows plain HTTP semantics.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::Outcome;

/// 2xx delivered; 408, 429 and 5xx retry (honouring `Retry-After`);
/// 401/403 pause the destination; any other status is permanent.
pub fn classify_response(status: u16, headers: &HeaderMap, body: &str) -> Outcome {
    let reason = || summarize_body(status, body);
    match status {
        200..=299 => Outcome::Delivered {
            status: Some(status),
        },
        408 | 425 | 429 | 500..=599 => Outcome::Retry {
            status: Some(status),
            retry_after: retry_after(headers),
            reason: reason(),
        },
        401 | 403 => Outcome::Paused {
            status: Some(status),
            reason: reason(),
        },
        _ => Outcome::Permanent {
            status: Some(status),
            reason: reason(),
        },
    }
}

/// A transport failure: the request may or may not have arrived, so retry.
pub fn classify_transport_error(err: &reqwest::Error) -> Outcome {
    let reason = if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        "connection failed".to_string()
    } else {
        "transport error".to_string()
    };
    Outcome::Retry {
        status: None,
        retry_after: None,
        reason,
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Keeps the first 512 bytes of a vendor's answer for the dead-letter record.
fn summarize_body(status: u16, body: &str) -> String {
    let mut end = body.len().min(512);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", &body[..end])
    }
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
        assert!(matches!(
            classify_response(204, &headers(None), ""),
            Outcome::Delivered { status: Some(204) }
        ));
    }

    #[test]
    fn temporary_statuses_retry_with_retry_after() {
        for s in [408, 429, 500, 502, 503] {
            assert!(matches!(
                classify_response(s, &headers(None), ""),
                Outcome::Retry { .. }
            ));
        }
        match classify_response(429, &headers(Some("2")), "") {
            Outcome::Retry { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(2)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn auth_failures_pause_and_other_client_errors_are_permanent() {
        assert!(matches!(
            classify_response(401, &headers(None), ""),
            Outcome::Paused { .. }
        ));
        match classify_response(400, &headers(None), "bad email") {
            Outcome::Permanent { status, reason } => {
                assert_eq!(status, Some(400));
                assert_eq!(reason, "HTTP 400: bad email");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_accepts_http_dates() {
        let future = std::time::SystemTime::now() + Duration::from_secs(120);
        let h = headers(Some(&httpdate::fmt_http_date(future)));
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        assert_eq!(retry_after(&headers(Some("soon"))), None);
    }
}
