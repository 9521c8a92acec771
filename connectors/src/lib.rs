//! Destination connectors. A connector knows one vendor's API and nothing
//! else: it turns one batch of [`Item`]s into requests, sent through the
//! [`Http`] handle the engine gives it, and answers with an [`ItemOutcome`]
//! per item (by index) plus, when the vendor says so, a destination-wide
//! [`DestinationSignal`] (throttle, pause). Retries, rate limits, batching,
//! consent, logging and every store write belong to the hub's delivery engine.
//!
//! Adding a connector: one module here, one variant of [`ConnectorKind`] and
//! its arm in [`build`], one example mapping in `mappings/`, and its fake.

pub mod braze;
pub mod classify;
pub mod http;
pub mod hubspot;
pub mod klaviyo;
pub mod mailchimp;
pub mod partition;
pub mod rudderstack;
pub mod salesforce;
pub mod segment;
pub mod settings;
pub mod shopify;
pub mod standard_webhooks;
pub mod tracking;
pub mod webhook;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use classify::{Class, classify_status};
pub use http::{CallError, CallGate, Http, VendorResponse};

/// What the engine asks a destination to do for one subject.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Create or update the subject with these mapped fields.
    Upsert(Map<String, Value>),
    /// Delete the subject at the destination (erasure, deprovisioning).
    Delete,
    /// Keep the record but stop all processing/marketing for it.
    Suppress,
    /// Keep the record but unsubscribe it from marketing.
    Unsubscribe,
}

/// An [`Action`] without its payload: what batches are grouped by and what
/// the store records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Upsert,
    Delete,
    Suppress,
    Unsubscribe,
}

impl ActionKind {
    pub const ALL: [ActionKind; 4] = [
        ActionKind::Upsert,
        ActionKind::Delete,
        ActionKind::Suppress,
        ActionKind::Unsubscribe,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Upsert => "upsert",
            ActionKind::Delete => "delete",
            ActionKind::Suppress => "suppress",
            ActionKind::Unsubscribe => "unsubscribe",
        }
    }

    pub fn parse(text: &str) -> Option<ActionKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Upsert(_) => ActionKind::Upsert,
            Action::Delete => ActionKind::Delete,
            Action::Suppress => ActionKind::Suppress,
            Action::Unsubscribe => ActionKind::Unsubscribe,
        }
    }
}

/// One unit of work for a connector: one subject, one action.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The hub's id of the subject; sent as the vendor's external id.
    pub subject_id: String,
    /// Stable across retries of the same delivery: the vendor's idempotency key.
    pub delivery_id: String,
    pub action: Action,
    /// The identity fields the connector declared ([`Connector::identity_fields`])
    /// with the values the destination knows the subject by: for an upsert
    /// the mapped values, for a delete or withdrawal the values last
    /// delivered (an email may have changed since).
    pub identity: Map<String, Value>,
    /// The vendor's own id for this subject, as returned by an earlier
    /// [`ItemOutcome::Delivered`].
    pub record_id: Option<String>,
    /// The subject's consent per purpose (for a brand's destination, that
    /// brand's answer). Purposes without a record are absent: not granted.
    pub consent: BTreeMap<String, bool>,
}

impl Item {
    /// A subject's consent to `purpose`: fails closed.
    pub fn granted(&self, purpose: &str) -> bool {
        self.consent.get(purpose).copied().unwrap_or(false)
    }

    /// The identity value `field` as text, if it is one.
    pub fn identity_str(&self, field: &str) -> Option<&str> {
        self.identity.get(field).and_then(Value::as_str)
    }

    /// The mapped fields of an upsert (empty for other actions).
    pub fn fields(&self) -> Option<&Map<String, Value>> {
        match &self.action {
            Action::Upsert(fields) => Some(fields),
            _ => None,
        }
    }
}

/// How the engine may group items for one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchPolicy {
    /// Items per call at most.
    pub max_items: usize,
    /// Encoded size per call at most, as [`Connector::item_bytes`] counts it.
    pub max_bytes: Option<usize>,
    /// Whether items of different [`ActionKind`]s may share a call. When
    /// false, every batch holds one kind.
    pub mixed_actions: bool,
}

impl BatchPolicy {
    /// One item per call.
    pub const SINGLE: BatchPolicy = BatchPolicy {
        max_items: 1,
        max_bytes: None,
        mixed_actions: false,
    };
}

