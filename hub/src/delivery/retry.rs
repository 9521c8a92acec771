//! When to try again. Pure functions over the policy and the attempt number,
//! so they are tested without a clock.

use std::time::Duration;

use rand::Rng;

use crate::config::DeliverySettings;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub retry_after_cap: Duration,
    pub max_attempts: u32,
    pub max_age: Duration,
    /// The longest wait before a vendor ticket is checked again.
    pub ticket_check_cap: Duration,
}

impl From<&DeliverySettings> for RetryPolicy {
    fn from(d: &DeliverySettings) -> Self {
        Self {
            base: d.retry_base,
            cap: d.retry_cap,
            retry_after_cap: d.retry_after_cap,
            max_attempts: d.max_attempts,
            max_age: d.max_age,
            ticket_check_cap: d.ticket_check_cap,
        }
    }
}

impl RetryPolicy {
    /// The window after the `attempts`-th failure: base * 2^(attempts-1), capped.
    pub fn window(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << exp).min(self.cap)
    }

    /// Jittered delay drawn from the upper half of the window, so calls to a
    /// failing destination spread out yet never come sooner than the last.
    pub fn delay(&self, attempts: u32, rng: &mut impl Rng) -> Duration {
        let window = self.window(attempts);
        let half = window / 2;
        let span = window.saturating_sub(half).as_millis() as u64;
        half + Duration::from_millis(if span == 0 {
            0
        } else {
            rng.random_range(0..=span)
        })
    }

    /// The delay before the next attempt after `attempts` failures of a
    /// job first queued `age` ago, or None to dead-letter. (A vendor's
    /// Retry-After throttles the whole destination instead: see `judge`.)
    pub fn decide(&self, attempts: u32, age: Duration, rng: &mut impl Rng) -> Option<Duration> {
        self.allows_another(attempts, age)
            .then(|| self.delay(attempts, rng))
    }

    /// True when another attempt is allowed after `attempts` failures on a
    /// job first queued `age` ago.
    pub fn allows_another(&self, attempts: u32, age: Duration) -> bool {
        attempts < self.max_attempts && age < self.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(3600),
            retry_after_cap: Duration::from_secs(600),
            max_attempts: 15,
            max_age: Duration::from_secs(86400),
            ticket_check_cap: Duration::from_secs(3600),
        }
    }

    #[test]
    fn windows_double_up_to_the_cap() {
        let p = policy();
        assert_eq!(p.window(1), Duration::from_secs(5));
        assert_eq!(p.window(2), Duration::from_secs(10));
        assert_eq!(p.window(3), Duration::from_secs(20));
        assert_eq!(p.window(20), Duration::from_secs(3600));
        assert_eq!(p.window(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn jittered_delays_stay_in_the_window_and_never_shrink() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut distinct = std::collections::HashSet::new();
        for attempt in 1..14 {
            for _ in 0..200 {
                let d = p.delay(attempt, &mut rng);
                assert!(d >= p.window(attempt) / 2 && d <= p.window(attempt));
                assert!(d >= p.window(attempt - 1).min(p.window(attempt)) / 2);
                distinct.insert(d);
                if attempt > 1 {
                    assert!(d >= p.window(attempt - 1) / 2);
                }
            }
        }
        assert!(distinct.len() > 100, "delays are jittered");
    }

    #[test]
    fn failures_give_up_after_max_attempts_or_max_age() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let young = Duration::from_secs(60);
        let wait = p
            .decide(1, young, &mut rng)
            .expect("a first failure retries");
        assert!(wait >= p.window(1) / 2 && wait <= p.window(1));
        assert!(p.decide(15, young, &mut rng).is_none(), "max_attempts");
        assert!(p.decide(1, p.max_age, &mut rng).is_none(), "max_age");
    }

    #[test]
    fn attempts_and_age_are_bounded() {
        let p = policy();
        assert!(p.allows_another(14, Duration::from_secs(10)));
        assert!(!p.allows_another(15, Duration::from_secs(10)));
        assert!(!p.allows_another(1, Duration::from_secs(86400)));
    }
}
