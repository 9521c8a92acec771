//! `klaviyo`: profiles and email consent in Klaviyo (JSON:API, revisioned).
//!
//! A batch of one upsert is one `POST /api/profile-import` (synchronous,
//! answers the profile id). A larger batch is one profile bulk import job,
//! which Klaviyo runs later: its items are `Accepted` with the job as
//! ticket, and [`check`](KlaviyoConnector) polls the job and its import
//! errors. With `list_id` set, upserts also carry consent: a subject who
//! granted the email purpose is subscribed to the list by a subscribe job,
//! one who denied it is unsubscribed. Withdrawal is an unsubscribe job;
//! erasure is a data-privacy deletion job, confirmed by looking the
//! profile up until it is gone. `external_id` is always the hub's id.

mod answers;
mod check;
mod consent;
mod wire;

#[cfg(test)]
mod tests;

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::classify::Class;
use crate::settings::Secret;
use crate::{
    Action, BatchPolicy, BatchResult, CallError, Connector, ConnectorError, ConnectorKind, Http,
    Item, ItemOutcome, RateLimit, Ticket, VendorResponse,
};
use answers::{Tally, classify, job_refusal, quota_spent};
use wire::{JobDocument, ProfileDocument, ProfileList};

/// The revision this connector was written and tested against (the
/// description in `vendor-specs/klaviyo`).
pub const REVISION: &str = "2026-07-15";

/// JSON:API's media type, the only one Klaviyo's description lists.
pub const JSON_API: &str = "application/vnd.api+json";

/// Items per batch: one bulk import job (Klaviyo takes 10,000) whose
/// subscribe job (Klaviyo takes 1,000) fits one call.
pub const MAX_ITEMS: usize = 1000;
/// Profiles per unsubscribe job (Klaviyo's maximum).
pub const MAX_UNSUBSCRIBE: usize = 100;
/// Bytes per request: Klaviyo takes 5 MB per bulk job; room for the envelope.
pub const MAX_BYTES: usize = 4_500_000;
/// Bytes per profile (Klaviyo's maximum).
pub const MAX_PROFILE_BYTES: usize = 100 * 1024;

/// The source Klaviyo records with a subscription.
const CUSTOM_SOURCE: &str = "syncd hub";

/// Profile attributes of Klaviyo's own; other mapped fields go to `properties`.
const ATTRIBUTES: &[&str] = &[
    "email",
    "phone_number",
    "first_name",
    "last_name",
    "organization",
    "locale",
    "image",
];
/// Keys of `location`, mapped as `location.city` etc. (or a `location` object).
const LOCATION: &[&str] = &[
    "address1",
    "address2",
    "city",
    "country",
    "latitude",
    "longitude",
    "region",
    "zip",
    "timezone",
    "ip",
];

/// The identity field: subscriptions and deletion address a profile by it.
pub const EMAIL: &str = "email";

const IMPORT_TICKET: &str = "profile-bulk-import-job:";
const DELETION_BY_ID: &str = "data-privacy-deletion-job:id:";
const DELETION_BY_EMAIL: &str = "data-privacy-deletion-job:email:";

/// How long Klaviyo usually takes: the first check comes after this.
const CHECK_IMPORT_AFTER: Duration = Duration::from_secs(10);
const CHECK_DELETION_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KlaviyoSettings {
    /// A private API key (`pk_...`).
    api_key: Secret,
    #[serde(default = "default_revision")]
    revision: String,
    #[serde(default = "default_base_url")]
    base_url: String,
    /// The list subscriptions are managed on; none: upserts leave
    /// subscriptions alone, withdrawals unsubscribe account-wide.
    #[serde(default)]
    list_id: Option<String>,
    /// The consent purpose that means "email marketing".
    #[serde(default = "default_email_purpose")]
    email_purpose: String,
}

fn default_revision() -> String {
    REVISION.into()
}

fn default_base_url() -> String {
    "https://a.klaviyo.com".into()
}

fn default_email_purpose() -> String {
    "marketing_email".into()
}

#[derive(Debug)]
pub struct KlaviyoConnector {
    /// Without a trailing slash.
    base_url: String,
    api_key: Secret,
    revision: String,
    list_id: Option<String>,
    email_purpose: String,
}

