//! Per-destination rate limits, as a token bucket. The engine asks before
//! sending; what does not fit now is deferred as a job scheduled for later,
//! so a worker never sleeps on a limit and no attempt is spent.

use std::time::{Duration, Instant};

use connectors::RateLimit;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            tokens: f64::from(limit.burst.max(1)),
            limit,
            updated: now,
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        let burst = f64::from(self.limit.burst.max(1));
        self.tokens = (self.tokens + elapsed * self.limit.per_second).min(burst);
        self.updated = now;
    }

    /// Takes up to `wanted` tokens; returns how many were granted and, when
    /// short, how long until the next one.
    pub fn take(&mut self, wanted: usize, now: Instant) -> (usize, Option<Duration>) {
        self.refill(now);
        let granted = (self.tokens.floor().max(0.0) as usize).min(wanted);
        self.tokens -= granted as f64;
        if granted == wanted {
            return (granted, None);
        }
        let missing = 1.0 - self.tokens;
        let wait = if self.limit.per_second > 0.0 {
            Duration::from_secs_f64((missing / self.limit.per_second).max(0.001))
        } else {
            Duration::from_secs(3600)
        };
        (granted, Some(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(per_second: f64, burst: u32) -> (TokenBucket, Instant) {
        let now = Instant::now();
        (TokenBucket::new(RateLimit { per_second, burst }, now), now)
    }

    #[test]
    fn a_burst_goes_at_once_then_the_rate_holds() {
        let (mut b, t0) = bucket(10.0, 5);
        assert_eq!(b.take(8, t0), (5, Some(Duration::from_millis(100))));
        assert_eq!(
            b.take(1, t0 + Duration::from_millis(50)).0,
            0,
            "half a token"
        );
        assert_eq!(b.take(3, t0 + Duration::from_millis(300)).0, 3);
    }

    #[test]
    fn tokens_never_exceed_the_burst() {
        let (mut b, t0) = bucket(100.0, 3);
        assert_eq!(b.take(10, t0 + Duration::from_secs(60)).0, 3);
    }

    #[test]
    fn the_wait_is_until_the_next_token() {
        let (mut b, t0) = bucket(2.0, 1);
        assert_eq!(b.take(1, t0), (1, None));
        let (granted, wait) = b.take(1, t0);
        assert_eq!(granted, 0);
        assert_eq!(wait, Some(Duration::from_millis(500)));
    }
}