/// Calls a vendor allows: `calls` per `per`, for all hub processes together.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub calls: u32,
    pub per: Duration,
}

impl RateLimit {
    pub fn per_second(calls: u32) -> Self {
        Self {
            calls,
            per: Duration::from_secs(1),
        }
    }

    /// The spacing between two calls that keeps to the limit.
    pub fn interval(&self) -> Duration {
        self.per / self.calls.max(1)
    }
}

/// How one item fared. The engine decides what happens next.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemOutcome {
    /// Done; `record_id` is the vendor's id for the subject when it has one
    /// (kept and handed back in [`Item::record_id`]).
    Delivered { record_id: Option<String> },
    /// The vendor took the work as an asynchronous job: the engine keeps the
    /// delivery open and asks [`Connector::check`] about `ticket` after
    /// `check_after`, until it is confirmed or failed.
    Accepted {
        ticket: String,
        check_after: Duration,
    },
    /// Temporary failure (5xx, timeout, connection error, vendor busy).
    Retry { reason: String },
    /// Will never succeed as sent: dead letter with the vendor's message.
    Permanent { reason: String },
}

/// What one answer says about the whole destination, not just its items.
#[derive(Clone, Debug, PartialEq)]
pub enum DestinationSignal {
    /// The vendor asks us to slow down (429 with Retry-After, a rate-limit
    /// header, an empty cost bucket): no call before `retry_after` has passed.
    Throttle {
        retry_after: Duration,
        reason: String,
    },
    /// The vendor refuses our credentials (401/403): stop calling, keep the
    /// jobs, probe now and then.
    Pause { reason: String },
}

/// The answer to one batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchResult {
    /// The HTTP status of the (last) call, for the attempt record.
    pub status: Option<u16>,
    /// (index into the batch, outcome). An item missing here is retried.
    pub outcomes: Vec<(usize, ItemOutcome)>,
    pub signal: Option<DestinationSignal>,
}

impl BatchResult {
    /// The same outcome for every item of a batch of `len`.
    pub fn uniform(len: usize, status: Option<u16>, outcome: ItemOutcome) -> Self {
        Self {
            status,
            outcomes: (0..len).map(|i| (i, outcome.clone())).collect(),
            signal: None,
        }
    }

    pub fn with_signal(mut self, signal: DestinationSignal) -> Self {
        self.signal = Some(signal);
        self
    }

    /// Takes in the answer to a call made for some items of this batch:
    /// `part`'s outcome `k` is that of item `indices[k]`. Its status becomes
    /// the batch's (the last call's); the first signal seen is kept.
    pub fn absorb(&mut self, indices: &[usize], part: BatchResult) {
        if part.status.is_some() {
            self.status = part.status;
        }
        if self.signal.is_none() {
            self.signal = part.signal;
        }
        self.outcomes.extend(
            part.outcomes
                .into_iter()
                .filter_map(|(k, o)| indices.get(k).map(|&i| (i, o))),
        );
    }

    /// A call that failed before any answer: every item retries.
    pub fn transport(len: usize, err: &CallError) -> Self {
        Self::uniform(
            len,
            None,
            ItemOutcome::Retry {
                reason: err.to_string(),
            },
        )
    }

    /// A whole-call answer classified by [`classify_status`]: every item gets
    /// the same outcome, and throttle or pause become the destination's signal.
    pub fn from_class(len: usize, status: u16, class: Class) -> Self {
        Self {
            signal: class.signal(),
            ..Self::uniform(len, Some(status), class.item_outcome())
        }
    }
}

/// An asynchronous vendor job the engine asks about: the ticket
/// [`ItemOutcome::Accepted`] returned and the item it was for.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticket {
    pub ticket: String,
    pub item: Item,
}

/// Where an asynchronous vendor job stands.
#[derive(Clone, Debug, PartialEq)]
pub enum TicketStatus {
    /// Still running: ask again after this.
    Pending { check_after: Duration },
    /// Done at the vendor.
    Confirmed { record_id: Option<String> },
    /// The vendor gave up on it: the delivery retries (with a new job at
    /// the vendor) or, when `retry` is false, is dead-lettered.
    Failed { reason: String, retry: bool },
}

/// The answer to one [`Connector::check`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckResult {
    pub status: Option<u16>,
    /// (index into the tickets, status). A ticket missing here is asked
    /// about again later.
    pub statuses: Vec<(usize, TicketStatus)>,
    pub signal: Option<DestinationSignal>,
}

