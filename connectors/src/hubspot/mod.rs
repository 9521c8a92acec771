//! `hubspot`: contacts in HubSpot's CRM (v3 API, private app token).
//!
//! - Upsert: `POST /crm/v3/objects/contacts/batch/upsert`, 100 inputs per
//!   call, each addressed by the mapped field named by `id_property`
//!   (default `email`); every input carries an `objectWriteTraceId` (the
//!   delivery id), which HubSpot echoes per result and which makes a partly
//!   failed batch a 207 with per-input errors. The contact's HubSpot id is
//!   the record id.
//! - Erasure: `POST /crm/v3/objects/contacts/gdpr-delete`, one call per
//!   contact, by record id (else by email, else by `id_property`).
//! - Withdrawal (suppress and unsubscribe): the contacts' emails are opted
//!   out of all email subscriptions,
//!   `POST /communication-preferences/v4/statuses/batch/unsubscribe-all?channel=EMAIL`.
//! - Limits: `rate_limit` calls per 10 s (100 or 190 by tier); a 429 of the
//!   `TEN_SECONDLY_ROLLING` policy throttles the destination for HubSpot's
//!   window, a `DAILY` one for an hour.

mod contacts;
mod subscriptions;
mod wire;

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::classify::Class;
use crate::partition::{self, Merged};
use crate::settings::{self, Secret};
use crate::{
    ActionKind, BatchPolicy, BatchResult, Connector, ConnectorError, ConnectorKind, Http, Item,
    ItemOutcome, RateLimit, VendorResponse,
};

pub use wire::{DAILY_LIMIT_WAIT, WINDOW};

/// HubSpot's limit for the CRM batch endpoints.
pub const MAX_INPUTS: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HubSpotSettings {
    /// Private app access token (scopes `crm.objects.contacts.write` and,
    /// for withdrawals, `communication_preferences.statuses.batch.write`).
    token: Secret,
    #[serde(default = "default_base_url")]
    base_url: String,
    /// The contact property that addresses a contact: `email`, or a custom
    /// property with unique values.
    #[serde(default = "default_id_property")]
    id_property: String,
    /// Calls per 10 seconds the account allows (100 Free/Starter, 190
    /// Professional/Enterprise, more with the API limit increase).
    #[serde(default = "default_rate_limit")]
    rate_limit: u32,
}

fn default_base_url() -> String {
    "https://api.hubapi.com".into()
}

fn default_id_property() -> String {
    "email".into()
}

fn default_rate_limit() -> u32 {
    100
}

#[derive(Debug)]
pub struct HubSpotConnector {
    base: url::Url,
    token: Secret,
    id_property: String,
    rate_limit: u32,
}

impl HubSpotConnector {
    pub fn from_settings(value: &Value) -> Result<Self, ConnectorError> {
        let s: HubSpotSettings = settings::parse(value)?;
        if s.token.is_empty() {
            return Err(ConnectorError::Invalid("token: must not be empty".into()));
        }
        let valid_name = |n: &str| {
            n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !valid_name(&s.id_property) {
            return Err(ConnectorError::Invalid(
                "id_property: expected a HubSpot property name (letters, digits, _)".into(),
            ));
        }
        if !(1..=10_000).contains(&s.rate_limit) {
            return Err(ConnectorError::Invalid(
                "rate_limit: expected calls per 10 seconds, between 1 and 10000".into(),
            ));
        }
        Ok(Self {
            base: settings::http_url("base_url", &s.base_url)?,
            token: s.token,
            id_property: s.id_property,
            rate_limit: s.rate_limit,
        })
    }

    fn post(&self, http: &Http<'_>, path: &str) -> reqwest::RequestBuilder {
        self.post_to(http, settings::join(&self.base, path))
    }

    fn post_to(&self, http: &Http<'_>, url: url::Url) -> reqwest::RequestBuilder {
        http.client()
            .post(url)
            .bearer_auth(self.token.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
    }

    /// HubSpot keeps emails lowercased; other unique values as given.
    fn key(&self, property: &str, value: &str) -> String {
        if property == "email" {
            value.trim().to_lowercase()
        } else {
            value.to_string()
        }
    }
}

/// An answer about the whole call, read the HubSpot way.
fn whole_call(resp: &VendorResponse, len: usize) -> BatchResult {
    match wire::classify(resp) {
        Class::Success => BatchResult::uniform(
            len,
            Some(resp.status),
            ItemOutcome::Delivered { record_id: None },
        ),
        other => BatchResult::from_class(len, resp.status, other),
    }
}

#[async_trait::async_trait]
impl Connector for HubSpotConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::HubSpot
    }

    fn batch_policy(&self) -> BatchPolicy {
        BatchPolicy {
            max_items: MAX_INPUTS,
            max_bytes: None,
            mixed_actions: false,
        }
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit {
            calls: self.rate_limit,
            per: Duration::from_secs(10),
        })
    }

    /// The upsert key, and the email (withdrawal and erasure address a
    /// contact's email).
    fn identity_fields(&self) -> Vec<String> {
        let mut fields = vec![self.id_property.clone()];
        if self.id_property != "email" {
            fields.push("email".into());
        }
        fields
    }

    async fn send(&self, http: &Http<'_>, batch: &[Item]) -> BatchResult {
        let mut merged = Merged::new();
        for (kind, indices) in partition::by_kind(batch) {
            for chunk in indices.chunks(MAX_INPUTS) {
                if merged.stopped() {
                    merged.not_sent(chunk);
                    continue;
                }
                let items: Vec<&Item> = chunk.iter().map(|&i| &batch[i]).collect();
                let part = match kind {
                    ActionKind::Upsert => self.upsert(http, &items).await,
                    ActionKind::Delete => self.delete(http, &items).await,
                    ActionKind::Suppress | ActionKind::Unsubscribe => {
                        self.unsubscribe(http, &items).await
                    }
                };
                merged.add(chunk, part);
            }
        }
        merged.finish()
    }
}