impl KlaviyoConnector {
    pub fn from_settings(settings: &Value) -> Result<Self, ConnectorError> {
        let s: KlaviyoSettings = crate::settings::parse(settings)?;
        let invalid = |m: &str| ConnectorError::Invalid(m.to_string());
        if s.api_key.expose().trim().is_empty() {
            return Err(invalid("api_key: must not be empty"));
        }
        if !is_revision(&s.revision) {
            return Err(invalid(
                "revision: expected a Klaviyo API revision date, YYYY-MM-DD",
            ));
        }
        if let Some(list) = &s.list_id
            && (list.is_empty() || !list.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(invalid(
                "list_id: expected a Klaviyo list id (letters and digits)",
            ));
        }
        if s.email_purpose.trim().is_empty() {
            return Err(invalid("email_purpose: must name a consent purpose"));
        }
        let base_url = url::Url::parse(&s.base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none())
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .ok_or_else(|| invalid("base_url: expected an http or https URL"))?;
        Ok(Self {
            base_url,
            api_key: s.api_key,
            revision: s.revision,
            list_id: s.list_id,
            email_purpose: s.email_purpose,
        })
    }

    fn request(&self, http: &Http<'_>, method: Method, url: &str) -> reqwest::RequestBuilder {
        http.client()
            .request(method, url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Klaviyo-API-Key {}", self.api_key.expose()),
            )
            .header("revision", &self.revision)
            .header(reqwest::header::ACCEPT, JSON_API)
    }

    async fn post(
        &self,
        http: &Http<'_>,
        path: &str,
        body: &Value,
    ) -> Result<VendorResponse, CallError> {
        let bytes = serde_json::to_vec(body).map_err(|_| CallError::Build)?;
        let url = format!("{}{path}", self.base_url);
        let req = self
            .request(http, Method::POST, &url)
            .header(reqwest::header::CONTENT_TYPE, JSON_API)
            .body(bytes);
        http.send(req).await
    }

    async fn get(&self, http: &Http<'_>, url: &str) -> Result<VendorResponse, CallError> {
        http.send(self.request(http, Method::GET, url)).await
    }

