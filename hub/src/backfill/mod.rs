//! `hub backfill --destination NAME` and `POST /admin/destinations/{name}/backfill`:
//! queue every live subject for one destination, for a new or repaired one.
//!
//! The backfill only enqueues (reason `backfill`); the destination's driver
//! delivers at its own rate limit, batching and concurrency, latest state
//! only. Batches are bounded (memory stays flat whatever the subject
//! count), each one statement plus its cursor move in one commit, so a
//! killed run resumes after its last committed batch. Between batches the
//! runner pauses, so that enqueuing a million leaves the writer to ingest
//! most of the time.

pub mod progress;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::store::{BackfillClaim, BackfillStatus, BackfillStep, Store, StoreError};

/// How a backfill runs.
#[derive(Debug, Clone, Copy)]
pub struct BackfillOptions {
    /// Subjects per batch (one statement and one commit each).
    pub batch: usize,
    /// The pause after each batch. None: as long as the batch took, so a
    /// backfill holds the writer at most half of the time.
    pub pause: Option<Duration>,
    /// The runner's lease, renewed by every batch: a killed runner's
    /// destination can be resumed by another once it has run out.
    pub lease: Duration,
    /// Start over from the first subject even if a run is unfinished.
    pub restart: bool,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        Self {
            batch: 1000,
            pause: None,
            lease: Duration::from_secs(15),
            restart: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another runner holds the destination's backfill.
    #[error("a backfill of this destination is running elsewhere (its lease ends at {until} ms)")]
    Held { until: i64 },
    /// This runner's lease expired and another took the backfill over.
    #[error("the backfill's lease was taken over by another runner")]
    LeaseLost,
}

/// What a runner reports as it goes.
#[derive(Debug, Clone)]
pub enum BackfillEvent {
    /// The run to continue: `resumed` when it picks up an unfinished one.
    Started {
        status: BackfillStatus,
        resumed: bool,
    },
    /// One batch committed.
    Batch(BackfillStatus),
    Finished(BackfillStatus),
}

/// A run that holds its destination's lease.
pub struct Backfill {
    store: Arc<dyn Store>,
    destination: String,
    token: String,
    options: BackfillOptions,
    status: BackfillStatus,
    resumed: bool,
}

impl Backfill {
    /// Takes the destination's backfill (resuming an unfinished run unless
    /// `options.restart`).
    pub async fn claim(
        store: Arc<dyn Store>,
        destination: &str,
        options: BackfillOptions,
    ) -> Result<Self, BackfillError> {
        match store
            .claim_backfill(destination, options.restart, options.lease)
            .await?
        {
            BackfillClaim::Held { until } => Err(BackfillError::Held { until }),
            BackfillClaim::Taken {
                status,
                token,
                resumed,
            } => Ok(Self {
                store,
                destination: destination.to_string(),
                token,
                options,
                status,
                resumed,
            }),
        }
    }

    pub fn status(&self) -> &BackfillStatus {
        &self.status
    }

    /// Queues batch after batch until every subject is queued, or `stop`
    /// turns true (the lease is then given back; the cursor stays).
    pub async fn run(
        mut self,
        mut report: impl FnMut(&BackfillEvent),
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<BackfillStatus, BackfillError> {
        report(&BackfillEvent::Started {
            status: self.status.clone(),
            resumed: self.resumed,
        });
        loop {
            if *stop.borrow() {
                self.store
                    .release_backfill(&self.destination, &self.token)
                    .await?;
                return Ok(self.status);
            }
            let began = Instant::now();
            let step = self
                .store
                .backfill_step(
                    &self.destination,
                    &self.token,
                    self.options.batch.max(1),
                    self.options.lease,
                )
                .await?;
            match step {
                BackfillStep::LeaseLost => return Err(BackfillError::LeaseLost),
                BackfillStep::Finished(status) => {
                    report(&BackfillEvent::Finished(status.clone()));
                    tracing::info!(
                        destination = %self.destination,
                        queued = status.queued,
                        "backfill finished"
                    );
                    return Ok(status);
                }
                BackfillStep::Queued { status, .. } => {
                    report(&BackfillEvent::Batch(status.clone()));
                    self.status = status;
                }
            }
            let pause = self.options.pause.unwrap_or_else(|| began.elapsed());
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                // A dropped sender disables this branch: the pause still runs.
                Ok(()) = stop.changed() => {}
            }
        }
    }
}

/// Runs a destination's backfill to the end without reporting (the admin
/// API's background task).
pub async fn run_to_end(
    backfill: Backfill,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<BackfillStatus, BackfillError> {
    backfill.run(|_| {}, stop).await
}
