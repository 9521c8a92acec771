//! End-to-end harness: a real `hub serve` process on a temp dir, a scriptable
//! sink that plays the destination, and a client that signs webhooks.
//!
//! Every test body is an `async fn(Backend)`; `backend_tests!` turns it into a
//! `NAME::sqlite` and a `NAME::postgres` test. The PostgreSQL variant runs when
//! `HUB_TEST_DATABASE_URL` is set at build time (`cfg(hub_pg)`, from build.rs;
//! each test on its own fresh database); without it the variant is compiled as
//! `#[ignore]`d, so `cargo test` reports it ignored, never passed.
#![allow(dead_code)]

pub mod router;
pub mod timed_sink;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use connectors::standard_webhooks::{self, WebhookSecret};
use serde_json::{Value, json};
use sha2::Digest;

/// The webhook source every test hub knows.
pub const SOURCE: &str = "ciam";
/// The admin bearer token (the hub gets its SHA-256).
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// How long to wait for anything that should happen "soon" (2-core CI).
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn source_secret() -> WebhookSecret {
    WebhookSecret::from_bytes(&[0x5a; 32])
}

pub fn destination_secret() -> WebhookSecret {
    WebhookSecret::from_bytes(&[0xc3; 32])
}

// ---------------------------------------------------------------- backends

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `NAME::sqlite` and `NAME::postgres` tests from `async fn NAME(Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(hub_pg), ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant")]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )*};
}

/// The PostgreSQL server URL of the test run. PostgreSQL variants are
/// `#[ignore]`d unless it was set at build time, so one that runs without it
/// (`--ignored`) fails here instead of passing without having run.
pub fn postgres_url() -> String {
    std::env::var("HUB_TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .expect("PostgreSQL tests need HUB_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test)")
}

/// Every test binary that shares this harness checks its own PostgreSQL
/// variants: listed as ignored exactly when no test database is configured
/// (so the summary never counts them as passed), and never ignored in CI.
#[test]
fn pg_variants_are_ignored_unless_configured() {
    let exe = std::env::current_exe().expect("test binary path");
    let list = |ignored: bool| -> Vec<String> {
        let mut cmd = Command::new(&exe);
        cmd.args(["--list", "--format", "terse"]);
        if ignored {
            cmd.arg("--ignored");
        }
        let out = cmd.output().expect("list the tests");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .map(String::from)
            .collect()
    };
    let ignored = list(true);
    // `release_*` tests drive the release binary: ignored in the debug run
    // whatever the database, run by .ci/run with `--ignored` (see chaos.rs).
    for test in list(false)
        .iter()
        .filter(|t| t.contains("postgres") && !t.starts_with("release_"))
    {
        assert_eq!(
            ignored.contains(test),
            !cfg!(hub_pg),
            "{test}: ignored exactly when HUB_TEST_DATABASE_URL is unset"
        );
    }
    let pg_configured = cfg!(hub_pg);
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(
            pg_configured,
            "CI=true requires HUB_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
    }
}

/// The database a test hub uses; a PostgreSQL one is dropped on Drop.
pub struct Db {
    pub url: String,
    pub backend: Backend,
    /// (server URL to connect for admin work, database name)
    pg: Option<(String, String)>,
}

impl Db {
    pub async fn create(backend: Backend, dir: &Path) -> Db {
        match backend {
            Backend::Sqlite => Db {
                url: format!("sqlite://{}", dir.join("hub.db").display()),
                backend,
                pg: None,
            },
            Backend::Postgres => {
                use sqlx::Connection;
                let base = postgres_url();
                let name = format!("hub_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&base)
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to {base}: {e}"));
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("CREATE DATABASE");
                let _ = admin.close().await;
                let mut url = url::Url::parse(&base).expect("HUB_TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                Db {
                    url: url.to_string(),
                    backend,
                    pg: Some((base, name)),
                }
            }
        }
    }

    /// The first column of every row `sql` selects, as text (cast it in
    /// the query), read straight from the database.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        use sqlx::Connection;
        match self.backend {
            Backend::Sqlite => {
                use std::str::FromStr;
                let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url)
                    .unwrap()
                    .read_only(true);
                let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
                let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                let _ = conn.close().await;
                rows.into_iter().map(|r| r.0).collect()
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                let _ = conn.close().await;
                rows.into_iter().map(|r| r.0).collect()
            }
        }
    }

    /// Row counts of the given tables, read straight from the database.
    pub async fn counts(&self, tables: &[&str]) -> Vec<(String, i64)> {
        use sqlx::Connection;
        let mut out = Vec::new();
        match self.backend {
            Backend::Sqlite => {
                use std::str::FromStr;
                let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url)
                    .unwrap()
                    .read_only(true);
                let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
                for t in tables {
                    let (n,): (i64,) =
                        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}")))
                            .fetch_one(&mut conn)
                            .await
                            .unwrap();
                    out.push((t.to_string(), n));
                }
                let _ = conn.close().await;
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                for t in tables {
                    let (n,): (i64,) =
                        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}")))
                            .fetch_one(&mut conn)
                            .await
                            .unwrap();
                    out.push((t.to_string(), n));
                }
                let _ = conn.close().await;
            }
        }
        out
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let Some((base, name)) = self.pg.take() else {
            return;
        };
        // Best effort, on a thread of its own: Drop may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

