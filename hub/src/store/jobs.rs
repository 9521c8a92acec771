//! The delivery queue: jobs (one per destination and subject), their
//! claims and fenced finishing, attempts, dead letters, and what each
//! destination holds of a subject.
//!
//! One delivery per (destination, subject) at a time: a claim skips a pair
//! that has a `running` or `waiting` job, so a change that arrives meanwhile
//! waits as the pair's one `pending` job and goes out after, with the
//! then-current state. Leases are on the database's clock.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use super::db::Durability;
use super::dialect::Dialect;
use super::exec::{Exec, Param, WriteOp};
use super::{
    AttemptRecord, DeadLetter, DeliveryJob, Finished, Held, Holding, JobReason, NextStep,
    PendingTicket, SqlStore, StoreError, StoreStats,
};

/// Queues (destination, subject) unless a pending job already exists: the
/// pending job will read the latest state anyway. Merging takes the
/// pending row's lock (a no-op update, not DO NOTHING) until this
/// transaction commits, so a claim cannot take that job and read the
/// subject before the change it stands for is visible (PostgreSQL, read
/// committed: the latest change was otherwise lost now and then).
///
/// Due at once by the database's clock, which the claims compare with: a
/// host whose clock runs ahead would otherwise queue jobs that no worker
/// takes until the database's clock catches up. `now` (host time) only
/// dates the job for the lag report.
pub(super) async fn insert_job<E: Exec>(
    exec: &mut E,
    destination: &str,
    subject_id: &str,
    reason: JobReason,
    now: i64,
) -> Result<u64, StoreError> {
    let sql = format!(
        "INSERT INTO delivery_jobs (id, destination, subject_id, reason, status, attempt, \
         not_before, locked_until, first_enqueued_at) \
         VALUES ($1, $2, $3, $4, 'pending', 0, {clock}, NULL, $5) \
         ON CONFLICT (destination, subject_id) WHERE status = 'pending' \
         DO UPDATE SET reason = delivery_jobs.reason",
        clock = exec.dialect().now_ms()
    );
    let id = uuid::Uuid::now_v7().to_string();
    exec.execute(
        &sql,
        &[
            Param::from(&id),
            destination.into(),
            subject_id.into(),
            reason.as_str().into(),
            now.into(),
        ],
    )
    .await
}

/// (subject, destination, held state, record id, identity JSON) for the
/// subjects in the JSON id list.
pub(super) type HeldRow = (String, String, String, Option<String>, Option<String>);

pub(super) async fn load_held<'e, E>(
    dialect: Dialect,
    executor: E,
    id_list: &str,
) -> Result<Vec<HeldRow>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(held_sql(dialect)))
        .bind(id_list)
        .fetch_all(executor)
        .await?)
}

/// [`HeldRow`]s of the subjects in the JSON id list `$1`.
fn held_sql(dialect: Dialect) -> String {
    format!(
        "SELECT subject_id, destination, state, record_id, identity FROM destination_subjects \
         WHERE subject_id IN ({})",
        dialect.json_strings(1)
    )
}

/// A [`HeldRow`] as the engine reads it; None for a state this version
/// does not know.
pub(super) fn holding(row: &HeldRow) -> Option<Holding> {
    Some(Holding {
        state: Held::parse(&row.2)?,
        record_id: row.3.clone(),
        identity: row
            .4
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default(),
    })
}

/// Queues every destination that ever received these subjects, enabled or
/// not now: an erasure must reach all of them.
pub(super) async fn queue_held_destinations<E: Exec>(
    exec: &mut E,
    subject_ids: &[String],
    now: i64,
) -> Result<(), StoreError> {
    if subject_ids.is_empty() {
        return Ok(());
    }
    let list = serde_json::to_string(subject_ids)?;
    let held: Vec<HeldRow> = exec
        .rows(&held_sql(exec.dialect()), &[Param::from(&list)])
        .await?;
    for (subject_id, destination, ..) in held {
        insert_job(exec, &destination, &subject_id, JobReason::Change, now).await?;
    }
    Ok(())
}

