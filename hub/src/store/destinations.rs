//! Destination state shared by every hub process: active, paused (by the
//! vendor's refusal of our credentials, or by an admin) with its next probe,
//! throttled until a time; the shared rate limit; and what `hub
//! destinations` reports. All times are on the database's clock.

use std::time::Duration;

use serde::Serialize;

use super::db::Durability;
use super::{SqlStore, StoreError};

/// Who paused a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PausedBy {
    /// The vendor refused our credentials (401/403): probed now and then,
    /// resumed by the first probe that succeeds.
    Vendor,
    /// `hub destinations pause`: only `resume` ends it.
    Admin,
}

impl PausedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            PausedBy::Vendor => "vendor",
            PausedBy::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<PausedBy> {
        [PausedBy::Vendor, PausedBy::Admin]
            .into_iter()
            .find(|p| p.as_str() == text)
    }
}

/// A pause and its probe schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pause {
    pub by: PausedBy,
    pub reason: String,
    /// Unix ms.
    pub since: i64,
    /// Unix ms; None when paused by an admin (no probes).
    pub next_probe_at: Option<i64>,
}

/// A destination's state as read, with the database's clock at that moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DestinationState {
    pub pause: Option<Pause>,
    /// Unix ms; in the past once the throttle is over.
    pub throttled_until: Option<i64>,
    pub throttle_reason: Option<String>,
    /// The database's clock when this was read, Unix ms.
    pub now: i64,
}

/// What the engine does with a destination now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DestinationStatus {
    Active,
    Paused,
    Throttled,
}

impl DestinationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationStatus::Active => "active",
            DestinationStatus::Paused => "paused",
            DestinationStatus::Throttled => "throttled",
        }
    }
}

impl DestinationState {
    pub fn status(&self) -> DestinationStatus {
        if self.pause.is_some() {
            DestinationStatus::Paused
        } else if self.throttle_left().is_some() {
            DestinationStatus::Throttled
        } else {
            DestinationStatus::Active
        }
    }

    /// How much longer the vendor asked us to wait, if at all.
    pub fn throttle_left(&self) -> Option<Duration> {
        self.throttled_until
            .filter(|until| *until > self.now)
            .map(|until| Duration::from_millis((until - self.now) as u64))
    }

    /// Time until the next probe of a vendor pause (ZERO when due).
    pub fn probe_in(&self) -> Option<Duration> {
        let at = self.pause.as_ref()?.next_probe_at?;
        Some(Duration::from_millis((at - self.now).max(0) as u64))
    }
}

/// One line of `hub destinations`.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DestinationReport {
    pub name: String,
    pub state: DestinationStatus,
    /// Why it is paused or throttled.
    pub reason: Option<String>,
    pub paused_by: Option<PausedBy>,
    /// Unix ms.
    pub since: Option<i64>,
    pub next_probe_at: Option<i64>,
    pub throttled_until: Option<i64>,
    pub pending: i64,
    /// Deliveries in flight: calls running, and vendor jobs awaiting confirmation.
    pub running: i64,
    pub waiting: i64,
    /// Age of the oldest pending job (lag), ms.
    pub oldest_pending_ms: Option<i64>,
    pub delivered_last_hour: i64,
    pub failed_last_hour: i64,
    pub last_error: Option<LastError>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LastError {
    pub at: i64,
    pub outcome: String,
    pub status_code: Option<i64>,
    pub detail: Option<String>,
}

type StateRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
);

