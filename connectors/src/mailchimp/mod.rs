//! `mailchimp`: audience members of one Mailchimp list (Marketing API 3.0).
//!
//! Upserts go through the list batch endpoint (`POST /lists/{list_id}`, up
//! to 500 members, `update_existing: true`), whose answer names every
//! member created, updated or refused; outcomes are matched to items by
//! email. A member's `status` comes from the subject's consent to the
//! email purpose. Withdrawal sets `unsubscribed` (`PATCH` by subscriber
//! hash); erasure is `delete-permanent`. Both address the member by the
//! email last delivered (`Item::identity`), so a later address change does
//! not strand the old member.

mod wire;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use md5::{Digest, Md5};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::classify::{Class, classify_status, summarize_body};
use crate::settings::Secret;
use crate::{
    Action, BatchPolicy, BatchResult, Connector, ConnectorError, ConnectorKind, Http, Item,
    ItemOutcome, RateLimit, VendorResponse,
};
use wire::{BatchMember, BatchRequest, BatchResponse, MemberPatch, MemberStatus, Problem};

/// Members per `POST /lists/{list_id}` (Mailchimp's documented maximum).
pub const MAX_MEMBERS: usize = 500;

/// The identity field: the member's address.
pub const EMAIL: &str = "email";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MailchimpSettings {
    /// An API key (`...-us6`) or, with `auth: bearer`, an OAuth token.
    api_key: Secret,
    /// The audience (list) id.
    list_id: String,
    /// Default: `https://<dc>.api.mailchimp.com/3.0`, `<dc>` from the key.
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default = "default_auth")]
    auth: AuthScheme,
    /// The consent purpose whose answer becomes the member's status.
    #[serde(default = "default_email_purpose")]
    email_purpose: String,
}

/// How the key is sent: an API key as HTTP Basic password (any user name),
/// an OAuth access token as a bearer token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AuthScheme {
    Basic,
    Bearer,
}

fn default_auth() -> AuthScheme {
    AuthScheme::Basic
}

fn default_email_purpose() -> String {
    "marketing_email".into()
}

#[derive(Debug)]
pub struct MailchimpConnector {
    /// Without a trailing slash: `https://us6.api.mailchimp.com/3.0`.
    base_url: String,
    list_id: String,
    auth: AuthScheme,
    api_key: Secret,
    email_purpose: String,
}

