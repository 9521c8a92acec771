//! `POST /webhooks/{source}`: a signed canonical event in, 202 once the change
//! and its delivery jobs are committed.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use connectors::standard_webhooks::{
    self, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, VerifyError,
};
use serde_json::json;

use super::problem::Problem;
use crate::AppState;
use crate::event::{CanonicalEvent, EventError, EventRules};
use crate::ingest::IngestError;
use crate::metrics::{IngestOutcome as Counted, IngestSource};
use crate::store::{IngestItem, IngestOutcome, now_ms};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/webhooks/{source}", axum::routing::post(receive))
}

#[tracing::instrument(skip_all, fields(source = %source))]
async fn receive(
    State(state): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    let started = std::time::Instant::now();
    let result = accept(&state, &source, &headers, body).await;
    let counted = match &result {
        Ok((_, true)) => Counted::Duplicate,
        Ok((_, false)) => Counted::Accepted,
        Err(p) => {
            tracing::debug!(status = p.status, title = p.title, "webhook refused");
            Counted::Rejected
        }
    };
    state
        .metrics
        .ingest(IngestSource::Webhook, counted, started.elapsed());
    let (outcome, duplicate) = result?;
    let mut body = json!({ "status": "accepted", "duplicate": duplicate });
    if let IngestOutcome::Applied { subject_id, .. } | IngestOutcome::Stale { subject_id } =
        &outcome
    {
        body["subject"] = json!(subject_id);
    }
    if let IngestOutcome::Stale { .. } = &outcome {
        body["stale"] = json!(true);
    }
    Ok((StatusCode::ACCEPTED, Json(body)))
}

async fn accept(
    state: &AppState,
    source: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(IngestOutcome, bool), Problem> {
    let Some(src) = state.config.sources.get(source) else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "Unknown source",
            format!("no webhook source named {source:?} is configured"),
        ));
    };
    let limit = state.config.webhooks.max_body.0;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Body too large",
            format!("the limit is {limit} bytes"),
        )
    })?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    standard_webhooks::verify(
        &src.secrets,
        header(HEADER_ID),
        header(HEADER_TIMESTAMP),
        header(HEADER_SIGNATURE),
        &bytes,
        chrono::Utc::now().timestamp(),
        state.config.webhooks.tolerance.as_secs() as i64,
    )
    .map_err(|e| match e {
        VerifyError::MissingHeader(_) | VerifyError::BadTimestamp => Problem::new(
            StatusCode::BAD_REQUEST,
            "Missing or malformed signature headers",
            e.to_string(),
        ),
        VerifyError::StaleTimestamp | VerifyError::NoMatch => Problem::new(
            StatusCode::UNAUTHORIZED,
            "Signature verification failed",
            e.to_string(),
        ),
    })?;
    let message_id = header(HEADER_ID).unwrap_or_default().to_string();
    if message_id.is_empty() || message_id.len() > 256 {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "Bad webhook-id",
            "webhook-id must hold 1 to 256 characters".to_string(),
        ));
    }
    let mut event = parse_event(&bytes)?;
    let rules = EventRules {
        purposes: state.config.purposes.keys().collect(),
        brands: state.config.brands.keys().collect(),
        schemas: &state.schemas,
        now: chrono::Utc::now(),
        max_ahead: state.config.webhooks.tolerance,
    };
    event.check(&rules).map_err(invalid)?;
    let item = IngestItem {
        source: source.to_string(),
        message_id,
        event,
        destinations: state.destinations.load().enabled_names(),
        received_at: now_ms(),
        traceparent: if state.config.telemetry.enabled() {
            crate::telemetry::current_traceparent()
        } else {
            None
        },
    };
    // Bounded: a store that cannot commit (a full disk, a database that is
    // down) gets the source a 503 to retry, not a hanging request. The
    // webhook-id makes that retry safe if the commit lands after all.
    let submitted = tokio::time::timeout(state.config.store.timeout, state.ingestor.submit(item));
    let Ok(submitted) = submitted.await else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "the change could not be stored in time; retry".to_string(),
        ));
    };
    match submitted {
        Ok(IngestOutcome::Duplicate) => Ok((IngestOutcome::Duplicate, true)),
        Ok(outcome) => Ok((outcome, false)),
        Err(IngestError::Closed) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Shutting down",
            None,
        )),
        // The database refuses this change for good: retrying cannot help.
        Err(IngestError::Store(e)) if e.is_refusal() => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Change refused",
            "the store refused this change; it was not stored, and sending it again cannot succeed"
                .to_string(),
        )),
        Err(IngestError::Store(_)) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "the change was not stored; retry".to_string(),
        )),
    }
}

/// The body as an event: 400 if it is not JSON or not shaped like one (serde
/// names the field and position, never a value); 422 if a string holds a NUL.
fn parse_event(bytes: &[u8]) -> Result<CanonicalEvent, Problem> {
    let malformed = |e: serde_json::Error| {
        Problem::new(StatusCode::BAD_REQUEST, "Malformed event", e.to_string())
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(malformed)?;
    if let Some(at) = crate::input::find_nul(&value, "") {
        return Err(invalid(EventError::Nul(at)));
    }
    serde_json::from_value(value).map_err(malformed)
}

fn invalid(e: EventError) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid event",
        e.to_string(),
    )
}
