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
}

/// A write transaction; on SQLite it holds the write gate until it ends.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
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

impl SqlStore {
    /// Opens the database a URL names and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let (pool, write_gate) = match dialect {
            Dialect::Sqlite => {
                let url = sqlite_url(url)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(SQLITE_PRAGMAS).await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?;
                (pool, Some(Arc::new(tokio::sync::Mutex::new(()))))
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await?;
                (pool, None)
            }
        };
        match dialect {
            Dialect::Sqlite => sqlx::migrate!("migrations/sqlite").run(&pool).await?,
            Dialect::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await?,
        }
        Ok(Self {
            pool,
            dialect,
            write_gate,
        })
    }

    /// Opens a write transaction. On SQLite, `BEGIN IMMEDIATE` takes the
    /// write lock up front, so a transaction that reads before it writes
    /// cannot fail with SQLITE_BUSY halfway.
    pub(super) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let (tx, gate) = match &self.write_gate {
            Some(gate) => {
                let guard = gate.clone().lock_owned().await;
                (self.pool.begin_with("BEGIN IMMEDIATE").await?, Some(guard))
            }
            None => (self.pool.begin().await?, None),
        };
        Ok(WriteTx { tx, _gate: gate })
    }
}

/// The URL sqlx opens: the file is created when missing (`mode=rwc`), and its
/// directory too.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(e.into()))?;
    }
    Ok(if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}
