//! The embedded default: one SQLite file in WAL mode with `synchronous=FULL`,
//! so a commit is on disk before the hub acknowledges anything.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;

pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    /// SQLite takes one writer at a time. Queueing writers here, fairly,
    /// instead of in SQLite's busy handler (which sleeps in growing steps)
    /// keeps tail latency low when ingest and workers write at once.
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction that holds the write gate until it ends.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _gate: tokio::sync::OwnedMutexGuard<()>,
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

mod sql {
    pub const CLAIM: &str = "UPDATE delivery_jobs SET status = 'running', locked_until = $1 \
        WHERE id IN (SELECT id FROM delivery_jobs \
        WHERE (status = 'pending' AND not_before <= $2) OR (status = 'running' AND locked_until < $2) \
        ORDER BY not_before LIMIT $3) \
        RETURNING id, destination, subject_id, reason, attempt, first_enqueued_at";
    pub const LOAD_SUBJECTS: &str = "SELECT id, profile, version, deleted_at, erase_requested_at FROM subjects \
        WHERE id IN (SELECT value FROM json_each($1))";
    pub const LOAD_CONSENTS: &str = "SELECT subject_id, purpose, brand, state FROM consents \
        WHERE subject_id IN (SELECT value FROM json_each($1))";
    pub const INSERT_ATTEMPTS: &str = "INSERT INTO delivery_attempts (job_id, destination, subject_id, \
        attempt, action, outcome, status_code, latency_ms, detail, created_at) \
        SELECT value ->> 'job_id', value ->> 'destination', value ->> 'subject_id', value ->> 'attempt', \
        value ->> 'action', value ->> 'outcome', value ->> 'status_code', value ->> 'latency_ms', \
        value ->> 'detail', $2 FROM json_each($1)";
    pub const DELETE_RUNNING_JOBS: &str = "DELETE FROM delivery_jobs WHERE status = 'running' \
        AND id IN (SELECT value FROM json_each($1))";
    pub const LOAD_RECEIVED: &str = "SELECT subject_id, destination, state FROM destination_subjects \
        WHERE subject_id IN (SELECT value FROM json_each($1))";
    pub const RECORD_RECEIVED: &str = "INSERT INTO destination_subjects (destination, subject_id, state, updated_at) \
        SELECT value ->> 'destination', value ->> 'subject_id', value ->> 'state', $2 FROM json_each($1) WHERE true \
        ON CONFLICT (destination, subject_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at";
    pub const RESCHEDULE: &str = "INSERT INTO delivery_jobs (id, destination, subject_id, reason, status, \
        attempt, not_before, locked_until, first_enqueued_at) \
        VALUES ($1, $2, $3, 'retry', 'pending', $4, $5, NULL, $6) \
        ON CONFLICT (destination, subject_id) WHERE status = 'pending' DO UPDATE SET \
        attempt = max(delivery_jobs.attempt, excluded.attempt), \
        not_before = max(delivery_jobs.not_before, excluded.not_before), \
        first_enqueued_at = min(delivery_jobs.first_enqueued_at, excluded.first_enqueued_at)";
}

/// Rows from a JSON array of objects: `SELECT value ->> 'a' AS a, ... FROM json_each($1)`.
fn from_json(columns: &[(&str, &str)]) -> String {
    let cols: Vec<String> = columns
        .iter()
        .map(|(name, _)| format!("value ->> '{name}' AS {name}"))
        .collect();
    format!("SELECT {} FROM json_each($1)", cols.join(", "))
}

static BATCH: std::sync::LazyLock<super::batch::BatchSql> =
    std::sync::LazyLock::new(|| super::batch::BatchSql::new(from_json, ""));

impl SqliteStore {
    /// Group commits in flight at once.
    const PARALLEL_WRITERS: usize = 1;

    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(e.into()))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool,
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// `BEGIN IMMEDIATE` takes the write lock up front, so a transaction that
    /// reads before it writes cannot fail with SQLITE_BUSY halfway.
    async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let gate = self.write_gate.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _gate: gate })
    }
}

super::common::impl_store!(SqliteStore, sqlx::Sqlite);
