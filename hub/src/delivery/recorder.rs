//! Commits a driver's outcomes as they come back: a task per destination
//! takes whatever has queued up and writes it in one transaction (a group
//! commit, like ingest's), so a fast destination pays few commits and a
//! slow one never holds back another's. A commit that fails is retried
//! until it succeeds or the lease runs out (then the jobs are reclaimed and
//! sent again: delivery is at least once).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

use crate::store::{Finished, Store};

enum Message {
    Finished(Vec<Finished>),
    /// Answered once everything submitted before it is committed.
    Flush(oneshot::Sender<()>),
}

pub(super) struct Recorder {
    tx: mpsc::UnboundedSender<Message>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// `wake` is rung after each commit: pairs that were in flight are free.
    /// A commit is retried for at most `lease`: after that the jobs belong
    /// to whoever reclaims them.
    pub(super) fn start(
        store: Arc<dyn Store>,
        wake: Arc<Notify>,
        destination: &str,
        lease: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(store, rx, wake, destination.to_string(), lease));
        Self { tx, task }
    }

    pub(super) fn submit(&self, finished: Vec<Finished>) {
        if !finished.is_empty() {
            let _ = self.tx.send(Message::Finished(finished));
        }
    }

    pub(super) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// Commits what is left and ends the task.
    pub(super) async fn close(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    wake: Arc<Notify>,
    destination: String,
    lease: Duration,
) {
    let mut messages = Vec::new();
    while rx.recv_many(&mut messages, 1024).await > 0 {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        for m in messages.drain(..) {
            match m {
                Message::Finished(f) => batch.extend(f),
                Message::Flush(done) => flushes.push(done),
            }
        }
        if !batch.is_empty() {
            commit(store.as_ref(), &batch, &destination, lease).await;
            wake.notify_one();
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn commit(store: &dyn Store, batch: &[Finished], destination: &str, lease: Duration) {
    let mut wait = Duration::from_millis(50);
    let started = tokio::time::Instant::now();
    loop {
        match store.finish(batch).await {
            Ok(_) => return,
            Err(e) if started.elapsed() >= lease => {
                tracing::error!(destination, error = %e.log_text(), jobs = batch.len(), "outcomes not recorded; the jobs will be reclaimed and sent again");
                return;
            }
            Err(e) => {
                tracing::error!(destination, error = %e.log_text(), jobs = batch.len(), "recording outcomes failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
