//! The hub: identity providers and the CIAM platform push changes in; every
//! destination is kept in sync with each customer's current, consented state.
//!
//! The data path, one module per step:
//! 1. **Request** (`http/`): `POST /webhooks/{source}` verifies the Standard
//!    Webhooks signature and parses the canonical event (`event`).
//! 2. **Store** (`ingest`, `store/`): the change and one delivery job per
//!    enabled destination commit in one transaction (group commit), then 202.
//! 3. **Job** (`store/`): a job names (destination, subject), never a payload;
//!    pending jobs for the same pair coalesce.
//! 4. **Driver** (`delivery/`): one per enabled destination. It claims that
//!    destination's due jobs (one delivery per subject at a time), reads each
//!    subject's current profile and consent, plans the action
//!    (`delivery::plan`), maps fields through the destination's mapping file
//!    (`destinations`, crate `mapping`) and batches them to the connector's
//!    limits, within adaptive concurrency and a rate limit shared by all hub
//!    processes.
//! 5. **Connector** (crate `connectors`): talks to the vendor and answers per
//!    item; the driver records each batch's outcomes as it returns, retries
//!    later, dead-letters, waits on the vendor's asynchronous jobs, and
//!    pauses or throttles the destination when the vendor says so.

pub mod admin;
pub mod backfill;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod destinations;
pub mod dlq;
pub mod event;
pub mod housekeeping;
pub mod http;
pub mod ingest;
pub mod input;
pub mod metrics;
pub mod progress;
pub mod scim_model;
pub mod store;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use config::Config;
use destinations::DestinationSet;
use ingest::Ingestor;
use metrics::Metrics;
use store::{Store, StoreError};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub destinations: Arc<ArcSwap<DestinationSet>>,
    pub ingestor: Ingestor,
    pub metrics: Arc<Metrics>,
    /// The SCIM schemas as published (declared brands included); input is
    /// checked against them.
    pub schemas: Arc<scim_model::schema::Published>,
    /// Wakes a destination's driver when jobs become due for it (ingest,
    /// replay, backfill).
    pub wake: Arc<delivery::Wakers>,
    /// The web console's signed-in sessions (in memory: a restart signs
    /// everyone out).
    pub console: Arc<http::console::Sessions>,
}

pub fn app(state: AppState) -> axum::Router {
    http::router(state)
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("could not open the store")]
    Store(#[from] StoreError),
    #[error("could not build the HTTP client")]
    Client(#[from] reqwest::Error),
    #[error("HTTP server failed")]
    Io(#[from] std::io::Error),
}

/// Opens the store and loads the mappings; logs refused files.
pub async fn build_state(
    config: Config,
) -> Result<(AppState, tokio::task::JoinHandle<()>), ServeError> {
    let store = store::connect_with(&config.database_url, config.store.timeout).await?;
    let (set, errors) = destinations::reload(
        &config.mappings,
        &DestinationSet::default(),
        &config.vocabulary(),
    );
    for e in &errors {
        tracing::error!(error = %e, "mapping file refused");
    }
    tracing::info!(destinations = set.enabled_names().len(), "mappings loaded");
    let wake = Arc::new(delivery::Wakers::default());
    let (ingestor, writer) = Ingestor::start(store.clone(), wake.clone());
    Ok((
        AppState {
            schemas: Arc::new(scim_model::schema::Published::new(
                config.purposes.keys(),
                config.brands.keys(),
            )),
            config: Arc::new(config),
            store,
            destinations: Arc::new(ArcSwap::from_pointee(set)),
            ingestor,
            metrics: Arc::new(Metrics::default()),
            wake,
            console: Arc::new(http::console::Sessions::default()),
        },
        writer,
    ))
}

/// A hub ready to serve: its store is open and migrated, its mappings are
/// loaded. `hub serve` prepares before it announces its address, so no
/// request reaches a hub whose migrations have not finished.
pub struct Prepared {
    pub state: AppState,
    /// The ingest writer task; it ends once the router is gone.
    writer: tokio::task::JoinHandle<()>,
}

/// Opens (and migrates) the store and loads the mappings.
pub async fn prepare(config: Config) -> Result<Prepared, ServeError> {
    let (state, writer) = build_state(config).await?;
    Ok(Prepared { state, writer })
}

/// Runs what the configured role asks for until `shutdown` resolves: the
/// HTTP API (role all or api; a worker serves only `/healthz`, `/readyz` and
/// `/metrics`), the delivery engine and housekeeping (role all or worker),
/// and the mapping watcher (every role: the API fans changes out to the
/// enabled destinations, the workers drive them). Then stops taking
/// requests, finishes in-flight deliveries and returns.
pub async fn serve(
    prepared: Prepared,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let Prepared { state, writer } = prepared;
    let role = state.config.role;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine_task = if role.runs_workers() {
        let engine = delivery::Engine::new(
            state.store.clone(),
            state.destinations.clone(),
            state.config.delivery.clone(),
            state.wake.clone(),
            state.metrics.clone(),
        )?;
        Some(tokio::spawn(engine.run(stop_rx.clone())))
    } else {
        None
    };
    let watcher = tokio::spawn(destinations::watch(
        state.config.mappings.clone(),
        state.destinations.clone(),
        Duration::from_millis(500),
        state.config.vocabulary(),
        stop_rx.clone(),
    ));
    // Workers in other processes than the API hear of new jobs at once.
    let on_postgres =
        store::Dialect::from_url(&state.config.database_url) == Some(store::Dialect::Postgres);
    let notifications = (role.runs_workers() && on_postgres).then(|| {
        let url = state.config.database_url.clone();
        let wakers = state.wake.clone();
        tokio::spawn(async move {
            store::notify::listen(
                &url,
                |name| match name {
                    Some(name) => wakers.wake(name),
                    None => wakers.wake_all(),
                },
                stop_rx,
            )
            .await
        })
    });
    let upkeep = role.runs_workers().then(|| {
        tokio::spawn(housekeeping::run(
            state.store.clone(),
            housekeeping::Upkeep::from_config(&state.config),
            stop_tx.subscribe(),
        ))
    });
    let router = if role.serves_api() {
        app(state.clone())
    } else {
        http::worker_router(state.clone())
    };
    drop(state);
    tracing::info!(role = role.as_str(), "serving");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!("no longer accepting requests; finishing in-flight deliveries");
    let _ = stop_tx.send(true);
    if let Some(task) = engine_task {
        let _ = task.await;
    }
    let _ = watcher.await;
    if let Some(task) = notifications {
        let _ = task.await;
    }
    if let Some(task) = upkeep {
        let _ = task.await;
    }
    // The router (and its Ingestor sender) is gone: the writer drains and ends.
    let _ = writer.await;
    tracing::info!("stopped");
    Ok(())
}
