//! One worker loop: claim, plan, send, record.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use connectors::{DeliveryItem, Outcome};
use tokio::sync::{Notify, Semaphore};
use tracing::Instrument;

use super::plan::{Plan, plan};
use super::rate_limit::TokenBucket;
use super::retry::RetryPolicy;
use crate::config::DeliverySettings;
use crate::destinations::{ActiveDestination, DestinationSet};
use crate::metrics::Metrics;
use crate::store::{
    AttemptOutcome, DeliveryJob, JobResult, NextStep, Store, StoreError, SubjectState, now_ms,
};

pub struct Engine {
    store: Arc<dyn Store>,
    destinations: Arc<ArcSwap<DestinationSet>>,
    client: reqwest::Client,
    settings: DeliverySettings,
    policy: RetryPolicy,
    /// Rung after each ingest commit so idle workers start at once.
    wake: Arc<Notify>,
    /// Bounds HTTP calls in flight across all workers.
    in_flight: Arc<Semaphore>,
    /// One token bucket per rate-limited destination.
    limiters: std::sync::Mutex<HashMap<String, TokenBucket>>,
    metrics: Arc<Metrics>,
}

/// A send waiting for its connector call.
struct PendingSend {
    job: DeliveryJob,
    item: DeliveryItem,
    /// Why this send happens, when it is not a plain sync (withdrawal).
    note: Option<String>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        destinations: Arc<ArcSwap<DestinationSet>>,
        settings: DeliverySettings,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        connectors::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(settings.http_timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(settings.concurrency)
            .build()?;
        Ok(Self {
            store,
            destinations,
            client,
            policy: RetryPolicy::from(&settings),
            in_flight: Arc::new(Semaphore::new(settings.concurrency)),
            limiters: Default::default(),
            settings,
            wake,
            metrics,
        })
    }

    /// Runs `workers` loops until `shutdown` turns true; in-flight batches finish.
    pub async fn run(
        self: Arc<Self>,
        workers: usize,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut handles = Vec::new();
        for n in 0..workers.max(1) {
            let engine = self.clone();
            let shutdown = shutdown.clone();
            handles.push(tokio::spawn(
                async move { engine.worker_loop(shutdown).await }
                    .instrument(tracing::info_span!("worker", n)),
            ));
        }
        for h in handles {
            let _ = h.await;
        }
    }

