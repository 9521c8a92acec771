//! `salesforce`: records of one sObject (default `Contact`) through the REST
//! API's sObject Collections, keyed by an external id field that holds the
//! hub id.
//!
//! - Auth: OAuth 2.0 client credentials, or the JWT bearer flow (RS256
//!   assertion). The token is cached until a call answers 401
//!   `INVALID_SESSION_ID`; then one new token and one replay of the call,
//!   and a second 401 pauses the destination (the one retry the issue asks
//!   a connector to make itself).
//! - Upsert: `PATCH /services/data/vXX.X/composite/sobjects/{sobject}/{external_id_field}`,
//!   200 records, `allOrNone: false`, one SaveResult per record in request
//!   order; the record id is kept.
//! - Withdrawal: the same upsert with only the external id and
//!   `opt_out_field: true` (default `HasOptedOutOfEmail`).
//! - Erasure: `DELETE /composite/sobjects?ids=...` by the record ids kept at
//!   upsert; a subject without one is deleted by external id.
//! - Limits: Salesforce has no 429. `403 REQUEST_LIMIT_EXCEEDED` throttles,
//!   and so does a `Sforce-Limit-Info` that says the allocation is spent.

mod auth;
mod records;
mod wire;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::partition::{self, Merged};
use crate::settings::{self, Secret};
use crate::{
    ActionKind, BatchPolicy, BatchResult, Connector, ConnectorError, ConnectorKind,
    DestinationSignal, Http, Item, ItemOutcome, VendorResponse,
};

use auth::{AuthFailure, Grant, RsaKey, Tokens};
pub use wire::{CONCURRENT_LIMIT_WAIT, DAILY_LIMIT_WAIT, MAX_RECORDS};

const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SalesforceSettings {
    /// Where tokens come from (`https://test.salesforce.com` for a
    /// sandbox, or the org's My Domain).
    #[serde(default)]
    login_url: Option<String>,
    /// The org's API host; default: the `instance_url` of the token answer.
    #[serde(default)]
    instance_url: Option<String>,
    /// One URL for both login and API calls (a proxy, a test fake).
    #[serde(default)]
    base_url: Option<String>,
    /// The connected app's consumer key.
    client_id: String,
    /// Client credentials flow.
    #[serde(default)]
    client_secret: Option<Secret>,
    /// JWT bearer flow: the integration user ...
    #[serde(default)]
    username: Option<String>,
    /// ... and the connected app's RSA key (PEM).
    #[serde(default)]
    private_key: Option<Secret>,
    /// The JWT `aud`; default: the login URL.
    #[serde(default)]
    audience: Option<String>,
    #[serde(default = "default_sobject")]
    sobject: String,
    /// The external id field that holds the hub id, such as `Hub_Id__c`.
    external_id_field: String,
    #[serde(default = "default_api_version")]
    api_version: String,
    /// The checkbox a withdrawal sets.
    #[serde(default = "default_opt_out_field")]
    opt_out_field: String,
    /// The purpose whose consent `opt_out_field` mirrors on upserts; null
    /// leaves the field to the mapping.
    #[serde(default = "default_email_purpose")]
    email_purpose: Option<String>,
}

fn default_sobject() -> String {
    "Contact".into()
}

fn default_api_version() -> String {
    "v64.0".into()
}

fn default_opt_out_field() -> String {
    "HasOptedOutOfEmail".into()
}

fn default_email_purpose() -> Option<String> {
    Some("marketing_email".into())
}

#[derive(Debug)]
pub struct SalesforceConnector {
    tokens: Tokens,
    /// Overrides the token answer's `instance_url`.
    instance: Option<url::Url>,
    /// `v64.0`
    api_version: String,
    sobject: String,
    external_id_field: String,
    opt_out_field: String,
    email_purpose: Option<String>,
}

/// Why a call got no answer to read.
enum Stop {
    Auth(AuthFailure),
    /// A fresh token was refused too.
    Session(String),
}

