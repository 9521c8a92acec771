//! Retention of the queue's history: rows past their age go, oldest first,
//! in bounded batches (each its own short transaction, followed by a pause
//! as long), so that pruning a backlog never holds the writer for long.
//!
//! Pruned: delivery attempts, change records, inbound message ids (their
//! replay window is long over), replayed dead letters, per-minute counts.
//! Never pruned: subjects and their current consent, the consent ledger
//! (an audit record), erasure receipts, what destinations hold, and jobs
//! (a finished job is deleted when it finishes; pending, running and
//! waiting ones are live work).

use serde::Serialize;

use super::db::Durability;
use super::{SqlStore, StoreError};

/// What is old enough to go: Unix ms cutoffs, each exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneCutoffs {
    pub attempts_before: i64,
    pub changes_before: i64,
    pub inbound_messages_before: i64,
    pub replayed_dead_letters_before: i64,
    pub destination_counts_before: i64,
}

/// Rows removed per table by one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub attempts: u64,
    pub changes: u64,
    pub inbound_messages: u64,
    pub dead_letters: u64,
    pub destination_counts: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.attempts
            + self.changes
            + self.inbound_messages
            + self.dead_letters
            + self.destination_counts
    }
}

/// One table's pruning: the rows a batch deletes, by key, oldest first.
struct Rule {
    table: &'static str,
    /// The key columns (a row value when more than one).
    key: &'static str,
    /// Selects `key` of rows past the cutoff (`$1`).
    old: &'static str,
}

const ATTEMPTS: Rule = Rule {
    table: "delivery_attempts",
    key: "id",
    old: "SELECT id FROM delivery_attempts WHERE created_at < $1 ORDER BY created_at",
};
const CHANGES: Rule = Rule {
    table: "changes",
    key: "id",
    old: "SELECT id FROM changes WHERE received_at < $1 ORDER BY received_at",
};
const INBOUND_MESSAGES: Rule = Rule {
    table: "inbound_messages",
    key: "source, message_id",
    old: "SELECT source, message_id FROM inbound_messages WHERE received_at < $1 \
          ORDER BY received_at",
};
const DEAD_LETTERS: Rule = Rule {
    table: "dead_letters",
    key: "id",
    old: "SELECT id FROM dead_letters WHERE replayed_at IS NOT NULL AND replayed_at < $1 \
          ORDER BY replayed_at",
};
const COUNTS: Rule = Rule {
    table: "destination_counts",
    key: "minute",
    old: "SELECT DISTINCT minute FROM destination_counts WHERE minute < $1 ORDER BY minute",
};

/// Deletes up to `batch` rows of `rule` per transaction until none is left
/// past the cutoff, yielding between batches; returns how many went.
async fn prune(
    store: &SqlStore,
    rule: &Rule,
    before: i64,
    batch: usize,
) -> Result<u64, StoreError> {
    let sql = format!(
        "DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM ({old} LIMIT $2) AS old)",
        table = rule.table,
        key = rule.key,
        old = rule.old,
    );
    let mut removed = 0;
    loop {
        let began = std::time::Instant::now();
        // Rows an OS crash brings back go with the next pass.
        let mut tx = store.begin_write_as(Durability::Bookkeeping).await?;
        let r = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(before)
            .bind(batch as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        removed += r.rows_affected();
        if r.rows_affected() == 0 {
            return Ok(removed);
        }
        // Leave the writer to ingest and the workers at least as long as
        // the batch held it: pruning a backlog is never urgent.
        tokio::time::sleep(began.elapsed()).await;
    }
}

/// Delivery attempts older than `before`, batch by batch.
pub(super) async fn prune_attempts(
    store: &SqlStore,
    before: i64,
    batch: usize,
) -> Result<u64, StoreError> {
    prune(store, &ATTEMPTS, before, batch.max(1)).await
}

/// One retention pass over every pruned table.
pub(super) async fn prune_history(
    store: &SqlStore,
    cutoffs: &PruneCutoffs,
    batch: usize,
) -> Result<Pruned, StoreError> {
    let batch = batch.max(1);
    Ok(Pruned {
        attempts: prune(store, &ATTEMPTS, cutoffs.attempts_before, batch).await?,
        changes: prune(store, &CHANGES, cutoffs.changes_before, batch).await?,
        inbound_messages: prune(
            store,
            &INBOUND_MESSAGES,
            cutoffs.inbound_messages_before,
            batch,
        )
        .await?,
        dead_letters: prune(
            store,
            &DEAD_LETTERS,
            cutoffs.replayed_dead_letters_before,
            batch,
        )
        .await?,
        destination_counts: prune(
            store,
            &COUNTS,
            cutoffs.destination_counts_before / 60_000,
            batch,
        )
        .await?,
    })
}
