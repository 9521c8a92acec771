//! Mailchimp Marketing API 3.0 request and response bodies, as far as the
//! connector sends or reads them (field names per `marketing.json`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A member's status in an audience. `archived` only appears in answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    Subscribed,
    Unsubscribed,
    Cleaned,
    Pending,
    Transactional,
    Archived,
}

/// `POST /lists/{list_id}`: batch subscribe or unsubscribe.
#[derive(Debug, Serialize)]
pub struct BatchRequest {
    pub members: Vec<BatchMember>,
    /// Existing members get the status and merge fields sent.
    pub update_existing: bool,
}

#[derive(Debug, Serialize)]
pub struct BatchMember {
    pub email_address: String,
    pub status: MemberStatus,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub merge_fields: Map<String, Value>,
}

/// The answer to a batch: always 200, failures per member in `errors`.
#[derive(Debug, Default, Deserialize)]
pub struct BatchResponse {
    #[serde(default)]
    pub new_members: Vec<MemberRef>,
    #[serde(default)]
    pub updated_members: Vec<MemberRef>,
    #[serde(default)]
    pub errors: Vec<BatchError>,
}

/// The part of a member object the connector keeps.
#[derive(Debug, Deserialize)]
pub struct MemberRef {
    /// The subscriber hash.
    pub id: String,
    pub email_address: String,
}

#[derive(Debug, Deserialize)]
pub struct BatchError {
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub field_message: Option<String>,
}

impl BatchError {
    /// "Mailchimp: <error> (ERROR_GENERIC; FNAME: <field message>)".
    pub fn reason(&self) -> String {
        let mut text = format!(
            "Mailchimp: {}",
            self.error.as_deref().unwrap_or("the member was refused")
        );
        let mut extra = Vec::new();
        if let Some(code) = &self.error_code {
            extra.push(code.clone());
        }
        match (&self.field, &self.field_message) {
            (Some(f), Some(m)) if !f.is_empty() => extra.push(format!("{f}: {m}")),
            (_, Some(m)) if !m.is_empty() => extra.push(m.clone()),
            _ => {}
        }
        if !extra.is_empty() {
            text.push_str(&format!(" ({})", extra.join("; ")));
        }
        text
    }
}

/// `PATCH /lists/{list_id}/members/{hash}` with the fields to change.
#[derive(Debug, Default, Serialize)]
pub struct MemberPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<MemberStatus>,
}

/// Mailchimp's error body (`application/problem+json`).
#[derive(Debug, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Deserialize)]
pub struct FieldError {
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl Problem {
    /// "Mailchimp 400 Invalid Resource: <detail> (email_address: <message>)".
    pub fn reason(&self, status: u16) -> String {
        let mut text = format!("Mailchimp {status}");
        if let Some(title) = self.title.as_deref().filter(|t| !t.is_empty()) {
            text.push(' ');
            text.push_str(title);
        }
        if let Some(detail) = self.detail.as_deref().filter(|d| !d.is_empty()) {
            text.push_str(": ");
            text.push_str(detail);
        }
        let fields: Vec<String> = self
            .errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.field.as_deref().unwrap_or("?"),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect();
        if !fields.is_empty() {
            text.push_str(&format!(" ({})", fields.join("; ")));
        }
        text
    }
}
