//! Destination connectors. A connector knows one vendor's API and nothing
//! else: it turns a batch of [`DeliveryItem`]s into requests, sent through the
//! `reqwest::Client` the engine hands it, and classifies each answer as an
//! [`Outcome`]. Retries, rate limits, batching, consent and logging belong to
//! the hub's delivery engine.
//!
//! Adding a connector: one module here, one variant of [`ConnectorKind`] and
//! its arm in [`build`], one example mapping in `mappings/`.

pub mod classify;
pub mod standard_webhooks;
pub mod webhook;

use std::time::Duration;

use serde::Serialize;

pub use classify::classify_response;

/// What the engine asks a destination to do for one subject.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Create or update the subject with these mapped fields.
    Upsert(serde_json::Map<String, serde_json::Value>),
    /// Delete the subject at the destination (erasure, deprovisioning).
    Delete,
    /// Keep the record but stop all processing/marketing for it.
    Suppress,
    /// Keep the record but unsubscribe it from marketing.
    Unsubscribe,
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Upsert(_) => "upsert",
            Action::Delete => "delete",
            Action::Suppress => "suppress",
            Action::Unsubscribe => "unsubscribe",
        }
    }
}

/// One unit of work for a connector.
#[derive(Clone, Debug)]
pub struct DeliveryItem {
    /// The hub's id of the subject; sent as the vendor's external id.
    pub subject_id: String,
    /// Stable across retries of the same delivery: the vendor's idempotency key.
    pub delivery_id: String,
    pub action: Action,
}

/// How one item fared. The engine decides what to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Delivered {
        status: Option<u16>,
    },
    /// Temporary failure (408, 429, 5xx, timeout, connection error).
    Retry {
        status: Option<u16>,
        retry_after: Option<Duration>,
        reason: String,
    },
    /// The destination refuses our credentials (401/403): keep the jobs, alert.
    Paused {
        status: Option<u16>,
        reason: String,
    },
    /// Will never succeed as sent (other 4xx): dead letter with the vendor's message.
    Permanent {
        status: Option<u16>,
        reason: String,
    },
}

impl Outcome {
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Delivered { status }
            | Outcome::Retry { status, .. }
            | Outcome::Paused { status, .. }
            | Outcome::Permanent { status, .. } => *status,
        }
    }
}

/// Requests per second a vendor allows, for the engine's limiter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

#[async_trait::async_trait]
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// The connector's name as written in mapping files.
    fn kind(&self) -> ConnectorKind;
    /// Largest batch the vendor accepts in one call.
    fn max_batch(&self) -> usize {
        1
    }
    fn rate_limit(&self) -> Option<RateLimit> {
        None
    }
    /// Sends `items`; returns exactly one outcome per item, in order.
    async fn send(&self, client: &reqwest::Client, items: &[DeliveryItem]) -> Vec<Outcome>;
}

/// Every connector the hub knows. The match in [`build`] is exhaustive, so a
/// new variant is a compile error until it is wired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectorKind {
    Webhook,
}

impl ConnectorKind {
    pub const ALL: &'static [ConnectorKind] = &[ConnectorKind::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Webhook => "webhook",
        }
    }

    pub fn parse(name: &str) -> Option<ConnectorKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("unknown connector {0:?}; known: {known}", known = known_names())]
    Unknown(String),
    #[error("invalid settings: {0}")]
    Settings(#[source] serde_json::Error),
    #[error("invalid settings: {0}")]
    Invalid(String),
    #[error("invalid secret: {0}")]
    Secret(#[from] standard_webhooks::SecretError),
}

fn known_names() -> String {
    ConnectorKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the connector a mapping file names, from its settings.
pub fn build(
    connector: &str,
    settings: &serde_json::Value,
) -> Result<Box<dyn Connector>, ConnectorError> {
    let kind =
        ConnectorKind::parse(connector).ok_or_else(|| ConnectorError::Unknown(connector.into()))?;
    Ok(match kind {
        ConnectorKind::Webhook => Box::new(webhook::WebhookConnector::from_settings(settings)?),
    })
}

/// reqwest is built without a default crypto provider; install ring's once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
