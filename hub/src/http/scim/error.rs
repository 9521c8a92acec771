//! SCIM responses: `application/scim+json` bodies, and the SCIM Error
//! resource for every failure (RFC 7644 3.12).

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::scim_model::{ScimError, etag};

/// A SCIM answer: status, optional JSON body, extra headers.
pub struct ScimResponse {
    pub status: StatusCode,
    pub body: Option<serde_json::Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ScimResponse {
    pub fn new(status: StatusCode, body: Option<serde_json::Value>) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub fn ok(body: serde_json::Value) -> Self {
        Self::new(StatusCode::OK, Some(body))
    }

    pub fn with_etag(mut self, version: i64) -> Self {
        if let Ok(v) = HeaderValue::from_str(&etag(version)) {
            self.headers.push((header::ETAG, v));
        }
        self
    }

    pub fn with_location(mut self, location: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(location) {
            self.headers.push((header::LOCATION, v));
        }
        self
    }
}

impl IntoResponse for ScimResponse {
    fn into_response(self) -> Response {
        let mut resp = match &self.body {
            Some(body) => {
                let bytes = serde_json::to_vec(body).unwrap_or_default();
                let mut r = (self.status, bytes).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/scim+json"),
                );
                r
            }
            None => self.status.into_response(),
        };
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        if let ScimError::Store(e) = &self {
            tracing::error!(error = %e.log_text(), "SCIM request failed in the store");
        } else {
            // The detail can quote input (filters hold e-mails): debug only.
            tracing::debug!(status = self.status(), scim_type = ?self.scim_type().map(|t| t.as_str()), "SCIM request refused");
        }
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut resp = ScimResponse::new(status, Some(self.body()));
        match self {
            ScimError::Unauthorized => resp.headers.push((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            )),
            ScimError::Store(_) => resp
                .headers
                .push((header::RETRY_AFTER, HeaderValue::from_static("5"))),
            _ => {}
        }
        resp.into_response()
    }
}
