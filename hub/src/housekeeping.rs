//! Background upkeep: completes erasures whose deletes were all confirmed
//! (or whose deadline passed), and drops delivery attempts past retention.

use std::sync::Arc;
use std::time::Duration;

use crate::config::PrivacySettings;
use crate::store::{Store, now_ms};

/// How often pending erasures are checked.
const ERASURE_INTERVAL: Duration = Duration::from_secs(1);
/// How often old attempts are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

pub async fn run(
    store: Arc<dyn Store>,
    privacy: PrivacySettings,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ERASURE_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
        let now = now_ms();
        match store
            .complete_erasures(now, privacy.erasure_deadline.as_millis() as i64)
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
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_INTERVAL) {
            last_prune = Some(tokio::time::Instant::now());
            let before = now - privacy.attempt_retention.as_millis() as i64;
            match store.prune_attempts(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "old delivery attempts removed"),
                Err(e) => tracing::error!(error = %e, "pruning attempts failed"),
            }
            // Per-minute outcome counts serve "the last hour"; keep a day.
            if let Err(e) = store.prune_destination_counts(now - 86_400_000).await {
                tracing::error!(error = %e, "pruning destination counts failed");
            }
        }
    }
}
