//! Extractors that refuse in problem JSON (axum's own answer plain text),
//! and never quote the refused value back (it may be an e-mail address).

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::http::problem::Problem;

/// A serde message without the values it quotes: `invalid type: string
/// "ada@example.com"` becomes `invalid type: string (value not shown)`.
/// Field names (in backticks) stay.
fn without_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        match (c, quoted) {
            ('"', false) => {
                quoted = true;
                out.push_str("(value not shown)");
            }
            ('"', true) => quoted = false,
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for Problem {
    fn from(e: QueryRejection) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "Bad query string",
            without_values(&e.body_text()),
        )
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct Path<T>(pub T);

impl From<PathRejection> for Problem {
    fn from(e: PathRejection) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "Bad request URL",
            without_values(&e.body_text()),
        )
    }
}

/// A JSON body; an empty body or `null` is `T::default()` (every field optional).
/// Malformed JSON is 400, JSON of the wrong shape 422; a NUL character
/// anywhere is 400 (nothing the hub holds can contain one).
pub struct Json<T>(pub T);

fn malformed(status: StatusCode, title: &'static str, e: &serde_json::Error) -> Problem {
    Problem::new(status, title, without_values(&e.to_string()))
}

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let body = Bytes::from_request(req, state).await.map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Body too large",
                "the request body could not be read (too large?)".to_string(),
            )
        })?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Json(T::default()));
        }
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| malformed(StatusCode::BAD_REQUEST, "Malformed JSON", &e))?;
        // `null` is no body, as an empty one is.
        if value.is_null() {
            return Ok(Json(T::default()));
        }
        // Every body is an object (serde would also read a struct from an array).
        if !value.is_object() {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid request body",
                "the body must be a JSON object".to_string(),
            ));
        }
        if let Some(at) = crate::input::find_nul(&value, "") {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "Malformed request",
                format!("{at} must not contain a NUL character"),
            ));
        }
        serde_json::from_value(value)
            .map(Json)
            .map_err(|e| malformed(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request body", &e))
    }
}

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn quoted_values_are_not_shown_but_field_names_are() {
        assert_eq!(
            without_values("invalid type: string \"ada@example.com\", expected i64 at `limit`"),
            "invalid type: string (value not shown), expected i64 at `limit`"
        );
    }
}
