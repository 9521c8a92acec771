//! `segment`: subjects as `identify` events through the Tracking API's
//! `POST /v1/batch` (Basic auth with the source's write key), consent as
//! `context.consent.categoryPreferences`, and deletion and suppression as
//! Public API regulations (`POST /regulations`, Bearer token), which are
//! asynchronous: the item is Accepted with the regulation id and `check`
//! polls `GET /regulations/{regulateId}` until its `overallStatus` ends.
//!
//! Segment takes the regulation types `SUPPRESS_WITH_DELETE` (erasure),
//! `SUPPRESS_ONLY` (withdrawal: Segment drops the user's events from then
//! on) and `UNSUPPRESS`. The suppression is remembered in the subject's
//! record id (`suppressed`), so the next upsert lifts it first: it files
//! `UNSUPPRESS`, and `check` sends the identify once Segment has lifted it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::classify::{Class, classify_status, retry_after, summarize_body};
use crate::settings::{self, Secret};
use crate::tracking::{self, MAX_EVENT_BYTES};
use crate::{
    Action, BatchPolicy, BatchResult, CheckResult, Connector, ConnectorError, ConnectorKind,
    DestinationSignal, Http, Item, ItemOutcome, RateLimit, Ticket, TicketStatus,
};

/// 500 KB per batch request, less room for the envelope.
const MAX_BATCH_BYTES: usize = 500 * 1024 - 1024;
const MAX_BATCH_EVENTS: usize = 2500;
/// The record id of a subject whose suppression Segment confirmed.
pub const SUPPRESSED: &str = "suppressed";
const FIRST_CHECK: Duration = Duration::from_secs(300);
const NEXT_CHECK: Duration = Duration::from_secs(900);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentSettings {
    write_key: Secret,
    #[serde(default = "default_base_url")]
    base_url: String,
    #[serde(default)]
    public_api_token: Option<Secret>,
    #[serde(default = "default_public_api_url")]
    public_api_url: String,
    /// A mapped field to send as `userId` instead of the hub id.
    #[serde(default)]
    user_id_field: Option<String>,
    /// Hub purpose -> Segment consent category id.
    #[serde(default = "default_categories")]
    consent_categories: BTreeMap<String, String>,
}

fn default_base_url() -> String {
    "https://api.segment.io".into()
}

fn default_public_api_url() -> String {
    "https://api.segmentapis.com".into()
}

