//! `hub dlq replay`: requeues dead letters a batch at a time, each through
//! the store call `POST /admin/dead-letters/replay` makes, so a long replay
//! never holds the database's writer for long and shows its progress after
//! every batch.

use crate::store::{Store, StoreError, now_ms};

/// Which dead letters to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Destination(String),
    Id(String),
    All,
}

/// What a replay reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayEvent {
    /// `total` dead letters await replay.
    Started { total: u64 },
    /// `done` of `total` handled so far (one batch more).
    Batch { done: u64, total: u64 },
    /// `replayed` were requeued (one replayed meanwhile by someone else is
    /// not counted).
    Finished { replayed: u64 },
}

/// Replays the selected dead letters, `batch` per step; returns how many
/// were requeued.
pub async fn replay(
    store: &dyn Store,
    selection: &Selection,
    batch: usize,
    mut report: impl FnMut(ReplayEvent),
) -> Result<u64, StoreError> {
    let destination = match selection {
        Selection::Destination(name) => Some(name.as_str()),
        Selection::Id(_) | Selection::All => None,
    };
    let ids: Vec<String> = store
        .dead_letters(destination)
        .await?
        .into_iter()
        .map(|d| d.id)
        .filter(|id| match selection {
            Selection::Id(wanted) => id == wanted,
            Selection::Destination(_) | Selection::All => true,
        })
        .collect();
    let total = ids.len() as u64;
    report(ReplayEvent::Started { total });
    let mut done = 0;
    let mut replayed = 0;
    for chunk in ids.chunks(batch.max(1)) {
        for id in chunk {
            replayed += store.replay_dead_letters(None, Some(id), now_ms()).await?;
        }
        done += chunk.len() as u64;
        report(ReplayEvent::Batch { done, total });
    }
    report(ReplayEvent::Finished { replayed });
    Ok(replayed)
}

/// Shows a replay's events: a bar on a terminal, else plain lines.
pub fn show(progress: &mut crate::progress::Progress, event: ReplayEvent) {
    match event {
        ReplayEvent::Started { total } => progress.start("dlq replay".into(), 0, total, || {
            format!("dlq replay: {total} dead letter(s) to replay")
        }),
        ReplayEvent::Batch { done, total } => progress.advance(done, total, || {
            format!(
                "dlq replay: {done} of {total} dead letters replayed ({}%)",
                crate::progress::percent(done, total)
            )
        }),
        ReplayEvent::Finished { replayed } => progress.finish(replayed, || {
            format!("dlq replay: done, {replayed} dead letter(s) requeued")
        }),
    }
}
