//! Row and value types the store reads and writes.

use connectors::ActionKind;
use serde::Serialize;

use crate::event::CanonicalEvent;

/// One accepted inbound change, with the destinations it fans out to.
#[derive(Debug, Clone)]
pub struct IngestItem {
    pub source: String,
    /// Idempotency key (`webhook-id`).
    pub message_id: String,
    pub event: CanonicalEvent,
    pub destinations: Vec<String>,
    pub received_at: i64,
    /// The request's W3C trace context, when tracing is exported: its
    /// delivery jobs carry it to the worker.
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum IngestOutcome {
    Applied {
        subject_id: String,
        jobs: u64,
    },
    /// The message id was seen before: nothing changed.
    Duplicate,
    /// Older than the state we hold (`occurredAt`): recorded, not applied.
    Stale {
        subject_id: String,
    },
    /// A delete for a subject we never had.
    Unknown,
}

/// Why a job was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobReason {
    Change,
    Retry,
    Replay,
    Backfill,
}

impl JobReason {
    pub const ALL: [JobReason; 4] = [
        JobReason::Change,
        JobReason::Retry,
        JobReason::Replay,
        JobReason::Backfill,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobReason::Change => "change",
            JobReason::Retry => "retry",
            JobReason::Replay => "replay",
            JobReason::Backfill => "backfill",
        }
    }

    pub fn parse(text: &str) -> Option<JobReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A claimed job: one (destination, subject) to bring up to date.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryJob {
    pub id: String,
    pub destination: String,
    pub subject_id: String,
    pub reason: JobReason,
    /// Failed attempts so far.
    pub attempt: i64,
    pub first_enqueued_at: i64,
    /// The claim's fencing token: finishing touches the row only while it
    /// still carries this.
    pub lease_token: String,
    /// Set for a delivery the vendor runs as an asynchronous job.
    pub ticket: Option<PendingTicket>,
    /// The W3C trace context of the request that queued it (tracing on).
    pub traceparent: Option<String>,
}

/// An asynchronous vendor job a delivery waits on.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingTicket {
    pub ticket: String,
    pub item: TicketItem,
}

/// What a ticket confirms, kept with the waiting job (no profile fields).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TicketItem {
    pub action: ActionKind,
    pub delivery_id: String,
    #[serde(default)]
    pub identity: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub record_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SubjectState {
    pub id: String,
    pub profile: serde_json::Value,
    pub version: i64,
    pub deleted: bool,
    /// An erasure was requested: every destination holding data gets a delete.
    pub erasing: bool,
    /// (purpose, brand, granted)
    pub consents: Vec<(String, String, bool)>,
    /// What each destination holds of this subject, by destination name.
    pub received: std::collections::HashMap<String, Holding>,
}

/// What a destination holds of a subject, after our last delivered action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Held {
    /// Profile data was sent.
    Sent,
    /// A withdrawal action (suppress, unsubscribe) was delivered.
    Withdrawn,
    Deleted,
}

impl Held {
    pub fn as_str(self) -> &'static str {
        match self {
            Held::Sent => "sent",
            Held::Withdrawn => "withdrawn",
            Held::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Held> {
        [Held::Sent, Held::Withdrawn, Held::Deleted]
            .into_iter()
            .find(|h| h.as_str() == text)
    }

    /// What a delivered action leaves the destination holding.
    pub fn after(action: ActionKind) -> Held {
        match action {
            ActionKind::Upsert => Held::Sent,
            ActionKind::Suppress | ActionKind::Unsubscribe => Held::Withdrawn,
            ActionKind::Delete => Held::Deleted,
        }
    }
}

/// A destination's record of a subject: what it holds, the vendor's id for
/// it, and the identity values it knows the subject by.
#[derive(Debug, Clone, PartialEq)]
pub struct Holding {
    pub state: Held,
    pub record_id: Option<String>,
    pub identity: serde_json::Map<String, serde_json::Value>,
}

impl Holding {
    pub fn new(state: Held) -> Self {
        Self {
            state,
            record_id: None,
            identity: Default::default(),
        }
    }
}

impl SubjectState {
    /// Consent fails closed: no record means not granted.
    pub fn granted(&self, purpose: &str, brand: Option<&str>) -> bool {
        let brand_grant = brand.and_then(|b| {
            self.consents
                .iter()
                .find(|(p, br, _)| p == purpose && br == b)
                .map(|c| c.2)
        });
        brand_grant.unwrap_or_else(|| {
            self.consents
                .iter()
                .find(|(p, br, _)| p == purpose && br.is_empty())
                .is_some_and(|c| c.2)
        })
    }

    /// Every purpose the subject has a record for, answered for `brand`.
    pub fn consent_map(&self, brand: Option<&str>) -> std::collections::BTreeMap<String, bool> {
        self.consents
            .iter()
            .map(|(p, _, _)| (p.clone(), self.granted(p, brand)))
            .collect()
    }

    pub fn held_by(&self, destination: &str) -> Option<Held> {
        self.received.get(destination).map(|h| h.state)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Delivered,
    /// The vendor took it as an asynchronous job; confirmation comes later.
    Accepted,
    Retry,
    /// The vendor asked the destination to wait; no attempt counted.
    Throttled,
    /// The vendor refused our credentials; the destination paused.
    Paused,
    Dead,
    Suppressed,
    Skipped,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 8] = [
        AttemptOutcome::Delivered,
        AttemptOutcome::Accepted,
        AttemptOutcome::Retry,
        AttemptOutcome::Throttled,
        AttemptOutcome::Paused,
        AttemptOutcome::Dead,
        AttemptOutcome::Suppressed,
        AttemptOutcome::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Accepted => "accepted",
            AttemptOutcome::Retry => "retry",
            AttemptOutcome::Throttled => "throttled",
            AttemptOutcome::Paused => "paused",
            AttemptOutcome::Dead => "dead",
            AttemptOutcome::Suppressed => "suppressed",
            AttemptOutcome::Skipped => "skipped",
        }
    }