impl MailchimpConnector {
    pub fn from_settings(settings: &Value) -> Result<Self, ConnectorError> {
        let s: MailchimpSettings = crate::settings::parse(settings)?;
        let invalid = |m: &str| ConnectorError::Invalid(m.to_string());
        if s.api_key.expose().trim().is_empty() {
            return Err(invalid("api_key: must not be empty"));
        }
        if s.list_id.is_empty() || !s.list_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                "list_id: expected the audience id (letters and digits)",
            ));
        }
        if s.email_purpose.trim().is_empty() {
            return Err(invalid("email_purpose: must name a consent purpose"));
        }
        let base_url = match (&s.base_url, s.auth) {
            (Some(url), _) => parse_base_url(url)?,
            (None, AuthScheme::Basic) => {
                let dc = data_centre(s.api_key.expose()).ok_or_else(|| {
                    invalid(
                        "api_key: expected a Mailchimp API key ending in its data centre \
                         (like -us6), or set base_url",
                    )
                })?;
                format!("https://{dc}.api.mailchimp.com/3.0")
            }
            (None, AuthScheme::Bearer) => {
                return Err(invalid(
                    "base_url: required with auth: bearer (an OAuth token names no data centre)",
                ));
            }
        };
        Ok(Self {
            base_url,
            list_id: s.list_id,
            auth: s.auth,
            api_key: s.api_key,
            email_purpose: s.email_purpose,
        })
    }

    fn request(&self, http: &Http<'_>, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}/lists/{}{path}", self.base_url, self.list_id);
        let req = http
            .client()
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        match self.auth {
            // The official SDK sends the user name `user`; Mailchimp reads
            // only the password.
            AuthScheme::Basic => req.basic_auth("syncd", Some(self.api_key.expose())),
            AuthScheme::Bearer => req.bearer_auth(self.api_key.expose()),
        }
    }

    /// Granted: `subscribed`. Denied (the subject said no or withdrew):
    /// `unsubscribed`, Mailchimp's "opted out". No answer recorded:
    /// `transactional`, Mailchimp's "never opted in to marketing".
    fn status_for(&self, item: &Item) -> MemberStatus {
        match item.consent.get(&self.email_purpose) {
            Some(true) => MemberStatus::Subscribed,
            Some(false) => MemberStatus::Unsubscribed,
            None => MemberStatus::Transactional,
        }
    }

    async fn send_upserts(
        &self,
        http: &Http<'_>,
        batch: &[Item],
        upserts: &[usize],
    ) -> BatchResult {
        let mut result = BatchResult::default();
        // (index, lowercased email) of the members in the call.
        let mut sent: Vec<(usize, String)> = Vec::new();
        let mut members = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for &i in upserts {
            let item = &batch[i];
            let fields = item.fields().cloned().unwrap_or_default();
            let Some(email) = fields
                .get(EMAIL)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|e| !e.is_empty())
            else {
                result.outcomes.push((
                    i,
                    ItemOutcome::Permanent {
                        reason:
                            "the mapping gave no `email`: Mailchimp addresses a member by email"
                                .into(),
                    },
                ));
                continue;
            };
            let lower = email.to_lowercase();
            if seen.insert(lower.clone(), i).is_some() {
                result.outcomes.push((
                    i,
                    ItemOutcome::Retry {
                        reason:
                            "another item of this batch has the same email; it goes in a later call"
                                .into(),
                    },
                ));
                continue;
            }
            let merge_fields = fields
                .iter()
                .filter(|(k, _)| k.as_str() != EMAIL)
                .map(|(k, v)| {
                    // Mailchimp clears a merge field given "", not null.
                    let v = if v.is_null() {
                        Value::from("")
                    } else {
                        v.clone()
                    };
                    (k.clone(), v)
                })
                .collect();
            members.push(BatchMember {
                email_address: email.to_string(),
                status: self.status_for(item),
                merge_fields,
            });
            sent.push((i, lower));
        }

        // A subject whose address changed: rename its member first, so the
        // batch updates it instead of adding a second member.
        let mut keep = vec![true; sent.len()];
        for (k, (i, lower)) in sent.iter().enumerate() {
            let Some(old) = batch[*i].record_id.as_deref() else {
                continue;
            };
            if !is_subscriber_hash(old) || old == subscriber_hash(lower) {
                continue;
            }
            let patch = MemberPatch {
                email_address: Some(members[k].email_address.clone()),
                status: None,
            };
            let req = self
                .request(http, Method::PATCH, &format!("/members/{old}"))
                .json(&patch);
            let part = match http.send(req).await {
                // Renamed; or the old member is gone; or the new address is
                // taken (or refused): the batch below upserts it either way.
                Ok(resp) if matches!(resp.status, 200..=299 | 400 | 404) => continue,
                Ok(resp) => BatchResult::from_class(1, resp.status, classify(&resp)),
                Err(e) => BatchResult::transport(1, &e),
            };
            if let Some(signal) = part.signal {
                // Throttled or paused: nothing more is sent now.
                let rest: Vec<usize> = sent
                    .iter()
                    .zip(&keep)
                    .filter_map(|((i, _), keep)| keep.then_some(*i))
                    .collect();
                let waiting = BatchResult::uniform(
                    rest.len(),
                    part.status,
                    ItemOutcome::Retry {
                        reason: signal_reason(&signal),
                    },
                )
                .with_signal(signal);
                result.absorb(&rest, waiting);
                return result;
            }
            keep[k] = false;
            result.absorb(&[*i], part);
        }
        let (sent, members): (Vec<_>, Vec<_>) = sent
            .into_iter()
            .zip(members)
            .zip(keep)
            .filter_map(|(pair, keep)| keep.then_some(pair))
            .unzip();
        if members.is_empty() {
            return result;
        }
        let indices: Vec<usize> = sent.iter().map(|(i, _)| *i).collect();
        let body = BatchRequest {
            members,
            update_existing: true,
        };
        let resp = match http
            .send(self.request(http, Method::POST, "").json(&body))
            .await
        {
            Ok(resp) => resp,
            Err(e) => {
                result.absorb(&indices, BatchResult::transport(indices.len(), &e));
                return result;
            }
        };
        if !(200..300).contains(&resp.status) {
            let part = BatchResult::from_class(indices.len(), resp.status, classify(&resp));
            result.absorb(&indices, part);
            return result;
        }
        result.status = Some(resp.status);
        let Ok(answer) = resp.json::<BatchResponse>() else {
            let part = BatchResult::uniform(
                indices.len(),
                Some(resp.status),
                ItemOutcome::Retry {
                    reason: "Mailchimp answered without a readable batch result".into(),
                },
            );
            result.absorb(&indices, part);
            return result;
        };
        let mut by_email: HashMap<String, ItemOutcome> = HashMap::new();
        for m in answer.new_members.iter().chain(&answer.updated_members) {
            by_email.insert(
                m.email_address.to_lowercase(),
                ItemOutcome::Delivered {
                    record_id: Some(m.id.clone()),
                },
            );
        }
        for e in &answer.errors {
            if let Some(email) = &e.email_address {
                by_email.insert(
                    email.trim().to_lowercase(),
                    ItemOutcome::Permanent { reason: e.reason() },
                );
            }
        }
        for (i, lower) in sent {
            let outcome = by_email.remove(&lower).unwrap_or(ItemOutcome::Retry {
                reason: "Mailchimp's batch answer did not mention this member".into(),
            });
            result.outcomes.push((i, outcome));
        }
        result
    }

    /// The member a delete or withdrawal addresses: by the email last
    /// delivered, else by the subscriber hash recorded at upsert.
    fn member_of(item: &Item) -> Option<String> {
        if let Some(email) = item
            .identity_str(EMAIL)
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            return Some(subscriber_hash(email));
        }
        item.record_id.clone().filter(|id| is_subscriber_hash(id))
    }

    async fn send_member_call(&self, http: &Http<'_>, item: &Item) -> BatchResult {
        let Some(hash) = Self::member_of(item) else {
            return BatchResult::uniform(
                1,
                None,
                ItemOutcome::Permanent {
                    reason:
                        "no email was delivered for this subject: nothing to address at Mailchimp"
                            .into(),
                },
            );
        };
        let (req, kept_id) = match item.action {
            Action::Delete => (
                self.request(
                    http,
                    Method::POST,
                    &format!("/members/{hash}/actions/delete-permanent"),
                ),
                None,
            ),
            _ => (
                self.request(http, Method::PATCH, &format!("/members/{hash}"))
                    .json(&MemberPatch {
                        email_address: None,
                        status: Some(MemberStatus::Unsubscribed),
                    }),
                Some(hash),
            ),
        };
        let resp = match http.send(req).await {
            Ok(resp) => resp,
            Err(e) => return BatchResult::transport(1, &e),
        };
        // Not (or no longer) on the list: there is nothing to unsubscribe
        // or erase, which is what was asked.
        if resp.status == 404 {
            let record_id = match item.action {
                Action::Delete => None,
                _ => item.record_id.clone(),
            };
            return BatchResult::uniform(1, Some(404), ItemOutcome::Delivered { record_id });
        }
        match classify(&resp) {
            Class::Success => BatchResult::uniform(
                1,
                Some(resp.status),
                ItemOutcome::Delivered { record_id: kept_id },
            ),
            class => BatchResult::from_class(1, resp.status, class),
        }
    }
}

