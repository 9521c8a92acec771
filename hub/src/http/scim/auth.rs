//! Bearer token per SCIM client: only its SHA-256 is configured, compared in
//! constant time against every client so timing tells nothing.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::scim_model::ScimError;

/// The authenticated SCIM client; its name is the source of its changes.
pub struct ScimClient(pub String);

impl FromRequestParts<AppState> for ScimClient {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ScimError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.get(..7)
                    .filter(|p| p.eq_ignore_ascii_case("bearer "))
                    .map(|_| &v[7..])
            })
            .map(str::trim)
            .unwrap_or_default();
        if token.is_empty() {
            return Err(ScimError::Unauthorized);
        }
        let digest = Sha256::digest(token.as_bytes());
        let mut found = None;
        for (name, hash) in &state.config.scim_clients {
            if bool::from(digest.as_slice().ct_eq(hash)) {
                found = Some(name.clone());
            }
        }
        found.map(ScimClient).ok_or(ScimError::Unauthorized)
    }
}
