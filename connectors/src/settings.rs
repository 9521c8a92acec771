//! Reading a connector's `settings` from a mapping file. Values may be
//! secrets (resolved from `${env:...}`), so an error names the key and what
//! was expected, never the value that was found.

use serde::de::DeserializeOwned;

use crate::ConnectorError;

/// Deserializes `settings` into a connector's settings struct.
pub fn parse<T: DeserializeOwned>(settings: &serde_json::Value) -> Result<T, ConnectorError> {
    serde_path_to_error::deserialize(settings).map_err(|e| {
        let path = e.path().to_string();
        let message = without_values(&e.inner().to_string());
        ConnectorError::Invalid(if path == "." || path.is_empty() {
            message
        } else {
            format!("{path}: {message}")
        })
    })
}

/// serde's message with every quoted input value taken out: "invalid type:
/// string \"s3cr3t\", expected u32" becomes "invalid type: expected u32".
/// Field names (in backticks) are kept; they come from our structs.
fn without_values(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    for kind in ["invalid type", "invalid value", "invalid length"] {
        if message.starts_with(kind) {
            return match message.rsplit_once("expected ") {
                Some((_, expected)) => format!("{kind}: expected {expected}"),
                None => kind.to_string(),
            };
        }
    }
    if message.starts_with("missing field") || message.starts_with("unknown field") {
        return message.to_string();
    }
    if message.starts_with("unknown variant") {
        return match message.rsplit_once("expected ") {
            Some((_, expected)) => format!("unknown variant: expected {expected}"),
            None => "unknown variant".into(),
        };
    }
    // A custom message (a parser of ours or of a crate) may quote the input.
    "invalid value".into()
}

/// A secret from a mapping file's settings (a token, a key), usually
/// resolved from `${env:...}`. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Parses an http(s) URL setting. The message names the key, never the
/// text (the url crate's own message would quote it). A trailing `/` is
/// dropped, so paths can be appended.
pub fn http_url(key: &str, text: &str) -> Result<url::Url, ConnectorError> {
    let mut url = url::Url::parse(text.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .filter(|u| u.query().is_none() && u.fragment().is_none())
        .ok_or_else(|| {
            ConnectorError::Invalid(format!(
                "{key}: expected an http or https URL without query or fragment"
            ))
        })?;
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    Ok(url)
}

/// `base` with `path` appended to its own path (`https://h/x` + `v1/batch`
/// or `/v1/batch` is `https://h/x/v1/batch`).
pub fn join(base: &url::Url, path: &str) -> url::Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url
}

/// Refuses an empty secret with the key's name.
pub fn require(key: &str, secret: &Secret) -> Result<(), ConnectorError> {
    if secret.is_empty() {
        return Err(ConnectorError::Invalid(format!("{key}: must not be empty")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct S {
        token: String,
        #[serde(default, with = "humantime_serde")]
        timeout: Option<Duration>,
        n: Option<u32>,
    }

    fn err(v: serde_json::Value) -> String {
        parse::<S>(&v).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_key_but_never_the_value() {
        let e = err(serde_json::json!({"token": "t", "n": "s3cr3t-value"}));
        assert_eq!(e, "invalid settings: n: invalid type: expected u32");
        let e = err(serde_json::json!({"token": "t", "timeout": "s3cr3t-value"}));
        assert!(e.starts_with("invalid settings: timeout: "), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
        let e = err(serde_json::json!({"tokn": "s3cr3t"}));
        assert!(
            e.contains("unknown field `tokn`") && !e.contains("s3cr3t"),
            "{e}"
        );
        assert!(err(serde_json::json!({})).contains("missing field `token`"));
    }

    #[test]
    fn secrets_never_print_and_urls_never_echo() {
        assert_eq!(format!("{:?}", Secret::new("pat-123")), "Secret(***)");
        let e = http_url("base_url", "ftp://s3cr3t.example").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid settings: base_url: expected an http or https URL without query or fragment"
        );
        let u = http_url("base_url", "http://127.0.0.1:9/api/").unwrap();
        assert_eq!(join(&u, "/x/y").as_str(), "http://127.0.0.1:9/api/x/y");
        let u = http_url("base_url", "https://api.hubapi.com").unwrap();
        assert_eq!(
            join(&u, "/crm/v3/objects/contacts/batch/upsert").as_str(),
            "https://api.hubapi.com/crm/v3/objects/contacts/batch/upsert"
        );
    }
}
