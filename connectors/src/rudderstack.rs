//! `rudderstack`: subjects as `identify` events through the data plane's
//! `POST /v1/batch` (Basic auth with the write key), consent as
//! `context.consentManagement` (custom provider: allowed and denied consent
//! ids, from a purpose -> consent id map), and erasure and suppression as
//! User Suppression API regulations (`POST /v2/regulations`, Bearer token).
//!
//! RudderStack documents no processing state for a regulation: its list
//! (`GET /v2/regulations`) shows a regulation's id, type, attributes and
//! `canceled`, nothing more, and it says that it forwards deletions to the
//! destinations without guaranteeing them. So `check` confirms what can be
//! confirmed: the regulation is recorded in the workspace and not canceled.
//! A canceled one fails; one not listed yet stays pending.
//!
//! A `suppress` regulation is remembered in the subject's record id
//! (`suppressed:<regulation id>`); the next upsert cancels it
//! (`DELETE /v2/regulations/{id}`) before the identify, which RudderStack
//! would otherwise drop.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::classify::{Class, classify_status, retry_after};
use crate::settings::{self, Secret};
use crate::tracking::{self, MAX_EVENT_BYTES};
use crate::{
    Action, BatchPolicy, BatchResult, CheckResult, Connector, ConnectorError, ConnectorKind,
    DestinationSignal, Http, Item, ItemOutcome, Ticket, TicketStatus,
};

/// rudder-server's default request limit is 4,000 KB; keep well under it.
const MAX_BATCH_BYTES: usize = 3500 * 1024;
const MAX_BATCH_EVENTS: usize = 1000;
const SUPPRESSED_PREFIX: &str = "suppressed:";
const MAX_PAGES: usize = 200;
const CHECK_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RudderStackSettings {
    write_key: Secret,
    /// The workspace's data plane URL (RudderStack has no global host).
    base_url: String,
    #[serde(default)]
    api_token: Option<Secret>,
    #[serde(default = "default_regulation_url")]
    regulation_url: String,
    /// Hub purpose -> consent category id configured on the destinations.
    #[serde(default)]
    consent_ids: Option<BTreeMap<String, String>>,
    /// Destinations a `suppress_with_delete` deletes from (empty: left out).
    #[serde(default)]
    delete_destination_ids: Vec<String>,
    /// Sources a `suppress` applies to (empty: all of the workspace).
    #[serde(default)]
    suppress_source_ids: Vec<String>,
}

fn default_regulation_url() -> String {
    "https://api.rudderstack.com".into()
}

#[derive(Debug)]
pub struct RudderStackConnector {
    write_key: Secret,
    batch_url: url::Url,
    api_token: Option<Secret>,
    regulation_url: url::Url,
    /// None: each purpose is its own consent id.
    consent_ids: Option<BTreeMap<String, String>>,
    delete_destination_ids: Vec<String>,
    suppress_source_ids: Vec<String>,
}

impl RudderStackConnector {
    pub fn from_settings(settings: &Value) -> Result<Self, ConnectorError> {
        let s: RudderStackSettings = settings::parse(settings)?;
        settings::require("write_key", &s.write_key)?;
        if let Some(token) = &s.api_token {
            settings::require("api_token", token)?;
        }
        Ok(Self {
            write_key: s.write_key,
            batch_url: settings::join(&settings::http_url("base_url", &s.base_url)?, "v1/batch"),
            api_token: s.api_token,
            regulation_url: settings::http_url("regulation_url", &s.regulation_url)?,
            consent_ids: s.consent_ids,
            delete_destination_ids: s.delete_destination_ids,
            suppress_source_ids: s.suppress_source_ids,
        })
    }

