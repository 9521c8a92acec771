//! The two limits a destination's driver keeps: how many calls may be in
//! flight (adaptive: [`Aimd`]) and how many may start per unit of time, for
//! all hub processes together ([`SharedRateLimit`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use connectors::{CallGate, RateLimit};
use tokio::time::Instant;

use crate::store::Store;

/// Calls are paced this much under a vendor's limit (10%), so that the
/// jitter between our clock, the network and the vendor's (tens of ms on a
/// busy host, 100 ms and more on an overloaded one) cannot push any window
/// over it.
const PACING_MARGIN: f64 = 1.10;

/// A reserved start time may be used this late; later it is dropped, so an
/// idle spell or a late wakeup never turns reservations into a burst.
const SLOT_GRACE: Duration = Duration::from_millis(5);

/// Reservations are made for about this much time ahead at once.
const RESERVE_AHEAD: Duration = Duration::from_millis(250);

/// A destination's rate limit, shared through the store: every call takes a
/// start time from the destination's one schedule (a GCRA row), so two hub
/// processes together keep to it. Waiting for a start time sleeps; it
/// never spins.
pub struct SharedRateLimit {
    store: Arc<dyn Store>,
    destination: String,
    limit: RateLimit,
    interval: Duration,
    /// Start times reserved but not used yet.
    slots: tokio::sync::Mutex<VecDeque<Instant>>,
}

