//! SQLite's hot write transactions (ingest's group commit, claims, a
//! batch's outcomes) run whole on one thread of their own, on connections
//! of their own.
//!
//! sqlx runs each SQLite connection on a worker thread and hands every
//! statement, and every row of its result, across threads: a group commit
//! of ten statements was ten round trips of wake-ups, and SQLite's single
//! writer lock was held through all of them. Measured under load (`hub
//! bench`, 32 senders), the write gate was busy 83% of the run, 2.7 ms per
//! ingest commit of 17 events: the limit on throughput. Here a transaction
//! is one hand-off: the async side sends the whole [`WriteOp`], this thread
//! runs its statements as plain function calls and sends back the result
//! (docs/decisions.md §25).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::db::Durability;
use super::dialect::Dialect;
use super::exec::{Exec, Param, Tuple, WriteOp};

/// One queued transaction: `run` executes its statements (inside a
/// savepoint of the writer's transaction) and returns what to do once the
/// whole transaction has committed or failed.
struct Job {
    durability: Durability,
    /// Given no connection, the job is not run: it settles with the error
    /// that stopped the batch.
    run: RunJob,
}

type RunJob = Box<dyn FnOnce(Option<&Connection>) -> Settle + Send>;

/// Sends a job's answer: its own result if it failed, else the commit's.
type Settle = Box<dyn FnOnce(Result<(), &rusqlite::Error>) + Send>;

/// The most jobs one transaction of the writer carries.
const MAX_JOBS_PER_COMMIT: usize = 64;

/// The handle the store holds; the thread ends when it is dropped.
pub(super) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
}

/// The writer's two connections, one per durability (the same pragmas as
/// the sqlx pools of the same name, `db.rs`).
struct Connections {
    path: PathBuf,
    acknowledged: Option<Connection>,
    bookkeeping: Option<Connection>,
}

const STATEMENT_CACHE: usize = 64;

fn open(path: &Path, durability: Durability) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let synchronous = match durability {
        Durability::Acknowledged => "FULL",
        Durability::Bookkeeping => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON;"
    ))?;
    Ok(conn)
}

impl Connections {
    fn slot(&mut self, durability: Durability) -> &mut Option<Connection> {
        match durability {
            Durability::Acknowledged => &mut self.acknowledged,
            Durability::Bookkeeping => &mut self.bookkeeping,
        }
    }

    /// Runs `jobs` in one transaction, each in a savepoint of its own so
    /// that one that fails leaves the others whole, and answers each after
    /// the commit: an answer of success means committed. The commit is as
    /// durable as the most durable job asks.
    fn transact(&mut self, jobs: Vec<Job>) {
        let durability = if jobs
            .iter()
            .any(|j| j.durability == Durability::Acknowledged)
        {
            Durability::Acknowledged
        } else {
            Durability::Bookkeeping
        };
        let path = self.path.clone();
        let slot = self.slot(durability);
        if slot.is_none() {
            match open(&path, durability) {
                Ok(conn) => *slot = Some(conn),
                Err(e) => return settle_all(jobs_settled_unrun(jobs), Err(&e)),
            }
        }
        let conn = slot.as_ref().expect("opened above");
        let outcome = run_jobs(conn, jobs);
        // A commit that failed (a full disk) can leave the connection
        // inside a transaction that every later BEGIN would trip over:
        // open a fresh one next time instead.
        if !conn.is_autocommit() {
            *slot = None;
        }
        let (settles, result) = outcome;
        settle_all(settles, result.as_ref().map(|_| ()));
    }
}

fn jobs_settled_unrun(jobs: Vec<Job>) -> Vec<Settle> {
    jobs.into_iter().map(|job| (job.run)(None)).collect()
}

fn settle_all(settles: Vec<Settle>, result: Result<(), &rusqlite::Error>) {
    for settle in settles {
        settle(result);
    }
}