type JobRow = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

const JOB_COLUMNS: &str = "id, destination, subject_id, reason, attempt, first_enqueued_at, ticket, \
     ticket_item, traceparent";

fn job_from_row(row: JobRow, token: &str) -> Result<DeliveryJob, StoreError> {
    let (
        id,
        destination,
        subject_id,
        reason,
        attempt,
        first_enqueued_at,
        ticket,
        item,
        traceparent,
    ) = row;
    let reason = JobReason::parse(&reason).ok_or(StoreError::Corrupt("delivery_jobs.reason"))?;
    let ticket = match (ticket, item) {
        (Some(ticket), Some(item)) => Some(PendingTicket {
            ticket,
            item: serde_json::from_str(&item)?,
        }),
        _ => None,
    };
    Ok(DeliveryJob {
        id,
        destination,
        subject_id,
        reason,
        attempt,
        first_enqueued_at,
        lease_token: token.to_string(),
        ticket,
        traceparent,
    })
}

/// Whether a claim respects the destination's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimMode {
    /// Nothing while the destination is paused or throttled: a pause that
    /// committed is seen by every claim after it, in every process.
    Deliver,
    /// The one job of a paused destination's probe.
    Probe,
}

const HELD_BACK: &str = "AND NOT EXISTS (SELECT 1 FROM destination_states s WHERE s.destination = $1 \
    AND (s.state = 'paused' OR s.throttled_until > {now}))";

/// Hands back `destination`'s jobs whose lease ran out. A call whose lease
/// ran out may have reached the vendor: it counts as a failed attempt (of
/// the pair's pending job when it folds into one), which is what tells the
/// planner that an erasure must go there. A cheap look first: leases rarely
/// expire, and with a backlog on a table without fresh statistics the
/// statements below can take PostgreSQL tens of milliseconds each (an
/// EXISTS form of the first took seconds), which no claim should pay for
/// nothing.
async fn hand_back_expired<E: Exec>(
    exec: &mut E,
    destination: &str,
    now: &str,
) -> Result<(), StoreError> {
    let expired: Vec<(String,)> = exec
        .rows(
            &format!(
                "SELECT id FROM delivery_jobs WHERE destination = $1 AND status = 'running' \
                 AND locked_until < {now} LIMIT 1"
            ),
            &[destination.into()],
        )
        .await?;
    if expired.is_empty() {
        return Ok(());
    }
    let statements = [
        format!(
            "UPDATE delivery_jobs SET attempt = 1 WHERE attempt = 0 AND id IN (SELECT p.id \
             FROM delivery_jobs r JOIN delivery_jobs p ON p.destination = r.destination \
             AND p.subject_id = r.subject_id AND p.status = 'pending' \
             WHERE r.destination = $1 AND r.status = 'running' AND r.locked_until < {now})"
        ),
        format!(
            "DELETE FROM delivery_jobs WHERE destination = $1 AND status = 'running' AND locked_until < {now} \
             AND EXISTS (SELECT 1 FROM delivery_jobs p WHERE p.destination = delivery_jobs.destination \
             AND p.subject_id = delivery_jobs.subject_id AND p.status = 'pending')"
        ),
        format!(
            "UPDATE delivery_jobs SET status = 'pending', locked_until = NULL, lease_token = NULL, \
             attempt = attempt + 1 WHERE destination = $1 AND status = 'running' AND locked_until < {now}"
        ),
    ];
    for sql in &statements {
        exec.execute(sql, &[destination.into()]).await?;
    }
    Ok(())
}

/// Claims up to `limit` due pending jobs of `destination` for `lease`,
/// skipping every pair with a delivery in flight. Jobs whose lease expired
/// (their worker died or hung) are first handed back, as a failed attempt:
/// folded into the pair's pending job, or made pending again.
pub(super) async fn claim(
    store: &SqlStore,
    destination: &str,
    limit: usize,
    lease: Duration,
    mode: ClaimMode,
) -> Result<Vec<DeliveryJob>, StoreError> {
    let op = Claim {
        destination: destination.to_string(),
        limit,
        lease,
        mode,
        token: uuid::Uuid::new_v4().simple().to_string(),
    };
    let token = op.token.clone();
    let rows = store.transact(Durability::Bookkeeping, op).await?;
    rows.into_iter().map(|r| job_from_row(r, &token)).collect()
}

