//! `GET /console/subjects?q=`: search by e-mail, externalId or hub id;
//! `GET /console/subjects/{subject}`: the profile, current consent and its
//! history (the ledger), and the delivery timeline per destination.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use maud::{Markup, html};

use super::layout::{duration, json, page, when, when_opt, wire};
use super::session::SignedIn;
use super::{ConsoleError, query_value, segment};
use crate::AppState;
use crate::admin::subjects as admin;
use crate::store::{AttemptRecord, SubjectHit};

const CURRENT: &str = "/console/subjects";

/// Subjects one search lists, at most.
const HITS: i64 = 50;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/console/subjects", get(search))
        .route("/console/subjects/{subject}", get(show))
}

#[derive(Debug, Default, serde::Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search(
    State(state): State<AppState>,
    who: SignedIn,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Markup, ConsoleError> {
    let Query(query) = query?;
    let q = query.q.trim();
    let hits = if q.is_empty() {
        None
    } else {
        Some(admin::search(&state, q, HITS).await?.subjects)
    };
    Ok(page(
        &who,
        CURRENT,
        "Subjects",
        html! {
            form method="get" action="/console/subjects" {
                input #q type="search" name="q" value=(q) placeholder="e-mail, externalId or hub id" autofocus;
                " "
                button #search type="submit" { "Search" }
            }
            @if let Some(hits) = hits {
                @if hits.is_empty() {
                    p.muted #no-hits { "No subject has that e-mail, externalId or hub id." }
                } @else {
                    (hit_table(&hits))
                }
            }
        },
    ))
}

fn hit_table(hits: &[SubjectHit]) -> Markup {
    html! {
        table #hits {
            thead { tr { th { "Subject" } th { "Source" } th { "externalId" } th { "E-mail" } th { "Updated" } } }
            tbody {
                @for h in hits {
                    tr {
                        td { a.subject href={ "/console/subjects/" (segment(&h.id)) } { (h.id) } }
                        td { (h.source) }
                        td { (h.external_id) }
                        td { (h.primary_email.as_deref().unwrap_or("–")) }
                        td { (when(h.updated_at)) @if h.deleted_at.is_some() { " · deleted" } }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
struct ShowQuery {
    /// `replayed`: the page was reached by replaying a dead letter.
    #[serde(default)]
    notice: String,
}

async fn show(
    State(state): State<AppState>,
    who: SignedIn,
    key: Result<Path<String>, axum::extract::rejection::PathRejection>,
    query: Result<Query<ShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Markup, ConsoleError> {
    let Path(key) = key?;
    let Query(query) = query?;
    let view = admin::view(&state, &key).await?;
    let timeline = admin::timeline(&state, &view.id).await?;
    let id = segment(&view.id);
    Ok(page(
        &who,
        CURRENT,
        "Subject",
        html! {
            @if query.notice == "replayed" {
                p.notice #notice { "Dead letter replayed: its delivery is queued and appears below once it has run (reload to see it)." }
            }
            dl.facts #facts {
                dt { "Hub id" } dd #subject-id { (view.id) }
                dt { "Source" } dd { (view.source) }
                dt { "externalId" } dd { (view.external_id) }
                dt { "Version" } dd { (view.version) }
                @if view.deleted_at.is_some() { dt { "Deleted" } dd { (when_opt(view.deleted_at)) } }
                @if view.erase_requested_at.is_some() { dt { "Erasure requested" } dd { (when_opt(view.erase_requested_at)) } }
                @if view.erased_at.is_some() { dt { "Erased" } dd { (when_opt(view.erased_at)) } }
            }

            h2 { "Consent" }
            @if view.consent.is_empty() {
                p.muted { "No consent recorded: every purpose counts as denied." }
            } @else {
                table #consent {
                    thead { tr { th { "Purpose" } th { "Brand" } th { "State" } th { "Source" } th { "Since" } } }
                    tbody {
                        @for c in &view.consent {
                            tr {
                                td { (c.purpose) } td { (brand(&c.brand)) }
                                td class={ "consent-" (c.state) } { (c.state) }
                                td { (c.source) } td { (when(c.occurred_at)) }
                            }
                        }
                    }
                }
            }

            h2 { "Consent history" }
            @if view.consent_history.is_empty() {
                p.muted { "No consent change recorded." }
            } @else {
                table #consent-history {
                    thead { tr { th { "When" } th { "Purpose" } th { "Brand" } th { "Change" } th { "Source" } th { "Recorded" } } }
                    tbody {
                        @for e in &view.consent_history {
                            tr {
                                td { (when(e.occurred_at)) } td { (e.purpose) } td { (brand(&e.brand)) }
                                td { (e.previous_state.as_deref().unwrap_or("none")) " → " span class={ "consent-" (e.new_state) } { (e.new_state) } }
                                td { (e.source) } td { (when(e.recorded_at)) }
                            }
                        }
                    }
                }
            }

            h2 { "Deliveries" }
            @for d in &timeline.destinations {
                section.timeline id={ "timeline-" (d.destination) } {
                    h3 {
                        (d.destination) " · "
                        span.holds { @match &d.holds { Some(h) => { "holds: " (wire(h)) " since " (when_opt(d.holds_since)) }, None => "holds nothing" } }
                        " · "
                        a href={ "/console/preview?destination=" (query_value(&d.destination)) "&subject=" (id) } { "preview" }
                    }
                    @if d.attempts.is_empty() {
                        p.muted { "No attempt yet." }
                    } @else {
                        (attempt_table(&d.attempts))
                    }
                }
            }

            h2 { "Profile" }
            pre #profile { (json(&view.profile)) }
        },
    ))
}

fn brand(b: &str) -> &str {
    if b.is_empty() { "all" } else { b }
}

/// Attempts, newest first, as the timeline and a dead letter show them.
pub(super) fn attempt_table(attempts: &[AttemptRecord]) -> Markup {
    html! {
        table.attempts {
            thead { tr { th { "When" } th { "Attempt" } th { "Action" } th { "Outcome" } th { "HTTP" } th { "Took" } th { "Detail" } } }
            tbody {
                @for a in attempts {
                    tr {
                        td { (when(a.created_at)) }
                        td.num { (a.attempt) }
                        td { (a.action) }
                        td class={ "outcome outcome-" (a.outcome) } { (a.outcome) }
                        td.num { (a.status_code.map(|c| c.to_string()).unwrap_or_else(|| "–".into())) }
                        td.num { (duration(a.latency_ms)) }
                        td { (a.detail.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}
