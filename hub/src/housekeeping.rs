//! Background upkeep: completes erasures whose deletes were all confirmed
//! (or whose deadline passed), and prunes the queue's history past its
//! retention, in bounded batches (`store::retention` says what goes and
//! what never does).

use std::sync::Arc;
use std::time::Duration;

use crate::config::{PrivacySettings, RetentionSettings};
use crate::store::{PruneCutoffs, Store, now_ms};

/// How often pending erasures are checked.
const ERASURE_INTERVAL: Duration = Duration::from_secs(1);

/// What upkeep needs from the settings.
#[derive(Debug, Clone)]
pub struct Upkeep {
    pub privacy: PrivacySettings,
    pub retention: RetentionSettings,
}

impl Upkeep {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            privacy: config.privacy.clone(),
            retention: config.retention,
        }
    }
}

/// The cutoffs of a pruning pass at `now` (Unix ms).
pub fn cutoffs(upkeep: &Upkeep, now: i64) -> PruneCutoffs {
    let ago = |d: Duration| now - d.as_millis() as i64;
    let r = &upkeep.retention;
    PruneCutoffs {
        attempts_before: ago(upkeep.privacy.attempt_retention),
        changes_before: ago(r.changes),
        inbound_messages_before: ago(r.inbound_messages),
        replayed_dead_letters_before: ago(r.dead_letters),
        destination_counts_before: ago(r.destination_counts),
    }
}

/// One pruning pass; logs what went.
pub async fn prune(store: &dyn Store, upkeep: &Upkeep) {
    match store
        .prune_history(&cutoffs(upkeep, now_ms()), upkeep.retention.batch)
        .await
    {
        Ok(p) if p.total() == 0 => {}
        Ok(p) => tracing::info!(
            attempts = p.attempts,
            changes = p.changes,
            inbound_messages = p.inbound_messages,
            dead_letters = p.dead_letters,
            destination_counts = p.destination_counts,
            "history past retention removed"
        ),
        Err(e) => tracing::error!(error = %e.log_text(), "pruning history failed"),
    }
}

/// Runs erasure checks (every second) and pruning passes (every
/// `retention.interval`, the first at start) side by side, so that a long
/// pass over a backlog never delays an erasure, until `shutdown`.
pub async fn run(
    store: Arc<dyn Store>,
    upkeep: Upkeep,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    tokio::join!(
        complete_erasures(store.as_ref(), &upkeep, shutdown.clone()),
        prune_periodically(store.as_ref(), &upkeep, shutdown),
    );
}

async fn complete_erasures(
    store: &dyn Store,
    upkeep: &Upkeep,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ERASURE_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
        match store
            .complete_erasures(now_ms(), upkeep.privacy.erasure_deadline.as_millis() as i64)
            .await
        {
            Ok(receipts) => {
                for r in receipts {
                    if r.unconfirmed.is_empty() {
                        tracing::info!(subject = %r.subject_id, confirmed = r.confirmed.len(), "erasure completed");
                    } else {
                        tracing::error!(subject = %r.subject_id, unconfirmed = ?r.unconfirmed, "erasure deadline passed; PII removed here, some destinations never confirmed");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "erasure check failed"),
        }
    }
}

async fn prune_periodically(
    store: &dyn Store,
    upkeep: &Upkeep,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    // The first pass a second after start, like the erasure checks.
    let mut wait = ERASURE_INTERVAL;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        // Shutdown drops a pass (an open batch rolls back); the rest goes next time.
        tokio::select! {
            _ = prune(store, upkeep) => {}
            _ = shutdown.changed() => return,
        }
        wait = upkeep.retention.interval;
    }
}