impl Stop {
    fn into_result(self, len: usize) -> BatchResult {
        let retry = |reason: &str| ItemOutcome::Retry {
            reason: reason.to_string(),
        };
        match self {
            Stop::Auth(AuthFailure::Transport(e)) => BatchResult::transport(len, &e),
            Stop::Auth(AuthFailure::Temporary(reason)) => {
                BatchResult::uniform(len, None, retry(&reason))
            }
            Stop::Auth(AuthFailure::Refused(reason)) => {
                BatchResult::uniform(len, None, retry(&reason))
                    .with_signal(DestinationSignal::Pause { reason })
            }
            Stop::Session(reason) => {
                let reason = format!("a new session was refused too: {reason}");
                BatchResult::uniform(len, Some(401), retry(&reason))
                    .with_signal(DestinationSignal::Pause { reason })
            }
        }
    }
}

fn api_name(key: &str, value: &str) -> Result<(), ConnectorError> {
    let ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ConnectorError::Invalid(format!(
            "{key}: expected a Salesforce API name (letters, digits, _)"
        )))
    }
}

/// `64.0` or `v64.0`, at least v46.0 (collections upsert).
fn api_version(text: &str) -> Result<String, ConnectorError> {
    let digits = text.trim().trim_start_matches('v');
    let parsed = digits
        .split_once('.')
        .filter(|(major, minor)| {
            (2..=3).contains(&major.len())
                && minor.len() == 1
                && major
                    .chars()
                    .chain(minor.chars())
                    .all(|c| c.is_ascii_digit())
        })
        .and_then(|(major, _)| major.parse::<u32>().ok());
    match parsed {
        Some(major) if major >= 46 => Ok(format!("v{digits}")),
        _ => Err(ConnectorError::Invalid(
            "api_version: expected a version such as v64.0 (v46.0 or later)".into(),
        )),
    }
}