    /// `allowedConsentIds` / `deniedConsentIds`: an id is allowed only when
    /// every purpose mapped to it is granted.
    fn consent_management(&self, item: &Item) -> Value {
        let mut ids: BTreeMap<String, bool> = BTreeMap::new();
        match &self.consent_ids {
            Some(map) => {
                for (purpose, id) in map {
                    let entry = ids.entry(id.clone()).or_insert(true);
                    *entry = *entry && item.granted(purpose);
                }
            }
            None => {
                for (purpose, granted) in &item.consent {
                    ids.insert(purpose.clone(), *granted);
                }
            }
        }
        let allowed: Vec<&String> = ids.iter().filter(|(_, g)| **g).map(|(k, _)| k).collect();
        let denied: Vec<&String> = ids.iter().filter(|(_, g)| !**g).map(|(k, _)| k).collect();
        json!({
            "provider": "custom",
            "resolutionStrategy": "and",
            "allowedConsentIds": allowed,
            "deniedConsentIds": denied,
        })
    }

    fn event(&self, item: &Item) -> Value {
        let mut context = Map::new();
        context.insert("consentManagement".into(), self.consent_management(item));
        context.insert("library".into(), json!({"name": "syncd-hub"}));
        tracking::identify(
            &item.subject_id,
            item.fields().cloned().unwrap_or_default(),
            context,
            &item.delivery_id,
            &tracking::now_rfc3339(),
        )
    }

    async fn identify(
        &self,
        http: &Http<'_>,
        batch: &[Item],
        indices: &[usize],
        result: &mut BatchResult,
    ) {
        let mut events = Vec::new();
        let mut sent = Vec::new();
        for &i in indices {
            let event = self.event(&batch[i]);
            let size = tracking::event_bytes(&event);
            if size > MAX_EVENT_BYTES {
                result.outcomes.push((
                    i,
                    ItemOutcome::Permanent {
                        reason: format!("the identify event is {size} bytes; RudderStack takes events up to 32 KB"),
                    },
                ));
                continue;
            }
            events.push(event);
            sent.push(i);
        }
        if events.is_empty() {
            return;
        }
        match tracking::post_batch(
            http,
            self.batch_url.clone(),
            self.write_key.expose(),
            events,
        )
        .await
        {
            Err(e) => result.outcomes.extend(sent.iter().map(|&i| {
                (
                    i,
                    ItemOutcome::Retry {
                        reason: e.to_string(),
                    },
                )
            })),
            Ok(resp) => {
                result.status = Some(resp.status);
                let class = gateway_class(resp.status, &resp.headers, &resp.body);
                if let Some(s) = class.signal() {
                    result.signal = Some(s);
                }
                for i in sent {
                    let outcome = match &class {
                        Class::Success => ItemOutcome::Delivered {
                            record_id: Some(batch[i].subject_id.clone()),
                        },
                        other => other.item_outcome(),
                    };
                    result.outcomes.push((i, outcome));
                }
            }
        }
    }

    fn token(&self) -> Option<&str> {
        self.api_token.as_ref().map(Secret::expose)
    }

