//! What `GET /metrics` serves, through `prometheus-client`: one
//! [`Registry`] per hub, held in `AppState` (never a global recorder, so the
//! many hubs a test process runs never count each other's work).
//!
//! Hot-path counters are handles taken once: a driver holds its
//! destination's [`DestinationMetrics`] and an increment is one atomic add.
//! Queue gauges (depth, oldest pending age, paused) are read from the store
//! at scrape time, so they hold across every hub process that shares it.

use std::fmt::Write;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::store::{AttemptOutcome, DestinationReport, DestinationStatus, StoreStats};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabels {
    destination: String,
}

/// Where a change came in.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum IngestSource {
    Webhook,
    Scim,
}

impl IngestSource {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestSource::Webhook => "webhook",
            IngestSource::Scim => "scim",
        }
    }
}

/// What became of an inbound write: committed, already seen (a repeated
/// `webhook-id`), or refused (any answer but 2xx).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum IngestOutcome {
    Accepted,
    Duplicate,
    Rejected,
}

impl IngestOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestOutcome::Accepted => "accepted",
            IngestOutcome::Duplicate => "duplicate",
            IngestOutcome::Rejected => "rejected",
        }
    }
}

impl EncodeLabelValue for IngestSource {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

impl EncodeLabelValue for IngestOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IngestLabels {
    source: IngestSource,
    outcome: IngestOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: IngestSource,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScimLabels {
    method: &'static str,
    resource: &'static str,
    status: u16,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Seconds, 1 ms to about 16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Items per call, 1 to 4096.
fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

/// A destination's hot-path handles: clones share the registered series.
#[derive(Clone, Debug)]
pub struct DestinationMetrics {
    delivered: Counter,
    failed: Counter,
    retried: Counter,
    suppressed: Counter,
    latency: Histogram,
    batch: Histogram,
    /// This hub's attempts by outcome, every destination together.
    attempts: [Counter; AttemptOutcome::ALL.len()],
}

impl DestinationMetrics {
    /// One attempt's outcome (a suppressed or skipped job counts too: the
    /// decision is an attempt that sent nothing).
    pub fn outcome(&self, outcome: AttemptOutcome) {
        self.attempts[outcome_index(outcome)].inc();
        match outcome {
            AttemptOutcome::Delivered => self.delivered.inc(),
            AttemptOutcome::Dead => self.failed.inc(),
            AttemptOutcome::Retry => self.retried.inc(),
            AttemptOutcome::Suppressed => self.suppressed.inc(),
            AttemptOutcome::Accepted
            | AttemptOutcome::Throttled
            | AttemptOutcome::Paused
            | AttemptOutcome::Skipped => 0,
        };
    }

    /// One vendor call: how long it took and how many items it carried.
    pub fn call(&self, latency: Duration, items: usize) {
        self.latency.observe(latency.as_secs_f64());
        self.batch.observe(items as f64);
    }
}

fn outcome_index(outcome: AttemptOutcome) -> usize {
    AttemptOutcome::ALL
        .iter()
        .position(|o| *o == outcome)
        .unwrap_or(0)
}

/// Every series this hub exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Held while a scrape sets the store gauges and encodes, so that two
    /// scrapes at once never see each other's cleared families.
    scrape: std::sync::Mutex<()>,
    webhooks_accepted: Counter,
    webhooks_duplicate: Counter,
    webhooks_rejected: Counter,
    attempts: Family<OutcomeLabels, Counter>,
    ingest: Family<IngestLabels, Counter>,
    ingest_latency: Family<SourceLabels, Histogram>,
    scim: Family<ScimLabels, Counter>,
    delivered: Family<DestinationLabels, Counter>,
    failed: Family<DestinationLabels, Counter>,
    retried: Family<DestinationLabels, Counter>,
    suppressed: Family<DestinationLabels, Counter>,
    latency: Family<DestinationLabels, Histogram>,
    batch: Family<DestinationLabels, Histogram>,
    queue_depth: Family<DestinationLabels, Gauge>,
    oldest_pending: Family<DestinationLabels, FloatGauge>,
    paused: Family<DestinationLabels, Gauge>,
    jobs: Family<StatusLabels, Gauge>,
    dead_letters: Gauge,
    subjects: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            webhooks_accepted: Counter::default(),
            webhooks_duplicate: Counter::default(),
            webhooks_rejected: Counter::default(),
            attempts: Family::default(),
            ingest: Family::default(),
            ingest_latency: Family::new_with_constructor(latency_histogram),
            scim: Family::default(),
            delivered: Family::default(),
            failed: Family::default(),
            retried: Family::default(),
            suppressed: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            batch: Family::new_with_constructor(batch_histogram),
            queue_depth: Family::default(),
            oldest_pending: Family::default(),
            paused: Family::default(),
            jobs: Family::default(),
            dead_letters: Gauge::default(),
            subjects: Gauge::default(),
            registry: Registry::default(),
            scrape: std::sync::Mutex::new(()),
        };
        let r = &mut registry;
        r.register(
            "hub_webhooks_accepted",
            "Inbound webhooks committed",
            m.webhooks_accepted.clone(),
        );
        r.register(
            "hub_webhooks_duplicate",
            "Inbound webhooks whose webhook-id was already seen",
            m.webhooks_duplicate.clone(),
        );
        r.register(
            "hub_webhooks_rejected",
            "Inbound webhooks refused (4xx)",
            m.webhooks_rejected.clone(),
        );
        r.register(
            "hub_ingest_requests",
            "Inbound writes by source (webhook, scim) and outcome (accepted, duplicate, rejected)",
            m.ingest.clone(),
        );
        r.register(
            "hub_ingest_duration_seconds",
            "Time to answer an inbound write, by source",
            m.ingest_latency.clone(),
        );
        r.register(
            "hub_scim_requests",
            "SCIM requests by method, resource and status",
            m.scim.clone(),
        );
        r.register(
            "hub_delivery_attempts",
            "Delivery attempts by outcome, all destinations",
            m.attempts.clone(),
        );
        r.register(
            "hub_destination_delivered",
            "Deliveries the destination took",
            m.delivered.clone(),
        );
        r.register(
            "hub_destination_failed",
            "Deliveries given up on (dead-lettered)",
            m.failed.clone(),
        );
        r.register(
            "hub_destination_retried",
            "Attempts that failed and were scheduled again",
            m.retried.clone(),
        );
        r.register(
            "hub_destination_suppressed",
            "Deliveries not sent because consent was not granted",
            m.suppressed.clone(),
        );
        r.register(
            "hub_destination_delivery_duration_seconds",
            "Duration of one vendor call",
            m.latency.clone(),
        );
        r.register(
            "hub_destination_batch_size",
            "Items in one vendor call",
            m.batch.clone(),
        );
        r.register(
            "hub_destination_queue_depth",
            "Jobs pending for the destination",
            m.queue_depth.clone(),
        );
        r.register(
            "hub_destination_oldest_pending_age_seconds",
            "Age of the destination's oldest pending job (lag)",
            m.oldest_pending.clone(),
        );
        r.register(
            "hub_destination_paused",
            "1 while the destination is paused (by an admin or the vendor)",
            m.paused.clone(),
        );
        r.register(
            "hub_delivery_jobs",
            "Jobs in the queue by status",
            m.jobs.clone(),
        );
        r.register(
            "hub_dead_letters",
            "Dead letters awaiting replay",
            m.dead_letters.clone(),
        );
        r.register("hub_subjects", "Subjects held", m.subjects.clone());
        // Every outcome shows from the start, zeros included.
        for o in AttemptOutcome::ALL {
            let _ = m.attempts.get_or_create(&OutcomeLabels {
                outcome: o.as_str(),
            });
        }
        Metrics { registry, ..m }
    }

