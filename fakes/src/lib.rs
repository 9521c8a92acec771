//! Fakes of the destinations' APIs, for tests and `hub bench`: small axum
//! apps on loopback that check every request the way the vendor would
//! (against the vendor's own API description in `shared/vendor-specs`, plus
//! the rules those descriptions leave out: auth, batch and byte limits) and
//! answer as the vendor does, errors, rate limits and asynchronous jobs
//! included. A request that does not validate is answered with the vendor's
//! error and recorded as a [`Journal::violations`] entry, which every test
//! asserts is empty.
//!
//! Shared parts: [`openapi::Spec`] (request checks), [`Journal`] (what
//! arrived, what was wrong, answers forced by the test) and [`serve`].

pub mod braze;
pub mod graphql;
pub mod hubspot;
pub mod klaviyo;
pub mod mailchimp;
pub mod openapi;
pub mod reply;
pub mod rudderstack;
pub mod salesforce;
pub mod segment;
pub mod shopify;
pub mod yaml;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Lowercased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Recorded {
    /// Reads an axum request whole.
    pub async fn read(req: axum::extract::Request) -> Recorded {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        let query = parts
            .uri
            .query()
            .map(|q| {
                url_pairs(q)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Recorded {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            query,
            headers: header_pairs(&parts.headers),
            body,
            at: Instant::now(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// What [`openapi::Spec::check`] reads.
    pub fn parts(&self) -> openapi::RequestParts<'_> {
        openapi::RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// `a=1&b=x%20y` as decoded pairs.
pub(crate) fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], decoded) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer a test forces on the next request(s), before the vendor logic.
#[derive(Debug, Clone)]
pub enum Forced {
    /// Answer this status, headers and body.
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Hold the request this long, then answer normally.
    Hold(Duration),
}

impl Forced {
    pub fn reply(status: u16, headers: &[(&str, &str)], body: impl Into<String>) -> Forced {
        Forced::Reply {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }

    pub fn into_response(self) -> Option<Response> {
        match self {
            Forced::Reply {
                status,
                headers,
                body,
            } => {
                let mut resp = Response::builder().status(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                );
                for (k, v) in headers {
                    resp = resp.header(k, v);
                }
                Some(
                    resp.body(Body::from(body))
                        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
                )
            }
            Forced::Hold(_) => None,
        }
    }
}

#[derive(Debug, Default)]
struct JournalState {
    requests: Vec<Recorded>,
    violations: Vec<String>,
    forced: VecDeque<Forced>,
}

/// What a fake saw and what the test asked it to do.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<JournalState>>);

impl Journal {
    fn state(&self) -> std::sync::MutexGuard<'_, JournalState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, req: &Recorded) {
        self.state().requests.push(req.clone());
    }

    /// Notes a way a request differs from what the vendor accepts.
    pub fn violation(&self, what: impl Into<String>) {
        self.state().violations.push(what.into());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Recorded> {
        self.state()
            .requests
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    /// Panics with every violation seen.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(
            v.is_empty(),
            "requests the vendor would refuse:\n{}",
            v.join("\n")
        );
    }

    /// The next request(s) get these answers, in order.
    pub fn force(&self, answers: impl IntoIterator<Item = Forced>) {
        self.state().forced.extend(answers);
    }

    /// Takes the next forced answer, if any.
    pub fn next_forced(&self) -> Option<Forced> {
        self.state().forced.pop_front()
    }

    /// Waits until `pred` holds for the requests seen; panics after `within`.
    pub async fn wait_for(
        &self,
        within: Duration,
        what: &str,
        pred: impl Fn(&[Recorded]) -> bool,
    ) -> Vec<Recorded> {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.requests();
            if pred(&seen) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "fake: {what} did not happen within {within:?}; {} request(s) seen: {:?}",
                seen.len(),
                seen.iter()
                    .map(|r| format!("{} {}", r.method, r.path))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`: enough to catch a wrong format.
pub fn is_rfc3339(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (ts.ends_with('Z') || ts.ends_with('z') || {
            let tail = &b[b.len() - 6..];
            (tail[0] == b'+' || tail[0] == b'-') && tail[3] == b':'
        })
}

/// Applies a forced answer: a reply ends the request; a hold waits first.
pub async fn forced_answer(journal: &Journal) -> Option<Response> {
    let forced = journal.next_forced()?;
    if let Forced::Hold(d) = forced {
        tokio::time::sleep(d).await;
        return None;
    }
    forced.into_response()
}

/// A fake listening on loopback; stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `app` on a free loopback port.
pub async fn serve(app: axum::Router) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Running {
        addr,
        url: format!("http://{addr}"),
        task,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded() {
        assert_eq!(
            url_pairs("a=1&b=x%20y+z&c"),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "x y z".to_string()),
                ("c".to_string(), String::new())
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
