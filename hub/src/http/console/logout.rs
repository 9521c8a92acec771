//! `POST /console/logout`: ends the session (CSRF-checked, like every
//! POST) and clears the cookie.

use axum::extract::{Form, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;

use super::session::{self, SignedIn};
use super::{ConsoleError, CsrfForm};
use crate::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/console/logout", post(sign_out))
}

async fn sign_out(
    State(state): State<AppState>,
    who: SignedIn,
    parts: Parts,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ConsoleError> {
    let Form(form) = form?;
    who.check_csrf(&form.csrf)?;
    state.console.close(who.session_id());
    tracing::info!(admin = %who.admin().name, "console sign-out");
    let secure = session::came_over_https(&parts.headers, parts.uri.scheme_str());
    Ok((
        [(header::SET_COOKIE, session::clear_cookie(secure))],
        Redirect::to("/console/login"),
    )
        .into_response())
}
