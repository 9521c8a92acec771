//! Counters for `GET /metrics`, in the Prometheus text format. Held in
//! `AppState`, never global.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{AttemptOutcome, StoreStats};

#[derive(Debug, Default)]
pub struct Metrics {
    pub webhooks_accepted: AtomicU64,
    pub webhooks_duplicate: AtomicU64,
    pub webhooks_rejected: AtomicU64,
    attempts: [AtomicU64; 8],
}

const OUTCOMES: [AttemptOutcome; 8] = AttemptOutcome::ALL;

impl Metrics {
    pub fn record_attempt(&self, outcome: AttemptOutcome) {
        let i = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
        self.attempts[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn attempts(&self, outcome: AttemptOutcome) -> u64 {
        let i = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
        self.attempts[i].load(Ordering::Relaxed)
    }

    pub fn render(&self, stats: Option<&StoreStats>) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            &mut out,
            "hub_webhooks_accepted_total",
            "Inbound webhooks committed.",
            self.webhooks_accepted.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "hub_webhooks_duplicate_total",
            "Inbound webhooks whose webhook-id was already seen.",
            self.webhooks_duplicate.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "hub_webhooks_rejected_total",
            "Inbound webhooks refused (4xx).",
            self.webhooks_rejected.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP hub_delivery_attempts_total Delivery attempts by outcome.\n# TYPE hub_delivery_attempts_total counter"
        );
        for o in OUTCOMES {
            let _ = writeln!(
                out,
                "hub_delivery_attempts_total{{outcome=\"{}\"}} {}",
                o.as_str(),
                self.attempts(o)
            );
        }
        if let Some(s) = stats {
            let _ = writeln!(
                out,
                "# HELP hub_delivery_jobs Jobs in the queue by status.\n# TYPE hub_delivery_jobs gauge"
            );
            let _ = writeln!(
                out,
                "hub_delivery_jobs{{status=\"pending\"}} {}",
                s.pending_jobs
            );
            let _ = writeln!(
                out,
                "hub_delivery_jobs{{status=\"running\"}} {}",
                s.running_jobs
            );
            let _ = writeln!(
                out,
                "hub_delivery_jobs{{status=\"waiting\"}} {}",
                s.waiting_jobs
            );
            let _ = writeln!(
                out,
                "# HELP hub_dead_letters Dead letters awaiting replay.\n# TYPE hub_dead_letters gauge\nhub_dead_letters {}",
                s.dead_letters
            );
            let _ = writeln!(
                out,
                "# HELP hub_subjects Subjects held.\n# TYPE hub_subjects gauge\nhub_subjects {}",
                s.subjects
            );
        }
        out
    }
}