struct Claim {
    destination: String,
    limit: usize,
    lease: Duration,
    mode: ClaimMode,
    token: String,
}

impl WriteOp for Claim {
    type Output = Vec<JobRow>;

    async fn run<E: Exec>(self, exec: &mut E) -> Result<Vec<JobRow>, StoreError> {
        let d = exec.dialect();
        let now = d.now_ms();
        hand_back_expired(exec, &self.destination, now).await?;
        let sql = format!(
            "UPDATE delivery_jobs SET status = 'running', locked_until = {now} + $2, lease_token = $3 \
             WHERE id IN (SELECT j.id FROM delivery_jobs j \
             WHERE j.destination = $1 AND j.status = 'pending' AND j.not_before <= {now} \
             AND NOT EXISTS (SELECT 1 FROM delivery_jobs r WHERE r.destination = j.destination \
             AND r.subject_id = j.subject_id AND r.status IN ('running', 'waiting')) \
             {held_back} ORDER BY j.not_before LIMIT $4{skip}) \
             RETURNING {JOB_COLUMNS}",
            skip = d.skip_locked(),
            held_back = match self.mode {
                ClaimMode::Deliver => HELD_BACK.replace("{now}", now),
                ClaimMode::Probe => String::new(),
            },
        );
        exec.rows(
            &sql,
            &[
                Param::from(&self.destination),
                (self.lease.as_millis() as i64).into(),
                Param::from(&self.token),
                (self.limit as i64).into(),
            ],
        )
        .await
    }
}

/// Claims up to `limit` waiting jobs of `destination` whose ticket is due
/// for a check. They stay `waiting` (their pair stays held); the lease
/// fences the check's result.
pub(super) async fn claim_tickets(
    store: &SqlStore,
    destination: &str,
    limit: usize,
    lease: Duration,
) -> Result<Vec<DeliveryJob>, StoreError> {
    let d = store.dialect;
    let now = d.now_ms();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut tx = store.begin_write_as(Durability::Bookkeeping).await?;
    let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE delivery_jobs SET locked_until = {now} + $2, lease_token = $3 \
         WHERE id IN (SELECT id FROM delivery_jobs \
         WHERE destination = $1 AND status = 'waiting' AND not_before <= {now} \
         AND (locked_until IS NULL OR locked_until < {now}) \
         ORDER BY not_before LIMIT $4{skip}) \
         RETURNING {JOB_COLUMNS}",
        skip = d.skip_locked()
    )))
    .bind(destination)
    .bind(lease.as_millis() as i64)
    .bind(&token)
    .bind(limit as i64)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.into_iter().map(|r| job_from_row(r, &token)).collect()
}

/// How long until `destination` has work: a pending job due (None when it
/// has none, Some(ZERO) when one is due now), by the database's clock.
/// A read, so an idle destination costs no write.
pub(super) async fn next_due(
    store: &SqlStore,
    destination: &str,
) -> Result<Option<Duration>, StoreError> {
    let now = store.dialect.now_ms();
    let row: (Option<i64>, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT MIN(not_before), {now} FROM delivery_jobs WHERE destination = $1 \
         AND (status = 'pending' OR (status = 'waiting' AND (locked_until IS NULL OR locked_until < {now})))"
    )))
    .bind(destination)
    .fetch_one(&store.pool)
    .await?;
    Ok(row
        .0
        .map(|at| Duration::from_millis((at - row.1).max(0) as u64)))
}

