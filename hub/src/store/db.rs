//! The store's handle on its database: one `sqlx::Any` pool for SQLite or
//! PostgreSQL, the dialect, and for SQLite the write gate.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

use super::StoreError;
use super::dialect::Dialect;
use super::exec::WriteOp;
use super::sqlite_writer::SqliteWriter;

/// The store over either database. Every operation is written once, in the
/// module of its aggregate (`subjects`, `jobs`, `privacy`, `scim`), with the
/// few dialect differences taken from [`Dialect`].
pub struct SqlStore {
    pub(super) pool: sqlx::AnyPool,
    /// The same database for the engine's bookkeeping writes (claims,
    /// outcomes, limiter slots, destination state), committed without
    /// waiting for the disk: see [`Durability::Bookkeeping`].
    bookkeeping: sqlx::AnyPool,
    pub(super) dialect: Dialect,
    /// SQLite takes one writer at a time. Queueing writers here, fairly,
    /// instead of in SQLite's busy handler (which sleeps in growing steps)
    /// keeps tail latency low when ingest and workers write at once.
    /// PostgreSQL coordinates writers with row locks and needs none.
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// The longest wait for the write gate or a connection.
    timeout: Duration,
    /// SQLite on a file: the thread that runs the hot write transactions
    /// ([`SqlStore::transact`]). None on PostgreSQL and in memory.
    writer: Option<SqliteWriter>,
}

/// How durable a write transaction's commit must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// On disk before the commit returns: everything the hub acknowledges
    /// (a 2xx), consent, erasure requests and receipts, admin actions.
    Acknowledged,
    /// Survives a crash of the hub's process (the commit is in the
    /// database's log, in the OS's page cache), but an OS crash or power
    /// loss may roll back the last few such commits, never a later
    /// acknowledged one, and never half of one. For writes whose loss only
    /// makes a job go out again: the lease of a claim, a batch's outcomes
    /// (the job returns to the queue and is delivered once more, as after a
    /// SIGKILL), a rate limiter's slot. It spares the engine a disk flush
    /// per batch, which on SQLite made flushes, not CPU, the limit on
    /// deliveries per second (docs/decisions.md §16).
    Bookkeeping,
}

/// A write transaction; on SQLite it holds the write gate until it ends.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    /// For statements that read the database's clock (`Dialect::now_ms`).
    pub(super) dialect: Dialect,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
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
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }
}

/// Every SQLite connection: WAL, so readers never block the writer;
/// `synchronous=FULL`, so a commit is on disk before the hub acknowledges.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
    PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;";
/// The bookkeeping connections: in WAL mode `synchronous=NORMAL` commits
/// without flushing the log; the next FULL commit (or checkpoint) flushes
/// it, so commits reach the disk in order.
const SQLITE_BOOKKEEPING_PRAGMAS: &str = "PRAGMA synchronous = NORMAL; \
    PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;";
/// PostgreSQL's asynchronous commit: the same promise as above (the WAL
/// record is written, its flush is not waited for; no inconsistency, only
/// the last such commits can be lost in a server crash).
const POSTGRES_BOOKKEEPING_SETTINGS: &str = "SET synchronous_commit = off";

/// A pooled connection that an error left inside a transaction (a COMMIT
/// that failed on a full disk, after which SQLite had already rolled back
/// and the ROLLBACK failed too) would refuse every later BEGIN: the pool
/// closes it instead of handing it out, and opens a fresh one.
fn fit_for_use(conn: &mut sqlx::AnyConnection) -> bool {
    use sqlx::Connection;
    !conn.is_in_transaction()
}

/// What every pool of the store shares: at most `max` connections, waits
/// of at most `timeout`, `setup` run on each new connection, and no
/// connection handed out while still inside a transaction.
fn pool_options(max: u32, timeout: Duration, setup: Option<&'static str>) -> AnyPoolOptions {
    let options = AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(timeout)
        .before_acquire(|conn, _| Box::pin(async move { Ok(fit_for_use(conn)) }));
    match setup {
        Some(sql) => options.after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(sql).await?;
                Ok(())
            })
        }),
        None => options,
    }
}

