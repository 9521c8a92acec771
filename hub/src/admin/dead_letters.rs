//! Dead letters: deliveries that gave up. List, inspect (with the vendor's
//! answer and the attempts that led there), replay, discard.

use serde::Serialize;
use utoipa::ToSchema;

use super::{AdminError, AdminResult};
use crate::AppState;
use crate::store::{AttemptRecord, DeadLetter, now_ms};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterList {
    /// Oldest first; replayed ones are not listed.
    pub dead_letters: Vec<DeadLetter>,
}

pub async fn list(state: &AppState, destination: Option<&str>) -> AdminResult<DeadLetterList> {
    let dead_letters = state.store.dead_letters(destination).await?;
    Ok(DeadLetterList { dead_letters })
}

/// A dead letter and how it came to be.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterView {
    #[serde(flatten)]
    pub dead_letter: DeadLetter,
    /// The vendor's last answer: its HTTP status and what it said (as the
    /// connector reported it), or why no call was possible.
    pub vendor_answer: VendorAnswer,
    /// Attempts of this subject at this destination, newest first (the
    /// dead letter's own `attempts` is their count).
    pub recent_attempts: Vec<AttemptRecord>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VendorAnswer {
    pub status_code: Option<i64>,
    pub detail: String,
}

/// Attempts shown with a dead letter, at most.
const ATTEMPTS_SHOWN: i64 = 100;

pub async fn get(state: &AppState, id: &str) -> AdminResult<DeadLetterView> {
    let dead_letter = state
        .store
        .dead_letter(id)
        .await?
        .ok_or(AdminError::UnknownDeadLetter)?;
    let recent_attempts = state
        .store
        .attempts(Some(&dead_letter.subject_id), ATTEMPTS_SHOWN * 10)
        .await?
        .into_iter()
        .filter(|a| a.destination == dead_letter.destination)
        .take(ATTEMPTS_SHOWN as usize)
        .collect();
    Ok(DeadLetterView {
        vendor_answer: VendorAnswer {
            status_code: dead_letter.status_code,
            detail: dead_letter.detail.clone(),
        },
        dead_letter,
        recent_attempts,
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Replayed {
    /// How many dead letters were queued again.
    pub replayed: u64,
}

/// Which dead letters to replay: of one destination, one by id, or all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Destination(String),
    Id(String),
    All,
}

pub async fn replay(state: &AppState, selection: &Selection) -> AdminResult<Replayed> {
    // The store reads an empty name as "any": never let one through.
    if matches!(selection, Selection::Destination(s) | Selection::Id(s) if s.is_empty()) {
        return Err(AdminError::Invalid(
            "a destination or id to replay must not be empty".into(),
        ));
    }
    let (destination, id) = match selection {
        Selection::Destination(d) => (Some(d.as_str()), None),
        Selection::Id(id) => (None, Some(id.as_str())),
        Selection::All => (None, None),
    };
    let replayed = state
        .store
        .replay_dead_letters(destination, id, now_ms())
        .await?;
    state.wake.wake_all();
    Ok(Replayed { replayed })
}

/// Replays one dead letter; 404 when no such letter waits.
pub async fn replay_one(state: &AppState, id: &str) -> AdminResult<Replayed> {
    let r = replay(state, &Selection::Id(id.into())).await?;
    if r.replayed == 0 {
        return Err(AdminError::UnknownDeadLetter);
    }
    Ok(r)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Discarded {
    pub id: String,
    pub discarded: bool,
}

/// Drops a dead letter without delivering it (the subject's next change
/// is delivered as usual).
pub async fn discard(state: &AppState, id: &str) -> AdminResult<Discarded> {
    if !state.store.discard_dead_letter(id).await? {
        return Err(AdminError::UnknownDeadLetter);
    }
    Ok(Discarded {
        id: id.into(),
        discarded: true,
    })
}
