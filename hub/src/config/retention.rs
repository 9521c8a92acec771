//! `[retention]`: how long the queue's history is kept. Delivery attempts
//! follow `privacy.attempt_retention` (their details may echo PII); the
//! consent ledger and erasure receipts are audit records and never pruned.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Change records (what changed, from where, when) are kept this long.
    #[serde(default = "default_changes", with = "humantime_serde")]
    pub changes: Duration,
    /// Accepted webhook ids (for deduplication) are kept this long: at
    /// least twice `webhooks.tolerance`, past which a replay is refused by
    /// its timestamp anyway.
    #[serde(default = "default_inbound_messages", with = "humantime_serde")]
    pub inbound_messages: Duration,
    /// Dead letters that were replayed are kept this long after the replay.
    #[serde(default = "default_dead_letters", with = "humantime_serde")]
    pub dead_letters: Duration,
    /// Per-minute delivery counts (`hub destinations` shows the last hour).
    #[serde(default = "default_destination_counts", with = "humantime_serde")]
    pub destination_counts: Duration,
    /// How often a pruning pass runs.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Rows deleted per transaction, so a pass never holds the writer long.
    #[serde(default = "default_batch")]
    pub batch: usize,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            changes: default_changes(),
            inbound_messages: default_inbound_messages(),
            dead_letters: default_dead_letters(),
            destination_counts: default_destination_counts(),
            interval: default_interval(),
            batch: default_batch(),
        }
    }
}

fn default_changes() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_inbound_messages() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_dead_letters() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_destination_counts() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_interval() -> Duration {
    Duration::from_secs(600)
}
fn default_batch() -> usize {
    1000
}

/// Most rows one delete may take.
const MAX_BATCH: usize = 100_000;

impl RetentionSettings {
    /// Pushes every problem; `tolerance` is `webhooks.tolerance`.
    pub fn validate(&self, tolerance: Duration, errors: &mut Vec<String>) {
        for (key, age) in [
            ("changes", self.changes),
            ("dead_letters", self.dead_letters),
            ("interval", self.interval),
        ] {
            if age.is_zero() {
                errors.push(format!("retention.{key} must not be 0"));
            }
        }
        if self.inbound_messages < tolerance * 2 {
            errors.push(
                "retention.inbound_messages must be at least 2 x webhooks.tolerance \
                 (a replay inside the tolerance would be accepted twice)"
                    .into(),
            );
        }
        if self.destination_counts < Duration::from_secs(3600) {
            errors.push(
                "retention.destination_counts must be at least 1h (destinations report the last hour)"
                    .into(),
            );
        }
        if self.batch == 0 || self.batch > MAX_BATCH {
            errors.push(format!("retention.batch must be 1 to {MAX_BATCH}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(r: RetentionSettings) -> Vec<String> {
        let mut errors = Vec::new();
        r.validate(Duration::from_secs(300), &mut errors);
        errors
    }

    #[test]
    fn defaults_are_valid() {
        assert!(problems(RetentionSettings::default()).is_empty());
    }

    #[test]
    fn refuses_a_dedup_window_shorter_than_the_replay_window() {
        let r = RetentionSettings {
            inbound_messages: Duration::from_secs(599),
            ..Default::default()
        };
        assert_eq!(problems(r).len(), 1);
        let r = RetentionSettings {
            inbound_messages: Duration::from_secs(600),
            ..Default::default()
        };
        assert!(problems(r).is_empty());
    }

    #[test]
    fn refuses_zero_ages_and_unbounded_batches() {
        let r = RetentionSettings {
            changes: Duration::ZERO,
            interval: Duration::ZERO,
            batch: 0,
            destination_counts: Duration::from_secs(60),
            ..Default::default()
        };
        let errors = problems(r);
        assert_eq!(errors.len(), 4, "{errors:?}");
        let r = RetentionSettings {
            batch: MAX_BATCH + 1,
            ..Default::default()
        };
        assert_eq!(problems(r).len(), 1);
    }
    #[test]
    #[allow(clippy::result_large_err)]
    fn retention_from_file_and_env_is_validated_against_the_replay_window() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "hub.toml",
                r#"
                [retention]
                changes = "10d"
                inbound_messages = "1h"
                "#,
            )?;
            jail.set_env("HUB_RETENTION__BATCH", "250");
            let c = crate::config::RawConfig::load(None)
                .unwrap()
                .validate()
                .unwrap();
            assert_eq!(c.retention.changes, Duration::from_secs(10 * 86_400));
            assert_eq!(c.retention.inbound_messages, Duration::from_secs(3600));
            assert_eq!(c.retention.batch, 250);
            jail.set_env("HUB_WEBHOOKS__TOLERANCE", "1h");
            let Err(crate::config::ConfigError::Invalid(errors)) =
                crate::config::RawConfig::load(None).unwrap().validate()
            else {
                panic!("a dedup window shorter than twice the tolerance is refused");
            };
            assert!(
                errors[0].contains("retention.inbound_messages"),
                "{errors:?}"
            );
            Ok(())
        });
    }
}