/// BEGIN, every job in its savepoint, COMMIT (or ROLLBACK when the
/// transaction did not survive).
fn run_jobs(conn: &Connection, jobs: Vec<Job>) -> (Vec<Settle>, Result<(), rusqlite::Error>) {
    let mut settles = Vec::with_capacity(jobs.len());
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return (jobs_settled_unrun(jobs), Err(e));
    }
    for job in jobs {
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            settles.push((job.run)(None));
            let _ = conn.execute_batch("ROLLBACK");
            return (settles, Err(e));
        }
        settles.push((job.run)(Some(conn)));
        if conn.is_autocommit() {
            // An error (a full disk, I/O) rolled back the whole
            // transaction: nothing of this batch is committed.
            return (
                settles,
                Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                    Some("the transaction was rolled back".into()),
                )),
            );
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => (settles, Ok(())),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            (settles, Err(e))
        }
    }
}

/// The same error, for another job of the batch (rusqlite's error is not
/// `Clone`): its SQLite code and message, or its text.
fn copy_error(e: &rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
        }
        other => StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        )),
    }
}

/// Runs one job's op inside its savepoint: released when it succeeds,
/// rolled back to when it fails.
fn run_op<Op: WriteOp>(conn: &Connection, op: Op) -> Result<Op::Output, StoreError> {
    let mut exec = LiteTx { tx: conn };
    // Every statement of `LiteTx` completes when called: the future is
    // ready at its first poll.
    let result = futures::executor::block_on(op.run(&mut exec));
    if conn.is_autocommit() {
        return result;
    }
    let end = match result {
        Ok(_) => "RELEASE job",
        Err(_) => "ROLLBACK TO job; RELEASE job",
    };
    match conn.execute_batch(end) {
        Ok(()) => result,
        Err(e) => Err(e.into()),
    }
}

impl SqliteWriter {
    /// Starts the writer thread for the database file at `path` (its schema
    /// already migrated). Connections open on first use. Every transaction
    /// holds `gate` (the store's write gate, shared with its sqlx writers)
    /// from BEGIN to COMMIT.
    pub(super) fn start(
        path: PathBuf,
        gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    ) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let mut connections = Connections {
            path,
            acknowledged: None,
            bookkeeping: None,
        };
        std::thread::Builder::new()
            .name("hub-sqlite-writer".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let _turn = gate.blocking_lock();
                    // Whatever queued meanwhile commits with it.
                    let mut batch = vec![first];
                    while batch.len() < MAX_JOBS_PER_COMMIT {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    connections.transact(batch);
                }
            })
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        Ok(Self { jobs })
    }

    /// Runs `op` in a transaction of the writer thread, waiting at most
    /// `timeout` for its answer. An answer of success means committed.
    pub(super) async fn run<Op: WriteOp>(
        &self,
        durability: Durability,
        op: Op,
        timeout: Duration,
    ) -> Result<Op::Output, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<Op::Output, StoreError>>();
        let job = Job {
            durability,
            run: Box::new(move |conn: Option<&Connection>| -> Settle {
                let result = match conn {
                    // Its caller gave up waiting: not run at all.
                    _ if reply.is_closed() => return Box::new(|_| {}),
                    Some(conn) => Some(run_op(conn, op)),
                    None => None,
                };
                Box::new(move |commit: Result<(), &rusqlite::Error>| {
                    let answer = match (result, commit) {
                        (Some(Err(e)), _) => Err(e),
                        (_, Err(e)) => Err(copy_error(e)),
                        (Some(Ok(output)), Ok(())) => Ok(output),
                        (None, Ok(())) => Err(StoreError::Database(sqlx::Error::WorkerCrashed)),
                    };
                    let _ = reply.send(answer);
                })
            }),
        };
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(StoreError::Database(sqlx::Error::WorkerCrashed)),
            Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
        }
    }
}

/// A transaction on the writer thread.
struct LiteTx<'c> {
    tx: &'c Connection,
}

impl LiteTx<'_> {
    fn prepare(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<rusqlite::CachedStatement<'_>, StoreError> {
        let mut stmt = self.tx.prepare_cached(sql)?;
        for (i, p) in params.iter().enumerate() {
            let name = format!("${}", i + 1);
            match *p {
                Param::Text(s) => stmt.raw_bind_parameter(name.as_str(), s)?,
                Param::Int(v) => stmt.raw_bind_parameter(name.as_str(), v)?,
                Param::NullText => stmt.raw_bind_parameter(name.as_str(), None::<&str>)?,
            }
        }
        Ok(stmt)
    }
}

