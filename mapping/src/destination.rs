//! A validated destination and its evaluation against a subject.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::MappingError;
use crate::field::FieldRule;
use crate::positions::Positions;
use crate::settings::Settings;

/// What to do at the destination when a subject is deleted upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDelete {
    #[default]
    Delete,
    Suppress,
    Ignore,
}

/// What to do at the destination when a required consent purpose is withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnWithdraw {
    #[default]
    Suppress,
    Unsubscribe,
    Delete,
    Ignore,
}

impl OnDelete {
    /// All values, in the order error messages list them.
    pub const ALL: [OnDelete; 3] = [OnDelete::Delete, OnDelete::Suppress, OnDelete::Ignore];

    /// The name used in mapping files.
    pub fn as_str(self) -> &'static str {
        match self {
            OnDelete::Delete => "delete",
            OnDelete::Suppress => "suppress",
            OnDelete::Ignore => "ignore",
        }
    }
}

impl OnWithdraw {
    /// All values, in the order error messages list them.
    pub const ALL: [OnWithdraw; 4] = [
        OnWithdraw::Suppress,
        OnWithdraw::Unsubscribe,
        OnWithdraw::Delete,
        OnWithdraw::Ignore,
    ];

    /// The name used in mapping files.
    pub fn as_str(self) -> &'static str {
        match self {
            OnWithdraw::Suppress => "suppress",
            OnWithdraw::Unsubscribe => "unsubscribe",
            OnWithdraw::Delete => "delete",
            OnWithdraw::Ignore => "ignore",
        }
    }
}

impl fmt::Display for OnDelete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for OnWithdraw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One mapping file, validated: where to send profiles and how to shape them.
#[derive(Debug, Clone)]
pub struct Destination {
    pub name: String,
    pub connector: String,
    pub enabled: bool,
    pub brand: Option<String>,
    pub settings: Settings,
    /// Purposes that must all be granted before anything is sent.
    pub consent: Vec<String>,
    pub on_delete: OnDelete,
    pub on_withdraw: OnWithdraw,
    pub when: Option<scim::Filter>,
    /// In file order.
    pub fields: Vec<FieldRule>,
    pub file: PathBuf,
    pub positions: Positions,
    /// Lowercase hex SHA-256 of the file text; see [`Destination::fingerprint`].
    pub source_sha256: String,
}

impl Destination {
    /// Whether the subject passes the `when` filter (always, when there is none).
    pub fn applies_to(&self, subject: &Value) -> bool {
        self.when.as_ref().is_none_or(|f| f.matches(subject))
    }

    /// Whether every destination-level `consent` purpose is granted.
    pub fn consented(&self, granted: &dyn Fn(&str) -> bool) -> bool {
        self.consent.iter().all(|p| granted(p))
    }

    /// The outgoing profile: every field that yields a value and whose field-level
    /// `consent` purpose (if any) is granted.
    pub fn map(&self, subject: &Value, granted: &dyn Fn(&str) -> bool) -> Map<String, Value> {
        self.fields
            .iter()
            .filter(|f| f.consent.as_deref().is_none_or(granted))
            .filter_map(|f| f.evaluate(subject).map(|v| (f.target.clone(), v)))
            .collect()
    }

    /// Stable hash of the file text, to tell versions of a destination apart.
    pub fn fingerprint(&self) -> String {
        self.source_sha256.clone()
    }

    /// An error located at `key_path` in this destination's file (e.g. `connector` for an
    /// unknown connector); falls back to the nearest enclosing key, then 1:1.
    pub fn error_at(&self, key_path: &str, reason: impl Into<String>) -> MappingError {
        self.positions.error(&self.file, key_path, reason)
    }
}