impl SharedRateLimit {
    pub fn new(store: Arc<dyn Store>, destination: &str, limit: RateLimit) -> Self {
        Self {
            store,
            destination: destination.to_string(),
            interval: limit.interval().mul_f64(PACING_MARGIN),
            limit,
            slots: Default::default(),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Calls per [`RESERVE_AHEAD`], at least one.
    fn batch(&self) -> u32 {
        let per = RESERVE_AHEAD.as_secs_f64() / self.interval.as_secs_f64().max(1e-6);
        (per.floor() as u32).clamp(1, 64)
    }

    /// Waits for the next start time.
    pub async fn wait(&self) {
        loop {
            let next = {
                let mut slots = self.slots.lock().await;
                let now = Instant::now();
                while slots.front().is_some_and(|s| *s + SLOT_GRACE < now) {
                    slots.pop_front();
                }
                if slots.is_empty() {
                    match self
                        .store
                        .reserve_calls(&self.destination, self.batch(), self.interval)
                        .await
                    {
                        // The delays count from the database's "now", which
                        // passed while the answer travelled: count from the
                        // answer's arrival, so no start comes early.
                        Ok(delays) => {
                            let now = Instant::now();
                            slots.extend(delays.into_iter().map(|d| now + d));
                        }
                        Err(e) => {
                            // Without the shared schedule, fall back to our
                            // own pacing rather than to no limit at all.
                            tracing::warn!(destination = %self.destination, error = %e.log_text(), "rate limit schedule unavailable");
                            slots.push_back(now + self.interval);
                        }
                    }
                }
                slots.pop_front()
            };
            if let Some(at) = next {
                tokio::time::sleep_until(at).await;
                // Woken late (a busy host): this start would crowd the
                // next ones into one window at the vendor; take a later one.
                if Instant::now() <= at + SLOT_GRACE {
                    return;
                }
            }
        }
    }
}

/// The gate every vendor call of one destination passes.
pub struct Gate {
    pub rate: Option<Arc<SharedRateLimit>>,
}

#[async_trait::async_trait]
impl CallGate for Gate {
    async fn acquire(&self) {
        if let Some(rate) = &self.rate {
            rate.wait().await;
        }
    }

    fn record(&self, _status: Option<u16>, _latency: Duration) {}
}

/// Adaptive concurrency in the spirit of Vector's: additive increase while
/// calls succeed at the limit without their latency rising, multiplicative
/// decrease on back-pressure (429, 5xx, timeouts) or a latency well above
/// the recent mean. One congestion event shrinks the limit once, as in
/// TCP: the calls that were already in flight when it shrank come back
/// slow together (a pause of the host, a hiccup of the vendor), and
/// counting each of them would drive the limit to one for a single event.
#[derive(Debug, Clone)]
pub struct Aimd {
    limit: f64,
    max: usize,
    /// Exponentially weighted mean latency of successful batches.
    mean_latency: Option<Duration>,
    /// When the limit last shrank: only calls sent after it can shrink it again.
    shrunk_at: Option<Instant>,
}

/// Back-pressure shrinks the limit to this fraction.
const DECREASE: f64 = 0.75;
/// A batch this much slower than the mean counts as back-pressure.
const SLOW: f64 = 2.0;

impl Aimd {
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.max(1);
        Self {
            limit: initial.clamp(1, max) as f64,
            max,
            mean_latency: None,
            shrunk_at: None,
        }
    }

    /// Calls that may be in flight now.
    pub fn limit(&self) -> usize {
        (self.limit.floor() as usize).clamp(1, self.max)
    }

    /// One batch, sent at `sent_at`, came back. `saturated`: the limit was
    /// reached when it was sent (only then is there a reason to grow).
    pub fn observe(
        &mut self,
        sent_at: Instant,
        latency: Duration,
        back_pressure: bool,
        saturated: bool,
    ) {
        let slow = self
            .mean_latency
            .is_some_and(|mean| latency.as_secs_f64() > mean.as_secs_f64() * SLOW + 0.005);
        if back_pressure || slow {
            // Sent before the last shrink: part of the event already counted.
            if self.shrunk_at.is_none_or(|at| sent_at > at) {
                self.limit = (self.limit * DECREASE).max(1.0);
                self.shrunk_at = Some(sent_at + latency);
            }
        } else if saturated {
            self.limit = (self.limit + 1.0).min(self.max as f64);
        }
        if !back_pressure {
            self.mean_latency = Some(match self.mean_latency {
                None => latency,
                Some(mean) => mean.mul_f64(0.9) + latency.mul_f64(0.1),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(10);

    /// Calls sent one after another, each after the previous came back.
    struct Clock(Instant);

    impl Clock {
        fn next(&mut self, latency: Duration) -> Instant {
            let sent = self.0;
            self.0 += latency + Duration::from_millis(1);
            sent
        }
    }

    #[test]
    fn grows_only_when_saturated_and_stays_within_max() {
        let mut t = Clock(Instant::now());
        let mut a = Aimd::new(2, 5);
        a.observe(t.next(MS), MS, false, false);
        assert_eq!(a.limit(), 2, "no growth without demand");
        for _ in 0..10 {
            a.observe(t.next(MS), MS, false, true);
        }
        assert_eq!(a.limit(), 5);
    }

    #[test]
    fn back_pressure_and_slow_answers_shrink_it_but_never_below_one() {
        let mut t = Clock(Instant::now());
        let mut a = Aimd::new(8, 8);
        a.observe(t.next(MS), MS, true, true);
        assert_eq!(a.limit(), 6);
        for _ in 0..20 {
            a.observe(t.next(MS), MS, false, false);
        }
        let slow = Duration::from_millis(200);
        a.observe(t.next(slow), slow, false, true);
        assert_eq!(a.limit(), 4, "a slow batch is back-pressure");
        for _ in 0..20 {
            a.observe(t.next(MS), MS, true, true);
        }
        assert_eq!(a.limit(), 1);
    }

    #[test]
    fn calls_in_flight_together_shrink_it_once() {
        let mut a = Aimd::new(32, 32);
        let sent = Instant::now();
        for _ in 0..20 {
            a.observe(sent, MS, false, true);
        }
        // Twenty calls sent at once, all throttled: one event.
        let throttled = Instant::now() + Duration::from_millis(50);
        for _ in 0..20 {
            a.observe(throttled, MS, true, true);
        }
        assert_eq!(a.limit(), 24);
        // A call sent after the shrink came back throttled too: a new event.
        a.observe(throttled + MS * 2, MS, true, true);
        assert_eq!(a.limit(), 18);
    }
}