    /// `path` with its query encoded.
    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}{path}", self.base_url);
        if let Ok(mut parsed) = url::Url::parse(&url) {
            parsed.query_pairs_mut().extend_pairs(query);
            url = parsed.into();
        }
        url
    }

    /// A profile resource's attributes for an upsert.
    fn attributes(item: &Item) -> Map<String, Value> {
        let mut attrs = Map::new();
        let mut location = Map::new();
        let mut properties = Map::new();
        for (key, value) in item.fields().into_iter().flatten() {
            if ATTRIBUTES.contains(&key.as_str()) {
                attrs.insert(key.clone(), as_text(value));
            } else if key == "location"
                && let Some(obj) = value.as_object()
            {
                location.extend(obj.clone());
            } else if let Some(sub) = key.strip_prefix("location.")
                && LOCATION.contains(&sub)
            {
                location.insert(sub.to_string(), value.clone());
            } else if key == "external_id" {
                // The hub's id is the external id, whatever the mapping says.
            } else {
                properties.insert(key.clone(), value.clone());
            }
        }
        attrs.insert("external_id".into(), Value::from(item.subject_id.clone()));
        if !location.is_empty() {
            attrs.insert("location".into(), Value::Object(location));
        }
        if !properties.is_empty() {
            attrs.insert("properties".into(), Value::Object(properties));
        }
        attrs
    }

    async fn import_one(&self, http: &Http<'_>, item: &Item) -> BatchResult {
        let body = json!({"data": {"type": "profile", "attributes": Self::attributes(item)}});
        let resp = match self.post(http, "/api/profile-import", &body).await {
            Ok(resp) => resp,
            Err(e) => return BatchResult::transport(1, &e),
        };
        let class = classify(&resp);
        let mut result = match class {
            Class::Success => match resp.json::<ProfileDocument>() {
                Ok(doc) => BatchResult::uniform(
                    1,
                    Some(resp.status),
                    ItemOutcome::Delivered {
                        record_id: Some(doc.data.id),
                    },
                ),
                Err(_) => BatchResult::uniform(
                    1,
                    Some(resp.status),
                    ItemOutcome::Delivered { record_id: None },
                ),
            },
            class => BatchResult::from_class(1, resp.status, class),
        };
        result.signal = result.signal.or_else(|| quota_spent(&resp));
        result
    }

    async fn import_bulk(&self, http: &Http<'_>, items: &[&Item]) -> BatchResult {
        let profiles: Vec<Value> = items
            .iter()
            .map(|item| json!({"type": "profile", "attributes": Self::attributes(item)}))
            .collect();
        let body = json!({"data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": profiles}}
        }});
        let resp = match self
            .post(http, "/api/profile-bulk-import-jobs", &body)
            .await
        {
            Ok(resp) => resp,
            Err(e) => return BatchResult::transport(items.len(), &e),
        };
        let mut result = match classify(&resp) {
            Class::Success => match resp.json::<JobDocument>() {
                Ok(doc) => BatchResult::uniform(
                    items.len(),
                    Some(resp.status),
                    ItemOutcome::Accepted {
                        ticket: format!("{IMPORT_TICKET}{}", doc.data.id),
                        check_after: CHECK_IMPORT_AFTER,
                    },
                ),
                Err(_) => BatchResult::uniform(
                    items.len(),
                    Some(resp.status),
                    ItemOutcome::Retry {
                        reason: "Klaviyo accepted the import job without naming it".into(),
                    },
                ),
            },
            class => job_refusal(&resp, items.len(), class),
        };
        result.signal = result.signal.or_else(|| quota_spent(&resp));
        result
    }

    async fn send_upserts(
        &self,
        http: &Http<'_>,
        batch: &[Item],
        indices: &[usize],
        tally: &mut Tally,
    ) {
        let mut sendable = Vec::new();
        for &i in indices {
            let size = serde_json::to_vec(&Self::attributes(&batch[i]))
                .map(|b| b.len())
                .unwrap_or(0);
            if size > MAX_PROFILE_BYTES {
                tally.set(
                    i,
                    ItemOutcome::Permanent {
                        reason: format!(
                            "the profile is {size} bytes; Klaviyo takes {MAX_PROFILE_BYTES} at most"
                        ),
                    },
                );
            } else {
                sendable.push(i);
            }
        }
        match sendable.as_slice() {
            [] => return,
            [one] => {
                let part = self.import_one(http, &batch[*one]).await;
                tally.take(&[*one], part);
            }
            many => {
                let items: Vec<&Item> = many.iter().map(|&i| &batch[i]).collect();
                let part = self.import_bulk(http, &items).await;
                tally.take(many, part);
            }
        }
        if self.list_id.is_none() {
            return;
        }
        // Consent on the list, for the profiles the import took.
        let (mut grant, mut deny) = (Vec::new(), Vec::new());
        for &i in &sendable {
            if !tally.went_through(i) {
                continue;
            }
            let Some(email) = batch[i]
                .fields()
                .and_then(|f| f.get(EMAIL))
                .and_then(Value::as_str)
            else {
                continue;
            };
            match batch[i].consent.get(&self.email_purpose) {
                Some(true) => grant.push((i, email)),
                Some(false) => deny.push((i, email)),
                None => {}
            }
        }
        for chunk in grant.chunks(MAX_ITEMS) {
            self.consent_call(http, chunk, true, tally).await;
        }
        for chunk in deny.chunks(MAX_UNSUBSCRIBE) {
            self.consent_call(http, chunk, false, tally).await;
        }
    }

    async fn delete_one(&self, http: &Http<'_>, item: &Item) -> BatchResult {
        // Exactly one identifier: the profile id known from an upsert, else
        // the email last delivered, else the profile found by our id.
        let (profile, ticket) = if let Some(id) = &item.record_id {
            (
                json!({"type": "profile", "id": id, "attributes": {}}),
                format!("{DELETION_BY_ID}{id}"),
            )
        } else if let Some(email) = item.identity_str(EMAIL).filter(|e| !e.trim().is_empty()) {
            (
                json!({"type": "profile", "attributes": {"email": email.trim()}}),
                format!("{DELETION_BY_EMAIL}{}", item.subject_id),
            )
        } else {
            match self.find_by_external_id(http, &item.subject_id).await {
                Ok(Some(id)) => (
                    json!({"type": "profile", "id": id, "attributes": {}}),
                    format!("{DELETION_BY_ID}{id}"),
                ),
                Ok(None) => {
                    return BatchResult::uniform(
                        1,
                        Some(200),
                        ItemOutcome::Delivered { record_id: None },
                    );
                }
                Err(result) => return result,
            }
        };
        let body = json!({"data": {
            "type": "data-privacy-deletion-job",
            "attributes": {"profile": {"data": profile}}
        }});
        let resp = match self
            .post(http, "/api/data-privacy-deletion-jobs", &body)
            .await
        {
            Ok(resp) => resp,
            Err(e) => return BatchResult::transport(1, &e),
        };
        let mut result = match classify(&resp) {
            Class::Success => BatchResult::uniform(
                1,
                Some(resp.status),
                ItemOutcome::Accepted {
                    ticket,
                    check_after: CHECK_DELETION_AFTER,
                },
            ),
            class => BatchResult::from_class(1, resp.status, class),
        };
        result.signal = result.signal.or_else(|| quota_spent(&resp));
        result
    }

    /// The id of the profile whose `external_id` is `subject_id`.
    async fn find_by_external_id(
        &self,
        http: &Http<'_>,
        subject_id: &str,
    ) -> Result<Option<String>, BatchResult> {
        let filter = format!("equals(external_id,{})", quoted(subject_id));
        let url = self.url(
            "/api/profiles",
            &[("filter", &filter), ("fields[profile]", "external_id")],
        );
        let resp = self
            .get(http, &url)
            .await
            .map_err(|e| BatchResult::transport(1, &e))?;
        match classify(&resp) {
            Class::Success => Ok(resp
                .json::<ProfileList>()
                .ok()
                .and_then(|l| l.data.into_iter().next())
                .map(|p| p.id)),
            class => Err(BatchResult::from_class(1, resp.status, class)),
        }
    }
}

