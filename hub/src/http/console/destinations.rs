//! `GET /console/destinations`: every loaded destination with its state,
//! lag, throughput and last error; `POST .../{name}/pause` and
//! `.../{name}/resume` (write scope).

use axum::extract::{Form, Path, State};
use axum::response::Redirect;
use axum::routing::{get, post};
use maud::{Markup, html};

use super::layout::{duration, page, post_button, when};
use super::session::SignedIn;
use super::{ConsoleError, CsrfForm, segment};
use crate::AppState;
use crate::admin::destinations::{self as admin, DestinationView};
use crate::store::DestinationStatus;

type FormResult = Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>;
type PathResult = Result<Path<String>, axum::extract::rejection::PathRejection>;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/console/destinations", get(list))
        .route("/console/destinations/{name}/pause", post(pause))
        .route("/console/destinations/{name}/resume", post(resume))
}

async fn list(State(state): State<AppState>, who: SignedIn) -> Result<Markup, ConsoleError> {
    let list = admin::list(&state).await?;
    Ok(page(
        &who,
        "/console/destinations",
        "Destinations",
        html! {
            @if list.destinations.is_empty() {
                p.muted { "No destination is loaded: add a mapping file to the mappings directory." }
            } @else {
                table #destinations {
                    thead { tr {
                        th { "Destination" } th { "State" } th { "Pending" } th { "Lag" }
                        th { "Delivered / failed (1 h)" } th { "Error rate" } th { "Last error" }
                        @if who.may_write() { th { "" } }
                    } }
                    tbody {
                        @for d in &list.destinations { (row(&who, d)) }
                    }
                }
            }
        },
    ))
}

fn row(who: &SignedIn, d: &DestinationView) -> Markup {
    let r = &d.report;
    let name = segment(&r.name);
    html! {
        tr id={ "destination-" (r.name) } data-state=(r.state.as_str()) {
            td {
                strong { (r.name) }
                br;
                span.muted { (d.connector) @if !d.enabled { " · disabled" } }
            }
            td {
                span class={ "state state-" (r.state.as_str()) } { (r.state.as_str()) }
                @if let Some(reason) = &r.reason { br; span.muted { (reason) } }
            }
            td.num { (r.pending) @if r.running + r.waiting > 0 { " (+" (r.running + r.waiting) " in flight)" } }
            td.num { (r.oldest_pending_ms.map(duration).unwrap_or_else(|| "–".into())) }
            td.num { (r.delivered_last_hour) " / " (r.failed_last_hour) }
            td.num { (d.error_rate_last_hour.map(|e| format!("{:.1} %", e * 100.0)).unwrap_or_else(|| "–".into())) }
            td {
                @if let Some(e) = &r.last_error {
                    (when(e.at)) ": " (e.outcome)
                    @if let Some(code) = e.status_code { " (HTTP " (code) ")" }
                    @if let Some(detail) = &e.detail { br; span.muted { (detail) } }
                } @else { "–" }
            }
            @if who.may_write() {
                td {
                    @if r.state == DestinationStatus::Paused {
                        (post_button(who, &format!("/console/destinations/{name}/resume"), "Resume", &format!("resume-{}", r.name)))
                    } @else {
                        (post_button(who, &format!("/console/destinations/{name}/pause"), "Pause", &format!("pause-{}", r.name)))
                    }
                }
            }
        }
    }
}

async fn pause(
    State(state): State<AppState>,
    who: SignedIn,
    name: PathResult,
    form: FormResult,
) -> Result<Redirect, ConsoleError> {
    who.require_write()?;
    let Form(form) = form?;
    who.check_csrf(&form.csrf)?;
    let Path(name) = name?;
    let reason = format!("paused by {} in the console", who.admin().name);
    admin::pause(&state, &name, Some(&reason)).await?;
    tracing::info!(admin = %who.admin().name, destination = %name, "destination paused from the console");
    Ok(Redirect::to("/console/destinations"))
}

async fn resume(
    State(state): State<AppState>,
    who: SignedIn,
    name: PathResult,
    form: FormResult,
) -> Result<Redirect, ConsoleError> {
    who.require_write()?;
    let Form(form) = form?;
    who.check_csrf(&form.csrf)?;
    let Path(name) = name?;
    admin::resume(&state, &name).await?;
    tracing::info!(admin = %who.admin().name, destination = %name, "destination resumed from the console");
    Ok(Redirect::to("/console/destinations"))
}
