//! `POST /services/oauth2/token`: the client credentials and JWT bearer
//! grants.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Map, Value, json};

use super::App;
use crate::{Recorded, reply};

/// Salesforce takes an assertion that expires at most 3 minutes ahead
/// (a little clock skew allowed).
const MAX_EXP_AHEAD_SECS: i64 = 180 + 10;

fn oauth_error(error: &str, description: &str) -> axum::response::Response {
    reply::json(
        400,
        &[],
        &json!({ "error": error, "error_description": description }),
    )
}

pub(super) fn token(app: &App, rec: &Recorded) -> axum::response::Response {
    let where_ = format!("salesforce {} {}", rec.method, rec.path);
    app.model().token_requests += 1;
    if rec.method != "POST" {
        app.journal
            .violation(format!("{where_}: the token endpoint takes POST"));
        return oauth_error("invalid_request", "must use HTTP POST");
    }
    let content_type = rec.header("content-type").unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        app.journal.violation(format!(
            "{where_}: content-type {content_type:?}, not application/x-www-form-urlencoded"
        ));
        return oauth_error("invalid_request", "unsupported content type");
    }
    let form: Map<String, Value> = url_form(&rec.body)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let spec_errors = app.spec.validate(
        "/components/schemas/TokenRequest",
        &Value::Object(form.clone()),
    );
    if !spec_errors.is_empty() {
        for e in &spec_errors {
            app.journal.violation(format!("{where_}: form {e}"));
        }
        return oauth_error("invalid_request", "invalid token request");
    }
    let field = |k: &str| form.get(k).and_then(Value::as_str).unwrap_or("");
    if app.model().refuse_credentials {
        return oauth_error("invalid_grant", "authentication failure");
    }
    let scope = match field("grant_type") {
        "client_credentials" => {
            let m = app.model();
            if field("client_id") != m.client_id || field("client_secret") != m.client_secret {
                return oauth_error("invalid_client", "invalid client credentials");
            }
            "api"
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            if let Err(resp) = check_assertion(app, &where_, field("assertion")) {
                return *resp;
            }
            "api"
        }
        other => {
            app.journal.violation(format!(
                "{where_}: grant_type {other:?} is not one the connector uses"
            ));
            return oauth_error("unsupported_grant_type", "grant type not supported");
        }
    };
    let mut m = app.model();
    m.issued += 1;
    let token = format!("00D000000000001!AQ{:08}.fake", m.issued);
    m.valid_tokens.insert(token.clone());
    reply::json(
        200,
        &[],
        &json!({
            "access_token": token,
            "signature": STANDARD.encode(format!("sig-{}", m.issued)),
            "scope": scope,
            "instance_url": m.instance_url,
            "id": "https://login.salesforce.com/id/00D000000000001EAA/005000000000001AAA",
            "token_type": "Bearer",
            "issued_at": chrono::Utc::now().timestamp_millis().to_string(),
        }),
    )
}

/// Verifies an RS256 assertion: signature, then `iss`, `sub`, `aud`, `exp`.
fn check_assertion(
    app: &App,
    where_: &str,
    assertion: &str,
) -> Result<(), Box<axum::response::Response>> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).ok();
    let (Some(header), Some(claims), Some(signature)) = (
        parts.first().and_then(|p| decode(p)),
        parts.get(1).and_then(|p| decode(p)),
        parts.get(2).and_then(|p| decode(p)),
    ) else {
        app.journal
            .violation(format!("{where_}: the assertion is not a signed JWT"));
        return Err(Box::new(oauth_error("invalid_grant", "invalid assertion")));
    };
    let header: Value = serde_json::from_slice(&header).unwrap_or(Value::Null);
    let claims: Value = serde_json::from_slice(&claims).unwrap_or(Value::Null);
    if header["alg"] != "RS256" || parts.len() != 3 {
        app.journal
            .violation(format!("{where_}: the assertion's alg is not RS256"));
        return Err(Box::new(oauth_error("invalid_grant", "invalid assertion")));
    }
    let m = app.model();
    let Some(key) = m.jwt_public_key.clone() else {
        return Err(Box::new(oauth_error(
            "invalid_client",
            "no certificate is uploaded for this connected app",
        )));
    };
    let signed = format!("{}.{}", parts[0], parts[1]);
    if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key)
        .verify(signed.as_bytes(), &signature)
        .is_err()
    {
        return Err(Box::new(oauth_error("invalid_grant", "invalid assertion")));
    }
    let mut wrong = Vec::new();
    if claims["iss"] != m.client_id.as_str() {
        wrong.push("iss is not the consumer key");
    }
    if claims["sub"] != m.username.as_str() {
        wrong.push("sub is not the integration user");
    }
    if claims["aud"] != m.audience.as_str() {
        wrong.push("aud is not the login URL");
    }
    let now = chrono::Utc::now().timestamp();
    match claims["exp"].as_i64() {
        Some(exp) if exp > now && exp <= now + MAX_EXP_AHEAD_SECS => {}
        Some(_) => wrong.push("exp is not within the next 3 minutes"),
        None => wrong.push("exp is missing or not a number"),
    }
    if !wrong.is_empty() {
        app.journal
            .violation(format!("{where_}: JWT claims: {}", wrong.join("; ")));
        return Err(Box::new(oauth_error(
            "invalid_grant",
            "user hasn't approved this consumer",
        )));
    }
    Ok(())
}

/// `a=1&b=x+y` decoded.
fn url_form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    crate::url_pairs(&text)
}

pub(super) fn public_key_of(private_pem: &str) -> Option<Vec<u8>> {
    let start = private_pem.find("-----BEGIN ")?;
    let rest = &private_pem[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body = &rest[label_end + 5..];
    let end = body.find("-----END")?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(b64).ok()?;
    let pair = match label.as_str() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der).ok()?,
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der).ok()?,
        _ => return None,
    };
    use ring::signature::KeyPair as _;
    Some(pair.public_key().as_ref().to_vec())
}
