//! Console sessions: a signed-in admin is a random session id in a cookie.
//! The hub keeps only the id's SHA-256, in memory, with the admin's name and
//! scope, a per-session CSRF token and an expiry: a restart signs everyone
//! out, and a copy of the map (a heap dump, say) holds no usable cookie.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ConsoleError;
use crate::AppState;
use crate::http::admin::{AdminIdentity, Scope};

/// The cookie that carries the session id.
pub const COOKIE: &str = "hub_console";

/// How long a session lasts after sign-in, however busy.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);

/// The signed-in admins of this process, by the SHA-256 of their session id.
pub struct Sessions {
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
    ttl: Duration,
}

/// One signed-in admin.
#[derive(Debug, Clone)]
pub struct Session {
    pub admin: AdminIdentity,
    /// Sent back in a hidden field of every form; checked on every POST.
    pub csrf: String,
    expires_at: Instant,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(SESSION_TTL)
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn digest(session_id: &str) -> [u8; 32] {
    Sha256::digest(session_id.as_bytes()).into()
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            by_digest: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic elsewhere while holding the lock leaves the map intact.
        self.by_digest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Signs `admin` in: the new session id (for the cookie only; it is not
    /// kept) and the session. Expired sessions are dropped on the way.
    pub fn open(&self, admin: AdminIdentity) -> (String, Session) {
        self.open_at(admin, Instant::now())
    }

    fn open_at(&self, admin: AdminIdentity, now: Instant) -> (String, Session) {
        let id = random_hex();
        let session = Session {
            admin,
            csrf: random_hex(),
            expires_at: now + self.ttl,
        };
        let mut map = self.map();
        map.retain(|_, s| s.expires_at > now);
        map.insert(digest(&id), session.clone());
        (id, session)
    }

    /// The live session a cookie's id names.
    pub fn find(&self, session_id: &str) -> Option<Session> {
        self.find_at(session_id, Instant::now())
    }

    fn find_at(&self, session_id: &str, now: Instant) -> Option<Session> {
        let key = digest(session_id);
        let mut map = self.map();
        match map.get(&key) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Signs out.
    pub fn close(&self, session_id: &str) {
        self.map().remove(&digest(session_id));
    }
}

/// The session id a request's cookies carry ("" when none).
pub fn cookie_value(headers: &HeaderMap) -> &str {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .unwrap_or_default()
}

/// Whether the request reached us over https (directly, or as a TLS
/// terminating proxy in front says): then the cookie is `Secure`.
pub fn came_over_https(parts_headers: &HeaderMap, scheme: Option<&str>) -> bool {
    let forwarded = parts_headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    forwarded || scheme == Some("https")
}

/// The `Set-Cookie` value that starts a session.
pub fn set_cookie(session_id: &str, ttl: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={session_id}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}{}",
        ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends one.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", Duration::ZERO, secure)
}

/// A request from a signed-in admin; anyone else is sent to the sign-in
/// page.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: Session,
    /// The cookie's session id, to sign out with.
    session_id: String,
}

impl SignedIn {
    pub fn admin(&self) -> &AdminIdentity {
        &self.session.admin
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }

    /// Whether pages show buttons that change something.
    pub fn may_write(&self) -> bool {
        self.session.admin.scope.allows(Scope::Write)
    }

    /// A write needs a write-scoped token, whatever the form says.
    pub fn require_write(&self) -> Result<(), ConsoleError> {
        if self.may_write() {
            Ok(())
        } else {
            Err(ConsoleError::ReadOnly)
        }
    }

    /// The form's CSRF token must be this session's (compared in constant
    /// time).
    pub fn check_csrf(&self, sent: &str) -> Result<(), ConsoleError> {
        let expected = self.session.csrf.as_bytes();
        if sent.len() == expected.len() && bool::from(sent.as_bytes().ct_eq(expected)) {
            Ok(())
        } else {
            Err(ConsoleError::BadCsrf)
        }
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ConsoleError> {
        let id = cookie_value(&parts.headers);
        if id.is_empty() {
            return Err(ConsoleError::SignedOut);
        }
        let session = state.console.find(id).ok_or(ConsoleError::SignedOut)?;
        Ok(SignedIn {
            session,
            session_id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(scope: Scope) -> AdminIdentity {
        AdminIdentity {
            name: "alice".into(),
            scope,
        }
    }

    #[test]
    fn a_session_is_found_by_its_id_until_it_expires_or_closes() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let now = Instant::now();
        let (id, s) = sessions.open_at(admin(Scope::Read), now);
        assert_eq!(id.len(), 64);
        assert_ne!(id, s.csrf);
        let found = sessions.find_at(&id, now).unwrap();
        assert_eq!(found.admin, admin(Scope::Read));
        assert_eq!(found.csrf, s.csrf);
        assert!(sessions.find_at("nope", now).is_none());
        assert!(
            sessions
                .find_at(&id, now + Duration::from_secs(61))
                .is_none()
        );
        // Expired sessions are dropped, not kept.
        assert!(sessions.find_at(&id, now).is_none());

        let (id, _) = sessions.open_at(admin(Scope::Write), now);
        sessions.close(&id);
        assert!(sessions.find_at(&id, now).is_none());
    }

    #[test]
    fn only_the_digest_of_a_session_id_is_kept() {
        let sessions = Sessions::default();
        let (id, _) = sessions.open(admin(Scope::Write));
        let map = sessions.map();
        assert!(map.contains_key(&digest(&id)));
        assert!(!map.keys().any(|k| hex::encode(k) == id));
    }

    #[test]
    fn csrf_must_match_exactly() {
        let sessions = Sessions::default();
        let (id, session) = sessions.open(admin(Scope::Write));
        let signed = SignedIn {
            session: session.clone(),
            session_id: id,
        };
        assert!(signed.check_csrf(&session.csrf).is_ok());
        assert!(signed.check_csrf("").is_err());
        assert!(signed.check_csrf(&session.csrf[1..]).is_err());
        assert!(signed.check_csrf(&format!("{}0", session.csrf)).is_err());
    }

    #[test]
    fn the_cookie_is_read_among_others_and_written_with_its_attributes() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; hub_console=abc ; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h), "abc");
        assert_eq!(cookie_value(&HeaderMap::new()), "");
        let c = set_cookie("abc", Duration::from_secs(10), false);
        assert_eq!(
            c,
            "hub_console=abc; HttpOnly; SameSite=Strict; Path=/console; Max-Age=10"
        );
        assert!(set_cookie("abc", Duration::from_secs(10), true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
