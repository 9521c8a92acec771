//! Persistence. One [`Store`] trait and one implementation, [`SqlStore`],
//! over SQLite or PostgreSQL (`sqlx::Any`): every operation is written once,
//! in the module of its aggregate, and the few dialect differences live in
//! `dialect`. All SQL lives under this module.
//!
//! - `subjects`: group-committed ingest (planned in `batch`), subject state.
//! - `jobs`: the delivery queue, attempts, dead letters, what destinations hold.
//! - `privacy`: access reports, erasure and its receipt, retention.
//! - `scim`: SCIM Users and Groups.
//! - `backfills`: queueing every subject for a destination, resumably.
//! - `retention`: pruning the queue's history by age.
//! - `seed`: made-up subjects for tests and benchmarks.
//! - `admin_reads`: subject search, change log, receipts for the admin API.

mod admin_reads;
mod backfills;
mod batch;
mod db;
pub mod destinations;
pub mod dialect;
mod exec;
mod jobs;
pub mod models;
pub mod notify;
mod privacy;
mod retention;
mod scim;
mod scim_rows;
mod seed;
mod sqlite_writer;
mod subjects;

use std::sync::Arc;
use std::time::Duration;

pub use admin_reads::{ChangeEntry, SubjectHit};
pub use backfills::{BackfillClaim, BackfillState, BackfillStatus, BackfillStep};
pub use db::SqlStore;
pub use destinations::{
    DestinationReport, DestinationState, DestinationStatus, LastError, Pause, PausedBy,
};
pub use dialect::Dialect;
pub use jobs::ClaimMode;
pub use models::*;
pub use retention::{PruneCutoffs, Pruned};
pub use scim_rows::*;
pub use seed::SEED_SOURCE;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// From the SQLite writer thread (`sqlite_writer`).
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored JSON is corrupt")]
    Json(#[from] serde_json::Error),
    /// A stored value this version cannot read (names the column).
    #[error("stored value is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
}

impl StoreError {
    /// Whether the database refused the data itself (a constraint or a
    /// trigger, a value it cannot hold, a size limit), so that the same
    /// change can never commit and must not be retried: PostgreSQL SQLSTATE
    /// classes 22, 23 and 54; SQLite CONSTRAINT, TOOBIG and MISMATCH.
    pub fn is_refusal(&self) -> bool {
        if let StoreError::Sqlite(e) = self {
            use rusqlite::ErrorCode::{ConstraintViolation, TooBig, TypeMismatch};
            return matches!(
                e.sqlite_error_code(),
                Some(ConstraintViolation | TooBig | TypeMismatch)
            );
        }
        let StoreError::Database(sqlx::Error::Database(e)) = self else {
            return false;
        };
        let Some(code) = e.code() else { return false };
        if e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some()
        {
            return ["22", "23", "54"]
                .iter()
                .any(|class| code.starts_with(class));
        }
        code.parse::<i32>()
            .is_ok_and(|extended| matches!(extended & 0xff, 18..=20))
    }

    /// For logs: this error and its cause, by their Display texts. A
    /// database's Display text names constraints and columns, never the
    /// values (PostgreSQL keeps those in `detail`, which Debug would print).
    pub fn log_text(&self) -> String {
        match std::error::Error::source(self) {
            Some(cause) => format!("{self}: {cause}"),
            None => self.to_string(),
        }
    }
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies inbound changes and fans out their delivery jobs, all in one
    /// transaction: when this returns Ok, every item is durable.
    async fn ingest(&self, items: &[IngestItem]) -> Result<Vec<IngestOutcome>, StoreError>;

    /// Claims up to `limit` due pending jobs of `destination` for `lease`
    /// (on the database's clock), skipping every (destination, subject) with
    /// a delivery in flight; nothing while the destination is paused or
    /// throttled, unless `mode` is a probe. Each claim has its own lease token.
    async fn claim(
        &self,
        destination: &str,
        limit: usize,
        lease: Duration,
        mode: ClaimMode,
    ) -> Result<Vec<DeliveryJob>, StoreError>;