impl Exec for LiteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn rows<T: Tuple>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.prepare(sql, params)?;
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(T::from_lite(row)?);
        }
        Ok(out)
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let mut stmt = self.prepare(sql, params)?;
        Ok(stmt.raw_execute()? as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Runs statements in order; the last one's rows (one integer column)
    /// are the output.
    struct Statements(Vec<&'static str>);

    impl WriteOp for Statements {
        type Output = Vec<i64>;
        async fn run<E: Exec>(self, exec: &mut E) -> Result<Vec<i64>, StoreError> {
            let mut last = Vec::new();
            for sql in self.0 {
                let rows: Vec<(i64,)> = exec.rows(sql, &[]).await?;
                last = rows.into_iter().map(|r| r.0).collect();
            }
            Ok(last)
        }
    }

    fn writer() -> (tempfile::TempDir, SqliteWriter, Arc<tokio::sync::Mutex<()>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER PRIMARY KEY);")
            .unwrap();
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        let writer = SqliteWriter::start(path, gate.clone()).unwrap();
        (dir, writer, gate)
    }

    const WAIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn a_job_commits_as_durably_as_it_asks() {
        let (_dir, writer, _gate) = writer();
        let read = || Statements(vec!["PRAGMA synchronous"]);
        let acknowledged = writer.run(Durability::Acknowledged, read(), WAIT).await;
        let bookkeeping = writer.run(Durability::Bookkeeping, read(), WAIT).await;
        // 2 = FULL (flushed before the commit returns), 1 = NORMAL.
        assert_eq!(acknowledged.unwrap(), vec![2]);
        assert_eq!(bookkeeping.unwrap(), vec![1]);
    }

    #[tokio::test]
    async fn jobs_queued_together_commit_together_and_one_failure_spares_the_others() {
        let (_dir, writer, gate) = writer();
        // While the gate is held the writer waits with the first job, so
        // the others queue behind it and all four share one transaction.
        let held = gate.clone().lock_owned().await;
        let insert = |sql| Statements(vec![sql, "SELECT COUNT(*) FROM t"]);
        let first = writer.run(
            Durability::Bookkeeping,
            insert("INSERT INTO t VALUES (1) RETURNING x"),
            WAIT,
        );
        let bad = writer.run(
            Durability::Bookkeeping,
            insert("INSERT INTO t VALUES (2), (2) RETURNING x"),
            WAIT,
        );
        let third = writer.run(
            Durability::Acknowledged,
            insert("INSERT INTO t VALUES (3) RETURNING x"),
            WAIT,
        );
        let durability = writer.run(
            Durability::Bookkeeping,
            Statements(vec!["PRAGMA synchronous"]),
            WAIT,
        );
        let release = async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(held);
        };
        let (first, bad, third, durability, ()) =
            tokio::join!(first, bad, third, durability, release);
        // Each saw the writes of those before it in the same transaction.
        assert_eq!(first.unwrap(), vec![1]);
        let bad = bad.unwrap_err();
        assert!(
            bad.is_refusal(),
            "a constraint violation is a refusal: {bad:?}"
        );
        assert_eq!(
            third.unwrap(),
            vec![2],
            "the failed job's row was rolled back"
        );
        // The acknowledged job made the whole transaction flush.
        assert_eq!(durability.unwrap(), vec![2]);
        let after = writer
            .run(
                Durability::Bookkeeping,
                Statements(vec!["SELECT x FROM t ORDER BY x"]),
                WAIT,
            )
            .await;
        assert_eq!(after.unwrap(), vec![1, 3]);
    }

    #[tokio::test]
    async fn a_job_waits_for_the_gate_that_sqlx_writers_share() {
        let (_dir, writer, gate) = writer();
        let held = gate.clone().lock_owned().await;
        let waited = writer
            .run(
                Durability::Bookkeeping,
                Statements(vec!["SELECT 1"]),
                Duration::from_millis(200),
            )
            .await;
        assert!(matches!(
            waited,
            Err(StoreError::Database(sqlx::Error::PoolTimedOut))
        ));
        drop(held);
        let ran = writer
            .run(Durability::Bookkeeping, Statements(vec!["SELECT 1"]), WAIT)
            .await;
        assert_eq!(ran.unwrap(), vec![1]);
    }
}
