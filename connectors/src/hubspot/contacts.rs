//! Contacts: batch upsert by the id property, and GDPR delete.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

use super::{HubSpotConnector, whole_call, wire};
use crate::partition::Merged;
use crate::{BatchResult, Http, Item, ItemOutcome, VendorResponse};

impl HubSpotConnector {
    pub(super) async fn upsert(&self, http: &Http<'_>, items: &[&Item]) -> BatchResult {
        let mut out = Merged::new();
        let mut inputs = Vec::new();
        let mut sent = Vec::new();
        let mut keys = HashSet::new();
        let mut traces = HashSet::new();
        for (k, item) in items.iter().enumerate() {
            let properties = match item.fields().map(properties) {
                Some(Ok(p)) => p,
                Some(Err(reason)) => {
                    out.set(k, ItemOutcome::Permanent { reason });
                    continue;
                }
                None => {
                    out.set(
                        k,
                        ItemOutcome::Permanent {
                            reason: "not an upsert".into(),
                        },
                    );
                    continue;
                }
            };
            let Some(id) = properties
                .get(&self.id_property)
                .filter(|v| !v.trim().is_empty())
                .cloned()
            else {
                out.set(
                    k,
                    ItemOutcome::Permanent {
                        reason: format!(
                            "the id property `{}` has no value for this subject",
                            self.id_property
                        ),
                    },
                );
                continue;
            };
            // HubSpot refuses a whole batch that names one contact twice.
            if !keys.insert(self.key(&self.id_property, &id))
                || !traces.insert(item.delivery_id.clone())
            {
                out.set(
                    k,
                    ItemOutcome::Retry {
                        reason: format!(
                            "another item of this batch has the same {}; sent after it",
                            self.id_property
                        ),
                    },
                );
                continue;
            }
            inputs.push(wire::UpsertInput {
                id,
                id_property: self.id_property.clone(),
                object_write_trace_id: item.delivery_id.clone(),
                properties,
            });
            sent.push(k);
        }
        if inputs.is_empty() {
            return out.finish();
        }
        // (trace id, matching key) of each input, for reading the answer.
        let sent_keys: Vec<(String, String)> = inputs
            .iter()
            .map(|i| {
                (
                    i.object_write_trace_id.clone(),
                    self.key(&i.id_property, &i.id),
                )
            })
            .collect();
        let request = self
            .post(http, "/crm/v3/objects/contacts/batch/upsert")
            .json(&wire::UpsertBatch { inputs });
        let part = match http.send(request).await {
            Err(e) => BatchResult::transport(sent.len(), &e),
            Ok(resp) if matches!(resp.status, 200 | 207) => self.read_upsert(&resp, &sent_keys),
            Ok(resp) => whole_call(&resp, sent.len()),
        };
        out.add(&sent, part);
        out.finish()
    }

