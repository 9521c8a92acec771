//! Subjects: search, profile with consent and its ledger, where they are
//! held, the delivery timeline per destination, export and erasure.

use serde::Serialize;
use utoipa::ToSchema;

use super::{AdminError, AdminResult};
use crate::AppState;
use crate::store::{
    AttemptRecord, ConsentRecord, Held, HeldRecord, LedgerEntry, SubjectHit, SubjectKey,
    SubjectReport, now_ms,
};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubjectList {
    pub subjects: Vec<SubjectHit>,
}

/// Subjects whose hub id, `externalId` or e-mail is `q`.
pub async fn search(state: &AppState, q: &str, limit: i64) -> AdminResult<SubjectList> {
    if q.is_empty() {
        return Err(AdminError::Invalid(
            "q must name a hub id, an externalId or an e-mail address".into(),
        ));
    }
    let subjects = state.store.search_subjects(q, limit).await?;
    Ok(SubjectList { subjects })
}

/// The hub id a key (hub id or `SOURCE:externalId`) names.
pub async fn resolve(state: &AppState, key: &str) -> AdminResult<String> {
    state
        .store
        .find_subject(&SubjectKey::parse(key))
        .await?
        .ok_or(AdminError::UnknownSubject)
}

/// Everything held about the subject a key names (GDPR art. 15).
pub async fn export(state: &AppState, key: &str) -> AdminResult<SubjectReport> {
    let id = resolve(state, key).await?;
    state
        .store
        .subject_report(&id)
        .await?
        .ok_or(AdminError::UnknownSubject)
}

/// A subject as an admin looks at it: profile, consent and its ledger, and
/// the destinations that hold it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubjectView {
    pub id: String,
    pub source: String,
    pub external_id: String,
    /// The current profile (a SCIM User with the hub's extension).
    pub profile: serde_json::Value,
    pub version: i64,
    pub deleted_at: Option<i64>,
    pub erase_requested_at: Option<i64>,
    pub erased_at: Option<i64>,
    pub consent: Vec<ConsentRecord>,
    /// Every consent change, oldest first.
    pub consent_history: Vec<LedgerEntry>,
    /// What each destination holds of the subject.
    pub destinations: Vec<HeldRecord>,
}

pub async fn view(state: &AppState, key: &str) -> AdminResult<SubjectView> {
    let r = export(state, key).await?;
    Ok(SubjectView {
        id: r.id,
        source: r.source,
        external_id: r.external_id,
        profile: r.profile,
        version: r.version,
        deleted_at: r.deleted_at,
        erase_requested_at: r.erase_requested_at,
        erased_at: r.erased_at,
        consent: r.consent,
        consent_history: r.consent_history,
        destinations: r.destinations,
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentView {
    pub subject: String,
    pub consent: Vec<ConsentRecord>,
    /// Every consent change, oldest first.
    pub history: Vec<LedgerEntry>,
}

pub async fn consent(state: &AppState, key: &str) -> AdminResult<ConsentView> {
    let r = export(state, key).await?;
    Ok(ConsentView {
        subject: r.id,
        consent: r.consent,
        history: r.consent_history,
    })
}

/// One destination's side of a subject: what it holds, and every attempt
/// to bring it up to date, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DestinationTimeline {
    pub destination: String,
    /// Sent, withdrawn or deleted; absent when nothing was ever delivered.
    pub holds: Option<Held>,
    /// When it came to hold that (Unix ms).
    pub holds_since: Option<i64>,
    pub attempts: Vec<AttemptRecord>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Timeline {
    pub subject: String,
    /// Each loaded destination, and any other one that has a record of
    /// the subject, by name.
    pub destinations: Vec<DestinationTimeline>,
}

/// The delivery timeline of a subject, per destination.
pub async fn timeline(state: &AppState, key: &str) -> AdminResult<Timeline> {
    let r = export(state, key).await?;
    let mut names: Vec<String> = state
        .destinations
        .load()
        .iter()
        .map(|d| d.mapping.name.clone())
        .collect();
    names.extend(r.destinations.iter().map(|h| h.destination.clone()));
    names.extend(r.deliveries.iter().map(|a| a.destination.clone()));
    names.sort();
    names.dedup();
    let destinations = names
        .into_iter()
        .map(|name| {
            let held = r.destinations.iter().find(|h| h.destination == name);
            DestinationTimeline {
                holds: held.and_then(|h| Held::parse(&h.state)),
                holds_since: held.map(|h| h.updated_at),
                attempts: r
                    .deliveries
                    .iter()
                    .filter(|a| a.destination == name)
                    .cloned()
                    .collect(),
                destination: name,
            }
        })
        .collect();
    Ok(Timeline {
        subject: r.id,
        destinations,
    })
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErasureProgress {
    /// Deletes are queued to every destination; the receipt follows.
    Requested,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErasureStarted {
    pub subject: String,
    pub erasure: ErasureProgress,
}

/// Starts the erasure of a subject (GDPR art. 17).
pub async fn erase(state: &AppState, key: &str) -> AdminResult<ErasureStarted> {
    let id = resolve(state, key).await?;
    let names = state.destinations.load().enabled_names();
    let started = state.store.request_erasure(&id, &names, now_ms()).await?;
    if !started {
        return Err(AdminError::Conflict {
            title: "Erasure already requested",
            detail: "that subject is already being erased".into(),
        });
    }
    state.wake.wake_all();
    Ok(ErasureStarted {
        subject: id,
        erasure: ErasureProgress::Requested,
    })
}
