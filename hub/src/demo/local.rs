//! A hub running in this process on a temporary directory: what `hub demo`
//! and the benchmarks run against, so they exercise the same `serve` as
//! `hub serve`.

use anyhow::Context;
use connectors::standard_webhooks::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret};
use tokio::sync::oneshot;

use crate::ServeError;
use crate::config::{RawConfig, SourceSettings};

/// The webhook source every local hub accepts.
pub const SOURCE: &str = "local";

pub struct LocalHub {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub database_url: String,
    /// The hub's own store, for reading what happened (no second pool).
    pub store: std::sync::Arc<dyn crate::store::Store>,
    /// The `whsec_` secret of webhook source [`SOURCE`].
    pub source_secret: WebhookSecret,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
    /// Drops a PostgreSQL database made for this hub.
    cleanup: Option<Cleanup>,
    _dir: tempfile::TempDir,
}

pub(crate) type Cleanup =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

impl LocalHub {
    /// `database` is `sqlite` (a temporary file) or a `postgres://` URL, in
    /// which a fresh database is made and later dropped. `mappings` are
    /// (file name, YAML); `tune` adjusts settings before validation.
    pub async fn start(
        database: &str,
        mappings: &[(&str, String)],
        tune: impl FnOnce(&mut RawConfig),
    ) -> anyhow::Result<LocalHub> {
        connectors::install_crypto_provider();
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let (database_url, cleanup) = prepare_database(database, dir.path()).await?;
        let mappings_dir = dir.path().join("mappings");
        std::fs::create_dir_all(&mappings_dir)?;
        for (name, yaml) in mappings {
            std::fs::write(mappings_dir.join(name), yaml)?;
        }
        let source_secret = random_secret();
        let mut raw = RawConfig {
            listen: "127.0.0.1:0".into(),
            database_url: database_url.clone(),
            mappings: mappings_dir,
            ..Default::default()
        };
        raw.sources.insert(
            SOURCE.into(),
            SourceSettings {
                secret: Some(source_secret.to_text()),
                secrets: vec![],
            },
        );
        tune(&mut raw);
        let config = raw.validate()?;
        // Migrated and loaded before anyone is told the address: the caller
        // (and its own reads of the store) never race the hub's migrations.
        let prepared = crate::prepare(config).await?;
        let store = prepared.state.store.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::serve(prepared, listener, async {
            let _ = stopped.await;
        }));
        Ok(LocalHub {
            url,
            database_url,
            store,
            source_secret,
            stop,
            task,
            cleanup,
            _dir: dir,
        })
    }

    /// `POST /webhooks/local` with `body`, signed.
    pub fn post_webhook(
        &self,
        client: &reqwest::Client,
        id: &str,
        body: String,
    ) -> reqwest::RequestBuilder {
        signed_post(
            client,
            &format!("{}/webhooks/{SOURCE}", self.url),
            &self.source_secret,
            id,
            body,
        )
    }

    /// Stops the hub (in-flight deliveries finish) and drops its database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        if let Some(drop) = self.cleanup {
            drop.await?;
        }
        Ok(())
    }

    pub fn backend(&self) -> &'static str {
        if self.database_url.starts_with("sqlite") {
            "sqlite (WAL, synchronous=FULL)"
        } else {
            "postgres (default durability)"
        }
    }
}

/// A JSON POST signed per Standard Webhooks with `secret`.
pub fn signed_post(
    client: &reqwest::Client,
    url: &str,
    secret: &WebhookSecret,
    id: &str,
    body: String,
) -> reqwest::RequestBuilder {
    let ts = chrono::Utc::now().timestamp();
    let signature = secret.sign(id, ts, body.as_bytes());
    client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(HEADER_ID, id)
        .header(HEADER_TIMESTAMP, ts.to_string())
        .header(HEADER_SIGNATURE, signature)
        .body(body)
}

pub fn random_secret() -> WebhookSecret {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    WebhookSecret::from_bytes(&key)
}

/// A temporary SQLite file, or a fresh database inside the PostgreSQL server.
pub(crate) async fn prepare_database(
    spec: &str,
    dir: &std::path::Path,
) -> anyhow::Result<(String, Option<Cleanup>)> {
    use sqlx::Connection;
    if spec == "sqlite" {
        return Ok((format!("sqlite://{}", dir.join("hub.db").display()), None));
    }
    let mut url =
        url::Url::parse(spec).context("--database must be sqlite or a postgres:// URL")?;
    let name = format!("hub_local_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(spec)
        .await
        .context("cannot reach PostgreSQL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    url.set_path(&name);
    let admin_url = spec.to_string();
    let cleanup: Cleanup = Box::pin(async move {
        let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await?;
        Ok(())
    });
    Ok((url.to_string(), Some(cleanup)))
}
