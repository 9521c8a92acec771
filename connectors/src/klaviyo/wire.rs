//! Klaviyo's JSON:API answers, as far as the connector reads them
//! (revision 2026-07-15), and its error document.

use serde::Deserialize;
use serde_json::{Map, Value};

/// `{"data": {"id": ...}}` of a profile.
#[derive(Debug, Deserialize)]
pub struct ProfileDocument {
    pub data: Resource,
}

/// `{"data": [{"id": ...}]}` of `GET /api/profiles`.
#[derive(Debug, Deserialize)]
pub struct ProfileList {
    #[serde(default)]
    pub data: Vec<Resource>,
}

#[derive(Debug, Deserialize)]
pub struct Resource {
    pub id: String,
}

/// A profile bulk import job.
#[derive(Debug, Deserialize)]
pub struct JobDocument {
    pub data: Job,
}

#[derive(Debug, Deserialize)]
pub struct Job {
    pub id: String,
    pub attributes: JobAttributes,
}

#[derive(Debug, Deserialize)]
pub struct JobAttributes {
    pub status: JobStatus,
    #[serde(default)]
    pub failed_count: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Processing,
    Complete,
    Cancelled,
}

/// One page of `GET /api/profile-bulk-import-jobs/{id}/import-errors`.
#[derive(Debug, Deserialize)]
pub struct ImportErrors {
    #[serde(default)]
    pub data: Vec<ImportError>,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Default, Deserialize)]
pub struct Links {
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ImportError {
    pub attributes: ImportErrorAttributes,
}

#[derive(Debug, Deserialize)]
pub struct ImportErrorAttributes {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    /// The profile as submitted: what the error is matched to an item by.
    #[serde(default)]
    pub original_payload: Option<Map<String, Value>>,
}

impl ImportErrorAttributes {
    pub fn reason(&self) -> String {
        describe(
            self.code.as_deref(),
            self.title.as_deref(),
            self.detail.as_deref(),
        )
    }

    /// A value the submitted profile carried, at the top or in `attributes`.
    pub fn submitted(&self, key: &str) -> Option<&str> {
        let payload = self.original_payload.as_ref()?;
        payload
            .get(key)
            .or_else(|| payload.get("attributes").and_then(|a| a.get(key)))
            .and_then(Value::as_str)
    }
}

/// Klaviyo's error document (every 4xx and 5xx).
#[derive(Debug, Deserialize)]
pub struct ErrorDocument {
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

#[derive(Debug, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub source: Option<Source>,
}

#[derive(Debug, Deserialize)]
pub struct Source {
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub parameter: Option<String>,
}

impl ApiError {
    pub fn reason(&self) -> String {
        let mut text = describe(
            self.code.as_deref(),
            self.title.as_deref(),
            self.detail.as_deref(),
        );
        if let Some(source) = &self.source {
            if let Some(p) = source.pointer.as_deref().filter(|p| !p.is_empty()) {
                text.push_str(&format!(" (at {p})"));
            } else if let Some(p) = source.parameter.as_deref().filter(|p| !p.is_empty()) {
                text.push_str(&format!(" (parameter {p})"));
            }
        }
        text
    }

    /// The index into a job's `profiles.data` the error points at.
    pub fn profile_index(&self) -> Option<usize> {
        let pointer = self.source.as_ref()?.pointer.as_deref()?;
        let rest = pointer.strip_prefix("/data/attributes/profiles/data/")?;
        rest.split('/').next()?.parse().ok()
    }
}

/// "invalid: Invalid input: <detail>", leaving out what is missing.
fn describe(code: Option<&str>, title: Option<&str>, detail: Option<&str>) -> String {
    let parts: Vec<&str> = [code, title, detail]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        "refused without a message".into()
    } else {
        parts.join(": ")
    }
}