/// Records finished jobs in one transaction, in a fixed number of
/// statements. Fenced: only jobs whose row still carries the claim's lease
/// token count; the others were reclaimed after their lease expired and
/// belong to another claim now, so nothing of them is written. Returns how
/// many were still owned.
pub(super) async fn finish(store: &SqlStore, results: &[Finished]) -> Result<u64, StoreError> {
    if results.is_empty() {
        return Ok(0);
    }
    let op = Finish {
        results: results.to_vec(),
    };
    store.transact(Durability::Bookkeeping, op).await
}

struct Finish {
    results: Vec<Finished>,
}

impl WriteOp for Finish {
    type Output = u64;

    async fn run<E: Exec>(self, exec: &mut E) -> Result<u64, StoreError> {
        let d = exec.dialect();
        let now = super::now_ms();
        let results = &self.results;
        let ids: Vec<&str> = results.iter().map(|r| r.job.id.as_str()).collect();
        let tokens: HashSet<&str> = results.iter().map(|r| r.job.lease_token.as_str()).collect();
        let tokens: Vec<&str> = tokens.into_iter().collect();
        let (ids, tokens) = (
            serde_json::to_string(&ids)?,
            serde_json::to_string(&tokens)?,
        );
        let owned: Vec<(String,)> = exec
            .rows(
                &format!(
                    "DELETE FROM delivery_jobs WHERE id IN ({}) AND lease_token IN ({}) RETURNING id",
                    d.json_strings(1),
                    d.json_strings(2)
                ),
                &[Param::from(&ids), Param::from(&tokens)],
            )
            .await?;
        let owned: HashSet<String> = owned.into_iter().map(|r| r.0).collect();
        let mine: Vec<&Finished> = results
            .iter()
            .filter(|r| owned.contains(&r.job.id))
            .collect();
        write_attempts(d, exec, &mine, now).await?;
        write_holdings(d, exec, &mine, now).await?;
        write_next_steps(d, exec, &mine, now).await?;
        write_counts(d, exec, &mine, now).await?;
        Ok(owned.len() as u64)
    }
}

