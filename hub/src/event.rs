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
    /// Consent given for one brand only: brand -> purpose -> state.
    #[serde(default, rename = "brandConsent")]
    pub brand_consent: BTreeMap<String, BTreeMap<String, ConsentState>>,
    /// Brands the subject belongs to (added to those already known).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brands: Vec<String>,
    #[serde(rename = "occurredAt")]
    pub occurred_at: DateTime<Utc>,
    /// What the source holds as proof of a consent change (form id, IP,
    /// policy version...), kept in the consent ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<serde_json::Value>,
}

/// The hub's SCIM extension: consent and custom attributes, and `brands`.
pub const SYNCD_EXTENSION: &str = "urn:ietf:params:scim:schemas:extension:syncd:2.0:User";

/// The brands a stored profile belongs to.
pub fn profile_brands(profile: &serde_json::Value) -> Vec<&str> {
    profile
        .get(SYNCD_EXTENSION)
        .and_then(|e| e.get("brands"))
        .and_then(|b| b.as_array())
        .map(|list| list.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default()
}

/// Adds `brands` to a profile's brand list (kept sorted, without repeats).
pub fn add_brands(profile: &mut serde_json::Map<String, serde_json::Value>, brands: &[String]) {
    if brands.is_empty() {
        return;
    }
    let ext = profile
        .entry(SYNCD_EXTENSION)
        .or_insert_with(|| serde_json::json!({}));
    if !ext.is_object() {
        *ext = serde_json::json!({});
    }
    let mut all: Vec<String> = ext
        .get("brands")
        .and_then(|b| b.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    all.extend(brands.iter().cloned());
    all.sort();
    all.dedup();
    ext["brands"] = serde_json::json!(all);
}

pub fn valid_purpose_name(purpose: &str) -> bool {
    !purpose.is_empty()
        && purpose.len() <= 64
        && purpose
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Why an event is refused (422 with this text).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("subject.externalId must be a non-empty string")]
    MissingExternalId,
    #[error("consent purpose {0:?} must match [a-z0-9_]{{1,64}}")]
    BadPurpose(String),
    #[error("subject.{0} is read-only")]
    ReadOnly(&'static str),
    /// A subject attribute the published User schemas refuse.
    #[error("subject.{0}")]
    Schema(#[source] crate::scim_model::validate::Violation),
    #[error("{0} must not contain a NUL character")]
    Nul(String),
    #[error("occurredAt lies more than {0} s in the future")]
    FromTheFuture(u64),
    #[error("subject.{0} is not written through subject; use the event's {1}")]
    ConsentInSubject(String, &'static str),
    #[error("unknown brand {brand:?}; known brands: {known}")]
    UnknownBrand { brand: String, known: String },
    #[error("unknown consent purpose {purpose:?}; known purposes: {known}")]
    UnknownPurpose { purpose: String, known: String },
}

/// What [`CanonicalEvent::check`] checks against.
pub struct EventRules<'a> {
    /// Declared consent purposes.
    pub purposes: Vec<&'a String>,
    /// Declared brands.
    pub brands: Vec<&'a String>,
    pub schemas: &'a crate::scim_model::schema::Published,
    pub now: DateTime<Utc>,
    /// How far `occurredAt` may lie ahead of `now`: the webhook tolerance.
    pub max_ahead: std::time::Duration,
}

impl CanonicalEvent {
    pub fn external_id(&self) -> Option<&str> {
        self.subject
            .get("externalId")
            .and_then(|v| v.as_str())
            .filter(|s| !s.trim().is_empty())
    }

    /// Checks the event against the hub's rules, as SCIM would check the
    /// same attributes: what serde cannot express, declared purposes and
    /// brands, the published User schemas (types, multi-valued, canonical
    /// values), read-only attributes (`id`, `meta`, `groups` refused;
    /// read-only sub-attributes dropped) and `password` (write-only for
    /// SCIM, never stored: dropped), and an `occurredAt` no further ahead of
    /// `rules.now` than `rules.max_ahead` (a later one would make every
    /// following update stale).
    pub fn check(&mut self, rules: &EventRules<'_>) -> Result<(), EventError> {
        use crate::scim_model::schema::USER;
        self.subject
            .retain(|k, _| !k.eq_ignore_ascii_case("password"));
        self.validate()?;
        for name in ["consent", "brandConsent"] {
            let inside = self
                .subject
                .iter()
                .filter(|(k, _)| USER.extension(k) == Some(SYNCD_EXTENSION))
                .filter_map(|(_, v)| v.as_object())
                .any(|ext| ext.keys().any(|k| k.eq_ignore_ascii_case(name)));
            if inside {
                return Err(EventError::ConsentInSubject(
                    format!("{SYNCD_EXTENSION}:{name}"),
                    name,
                ));
            }
        }
        crate::scim_model::user::strip_read_only(&mut self.subject, &USER);
        crate::scim_model::validate::check(&self.subject, &USER, rules.schemas)
            .map_err(EventError::Schema)?;
        let ahead = self.occurred_at.signed_duration_since(rules.now);
        if ahead.num_milliseconds() > rules.max_ahead.as_millis() as i64 {
            return Err(EventError::FromTheFuture(rules.max_ahead.as_secs()));
        }
        let named_brands = self.brands.iter().chain(self.brand_consent.keys());
        for brand in named_brands {
            if !rules.brands.contains(&brand) {
                return Err(EventError::UnknownBrand {
                    brand: brand.clone(),
                    known: rules
                        .brands
                        .iter()
                        .map(|b| b.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let named_purposes = self
            .consent
            .keys()
            .chain(self.brand_consent.values().flat_map(|m| m.keys()));
        for purpose in named_purposes {
            if !rules.purposes.contains(&purpose) {
                return Err(EventError::UnknownPurpose {
                    purpose: purpose.clone(),
                    known: rules
                        .purposes
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }

    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), EventError> {
        self.external_id().ok_or(EventError::MissingExternalId)?;
        // What SCIM publishes as readOnly is the hub's to set, not a source's.
        for name in ["id", "meta", "groups"] {
            if self.subject.keys().any(|k| k.eq_ignore_ascii_case(name)) {
                return Err(EventError::ReadOnly(name));
            }
        }
        let mut purposes = self
            .consent
            .keys()
            .chain(self.brand_consent.values().flat_map(|m| m.keys()));
        if let Some(bad) = purposes.find(|p| !valid_purpose_name(p)) {
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
