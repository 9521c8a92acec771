//! Group commit for inbound changes. Handlers submit an item and wait; one
//! writer task commits whatever has queued up in a single transaction, then
//! answers each. Every answer still means "committed", and SQLite pays one
//! fsync per batch instead of one per webhook.

use std::sync::Arc;

use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

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
    /// Starts the writer task. `wake` is rung after each commit.
    pub fn start(store: Arc<dyn Store>, wake: Arc<Notify>) -> (Self, tokio::task::JoinHandle<()>) {
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
    wake: Arc<Notify>,
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
            commit(store.as_ref(), &items, replies, &wake).await;
            drop(permit);
        });
    }
    // Wait for the last commits before reporting the writer done.
    let _ = permits.acquire_many(parallel as u32).await;
}

async fn commit(store: &dyn Store, items: &[IngestItem], replies: Vec<Reply>, wake: &Notify) {
    // One retry: a deadlock or busy error on a whole batch is worth another try.
    let mut result = store.ingest(items).await;
    if result.is_err() {
        result = store.ingest(items).await;
    }
    match result {
        Ok(outcomes) => {
            // Wake one idle worker (or the next to wait): waking them all
            // would have them race to claim the same few jobs.
            wake.notify_one();
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            tracing::error!(error = %e.log_text(), items = items.len(), "ingest commit failed");
            let e = Arc::new(e);
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