    /// Counted as a failure in "failed in the last hour".
    pub fn is_failure(self) -> bool {
        matches!(self, AttemptOutcome::Retry | AttemptOutcome::Dead)
    }
}

/// What happens to a job after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum NextStep {
    Done,
    /// Run again after `after`. `counted` is false when the item did not
    /// fail (the vendor throttled or refused our credentials, or the job was
    /// handed back unsent): its attempt count stays.
    Retry {
        after: std::time::Duration,
        counted: bool,
    },
    DeadLetter,
    /// The vendor runs it as an asynchronous job: ask about the ticket after
    /// `after`. The job holds its (destination, subject) until then.
    Wait {
        ticket: String,
        item: TicketItem,
        after: std::time::Duration,
    },
}

/// One finished job (or attempt on it), as the engine hands it to the store.
#[derive(Debug, Clone)]
pub struct Finished {
    pub job: DeliveryJob,
    /// The action attempted; None when nothing was sent (suppressed, skipped).
    pub action: Option<ActionKind>,
    pub outcome: AttemptOutcome,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub detail: Option<String>,
    pub next: NextStep,
    /// When delivered or confirmed: what the destination holds now.
    pub holding: Option<Holding>,
    /// False for a job handed back unsent: no attempt row is written.
    pub attempted: bool,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: String,
    pub destination: String,
    pub subject_id: String,
    pub attempts: i64,
    pub status_code: Option<i64>,
    pub detail: String,
    pub created_at: i64,
    pub replayed_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AttemptRecord {
    pub id: i64,
    pub job_id: String,
    pub destination: String,
    pub subject_id: String,
    pub attempt: i64,
    pub action: String,
    pub outcome: String,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub detail: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StoreStats {
    pub subjects: i64,
    pub changes: i64,
    pub pending_jobs: i64,
    pub running_jobs: i64,
    /// Deliveries waiting on an asynchronous vendor job.
    pub waiting_jobs: i64,
    pub attempts: i64,
    pub dead_letters: i64,
    pub inbound_messages: i64,
}

/// How an admin names a subject: hub id or `SOURCE:externalId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectKey {
    Id(String),
    External { source: String, external_id: String },
}

impl SubjectKey {
    pub fn parse(text: &str) -> SubjectKey {
        match text.split_once(':') {
            Some((source, ext)) if !source.is_empty() && !ext.is_empty() => SubjectKey::External {
                source: source.into(),
                external_id: ext.into(),
            },
            _ => SubjectKey::Id(text.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(consents: &[(&str, &str, bool)]) -> SubjectState {
        SubjectState {
            id: "s".into(),
            profile: serde_json::Value::Null,
            version: 1,
            deleted: false,
            erasing: false,
            consents: consents
                .iter()
                .map(|(p, b, g)| (p.to_string(), b.to_string(), *g))
                .collect(),
            received: Default::default(),
        }
    }

    #[test]
    fn consent_fails_closed() {
        let s = subject(&[("analytics", "", false)]);
        assert!(!s.granted("analytics", None));
        assert!(!s.granted("marketing_email", None));
    }

    #[test]
    fn brand_consent_overrides_global() {
        let s = subject(&[("email", "", true), ("email", "acme", false)]);
        assert!(s.granted("email", None));
        assert!(!s.granted("email", Some("acme")));
        assert!(s.granted("email", Some("other")));
    }

    #[test]
    fn subject_keys_parse() {
        assert_eq!(
            SubjectKey::parse("ciam:cust-1"),
            SubjectKey::External {
                source: "ciam".into(),
                external_id: "cust-1".into()
            }
        );
        assert_eq!(
            SubjectKey::parse("0190abc"),
            SubjectKey::Id("0190abc".into())
        );
    }
}

/// Everything the hub holds about one subject (GDPR art. 15), and the
/// source of `hub consent show`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SubjectReport {
    pub id: String,
    pub source: String,
    pub external_id: String,
    pub profile: serde_json::Value,
    pub version: i64,
    pub deleted_at: Option<i64>,
    pub erase_requested_at: Option<i64>,
    pub erased_at: Option<i64>,
    pub consent: Vec<ConsentRecord>,
    pub consent_history: Vec<LedgerEntry>,
    pub destinations: Vec<HeldRecord>,
    pub changes: Vec<ChangeRecord>,
    pub deliveries: Vec<AttemptRecord>,
    pub erasure_receipt: Option<ErasureReceipt>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ConsentRecord {
    pub purpose: String,
    pub brand: String,
    pub state: String,
    pub source: String,
    pub version: i64,
    pub occurred_at: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub purpose: String,
    pub brand: String,
    pub previous_state: Option<String>,
    pub new_state: String,
    pub source: String,
    pub evidence: Option<serde_json::Value>,
    pub occurred_at: i64,
    pub recorded_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HeldRecord {
    pub destination: String,
    pub state: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChangeRecord {
    pub kind: String,
    pub source: String,
    pub attributes: serde_json::Value,
    pub occurred_at: i64,
    pub received_at: i64,
}

/// Proof that an erasure ran: who confirmed the delete, who did not in time.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ErasureReceipt {
    pub subject_id: String,
    pub requested_at: i64,
    pub completed_at: i64,
    /// Destinations whose delete was delivered, with the time: `[name, unix ms]`.
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub confirmed: Vec<(String, i64)>,
    /// Destinations still holding data when the deadline passed.
    pub unconfirmed: Vec<String>,
}
