//! Group commit for inbound changes. Handlers submit an item and wait; one
//! writer task commits whatever has queued up in a single transaction, then
//! answers each. Every answer still means "committed", and SQLite pays one
//! fsync per batch instead of one per webhook. A batch the database refuses
//! is split in halves and each half committed on its own, down to the one
//! change that fails, so a change that can never commit costs only its own
//! sender a refusal.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::delivery::Wakers;

use crate::store::notify::Woken;
use crate::store::{IngestItem, IngestOutcome, Store, StoreError};

type Reply = oneshot::Sender<Result<IngestOutcome, Arc<StoreError>>>;

#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<(IngestItem, Reply)>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the store could not commit")]
    Store(#[source] Arc<StoreError>),
    #[error("the hub is shutting down")]
    Closed,
}

/// Items committed together at most.
const MAX_BATCH: usize = 512;

impl Ingestor {
    /// Starts the writer task. The destinations that got jobs are woken after each commit.
    pub fn start(store: Arc<dyn Store>, wake: Arc<Wakers>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let handle = tokio::spawn(writer(store, rx, wake));
        (Self { tx }, handle)
    }

    pub async fn submit(&self, item: IngestItem) -> Result<IngestOutcome, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((item, reply))
            .await
            .map_err(|_| IngestError::Closed)?;
        match answer.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) => Err(IngestError::Store(e)),
            Err(_) => Err(IngestError::Closed),
        }
    }
}

async fn writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<(IngestItem, Reply)>,
    wake: Arc<Wakers>,
) {
    // SQLite has one writer at a time; PostgreSQL gains from a few.
    let parallel = store.parallel_writers().max(1);
    let permits = Arc::new(Semaphore::new(parallel));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        // Items that queued while we waited for a permit join this batch.
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let (items, replies): (Vec<IngestItem>, Vec<Reply>) =
            std::mem::take(&mut batch).into_iter().unzip();
        let store = store.clone();
        let wake = wake.clone();
        tokio::spawn(async move {
            commit(store.as_ref(), items, replies, &wake).await;
            drop(permit);
        });
    }
    // Wait for the last commits before reporting the writer done.
    let _ = permits.acquire_many(parallel as u32).await;
}

/// Commits `items`, bisecting on failure: a failed part of two or more is
/// split and its halves committed in order; a single change is tried once
/// more (a deadlock or busy error is worth another try), then refused.
async fn commit(store: &dyn Store, items: Vec<IngestItem>, replies: Vec<Reply>, wake: &Wakers) {
    // A stack of parts still to commit, the next one last.
    let mut parts = vec![(items, replies)];
    while let Some((mut items, mut replies)) = parts.pop() {
        let mut result = store.ingest(&items).await;
        if result.is_err() && items.len() > 1 {
            tracing::warn!(
                items = items.len(),
                "group commit failed; committing its halves apart"
            );
            let half = items.len() / 2;
            let (later, later_replies) = (items.split_off(half), replies.split_off(half));
            parts.push((later, later_replies));
            parts.push((items, replies));
            continue;
        }
        if result.is_err() {
            result = store.ingest(&items).await;
        }
        match result {
            Ok(outcomes) => {
                wake_destinations(&items, wake);
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                if e.is_refusal() {
                    tracing::warn!(error = %e.log_text(), "a change was refused by the store");
                } else {
                    tracing::error!(error = %e.log_text(), items = items.len(), "ingest commit failed");
                }
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Wakes the drivers of the destinations that got jobs; an erasure also
/// queues destinations that once held the subject, so it wakes them all.
fn wake_destinations(items: &[IngestItem], wake: &Wakers) {
    match Woken::by(items) {
        Woken::Every => wake.wake_all(),
        Woken::These(names) => {
            for name in names {
                wake.wake(name);
            }
        }
    }
}
