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
}

impl From<&DeliverySettings> for RetryPolicy {
    fn from(d: &DeliverySettings) -> Self {
        Self {
            base: d.retry_base,
            cap: d.retry_cap,
            retry_after_cap: d.retry_after_cap,
            max_attempts: d.max_attempts,
            max_age: d.max_age,
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

    /// The delay to use: our backoff, or the vendor's `Retry-After` when
    /// longer, clamped to `retry_after_cap`.
    pub fn next_delay(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        let ours = self.delay(attempts, rng);
        match retry_after {
            Some(theirs) => ours.max(theirs.min(self.retry_after_cap)),
            None => ours,
        }
    }

    /// The delay before the next attempt, or None to dead-letter. A paused
    /// destination (it refuses our credentials: 401/403) keeps its jobs until
    /// `max_age`, whatever the attempt count: the fix is on the admin's side
    /// and should not cost the customer their updates.
    pub fn decide(
        &self,
        attempts: u32,
        age: Duration,
        retry_after: Option<Duration>,
        paused: bool,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let allowed = if paused {
            age < self.max_age
        } else {
            self.allows_another(attempts, age)
        };
        allowed.then(|| self.next_delay(attempts, retry_after, rng))
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
    fn retry_after_is_honoured_but_clamped() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let d = p.next_delay(1, Some(Duration::from_secs(60)), &mut rng);
        assert_eq!(d, Duration::from_secs(60));
        let d = p.next_delay(1, Some(Duration::from_secs(100_000)), &mut rng);
        assert_eq!(d, Duration::from_secs(600));
        let d = p.next_delay(1, Some(Duration::from_secs(1)), &mut rng);
        assert!(d >= Duration::from_millis(2500));
    }

    #[test]
    fn paused_destinations_keep_their_jobs_until_max_age() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let young = Duration::from_secs(60);
        assert!(
            p.decide(15, young, None, false, &mut rng).is_none(),
            "a failing destination gives up"
        );
        let wait = p
            .decide(40, young, None, true, &mut rng)
            .expect("a paused one waits");
        assert!(wait <= p.cap);
        assert!(
            p.decide(40, p.max_age, None, true, &mut rng).is_none(),
            "until max_age"
        );
    }

    #[test]
    fn attempts_and_age_are_bounded() {
        let p = policy();
        assert!(p.allows_another(14, Duration::from_secs(10)));
        assert!(!p.allows_another(15, Duration::from_secs(10)));
        assert!(!p.allows_another(1, Duration::from_secs(86400)));
    }
}