    async fn worker_loop(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let busy = match self.run_once().await {
                Ok(n) => n >= self.settings.batch,
                Err(e) => {
                    tracing::error!(error = %e.log_text(), "delivery batch failed; jobs will be reclaimed");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims and processes one batch; returns how many jobs it took.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let jobs = self
            .store
            .claim_jobs(
                self.settings.batch as i64,
                now,
                self.settings.lease.as_millis() as i64,
            )
            .await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let claimed = jobs.len();
        let mut ids: Vec<String> = jobs.iter().map(|j| j.subject_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let subjects: HashMap<String, SubjectState> = self
            .store
            .load_subjects(&ids)
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let set = self.destinations.load_full();

        let mut results = Vec::with_capacity(claimed);
        let mut sends: BTreeMap<String, Vec<PendingSend>> = BTreeMap::new();
        for job in jobs {
            let dest = set.get(&job.destination);
            let subject = subjects.get(&job.subject_id);
            let (action, note) = match plan(dest.map(|d| d.as_ref()), subject) {
                Plan::Send(action) => (action, None),
                Plan::Withdraw { action, missing } => (
                    action,
                    Some(format!("consent withdrawn: {}", missing.join(", "))),
                ),
                Plan::Suppressed { missing } => {
                    tracing::debug!(destination = %job.destination, subject = %job.subject_id, ?missing, "suppressed: consent not granted");
                    results.push(self.settled(
                        job,
                        "none",
                        AttemptOutcome::Suppressed,
                        Some(format!("consent not granted: {}", missing.join(", "))),
                    ));
                    continue;
                }
                Plan::Skip(why) => {
                    results.push(self.settled(
                        job,
                        "none",
                        AttemptOutcome::Skipped,
                        Some(why.into()),
                    ));
                    continue;
                }
            };
            let version = subject.map(|s| s.version).unwrap_or_default();
            let item = DeliveryItem {
                subject_id: job.subject_id.clone(),
                // Same content, same id: receivers may dedupe on it.
                delivery_id: format!("msg_{}_{}", job.id.replace('-', ""), version),
                action,
            };
            sends
                .entry(job.destination.clone())
                .or_default()
                .push(PendingSend { job, item, note });
        }

        for (name, items) in sends.iter_mut() {
            let limit = set
                .get(name)
                .and_then(|d| d.connector.as_ref())
                .and_then(|c| c.rate_limit());
            if let Some(limit) = limit {
                results.extend(self.defer_over_limit(name, limit, items));
            }
        }

        let calls = sends.into_iter().flat_map(|(name, items)| {
            let dest = set.get(&name).filter(|d| d.connector.is_some()).cloned();
            let chunk = dest
                .as_ref()
                .and_then(|d| d.connector.as_ref())
                .map(|c| c.max_batch())
                .unwrap_or(1)
                .max(1);
            let mut chunks = Vec::new();
            let mut items = items.into_iter().peekable();
            while items.peek().is_some() {
                let part: Vec<PendingSend> = items.by_ref().take(chunk).collect();
                chunks.push((dest.clone(), part));
            }
            chunks
        });
        let sent = futures::future::join_all(
            calls.filter_map(|(dest, part)| dest.map(|d| self.send_chunk(d, part))),
        )
        .await;
        for chunk in sent {
            results.extend(chunk);
        }
        self.store.finish_jobs(&results, now_ms()).await?;
        for r in results
            .iter()
            .filter(|r| !matches!(r.next, NextStep::DeferUntil(_)))
        {
            self.metrics.record_attempt(r.outcome);
        }
        Ok(claimed)
    }

    /// Keeps in `items` what the destination's rate limit allows now; the rest
    /// become jobs deferred until the next token, with no attempt spent.
    fn defer_over_limit(
        &self,
        destination: &str,
        limit: connectors::RateLimit,
        items: &mut Vec<PendingSend>,
    ) -> Vec<JobResult> {
        let now = Instant::now();
        let (granted, wait) = {
            let mut limiters = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
            let bucket = limiters
                .entry(destination.to_string())
                .or_insert_with(|| TokenBucket::new(limit, now));
            if bucket.limit() != limit {
                // The mapping file changed the limit.
                *bucket = TokenBucket::new(limit, now);
            }
            bucket.take(items.len(), now)
        };
        let Some(wait) = wait else {
            return Vec::new();
        };
        let until = now_ms() + wait.as_millis() as i64;
        items
            .split_off(granted)
            .into_iter()
            .map(|p| JobResult {
                next: NextStep::DeferUntil(until),
                ..self.settled(p.job, "none", AttemptOutcome::Retry, None)
            })
            .collect()
    }

    fn settled(
        &self,
        job: DeliveryJob,
        action: &'static str,
        outcome: AttemptOutcome,
        detail: Option<String>,
    ) -> JobResult {
        JobResult {
            job,
            action,
            outcome,
            status_code: None,
            latency_ms: 0,
            detail,
            next: NextStep::Done,
        }
    }

    async fn send_chunk(
        &self,
        dest: Arc<ActiveDestination>,
        part: Vec<PendingSend>,
    ) -> Vec<JobResult> {
        let _permit = self.in_flight.acquire().await;
        let items: Vec<DeliveryItem> = part.iter().map(|p| p.item.clone()).collect();
        let started = Instant::now();
        let mut outcomes = match &dest.connector {
            // `http_timeout` bounds every call, whatever a mapping's own
            // timeout says: a call must never outlive its job's lease.
            Some(connector) => tokio::time::timeout(
                self.settings.http_timeout,
                connector.send(&self.client, &items),
            )
            .await
            .unwrap_or_else(|_| {
                vec![
                    Outcome::Retry {
                        status: None,
                        retry_after: None,
                        reason: "timed out".into(),
                    };
                    items.len()
                ]
            }),
            None => Vec::new(),
        };
        let latency_ms = started.elapsed().as_millis() as i64;
        // A connector owes one outcome per item; treat a short answer as a retry.
        outcomes.resize(
            part.len(),
            Outcome::Retry {
                status: None,
                retry_after: None,
                reason: "connector returned no outcome".into(),
            },
        );
        part.into_iter()
            .zip(outcomes)
            .map(|(p, outcome)| self.judge(&dest, p, outcome, latency_ms))
            .collect()
    }

    /// Turns a connector's outcome into the attempt record and next step.
    fn judge(
        &self,
        dest: &ActiveDestination,
        p: PendingSend,
        outcome: Outcome,
        latency_ms: i64,
    ) -> JobResult {
        let job = p.job;
        let attempts = (job.attempt + 1) as u32;
        let age = Duration::from_millis((now_ms() - job.first_enqueued_at).max(0) as u64);
        let status_code = outcome.status();
        let (attempt_outcome, detail, next) = match outcome {
            Outcome::Delivered { .. } => {
                (AttemptOutcome::Delivered, p.note.clone(), NextStep::Done)
            }
            Outcome::Retry {
                retry_after,
                reason,
                ..
            } => self.retry_or_dead(attempts, age, retry_after, reason, AttemptOutcome::Retry),
            Outcome::Paused { reason, .. } => {
                tracing::warn!(destination = %dest.mapping.name, status = ?status_code, "destination refuses our credentials; jobs kept");
                self.retry_or_dead(attempts, age, None, reason, AttemptOutcome::Paused)
            }
            Outcome::Permanent { reason, .. } => {
                (AttemptOutcome::Dead, Some(reason), NextStep::DeadLetter)
            }
        };
        tracing::debug!(
            destination = %dest.mapping.name,
            connector = %dest.mapping.connector,
            subject = %job.subject_id,
            job = %job.id,
            attempt = attempts,
            outcome = attempt_outcome.as_str(),
            status = ?status_code,
            latency_ms,
            "delivery attempt"
        );
        if next == NextStep::DeadLetter {
            tracing::info!(destination = %dest.mapping.name, job = %job.id, status = ?status_code, "dead-lettered");
        }
        JobResult {
            job,
            action: p.item.action.kind(),
            outcome: attempt_outcome,
            status_code,
            latency_ms,
            detail,
            next,
        }
    }

    fn retry_or_dead(
        &self,
        attempts: u32,
        age: Duration,
        retry_after: Option<Duration>,
        reason: String,
        outcome: AttemptOutcome,
    ) -> (AttemptOutcome, Option<String>, NextStep) {
        let paused = outcome == AttemptOutcome::Paused;
        match self
            .policy
            .decide(attempts, age, retry_after, paused, &mut rand::rng())
        {
            Some(delay) => (
                outcome,
                Some(reason),
                NextStep::RetryAt(now_ms() + delay.as_millis() as i64),
            ),
            None => (
                AttemptOutcome::Dead,
                Some(format!("gave up after {attempts} attempts: {reason}")),
                NextStep::DeadLetter,
            ),
        }
    }
}