// ---------------------------------------------------------------- mappings

/// A CRM mapping modelled on `mappings/crm-webhook.yaml` (without its
/// constant and consent-gated fields), enabled, pointed at `url`.
pub fn crm_mapping(name: &str, url: &str) -> String {
    crm_mapping_with(name, url, "first_name")
}

/// Same, with the given-name field called `first_name_key`.
pub fn crm_mapping_with(name: &str, url: &str, first_name_key: &str) -> String {
    let secret = destination_secret().to_text();
    format!(
        r#"destination: {name}
connector: webhook
enabled: true
settings:
  url: {url}
  secret: {secret}
  timeout: 5s
consent: [marketing_email]
on_delete: delete
when: active eq true and emails[primary eq true].value pr
fields:
  email:
    from: emails[primary eq true].value
    transform: [trim, lowercase]
  email_sha256:
    from: emails[primary eq true].value
    transform: [trim, lowercase, sha256]
  {first_name_key}: {{ from: name.givenName }}
  last_name:  {{ from: name.familyName }}
  phone:
    from: phoneNumbers[type eq "mobile"].value
    transform: [e164]
  tier:
    from: urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter
    default: free
  country:
    from: addresses[primary eq true].country
    map: {{ DE: Germany, AT: Austria, CH: Switzerland }}
"#
    )
}

/// Writes a file atomically (temp name without a mapping extension, then rename).
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// ---------------------------------------------------------------- events