    /// Claims waiting jobs of `destination` whose vendor ticket is due for a check.
    async fn claim_tickets(
        &self,
        destination: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<DeliveryJob>, StoreError>;

    /// How long until `destination` has due work (None: it has none).
    async fn next_due(&self, destination: &str) -> Result<Option<Duration>, StoreError>;

    /// Current state of these subjects (missing ids are absent).
    async fn load_subjects(&self, ids: &[String]) -> Result<Vec<SubjectState>, StoreError>;

    /// Records attempts and moves each job on (done, retry later, dead,
    /// waiting on a ticket), all in one commit. Fenced by lease token: jobs
    /// reclaimed by another claim are left alone. Returns how many were ours.
    async fn finish(&self, results: &[Finished]) -> Result<u64, StoreError>;

    /// Queues (destination, subject) unless a pending job already exists.
    async fn enqueue(
        &self,
        destination: &str,
        subject_id: &str,
        reason: JobReason,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Subject ids that are not tombstoned, for backfills.
    async fn subject_ids(&self, after: Option<&str>, limit: i64)
    -> Result<Vec<String>, StoreError>;

    async fn find_subject(&self, key: &SubjectKey) -> Result<Option<String>, StoreError>;

    async fn dead_letters(&self, destination: Option<&str>) -> Result<Vec<DeadLetter>, StoreError>;

    /// Requeues dead letters (all of a destination, or one id); returns how many.
    async fn replay_dead_letters(
        &self,
        destination: Option<&str>,
        id: Option<&str>,
        now: i64,
    ) -> Result<u64, StoreError>;

    async fn attempts(
        &self,
        subject_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AttemptRecord>, StoreError>;

    async fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Readiness: the store can commit (one tiny write; a read alone
    /// succeeds on a full disk).
    async fn ping(&self) -> Result<(), StoreError>;

    // Destinations (SQL in `destinations.rs`): state shared by every process.

    async fn destination_state(&self, name: &str) -> Result<DestinationState, StoreError>;

    /// Pauses a destination; a vendor pause is probed after `probe_in`.
    async fn pause_destination(
        &self,
        name: &str,
        by: PausedBy,
        reason: &str,
        probe_in: Option<Duration>,
    ) -> Result<(), StoreError>;

    /// Ends a pause; false when it was not paused.
    async fn resume_destination(&self, name: &str) -> Result<bool, StoreError>;

    /// No call to the destination for `wait` (a vendor's throttle).
    async fn throttle_destination(
        &self,
        name: &str,
        wait: Duration,
        reason: &str,
    ) -> Result<(), StoreError>;

    /// True when this process takes the due probe of a vendor pause.
    async fn take_probe(&self, name: &str, interval: Duration) -> Result<bool, StoreError>;

    /// Reserves `calls` start times `interval` apart on the destination's
    /// schedule shared by all processes; returns each one's delay from now.
    async fn reserve_calls(
        &self,
        name: &str,
        calls: u32,
        interval: Duration,
    ) -> Result<Vec<Duration>, StoreError>;

    async fn destination_reports(
        &self,
        names: &[String],
    ) -> Result<Vec<DestinationReport>, StoreError>;

    /// Drops per-minute destination counts older than `before` (Unix ms).
    async fn prune_destination_counts(&self, before: i64) -> Result<u64, StoreError>;

    /// How many ingest transactions may usefully run at once.
    fn parallel_writers(&self) -> usize;

    /// Everything held about a subject: profile, consent and its history,
    /// destinations, changes, deliveries, erasure receipt.
    async fn subject_report(&self, subject_id: &str) -> Result<Option<SubjectReport>, StoreError>;

    /// Starts an erasure: tombstone, detach the external id (new events make a
    /// new subject), queue every destination. False if unknown or already asked.
    async fn request_erasure(
        &self,
        subject_id: &str,
        destinations: &[String],
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Completes erasures whose destinations all confirmed (or whose deadline
    /// passed): PII removed, a receipt kept. Returns the receipts written.
    async fn complete_erasures(
        &self,
        now: i64,
        deadline_ms: i64,
    ) -> Result<Vec<ErasureReceipt>, StoreError>;

    /// Drops delivery attempts older than `before` (their details may echo PII).
    async fn prune_attempts(&self, before: i64) -> Result<u64, StoreError>;

    // SCIM (SQL in `scim_sql.rs`): every write commits with its change and jobs.

    /// Live SCIM Users in the narrowed set, ordered by id, and their count.
    async fn scim_list_users(
        &self,
        narrowing: &UserNarrowing,
        offset: i64,
        limit: Option<i64>,
    ) -> Result<(Vec<ScimUserRecord>, i64), StoreError>;

    async fn scim_write_user(
        &self,
        write: &ScimUserWrite,
    ) -> Result<ScimWriteOutcome<ScimUserRecord>, StoreError>;

    /// Groups in the narrowed set, ordered by id, and their count.
    async fn scim_list_groups(
        &self,
        narrowing: &GroupNarrowing,
        offset: i64,
        limit: Option<i64>,
        with_members: bool,
    ) -> Result<(Vec<ScimGroupRecord>, i64), StoreError>;

    /// Also rewrites each affected member's `groups` and queues it.
    async fn scim_write_group(
        &self,
        write: &ScimGroupWrite,
    ) -> Result<ScimWriteOutcome<ScimGroupRecord>, StoreError>;

    // Backfills (SQL in `backfills.rs`), retention and seeding.

    /// Takes the backfill lease of `destination` and returns the run to
    /// continue (the unfinished one unless `restart`), or who holds it.
    async fn claim_backfill(
        &self,
        destination: &str,
        restart: bool,
        lease: Duration,
    ) -> Result<BackfillClaim, StoreError>;

    /// Queues the next `batch` subjects of the run `token` holds, moves its
    /// cursor and renews its lease, in one commit.
    async fn backfill_step(
        &self,
        destination: &str,
        token: &str,
        batch: usize,
        lease: Duration,
    ) -> Result<BackfillStep, StoreError>;

    /// Gives a backfill lease back; the cursor stays for the next run.
    async fn release_backfill(&self, destination: &str, token: &str) -> Result<(), StoreError>;

    /// The latest backfill of each named destination that had one.
    async fn backfill_statuses(&self, names: &[String]) -> Result<Vec<BackfillStatus>, StoreError>;

    /// Removes history past the cutoffs, `batch` rows per transaction.
    async fn prune_history(
        &self,
        cutoffs: &PruneCutoffs,
        batch: usize,
    ) -> Result<Pruned, StoreError>;

    /// Creates subjects `seed-1` .. `seed-N` (the missing ones), for tests
    /// and benchmarks; returns how many were created.
    async fn seed_subjects(&self, count: u64) -> Result<u64, StoreError>;

    // Admin reads (SQL in `admin_reads.rs`).

    /// Subjects whose hub id, `externalId` or e-mail is `text`, by id.
    async fn search_subjects(&self, text: &str, limit: i64) -> Result<Vec<SubjectHit>, StoreError>;

    /// The change log, newest first; `before` (a change id) pages back.
    async fn recent_changes(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ChangeEntry>, StoreError>;

    /// One dead letter by id, replayed or not.
    async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, StoreError>;

    /// Drops one dead letter that was not replayed; false when none.
    async fn discard_dead_letter(&self, id: &str) -> Result<bool, StoreError>;

    /// Erasure receipts, newest first.
    async fn erasure_receipts(&self, limit: i64) -> Result<Vec<ErasureReceipt>, StoreError>;

    async fn erasure_receipt(&self, subject_id: &str)
    -> Result<Option<ErasureReceipt>, StoreError>;
}

/// Opens the store a URL names and brings its schema up to date (waiting
/// at most the default `store.timeout` for a connection).
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    connect_with(url, crate::config::StoreSettings::default().timeout).await
}

/// [`connect`] with the configured `store.timeout`.
pub async fn connect_with(url: &str, timeout: Duration) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqlStore::connect(url, timeout).await?))
}

#[async_trait::async_trait]
impl Store for SqlStore {
    async fn ingest(&self, items: &[IngestItem]) -> Result<Vec<IngestOutcome>, StoreError> {
        subjects::ingest(self, items).await
    }

    async fn claim(
        &self,
        destination: &str,
        limit: usize,
        lease: Duration,
        mode: ClaimMode,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        jobs::claim(self, destination, limit, lease, mode).await
    }

    async fn claim_tickets(
        &self,
        destination: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        jobs::claim_tickets(self, destination, limit, lease).await
    }

    async fn next_due(&self, destination: &str) -> Result<Option<Duration>, StoreError> {
        jobs::next_due(self, destination).await
    }

    async fn load_subjects(&self, ids: &[String]) -> Result<Vec<SubjectState>, StoreError> {
        subjects::load(self, ids).await
    }

    async fn finish(&self, results: &[Finished]) -> Result<u64, StoreError> {
        jobs::finish(self, results).await
    }

    async fn enqueue(
        &self,
        destination: &str,
        subject_id: &str,
        reason: JobReason,
        now: i64,
    ) -> Result<bool, StoreError> {
        jobs::enqueue(self, destination, subject_id, reason, now).await
    }

    async fn subject_ids(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        subjects::ids_after(self, after, limit).await
    }

    async fn find_subject(&self, key: &SubjectKey) -> Result<Option<String>, StoreError> {
        subjects::find(self, key).await
    }

    async fn dead_letters(&self, destination: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        jobs::dead_letters(self, destination).await
    }

    async fn replay_dead_letters(
        &self,
        destination: Option<&str>,
        id: Option<&str>,
        now: i64,
    ) -> Result<u64, StoreError> {
        jobs::replay_dead_letters(self, destination, id, now).await
    }

    async fn attempts(
        &self,
        subject_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        jobs::attempts(self, subject_id, limit).await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        jobs::stats(self).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.probe_commit().await
    }

    async fn destination_state(&self, name: &str) -> Result<DestinationState, StoreError> {
        destinations::state(self, name).await
    }

    async fn pause_destination(
        &self,
        name: &str,
        by: PausedBy,
        reason: &str,
        probe_in: Option<Duration>,
    ) -> Result<(), StoreError> {
        destinations::pause(self, name, by, reason, probe_in).await
    }

    async fn resume_destination(&self, name: &str) -> Result<bool, StoreError> {
        destinations::resume(self, name).await
    }

    async fn throttle_destination(
        &self,
        name: &str,
        wait: Duration,
        reason: &str,
    ) -> Result<(), StoreError> {
        destinations::throttle(self, name, wait, reason).await
    }

    async fn take_probe(&self, name: &str, interval: Duration) -> Result<bool, StoreError> {
        destinations::take_probe(self, name, interval).await
    }

    async fn reserve_calls(
        &self,
        name: &str,
        calls: u32,
        interval: Duration,
    ) -> Result<Vec<Duration>, StoreError> {
        destinations::reserve_calls(self, name, calls, interval).await
    }

    async fn destination_reports(
        &self,
        names: &[String],
    ) -> Result<Vec<DestinationReport>, StoreError> {
        destinations::reports(self, names).await
    }

    async fn prune_destination_counts(&self, before: i64) -> Result<u64, StoreError> {
        destinations::prune_counts(self, before).await
    }

    fn parallel_writers(&self) -> usize {
        // SQLite has one writer at a time; PostgreSQL gains from a few.
        match self.dialect {
            Dialect::Sqlite => 1,
            Dialect::Postgres => 4,
        }
    }

    async fn subject_report(&self, subject_id: &str) -> Result<Option<SubjectReport>, StoreError> {
        self.privacy_subject_report(subject_id).await
    }

    async fn request_erasure(
        &self,
        subject_id: &str,
        destinations: &[String],
        now: i64,
    ) -> Result<bool, StoreError> {
        self.privacy_request_erasure(subject_id, destinations, now)
            .await
    }

    async fn complete_erasures(
        &self,
        now: i64,
        deadline_ms: i64,
    ) -> Result<Vec<ErasureReceipt>, StoreError> {
        self.privacy_complete_erasures(now, deadline_ms).await
    }

    async fn prune_attempts(&self, before: i64) -> Result<u64, StoreError> {
        self.privacy_prune_attempts(before).await
    }

    async fn scim_list_users(
        &self,
        narrowing: &UserNarrowing,
        offset: i64,
        limit: Option<i64>,
    ) -> Result<(Vec<ScimUserRecord>, i64), StoreError> {
        self.scim_list_users_in(narrowing, offset, limit).await
    }

    async fn scim_write_user(
        &self,
        write: &ScimUserWrite,
    ) -> Result<ScimWriteOutcome<ScimUserRecord>, StoreError> {
        self.scim_write_user_in(write).await
    }

    async fn scim_list_groups(
        &self,
        narrowing: &GroupNarrowing,
        offset: i64,
        limit: Option<i64>,
        with_members: bool,
    ) -> Result<(Vec<ScimGroupRecord>, i64), StoreError> {
        self.scim_list_groups_in(narrowing, offset, limit, with_members)
            .await
    }

    async fn scim_write_group(
        &self,
        write: &ScimGroupWrite,
    ) -> Result<ScimWriteOutcome<ScimGroupRecord>, StoreError> {
        self.scim_write_group_in(write).await
    }

    async fn claim_backfill(
        &self,
        destination: &str,
        restart: bool,
        lease: Duration,
    ) -> Result<BackfillClaim, StoreError> {
        backfills::claim(self, destination, restart, lease).await
    }

    async fn backfill_step(
        &self,
        destination: &str,
        token: &str,
        batch: usize,
        lease: Duration,
    ) -> Result<BackfillStep, StoreError> {
        backfills::step(self, destination, token, batch, lease).await
    }

    async fn release_backfill(&self, destination: &str, token: &str) -> Result<(), StoreError> {
        backfills::release(self, destination, token).await
    }

    async fn backfill_statuses(&self, names: &[String]) -> Result<Vec<BackfillStatus>, StoreError> {
        backfills::statuses(self, names).await
    }

    async fn prune_history(
        &self,
        cutoffs: &PruneCutoffs,
        batch: usize,
    ) -> Result<Pruned, StoreError> {
        retention::prune_history(self, cutoffs, batch).await
    }

    async fn seed_subjects(&self, count: u64) -> Result<u64, StoreError> {
        seed::subjects(self, count).await
    }

    async fn search_subjects(&self, text: &str, limit: i64) -> Result<Vec<SubjectHit>, StoreError> {
        admin_reads::search_subjects(self, text, limit).await
    }

    async fn recent_changes(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ChangeEntry>, StoreError> {
        admin_reads::recent_changes(self, before, limit).await
    }

    async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, StoreError> {
        admin_reads::dead_letter(self, id).await
    }

    async fn discard_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        admin_reads::discard_dead_letter(self, id).await
    }

    async fn erasure_receipts(&self, limit: i64) -> Result<Vec<ErasureReceipt>, StoreError> {
        admin_reads::erasure_receipts(self, limit).await
    }

    async fn erasure_receipt(
        &self,
        subject_id: &str,
    ) -> Result<Option<ErasureReceipt>, StoreError> {
        admin_reads::erasure_receipt(self, subject_id).await
    }
}

/// Milliseconds since the Unix epoch: the store's one time unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