    /// One regulation request for the users of `indices`; RudderStack
    /// answers one regulation per user, matched back by `attributes.userId`.
    async fn regulate(
        &self,
        http: &Http<'_>,
        batch: &[Item],
        indices: &[usize],
        kind: &str,
        result: &mut BatchResult,
    ) {
        let Some(token) = self.token() else {
            for &i in indices {
                result.outcomes.push((
                    i,
                    ItemOutcome::Permanent {
                        reason: "api_token is not set: RudderStack regulations need a service access token".into(),
                    },
                ));
            }
            return;
        };
        let mut seen = HashSet::new();
        let users: Vec<Value> = indices
            .iter()
            .filter(|&&i| seen.insert(batch[i].subject_id.as_str()))
            .map(|&i| {
                let mut user = Map::new();
                user.insert("userId".into(), json!(batch[i].subject_id));
                for (k, v) in &batch[i].identity {
                    if v.is_string() {
                        user.insert(k.clone(), v.clone());
                    }
                }
                Value::Object(user)
            })
            .collect();
        let mut body = json!({"regulationType": kind, "users": users});
        if kind == "suppress_with_delete" && !self.delete_destination_ids.is_empty() {
            body["destinationIds"] = json!(self.delete_destination_ids);
        }
        if kind == "suppress" && !self.suppress_source_ids.is_empty() {
            body["sourceIds"] = json!(self.suppress_source_ids);
        }
        let request = http
            .client()
            .post(settings::join(&self.regulation_url, "v2/regulations"))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let resp = match http.send(request).await {
            Ok(r) => r,
            Err(e) => {
                result.outcomes.extend(indices.iter().map(|&i| {
                    (
                        i,
                        ItemOutcome::Retry {
                            reason: e.to_string(),
                        },
                    )
                }));
                return;
            }
        };
        result.status = Some(resp.status);
        let class = classify_status(resp.status, &resp.headers, &resp.body);
        if let Some(s) = class.signal() {
            result.signal = Some(s);
        }
        let by_user: HashMap<String, String> = resp
            .json::<Vec<Value>>()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| {
                Some((
                    r.pointer("/attributes/userId")?.as_str()?.to_string(),
                    r.get("id")?.as_str()?.to_string(),
                ))
            })
            .collect();
        for &i in indices {
            let outcome = match (&class, by_user.get(&batch[i].subject_id)) {
                (Class::Success, Some(id)) => ItemOutcome::Accepted {
                    ticket: id.clone(),
                    check_after: CHECK_AFTER,
                },
                (Class::Success, None) => ItemOutcome::Retry {
                    reason: "RudderStack's answer lists no regulation for this user".into(),
                },
                (other, _) => other.item_outcome(),
            };
            result.outcomes.push((i, outcome));
        }
    }

    /// Cancels the suppression behind a `suppressed:<id>` record id; an
    /// unknown id is already gone. Err: the item's outcome.
    async fn lift(
        &self,
        http: &Http<'_>,
        regulation_id: &str,
    ) -> Result<(), (ItemOutcome, Option<DestinationSignal>)> {
        let Some(token) = self.token() else {
            return Err((
                ItemOutcome::Permanent {
                    reason: "api_token is not set: the subject's suppression cannot be lifted"
                        .into(),
                },
                None,
            ));
        };
        let url = settings::join(
            &self.regulation_url,
            &format!("v2/regulations/{regulation_id}"),
        );
        match http
            .send(http.client().delete(url).bearer_auth(token))
            .await
        {
            Err(e) => Err((
                ItemOutcome::Retry {
                    reason: e.to_string(),
                },
                None,
            )),
            Ok(resp) if resp.status == 404 => Ok(()),
            Ok(resp) => match classify_status(resp.status, &resp.headers, &resp.body) {
                Class::Success => Ok(()),
                other => Err((other.item_outcome(), other.signal())),
            },
        }
    }
}

/// The gateway's plain-text errors: 404 "Source is disabled" means our
/// source cannot take events, like a refused key: pause, keep the jobs.
fn gateway_class(status: u16, headers: &reqwest::header::HeaderMap, body: &[u8]) -> Class {
    match classify_status(status, headers, body) {
        Class::Permanent { reason } if status == 404 => Class::Pause { reason },
        other => other,
    }
}

