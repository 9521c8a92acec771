//! Turns a connector's answer into what the store records: per item the
//! attempt and the next step (done, retry later, dead letter, wait on a
//! vendor ticket), and what the destination holds now. Pure, so every rule
//! is tested without a clock or a vendor.

use std::time::Duration;

use connectors::{BatchResult, CheckResult, DestinationSignal, ItemOutcome, TicketStatus};

use super::batcher::Planned;
use super::retry::RetryPolicy;
use crate::store::{AttemptOutcome, DeliveryJob, Finished, Held, Holding, NextStep, TicketItem};

/// What one answer means.
#[derive(Debug)]
pub struct Verdict {
    pub finished: Vec<Finished>,
    pub signal: Option<DestinationSignal>,
    /// 429s, 5xx, timeouts: the destination is struggling (adaptive concurrency).
    pub back_pressure: bool,
}

pub struct Judge<'a> {
    pub policy: &'a RetryPolicy,
    /// Host clock, Unix ms (for a job's age).
    pub now_ms: i64,
    pub latency: Duration,
}

/// Vendors echo what they refuse ("x@example.com looks fake or invalid"):
/// a reason kept in the attempts and dead letters names no value the item
/// carried (its mapped fields and identity).
fn without_values_of(outcome: ItemOutcome, item: &connectors::Item) -> ItemOutcome {
    let scrub = |reason: String| {
        let mut values: Vec<&str> = item.identity.values().filter_map(|v| v.as_str()).collect();
        if let connectors::Action::Upsert(fields) = &item.action {
            values.extend(fields.values().filter_map(|v| v.as_str()));
        }
        // Longest first, so a value inside another goes with it; short ones
        // ("DE", "1") would blank out ordinary words.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values
            .into_iter()
            .filter(|v| v.chars().count() >= 5)
            .fold(reason, |text, v| text.replace(v, "(value not shown)"))
    };
    match outcome {
        ItemOutcome::Permanent { reason } => ItemOutcome::Permanent {
            reason: scrub(reason),
        },
        ItemOutcome::Retry { reason } => ItemOutcome::Retry {
            reason: scrub(reason),
        },
        other => other,
    }
}