fn default_categories() -> BTreeMap<String, String> {
    [
        ("analytics", "Analytics"),
        ("advertising", "Advertising"),
        ("functional", "Functional"),
        ("marketing_email", "Marketing"),
        ("data_sharing", "DataSharing"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[derive(Debug)]
pub struct SegmentConnector {
    write_key: Secret,
    batch_url: url::Url,
    public_api_token: Option<Secret>,
    public_api_url: url::Url,
    user_id_field: Option<String>,
    consent_categories: BTreeMap<String, String>,
}

impl SegmentConnector {
    pub fn from_settings(settings: &Value) -> Result<Self, ConnectorError> {
        let s: SegmentSettings = settings::parse(settings)?;
        settings::require("write_key", &s.write_key)?;
        if let Some(token) = &s.public_api_token {
            settings::require("public_api_token", token)?;
        }
        if s.consent_categories.values().any(|c| c.trim().is_empty()) {
            return Err(ConnectorError::Invalid(
                "consent_categories: a category id must not be empty".into(),
            ));
        }
        Ok(Self {
            write_key: s.write_key,
            batch_url: settings::join(&settings::http_url("base_url", &s.base_url)?, "v1/batch"),
            public_api_token: s.public_api_token,
            public_api_url: settings::http_url("public_api_url", &s.public_api_url)?,
            user_id_field: s.user_id_field,
            consent_categories: s.consent_categories,
        })
    }

    fn user_id<'a>(&self, item: &'a Item) -> Option<&'a str> {
        match &self.user_id_field {
            None => Some(item.subject_id.as_str()),
            Some(field) => item
                .fields()
                .and_then(|f| f.get(field))
                .and_then(Value::as_str)
                .or_else(|| item.identity_str(field)),
        }
    }

    /// `categoryPreferences`: a category is granted only when every hub
    /// purpose mapped to it is (consent fails closed).
    fn category_preferences(&self, item: &Item) -> Map<String, Value> {
        let mut prefs: BTreeMap<&str, bool> = BTreeMap::new();
        for (purpose, category) in &self.consent_categories {
            let granted = item.granted(purpose);
            let entry = prefs.entry(category.as_str()).or_insert(true);
            *entry = *entry && granted;
        }
        prefs
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::Bool(v)))
            .collect()
    }

    fn event(&self, item: &Item, user_id: &str) -> Value {
        let mut context = Map::new();
        context.insert(
            "consent".into(),
            json!({"categoryPreferences": self.category_preferences(item)}),
        );
        tracking::identify(
            user_id,
            item.fields().cloned().unwrap_or_default(),
            context,
            &item.delivery_id,
            &tracking::now_rfc3339(),
        )
    }

    /// Identifies for `items` (by index) in one batch call.
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
            let item = &batch[i];
            let Some(user_id) = self.user_id(item) else {
                result
                    .outcomes
                    .push((i, permanent("no userId: the user_id_field is not mapped")));
                continue;
            };
            let event = self.event(item, user_id);
            let size = tracking::event_bytes(&event);
            if size > MAX_EVENT_BYTES {
                result.outcomes.push((
                    i,
                    permanent(&format!(
                        "the identify event is {size} bytes; Segment refuses events over 32 KB"
                    )),
                ));
                continue;
            }
            events.push(event);
            sent.push((i, user_id.to_string()));
        }
        if events.is_empty() {
            return;
        }
        let answer = tracking::post_batch(
            http,
            self.batch_url.clone(),
            self.write_key.expose(),
            events,
        )
        .await;
        match answer {
            Err(e) => result.outcomes.extend(sent.iter().map(|(i, _)| {
                (
                    *i,
                    ItemOutcome::Retry {
                        reason: e.to_string(),
                    },
                )
            })),
            Ok(resp) => {
                result.status = Some(resp.status);
                let class = classify_status(resp.status, &resp.headers, &resp.body);
                signal_of(&class, &resp.headers, &resp.body, result);
                for (i, user_id) in sent {
                    let outcome = match &class {
                        Class::Success => ItemOutcome::Delivered {
                            record_id: Some(user_id),
                        },
                        other => other.item_outcome(),
                    };
                    result.outcomes.push((i, outcome));
                }
            }
        }
    }

    /// One regulation for the users of `indices`.
    async fn regulate(
        &self,
        http: &Http<'_>,
        batch: &[Item],
        indices: &[usize],
        regulation_type: &str,
        result: &mut BatchResult,
    ) {
        let Some(token) = &self.public_api_token else {
            for &i in indices {
                result.outcomes.push((
                    i,
                    permanent("public_api_token is not set: Segment deletions and suppressions need the Public API"),
                ));
            }
            return;
        };
        let mut users = Vec::new();
        for &i in indices {
            match self.user_id(&batch[i]) {
                Some(u) => users.push((i, u.to_string())),
                None => result.outcomes.push((
                    i,
                    permanent("no userId: the user_id_field was never delivered"),
                )),
            }
        }
        if users.is_empty() {
            return;
        }
        let mut ids: Vec<&str> = users.iter().map(|(_, u)| u.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let body =
            json!({"regulationType": regulation_type, "subjectType": "USER_ID", "subjectIds": ids});
        let request = http
            .client()
            .post(settings::join(&self.public_api_url, "regulations"))
            .bearer_auth(token.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/vnd.segment.v1+json")
            .body(body.to_string());
        let resp = match http.send(request).await {
            Ok(r) => r,
            Err(e) => {
                result.outcomes.extend(users.iter().map(|(i, _)| {
                    (
                        *i,
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
        signal_of(&class, &resp.headers, &resp.body, result);
        let regulate_id = resp.json::<Value>().ok().and_then(|v| {
            v.pointer("/data/regulateId")
                .and_then(Value::as_str)
                .map(String::from)
        });
        for (i, _) in users {
            let outcome = match (&class, &regulate_id) {
                (Class::Success, Some(id)) => ItemOutcome::Accepted {
                    ticket: id.clone(),
                    check_after: FIRST_CHECK,
                },
                (Class::Success, None) => ItemOutcome::Retry {
                    reason: summarize_body(resp.status, &resp.body),
                },
                (other, _) => other.item_outcome(),
            };
            result.outcomes.push((i, outcome));
        }
    }

    async fn regulation_status(
        &self,
        http: &Http<'_>,
        id: &str,
    ) -> Result<(u16, Result<String, Class>), crate::CallError> {
        let token = self
            .public_api_token
            .as_ref()
            .map(Secret::expose)
            .unwrap_or("");
        let url = settings::join(&self.public_api_url, &format!("regulations/{id}"));
        let resp = http
            .send(
                http.client()
                    .get(url)
                    .bearer_auth(token)
                    .header(reqwest::header::ACCEPT, "application/vnd.segment.v1+json"),
            )
            .await?;
        let class = classify_status(resp.status, &resp.headers, &resp.body);
        if class != Class::Success {
            return Ok((resp.status, Err(class)));
        }
        let status = resp
            .json::<Value>()
            .ok()
            .and_then(|v| {
                v.pointer("/data/regulation/overallStatus")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .unwrap_or_default();
        Ok((resp.status, Ok(status)))
    }
}

fn permanent(reason: &str) -> ItemOutcome {
    ItemOutcome::Permanent {
        reason: reason.to_string(),
    }
}

/// Throttle and pause from an answer. A Public API 429 says how long in
/// `Retry-After`, in its body (`errors[].data.msBeforeNext`) or in
/// `X-RateLimit-Reset` (a date).
fn signal_of(
    class: &Class,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    result: &mut BatchResult,
) {
    let signal = throttle_or_pause(class, headers, body);
    if signal.is_some() {
        result.signal = signal;
    }
}

fn throttle_or_pause(
    class: &Class,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> Option<DestinationSignal> {
    match class {
        Class::Throttle { reason, .. } => {
            let from_body = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
                v.pointer("/errors/0/data/msBeforeNext")
                    .and_then(Value::as_u64)
                    .map(Duration::from_millis)
            });
            let from_reset = headers
                .get("x-ratelimit-reset")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok())
                .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok());
            Some(DestinationSignal::Throttle {
                retry_after: retry_after(headers)
                    .or(from_body)
                    .or(from_reset)
                    .unwrap_or(crate::classify::DEFAULT_THROTTLE),
                reason: reason.clone(),
            })
        }
        other => other.signal(),
    }
}

#[async_trait::async_trait]
impl Connector for SegmentConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Segment
    }

    fn batch_policy(&self) -> BatchPolicy {
        BatchPolicy {
            max_items: MAX_BATCH_EVENTS,
            max_bytes: Some(MAX_BATCH_BYTES),
            mixed_actions: true,
        }
    }

    /// Segment asks for at most 1,000 requests a second per workspace.
    fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit::per_second(1000))
    }

    fn identity_fields(&self) -> Vec<String> {
        self.user_id_field.iter().cloned().collect()
    }

    fn item_bytes(&self, item: &Item) -> usize {
        match &item.action {
            Action::Upsert(_) | Action::Unsubscribe => tracking::event_bytes(
                &self.event(item, self.user_id(item).unwrap_or(&item.subject_id)),
            ),
            // A regulation carries only the user id.
            _ => item.subject_id.len() + 4,
        }
    }

    async fn send(&self, http: &Http<'_>, batch: &[Item]) -> BatchResult {
        let mut identify = Vec::new();
        let mut by_regulation: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, item) in batch.iter().enumerate() {
            match &item.action {
                Action::Upsert(_) if item.record_id.as_deref() == Some(SUPPRESSED) => {
                    by_regulation.entry("UNSUPPRESS").or_default().push(i)
                }
                Action::Upsert(_) | Action::Unsubscribe => identify.push(i),
                Action::Delete => by_regulation
                    .entry("SUPPRESS_WITH_DELETE")
                    .or_default()
                    .push(i),
                Action::Suppress => by_regulation.entry("SUPPRESS_ONLY").or_default().push(i),
            }
        }
        let mut result = BatchResult::default();
        if !identify.is_empty() {
            self.identify(http, batch, &identify, &mut result).await;
        }
        for (regulation_type, indices) in by_regulation {
            if matches!(result.signal, Some(DestinationSignal::Pause { .. })) {
                break; // the rest is retried after the pause
            }
            self.regulate(http, batch, &indices, regulation_type, &mut result)
                .await;
        }
        result
    }

    async fn check(&self, http: &Http<'_>, tickets: &[Ticket]) -> CheckResult {
        let mut result = CheckResult::default();
        let mut answers: HashMap<&str, TicketStatus> = HashMap::new();
        let mut unsuppressed = Vec::new();
        for (i, ticket) in tickets.iter().enumerate() {
            let status = match answers.get(ticket.ticket.as_str()) {
                Some(s) => s.clone(),
                None => {
                    let status = match self.regulation_status(http, &ticket.ticket).await {
                        // No answer: ask again soon.
                        Err(_) => TicketStatus::Pending {
                            check_after: Duration::from_secs(60),
                        },
                        Ok((code, answer)) => {
                            result.status = Some(code);
                            match answer {
                                Ok(overall) => ticket_status(&overall),
                                Err(class) => {
                                    result.signal = result.signal.take().or_else(|| {
                                        throttle_or_pause(&class, &Default::default(), &[])
                                    });
                                    match class {
                                        Class::Permanent { reason } => TicketStatus::Failed {
                                            reason,
                                            retry: true,
                                        },
                                        _ => TicketStatus::Pending {
                                            check_after: NEXT_CHECK,
                                        },
                                    }
                                }
                            }
                        }
                    };
                    answers.insert(&ticket.ticket, status.clone());
                    status
                }
            };
            let status = match (&ticket.item.action, status) {
                (Action::Suppress, TicketStatus::Confirmed { .. }) => TicketStatus::Confirmed {
                    record_id: Some(SUPPRESSED.into()),
                },
                (Action::Upsert(_), TicketStatus::Confirmed { .. }) => {
                    // Lifted: now the identify goes out.
                    unsuppressed.push(i);
                    continue;
                }
                (_, s) => s,
            };
            result.statuses.push((i, status));
        }
        if !unsuppressed.is_empty() {
            let items: Vec<Item> = unsuppressed
                .iter()
                .map(|&i| Item {
                    record_id: None,
                    ..tickets[i].item.clone()
                })
                .collect();
            let indices: Vec<usize> = (0..items.len()).collect();
            let mut sent = BatchResult::default();
            self.identify(http, &items, &indices, &mut sent).await;
            result.signal = result.signal.or(sent.signal);
            for (j, outcome) in sent.outcomes {
                let status = match outcome {
                    ItemOutcome::Delivered { record_id } => TicketStatus::Confirmed { record_id },
                    ItemOutcome::Permanent { reason } => TicketStatus::Failed {
                        reason,
                        retry: false,
                    },
                    _ => TicketStatus::Pending {
                        check_after: Duration::from_secs(60),
                    },
                };
                result.statuses.push((unsuppressed[j], status));
            }
        }
        result
    }
}

/// Segment's `overallStatus` as a ticket's state. `PARTIAL_SUCCESS` means
/// Segment's own part is done and some downstream destination did not
/// confirm, which Segment documents as best effort: confirmed.
fn ticket_status(overall: &str) -> TicketStatus {
    match overall {
        "FINISHED" | "PARTIAL_SUCCESS" => TicketStatus::Confirmed { record_id: None },
        "FAILED" => TicketStatus::Failed {
            reason: "Segment reports the regulation FAILED".into(),
            retry: true,
        },
        "INVALID" | "NOT_SUPPORTED" => TicketStatus::Failed {
            reason: format!("Segment reports the regulation {overall}"),
            retry: false,
        },
        _ => TicketStatus::Pending {
            check_after: NEXT_CHECK,
        },
    }
}