#[async_trait::async_trait]
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// The connector's name as written in mapping files.
    fn kind(&self) -> ConnectorKind;

    /// How the engine may batch items for this vendor.
    fn batch_policy(&self) -> BatchPolicy {
        BatchPolicy::SINGLE
    }

    /// The vendor's documented limit, for the engine's shared limiter.
    fn rate_limit(&self) -> Option<RateLimit> {
        None
    }

    /// Mapped fields the vendor identifies a subject by (an email, a phone).
    /// A mapping file must define each; their last delivered values travel
    /// with deletes and withdrawals in [`Item::identity`].
    fn identity_fields(&self) -> Vec<String> {
        Vec::new()
    }

    /// What one item adds to a call's size, for [`BatchPolicy::max_bytes`].
    fn item_bytes(&self, item: &Item) -> usize {
        item.fields()
            .map(|f| serde_json::to_vec(f).map(|v| v.len()).unwrap_or(0))
            .unwrap_or(0)
            + item.subject_id.len()
            + item.delivery_id.len()
            + 64
    }

    /// Sends one batch (never empty; one [`ActionKind`] unless the policy
    /// allows mixing) and answers per item.
    async fn send(&self, http: &Http<'_>, batch: &[Item]) -> BatchResult;

    /// Asks where asynchronous jobs stand. Only connectors that answer
    /// [`ItemOutcome::Accepted`] need this.
    async fn check(&self, _http: &Http<'_>, tickets: &[Ticket]) -> CheckResult {
        CheckResult {
            status: None,
            statuses: (0..tickets.len())
                .map(|i| {
                    (
                        i,
                        TicketStatus::Failed {
                            reason: "this connector has no asynchronous jobs".into(),
                            retry: false,
                        },
                    )
                })
                .collect(),
            signal: None,
        }
    }
}

/// Every connector the hub knows. The match in [`build`] is exhaustive, so a
/// new variant is a compile error until it is wired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectorKind {
    Webhook,
    HubSpot,
    Salesforce,
    Braze,
    Mailchimp,
    Klaviyo,
    Segment,
    RudderStack,
    Shopify,
}

impl ConnectorKind {
    pub const ALL: &'static [ConnectorKind] = &[
        ConnectorKind::Webhook,
        ConnectorKind::HubSpot,
        ConnectorKind::Salesforce,
        ConnectorKind::Braze,
        ConnectorKind::Mailchimp,
        ConnectorKind::Klaviyo,
        ConnectorKind::Segment,
        ConnectorKind::RudderStack,
        ConnectorKind::Shopify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Webhook => "webhook",
            ConnectorKind::HubSpot => "hubspot",
            ConnectorKind::Salesforce => "salesforce",
            ConnectorKind::Braze => "braze",
            ConnectorKind::Mailchimp => "mailchimp",
            ConnectorKind::Klaviyo => "klaviyo",
            ConnectorKind::Segment => "segment",
            ConnectorKind::RudderStack => "rudderstack",
            ConnectorKind::Shopify => "shopify",
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
    /// The key and what is wrong with it; never the value (it may be a secret).
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
pub fn build(connector: &str, settings: &Value) -> Result<Box<dyn Connector>, ConnectorError> {
    let kind =
        ConnectorKind::parse(connector).ok_or_else(|| ConnectorError::Unknown(connector.into()))?;
    Ok(match kind {
        ConnectorKind::Webhook => Box::new(webhook::WebhookConnector::from_settings(settings)?),
        ConnectorKind::HubSpot => Box::new(hubspot::HubSpotConnector::from_settings(settings)?),
        ConnectorKind::Salesforce => {
            Box::new(salesforce::SalesforceConnector::from_settings(settings)?)
        }
        ConnectorKind::Braze => Box::new(braze::BrazeConnector::from_settings(settings)?),
        ConnectorKind::Mailchimp => {
            Box::new(mailchimp::MailchimpConnector::from_settings(settings)?)
        }
        ConnectorKind::Klaviyo => Box::new(klaviyo::KlaviyoConnector::from_settings(settings)?),
        ConnectorKind::Segment => Box::new(segment::SegmentConnector::from_settings(settings)?),
        ConnectorKind::RudderStack => {
            Box::new(rudderstack::RudderStackConnector::from_settings(settings)?)
        }
        ConnectorKind::Shopify => Box::new(shopify::ShopifyConnector::from_settings(settings)?),
    })
}

/// reqwest is built without a default crypto provider; install ring's once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
