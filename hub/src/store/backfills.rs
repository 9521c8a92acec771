//! Backfills: queue every live subject for one destination, in batches
//! walked by subject id. Each batch's jobs and the cursor move commit in one
//! transaction, so a killed run resumes after its last committed batch, and
//! a lease on the database's clock keeps two runners (processes or hosts)
//! off one destination. Subject ids are UUIDv7, so subjects created while a
//! run goes on sort after its cursor and are reached too.

use std::time::Duration;

use serde::Serialize;

use super::db::Durability;
use super::{JobReason, SqlStore, StoreError, now_ms};

/// Whether a destination's latest backfill is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    Running,
    Done,
}

impl BackfillState {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            _ => None,
        }
    }
}

/// A destination's latest backfill, as `hub destinations` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackfillStatus {
    pub destination: String,
    pub state: BackfillState,
    /// The last subject id queued ("" before the first batch).
    pub last_subject_id: String,
    /// Live subjects when the run started.
    pub total: i64,
    /// Subjects queued so far.
    pub queued: i64,
    /// Unix ms.
    pub started_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// The outcome of asking to run a destination's backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackfillClaim {
    /// This runner holds the lease; `resumed` when it continues a run that
    /// had stopped before finishing.
    Taken {
        status: BackfillStatus,
        token: String,
        resumed: bool,
    },
    /// Another runner holds the lease until this time (Unix ms, database clock).
    Held { until: i64 },
}

/// What one batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackfillStep {
    /// `subjects` more were queued; the status after the batch.
    Queued {
        subjects: u64,
        status: BackfillStatus,
    },
    /// Nothing was left: the run is done and its lease released.
    Finished(BackfillStatus),
    /// The lease was lost (it expired and another runner took it): nothing
    /// of this batch was written.
    LeaseLost,
}

type StatusRow = (String, String, String, i64, i64, i64, i64, Option<i64>);

const STATUS_COLUMNS: &str =
    "destination, state, last_subject_id, total, queued, started_at, updated_at, finished_at";

fn status_from_row(row: StatusRow) -> Result<BackfillStatus, StoreError> {
    let (destination, state, last_subject_id, total, queued, started_at, updated_at, finished_at) =
        row;
    Ok(BackfillStatus {
        destination,
        state: BackfillState::parse(&state).ok_or(StoreError::Corrupt("backfills.state"))?,
        last_subject_id,
        total,
        queued,
        started_at,
        updated_at,
        finished_at,
    })
}

/// Takes the destination's backfill lease for `lease` and returns the run
/// to continue: the unfinished one, or (when the last one finished, none
/// ran yet, or `restart`) a new one from the first subject.
pub(super) async fn claim(
    store: &SqlStore,
    destination: &str,
    restart: bool,
    lease: Duration,
) -> Result<BackfillClaim, StoreError> {
    let d = store.dialect;
    let now = d.now_ms();
    let wall = now_ms();
    let token = uuid::Uuid::new_v4().simple().to_string();
    if let Some(analyze) = d.analyze("subjects") {
        sqlx::query(sqlx::AssertSqlSafe(analyze))
            .execute(&store.pool)
            .await?;
    }
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "INSERT INTO backfills (destination, state, last_subject_id, total, queued, lease_token, \
         locked_until, started_at, updated_at, finished_at) \
         VALUES ($1, 'done', '', 0, 0, NULL, NULL, $2, $2, $2) ON CONFLICT (destination) DO NOTHING",
    )
    .bind(destination)
    .bind(wall)
    .execute(&mut *tx)
    .await?;
    // Free, or its holder's lease ran out (the holder died or hung).
    let taken: Option<StatusRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE backfills SET lease_token = $2, locked_until = {now} + $3 \
         WHERE destination = $1 AND (lease_token IS NULL OR locked_until < {now}) \
         RETURNING {STATUS_COLUMNS}"
    )))
    .bind(destination)
    .bind(&token)
    .bind(lease.as_millis() as i64)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = taken else {
        let (until,): (Option<i64>,) =
            sqlx::query_as("SELECT locked_until FROM backfills WHERE destination = $1")
                .bind(destination)
                .fetch_one(&mut *tx)
                .await?;
        return Ok(BackfillClaim::Held {
            until: until.unwrap_or(wall),
        });
    };
    let status = status_from_row(row)?;
    if status.state == BackfillState::Running && !restart {
        tx.commit().await?;
        return Ok(BackfillClaim::Taken {
            status,
            token,
            resumed: true,
        });
    }
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM subjects WHERE deleted_at IS NULL")
        .fetch_one(&mut *tx)
        .await?;
    let row: StatusRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE backfills SET state = 'running', last_subject_id = '', total = $2, queued = 0, \
         started_at = $3, updated_at = $3, finished_at = NULL WHERE destination = $1 \
         RETURNING {STATUS_COLUMNS}"
    )))
    .bind(destination)
    .bind(total)
    .bind(wall)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(BackfillClaim::Taken {
        status: status_from_row(row)?,
        token,
        resumed: false,
    })
}

