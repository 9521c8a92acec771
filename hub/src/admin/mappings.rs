//! Mappings: the loaded files, validation of a posted file (errors at
//! `file:line:col` as the mapping crate reports them), and a preview of
//! what a destination would receive for a stored subject, and what consent
//! removed from it and why.

use std::path::Path;

use connectors::Action;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminError, AdminResult};
use crate::AppState;
use crate::delivery::plan::{Plan, plan};
use crate::store::SubjectState;

/// One output field of a mapping.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldView {
    pub target: String,
    /// The purpose that must be granted for the field to be sent.
    pub consent: Option<String>,
}

/// A loaded mapping file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MappingView {
    pub destination: String,
    /// The file's name in the mappings directory.
    pub file: String,
    pub connector: String,
    pub enabled: bool,
    pub brand: Option<String>,
    /// Purposes that must all be granted before anything is sent.
    pub consent: Vec<String>,
    pub on_delete: String,
    pub on_withdraw: String,
    pub fields: Vec<FieldView>,
    /// SHA-256 of the file text: which version is loaded.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MappingList {
    pub mappings: Vec<MappingView>,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn list(state: &AppState) -> MappingList {
    let set = state.destinations.load();
    let mappings = set
        .iter()
        .map(|d| {
            let m = &d.mapping;
            MappingView {
                destination: m.name.clone(),
                file: file_name(&m.file),
                connector: m.connector.clone(),
                enabled: m.enabled,
                brand: m.brand.clone(),
                consent: m.consent.clone(),
                on_delete: m.on_delete.as_str().into(),
                on_withdraw: m.on_withdraw.as_str().into(),
                fields: m
                    .fields
                    .iter()
                    .map(|f| FieldView {
                        target: f.target.clone(),
                        consent: f.consent.clone(),
                    })
                    .collect(),
                sha256: m.fingerprint(),
            }
        })
        .collect();
    MappingList { mappings }
}

/// A mapping file to check.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The file's name, used in the errors (default `mapping.yaml`).
    #[serde(default)]
    pub file: Option<String>,
    /// The file's YAML text.
    pub text: String,
}

/// One problem, located as `hub mappings check` prints it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MappingProblem {
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub col: usize,
    /// Where in the document, e.g. `fields.email.transform[2]`; empty for
    /// the file as a whole.
    pub key_path: String,
    pub reason: String,
    /// `file:line:col: key_path: reason`.
    pub message: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    /// The destination the file defines, when it is valid.
    pub destination: Option<String>,
    pub errors: Vec<MappingProblem>,
}

/// Checks a posted file with every rule a file on disk meets (the schema,
/// declared purposes and brands, the connector's settings and identity
/// fields). Nothing is loaded or written.
pub fn validate(state: &AppState, req: &ValidateRequest) -> AdminResult<Validation> {
    let name = req
        .file
        .as_deref()
        .map(|f| file_name(Path::new(f)))
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "mapping.yaml".into());
    if name.contains('\0') || req.text.contains('\0') {
        return Err(AdminError::Invalid(
            "file and text must not contain a NUL character".into(),
        ));
    }
    let vocab = state.config.vocabulary();
    Ok(
        match crate::destinations::check_text(Path::new(&name), &req.text, &vocab) {
            Ok(d) => Validation {
                valid: true,
                destination: Some(d.mapping.name.clone()),
                errors: Vec::new(),
            },
            Err(errors) => Validation {
                valid: false,
                destination: None,
                errors: errors
                    .into_iter()
                    .map(|e| MappingProblem {
                        message: e.to_string(),
                        file: e.file.display().to_string(),
                        line: e.line,
                        col: e.col,
                        key_path: e.key_path,
                        reason: e.reason,
                    })
                    .collect(),
            },
        },
    )
}

/// What the planned delivery would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreviewOutcome {
    /// The action below would be sent.
    Send,
    /// A needed purpose was withdrawn while the destination holds data:
    /// its `on_withdraw` action would be sent.
    Withdraw,
    /// A needed purpose is not granted: nothing would be sent.
    Suppressed,
    /// Nothing to do (see `skipped`).
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreviewAction {
    Upsert,
    Delete,
    Suppress,
    Unsubscribe,
}