/// A `profile.upserted` event like tests/fixtures/event.json.
pub fn profile_event(external_id: &str, occurred_at: chrono::DateTime<chrono::Utc>) -> Value {
    let mut e: Value =
        serde_json::from_str(include_str!("../fixtures/event.json")).expect("fixture parses");
    e["subject"]["externalId"] = json!(external_id);
    e["occurredAt"] = json!(occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    e
}

pub fn now_utc() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

// ---------------------------------------------------------------- hub

pub struct HubBuilder {
    backend: Backend,
    delivery: Vec<(String, String)>,
    webhooks: Vec<(String, String)>,
    mappings: Vec<(String, String)>,
    shared_db: Option<String>,
    extra_toml: String,
    binary: Option<PathBuf>,
    role: Option<String>,
    env: Vec<(String, String)>,
}

impl HubBuilder {
    /// `hub serve --role ROLE` (all, api, worker).
    pub fn role(mut self, role: &str) -> Self {
        self.role = Some(role.into());
        self
    }

    /// An environment variable for the hub process (e.g. `LD_PRELOAD`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Another `hub` binary than this build's (e.g. the release build).
    pub fn binary(mut self, path: PathBuf) -> Self {
        self.binary = Some(path);
        self
    }

    /// A `[delivery]` setting, as a TOML value (`"200ms"` quoted, numbers bare).
    pub fn delivery(mut self, key: &str, toml_value: &str) -> Self {
        self.delivery.retain(|(k, _)| k != key);
        self.delivery.push((key.into(), toml_value.into()));
        self
    }

    pub fn webhooks(mut self, key: &str, toml_value: &str) -> Self {
        self.webhooks.retain(|(k, _)| k != key);
        self.webhooks.push((key.into(), toml_value.into()));
        self
    }

    /// A mapping file (name, YAML) written before the first start.
    pub fn mapping(mut self, file: &str, yaml: String) -> Self {
        self.mappings.push((file.into(), yaml));
        self
    }

    /// Raw TOML appended to hub.toml (e.g. `[scim.clients.okta]` tables).
    pub fn toml(mut self, text: &str) -> Self {
        self.extra_toml.push_str(&format!("\n{text}\n"));
        self
    }

    /// A database of the test's own making (e.g. SQLite on a tiny filesystem).
    pub fn database_url(mut self, url: String) -> Self {
        self.shared_db = Some(url);
        self
    }

    /// Uses another hub's database (several hubs, one PostgreSQL).
    pub fn share_database(mut self, other: &TestHub) -> Self {
        self.shared_db = Some(other.db.url.clone());
        self
    }

    pub async fn start(self) -> TestHub {
        let dir = tempfile::Builder::new()
            .prefix("hub-e2e-")
            .tempdir()
            .unwrap();
        let db = match self.shared_db {
            Some(url) => Db {
                url,
                backend: self.backend,
                pg: None,
            },
            None => Db::create(self.backend, dir.path()).await,
        };
        let mappings_dir = dir.path().join("mappings");
        std::fs::create_dir_all(&mappings_dir).unwrap();
        for (name, yaml) in &self.mappings {
            std::fs::write(mappings_dir.join(name), yaml).unwrap();
        }
        let token_hash = hex::encode(sha2::Sha256::digest(ADMIN_TOKEN.as_bytes()));
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\n\
             database_url = {db}\n\
             mappings = {maps}\n\n\
             [sources.{SOURCE}]\n\
             secret = \"{secret}\"\n\n\
             [admin]\n\
             token_sha256 = \"{token_hash}\"\n\n",
            db = toml_str(&db.url),
            maps = toml_str(&mappings_dir.display().to_string()),
            secret = source_secret().to_text(),
        );
        toml.push_str("[webhooks]\n");
        for (k, v) in &self.webhooks {
            toml.push_str(&format!("{k} = {v}\n"));
        }
        toml.push_str("\n[delivery]\n");
        for (k, v) in &self.delivery {
            toml.push_str(&format!("{k} = {v}\n"));
        }
        toml.push_str(&self.extra_toml);
        let config = dir.path().join("hub.toml");
        std::fs::write(&config, toml).unwrap();
        connectors::install_crypto_provider();
        let mut serve_args = vec!["serve".to_string()];
        if let Some(role) = &self.role {
            serve_args.extend(["--role".to_string(), role.clone()]);
        }
        let mut hub = TestHub {
            binary: self
                .binary
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hub"))),
            serve_args,
            env: self.env,
            log: dir.path().join("hub.log"),
            config,
            mappings_dir,
            db,
            dir,
            child: None,
            url: String::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        hub.spawn().await;
        hub
    }
}

fn toml_str(s: &str) -> String {
    // TOML basic strings take JSON-style escapes for what a temp path holds.
    serde_json::to_string(s).unwrap()
}

/// A running `hub serve` and everything it owns.
pub struct TestHub {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    pub config: PathBuf,
    pub mappings_dir: PathBuf,
    pub log: PathBuf,
    pub http: reqwest::Client,
    child: Option<Child>,
    binary: PathBuf,
    serve_args: Vec<String>,
    env: Vec<(String, String)>,
    // Dropped last: the hub must be gone before its database and dir.
    pub db: Db,
    pub dir: tempfile::TempDir,
}

impl TestHub {
    /// Defaults: small, fast retries; short lease; quick polling.
    pub fn builder(backend: Backend) -> HubBuilder {
        HubBuilder {
            backend,
            delivery: vec![
                ("retry_base".into(), "\"200ms\"".into()),
                ("retry_cap".into(), "\"2s\"".into()),
                ("retry_after_cap".into(), "\"10s\"".into()),
                ("max_attempts".into(), "8".into()),
                ("lease".into(), "\"4s\"".into()),
                ("http_timeout".into(), "\"1s\"".into()),
                ("poll_interval".into(), "\"25ms\"".into()),
            ],
            webhooks: vec![("max_body".into(), "\"16KiB\"".into())],
            mappings: Vec::new(),
            shared_db: None,
            extra_toml: String::new(),
            binary: None,
            role: None,
            env: Vec::new(),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        // Only our config file speaks: no HUB_* from the test environment.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("HUB_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HUB_LOG", "info,hub=debug,sqlx=warn");
        cmd.env("NO_COLOR", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.arg("--config").arg(&self.config);
        cmd
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = self
            .command()
            .args(&self.serve_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn hub");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the hub never writes into a closed pipe.
            let mut sink = std::io::sink();
            let _ = std::io::copy(&mut reader, &mut sink);
        });
        self.child = Some(child);
        let line = match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(line)) => line,
            _ => panic!("hub did not print its listening line\n{}", self.log_text()),
        };
        let url = line
            .trim()
            .strip_prefix("hub listening on ")
            .unwrap_or_else(|| {
                panic!("unexpected first stdout line {line:?}\n{}", self.log_text())
            });
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        self.url = url.to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .http
                .get(format!("{}/readyz", self.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "hub never became ready\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("hub running").id()
    }

    /// SIGKILL, no goodbye.
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the hub again on the same config, database and mappings.
    pub async fn restart(&mut self) {
        self.kill_9();
        self.spawn().await;
    }

    /// SIGTERM, then waits up to `within` for the exit.
    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("hub running");
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(ok.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "hub still running {within:?} after SIGTERM\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(80).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("--- hub log (tail) ---\n{}\n--- end ---", tail.join("\n"))
    }

    /// Waits until the hub log contains `needle` (e.g. a reload message).
    pub async fn wait_for_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.matches(needle).count() >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "log never said {needle:?} {count} time(s)\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `hub --config FILE ARGS...` against the same database.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        let mut cmd = tokio::process::Command::from(self.command());
        cmd.args(args).stdin(Stdio::null());
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("CLI finished in time")
            .expect("run CLI");
        CliOutput {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `hub deliveries [--subject S]` parsed, oldest first.
    pub async fn deliveries(&self, subject: Option<&str>) -> Vec<Value> {
        let mut args = vec!["deliveries", "--limit", "500"];
        if let Some(s) = subject {
            args.extend(["--subject", s]);
        }
        let out = self.cli(&args).await;
        assert!(out.status.success(), "hub deliveries failed: {out:?}");
        let mut list: Vec<Value> = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("hub deliveries printed no JSON ({e}): {out:?}"));
        list.sort_by_key(|a| (a["created_at"].as_i64(), a["id"].as_i64()));
        list
    }

    /// Waits until `hub deliveries` for `subject` satisfies `done`.
    pub async fn wait_deliveries(
        &self,
        subject: &str,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let list = self.deliveries(Some(subject)).await;
            if done(&list) {
                return list;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; attempts: {list:#?}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The numeric samples of `/metrics`, by full series name.
    pub async fn metrics(&self) -> std::collections::BTreeMap<String, f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (name, v) = l.rsplit_once(' ')?;
                Some((name.to_string(), v.parse().ok()?))
            })
            .collect()
    }

    pub fn write_mapping(&self, file: &str, yaml: &str) {
        write_atomic(&self.mappings_dir.join(file), yaml);
    }

    /// A webhook request to `/webhooks/ciam` with a fresh id, signed.
    pub fn webhook(&self, event: &Value) -> WebhookRequest<'_> {
        WebhookRequest {
            hub: self,
            source: SOURCE.into(),
            id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            timestamp: chrono::Utc::now().timestamp(),
            body: serde_json::to_vec(event).unwrap(),
            secret: source_secret(),
            without: Vec::new(),
        }
    }

    /// Posts a signed event and asserts 202; returns the response JSON.
    pub async fn send_ok(&self, event: &Value) -> Value {
        let r = self.webhook(event).send().await;
        assert_eq!(r.status, 202, "webhook refused: {r:?}\n{}", self.log_text());
        r.json
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_text());
        }
        self.kill_9();
    }
}

