//! The hub's canonical inbound event, as webhook sources send it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "profile.upserted")]
    ProfileUpserted,
    #[serde(rename = "profile.deleted")]
    ProfileDeleted,
    #[serde(rename = "consent.updated")]
    ConsentUpdated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentState {
    Granted,
    Denied,
}

impl ConsentState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentState::Granted => "granted",
            ConsentState::Denied => "denied",
        }
    }
}

/// `{"type", "subject", "consent", "occurredAt"}`; see README.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CanonicalEvent {
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// SCIM User attributes, keyed by `externalId`.
    pub subject: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub consent: BTreeMap<String, ConsentState>,
    #[serde(rename = "occurredAt")]
    pub occurred_at: DateTime<Utc>,
    /// What the source holds as proof of a consent change (form id, IP,
    /// policy version...), kept in the consent ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<serde_json::Value>,
}

pub fn valid_purpose_name(purpose: &str) -> bool {
    !purpose.is_empty()
        && purpose.len() <= 64
        && purpose
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Why an event is refused (400 with this text).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("subject.externalId must be a non-empty string")]
    MissingExternalId,
    #[error("consent purpose {0:?} must match [a-z0-9_]{{1,64}}")]
    BadPurpose(String),
    #[error("subject.{0} is read-only")]
    ReadOnly(&'static str),
    #[error("unknown consent purpose {purpose:?}; known purposes: {known}")]
    UnknownPurpose { purpose: String, known: String },
}

impl CanonicalEvent {
    pub fn external_id(&self) -> Option<&str> {
        self.subject
            .get("externalId")
            .and_then(|v| v.as_str())
            .filter(|s| !s.trim().is_empty())
    }

    /// Checks what serde cannot express, and that every purpose is declared.
    pub fn validate_with<'a>(
        &self,
        purposes: impl Iterator<Item = &'a String> + Clone,
    ) -> Result<(), EventError> {
        self.validate()?;
        for purpose in self.consent.keys() {
            if !purposes.clone().any(|p| p == purpose) {
                return Err(EventError::UnknownPurpose {
                    purpose: purpose.clone(),
                    known: purposes.clone().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
        Ok(())
    }

    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), EventError> {
        self.external_id().ok_or(EventError::MissingExternalId)?;
        if self.subject.contains_key("id") {
            return Err(EventError::ReadOnly("id"));
        }
        if self.subject.contains_key("meta") {
            return Err(EventError::ReadOnly("meta"));
        }
        if let Some(bad) = self.consent.keys().find(|p| !valid_purpose_name(p)) {
            return Err(EventError::BadPurpose(bad.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shared_example() {
        let text = include_str!("../../tests/fixtures/event.json");
        let e: CanonicalEvent = serde_json::from_str(text).unwrap();
        assert_eq!(e.event_type, EventType::ProfileUpserted);
        assert_eq!(e.external_id(), Some("cust-0001"));
        assert_eq!(e.consent["marketing_email"], ConsentState::Granted);
        e.validate().unwrap();
    }

    #[test]
    fn refuses_missing_external_id_and_bad_purposes() {
        let mut e: CanonicalEvent = serde_json::from_value(serde_json::json!({
            "type": "consent.updated", "subject": {}, "occurredAt": "2026-11-23T10:00:00Z"
        }))
        .unwrap();
        assert_eq!(e.validate(), Err(EventError::MissingExternalId));
        e.subject.insert("externalId".into(), "x".into());
        e.consent
            .insert("Bad Purpose".into(), ConsentState::Granted);
        assert!(matches!(e.validate(), Err(EventError::BadPurpose(_))));
    }
}
