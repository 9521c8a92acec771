//! The delivery queue: jobs (one per destination and subject), their
//! attempts, dead letters, and what each destination holds of a subject.

use super::db::WriteTx;
use super::dialect::Dialect;
use super::{
    AttemptOutcome, AttemptRecord, DeadLetter, DeliveryJob, Held, JobReason, JobResult, NextStep,
    SqlStore, StoreError, StoreStats,
};

/// Queues (destination, subject) unless a pending job already exists: the
/// pending job will read the latest state anyway.
pub(super) async fn insert_job(
    tx: &mut WriteTx,
    destination: &str,
    subject_id: &str,
    reason: JobReason,
    now: i64,
) -> Result<u64, StoreError> {
    let r = sqlx::query(
        "INSERT INTO delivery_jobs (id, destination, subject_id, reason, status, attempt, \
         not_before, locked_until, first_enqueued_at) \
         VALUES ($1, $2, $3, $4, 'pending', 0, $5, NULL, $5) \
         ON CONFLICT (destination, subject_id) WHERE status = 'pending' DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(destination)
    .bind(subject_id)
    .bind(reason.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected())
}

/// (subject, destination, held state) for the subjects in the JSON id list.
pub(super) async fn load_held<'e, E>(
    dialect: Dialect,
    executor: E,
    id_list: &str,
) -> Result<Vec<(String, String, String)>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let in_list = dialect.json_strings(1);
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT subject_id, destination, state FROM destination_subjects \
         WHERE subject_id IN ({in_list})"
    )))
    .bind(id_list)
    .fetch_all(executor)
    .await?)
}

/// Queues every destination that ever received these subjects, enabled or
/// not now: an erasure must reach all of them.
pub(super) async fn queue_held_destinations(
    dialect: Dialect,
    tx: &mut WriteTx,
    subject_ids: &[String],
    now: i64,
) -> Result<(), StoreError> {
    if subject_ids.is_empty() {
        return Ok(());
    }
    let held = load_held(dialect, &mut **tx, &serde_json::to_string(subject_ids)?).await?;
    for (subject_id, destination, _) in held {
        insert_job(tx, &destination, &subject_id, JobReason::Change, now).await?;
    }
    Ok(())
}

pub(super) async fn claim(
    store: &SqlStore,
    limit: i64,
    now: i64,
    lease_ms: i64,
) -> Result<Vec<DeliveryJob>, StoreError> {
    let sql = format!(
        "UPDATE delivery_jobs SET status = 'running', locked_until = $1 \
         WHERE id IN (SELECT id FROM delivery_jobs \
         WHERE (status = 'pending' AND not_before <= $2) OR (status = 'running' AND locked_until < $2) \
         ORDER BY not_before LIMIT $3{}) \
         RETURNING id, destination, subject_id, reason, attempt, first_enqueued_at",
        store.dialect.skip_locked()
    );
    let mut tx = store.begin_write().await?;
    let jobs: Vec<DeliveryJob> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now + lease_ms)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(jobs)
}