fn signal_reason(signal: &crate::DestinationSignal) -> String {
    match signal {
        crate::DestinationSignal::Throttle { reason, .. }
        | crate::DestinationSignal::Pause { reason } => reason.clone(),
    }
}

/// Mailchimp's own message from its problem+json body, else the summary.
fn classify(resp: &VendorResponse) -> Class {
    let reason = match resp.json::<Problem>() {
        Ok(p) if p.title.is_some() || p.detail.is_some() => p.reason(resp.status),
        _ => summarize_body(resp.status, &resp.body),
    };
    classify_status(resp.status, &resp.headers, &resp.body).with_reason(reason)
}

/// Hex MD5 of the lowercased address: the member's id in paths.
pub fn subscriber_hash(email: &str) -> String {
    Md5::digest(email.trim().to_lowercase().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_subscriber_hash(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `abc123-us6` -> `us6`.
fn data_centre(key: &str) -> Option<&str> {
    let (_, dc) = key.trim().rsplit_once('-')?;
    let ok = !dc.is_empty()
        && dc.len() <= 10
        && dc.starts_with(|c: char| c.is_ascii_lowercase())
        && dc
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    ok.then_some(dc)
}

fn parse_base_url(text: &str) -> Result<String, ConnectorError> {
    // The url crate's message would quote the input.
    url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none())
        .map(|u| u.as_str().trim_end_matches('/').to_string())
        .ok_or_else(|| ConnectorError::Invalid("base_url: expected an http or https URL".into()))
}

#[async_trait::async_trait]
impl Connector for MailchimpConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Mailchimp
    }

    fn batch_policy(&self) -> BatchPolicy {
        BatchPolicy {
            max_items: MAX_MEMBERS,
            // Mailchimp documents no body limit for the batch endpoint.
            max_bytes: None,
            mixed_actions: false,
        }
    }

    /// Mailchimp limits concurrency (10 connections per key), not a rate;
    /// 10 calls a second keeps well under it for calls that take about a
    /// second, and its 429 throttles the destination beyond that.
    fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit::per_second(10))
    }

    fn identity_fields(&self) -> Vec<String> {
        vec![EMAIL.to_string()]
    }

    async fn send(&self, http: &Http<'_>, batch: &[Item]) -> BatchResult {
        let upserts: Vec<usize> = (0..batch.len())
            .filter(|&i| matches!(batch[i].action, Action::Upsert(_)))
            .collect();
        let mut result = BatchResult::default();
        if !upserts.is_empty() {
            let part = self.send_upserts(http, batch, &upserts).await;
            let all: Vec<usize> = (0..batch.len()).collect();
            result.absorb(&all, part);
        }
        for i in (0..batch.len()).filter(|i| !upserts.contains(i)) {
            if result.signal.is_some() {
                result.outcomes.push((
                    i,
                    ItemOutcome::Retry {
                        reason: "not sent: an earlier call of this batch was throttled or refused"
                            .into(),
                    },
                ));
                continue;
            }
            let part = self.send_member_call(http, &batch[i]).await;
            result.absorb(&[i], part);
        }
        result
    }
}
