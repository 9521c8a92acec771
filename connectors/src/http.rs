//! The only way a connector reaches its vendor: [`Http::send`] waits for the
//! destination's rate limit (through the engine's [`CallGate`]), bounds the
//! call and the reading of its body by a deadline, and tells the gate how
//! the call went (for adaptive concurrency and metrics).

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

/// Answers are read into memory up to this size; the rest is cut off.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// What the engine puts around every vendor call.
#[async_trait::async_trait]
pub trait CallGate: Send + Sync {
    /// Waits until the destination's shared rate limit allows one more call.
    async fn acquire(&self);
    /// How a call went: its status (None: no answer) and latency.
    fn record(&self, status: Option<u16>, latency: Duration);
}

/// A gate that lets every call through: for tests and previews.
pub struct OpenGate;

#[async_trait::async_trait]
impl CallGate for OpenGate {
    async fn acquire(&self) {}
    fn record(&self, _: Option<u16>, _: Duration) {}
}

/// A vendor's answer, body read.
#[derive(Debug, Clone)]
pub struct VendorResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl VendorResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A call that got no answer. The request may or may not have arrived, so
/// the items retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("timed out")]
    Timeout,
    #[error("connection failed")]
    Connect,
    #[error("transport error")]
    Transport,
    /// The request could not be built (a connector bug, or a setting that
    /// makes an invalid URL).
    #[error("request could not be built")]
    Build,
}

/// The engine's HTTP client for one destination, handed to the connector.
pub struct Http<'a> {
    client: &'a reqwest::Client,
    gate: &'a dyn CallGate,
    deadline: Duration,
}

impl<'a> Http<'a> {
    pub fn new(client: &'a reqwest::Client, gate: &'a dyn CallGate, deadline: Duration) -> Self {
        Self {
            client,
            gate,
            deadline,
        }
    }

    /// For building requests; send them with [`Http::send`].
    pub fn client(&self) -> &reqwest::Client {
        self.client
    }

    /// How long one call may take, answer included.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Sends one request: waits for the rate limit, then calls and reads the
    /// answer within the deadline.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<VendorResponse, CallError> {
        let request = request.build().map_err(|_| CallError::Build)?;
        self.gate.acquire().await;
        let started = Instant::now();
        let result = tokio::time::timeout(self.deadline, self.call(request))
            .await
            .unwrap_or(Err(CallError::Timeout));
        self.gate
            .record(result.as_ref().ok().map(|r| r.status), started.elapsed());
        result
    }

    async fn call(&self, request: reqwest::Request) -> Result<VendorResponse, CallError> {
        let mut resp = self.client.execute(request).await.map_err(classify)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            let room = MAX_BODY.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room < chunk.len() {
                break;
            }
        }
        Ok(VendorResponse {
            status,
            headers,
            body,
        })
    }
}

fn classify(err: reqwest::Error) -> CallError {
    if err.is_timeout() {
        CallError::Timeout
    } else if err.is_connect() {
        CallError::Connect
    } else if err.is_builder() {
        CallError::Build
    } else {
        CallError::Transport
    }
}
