//! The engine: one [`Driver`] per enabled destination, started when a
//! destination appears or is enabled, ended when it goes (its jobs stay).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use super::driver::Driver;
use super::retry::RetryPolicy;
use crate::config::DeliverySettings;
use crate::destinations::DestinationSet;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every driver of this process shares.
pub(super) struct Shared {
    pub store: Arc<dyn Store>,
    pub destinations: Arc<ArcSwap<DestinationSet>>,
    pub client: reqwest::Client,
    pub settings: DeliverySettings,
    pub policy: RetryPolicy,
    pub metrics: Arc<Metrics>,
    pub wakers: Arc<Wakers>,
}

/// One wake-up per destination: ingest, replay and backfill ring the
/// destinations they queued work for, and only their drivers stir.
#[derive(Debug, Default)]
pub struct Wakers(Mutex<HashMap<String, Arc<Notify>>>);

impl Wakers {
    pub fn get(&self, destination: &str) -> Arc<Notify> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(destination.to_string()).or_default().clone()
    }

    /// Wakes the destination's driver (or its next wait).
    pub fn wake(&self, destination: &str) {
        self.get(destination).notify_one();
    }

    pub fn wake_all(&self) {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for n in map.values() {
            n.notify_one();
        }
    }
}

pub struct Engine {
    shared: Arc<Shared>,
}

/// How often the engine looks for destinations that need a driver.
const SUPERVISE_EVERY: Duration = Duration::from_millis(200);

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        destinations: Arc<ArcSwap<DestinationSet>>,
        settings: DeliverySettings,
        wakers: Arc<Wakers>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        connectors::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(settings.http_timeout)
            .connect_timeout(Duration::from_secs(10).min(settings.http_timeout))
            .pool_max_idle_per_host(settings.concurrency)
            .build()?;
        Ok(Self {
            shared: Arc::new(Shared {
                store,
                destinations,
                client,
                policy: RetryPolicy::from(&settings),
                settings,
                metrics,
                wakers,
            }),
        })
    }

    /// Runs a driver for every enabled destination until `shutdown` turns
    /// true; then in-flight deliveries finish and are recorded.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut drivers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
        loop {
            drivers.retain(|_, task| !task.is_finished());
            if *shutdown.borrow() {
                break;
            }
            let enabled = self.shared.destinations.load().enabled_names();
            for name in enabled {
                if drivers.contains_key(&name) {
                    continue;
                }
                tracing::info!(destination = %name, "delivery driver started");
                let driver = Driver::new(&name, self.shared.clone());
                drivers.insert(name, tokio::spawn(driver.run(shutdown.clone())));
            }
            tokio::select! {
                _ = tokio::time::sleep(SUPERVISE_EVERY) => {}
                _ = shutdown.changed() => {}
            }
        }
        for (_, task) in drivers {
            let _ = task.await;
        }
    }

    /// One round of every enabled destination, to completion: claim what is
    /// due, send, wait for the answers, commit. For tests and tools that
    /// drive delivery step by step. Returns how many jobs were taken.
    pub async fn run_once(&self) -> usize {
        let mut total = 0;
        for name in self.shared.destinations.load().enabled_names() {
            let mut driver = Driver::new(&name, self.shared.clone());
            total += driver.round().await;
            driver.close().await;
        }
        total
    }
}
