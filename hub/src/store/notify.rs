//! Wake-ups across processes on PostgreSQL. An ingest commit notifies the
//! destinations it queued jobs for, and every worker process listens, so a
//! worker that is not the API's own process starts on a change at once
//! instead of at its next poll (`delivery.poll_interval`). NOTIFY is part of
//! the transaction: sent at commit, never for a change that rolled back.
//! SQLite runs in one process, where ingest wakes the drivers directly.

use std::time::Duration;

use super::{IngestItem, StoreError};
use crate::event::EventType;

const CHANNEL: &str = "hub_jobs";
/// The payload that wakes every destination.
const EVERY_DESTINATION: &str = "*";

/// Which destinations a committed batch gives work to.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken<'a> {
    /// An erasure also queues every destination that once held the subject.
    Every,
    These(Vec<&'a str>),
}

impl<'a> Woken<'a> {
    pub fn by(items: &'a [IngestItem]) -> Self {
        if items
            .iter()
            .any(|i| i.event.event_type == EventType::ProfileDeleted)
        {
            return Woken::Every;
        }
        let mut names: Vec<&str> = items
            .iter()
            .flat_map(|i| i.destinations.iter().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        Woken::These(names)
    }

    fn payloads(&self) -> Vec<&'a str> {
        match self {
            Woken::Every => vec![EVERY_DESTINATION],
            Woken::These(names) => names.clone(),
        }
    }
}

/// Queues the notifications in `tx` (PostgreSQL); they go out at commit.
pub(super) async fn notify<E: super::exec::Exec>(
    exec: &mut E,
    woken: &Woken<'_>,
) -> Result<(), StoreError> {
    let payloads = woken.payloads();
    if payloads.is_empty() {
        return Ok(());
    }
    let payloads = serde_json::to_string(&payloads)?;
    // pg_notify returns void, which the Any driver cannot decode: count it.
    exec.execute(
        "SELECT COUNT(*) FROM (SELECT pg_notify('hub_jobs', value) \
         FROM json_array_elements_text(CAST($1 AS json))) AS sent",
        &[super::exec::Param::from(&payloads)],
    )
    .await?;
    Ok(())
}

/// Listens on a PostgreSQL database until `stop` turns true, calling
/// `wake(Some(name))` for each notified destination and `wake(None)` for
/// all of them (for an erasure, and after every (re)connect: what was sent
/// while the connection was down is lost, and the poll would find it only
/// later).
pub async fn listen(
    url: &str,
    wake: impl Fn(Option<&str>),
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        match connect(url).await {
            Ok(mut listener) => {
                wake(None);
                loop {
                    tokio::select! {
                        n = listener.recv() => match n {
                            Ok(n) if n.payload() == EVERY_DESTINATION => wake(None),
                            Ok(n) => wake(Some(n.payload())),
                            Err(e) => {
                                let e = StoreError::Database(e);
                                tracing::warn!(error = %e.log_text(), "job notifications lost; listening again");
                                break;
                            }
                        },
                        _ = stop.changed() => return,
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e.log_text(), "cannot listen for job notifications; workers poll meanwhile")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn connect(url: &str) -> Result<sqlx::postgres::PgListener, StoreError> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