/// Queues the next `batch` live subjects after the cursor in one statement,
/// moves the cursor and renews the lease, all in one commit.
pub(super) async fn step(
    store: &SqlStore,
    destination: &str,
    token: &str,
    batch: usize,
    lease: Duration,
) -> Result<BackfillStep, StoreError> {
    let d = store.dialect;
    let now = d.now_ms();
    let wall = now_ms();
    // A batch needs no flush of its own: an OS crash that rolls back the
    // last batches rolls back their cursor moves with them (never half a
    // batch), and the next run queues them again.
    let mut tx = store.begin_write_as(Durability::Bookkeeping).await?;
    let cursor: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT b.last_subject_id FROM backfills b WHERE b.destination = $1 AND b.lease_token = $2 \
         AND b.state = 'running'{}",
        d.lock_for_update("b")
    )))
    .bind(destination)
    .bind(token)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((after,)) = cursor else {
        return Ok(BackfillStep::LeaseLost);
    };
    // The batch's upper bound: the walk reads the subjects' primary key in
    // order, so each batch costs the same wherever it is.
    let (upper, count): (Option<String>, i64) = sqlx::query_as(
        "SELECT MAX(id), COUNT(*) FROM (SELECT id FROM subjects WHERE deleted_at IS NULL \
         AND id > $1 ORDER BY id LIMIT $2) AS batch",
    )
    .bind(&after)
    .bind(batch as i64)
    .fetch_one(&mut *tx)
    .await?;
    let Some(upper) = upper else {
        let row: StatusRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE backfills SET state = 'done', finished_at = $3, updated_at = $3, \
             lease_token = NULL, locked_until = NULL WHERE destination = $1 AND lease_token = $2 \
             RETURNING {STATUS_COLUMNS}"
        )))
        .bind(destination)
        .bind(token)
        .bind(wall)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(BackfillStep::Finished(status_from_row(row)?));
    };
    // A pair that already has a pending job keeps it (it reads the latest
    // state anyway); the no-op update takes its lock, as `insert_job` does.
    // Job ids are the batch's time-ordered id and the subject id: unique,
    // and ascending, so a million inserts append to the primary key index
    // instead of scattering over it (a third of the time on SQLite).
    sqlx::query(
        "INSERT INTO delivery_jobs (id, destination, subject_id, reason, status, attempt, \
         not_before, locked_until, first_enqueued_at) \
         SELECT $6 || id, $1, id, $4, 'pending', 0, $5, NULL, $5 FROM subjects \
         WHERE deleted_at IS NULL AND id > $2 AND id <= $3 \
         ON CONFLICT (destination, subject_id) WHERE status = 'pending' \
         DO UPDATE SET reason = delivery_jobs.reason",
    )
    .bind(destination)
    .bind(&after)
    .bind(&upper)
    .bind(JobReason::Backfill.as_str())
    .bind(wall)
    .bind(format!("{}:", uuid::Uuid::now_v7()))
    .execute(&mut *tx)
    .await?;
    let row: StatusRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE backfills SET last_subject_id = $3, queued = queued + $4, updated_at = $5, \
         locked_until = {now} + $6 WHERE destination = $1 AND lease_token = $2 \
         RETURNING {STATUS_COLUMNS}"
    )))
    .bind(destination)
    .bind(token)
    .bind(&upper)
    .bind(count)
    .bind(wall)
    .bind(lease.as_millis() as i64)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(BackfillStep::Queued {
        subjects: count as u64,
        status: status_from_row(row)?,
    })
}

/// Gives the lease back (a runner that stops before the end), so that the
/// next run need not wait for it to expire. The cursor stays.
pub(super) async fn release(
    store: &SqlStore,
    destination: &str,
    token: &str,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "UPDATE backfills SET lease_token = NULL, locked_until = NULL \
         WHERE destination = $1 AND lease_token = $2",
    )
    .bind(destination)
    .bind(token)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The latest backfill of each named destination that ever had one.
pub(super) async fn statuses(
    store: &SqlStore,
    names: &[String],
) -> Result<Vec<BackfillStatus>, StoreError> {
    let rows: Vec<StatusRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {STATUS_COLUMNS} FROM backfills WHERE destination IN ({}) ORDER BY destination",
        store.dialect.json_strings(1)
    )))
    .bind(serde_json::to_string(names)?)
    .fetch_all(&store.pool)
    .await?;
    rows.into_iter().map(status_from_row).collect()
}