/// A Salesforce record id: 15 or 18 letters and digits.
fn is_record_id(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

impl SalesforceConnector {
    pub fn from_settings(value: &Value) -> Result<Self, ConnectorError> {
        let s: SalesforceSettings = settings::parse(value)?;
        if s.client_id.trim().is_empty() {
            return Err(ConnectorError::Invalid(
                "client_id: must not be empty".into(),
            ));
        }
        api_name("sobject", &s.sobject)?;
        api_name("external_id_field", &s.external_id_field)?;
        api_name("opt_out_field", &s.opt_out_field)?;
        let base = s
            .base_url
            .as_deref()
            .map(|u| settings::http_url("base_url", u))
            .transpose()?;
        let login = match s.login_url.as_deref() {
            Some(u) => settings::http_url("login_url", u)?,
            None => base
                .clone()
                .unwrap_or_else(|| settings::http_url("login_url", DEFAULT_LOGIN_URL).unwrap()),
        };
        let instance = match s.instance_url.as_deref() {
            Some(u) => Some(settings::http_url("instance_url", u)?),
            None => base,
        };
        let grant = match (s.client_secret, s.private_key) {
            (Some(_), Some(_)) => {
                return Err(ConnectorError::Invalid(
                    "client_secret, private_key: give client_secret (client credentials flow) \
                     or username and private_key (JWT bearer flow), not both"
                        .into(),
                ));
            }
            (None, None) => {
                return Err(ConnectorError::Invalid(
                    "client_secret or private_key: one is required".into(),
                ));
            }
            (Some(secret), None) if secret.is_empty() => {
                return Err(ConnectorError::Invalid(
                    "client_secret: must not be empty".into(),
                ));
            }
            (Some(client_secret), None) => Grant::ClientCredentials {
                client_id: s.client_id,
                client_secret,
            },
            (None, Some(pem)) => {
                let username = s.username.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
                    ConnectorError::Invalid(
                        "username: required with private_key (JWT bearer flow)".into(),
                    )
                })?;
                let key = RsaKey::from_pem(pem.expose()).ok_or_else(|| {
                    ConnectorError::Invalid(
                        "private_key: expected an RSA private key in PEM (PKCS#8 or PKCS#1)".into(),
                    )
                })?;
                Grant::JwtBearer {
                    client_id: s.client_id,
                    username,
                    key: Box::new(key),
                    audience: s
                        .audience
                        .unwrap_or_else(|| login.as_str().trim_end_matches('/').to_string()),
                }
            }
        };
        Ok(Self {
            tokens: Tokens::new(grant, settings::join(&login, "/services/oauth2/token")),
            instance,
            api_version: api_version(&s.api_version)?,
            sobject: s.sobject,
            external_id_field: s.external_id_field,
            opt_out_field: s.opt_out_field,
            email_purpose: s.email_purpose,
        })
    }

    /// `{instance}/services/data/{version}/{segments...}`, each segment
    /// percent-encoded.
    fn data_url(&self, instance: &url::Url, segments: &[&str]) -> url::Url {
        let mut url = self.instance.clone().unwrap_or_else(|| instance.clone());
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["services", "data", &self.api_version])
                .extend(segments);
        }
        url
    }

    /// Calls with the cached session; on 401 `INVALID_SESSION_ID` fetches
    /// a new token and replays once.
    async fn call(
        &self,
        http: &Http<'_>,
        build: &(dyn Fn(&url::Url, &Secret) -> reqwest::RequestBuilder + Sync),
    ) -> Result<VendorResponse, Stop> {
        let session = self.tokens.current(http).await.map_err(Stop::Auth)?;
        let send = |session: &auth::Session| {
            http.send(build(&session.instance_url, &session.access_token))
        };
        let resp = send(&session)
            .await
            .map_err(|e| Stop::Auth(AuthFailure::Transport(e)))?;
        if !(resp.status == 401 && wire::is_invalid_session(&resp.body)) {
            return Ok(resp);
        }
        let renewed = self
            .tokens
            .renew(http, &session)
            .await
            .map_err(Stop::Auth)?;
        let resp = send(&renewed)
            .await
            .map_err(|e| Stop::Auth(AuthFailure::Transport(e)))?;
        if resp.status == 401 {
            self.tokens.forget(&renewed).await;
            return Err(Stop::Session(wire::reason(401, &resp.body)));
        }
        Ok(resp)
    }
}

#[async_trait::async_trait]
impl Connector for SalesforceConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Salesforce
    }

    fn batch_policy(&self) -> BatchPolicy {
        BatchPolicy {
            max_items: MAX_RECORDS,
            max_bytes: None,
            mixed_actions: false,
        }
    }

    async fn send(&self, http: &Http<'_>, batch: &[Item]) -> BatchResult {
        let mut merged = Merged::new();
        for (kind, indices) in partition::by_kind(batch) {
            for chunk in indices.chunks(MAX_RECORDS) {
                if merged.stopped() {
                    merged.not_sent(chunk);
                    continue;
                }
                let items: Vec<&Item> = chunk.iter().map(|&i| &batch[i]).collect();
                let part = match kind {
                    ActionKind::Upsert => {
                        let records = items
                            .iter()
                            .map(|item| {
                                self.upsert_record(item, item.fields().unwrap_or(&Map::new()))
                            })
                            .collect();
                        self.upsert(http, records).await
                    }
                    ActionKind::Suppress | ActionKind::Unsubscribe => {
                        let records = items.iter().map(|item| self.opt_out_record(item)).collect();
                        self.upsert(http, records).await
                    }
                    ActionKind::Delete => self.delete(http, &items).await,
                };
                merged.add(chunk, part);
            }
        }
        merged.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_are_normalised_and_old_ones_refused() {
        assert_eq!(api_version("64.0").unwrap(), "v64.0");
        assert_eq!(api_version("v60.0").unwrap(), "v60.0");
        assert!(api_version("v45.0").is_err());
        assert!(api_version("latest").is_err());
        assert!(is_record_id("003000000000001AAA"));
        assert!(!is_record_id("u-42"));
    }
}
