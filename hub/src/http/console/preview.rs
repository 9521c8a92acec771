//! `GET /console/preview?destination=&subject=`: what a destination would
//! receive now for a stored subject (the driver's own planning, nothing
//! sent): the exact payload, and which fields consent removed and why.

use axum::extract::{Query, State};
use axum::routing::get;
use maud::{Markup, html};

use super::ConsoleError;
use super::layout::{json, page, wire};
use super::session::SignedIn;
use crate::AppState;
use crate::admin::mappings::{self as admin, Preview, PreviewOutcome, Withheld};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/console/preview", get(show))
}

#[derive(Debug, Default, serde::Deserialize)]
struct PreviewQuery {
    #[serde(default)]
    destination: String,
    /// A hub id, an e-mail address, an externalId or `SOURCE:externalId`.
    #[serde(default)]
    subject: String,
}

async fn show(
    State(state): State<AppState>,
    who: SignedIn,
    query: Result<Query<PreviewQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Markup, ConsoleError> {
    let Query(query) = query?;
    let destination = query.destination.trim();
    let subject = query.subject.trim();
    let mappings = admin::list(&state).mappings;
    let preview = if destination.is_empty() || subject.is_empty() {
        None
    } else {
        let key = subject_key(&state, subject).await?;
        Some(admin::preview(&state, destination, &key).await?)
    };
    Ok(page(
        &who,
        "/console/preview",
        "Mapping preview",
        html! {
            form.stack method="get" action="/console/preview" {
                label for="destination" { "Destination" }
                select #destination name="destination" {
                    @for m in &mappings {
                        option value=(m.destination) selected[m.destination == destination] {
                            (m.destination) " (" (m.file) ")"
                        }
                    }
                }
                label for="subject" { "Subject (e-mail, externalId, SOURCE:externalId or hub id)" }
                input #subject type="text" name="subject" value=(subject) required;
                p { button #preview type="submit" { "Preview" } }
            }
            @if let Some(p) = &preview { (result(p)) }
        },
    ))
}

/// The key to preview: the one subject a search by e-mail, externalId or
/// hub id finds, else the text as given (`SOURCE:externalId`).
async fn subject_key(state: &AppState, text: &str) -> Result<String, ConsoleError> {
    let hits = crate::admin::subjects::search(state, text, 2)
        .await?
        .subjects;
    match hits.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Ok(text.to_string()),
        _ => Err(ConsoleError::BadRequest(
            "several subjects match that: choose one by its hub id".into(),
        )),
    }
}

fn outcome_text(o: PreviewOutcome) -> &'static str {
    match o {
        PreviewOutcome::Send => "would be sent",
        PreviewOutcome::Withdraw => {
            "consent was withdrawn while the destination holds data: its withdrawal action would be sent"
        }
        PreviewOutcome::Suppressed => {
            "nothing would be sent: a purpose the destination needs is not granted"
        }
        PreviewOutcome::Skip => "nothing to do",
    }
}

fn reason_text(w: Withheld) -> &'static str {
    match w {
        Withheld::Denied => "the subject denied this purpose",
        Withheld::NotRecorded => "no consent is recorded for this purpose (consent fails closed)",
        Withheld::NotInBrand => "the destination belongs to a brand the subject is not in",
    }
}

fn result(p: &Preview) -> Markup {
    html! {
        section #result data-outcome=(wire(&p.outcome)) {
            h2 { "Outcome: " span #outcome { (wire(&p.outcome)) } }
            p { (outcome_text(p.outcome)) @if let Some(a) = &p.action { " · action " strong #action { (wire(a)) } } }
            @if let Some(why) = &p.skipped { p.muted { (why) } }
            @if !p.missing_consent.is_empty() {
                h2 { "Consent the destination needs and lacks" }
                table #missing-consent {
                    thead { tr { th { "Purpose" } th { "Why" } } }
                    tbody { @for m in &p.missing_consent { tr { td { (m.purpose) } td { (reason_text(m.reason)) } } } }
                }
            }
            @if let Some(payload) = &p.payload {
                h2 { "Payload" }
                pre #payload { (json(payload)) }
            }
            h2 { "Fields consent removed" }
            @if p.removed_fields.is_empty() {
                p.muted #no-removed-fields { "None." }
            } @else {
                table #removed-fields {
                    thead { tr { th { "Field" } th { "Purpose" } th { "Why" } } }
                    tbody {
                        @for f in &p.removed_fields {
                            tr { td { (f.field) } td { (f.purpose) } td { (reason_text(f.reason)) } }
                        }
                    }
                }
            }
        }
    }
}
