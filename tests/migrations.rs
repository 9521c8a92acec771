//! Migrations are safe to run concurrently: several pools in one process and
//! several processes opening one fresh database at once all succeed, and the
//! schema ends at the latest version.

mod common;

use std::process::{Command, Stdio};

use common::Backend;

/// The versions the hub's migrations define, ascending.
fn expected_versions(backend: Backend) -> Vec<i64> {
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("migrations/postgres"),
    };
    migrator.iter().map(|m| m.version).collect()
}

/// The versions recorded as applied, all successfully, ascending.
async fn applied_versions(db: &common::Db) -> Vec<i64> {
    use sqlx::Connection;
    let sql = "SELECT version, success FROM _sqlx_migrations ORDER BY version";
    let rows: Vec<(i64, bool)> = match db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
        }
    };
    assert!(
        rows.iter().all(|(_, ok)| *ok),
        "a migration failed: {rows:?}"
    );
    rows.into_iter().map(|(v, _)| v).collect()
}

/// Eight tasks each open their own store on one fresh database at once.
async fn eight_tasks_migrate_one_fresh_database(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = common::Db::create(backend, dir.path()).await;
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { hub::store::connect(&url).await.map(|_| ()) })
        })
        .collect();
    for (i, open) in opens.into_iter().enumerate() {
        if let Err(e) = open.await.unwrap() {
            panic!("task {i} could not open the store: {}", e.log_text());
        }
    }
    assert_eq!(applied_versions(&db).await, expected_versions(backend));
    // And a store opened afterwards works on that schema.
    let store = hub::store::connect(&db.url).await.unwrap();
    assert_eq!(store.stats().await.unwrap().pending_jobs, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_migrate_one_fresh_sqlite_file() {
    eight_tasks_migrate_one_fresh_database(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(hub_pg),
    ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant"
)]
async fn eight_tasks_migrate_one_fresh_postgres_database() {
    eight_tasks_migrate_one_fresh_database(Backend::Postgres).await;
}

/// Two `hub` processes started together on one fresh SQLite file, several
/// rounds (each a new file), both exit 0 every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_migrate_one_fresh_sqlite_file() {
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let db = common::Db::create(Backend::Sqlite, dir.path()).await;
        let config = dir.path().join("hub.toml");
        let mappings = dir.path().join("mappings");
        std::fs::create_dir_all(&mappings).unwrap();
        std::fs::write(
            &config,
            format!(
                "database_url = {}\nmappings = {}\n",
                serde_json::to_string(&db.url).unwrap(),
                serde_json::to_string(&mappings.display().to_string()).unwrap()
            ),
        )
        .unwrap();
        let children: Vec<_> = (0..2)
            .map(|_| {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_hub"));
                for (k, _) in std::env::vars_os() {
                    if k.to_string_lossy().starts_with("HUB_") {
                        cmd.env_remove(k);
                    }
                }
                // Any command that opens the store migrates it first.
                cmd.arg("--config")
                    .arg(&config)
                    .args(["dlq", "list"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn hub")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(
            applied_versions(&db).await,
            expected_versions(Backend::Sqlite),
            "round {round}"
        );
    }
}
