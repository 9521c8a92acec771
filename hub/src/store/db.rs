//! The store's handle on its database: one `sqlx::Any` pool for SQLite or
//! PostgreSQL, the dialect, and for SQLite the write gate.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

use super::StoreError;
use super::dialect::Dialect;

/// The store over either database. Every operation is written once, in the
/// module of its aggregate (`subjects`, `jobs`, `privacy`, `scim`), with the
/// few dialect differences taken from [`Dialect`].
pub struct SqlStore {
    pub(super) pool: sqlx::AnyPool,
    pub(super) dialect: Dialect,
    /// SQLite takes one writer at a time. Queueing writers here, fairly,
    /// instead of in SQLite's busy handler (which sleeps in growing steps)
    /// keeps tail latency low when ingest and workers write at once.
    /// PostgreSQL coordinates writers with row locks and needs none.
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// The longest wait for the write gate or a connection.
    timeout: Duration,
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

/// A pooled connection that an error left inside a transaction (a COMMIT
/// that failed on a full disk, after which SQLite had already rolled back
/// and the ROLLBACK failed too) would refuse every later BEGIN: the pool
/// closes it instead of handing it out, and opens a fresh one.
fn fit_for_use(conn: &mut sqlx::AnyConnection) -> bool {
    use sqlx::Connection;
    !conn.is_in_transaction()
}

impl SqlStore {
    /// Opens the database a URL names and brings its schema up to date,
    /// waiting at most `timeout` for a connection.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let (pool, write_gate) = match dialect {
            Dialect::Sqlite => {
                let (url, path) = sqlite_url(url)?;
                let lock = match path {
                    Some(path) => Some(lock_for_migrations(&path).await?),
                    None => None,
                };
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(timeout)
                    .before_acquire(|conn, _| Box::pin(async move { Ok(fit_for_use(conn)) }))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(SQLITE_PRAGMAS).await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?;
                sqlx::migrate!("migrations/sqlite").run(&pool).await?;
                drop(lock);
                (pool, Some(Arc::new(tokio::sync::Mutex::new(()))))
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(timeout)
                    .before_acquire(|conn, _| Box::pin(async move { Ok(fit_for_use(conn)) }))
                    .connect(url)
                    .await?;
                // sqlx's PostgreSQL migrator holds an advisory lock for the run.
                sqlx::migrate!("migrations/postgres").run(&pool).await?;
                (pool, None)
            }
        };
        Ok(Self {
            pool,
            dialect,
            write_gate,
            timeout,
        })
    }

    /// Opens a write transaction. On SQLite, `BEGIN IMMEDIATE` takes the
    /// write lock up front, so a transaction that reads before it writes
    /// cannot fail with SQLITE_BUSY halfway.
    pub(super) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let (tx, gate) = match &self.write_gate {
            Some(gate) => {
                let guard = tokio::time::timeout(self.timeout, gate.clone().lock_owned())
                    .await
                    .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))?;
                (self.pool.begin_with("BEGIN IMMEDIATE").await?, Some(guard))
            }
            None => (self.pool.begin().await?, None),
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
