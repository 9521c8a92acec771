//! Klaviyo's rate limits as the fake models them: fixed windows per
//! endpoint, a burst per second and a steady rate per minute.

use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use axum::response::Response;

use super::{App, error};

/// The endpoints' rate limits (burst per second, steady per minute), by the
/// first path segment after `/api/`, from `x-klaviyo-ratelimit`.
pub(super) const LIMITS: &[(&str, u32, u32)] = &[
    ("profiles", 75, 750),
    ("profile-import", 75, 750),
    ("profile-bulk-import-jobs", 10, 150),
    ("profile-subscription-bulk-create-jobs", 75, 750),
    ("profile-subscription-bulk-delete-jobs", 75, 750),
    ("data-privacy-deletion-jobs", 3, 60),
];

/// Fixed windows of one endpoint.
#[derive(Debug)]
pub(super) struct Windows {
    pub(super) burst: u32,
    pub(super) steady: u32,
    pub(super) burst_start: Instant,
    pub(super) burst_count: u32,
    pub(super) steady_start: Instant,
    pub(super) steady_count: u32,
}

/// Counts the call in its endpoint's windows: the RateLimit headers, or a 429.
pub(super) fn take_call(
    app: &App,
    endpoint: &str,
) -> Result<Vec<(&'static str, String)>, Box<Response>> {
    let mut limits = app.limits.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let w = limits.entry(endpoint.to_string()).or_insert_with(|| {
        let (burst, steady) = LIMITS
            .iter()
            .find(|(e, _, _)| *e == endpoint)
            .map(|(_, b, s)| (*b, *s))
            .unwrap_or((75, 750));
        Windows {
            burst,
            steady,
            burst_start: now,
            burst_count: 0,
            steady_start: now,
            steady_count: 0,
        }
    });
    if now.duration_since(w.burst_start) >= Duration::from_secs(1) {
        w.burst_start = now;
        w.burst_count = 0;
    }
    if now.duration_since(w.steady_start) >= Duration::from_secs(60) {
        w.steady_start = now;
        w.steady_count = 0;
    }
    let left = |start: Instant, len: u64| {
        let end = start + Duration::from_secs(len);
        end.saturating_duration_since(now)
            .as_secs_f64()
            .ceil()
            .max(1.0) as u64
    };
    let wait = if w.steady_count >= w.steady {
        Some(left(w.steady_start, 60))
    } else if w.burst_count >= w.burst {
        Some(left(w.burst_start, 1))
    } else {
        None
    };
    if let Some(secs) = wait {
        let mut answer = error(
            429,
            "throttled",
            "Request was throttled.",
            &format!("Request was throttled. Expected available in {secs} second(s)."),
            None,
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            answer.headers_mut().insert("retry-after", v);
        }
        return Err(Box::new(answer));
    }
    w.burst_count += 1;
    w.steady_count += 1;
    Ok(vec![
        ("ratelimit-limit", w.steady.to_string()),
        (
            "ratelimit-remaining",
            (w.steady - w.steady_count).to_string(),
        ),
        ("ratelimit-reset", left(w.steady_start, 60).to_string()),
    ])
}