#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

// ---------------------------------------------------------------- webhook client

pub struct WebhookRequest<'a> {
    hub: &'a TestHub,
    pub source: String,
    pub id: String,
    pub timestamp: i64,
    pub body: Vec<u8>,
    secret: WebhookSecret,
    without: Vec<&'static str>,
}

#[derive(Debug)]
pub struct WebhookResponse {
    pub status: u16,
    pub content_type: String,
    pub json: Value,
    pub retry_after: Option<String>,
}

impl WebhookRequest<'_> {
    pub fn id(mut self, id: &str) -> Self {
        self.id = id.into();
        self
    }
    pub fn source(mut self, source: &str) -> Self {
        self.source = source.into();
        self
    }
    /// Moves `webhook-timestamp` by `secs` (negative = in the past).
    pub fn shift(mut self, secs: i64) -> Self {
        self.timestamp += secs;
        self
    }
    /// Signs with a key the hub does not know.
    pub fn forge(mut self) -> Self {
        self.secret = WebhookSecret::from_bytes(&[0x01; 32]);
        self
    }
    pub fn without(mut self, header: &'static str) -> Self {
        self.without.push(header);
        self
    }
    pub fn raw_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    pub async fn send(self) -> WebhookResponse {
        let signature = self.secret.sign(&self.id, self.timestamp, &self.body);
        let mut req = self
            .hub
            .http
            .post(format!("{}/webhooks/{}", self.hub.url, self.source))
            .header("content-type", "application/json");
        for (name, value) in [
            (standard_webhooks::HEADER_ID, self.id.clone()),
            (
                standard_webhooks::HEADER_TIMESTAMP,
                self.timestamp.to_string(),
            ),
            (standard_webhooks::HEADER_SIGNATURE, signature),
        ] {
            if !self.without.contains(&name) {
                req = req.header(name, value);
            }
        }
        let resp = req.body(self.body).send().await.expect("POST webhook");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        WebhookResponse {
            status,
            content_type,
            json,
            retry_after,
        }
    }
}