    /// The handles a destination's driver counts with.
    pub fn destination(&self, name: &str) -> DestinationMetrics {
        let labels = DestinationLabels {
            destination: name.to_string(),
        };
        DestinationMetrics {
            delivered: self.delivered.get_or_create(&labels).clone(),
            failed: self.failed.get_or_create(&labels).clone(),
            retried: self.retried.get_or_create(&labels).clone(),
            suppressed: self.suppressed.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
            batch: self.batch.get_or_create(&labels).clone(),
            attempts: AttemptOutcome::ALL.map(|o| {
                self.attempts
                    .get_or_create(&OutcomeLabels {
                        outcome: o.as_str(),
                    })
                    .clone()
            }),
        }
    }

    /// One inbound write and how long its answer took.
    pub fn ingest(&self, source: IngestSource, outcome: IngestOutcome, took: Duration) {
        self.ingest
            .get_or_create(&IngestLabels { source, outcome })
            .inc();
        self.ingest_latency
            .get_or_create(&SourceLabels { source })
            .observe(took.as_secs_f64());
        if source == IngestSource::Webhook {
            match outcome {
                IngestOutcome::Accepted => self.webhooks_accepted.inc(),
                IngestOutcome::Duplicate => self.webhooks_duplicate.inc(),
                IngestOutcome::Rejected => self.webhooks_rejected.inc(),
            };
        }
    }

    /// One SCIM request as answered.
    pub fn scim_request(&self, method: &'static str, resource: &'static str, status: u16) {
        self.scim
            .get_or_create(&ScimLabels {
                method,
                resource,
                status,
            })
            .inc();
    }

    /// This hub's attempts with `outcome` so far (all destinations).
    pub fn attempts(&self, outcome: AttemptOutcome) -> u64 {
        self.attempts
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .get()
    }

    /// The text exposition, with the store's gauges as of now (`None` when
    /// the store did not answer: those series are left out).
    pub fn render(
        &self,
        stats: Option<&StoreStats>,
        destinations: Option<&[DestinationReport]>,
    ) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.jobs.clear();
        if let Some(s) = stats {
            for (status, n) in [
                ("pending", s.pending_jobs),
                ("running", s.running_jobs),
                ("waiting", s.waiting_jobs),
            ] {
                self.jobs.get_or_create(&StatusLabels { status }).set(n);
            }
            self.dead_letters.set(s.dead_letters);
            self.subjects.set(s.subjects);
        }
        // Cleared first: a destination that was removed leaves no series.
        self.queue_depth.clear();
        self.oldest_pending.clear();
        self.paused.clear();
        for d in destinations.unwrap_or_default() {
            let labels = DestinationLabels {
                destination: d.name.clone(),
            };
            self.queue_depth.get_or_create(&labels).set(d.pending);
            self.oldest_pending
                .get_or_create(&labels)
                .set(d.oldest_pending_ms.unwrap_or(0) as f64 / 1000.0);
            self.paused
                .get_or_create(&labels)
                .set(i64::from(d.state == DestinationStatus::Paused));
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_counts_its_outcomes_under_its_name() {
        let m = Metrics::new();
        let d = m.destination("crm");
        d.outcome(AttemptOutcome::Delivered);
        d.outcome(AttemptOutcome::Suppressed);
        d.call(Duration::from_millis(20), 3);
        let text = m.render(None, None);
        assert!(
            text.contains("hub_destination_delivered_total{destination=\"crm\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("hub_destination_suppressed_total{destination=\"crm\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("hub_delivery_attempts_total{outcome=\"delivered\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("hub_destination_batch_size_count{destination=\"crm\"} 1"),
            "{text}"
        );
        assert_eq!(m.attempts(AttemptOutcome::Delivered), 1);
    }
}
