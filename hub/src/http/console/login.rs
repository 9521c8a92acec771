//! `GET /console/login`: the sign-in form; `POST /console/login`: checks
//! the admin token (the admin API's [`authenticate`]) and opens a session.
//! A wrong token gets the form again, 401, with the field empty: the token
//! is never echoed or logged.

use axum::extract::{Form, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};

use super::layout::bare_page;
use super::session;
use crate::AppState;
use crate::http::admin::authenticate;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/console/login", get(form).post(sign_in))
}

fn login_page(error: Option<&str>) -> Markup {
    bare_page(
        "Sign in",
        html! {
            @if let Some(e) = error { p.error #error { (e) } }
            form.stack method="post" action="/console/login" {
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="off" required autofocus;
                p { button #sign-in type="submit" { "Sign in" } }
            }
            p.muted { "A read-scoped token sees everything; a write-scoped one may also pause, resume and replay." }
        },
    )
}

async fn form() -> Markup {
    login_page(None)
}

#[derive(Debug, Default, serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

async fn sign_in(
    State(state): State<AppState>,
    parts: Parts,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if state.config.admin_tokens.is_empty() {
        let page = login_page(Some(
            "The console is disabled: configure [admin.tokens.NAME] (hub token new --admin NAME) to enable it.",
        ));
        return (StatusCode::FORBIDDEN, page).into_response();
    }
    let token = form.map(|Form(f)| f.token).unwrap_or_default();
    let Some(admin) = authenticate(&state.config, token.trim()) else {
        tracing::warn!("console sign-in refused");
        let page = login_page(Some("That is not a valid admin token."));
        return (StatusCode::UNAUTHORIZED, page).into_response();
    };
    tracing::info!(admin = %admin.name, scope = admin.scope.as_str(), "console sign-in");
    let (id, _) = state.console.open(admin);
    let secure = session::came_over_https(&parts.headers, parts.uri.scheme_str());
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(&id, state.console.ttl(), secure),
        )],
        Redirect::to("/console/destinations"),
    )
        .into_response()
}
