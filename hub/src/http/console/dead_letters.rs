//! `GET /console/dead-letters`: deliveries that gave up;
//! `GET /console/dead-letters/{id}`: one, with the vendor's answer and the
//! attempts that led there; `POST .../{id}/replay` (write scope) queues it
//! again and shows the subject's timeline, where the delivery appears.

use axum::extract::{Form, Path, Query, State};
use axum::response::Redirect;
use axum::routing::{get, post};
use maud::{Markup, html};

use super::layout::{page, post_button, when};
use super::session::SignedIn;
use super::subjects::attempt_table;
use super::{ConsoleError, CsrfForm, segment};
use crate::AppState;
use crate::admin::dead_letters as admin;

const CURRENT: &str = "/console/dead-letters";

type PathResult = Result<Path<String>, axum::extract::rejection::PathRejection>;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/console/dead-letters", get(list))
        .route("/console/dead-letters/{id}", get(show))
        .route("/console/dead-letters/{id}/replay", post(replay))
}

#[derive(Debug, Default, serde::Deserialize)]
struct ListQuery {
    #[serde(default)]
    destination: String,
}

async fn list(
    State(state): State<AppState>,
    who: SignedIn,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Markup, ConsoleError> {
    let Query(query) = query?;
    let only = Some(query.destination.trim()).filter(|d| !d.is_empty());
    let list = admin::list(&state, only).await?;
    Ok(page(
        &who,
        CURRENT,
        "Dead letters",
        html! {
            @if let Some(d) = only { p { "Destination " strong { (d) } " only · " a href="/console/dead-letters" { "show all" } } }
            @if list.dead_letters.is_empty() {
                p.muted #no-dead-letters { "No dead letter waits: every delivery got through or is still being retried." }
            } @else {
                table #dead-letters {
                    thead { tr { th { "Dead letter" } th { "Destination" } th { "Subject" } th { "Attempts" } th { "Vendor said" } th { "Since" } } }
                    tbody {
                        @for l in &list.dead_letters {
                            tr {
                                td { a.dead-letter href={ "/console/dead-letters/" (segment(&l.id)) } { (l.id) } }
                                td { (l.destination) }
                                td { a href={ "/console/subjects/" (segment(&l.subject_id)) } { (l.subject_id) } }
                                td.num { (l.attempts) }
                                td { @if let Some(c) = l.status_code { "HTTP " (c) ": " } (l.detail) }
                                td { (when(l.created_at)) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

async fn show(
    State(state): State<AppState>,
    who: SignedIn,
    id: PathResult,
) -> Result<Markup, ConsoleError> {
    let Path(id) = id?;
    let view = admin::get(&state, &id).await?;
    let l = &view.dead_letter;
    Ok(page(
        &who,
        CURRENT,
        "Dead letter",
        html! {
            dl.facts #facts {
                dt { "Id" } dd { (l.id) }
                dt { "Destination" } dd { (l.destination) }
                dt { "Subject" } dd { a href={ "/console/subjects/" (segment(&l.subject_id)) } { (l.subject_id) } }
                dt { "Attempts" } dd { (l.attempts) }
                dt { "Dead since" } dd { (when(l.created_at)) }
            }
            h2 { "The vendor's answer" }
            p #vendor-status {
                @match view.vendor_answer.status_code { Some(c) => { "HTTP " (c) }, None => "no HTTP answer" }
            }
            pre #vendor-detail { (view.vendor_answer.detail) }
            @if who.may_write() {
                p { (post_button(&who, &format!("/console/dead-letters/{}/replay", segment(&l.id)), "Replay", "replay")) }
            }
            h2 { "Attempts" }
            (attempt_table(&view.recent_attempts))
        },
    ))
}

async fn replay(
    State(state): State<AppState>,
    who: SignedIn,
    id: PathResult,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Redirect, ConsoleError> {
    who.require_write()?;
    let Form(form) = form?;
    who.check_csrf(&form.csrf)?;
    let Path(id) = id?;
    let letter = admin::get(&state, &id).await?.dead_letter;
    admin::replay_one(&state, &id).await?;
    tracing::info!(admin = %who.admin().name, destination = %letter.destination, "dead letter replayed from the console");
    Ok(Redirect::to(&format!(
        "/console/subjects/{}?notice=replayed",
        segment(&letter.subject_id)
    )))
}
