//! The page chrome every console page shares (header, navigation, sign
//! out), the error page, the embedded stylesheet, and how times, durations
//! and JSON are shown.

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use maud::{DOCTYPE, Markup, html};

use super::session::SignedIn;

const STYLESHEET: &str = include_str!("console.css");

pub async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
}

/// The navigation: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/console/destinations", "Destinations"),
    ("/console/subjects", "Subjects"),
    ("/console/dead-letters", "Dead letters"),
    ("/console/preview", "Mapping preview"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · hub console" }
            link rel="stylesheet" href="/console/console.css";
        }
    }
}

/// A page for a signed-in admin. `current` is the navigation entry to mark.
pub fn page(who: &SignedIn, current: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    span.brand { "hub console" }
                    nav {
                        @for (path, label) in NAV {
                            a href=(path) class=[(*path == current).then_some("current")] { (label) }
                        }
                    }
                    span.who {
                        span #who { (who.admin().name) }
                        " "
                        span.scope #scope { (who.admin().scope.as_str()) }
                        form.inline method="post" action="/console/logout" {
                            (csrf_field(who))
                            button.link #sign-out type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page with no session (sign-in, errors).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { span.brand { "hub console" } }
                main.narrow {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub fn error_page(status: StatusCode, text: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    bare_page(
        title,
        html! {
            p.error #error { (text) }
            p { a href="/console/destinations" { "Back to the console" } }
        },
    )
}

/// The hidden CSRF field of a POST form.
pub fn csrf_field(who: &SignedIn) -> Markup {
    html! { input type="hidden" name="csrf" value=(who.csrf()); }
}

/// A button that POSTs to `action` (a write: shown to write scopes only,
/// which the caller checks).
pub fn post_button(who: &SignedIn, action: &str, label: &str, id: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(who))
            button #(id) type="submit" { (label) }
        }
    }
}

/// Unix ms as UTC.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "?".into())
}

pub fn when_opt(ms: Option<i64>) -> String {
    ms.map(when).unwrap_or_else(|| "–".into())
}

/// A duration in ms, in the largest unit that fits.
pub fn duration(ms: i64) -> String {
    let s = ms as f64 / 1000.0;
    match ms {
        ..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{s:.1} s"),
        60_000..3_600_000 => format!("{:.0} min", s / 60.0),
        _ => format!("{:.1} h", s / 3600.0),
    }
}

/// A JSON value as indented text (escaped by the template like any text).
pub fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// An enum's wire name (its serde name), as the admin API shows it.
pub fn wire(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_read_as_a_person_would() {
        assert_eq!(duration(250), "250 ms");
        assert_eq!(duration(1_500), "1.5 s");
        assert_eq!(duration(120_000), "2 min");
        assert_eq!(duration(5_400_000), "1.5 h");
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(when_opt(None), "–");
    }

    #[test]
    fn the_error_page_escapes_its_text() {
        let html = error_page(StatusCode::BAD_REQUEST, "<script>x</script>").into_string();
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }
}