/// A value of one of Klaviyo's text attributes: numbers and booleans as text.
fn as_text(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::from(n.to_string()),
        Value::Bool(b) => Value::from(b.to_string()),
        other => other.clone(),
    }
}

/// A filter string literal: `"..."` with `"` and `\` escaped.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `YYYY-MM-DD`, optionally with a `.suffix`.
fn is_revision(text: &str) -> bool {
    let date = text.split_once('.').map(|(d, _)| d).unwrap_or(text);
    let b = date.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

#[async_trait::async_trait]
impl Connector for KlaviyoConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Klaviyo
    }

    fn batch_policy(&self) -> BatchPolicy {
        BatchPolicy {
            max_items: MAX_ITEMS,
            max_bytes: Some(MAX_BYTES),
            mixed_actions: false,
        }
    }

    /// The steady window of the bulk import endpoints (150 a minute), which
    /// batches and their polls use; profile-import and the subscription
    /// jobs allow more, deletion less (60 a minute: its 429 throttles).
    fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit {
            calls: 150,
            per: Duration::from_secs(60),
        })
    }

    fn identity_fields(&self) -> Vec<String> {
        vec![EMAIL.to_string()]
    }

    async fn send(&self, http: &Http<'_>, batch: &[Item]) -> BatchResult {
        let mut tally = Tally::new(batch.len());
        let of = |kind: fn(&Action) -> bool| -> Vec<usize> {
            (0..batch.len())
                .filter(|&i| kind(&batch[i].action))
                .collect()
        };
        let upserts = of(|a| matches!(a, Action::Upsert(_)));
        let withdrawals = of(|a| matches!(a, Action::Suppress | Action::Unsubscribe));
        let deletes = of(|a| matches!(a, Action::Delete));
        if !upserts.is_empty() {
            self.send_upserts(http, batch, &upserts, &mut tally).await;
        }
        if !withdrawals.is_empty() {
            self.send_withdrawals(http, batch, &withdrawals, &mut tally)
                .await;
        }
        for i in deletes {
            if tally.stopped() {
                tally.hold(&[i]);
                continue;
            }
            let part = self.delete_one(http, &batch[i]).await;
            tally.take(&[i], part);
        }
        tally.finish()
    }

    async fn check(&self, http: &Http<'_>, tickets: &[Ticket]) -> crate::CheckResult {
        check::check(self, http, tickets).await
    }
}