/// Why consent keeps something back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Withheld {
    /// The subject denied the purpose.
    Denied,
    /// No consent is recorded for the purpose: consent fails closed.
    NotRecorded,
    /// The destination is scoped to a brand the subject is not in.
    NotInBrand,
}

/// A purpose (or brand) the whole destination needs and does not have.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MissingConsent {
    pub purpose: String,
    pub reason: Withheld,
}

/// A mapped field left out because its purpose is not granted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RemovedField {
    pub field: String,
    pub purpose: String,
    pub reason: Withheld,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Preview {
    pub destination: String,
    pub subject: String,
    pub outcome: PreviewOutcome,
    pub action: Option<PreviewAction>,
    /// The mapped fields the connector would be handed (an upsert only).
    pub payload: Option<serde_json::Map<String, serde_json::Value>>,
    pub missing_consent: Vec<MissingConsent>,
    /// Fields consent removed from the payload, and why.
    pub removed_fields: Vec<RemovedField>,
    /// Why nothing would be done (outcome `skip`).
    pub skipped: Option<String>,
}

fn why_withheld(subject: &SubjectState, purpose: &str, brand: Option<&str>) -> Withheld {
    let recorded = subject
        .consents
        .iter()
        .any(|(p, b, _)| p == purpose && (b.is_empty() || Some(b.as_str()) == brand));
    if recorded {
        Withheld::Denied
    } else {
        Withheld::NotRecorded
    }
}

fn action_parts(
    action: Action,
) -> (
    PreviewAction,
    Option<serde_json::Map<String, serde_json::Value>>,
) {
    match action {
        Action::Upsert(fields) => (PreviewAction::Upsert, Some(fields)),
        Action::Delete => (PreviewAction::Delete, None),
        Action::Suppress => (PreviewAction::Suppress, None),
        Action::Unsubscribe => (PreviewAction::Unsubscribe, None),
    }
}

/// What `destination` would receive now for the subject `key` names, as
/// the driver plans it (the same code), without sending anything.
pub async fn preview(state: &AppState, destination: &str, key: &str) -> AdminResult<Preview> {
    let set = state.destinations.load();
    let dest = set
        .get(destination)
        .ok_or_else(|| AdminError::UnknownDestination(destination.into()))?;
    let id = super::subjects::resolve(state, key).await?;
    let subject = state
        .store
        .load_subjects(std::slice::from_ref(&id))
        .await?
        .into_iter()
        .next()
        .ok_or(AdminError::UnknownSubject)?;
    let brand = dest.mapping.brand.as_deref();
    let missing = |list: Vec<String>| -> Vec<MissingConsent> {
        list.into_iter()
            .map(|p| MissingConsent {
                reason: if p.starts_with("brand ") {
                    Withheld::NotInBrand
                } else {
                    why_withheld(&subject, &p, brand)
                },
                purpose: p,
            })
            .collect()
    };
    let (outcome, action, missing_consent, skipped) =
        match plan(Some(dest.as_ref()), Some(&subject), false) {
            Plan::Send(a) => (PreviewOutcome::Send, Some(a), Vec::new(), None),
            Plan::Withdraw { action, missing: m } => {
                (PreviewOutcome::Withdraw, Some(action), missing(m), None)
            }
            Plan::Suppressed { missing: m } => (PreviewOutcome::Suppressed, None, missing(m), None),
            Plan::Skip(why) => (
                PreviewOutcome::Skip,
                None,
                Vec::new(),
                Some(why.to_string()),
            ),
        };
    let (action, payload) = match action.map(action_parts) {
        Some((a, p)) => (Some(a), p),
        None => (None, None),
    };
    // Shown for an upsert only: any other outcome sends no field at all.
    let removed_fields = if payload.is_some() {
        dest.mapping
            .fields
            .iter()
            .filter_map(|f| {
                let p = f.consent.as_deref()?;
                (!subject.granted(p, brand)).then(|| RemovedField {
                    field: f.target.clone(),
                    purpose: p.into(),
                    reason: why_withheld(&subject, p, brand),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Preview {
        destination: destination.into(),
        subject: id,
        outcome,
        action,
        payload,
        missing_consent,
        removed_fields,
        skipped,
    })
}
