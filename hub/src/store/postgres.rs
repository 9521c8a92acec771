//! PostgreSQL: any number of hub processes share it as store and queue;
//! `FOR UPDATE SKIP LOCKED` lets them claim jobs without coordination.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

use super::StoreError;

/// Row locks and SKIP LOCKED coordinate PostgreSQL writers; no gate needed.
pub type WriteTx = sqlx::Transaction<'static, sqlx::Postgres>;

pub struct PgStore {
    pool: sqlx::PgPool,
}

mod sql {
    pub const CLAIM: &str = "UPDATE delivery_jobs SET status = 'running', locked_until = $1 \
        WHERE id IN (SELECT id FROM delivery_jobs \
        WHERE (status = 'pending' AND not_before <= $2) OR (status = 'running' AND locked_until < $2) \
        ORDER BY not_before LIMIT $3 FOR UPDATE SKIP LOCKED) \
        RETURNING id, destination, subject_id, reason, attempt, first_enqueued_at";
    pub const LOAD_SUBJECTS: &str = "SELECT id, profile, version, deleted_at, erase_requested_at FROM subjects \
        WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))";
    pub const LOAD_CONSENTS: &str = "SELECT subject_id, purpose, brand, state FROM consents \
        WHERE subject_id IN (SELECT jsonb_array_elements_text($1::jsonb))";
    pub const INSERT_ATTEMPTS: &str = "INSERT INTO delivery_attempts (job_id, destination, subject_id, \
        attempt, action, outcome, status_code, latency_ms, detail, created_at) \
        SELECT job_id, destination, subject_id, attempt, action, outcome, status_code, latency_ms, detail, $2 \
        FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, destination text, subject_id text, \
        attempt bigint, action text, outcome text, status_code bigint, latency_ms bigint, detail text)";
    pub const DELETE_RUNNING_JOBS: &str = "DELETE FROM delivery_jobs WHERE status = 'running' \
        AND id IN (SELECT jsonb_array_elements_text($1::jsonb))";
    pub const LOAD_RECEIVED: &str = "SELECT subject_id, destination, state FROM destination_subjects \
        WHERE subject_id IN (SELECT jsonb_array_elements_text($1::jsonb))";
    pub const RECORD_RECEIVED: &str = "INSERT INTO destination_subjects (destination, subject_id, state, updated_at) \
        SELECT destination, subject_id, state, $2 FROM jsonb_to_recordset($1::jsonb) \
        AS r(destination text, subject_id text, state text) \
        ON CONFLICT (destination, subject_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at";
    pub const RESCHEDULE: &str = "INSERT INTO delivery_jobs (id, destination, subject_id, reason, status, \
        attempt, not_before, locked_until, first_enqueued_at) \
        VALUES ($1, $2, $3, 'retry', 'pending', $4, $5, NULL, $6) \
        ON CONFLICT (destination, subject_id) WHERE status = 'pending' DO UPDATE SET \
        attempt = GREATEST(delivery_jobs.attempt, excluded.attempt), \
        not_before = GREATEST(delivery_jobs.not_before, excluded.not_before), \
        first_enqueued_at = LEAST(delivery_jobs.first_enqueued_at, excluded.first_enqueued_at)";
}

/// Rows from a JSON array of objects, typed: `jsonb_to_recordset`.
fn from_json(columns: &[(&str, &str)]) -> String {
    let cols: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
    format!(
        "SELECT * FROM jsonb_to_recordset($1::jsonb) AS r({})",
        cols.join(", ")
    )
}

// Rows are locked in id order so concurrent batches cannot deadlock on them.
static BATCH: std::sync::LazyLock<super::batch::BatchSql> =
    std::sync::LazyLock::new(|| super::batch::BatchSql::new(from_json, " FOR UPDATE OF sub"));

impl PgStore {
    /// Group commits in flight at once.
    const PARALLEL_WRITERS: usize = 4;

    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

super::common::impl_store!(PgStore, sqlx::Postgres);
