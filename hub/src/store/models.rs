//! Row and value types the store reads and writes.

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobReason {
    Change,
    Retry,
    Replay,
    Backfill,
}

impl JobReason {
    pub fn as_str(self) -> &'static str {
        match self {
            JobReason::Change => "change",
            JobReason::Retry => "retry",
            JobReason::Replay => "replay",
            JobReason::Backfill => "backfill",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryJob {
    pub id: String,
    pub destination: String,
    pub subject_id: String,
    pub reason: String,
    pub attempt: i64,
    pub first_enqueued_at: i64,
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
    /// What each destination last received for this subject.
    pub received: std::collections::HashMap<String, Held>,
}

/// What a destination holds of a subject, after our last delivered action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    pub fn after(action: &str) -> Option<Held> {
        match action {
            "upsert" => Some(Held::Sent),
            "suppress" | "unsubscribe" => Some(Held::Withdrawn),
            "delete" => Some(Held::Deleted),
            _ => None,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Delivered,
    Retry,
    Paused,
    Dead,
    Suppressed,
    Skipped,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry => "retry",
            AttemptOutcome::Paused => "paused",
            AttemptOutcome::Dead => "dead",
            AttemptOutcome::Suppressed => "suppressed",
            AttemptOutcome::Skipped => "skipped",
        }
    }
}

/// What happens to a job after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum NextStep {
    Done,
    RetryAt(i64),
    DeadLetter,
    /// Not attempted (the destination's rate limit): run again at this time,
    /// with no attempt recorded or counted.
    DeferUntil(i64),
}

#[derive(Debug, Clone)]
pub struct JobResult {
    pub job: DeliveryJob,
    /// upsert | delete | suppress | none
    pub action: &'static str,
    pub outcome: AttemptOutcome,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub detail: Option<String>,
    pub next: NextStep,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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
#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ConsentRecord {
    pub purpose: String,
    pub brand: String,
    pub state: String,
    pub source: String,
    pub version: i64,
    pub occurred_at: i64,
}

#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HeldRecord {
    pub destination: String,
    pub state: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeRecord {
    pub kind: String,
    pub source: String,
    pub attributes: serde_json::Value,
    pub occurred_at: i64,
    pub received_at: i64,
}

/// Proof that an erasure ran: who confirmed the delete, who did not in time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErasureReceipt {
    pub subject_id: String,
    pub requested_at: i64,
    pub completed_at: i64,
    /// Destinations whose delete was delivered, with the time.
    pub confirmed: Vec<(String, i64)>,
    /// Destinations still holding data when the deadline passed.
    pub unconfirmed: Vec<String>,
}