#[async_trait::async_trait]
impl Connector for RudderStackConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::RudderStack
    }

    fn batch_policy(&self) -> BatchPolicy {
        BatchPolicy {
            max_items: MAX_BATCH_EVENTS,
            max_bytes: Some(MAX_BATCH_BYTES),
            mixed_actions: true,
        }
    }

    fn item_bytes(&self, item: &Item) -> usize {
        match item.action {
            Action::Upsert(_) | Action::Unsubscribe => tracking::event_bytes(&self.event(item)),
            _ => item.subject_id.len() + 16,
        }
    }

    async fn send(&self, http: &Http<'_>, batch: &[Item]) -> BatchResult {
        let mut result = BatchResult::default();
        let mut identify = Vec::new();
        let mut erase = Vec::new();
        let mut suppress = Vec::new();
        for (i, item) in batch.iter().enumerate() {
            match &item.action {
                Action::Upsert(_) => {
                    if let Some(id) = item
                        .record_id
                        .as_deref()
                        .and_then(|r| r.strip_prefix(SUPPRESSED_PREFIX))
                        && let Err((outcome, s)) = self.lift(http, id).await
                    {
                        result.outcomes.push((i, outcome));
                        result.signal = result.signal.take().or(s);
                        continue;
                    }
                    identify.push(i);
                }
                // Consent travels with the identify: the withdrawn purpose's
                // id is denied, so RudderStack blocks the destinations that
                // need it.
                Action::Unsubscribe => identify.push(i),
                Action::Delete => erase.push(i),
                Action::Suppress => suppress.push(i),
            }
        }
        if !identify.is_empty() {
            self.identify(http, batch, &identify, &mut result).await;
        }
        for (kind, indices) in [("suppress_with_delete", erase), ("suppress", suppress)] {
            if indices.is_empty() || matches!(result.signal, Some(DestinationSignal::Pause { .. }))
            {
                continue;
            }
            self.regulate(http, batch, &indices, kind, &mut result)
                .await;
        }
        result
    }

    /// Walks `GET /v2/regulations` (following `paging.next`) until every
    /// distinct ticket is found or the list ends.
    async fn check(&self, http: &Http<'_>, tickets: &[Ticket]) -> CheckResult {
        let mut result = CheckResult::default();
        let Some(token) = self.token() else {
            result.statuses = (0..tickets.len())
                .map(|i| {
                    (
                        i,
                        TicketStatus::Failed {
                            reason: "api_token is not set".into(),
                            retry: false,
                        },
                    )
                })
                .collect();
            return result;
        };
        let wanted: HashSet<&str> = tickets.iter().map(|t| t.ticket.as_str()).collect();
        let mut found: HashMap<String, bool> = HashMap::new();
        let mut next = Some(settings::join(&self.regulation_url, "v2/regulations"));
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            let resp = match http.send(http.client().get(url).bearer_auth(token)).await {
                Ok(r) => r,
                Err(_) => return result, // nothing answered: every ticket is asked again
            };
            result.status = Some(resp.status);
            let class = classify_status(resp.status, &resp.headers, &resp.body);
            if class != Class::Success {
                result.signal = class.signal();
                if let Class::Throttle { .. } = class
                    && result.signal.is_none()
                {
                    result.signal = Some(DestinationSignal::Throttle {
                        retry_after: retry_after(&resp.headers)
                            .unwrap_or(crate::classify::DEFAULT_THROTTLE),
                        reason: class.reason().to_string(),
                    });
                }
                return result;
            }
            let page: Value = resp.json().unwrap_or(Value::Null);
            for r in page["data"].as_array().into_iter().flatten() {
                if let Some(id) = r["id"].as_str()
                    && wanted.contains(id)
                {
                    found.insert(id.to_string(), r["canceled"].as_bool().unwrap_or(false));
                }
            }
            if found.len() == wanted.len() || pages >= MAX_PAGES {
                break;
            }
            next = page
                .pointer("/paging/next")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .and_then(|n| self.regulation_url.join(n).ok());
        }
        for (i, ticket) in tickets.iter().enumerate() {
            let status = match found.get(&ticket.ticket) {
                Some(false) => TicketStatus::Confirmed {
                    record_id: match ticket.item.action {
                        Action::Suppress => Some(format!("{SUPPRESSED_PREFIX}{}", ticket.ticket)),
                        _ => None,
                    },
                },
                Some(true) => TicketStatus::Failed {
                    reason: "the regulation was canceled in RudderStack".into(),
                    retry: true,
                },
                None => TicketStatus::Pending {
                    check_after: CHECK_AFTER,
                },
            };
            result.statuses.push((i, status));
        }
        result
    }
}