// ---------------------------------------------------------------- sink

/// What the sink answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// Status with `Retry-After: SECS`.
    RetryAfter(u16, u64),
    /// Holds the request open this long, then 200.
    Hang(Duration),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("sink got JSON")
    }

    /// Checks the Standard Webhooks signature with the destination secret.
    pub fn verify(&self, secret: &WebhookSecret) -> Result<(), standard_webhooks::VerifyError> {
        let h = |n: &str| self.headers.get(n).and_then(|v| v.to_str().ok());
        standard_webhooks::verify(
            std::slice::from_ref(secret),
            h(standard_webhooks::HEADER_ID),
            h(standard_webhooks::HEADER_TIMESTAMP),
            h(standard_webhooks::HEADER_SIGNATURE),
            &self.body,
            chrono::Utc::now().timestamp(),
            300,
        )
    }
}

#[derive(Default)]
struct SinkState {
    script: VecDeque<Reply>,
    default: Option<Reply>,
    received: Vec<Received>,
}

/// A destination that records every request and answers from a script.
pub struct Sink {
    pub addr: SocketAddr,
    state: Arc<Mutex<SinkState>>,
    task: tokio::task::JoinHandle<()>,
}

/// An address where nothing listens (yet): connection refused until a sink starts there.
pub fn unused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

pub fn url_for(addr: SocketAddr) -> String {
    format!("http://{addr}/hook")
}

impl Sink {
    pub async fn start() -> Sink {
        Self::start_at("127.0.0.1:0".parse().unwrap()).await
    }

    /// Listens on `addr` (retrying briefly if the port is still held).
    pub async fn start_at(addr: SocketAddr) -> Sink {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot bind sink on {addr}: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let addr = listener.local_addr().unwrap();
        let state: Arc<Mutex<SinkState>> = Default::default();
        let s = state.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move {
                let reply = {
                    let mut st = s.lock().unwrap();
                    st.received.push(Received {
                        headers,
                        body,
                        at: Instant::now(),
                    });
                    st.script
                        .pop_front()
                        .or_else(|| st.default.clone())
                        .unwrap_or(Reply::Status(200))
                };
                match reply {
                    Reply::Status(code) => {
                        (StatusCode::from_u16(code).unwrap(), "sink says so").into_response()
                    }
                    Reply::RetryAfter(code, secs) => (
                        StatusCode::from_u16(code).unwrap(),
                        [("retry-after", secs.to_string())],
                        "slow down",
                    )
                        .into_response(),
                    Reply::Hang(d) => {
                        tokio::time::sleep(d).await;
                        (StatusCode::OK, "late").into_response()
                    }
                }
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sink { addr, state, task }
    }

    pub fn url(&self) -> String {
        url_for(self.addr)
    }

    /// Replies for the next requests, in order; then the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// The reply once the script is used up (200 unless set).
    pub fn set_default(&self, reply: Reply) {
        self.state.lock().unwrap().default = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The distinct subject ids of the requests received so far, sorted.
    pub fn subjects(&self) -> Vec<String> {
        let mut subjects: Vec<String> = self
            .received()
            .iter()
            .map(|r| r.json()["subject"].as_str().unwrap().to_string())
            .collect();
        subjects.sort();
        subjects.dedup();
        subjects
    }

    /// Waits until at least `n` requests arrived; panics after `within`.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "sink got {} request(s), expected {n} within {within:?}: {:#?}",
                got.len(),
                got.iter()
                    .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a request satisfies `pred`; returns it.
    pub async fn wait_until(&self, within: Duration, pred: impl Fn(&Received) -> bool) -> Received {
        let deadline = Instant::now() + within;
        loop {
            if let Some(r) = self.received().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no matching request within {within:?}; got: {:#?}",
                self.received()
                    .iter()
                    .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