/// Makes sure the destination has a state row (active).
async fn ensure_row(tx: &mut super::db::WriteTx, name: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO destination_states (destination, state, rate_tat, updated_at) \
         VALUES ($1, 'active', 0, $2) ON CONFLICT (destination) DO NOTHING",
    )
    .bind(name)
    .bind(super::now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn state(store: &SqlStore, name: &str) -> Result<DestinationState, StoreError> {
    let now = store.dialect.now_ms();
    let row: Option<StateRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT s.state, s.paused_by, s.pause_reason, s.paused_at, s.next_probe_at, s.throttled_until, \
         s.throttle_reason, {now} FROM (SELECT 1 AS one) AS o \
         LEFT JOIN destination_states s ON s.destination = $1"
    )))
    .bind(name)
    .fetch_optional(&store.pool)
    .await?;
    let Some((
        state,
        paused_by,
        reason,
        since,
        next_probe_at,
        throttled_until,
        throttle_reason,
        now,
    )) = row
    else {
        return Ok(DestinationState::default());
    };
    let pause = match state.as_deref() {
        Some("paused") => Some(Pause {
            by: paused_by
                .as_deref()
                .and_then(PausedBy::parse)
                .ok_or(StoreError::Corrupt("destination_states.paused_by"))?,
            reason: reason.unwrap_or_default(),
            since: since.unwrap_or(now),
            next_probe_at,
        }),
        _ => None,
    };
    Ok(DestinationState {
        pause,
        throttled_until,
        throttle_reason,
        now,
    })
}

/// Pauses `name`. A vendor pause gets its first probe after `probe_in`; an
/// admin pause replaces a vendor one, never the other way round.
pub(super) async fn pause(
    store: &SqlStore,
    name: &str,
    by: PausedBy,
    reason: &str,
    probe_in: Option<Duration>,
) -> Result<(), StoreError> {
    let now = store.dialect.now_ms();
    let mut tx = store.begin_write().await?;
    ensure_row(&mut tx, name).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE destination_states SET state = 'paused', paused_by = $2, pause_reason = $3, \
         paused_at = CASE WHEN state = 'paused' THEN paused_at ELSE {now} END, \
         next_probe_at = CASE WHEN $4 < 0 THEN NULL ELSE {now} + $4 END, updated_at = {now} \
         WHERE destination = $1 AND NOT (state = 'paused' AND paused_by = 'admin' AND $2 = 'vendor')"
    )))
    .bind(name)
    .bind(by.as_str())
    .bind(reason)
    .bind(probe_in.map_or(-1, |d| d.as_millis() as i64))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends a pause. Time paused does not count towards the pending jobs'
/// `max_age`: their clock restarts now. Returns false when it was not paused.
pub(super) async fn resume(store: &SqlStore, name: &str) -> Result<bool, StoreError> {
    let now = store.dialect.now_ms();
    let mut tx = store.begin_write().await?;
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE destination_states SET state = 'active', paused_by = NULL, pause_reason = NULL, \
         paused_at = NULL, next_probe_at = NULL, updated_at = {now} \
         WHERE destination = $1 AND state = 'paused'"
    )))
    .bind(name)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() > 0 {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE delivery_jobs SET first_enqueued_at = {now} \
             WHERE destination = $1 AND status = 'pending' AND first_enqueued_at < {now}"
        )))
        .bind(name)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(r.rows_affected() > 0)
}

/// The vendor asked us to wait: no call to `name` for `wait`. A later
/// throttle never shortens an earlier one.
pub(super) async fn throttle(
    store: &SqlStore,
    name: &str,
    wait: Duration,
    reason: &str,
) -> Result<(), StoreError> {
    let d = store.dialect;
    let now = d.now_ms();
    let max = d.greatest();
    let mut tx = store.begin_write_as(Durability::Bookkeeping).await?;
    ensure_row(&mut tx, name).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE destination_states SET throttled_until = {max}(COALESCE(throttled_until, 0), {now} + $2), \
         throttle_reason = $3, updated_at = {now} WHERE destination = $1"
    )))
    .bind(name)
    .bind(wait.as_millis() as i64)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Takes the next probe of a vendor pause, for this process alone: true
/// when the probe is due and nobody took it; the next one is then due after
/// `interval`.
pub(super) async fn take_probe(
    store: &SqlStore,
    name: &str,
    interval: Duration,
) -> Result<bool, StoreError> {
    let now = store.dialect.now_ms();
    let mut tx = store.begin_write_as(Durability::Bookkeeping).await?;
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE destination_states SET next_probe_at = {now} + $2, updated_at = {now} \
         WHERE destination = $1 AND state = 'paused' AND paused_by = 'vendor' AND next_probe_at <= {now}"
    )))
    .bind(name)
    .bind(interval.as_millis() as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(r.rows_affected() > 0)
}