impl SqlStore {
    /// Opens the database a URL names and brings its schema up to date,
    /// waiting at most `timeout` for a connection.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let (pool, bookkeeping, write_gate, writer) = match dialect {
            Dialect::Sqlite => {
                let (url, path) = sqlite_url(url)?;
                let in_memory = path.is_none();
                let lock = match &path {
                    Some(path) => Some(lock_for_migrations(path).await?),
                    None => None,
                };
                let pool = pool_options(8, timeout, Some(SQLITE_PRAGMAS))
                    .connect(&url)
                    .await?;
                sqlx::migrate!("migrations/sqlite").run(&pool).await?;
                drop(lock);
                // A second pool on an in-memory database would open another database.
                let bookkeeping = if in_memory {
                    pool.clone()
                } else {
                    pool_options(2, timeout, Some(SQLITE_BOOKKEEPING_PRAGMAS)).connect_lazy(&url)?
                };
                let gate = Arc::new(tokio::sync::Mutex::new(()));
                let writer = match path {
                    Some(path) if !in_memory => Some(SqliteWriter::start(path, gate.clone())?),
                    _ => None,
                };
                (pool, bookkeeping, Some(gate), writer)
            }
            Dialect::Postgres => {
                let pool = pool_options(16, timeout, None).connect(url).await?;
                // sqlx's PostgreSQL migrator holds an advisory lock for the run.
                sqlx::migrate!("migrations/postgres").run(&pool).await?;
                let bookkeeping = pool_options(8, timeout, Some(POSTGRES_BOOKKEEPING_SETTINGS))
                    .connect_lazy(url)?;
                (pool, bookkeeping, None, None)
            }
        };
        Ok(Self {
            pool,
            bookkeeping,
            dialect,
            write_gate,
            timeout,
            writer,
        })
    }

    /// Runs `op` in one write transaction as durable as `durability` says:
    /// on the SQLite writer thread when there is one, else through sqlx.
    pub(super) async fn transact<Op: WriteOp>(
        &self,
        durability: Durability,
        op: Op,
    ) -> Result<Op::Output, StoreError> {
        if let Some(writer) = &self.writer {
            return writer.run(durability, op, self.timeout).await;
        }
        let mut tx = self.begin_write_as(durability).await?;
        let output = op.run(&mut tx).await?;
        tx.commit().await?;
        Ok(output)
    }

    /// Opens a write transaction. On SQLite, `BEGIN IMMEDIATE` takes the
    /// write lock up front, so a transaction that reads before it writes
    /// cannot fail with SQLITE_BUSY halfway.
    pub(super) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        self.begin_write_as(Durability::Acknowledged).await
    }

    /// A write transaction whose commit is as durable as `durability` says.
    pub(super) async fn begin_write_as(
        &self,
        durability: Durability,
    ) -> Result<WriteTx, StoreError> {
        let pool = match durability {
            Durability::Acknowledged => &self.pool,
            Durability::Bookkeeping => &self.bookkeeping,
        };
        let (tx, gate) = match &self.write_gate {
            Some(gate) => {
                let guard = tokio::time::timeout(self.timeout, gate.clone().lock_owned())
                    .await
                    .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))?;
                (pool.begin_with("BEGIN IMMEDIATE").await?, Some(guard))
            }
            None => (pool.begin().await?, None),
        };
        Ok(WriteTx {
            tx,
            dialect: self.dialect,
            _gate: gate,
        })
    }
}

impl SqlStore {
    /// Readiness: commits one tiny write, since on a full disk a SELECT
    /// still answers while no change can be stored.
    pub(super) async fn probe_commit(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO store_probe (id, probed_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
        )
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}

/// The URL sqlx opens (the file is created when missing: `mode=rwc`, and
/// its directory too), and the file's path unless it is in memory.
fn sqlite_url(url: &str) -> Result<(String, Option<std::path::PathBuf>), StoreError> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    let in_memory = path.is_empty() || path.contains(":memory:") || url.contains("mode=memory");
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
        && !in_memory
    {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(e.into()))?;
    }
    let url = if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    };
    Ok((url, (!in_memory).then(|| path.into())))
}

/// Takes an exclusive OS lock on `<database file>-migrate.lock`, held until
/// the returned file is dropped. sqlx's SQLite migrator takes no lock, so
/// two pools (tasks or processes) opening one fresh file at once would both
/// run the first migration; with this, the second waits, then finds every
/// migration applied. It also covers creating the file and switching it to
/// WAL, which the first opener does.
async fn lock_for_migrations(database: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let mut name = database.as_os_str().to_owned();
    name.push("-migrate.lock");
    let path = std::path::PathBuf::from(name);
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| StoreError::Database(sqlx::Error::Io(std::io::Error::other(e))))?;
    locked.map_err(|e| StoreError::Database(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one connection of `pool` reports for `query` (a setting).
    async fn setting(pool: &sqlx::AnyPool, query: &str) -> String {
        use sqlx::Row;
        let row = sqlx::query(sqlx::AssertSqlSafe(query.to_string()))
            .fetch_one(pool)
            .await
            .unwrap();
        row.try_get::<String, _>(0)
            .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
            .unwrap()
    }

    #[tokio::test]
    async fn sqlite_acknowledged_writes_flush_and_bookkeeping_writes_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        let store = SqlStore::connect(&url, Duration::from_secs(5))
            .await
            .unwrap();
        // 2 is FULL (a commit waits for the disk), 1 is NORMAL.
        assert_eq!(setting(&store.pool, "PRAGMA synchronous").await, "2");
        assert_eq!(setting(&store.bookkeeping, "PRAGMA synchronous").await, "1");
        assert_eq!(
            setting(&store.bookkeeping, "PRAGMA journal_mode").await,
            "wal"
        );
    }

    #[tokio::test]
    #[cfg_attr(
        not(hub_pg),
        ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant"
    )]
    async fn postgres_acknowledged_writes_flush_and_bookkeeping_writes_do_not() {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let base = std::env::var("HUB_TEST_DATABASE_URL").unwrap();
        let name = format!("hub_durability_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::AnyConnection::connect(&base).await.unwrap();
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        let mut url = url::Url::parse(&base).unwrap();
        url.set_path(&name);
        let store = SqlStore::connect(url.as_str(), Duration::from_secs(5))
            .await
            .unwrap();
        let acknowledged = setting(&store.pool, "SHOW synchronous_commit").await;
        let bookkeeping = setting(&store.bookkeeping, "SHOW synchronous_commit").await;
        store.pool.close().await;
        store.bookkeeping.close().await;
        admin
            .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
            .await
            .unwrap();
        assert_eq!(acknowledged, "on");
        assert_eq!(bookkeeping, "off");
    }
}
