//! Salesforce's OAuth 2.0 access token: the client credentials flow or the
//! JWT bearer flow (an RS256 assertion signed with the connected app's
//! key), fetched on first use and cached until a call answers 401
//! `INVALID_SESSION_ID`. Neither flow issues a refresh token: a new access
//! token is simply asked for again.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;

use crate::classify::summarize_body;
use crate::settings::Secret;
use crate::{CallError, Http};

/// How long a JWT assertion is valid; Salesforce takes at most 3 minutes.
const ASSERTION_LIFETIME_SECS: i64 = 170;

/// An RSA private key; its `Debug` never shows it.
pub struct RsaKey(RsaKeyPair);

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaKey(***)")
    }
}

impl RsaKey {
    /// A PEM `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1). Literal
    /// `\n` sequences (a key pasted into one environment variable line)
    /// count as line breaks.
    pub fn from_pem(text: &str) -> Option<RsaKey> {
        let text = text.replace("\\n", "\n");
        let (label, der) = pem_block(&text)?;
        let pair = match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der).ok()?,
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der).ok()?,
            _ => return None,
        };
        Some(RsaKey(pair))
    }

    fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .ok()?;
        Some(signature)
    }
}

/// The label and bytes of the first PEM block in `text`.
fn pem_block(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].trim().to_string();
    let body = &rest[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some((label, STANDARD.decode(b64).ok()?))
}

/// How the connector proves who it is.
#[derive(Debug)]
pub enum Grant {
    ClientCredentials {
        client_id: String,
        client_secret: Secret,
    },
    JwtBearer {
        /// The connected app's consumer key (`iss`).
        client_id: String,
        /// The integration user (`sub`).
        username: String,
        key: Box<RsaKey>,
        /// `aud`: Salesforce's login URL (production, sandbox or site).
        audience: String,
    },
}

impl Grant {
    /// The form body of the token request.
    fn form(&self) -> Result<String, String> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        match self {
            Grant::ClientCredentials {
                client_id,
                client_secret,
            } => {
                form.append_pair("grant_type", "client_credentials")
                    .append_pair("client_id", client_id)
                    .append_pair("client_secret", client_secret.expose());
            }
            Grant::JwtBearer {
                client_id,
                username,
                key,
                audience,
            } => {
                let assertion = assertion(client_id, username, audience, key)
                    .ok_or("the JWT assertion could not be signed")?;
                form.append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                    .append_pair("assertion", &assertion);
            }
        }
        Ok(form.finish())
    }
}

/// `base64url(header).base64url(claims).base64url(RS256 signature)`
fn assertion(client_id: &str, username: &str, audience: &str, key: &RsaKey) -> Option<String> {
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": username,
        "aud": audience,
        "exp": chrono::Utc::now().timestamp() + ASSERTION_LIFETIME_SECS,
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).ok()?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).ok()?)
    );
    let signature = key.sign(signed.as_bytes())?;
    Some(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// An access token and the org's API host it is for.
#[derive(Debug, PartialEq)]
pub struct Session {
    pub access_token: Secret,
    pub instance_url: url::Url,
}

/// Why no session could be had.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthFailure {
    /// Salesforce refused the credentials (`invalid_grant`, `invalid_client`,
    /// ...): the destination pauses.
    Refused(String),
    /// The token endpoint failed for now (5xx, unreadable answer).
    Temporary(String),
    /// No answer.
    Transport(CallError),
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    instance_url: String,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// The cached session. The lock is held while a token is fetched, so
/// concurrent batches that find the session expired fetch one token.
#[derive(Debug)]
pub struct Tokens {
    grant: Grant,
    token_url: url::Url,
    cached: tokio::sync::Mutex<Option<Arc<Session>>>,
}

impl Tokens {
    pub fn new(grant: Grant, token_url: url::Url) -> Self {
        Self {
            grant,
            token_url,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached session, or a new one.
    pub async fn current(&self, http: &Http<'_>) -> Result<Arc<Session>, AuthFailure> {
        let mut cached = self.cached.lock().await;
        if let Some(session) = cached.as_ref() {
            return Ok(session.clone());
        }
        let session = Arc::new(self.fetch(http).await?);
        *cached = Some(session.clone());
        Ok(session)
    }

    /// A new session in place of `failed`, unless another call has
    /// replaced it already.
    pub async fn renew(
        &self,
        http: &Http<'_>,
        failed: &Arc<Session>,
    ) -> Result<Arc<Session>, AuthFailure> {
        let mut cached = self.cached.lock().await;
        if let Some(session) = cached.as_ref()
            && !Arc::ptr_eq(session, failed)
        {
            return Ok(session.clone());
        }
        *cached = None;
        let session = Arc::new(self.fetch(http).await?);
        *cached = Some(session.clone());
        Ok(session)
    }

    /// Forgets a session Salesforce no longer takes.
    pub async fn forget(&self, failed: &Arc<Session>) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|s| Arc::ptr_eq(s, failed)) {
            *cached = None;
        }
    }

    async fn fetch(&self, http: &Http<'_>) -> Result<Session, AuthFailure> {
        let form = self.grant.form().map_err(AuthFailure::Refused)?;
        let request = http
            .client()
            .post(self.token_url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form);
        let resp = http.send(request).await.map_err(AuthFailure::Transport)?;
        match resp.status {
            200 => {
                let answer: TokenAnswer = resp.json().map_err(|_| {
                    AuthFailure::Temporary("the token answer has no access_token".into())
                })?;
                let instance_url = crate::settings::http_url("instance_url", &answer.instance_url)
                    .map_err(|_| {
                        AuthFailure::Temporary("the token answer has no usable instance_url".into())
                    })?;
                Ok(Session {
                    access_token: Secret::new(answer.access_token),
                    instance_url,
                })
            }
            408 | 429 | 500..=599 => Err(AuthFailure::Temporary(format!(
                "token endpoint: {}",
                summarize_body(resp.status, &resp.body)
            ))),
            status => Err(AuthFailure::Refused(match resp.json::<TokenError>() {
                Ok(e) => format!(
                    "Salesforce refused the credentials: HTTP {status} {}: {}",
                    e.error, e.error_description
                ),
                Err(_) => format!(
                    "Salesforce refused the credentials: {}",
                    summarize_body(status, &resp.body)
                ),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_are_not_rsa_pem_are_refused() {
        assert!(RsaKey::from_pem("not a key").is_none());
        assert!(
            RsaKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_none()
        );
        assert_eq!(
            pem_block("x\n-----BEGIN FOO-----\nAAEC\n-----END FOO-----\n"),
            Some(("FOO".to_string(), vec![0, 1, 2]))
        );
    }
}