/// Records the attempts and moves each job on (done, rescheduled, dead), in
/// a fixed number of statements for the whole batch.
pub(super) async fn finish(
    store: &SqlStore,
    results: &[JobResult],
    now: i64,
) -> Result<(), StoreError> {
    if results.is_empty() {
        return Ok(());
    }
    let d = store.dialect;
    let attempts: Vec<serde_json::Value> = results
        .iter()
        .filter(|r| !matches!(r.next, NextStep::DeferUntil(_)))
        .map(|r| {
            serde_json::json!({
                "job_id": r.job.id,
                "destination": r.job.destination,
                "subject_id": r.job.subject_id,
                "attempt": r.job.attempt + 1,
                "action": r.action,
                "outcome": r.outcome.as_str(),
                "status_code": r.status_code,
                "latency_ms": r.latency_ms,
                "detail": r.detail,
            })
        })
        .collect();
    let ids: Vec<&str> = results.iter().map(|r| r.job.id.as_str()).collect();
    let mut tx = store.begin_write().await?;
    if !attempts.is_empty() {
        let rows = d.json_rows(
            1,
            &[
                ("job_id", "text"),
                ("destination", "text"),
                ("subject_id", "text"),
                ("attempt", "bigint"),
                ("action", "text"),
                ("outcome", "text"),
                ("status_code", "bigint"),
                ("latency_ms", "bigint"),
                ("detail", "text"),
            ],
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO delivery_attempts (job_id, destination, subject_id, attempt, action, outcome, \
             status_code, latency_ms, detail, created_at) \
             SELECT job_id, destination, subject_id, attempt, action, outcome, status_code, latency_ms, \
             detail, $2 FROM ({rows}) AS x"
        )))
        .bind(serde_json::Value::Array(attempts).to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM delivery_jobs WHERE status = 'running' AND id IN ({})",
        d.json_strings(1)
    )))
    .bind(serde_json::to_string(&ids)?)
    .execute(&mut *tx)
    .await?;
    // One row per pair: an upsert may not touch a row twice.
    let mut latest: std::collections::BTreeMap<(&str, &str), Held> = Default::default();
    for r in results
        .iter()
        .filter(|r| r.outcome == AttemptOutcome::Delivered)
    {
        if let Some(h) = Held::after(r.action) {
            latest.insert((r.job.destination.as_str(), r.job.subject_id.as_str()), h);
        }
    }
    let held: Vec<serde_json::Value> = latest
        .into_iter()
        .map(|((destination, subject_id), h)| {
            serde_json::json!({"destination": destination, "subject_id": subject_id, "state": h.as_str()})
        })
        .collect();
    if !held.is_empty() {
        let rows = d.json_rows(
            1,
            &[
                ("destination", "text"),
                ("subject_id", "text"),
                ("state", "text"),
            ],
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO destination_subjects (destination, subject_id, state, updated_at) \
             SELECT destination, subject_id, state, $2 FROM ({rows}) AS x WHERE true \
             ON CONFLICT (destination, subject_id) DO UPDATE SET state = excluded.state, \
             updated_at = excluded.updated_at"
        )))
        .bind(serde_json::Value::Array(held).to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    for r in results.iter().filter(|r| r.next != NextStep::Done) {
        finish_one(d, &mut tx, r, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Rescheduling and dead-lettering; the attempt row and the job's removal
/// were written for the whole batch by [`finish`].
async fn finish_one(
    d: Dialect,
    tx: &mut WriteTx,
    r: &JobResult,
    now: i64,
) -> Result<(), StoreError> {
    let job = &r.job;
    match &r.next {
        NextStep::Done => {}
        NextStep::RetryAt(at) | NextStep::DeferUntil(at) => {
            // A deferred job was never attempted: its count stays.
            let attempt = match r.next {
                NextStep::DeferUntil(_) => job.attempt,
                _ => job.attempt + 1,
            };
            let (max, min) = (d.greatest(), d.least());
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO delivery_jobs (id, destination, subject_id, reason, status, \
                 attempt, not_before, locked_until, first_enqueued_at) \
                 VALUES ($1, $2, $3, 'retry', 'pending', $4, $5, NULL, $6) \
                 ON CONFLICT (destination, subject_id) WHERE status = 'pending' DO UPDATE SET \
                 attempt = {max}(delivery_jobs.attempt, excluded.attempt), \
                 not_before = {max}(delivery_jobs.not_before, excluded.not_before), \
                 first_enqueued_at = {min}(delivery_jobs.first_enqueued_at, excluded.first_enqueued_at)"
            )))
            .bind(&job.id)
            .bind(&job.destination)
            .bind(&job.subject_id)
            .bind(attempt)
            .bind(*at)
            .bind(job.first_enqueued_at)
            .execute(&mut **tx)
            .await?;
        }
        NextStep::DeadLetter => {
            sqlx::query(
                "INSERT INTO dead_letters (id, destination, subject_id, attempts, status_code, detail, \
                 created_at, replayed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) \
                 ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, \
                 status_code = excluded.status_code, detail = excluded.detail, \
                 created_at = excluded.created_at, replayed_at = NULL",
            )
            .bind(&job.id)
            .bind(&job.destination)
            .bind(&job.subject_id)
            .bind(job.attempt + 1)
            .bind(r.status_code.map(i64::from))
            .bind(r.detail.clone().unwrap_or_default())
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

pub(super) async fn enqueue(
    store: &SqlStore,
    destination: &str,
    subject_id: &str,
    reason: JobReason,
    now: i64,
) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    let n = insert_job(&mut tx, destination, subject_id, reason, now).await?;
    tx.commit().await?;
    Ok(n > 0)
}

pub(super) async fn dead_letters(
    store: &SqlStore,
    destination: Option<&str>,
) -> Result<Vec<DeadLetter>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, destination, subject_id, attempts, status_code, detail, created_at, replayed_at \
         FROM dead_letters WHERE replayed_at IS NULL AND ($1 = '' OR destination = $1) \
         ORDER BY created_at, id",
    )
    .bind(destination.unwrap_or(""))
    .fetch_all(&store.pool)
    .await?)
}

pub(super) async fn replay_dead_letters(
    store: &SqlStore,
    destination: Option<&str>,
    id: Option<&str>,
    now: i64,
) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT id, destination, subject_id FROM dead_letters WHERE replayed_at IS NULL \
         AND ($1 = '' OR destination = $1) AND ($2 = '' OR id = $2)",
    )
    .bind(destination.unwrap_or(""))
    .bind(id.unwrap_or(""))
    .fetch_all(&mut *tx)
    .await?;
    for (dl_id, dest, subject) in &rows {
        insert_job(&mut tx, dest, subject, JobReason::Replay, now).await?;
        sqlx::query("UPDATE dead_letters SET replayed_at = $1 WHERE id = $2")
            .bind(now)
            .bind(dl_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(rows.len() as u64)
}

pub(super) async fn attempts(
    store: &SqlStore,
    subject_id: Option<&str>,
    limit: i64,
) -> Result<Vec<AttemptRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, job_id, destination, subject_id, attempt, action, outcome, status_code, \
         latency_ms, detail, created_at FROM delivery_attempts \
         WHERE ($1 = '' OR subject_id = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(subject_id.unwrap_or(""))
    .bind(limit)
    .fetch_all(&store.pool)
    .await?)
}

pub(super) async fn stats(store: &SqlStore) -> Result<StoreStats, StoreError> {
    let row: (i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM subjects), (SELECT COUNT(*) FROM changes), \
         (SELECT COUNT(*) FROM delivery_jobs WHERE status = 'pending'), \
         (SELECT COUNT(*) FROM delivery_jobs WHERE status = 'running'), \
         (SELECT COUNT(*) FROM delivery_attempts), \
         (SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NULL), \
         (SELECT COUNT(*) FROM inbound_messages)",
    )
    .fetch_one(&store.pool)
    .await?;
    Ok(StoreStats {
        subjects: row.0,
        changes: row.1,
        pending_jobs: row.2,
        running_jobs: row.3,
        attempts: row.4,
        dead_letters: row.5,
        inbound_messages: row.6,
    })
}
