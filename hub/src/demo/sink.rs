//! A local receiver for the demo and the benchmark: verifies each delivery's
//! Standard Webhooks signature and reports it over a channel, one
//! [`Received`] per event (a batch POST reports each of its events). It can
//! be told to refuse a subject's first delivery, to show a retry, or to hold
//! every call, to play a destination that hangs.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use connectors::standard_webhooks::{self, WebhookSecret};
use connectors::webhook::{WebhookBatch, WebhookEvent};
use tokio::sync::mpsc;

/// One delivery as the sink saw it.
#[derive(Debug)]
pub struct Received {
    pub at: Instant,
    pub event: WebhookEvent,
    pub signature_ok: bool,
    /// The status the sink answered.
    pub status: u16,
    /// Events in the POST this one came in (1 for a single event).
    pub batch: usize,
}

/// Calls a sink answered, and the events they carried.
#[derive(Debug, Default)]
pub struct SinkCounts {
    /// Calls that arrived (counted before any hold).
    pub calls: AtomicU64,
    /// Events in the calls answered.
    pub events: AtomicU64,
}

impl SinkCounts {
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Events per call so far (0 before the first call).
    pub fn mean_batch(&self) -> f64 {
        let calls = self.calls();
        if calls == 0 {
            0.0
        } else {
            self.events() as f64 / calls as f64
        }
    }
}

#[derive(Clone)]
struct SinkState {
    secret: WebhookSecret,
    tx: mpsc::UnboundedSender<Received>,
    /// `data.external_id` values to refuse once with 503.
    refuse_once: Arc<Mutex<HashSet<String>>>,
    verify: bool,
    /// Every call is held this long before it is answered (a hanging
    /// destination: longer than the connector's timeout).
    hold: Option<Duration>,
    counts: Arc<SinkCounts>,
}

pub struct Sink {
    pub addr: SocketAddr,
    pub rx: mpsc::UnboundedReceiver<Received>,
    pub counts: Arc<SinkCounts>,
    _task: tokio::task::JoinHandle<()>,
}

impl Sink {
    pub async fn start(
        secret: WebhookSecret,
        refuse_once: &[&str],
        verify: bool,
    ) -> std::io::Result<Sink> {
        Self::start_with(secret, refuse_once, verify, None).await
    }

    /// A sink that holds every call for `hold` before answering, when set.
    pub async fn start_with(
        secret: WebhookSecret,
        refuse_once: &[&str],
        verify: bool,
        hold: Option<Duration>,
    ) -> std::io::Result<Sink> {
        let (tx, rx) = mpsc::unbounded_channel();
        let counts = Arc::new(SinkCounts::default());
        let state = SinkState {
            secret,
            tx,
            refuse_once: Arc::new(Mutex::new(
                refuse_once.iter().map(|s| s.to_string()).collect(),
            )),
            verify,
            hold,
            counts: counts.clone(),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sink {
            addr,
            rx,
            counts,
            _task: task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
}

async fn receive(State(s): State<SinkState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    s.counts.calls.fetch_add(1, Ordering::Relaxed);
    if let Some(hold) = s.hold {
        tokio::time::sleep(hold).await;
    }
    let at = Instant::now();
    let events = match serde_json::from_slice::<WebhookBatch>(&body) {
        Ok(batch) if batch.batch_type == "batch" => batch.events,
        _ => match serde_json::from_slice::<WebhookEvent>(&body) {
            Ok(event) => vec![event],
            Err(_) => return StatusCode::BAD_REQUEST,
        },
    };
    let signature_ok = !s.verify || {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        standard_webhooks::verify(
            std::slice::from_ref(&s.secret),
            h(standard_webhooks::HEADER_ID),
            h(standard_webhooks::HEADER_TIMESTAMP),
            h(standard_webhooks::HEADER_SIGNATURE),
            &body,
            chrono::Utc::now().timestamp(),
            300,
        )
        .is_ok()
    };
    // A batch is refused whole when any of its events is to be refused.
    let refuse = events.iter().any(|event| {
        let external = event
            .data
            .get("external_id")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        s.refuse_once
            .lock()
            .map(|mut set| set.remove(external))
            .unwrap_or(false)
    });
    let status = if !signature_ok {
        StatusCode::UNAUTHORIZED
    } else if refuse {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    };
    s.counts
        .events
        .fetch_add(events.len() as u64, Ordering::Relaxed);
    let batch = events.len();
    for event in events {
        let _ = s.tx.send(Received {
            at,
            event,
            signature_ok,
            status: status.as_u16(),
            batch,
        });
    }
    status
}
