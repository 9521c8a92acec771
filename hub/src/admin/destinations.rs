//! Destinations: state (active, paused, throttled), queue, lag, outcomes of
//! the last hour and the error rate; pause, resume and backfill.

use serde::Serialize;
use utoipa::ToSchema;

use super::{AdminError, AdminResult};
use crate::AppState;
use crate::backfill::{Backfill, BackfillError, BackfillOptions};
use crate::store::{BackfillStatus, DestinationReport, DestinationStatus, PausedBy};

/// A loaded destination with its state and numbers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DestinationView {
    #[serde(flatten)]
    pub report: DestinationReport,
    pub connector: String,
    pub enabled: bool,
    /// Failed / (delivered + failed) in the last hour; null without calls.
    pub error_rate_last_hour: Option<f64>,
    /// The latest backfill: with `pending`, how far it has come.
    pub backfill: Option<BackfillStatus>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DestinationList {
    pub destinations: Vec<DestinationView>,
}

fn error_rate(r: &DestinationReport) -> Option<f64> {
    let calls = r.delivered_last_hour + r.failed_last_hour;
    (calls > 0).then(|| r.failed_last_hour as f64 / calls as f64)
}

async fn views(state: &AppState, only: Option<&str>) -> AdminResult<Vec<DestinationView>> {
    let set = state.destinations.load();
    let loaded: Vec<_> = set
        .iter()
        .filter(|d| only.is_none_or(|n| d.mapping.name == n))
        .collect();
    let names: Vec<String> = loaded.iter().map(|d| d.mapping.name.clone()).collect();
    let reports = state.store.destination_reports(&names).await?;
    let backfills = state.store.backfill_statuses(&names).await?;
    Ok(loaded
        .iter()
        .zip(reports)
        .map(|(d, report)| DestinationView {
            connector: d.mapping.connector.clone(),
            enabled: d.mapping.enabled,
            error_rate_last_hour: error_rate(&report),
            backfill: backfills
                .iter()
                .find(|b| b.destination == d.mapping.name)
                .cloned(),
            report,
        })
        .collect())
}

pub async fn list(state: &AppState) -> AdminResult<DestinationList> {
    Ok(DestinationList {
        destinations: views(state, None).await?,
    })
}

pub async fn get(state: &AppState, name: &str) -> AdminResult<DestinationView> {
    known(state, name)?;
    views(state, Some(name))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AdminError::UnknownDestination(name.into()))
}

fn known(state: &AppState, name: &str) -> AdminResult<()> {
    match state.destinations.load().get(name) {
        Some(_) => Ok(()),
        None => Err(AdminError::UnknownDestination(name.into())),
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StateChange {
    pub destination: String,
    pub state: DestinationStatus,
    /// For a resume: whether it had been paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub was_paused: Option<bool>,
}

/// Stops deliveries to `name` (its jobs are kept) until [`resume`].
pub async fn pause(state: &AppState, name: &str, reason: Option<&str>) -> AdminResult<StateChange> {
    known(state, name)?;
    let reason = reason.unwrap_or("paused by an admin");
    state
        .store
        .pause_destination(name, PausedBy::Admin, reason, None)
        .await?;
    Ok(StateChange {
        destination: name.into(),
        state: DestinationStatus::Paused,
        was_paused: None,
    })
}

/// Delivers to `name` again: what it missed goes out, latest state only.
pub async fn resume(state: &AppState, name: &str) -> AdminResult<StateChange> {
    known(state, name)?;
    let was_paused = state.store.resume_destination(name).await?;
    state.wake.wake(name);
    Ok(StateChange {
        destination: name.into(),
        state: DestinationStatus::Active,
        was_paused: Some(was_paused),
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackfillStarted {
    pub destination: String,
    pub backfill: BackfillStatus,
}

/// Starts (or resumes) the backfill of `name` in the background and
/// answers at once; [`get`] shows its progress.
pub async fn backfill(state: &AppState, name: &str) -> AdminResult<BackfillStarted> {
    known(state, name)?;
    let run = match Backfill::claim(state.store.clone(), name, BackfillOptions::default()).await {
        Ok(run) => run,
        Err(BackfillError::Store(e)) => return Err(e.into()),
        Err(BackfillError::Held { .. } | BackfillError::LeaseLost) => {
            return Err(AdminError::Conflict {
                title: "Backfill already running",
                detail: "a backfill of this destination is running; GET the destination to see it"
                    .into(),
            });
        }
    };
    let status = run.status().clone();
    let wake = state.wake.clone();
    let destination = name.to_string();
    // No stop signal: a run cut short by shutdown keeps its cursor, and its
    // lease runs out so that the next request resumes it.
    let (_never, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut batches = 0u64;
        let result = run
            .run(
                |_| {
                    // Let the driver start on what is queued so far.
                    batches += 1;
                    if batches % 10 == 1 {
                        wake.wake(&destination);
                    }
                },
                stop,
            )
            .await;
        wake.wake(&destination);
        if let Err(e) = result {
            tracing::error!(destination = %destination, error = %e, "backfill stopped");
        }
    });
    Ok(BackfillStarted {
        destination: name.into(),
        backfill: status,
    })
}