impl Judge<'_> {
    /// How long a throttle lasts: the vendor's wish, within our cap.
    pub fn throttle_wait(&self, retry_after: Duration) -> Duration {
        retry_after.min(self.policy.retry_after_cap)
    }

    fn finished(
        &self,
        job: DeliveryJob,
        action: connectors::ActionKind,
        status: Option<u16>,
    ) -> Finished {
        Finished {
            job,
            action: Some(action),
            outcome: AttemptOutcome::Delivered,
            status_code: status,
            latency_ms: self.latency.as_millis() as i64,
            detail: None,
            next: NextStep::Done,
            holding: None,
            attempted: true,
        }
    }

    /// A failure of the item itself: back off and try again, or give up.
    fn failed(&self, mut f: Finished, reason: String) -> Finished {
        let attempts = (f.job.attempt + 1) as u32;
        let age = Duration::from_millis((self.now_ms - f.job.first_enqueued_at).max(0) as u64);
        match self.policy.decide(attempts, age, &mut rand::rng()) {
            Some(after) => {
                f.outcome = AttemptOutcome::Retry;
                f.next = NextStep::Retry {
                    after,
                    counted: true,
                };
                f.detail = Some(reason);
            }
            None => {
                f.outcome = AttemptOutcome::Dead;
                f.next = NextStep::DeadLetter;
                f.detail = Some(format!("gave up after {attempts} attempts: {reason}"));
            }
        }
        f
    }

    /// The item was not at fault: the destination throttled or paused.
    fn held_back(&self, mut f: Finished, reason: String, signal: &DestinationSignal) -> Finished {
        let (outcome, after) = match signal {
            DestinationSignal::Throttle { retry_after, .. } => {
                (AttemptOutcome::Throttled, self.throttle_wait(*retry_after))
            }
            // A paused destination is not claimed until it resumes.
            DestinationSignal::Pause { .. } => (AttemptOutcome::Paused, Duration::ZERO),
        };
        f.outcome = outcome;
        f.next = NextStep::Retry {
            after,
            counted: false,
        };
        f.detail = Some(reason);
        f
    }

    pub fn batch(&self, batch: Vec<Planned>, result: BatchResult) -> Verdict {
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; batch.len()];
        for (i, o) in result.outcomes {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = Some(o);
            }
        }
        let mut back_pressure = result.signal.is_some();
        let finished = batch
            .into_iter()
            .zip(outcomes)
            .map(|(p, outcome)| {
                let kind = p.item.action.kind();
                let outcome = outcome.map(|o| without_values_of(o, &p.item));
                let mut f = self.finished(p.job, kind, result.status);
                f.detail = p.note;
                match outcome {
                    Some(ItemOutcome::Delivered { record_id }) => {
                        f.holding = Some(Holding {
                            state: Held::after(kind),
                            record_id: record_id.or(p.item.record_id),
                            identity: p.item.identity,
                        });
                        f
                    }
                    Some(ItemOutcome::Accepted {
                        ticket,
                        check_after,
                    }) => {
                        f.outcome = AttemptOutcome::Accepted;
                        f.next = NextStep::Wait {
                            ticket,
                            item: TicketItem {
                                action: kind,
                                delivery_id: p.item.delivery_id,
                                identity: p.item.identity,
                                record_id: p.item.record_id,
                            },
                            after: check_after.min(self.policy.ticket_check_cap),
                        };
                        f
                    }
                    Some(ItemOutcome::Permanent { reason }) => {
                        f.outcome = AttemptOutcome::Dead;
                        f.next = NextStep::DeadLetter;
                        f.detail = Some(reason);
                        f
                    }
                    Some(ItemOutcome::Retry { reason }) => match &result.signal {
                        Some(signal) => self.held_back(f, reason, signal),
                        None => {
                            back_pressure = true;
                            self.failed(f, reason)
                        }
                    },
                    None => {
                        back_pressure = true;
                        self.failed(f, "the connector returned no outcome".into())
                    }
                }
            })
            .collect();
        Verdict {
            finished,
            signal: result.signal,
            back_pressure,
        }
    }

    /// `jobs` are waiting jobs whose tickets were checked, in the order asked.
    pub fn check(&self, jobs: Vec<DeliveryJob>, result: CheckResult) -> Verdict {
        let mut statuses: Vec<Option<TicketStatus>> = vec![None; jobs.len()];
        for (i, s) in result.statuses {
            if let Some(slot) = statuses.get_mut(i) {
                *slot = Some(s);
            }
        }
        let mut back_pressure = result.signal.is_some();
        let finished = jobs
            .into_iter()
            .zip(statuses)
            .filter_map(|(job, status)| {
                let pending = job.ticket.clone()?;
                let kind = pending.item.action;
                let mut f = self.finished(job, kind, result.status);
                let wait_again = |mut f: Finished, after: Duration| {
                    f.attempted = false;
                    f.next = NextStep::Wait {
                        ticket: pending.ticket.clone(),
                        item: pending.item.clone(),
                        after,
                    };
                    f
                };
                Some(match status {
                    Some(TicketStatus::Confirmed { record_id }) => {
                        f.holding = Some(Holding {
                            state: Held::after(kind),
                            record_id: record_id.or(pending.item.record_id.clone()),
                            identity: pending.item.identity.clone(),
                        });
                        f.detail = Some(format!("vendor job {} confirmed", pending.ticket));
                        f
                    }
                    Some(TicketStatus::Pending { check_after }) => {
                        wait_again(f, check_after.min(self.policy.ticket_check_cap))
                    }
                    Some(TicketStatus::Failed { reason, retry }) if retry => {
                        back_pressure = true;
                        self.failed(f, reason)
                    }
                    Some(TicketStatus::Failed { reason, .. }) => {
                        f.outcome = AttemptOutcome::Dead;
                        f.next = NextStep::DeadLetter;
                        f.detail = Some(reason);
                        f
                    }
                    // Not answered (throttled, paused, or the call failed): ask again.
                    None => {
                        let after = match &result.signal {
                            Some(DestinationSignal::Throttle { retry_after, .. }) => {
                                self.throttle_wait(*retry_after)
                            }
                            _ => self.policy.base,
                        };
                        wait_again(f, after)
                    }
                })
            })
            .collect();
        Verdict {
            finished,
            signal: result.signal,
            back_pressure,
        }
    }
}

/// A claimed job handed back unsent (paused, throttled, lease too old, or
/// shutting down): no attempt recorded or counted.
pub fn handed_back(job: DeliveryJob, after: Duration) -> Finished {
    Finished {
        job,
        action: None,
        outcome: AttemptOutcome::Skipped,
        status_code: None,
        latency_ms: 0,
        detail: None,
        next: NextStep::Retry {
            after,
            counted: false,
        },
        holding: None,
        attempted: false,
    }
}

/// A job settled without a call: consent not granted, `when` not matching.
pub fn settled(job: DeliveryJob, outcome: AttemptOutcome, detail: String) -> Finished {
    Finished {
        job,
        action: None,
        outcome,
        status_code: None,
        latency_ms: 0,
        detail: Some(detail),
        next: NextStep::Done,
        holding: None,
        attempted: true,
    }
}

#[cfg(test)]
mod tests;
