//! Standard Webhooks signing and verification (standardwebhooks.com):
//! HMAC-SHA256 over `{id}.{timestamp}.{body}`, base64, `v1,` prefix, several
//! space-separated signatures allowed so secrets can rotate.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// The key bytes of a `whsec_...` secret. `Debug` never shows them.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SecretError {
    #[error("a webhook secret must start with \"whsec_\"")]
    MissingPrefix,
    #[error("a webhook secret must be base64 after \"whsec_\"")]
    NotBase64,
    #[error("a webhook secret must hold 24 to 64 bytes")]
    BadLength,
}

impl WebhookSecret {
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or(SecretError::MissingPrefix)?;
        let key = BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::BadLength);
        }
        Ok(Self(key))
    }

    /// A new random secret in its `whsec_` text form.
    pub fn from_bytes(key: &[u8]) -> Self {
        Self(key.to_vec())
    }

    pub fn to_text(&self) -> String {
        format!("whsec_{}", BASE64.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The `webhook-signature` header value (`v1,<base64>`).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", BASE64.encode(self.mac(id, timestamp, body)))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is outside the tolerance")]
    StaleTimestamp,
    #[error("no signature matches")]
    NoMatch,
}

/// Checks a request against every secret (rotation). `now` and `tolerance_secs`
/// are passed in so tests need no clock.
pub fn verify(
    secrets: &[WebhookSecret],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let id = id.ok_or(VerifyError::MissingHeader(HEADER_ID))?;
    let timestamp = timestamp.ok_or(VerifyError::MissingHeader(HEADER_TIMESTAMP))?;
    let signature = signature.ok_or(VerifyError::MissingHeader(HEADER_SIGNATURE))?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if (now - ts).abs() > tolerance_secs {
        return Err(VerifyError::StaleTimestamp);
    }
    let candidates: Vec<Vec<u8>> = signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b| BASE64.decode(b).ok())
        .collect();
    // Compare every candidate against every secret without early exit.
    let mut matched = subtle::Choice::from(0u8);
    for secret in secrets {
        let expected = secret.mac(id, ts, body);
        for candidate in &candidates {
            matched |= expected.as_slice().ct_eq(candidate.as_slice());
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vector published in the Standard Webhooks specification.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specification_test_vector() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            secret.sign(SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes()),
            SPEC_SIG
        );
    }

    #[test]
    fn verifies_with_any_rotated_secret_and_any_listed_signature() {
        let old = WebhookSecret::from_bytes(&[7u8; 32]);
        let new = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let header = format!("v1,bm90IGl0 {SPEC_SIG}");
        let r = verify(
            &[old, new],
            Some(SPEC_ID),
            Some(&SPEC_TS.to_string()),
            Some(&header),
            SPEC_BODY.as_bytes(),
            SPEC_TS + 10,
            300,
        );
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn rejects_forged_stale_and_missing() {
        let s = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let ts = SPEC_TS.to_string();
        let body = SPEC_BODY.as_bytes();
        let check = |sig: Option<&str>, now: i64| {
            verify(
                std::slice::from_ref(&s),
                Some(SPEC_ID),
                Some(&ts),
                sig,
                body,
                now,
                300,
            )
        };
        assert_eq!(check(Some("v1,AAAA"), SPEC_TS), Err(VerifyError::NoMatch));
        assert_eq!(
            check(Some(SPEC_SIG), SPEC_TS + 301),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            check(Some(SPEC_SIG), SPEC_TS - 301),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            check(None, SPEC_TS),
            Err(VerifyError::MissingHeader(HEADER_SIGNATURE))
        );
        let tampered = verify(
            std::slice::from_ref(&s),
            Some(SPEC_ID),
            Some(&ts),
            Some(SPEC_SIG),
            b"{\"test\": 1}",
            SPEC_TS,
            300,
        );
        assert_eq!(tampered, Err(VerifyError::NoMatch));
    }

    #[test]
    fn secrets_are_validated_and_never_printed() {
        assert_eq!(
            WebhookSecret::parse("abc").unwrap_err(),
            SecretError::MissingPrefix
        );
        assert_eq!(
            WebhookSecret::parse("whsec_!!").unwrap_err(),
            SecretError::NotBase64
        );
        let s = WebhookSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(format!("{s:?}"), "WebhookSecret(***)");
        assert_eq!(s.to_text(), SPEC_SECRET);
    }
}
