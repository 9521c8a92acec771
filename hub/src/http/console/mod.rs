//! `/console/...`: the web console, server-rendered HTML (maud, compiled
//! into the binary; autoescaped) over the same functions as the admin API
//! ([`crate::admin`]). One file per page, named as its URL:
//! `/console/login` -> `login.rs`, `/console/logout` -> `logout.rs`,
//! `/console/destinations[/{name}/pause|resume]` -> `destinations.rs`,
//! `/console/subjects[/{subject}]` -> `subjects.rs`,
//! `/console/dead-letters[/{id}[/replay]]` -> `dead_letters.rs`,
//! `/console/preview` -> `preview.rs`. Sessions and CSRF: `session.rs`;
//! page chrome, the stylesheet and the error page: `layout.rs`.
//!
//! A page takes a [`session::SignedIn`] (else: a redirect to sign-in);
//! every POST checks the write scope first, then the form's CSRF token.

mod dead_letters;
mod destinations;
mod layout;
mod login;
mod logout;
mod preview;
pub mod session;
mod subjects;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::AppState;
use crate::admin::AdminError;

pub use session::Sessions;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/destinations") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/destinations") }),
        )
        .route("/console/console.css", get(layout::stylesheet))
        .merge(login::router())
        .merge(logout::router())
        .merge(destinations::router())
        .merge(subjects::router())
        .merge(dead_letters::router())
        .merge(preview::router())
        .route("/console/{*rest}", axum::routing::any(not_found))
        .layer(axum::middleware::from_fn(refuse_cross_site_posts))
        .layer(axum::middleware::from_fn(protective_headers))
}

/// Defence in depth beside SameSite=Strict and the CSRF field: a browser
/// that says a POST comes from another site (`Sec-Fetch-Site: cross-site`)
/// is refused before any handler runs. This covers the sign-in form too,
/// which has no session (and so no CSRF token) yet.
async fn refuse_cross_site_posts(req: Request, next: Next) -> Response {
    let cross_site = req.method() == axum::http::Method::POST
        && req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if cross_site {
        return ConsoleError::BadCsrf.into_response();
    }
    next.run(req).await
}

async fn not_found() -> ConsoleError {
    ConsoleError::NotFound
}

/// Every console answer: never cached, never framed, forms post only here,
/// no script but our own (there is none) and no referrer leaves the page.
async fn protective_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    res
}

/// Why a console request did not get its page. Rendered as a friendly
/// HTML page (or, signed out, a redirect to sign-in); texts never quote a
/// profile value or a token.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("sign in to continue")]
    SignedOut,
    #[error(
        "this form did not come from your console session (or the session changed): reload the page and try again"
    )]
    BadCsrf,
    #[error("your admin token has the read scope: this needs a write-scoped token")]
    ReadOnly,
    #[error("{0}")]
    BadRequest(String),
    #[error("there is no such page")]
    NotFound,
    #[error(transparent)]
    Admin(#[from] AdminError),
}

impl ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            ConsoleError::SignedOut => StatusCode::SEE_OTHER,
            ConsoleError::BadCsrf | ConsoleError::ReadOnly => StatusCode::FORBIDDEN,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound => StatusCode::NOT_FOUND,
            ConsoleError::Admin(e) => match e {
                AdminError::UnknownSubject
                | AdminError::UnknownDestination(_)
                | AdminError::UnknownDeadLetter
                | AdminError::UnknownReceipt => StatusCode::NOT_FOUND,
                AdminError::Invalid(_) => StatusCode::BAD_REQUEST,
                AdminError::Conflict { .. } => StatusCode::CONFLICT,
                AdminError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if let ConsoleError::SignedOut = self {
            return Redirect::to("/console/login").into_response();
        }
        let status = self.status();
        let text = match &self {
            ConsoleError::Admin(AdminError::Store(store)) => {
                tracing::error!(error = %store.log_text(), "console request failed");
                "the store is unavailable just now: try again in a moment".to_string()
            }
            other => other.to_string(),
        };
        (status, layout::error_page(status, &text)).into_response()
    }
}

/// A query string or form that does not parse is a 400 page, not axum's
/// plain text.
impl From<axum::extract::rejection::QueryRejection> for ConsoleError {
    fn from(_: axum::extract::rejection::QueryRejection) -> Self {
        ConsoleError::BadRequest("the query string of this page could not be read".into())
    }
}

impl From<axum::extract::rejection::FormRejection> for ConsoleError {
    fn from(_: axum::extract::rejection::FormRejection) -> Self {
        ConsoleError::BadRequest("the form could not be read".into())
    }
}

impl From<axum::extract::rejection::PathRejection> for ConsoleError {
    fn from(_: axum::extract::rejection::PathRejection) -> Self {
        ConsoleError::BadRequest("this page's address could not be read".into())
    }
}

/// The hidden field every POST form carries.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// One path segment, percent-encoded (names and ids in links and form
/// actions).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query value, form-encoded.
fn query_value(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_unreserved_characters_only() {
        assert_eq!(segment("crm_eu-1"), "crm_eu-1");
        assert_eq!(segment("ciam:a b/c"), "ciam%3Aa%20b%2Fc");
        assert_eq!(query_value("a@b.c d"), "a%40b.c+d");
    }

    #[test]
    fn errors_map_to_their_status() {
        assert_eq!(ConsoleError::BadCsrf.status(), StatusCode::FORBIDDEN);
        assert_eq!(ConsoleError::ReadOnly.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            ConsoleError::Admin(AdminError::UnknownSubject).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ConsoleError::Admin(AdminError::Invalid("x".into())).status(),
            StatusCode::BAD_REQUEST
        );
    }
}
