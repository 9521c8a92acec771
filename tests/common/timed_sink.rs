//! A destination that records when each call started and when it was
//! answered, and answers as a closure decides (status, delay, body): for the
//! engine's ordering, overlap, batching and throttling tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;

/// One answered call.
#[derive(Debug, Clone)]
pub struct Call {
    pub start: Instant,
    pub end: Instant,
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Call {
    /// The events of the call: one for a single webhook, all of a batch.
    pub fn events(&self) -> Vec<Value> {
        match self.body.get("events").and_then(Value::as_array) {
            Some(list) if self.body["type"] == "batch" => list.clone(),
            _ => vec![self.body.clone()],
        }
    }
}

/// What the sink answers: status, how long it holds the call, and a body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub hold: Duration,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn ok() -> Answer {
        Answer {
            status: 200,
            hold: Duration::ZERO,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            ..Answer::ok()
        }
    }

    pub fn held(hold: Duration) -> Answer {
        Answer {
            hold,
            ..Answer::ok()
        }
    }
}

type Responder = Arc<dyn Fn(&Value) -> Answer + Send + Sync>;

pub struct TimedSink {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    /// Bodies of calls as they arrive (before they are answered).
    started: Arc<Mutex<Vec<(Instant, Value)>>>,
    responder: Arc<Mutex<Responder>>,
    task: tokio::task::JoinHandle<()>,
}

impl TimedSink {
    pub async fn start(respond: impl Fn(&Value) -> Answer + Send + Sync + 'static) -> TimedSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls: Arc<Mutex<Vec<Call>>> = Default::default();
        let started: Arc<Mutex<Vec<(Instant, Value)>>> = Default::default();
        let responder: Arc<Mutex<Responder>> = Arc::new(Mutex::new(Arc::new(respond)));
        let (c, r, st) = (calls.clone(), responder.clone(), started.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (calls, responder, started) = (c.clone(), r.clone(), st.clone());
            async move {
                let start = Instant::now();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                started.lock().unwrap().push((start, body.clone()));
                let respond = responder.lock().unwrap().clone();
                let answer = respond(&body);
                if !answer.hold.is_zero() {
                    tokio::time::sleep(answer.hold).await;
                }
                calls.lock().unwrap().push(Call {
                    start,
                    end: Instant::now(),
                    status: answer.status,
                    body,
                    headers,
                });
                let status = StatusCode::from_u16(answer.status).unwrap();
                let mut resp = match answer.body {
                    Some(b) => (status, axum::Json(b)).into_response(),
                    None => (status, "sink").into_response(),
                };
                for (k, v) in answer.headers {
                    resp.headers_mut().insert(
                        axum::http::HeaderName::try_from(k).unwrap(),
                        axum::http::HeaderValue::try_from(v).unwrap(),
                    );
                }
                resp
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TimedSink {
            addr,
            calls,
            started,
            responder,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers from now on as `respond` decides.
    pub fn respond(&self, respond: impl Fn(&Value) -> Answer + Send + Sync + 'static) {
        *self.responder.lock().unwrap() = Arc::new(respond);
    }

    /// Answered calls, in the order they were answered.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Calls as they arrived, answered or not.
    pub fn started(&self) -> Vec<(Instant, Value)> {
        self.started.lock().unwrap().clone()
    }

    /// Waits until at least `n` calls have arrived (answered or not).
    pub async fn wait_started(&self, within: Duration, n: usize) {
        let deadline = Instant::now() + within;
        while self.started().len() < n {
            assert!(
                Instant::now() < deadline,
                "sink: {} of {n} calls arrived within {within:?}",
                self.started().len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `done(calls)` holds; panics after `within`.
    pub async fn wait(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&[Call]) -> bool,
    ) -> Vec<Call> {
        let deadline = Instant::now() + within;
        loop {
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            assert!(
                Instant::now() < deadline,
                "sink: {what} did not happen within {within:?} ({} calls)",
                calls.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TimedSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Per subject, the answered events in answer order: (start, end, event).
pub fn by_subject(
    calls: &[Call],
) -> std::collections::HashMap<String, Vec<(Instant, Instant, Value)>> {
    let mut map: std::collections::HashMap<String, Vec<(Instant, Instant, Value)>> =
        Default::default();
    let mut sorted: Vec<&Call> = calls.iter().collect();
    sorted.sort_by_key(|c| c.end);
    for call in sorted {
        for e in call.events() {
            if let Some(s) = e["subject"].as_str() {
                map.entry(s.to_string())
                    .or_default()
                    .push((call.start, call.end, e.clone()));
            }
        }
    }
    map
}

/// Subjects two of whose calls were in flight at the same time.
pub fn overlapping_subjects(calls: &[Call]) -> Vec<String> {
    let mut out = Vec::new();
    for (subject, list) in by_subject(calls) {
        let mut spans: Vec<(Instant, Instant)> = list.iter().map(|(s, e, _)| (*s, *e)).collect();
        spans.sort();
        if spans.windows(2).any(|w| w[1].0 < w[0].1) {
            out.push(subject);
        }
    }
    out.sort();
    out
}
