//! The change log: what changed, from which source, when (attribute names,
//! never values), newest first.

use serde::Serialize;
use utoipa::ToSchema;

use super::AdminResult;
use crate::AppState;
use crate::store::ChangeEntry;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeList {
    pub changes: Vec<ChangeEntry>,
    /// Pass as `before` for the next (older) page; absent on the last one.
    pub next_before: Option<i64>,
}

pub async fn recent(state: &AppState, before: Option<i64>, limit: i64) -> AdminResult<ChangeList> {
    let changes = state.store.recent_changes(before, limit).await?;
    let next_before = (changes.len() as i64 == limit)
        .then(|| changes.last().map(|c| c.id))
        .flatten();
    Ok(ChangeList {
        changes,
        next_before,
    })
}
