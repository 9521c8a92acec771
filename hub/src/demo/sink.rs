//! A local receiver for the demo and the benchmark: verifies each delivery's
//! Standard Webhooks signature and reports it over a channel. It can be told
//! to refuse a subject's first delivery, to show a retry.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use connectors::standard_webhooks::{self, WebhookSecret};
use connectors::webhook::WebhookEvent;
use tokio::sync::mpsc;

/// One delivery as the sink saw it.
#[derive(Debug)]
pub struct Received {
    pub at: Instant,
    pub event: WebhookEvent,
    pub signature_ok: bool,
    /// The status the sink answered.
    pub status: u16,
}

#[derive(Clone)]
struct SinkState {
    secret: WebhookSecret,
    tx: mpsc::UnboundedSender<Received>,
    /// `data.external_id` values to refuse once with 503.
    refuse_once: Arc<Mutex<HashSet<String>>>,
    verify: bool,
}

pub struct Sink {
    pub addr: SocketAddr,
    pub rx: mpsc::UnboundedReceiver<Received>,
    _task: tokio::task::JoinHandle<()>,
}

impl Sink {
    pub async fn start(
        secret: WebhookSecret,
        refuse_once: &[&str],
        verify: bool,
    ) -> std::io::Result<Sink> {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = SinkState {
            secret,
            tx,
            refuse_once: Arc::new(Mutex::new(
                refuse_once.iter().map(|s| s.to_string()).collect(),
            )),
            verify,
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
            _task: task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
}

async fn receive(State(s): State<SinkState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let Ok(event) = serde_json::from_slice::<WebhookEvent>(&body) else {
        return StatusCode::BAD_REQUEST;
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
    let external = event
        .data
        .get("external_id")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let refuse = s
        .refuse_once
        .lock()
        .map(|mut set| set.remove(&external))
        .unwrap_or(false);
    let status = if !signature_ok {
        StatusCode::UNAUTHORIZED
    } else if refuse {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    };
    let _ = s.tx.send(Received {
        at,
        event,
        signature_ok,
        status: status.as_u16(),
    });
    status
}