    /// Matches results and errors to inputs by trace id, else by the id
    /// property's value; an input HubSpot does not mention retries.
    fn read_upsert(&self, resp: &VendorResponse, inputs: &[(String, String)]) -> BatchResult {
        let Ok(answer) = resp.json::<wire::BatchAnswer<wire::UpsertResult>>() else {
            return BatchResult::uniform(
                inputs.len(),
                Some(resp.status),
                ItemOutcome::Retry {
                    reason: format!("HTTP {} without a readable batch answer", resp.status),
                },
            );
        };
        let by_trace: HashMap<&str, usize> = inputs
            .iter()
            .enumerate()
            .map(|(k, (trace, _))| (trace.as_str(), k))
            .collect();
        let by_key: HashMap<&str, usize> = inputs
            .iter()
            .enumerate()
            .map(|(k, (_, key))| (key.as_str(), k))
            .collect();
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; inputs.len()];
        for result in &answer.results {
            let k = result
                .object_write_trace_id
                .as_deref()
                .and_then(|t| by_trace.get(t))
                .or_else(|| {
                    result
                        .properties
                        .get(&self.id_property)
                        .and_then(Value::as_str)
                        .and_then(|v| by_key.get(self.key(&self.id_property, v).as_str()))
                });
            if let Some(&k) = k {
                outcomes[k] = Some(ItemOutcome::Delivered {
                    record_id: Some(result.id.clone()),
                });
            }
        }
        let mut unmatched = Vec::new();
        for error in &answer.errors {
            let mut ks: Vec<usize> = error
                .context_values("objectWriteTraceId")
                .into_iter()
                .filter_map(|t| by_trace.get(t).copied())
                .collect();
            if ks.is_empty() {
                ks = error
                    .context_values("ids")
                    .into_iter()
                    .filter_map(|v| by_key.get(self.key(&self.id_property, v).as_str()).copied())
                    .collect();
            }
            if ks.is_empty() {
                unmatched.push(error.reason());
            }
            for k in ks {
                outcomes[k] = Some(if error.is_temporary() {
                    ItemOutcome::Retry {
                        reason: error.reason(),
                    }
                } else {
                    ItemOutcome::Permanent {
                        reason: error.reason(),
                    }
                });
            }
        }
        let missing = if unmatched.is_empty() {
            "HubSpot's answer does not mention this input".to_string()
        } else {
            format!(
                "HubSpot's answer has errors for no named input: {}",
                unmatched.join("; ")
            )
        };
        BatchResult {
            status: Some(resp.status),
            outcomes: outcomes
                .into_iter()
                .enumerate()
                .map(|(k, o)| {
                    (
                        k,
                        o.unwrap_or_else(|| ItemOutcome::Retry {
                            reason: missing.clone(),
                        }),
                    )
                })
                .collect(),
            signal: None,
        }
    }

    pub(super) async fn delete(&self, http: &Http<'_>, items: &[&Item]) -> BatchResult {
        let mut out = Merged::new();
        for (k, item) in items.iter().enumerate() {
            if out.stopped() {
                out.not_sent(&[k]);
                continue;
            }
            let email = item.identity_str("email").filter(|e| !e.trim().is_empty());
            let by_property = item
                .identity_str(&self.id_property)
                .filter(|v| !v.trim().is_empty());
            let body = match (item.record_id.as_deref(), email, by_property) {
                (Some(id), _, _) => wire::GdprDelete {
                    object_id: id,
                    id_property: None,
                },
                (None, Some(email), _) => wire::GdprDelete {
                    object_id: email,
                    id_property: Some("email"),
                },
                (None, None, Some(value)) => wire::GdprDelete {
                    object_id: value,
                    id_property: Some(&self.id_property),
                },
                (None, None, None) => {
                    out.set(
                        k,
                        ItemOutcome::Permanent {
                            reason: format!(
                                "no HubSpot record id, email or {} recorded for this subject",
                                self.id_property
                            ),
                        },
                    );
                    continue;
                }
            };
            let request = self
                .post(http, "/crm/v3/objects/contacts/gdpr-delete")
                .json(&body);
            let part = match http.send(request).await {
                Err(e) => BatchResult::transport(1, &e),
                // Not there (any more): nothing left to erase.
                Ok(resp) if resp.status == 404 => {
                    BatchResult::uniform(1, Some(404), ItemOutcome::Delivered { record_id: None })
                }
                Ok(resp) => whole_call(&resp, 1),
            };
            out.add(&[k], part);
        }
        out.finish()
    }
}

/// Mapped fields as HubSpot property values, which are all text: numbers
/// and booleans as written, null as "" (clears the property), lists joined
/// by `;` (multiple checkboxes).
fn properties(fields: &Map<String, Value>) -> Result<BTreeMap<String, String>, String> {
    fields
        .iter()
        .map(|(name, value)| Ok((name.clone(), property_value(name, value)?)))
        .collect()
}

fn property_value(name: &str, value: &Value) -> Result<String, String> {
    let scalar = |v: &Value| match v {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    match value {
        Value::Array(values) => values
            .iter()
            .map(scalar)
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(";")),
        other => scalar(other),
    }
    .ok_or_else(|| {
        format!("field `{name}`: HubSpot properties take text, numbers, booleans or lists of them")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_values_are_text() {
        let fields: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "email": "ada@example.com", "age": 36, "vip": true, "gone": null,
            "tags": ["a", "b"]
        }))
        .unwrap();
        let p = properties(&fields).unwrap();
        assert_eq!(p["age"], "36");
        assert_eq!(p["vip"], "true");
        assert_eq!(p["gone"], "");
        assert_eq!(p["tags"], "a;b");
        let nested: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"address": {"city": "x"}})).unwrap();
        assert!(properties(&nested).unwrap_err().contains("`address`"));
    }
}