/// Reserves `calls` start times, `interval` apart, on the destination's
/// shared schedule (GCRA: the row holds when the next call may start), and
/// returns how long from now each may start. Every process reserves on the
/// same row, so together they keep to the limit.
pub(super) async fn reserve_calls(
    store: &SqlStore,
    name: &str,
    calls: u32,
    interval: Duration,
) -> Result<Vec<Duration>, StoreError> {
    let d = store.dialect;
    let now_us = d.now_us();
    let max = d.greatest();
    let step = interval.as_micros().max(1) as i64;
    let calls = calls.max(1);
    let mut tx = store.begin_write_as(Durability::Bookkeeping).await?;
    ensure_row(&mut tx, name).await?;
    let (tat, now): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE destination_states SET rate_tat = {max}(rate_tat, {now_us}) + $2 \
         WHERE destination = $1 RETURNING rate_tat, {now_us}"
    )))
    .bind(name)
    .bind(step * i64::from(calls))
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let first = tat - step * i64::from(calls);
    Ok((0..i64::from(calls))
        .map(|i| Duration::from_micros((first + i * step - now).max(0) as u64))
        .collect())
}

type CountRow = (String, i64, i64, i64, Option<i64>);

/// State, queue and outcome figures of each named destination.
pub(super) async fn reports(
    store: &SqlStore,
    names: &[String],
) -> Result<Vec<DestinationReport>, StoreError> {
    let now = super::now_ms();
    let since_minute = (now - 3_600_000) / 60_000;
    let queues: Vec<CountRow> = sqlx::query_as(
        "SELECT destination, \
         CAST(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN status = 'waiting' THEN 1 ELSE 0 END) AS BIGINT), \
         MIN(CASE WHEN status = 'pending' THEN first_enqueued_at END) \
         FROM delivery_jobs GROUP BY destination",
    )
    .fetch_all(&store.pool)
    .await?;
    let counts: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT destination, CAST(SUM(delivered) AS BIGINT), CAST(SUM(failed) AS BIGINT) \
         FROM destination_counts \
         WHERE minute > $1 GROUP BY destination",
    )
    .bind(since_minute)
    .fetch_all(&store.pool)
    .await?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let state = state(store, name).await?;
        let queue = queues.iter().find(|q| &q.0 == name);
        let count = counts.iter().find(|c| &c.0 == name);
        let last_error: Option<(i64, String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT created_at, outcome, status_code, detail FROM delivery_attempts \
             WHERE destination = $1 AND outcome IN ('retry', 'dead', 'paused', 'throttled') \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&store.pool)
        .await?;
        let status = state.status();
        out.push(DestinationReport {
            name: name.clone(),
            state: status,
            reason: match status {
                DestinationStatus::Paused => state.pause.as_ref().map(|p| p.reason.clone()),
                DestinationStatus::Throttled => state.throttle_reason.clone(),
                DestinationStatus::Active => None,
            },
            paused_by: state.pause.as_ref().map(|p| p.by),
            since: state.pause.as_ref().map(|p| p.since),
            next_probe_at: state.pause.as_ref().and_then(|p| p.next_probe_at),
            throttled_until: state.throttle_left().and(state.throttled_until),
            pending: queue.map_or(0, |q| q.1),
            running: queue.map_or(0, |q| q.2),
            waiting: queue.map_or(0, |q| q.3),
            oldest_pending_ms: queue.and_then(|q| q.4).map(|t| (now - t).max(0)),
            delivered_last_hour: count.map_or(0, |c| c.1),
            failed_last_hour: count.map_or(0, |c| c.2),
            last_error: last_error.map(|(at, outcome, status_code, detail)| LastError {
                at,
                outcome,
                status_code,
                detail,
            }),
        });
    }
    Ok(out)
}

/// Drops per-minute counts older than a day.
pub(super) async fn prune_counts(store: &SqlStore, before_ms: i64) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM destination_counts WHERE minute < $1")
        .bind(before_ms / 60_000)
        .execute(&store.pool)
        .await?;
    Ok(r.rows_affected())
}
