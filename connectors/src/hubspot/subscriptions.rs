//! Withdrawal: opting the contacts' emails out of all email
//! subscriptions (communication preferences v4, one batch call).

use std::collections::{HashMap, HashSet};

use super::{HubSpotConnector, whole_call, wire};
use crate::partition::Merged;
use crate::settings;
use crate::{BatchResult, Http, Item, ItemOutcome, VendorResponse};

impl HubSpotConnector {
    pub(super) async fn unsubscribe(&self, http: &Http<'_>, items: &[&Item]) -> BatchResult {
        let mut out = Merged::new();
        let mut emails: Vec<String> = Vec::new();
        let mut positions: Vec<(usize, String)> = Vec::new();
        for (k, item) in items.iter().enumerate() {
            match item.identity_str("email").filter(|e| !e.trim().is_empty()) {
                // A contact without an email gets no email to opt out of.
                None => out.set(
                    k,
                    ItemOutcome::Delivered {
                        record_id: item.record_id.clone(),
                    },
                ),
                Some(email) => {
                    let key = self.key("email", email);
                    if !emails.contains(&key) {
                        emails.push(key.clone());
                    }
                    positions.push((k, key));
                }
            }
        }
        if emails.is_empty() {
            return out.finish();
        }
        let mut url = settings::join(
            &self.base,
            "/communication-preferences/v4/statuses/batch/unsubscribe-all",
        );
        url.set_query(Some("channel=EMAIL"));
        let request = self.post_to(http, url).json(&wire::StringInputs {
            inputs: emails.iter().map(String::as_str).collect(),
        });
        let sent: Vec<usize> = positions.iter().map(|(k, _)| *k).collect();
        let part = match http.send(request).await {
            Err(e) => BatchResult::transport(sent.len(), &e),
            Ok(resp) if matches!(resp.status, 200 | 207) => {
                let keys: Vec<&str> = positions.iter().map(|(_, e)| e.as_str()).collect();
                let records: Vec<Option<String>> =
                    sent.iter().map(|&k| items[k].record_id.clone()).collect();
                read_opt_out(&resp, &keys, &records)
            }
            Ok(resp) => whole_call(&resp, sent.len()),
        };
        out.add(&sent, part);
        out.finish()
    }
}

/// Matches opted-out subscribers to items by email. In a 200 every input
/// succeeded; errors that name an email fail that item.
fn read_opt_out(resp: &VendorResponse, keys: &[&str], records: &[Option<String>]) -> BatchResult {
    let answer = resp.json::<wire::BatchAnswer<wire::OptOutResult>>().ok();
    let done: HashSet<String> = answer
        .iter()
        .flat_map(|a| a.results.iter())
        .map(|r| r.subscriber_id_string.trim().to_lowercase())
        .collect();
    let mut failed: HashMap<&str, String> = HashMap::new();
    let mut unmatched = Vec::new();
    for error in answer.iter().flat_map(|a| a.errors.iter()) {
        let named: Vec<&str> = error
            .all_context_values()
            .into_iter()
            .filter_map(|v| {
                keys.iter()
                    .copied()
                    .find(|k| k.eq_ignore_ascii_case(v.trim()))
            })
            .collect();
        if named.is_empty() {
            unmatched.push(error.reason());
        }
        for key in named {
            failed.insert(key, error.reason());
        }
    }
    let outcomes = keys
        .iter()
        .enumerate()
        .map(|(k, key)| {
            let outcome = if let Some(reason) = failed.get(key) {
                ItemOutcome::Permanent {
                    reason: reason.clone(),
                }
            } else if done.contains(*key) || (resp.status == 200 && unmatched.is_empty()) {
                ItemOutcome::Delivered {
                    record_id: records[k].clone(),
                }
            } else {
                ItemOutcome::Retry {
                    reason: if unmatched.is_empty() {
                        "HubSpot's answer does not mention this email".into()
                    } else {
                        unmatched.join("; ")
                    },
                }
            };
            (k, outcome)
        })
        .collect();
    BatchResult {
        status: Some(resp.status),
        outcomes,
        signal: None,
    }
}
