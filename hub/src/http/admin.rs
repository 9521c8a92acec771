//! `/admin/...`: dead letters, deliveries, destinations and backfills, behind
//! the admin bearer token (only its SHA-256 is configured).

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::problem::Problem;
use crate::AppState;
use crate::store::now_ms;

pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/admin/dead-letters", get(list_dead_letters))
        .route("/admin/dead-letters/replay", post(replay_dead_letters))
        .route("/admin/deliveries", get(list_deliveries))
        .route("/admin/destinations", get(list_destinations))
        .route("/admin/destinations/{name}/backfill", post(backfill))
        .route("/admin/destinations/{name}/pause", post(pause_destination))
        .route(
            "/admin/destinations/{name}/resume",
            post(resume_destination),
        )
        .route("/admin/subjects/{subject}/consent", get(subject_consent))
        .route("/admin/subjects/{subject}/export", get(subject_export))
        .route("/admin/subjects/{subject}/erase", post(subject_erase))
}

/// Proof that the request carries the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Some(expected) = state.config.admin_token_sha256 else {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "Admin API disabled",
                "set admin.token_sha256 to enable it".to_string(),
            ));
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let digest = Sha256::digest(token.as_bytes());
        if token.is_empty() || !bool::from(digest.as_slice().ct_eq(&expected)) {
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "a valid admin bearer token is required".to_string(),
            ));
        }
        Ok(Admin)
    }
}

fn internal(e: crate::store::StoreError) -> Problem {
    tracing::error!(error = %e.log_text(), "admin request failed");
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Store unavailable", None)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationFilter {
    destination: Option<String>,
}

async fn list_dead_letters(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<DestinationFilter>,
) -> Result<Json<serde_json::Value>, Problem> {
    let list = state
        .store
        .dead_letters(q.destination.as_deref())
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "dead_letters": list })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    destination: Option<String>,
    id: Option<String>,
    #[serde(default)]
    all: bool,
}

async fn replay_dead_letters(
    _: Admin,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, Problem> {
    let malformed = |e: serde_json::Error| {
        Problem::new(StatusCode::BAD_REQUEST, "Malformed request", e.to_string())
    };
    let req: ReplayRequest = if body.is_empty() {
        ReplayRequest::default()
    } else {
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(malformed)?;
        if let Some(at) = crate::input::find_nul(&value, "") {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "Malformed request",
                format!("{at} must not contain a NUL character"),
            ));
        }
        serde_json::from_value(value).map_err(malformed)?
    };
    if req.destination.is_none() && req.id.is_none() && !req.all {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "Nothing selected",
            "name a destination, an id, or set all".to_string(),
        ));
    }
    let n = state
        .store
        .replay_dead_letters(req.destination.as_deref(), req.id.as_deref(), now_ms())
        .await
        .map_err(internal)?;
    state.wake.wake_all();
    Ok(Json(json!({ "replayed": n })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    subject: Option<String>,
    limit: Option<i64>,
}

async fn list_deliveries(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    // A hub id or SOURCE:externalId, as `hub deliveries --subject` takes.
    let subject = match q.subject.as_deref() {
        None => None,
        Some(key) => Some(subject_id(&state, key).await?),
    };
    let list = state
        .store
        .attempts(subject.as_deref(), limit)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "deliveries": list })))
}

async fn list_destinations(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, Problem> {
    let set = state.destinations.load();
    let list = crate::destinations::reports(state.store.as_ref(), set.iter().map(|d| d.as_ref()))
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "destinations": list })))
}

fn known_destination(state: &AppState, name: &str) -> Result<(), Problem> {
    if state.destinations.load().get(name).is_none() {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "Unknown destination",
            format!("no destination named {name:?}"),
        ));
    }
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PauseRequest {
    reason: Option<String>,
}

async fn pause_destination(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, Problem> {
    known_destination(&state, &name)?;
    let req: PauseRequest = if body.is_empty() {
        PauseRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Problem::new(StatusCode::BAD_REQUEST, "Malformed request", e.to_string())
        })?
    };
    let reason = req.reason.unwrap_or_else(|| "paused by an admin".into());
    state
        .store
        .pause_destination(&name, crate::store::PausedBy::Admin, &reason, None)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "destination": name, "state": "paused" })))
}

async fn resume_destination(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    known_destination(&state, &name)?;
    let was_paused = state
        .store
        .resume_destination(&name)
        .await
        .map_err(internal)?;
    state.wake.wake(&name);
    Ok(Json(
        json!({ "destination": name, "state": "active", "was_paused": was_paused }),
    ))
}

/// Starts (or resumes) the destination's backfill in the background and
/// answers at once; `hub destinations` shows its progress.
async fn backfill(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    use crate::backfill::{Backfill, BackfillError, BackfillOptions};
    known_destination(&state, &name)?;
    let run = match Backfill::claim(state.store.clone(), &name, BackfillOptions::default()).await {
        Ok(run) => run,
        Err(BackfillError::Store(e)) => return Err(internal(e)),
        Err(BackfillError::Held { .. } | BackfillError::LeaseLost) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "Backfill already running",
                "a backfill of this destination is running; `hub destinations` shows it"
                    .to_string(),
            ));
        }
    };
    let status = run.status().clone();
    let wake = state.wake.clone();
    let destination = name.clone();
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
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "destination": name, "backfill": status })),
    ))
}

fn unknown_subject() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "Unknown subject",
        "no subject with that hub id or SOURCE:externalId".to_string(),
    )
}

/// The hub id a subject key (hub id or `SOURCE:externalId`) names, or 404.
async fn subject_id(state: &AppState, key: &str) -> Result<String, Problem> {
    state
        .store
        .find_subject(&crate::store::SubjectKey::parse(key))
        .await
        .map_err(internal)?
        .ok_or_else(unknown_subject)
}

async fn report(state: &AppState, key: &str) -> Result<crate::store::SubjectReport, Problem> {
    let id = subject_id(state, key).await?;
    state
        .store
        .subject_report(&id)
        .await
        .map_err(internal)?
        .ok_or_else(unknown_subject)
}

async fn subject_consent(
    _: Admin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let r = report(&state, &subject).await?;
    Ok(Json(
        json!({ "subject": r.id, "consent": r.consent, "history": r.consent_history }),
    ))
}

async fn subject_export(
    _: Admin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<Json<crate::store::SubjectReport>, Problem> {
    Ok(Json(report(&state, &subject).await?))
}

async fn subject_erase(
    _: Admin,
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    let r = report(&state, &subject).await?;
    let names = state.destinations.load().enabled_names();
    let started = state
        .store
        .request_erasure(&r.id, &names, now_ms())
        .await
        .map_err(internal)?;
    if !started {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "Erasure already requested",
            format!("subject {} is already being erased", r.id),
        ));
    }
    state.wake.wake_all();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "subject": r.id, "erasure": "requested" })),
    ))
}
