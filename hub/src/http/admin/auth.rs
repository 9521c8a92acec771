//! Who is calling the admin API: a bearer token whose SHA-256 is one of the
//! configured admin tokens, and what its scope lets it do. The console
//! signs in through [`authenticate`] too.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::config::Config;
pub use crate::config::Scope;
use crate::http::problem::Problem;

/// An authenticated admin: the token's configured name and its scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AdminIdentity {
    pub name: String,
    pub scope: Scope,
}

/// The admin whose token this is, if any. Every configured hash is
/// compared, each in constant time, so timing tells nothing about which
/// (or whether one) matched.
pub fn authenticate(config: &Config, bearer_token: &str) -> Option<AdminIdentity> {
    if bearer_token.is_empty() {
        return None;
    }
    let digest = Sha256::digest(bearer_token.as_bytes());
    let mut found = None;
    for t in &config.admin_tokens {
        if bool::from(digest.as_slice().ct_eq(&t.sha256)) {
            found = Some(AdminIdentity {
                name: t.name.clone(),
                scope: t.scope,
            });
        }
    }
    found
}

/// The bearer token of a request ("" when there is none).
fn bearer(parts: &Parts) -> &str {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default()
}

/// Authenticates a request and checks its scope against `needed`.
pub fn admit(config: &Config, parts: &Parts, needed: Scope) -> Result<AdminIdentity, Problem> {
    if config.admin_tokens.is_empty() {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "Admin API disabled",
            "configure [admin.tokens.NAME] (hub token new --admin NAME) to enable it".to_string(),
        ));
    }
    let Some(who) = authenticate(config, bearer(parts)) else {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "a valid admin bearer token is required".to_string(),
        ));
    };
    if !who.scope.allows(needed) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "Insufficient scope",
            format!(
                "admin token {:?} has scope {}; this needs {}",
                who.name,
                who.scope.as_str(),
                needed.as_str()
            ),
        ));
    }
    Ok(who)
}

/// A request from an admin token of any scope.
pub struct ReadAdmin(pub AdminIdentity);

/// A request from a write-scoped admin token; a read token gets 403.
pub struct WriteAdmin(pub AdminIdentity);

impl FromRequestParts<AppState> for ReadAdmin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        admit(&state.config, parts, Scope::Read).map(ReadAdmin)
    }
}

impl FromRequestParts<AppState> for WriteAdmin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        admit(&state.config, parts, Scope::Write).map(WriteAdmin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AdminTokenSettings, RawConfig};

    fn sha(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    fn config() -> Config {
        let mut raw = RawConfig::default();
        raw.admin.token_sha256 = Some(sha("old-token"));
        for (name, token, scope) in [
            ("alice", "alice-token", "read"),
            ("ops", "ops-token", "write"),
        ] {
            raw.admin.tokens.insert(
                name.into(),
                AdminTokenSettings {
                    token_sha256: sha(token),
                    scope: scope.into(),
                },
            );
        }
        raw.validate().unwrap()
    }

    #[test]
    fn each_token_is_known_by_its_name_and_scope() {
        let c = config();
        let who = |t| authenticate(&c, t).map(|i| (i.name, i.scope));
        assert_eq!(who("alice-token"), Some(("alice".into(), Scope::Read)));
        assert_eq!(who("ops-token"), Some(("ops".into(), Scope::Write)));
        assert_eq!(who("old-token"), Some(("default".into(), Scope::Write)));
    }

    #[test]
    fn unknown_empty_and_hash_tokens_are_refused() {
        let c = config();
        assert_eq!(authenticate(&c, ""), None);
        assert_eq!(authenticate(&c, "alice-token "), None);
        // The configured hash is no token.
        assert_eq!(authenticate(&c, &sha("alice-token")), None);
    }

    #[test]
    fn write_routes_refuse_a_read_token_with_403_and_no_token_with_401() {
        let c = config();
        let parts = |token: Option<&str>| {
            let mut b = axum::http::Request::builder();
            if let Some(t) = token {
                b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
            }
            b.body(()).unwrap().into_parts().0
        };
        let status = |token, needed| admit(&c, &parts(token), needed).map_err(|p| p.status);
        assert_eq!(status(Some("alice-token"), Scope::Write), Err(403));
        assert!(status(Some("alice-token"), Scope::Read).is_ok());
        assert!(status(Some("ops-token"), Scope::Write).is_ok());
        assert_eq!(status(None, Scope::Read), Err(401));
        assert_eq!(status(Some("nope"), Scope::Read), Err(401));
        let off = RawConfig::default().validate().unwrap();
        assert_eq!(
            admit(&off, &parts(Some("ops-token")), Scope::Read).map_err(|p| p.status),
            Err(403)
        );
    }
}