async fn write_attempts<E: Exec>(
    d: Dialect,
    exec: &mut E,
    results: &[&Finished],
    now: i64,
) -> Result<(), StoreError> {
    let rows: Vec<Value> = results
        .iter()
        .filter(|r| r.attempted)
        .map(|r| {
            json!({
                "job_id": r.job.id,
                "destination": r.job.destination,
                "subject_id": r.job.subject_id,
                "attempt": r.job.attempt + 1,
                "action": r.action.map_or("none", |a| a.as_str()),
                "outcome": r.outcome.as_str(),
                "status_code": r.status_code,
                "latency_ms": r.latency_ms,
                "detail": r.detail,
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let source = d.json_rows(
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
    let rows_json = Value::Array(rows).to_string();
    exec.execute(
        &format!(
        "INSERT INTO delivery_attempts (job_id, destination, subject_id, attempt, action, outcome, \
         status_code, latency_ms, detail, created_at) \
         SELECT job_id, destination, subject_id, attempt, action, outcome, status_code, latency_ms, \
         detail, $2 FROM ({source}) AS x"
        ),
        &[Param::from(&rows_json), Param::from(now)],
    )
    .await?;
    Ok(())
}

/// What each destination holds now, for the delivered (or confirmed) jobs.
async fn write_holdings<E: Exec>(
    d: Dialect,
    exec: &mut E,
    results: &[&Finished],
    now: i64,
) -> Result<(), StoreError> {
    // One row per pair: an upsert may not touch a row twice.
    let mut latest: BTreeMap<(&str, &str), &Holding> = BTreeMap::new();
    for r in results {
        if let Some(h) = &r.holding {
            latest.insert((r.job.destination.as_str(), r.job.subject_id.as_str()), h);
        }
    }
    if latest.is_empty() {
        return Ok(());
    }
    let rows: Vec<Value> = latest
        .into_iter()
        .map(|((destination, subject_id), h)| {
            json!({
                "destination": destination,
                "subject_id": subject_id,
                "state": h.state.as_str(),
                "record_id": h.record_id,
                "identity": (!h.identity.is_empty()).then(|| Value::Object(h.identity.clone()).to_string()),
            })
        })
        .collect();
    let source = d.json_rows(
        1,
        &[
            ("destination", "text"),
            ("subject_id", "text"),
            ("state", "text"),
            ("record_id", "text"),
            ("identity", "text"),
        ],
    );
    // A vendor record id or identity once known is kept when an answer
    // carries none (a delete's answer rarely names the record).
    let rows_json = Value::Array(rows).to_string();
    exec.execute(
        &format!(
        "INSERT INTO destination_subjects (destination, subject_id, state, record_id, identity, updated_at) \
         SELECT destination, subject_id, state, record_id, identity, $2 FROM ({source}) AS x WHERE true \
         ON CONFLICT (destination, subject_id) DO UPDATE SET state = excluded.state, \
         record_id = COALESCE(excluded.record_id, destination_subjects.record_id), \
         identity = COALESCE(excluded.identity, destination_subjects.identity), \
         updated_at = excluded.updated_at"
        ),
        &[Param::from(&rows_json), Param::from(now)],
    )
    .await?;
    Ok(())
}

/// Retries (merged into the pair's pending job), dead letters and waiting
/// tickets: one statement each for the whole batch.
async fn write_next_steps<E: Exec>(
    d: Dialect,
    exec: &mut E,
    results: &[&Finished],
    now: i64,
) -> Result<(), StoreError> {
    let mut retries = Vec::new();
    let mut dead = Vec::new();
    let mut waiting = Vec::new();
    for r in results {
        let job = &r.job;
        match &r.next {
            NextStep::Done => {}
            NextStep::Retry { after, counted } => retries.push(json!({
                "id": job.id,
                "destination": job.destination,
                "subject_id": job.subject_id,
                "reason": if *counted { JobReason::Retry } else { job.reason }.as_str(),
                "attempt": job.attempt + i64::from(*counted),
                "delay": after.as_millis() as i64,
                "first_enqueued_at": job.first_enqueued_at,
                "traceparent": job.traceparent,
            })),
            NextStep::DeadLetter => dead.push(json!({
                "id": job.id,
                "destination": job.destination,
                "subject_id": job.subject_id,
                "attempts": job.attempt + 1,
                "status_code": r.status_code,
                "detail": r.detail.clone().unwrap_or_default(),
            })),
            NextStep::Wait {
                ticket,
                item,
                after,
            } => waiting.push(json!({
                "id": job.id,
                "destination": job.destination,
                "subject_id": job.subject_id,
                "reason": job.reason.as_str(),
                "attempt": job.attempt,
                "delay": after.as_millis() as i64,
                "first_enqueued_at": job.first_enqueued_at,
                "ticket": ticket,
                "ticket_item": serde_json::to_string(item)?,
            })),
        }
    }
    let (max, min) = (d.greatest(), d.least());
    let clock = d.now_ms();
    if !retries.is_empty() {
        let source = d.json_rows(
            1,
            &[
                ("id", "text"),
                ("destination", "text"),
                ("subject_id", "text"),
                ("reason", "text"),
                ("attempt", "bigint"),
                ("delay", "bigint"),
                ("first_enqueued_at", "bigint"),
                ("traceparent", "text"),
            ],
        );
        let rows_json = Value::Array(retries).to_string();
        exec.execute(
            &format!(
            "INSERT INTO delivery_jobs (id, destination, subject_id, reason, status, attempt, not_before, \
             locked_until, first_enqueued_at, traceparent) \
             SELECT id, destination, subject_id, reason, 'pending', attempt, {clock} + delay, NULL, \
             first_enqueued_at, traceparent FROM ({source}) AS x WHERE true \
             ON CONFLICT (destination, subject_id) WHERE status = 'pending' DO UPDATE SET \
             attempt = {max}(delivery_jobs.attempt, excluded.attempt), \
             not_before = {max}(delivery_jobs.not_before, excluded.not_before), \
             first_enqueued_at = {min}(delivery_jobs.first_enqueued_at, excluded.first_enqueued_at)"
            ),
            &[Param::from(&rows_json)],
        )
        .await?;
    }
    if !dead.is_empty() {
        let source = d.json_rows(
            1,
            &[
                ("id", "text"),
                ("destination", "text"),
                ("subject_id", "text"),
                ("attempts", "bigint"),
                ("status_code", "bigint"),
                ("detail", "text"),
            ],
        );
        let rows_json = Value::Array(dead).to_string();
        exec.execute(
            &format!(
            "INSERT INTO dead_letters (id, destination, subject_id, attempts, status_code, detail, \
             created_at, replayed_at) \
             SELECT id, destination, subject_id, attempts, status_code, detail, $2, NULL \
             FROM ({source}) AS x WHERE true \
             ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, \
             status_code = excluded.status_code, detail = excluded.detail, \
             created_at = excluded.created_at, replayed_at = NULL"
            ),
            &[Param::from(&rows_json), Param::from(now)],
        )
        .await?;
    }
    if !waiting.is_empty() {
        let source = d.json_rows(
            1,
            &[
                ("id", "text"),
                ("destination", "text"),
                ("subject_id", "text"),
                ("reason", "text"),
                ("attempt", "bigint"),
                ("delay", "bigint"),
                ("first_enqueued_at", "bigint"),
                ("ticket", "text"),
                ("ticket_item", "text"),
            ],
        );
        let rows_json = Value::Array(waiting).to_string();
        exec.execute(
            &format!(
            "INSERT INTO delivery_jobs (id, destination, subject_id, reason, status, attempt, not_before, \
             locked_until, first_enqueued_at, ticket, ticket_item) \
             SELECT id, destination, subject_id, reason, 'waiting', attempt, {clock} + delay, NULL, \
             first_enqueued_at, ticket, ticket_item FROM ({source}) AS x"
            ),
            &[Param::from(&rows_json)],
        )
        .await?;
    }
    Ok(())
}

/// Delivered and failed attempts per destination and minute.
async fn write_counts<E: Exec>(
    d: Dialect,
    exec: &mut E,
    results: &[&Finished],
    now: i64,
) -> Result<(), StoreError> {
    let minute = now / 60_000;
    let mut counts: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for r in results.iter().filter(|r| r.attempted) {
        let c = counts.entry(r.job.destination.as_str()).or_default();
        if r.outcome == super::AttemptOutcome::Delivered {
            c.0 += 1;
        } else if r.outcome.is_failure() {
            c.1 += 1;
        }
    }
    counts.retain(|_, c| *c != (0, 0));
    if counts.is_empty() {
        return Ok(());
    }
    let rows: Vec<Value> = counts
        .into_iter()
        .map(|(destination, (delivered, failed))| {
            json!({"destination": destination, "minute": minute, "delivered": delivered, "failed": failed})
        })
        .collect();
    let source = d.json_rows(
        1,
        &[
            ("destination", "text"),
            ("minute", "bigint"),
            ("delivered", "bigint"),
            ("failed", "bigint"),
        ],
    );
    let rows_json = Value::Array(rows).to_string();
    exec.execute(
        &format!(
            "INSERT INTO destination_counts (destination, minute, delivered, failed) \
         SELECT destination, minute, delivered, failed FROM ({source}) AS x WHERE true \
         ON CONFLICT (destination, minute) DO UPDATE SET \
         delivered = destination_counts.delivered + excluded.delivered, \
         failed = destination_counts.failed + excluded.failed"
        ),
        &[Param::from(&rows_json)],
    )
    .await?;
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

/// Requeues dead letters (all of a destination, or one id); returns how many.
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
    let row: (i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM subjects), (SELECT COUNT(*) FROM changes), \
         (SELECT COUNT(*) FROM delivery_jobs WHERE status = 'pending'), \
         (SELECT COUNT(*) FROM delivery_jobs WHERE status = 'running'), \
         (SELECT COUNT(*) FROM delivery_jobs WHERE status = 'waiting'), \
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
        waiting_jobs: row.4,
        attempts: row.5,
        dead_letters: row.6,
        inbound_messages: row.7,
    })
}
