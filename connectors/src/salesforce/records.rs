//! Records: upsert and withdrawal through sObject Collections by external
//! id, and erasure by record ids (or by external id).

use serde_json::{Map, Value};

use super::{MAX_RECORDS, SalesforceConnector, is_record_id, wire};
use crate::partition::Merged;
use crate::settings::Secret;
use crate::{BatchResult, Http, Item, ItemOutcome};

impl SalesforceConnector {
    /// The record an upsert sends: the mapped fields, the hub id as the
    /// external id, and the opt-out mirrored from consent.
    pub(super) fn upsert_record(
        &self,
        item: &Item,
        fields: &Map<String, Value>,
    ) -> Map<String, Value> {
        let mut record = Map::new();
        record.insert(
            "attributes".into(),
            serde_json::json!({ "type": self.sobject }),
        );
        for (name, value) in fields {
            let reserved = name.eq_ignore_ascii_case("attributes")
                || name.eq_ignore_ascii_case("id")
                || name.eq_ignore_ascii_case(&self.external_id_field);
            if !reserved {
                record.insert(name.clone(), value.clone());
            }
        }
        record.insert(
            self.external_id_field.clone(),
            Value::String(item.subject_id.clone()),
        );
        if let Some(purpose) = &self.email_purpose {
            let mapped = record
                .keys()
                .any(|k| k.eq_ignore_ascii_case(&self.opt_out_field));
            if !mapped {
                record.insert(
                    self.opt_out_field.clone(),
                    Value::Bool(!item.granted(purpose)),
                );
            }
        }
        record
    }

    pub(super) fn opt_out_record(&self, item: &Item) -> Map<String, Value> {
        let mut record = Map::new();
        record.insert(
            "attributes".into(),
            serde_json::json!({ "type": self.sobject }),
        );
        record.insert(
            self.external_id_field.clone(),
            Value::String(item.subject_id.clone()),
        );
        record.insert(self.opt_out_field.clone(), Value::Bool(true));
        record
    }

    /// Upserts `records` (one per item) by external id, in one call.
    pub(super) async fn upsert(
        &self,
        http: &Http<'_>,
        records: Vec<Map<String, Value>>,
    ) -> BatchResult {
        let len = records.len();
        let body = match serde_json::to_vec(&wire::Collection {
            all_or_none: false,
            records,
        }) {
            Ok(b) => b,
            Err(e) => {
                return BatchResult::uniform(
                    len,
                    None,
                    ItemOutcome::Permanent {
                        reason: format!("could not encode the records: {e}"),
                    },
                );
            }
        };
        let segments = [
            "composite",
            "sobjects",
            self.sobject.as_str(),
            self.external_id_field.as_str(),
        ];
        let build = |instance: &url::Url, token: &Secret| {
            http.client()
                .patch(self.data_url(instance, &segments))
                .bearer_auth(token.expose())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, "application/json")
                .body(body.clone())
        };
        let resp = match self.call(http, &build).await {
            Ok(resp) => resp,
            Err(stop) => return stop.into_result(len),
        };
        let mut result = match (resp.status, resp.json::<Vec<wire::SaveResult>>()) {
            // Results come in request order, one per record.
            (200, Ok(results)) if results.len() == len => BatchResult {
                status: Some(200),
                outcomes: results
                    .iter()
                    .map(wire::record_outcome)
                    .enumerate()
                    .collect(),
                signal: None,
            },
            (200..=299, _) => BatchResult::uniform(
                len,
                Some(resp.status),
                ItemOutcome::Retry {
                    reason: format!(
                        "HTTP {}: the answer does not hold one result per record",
                        resp.status
                    ),
                },
            ),
            _ => BatchResult::from_class(len, resp.status, wire::classify(&resp)),
        };
        if result.signal.is_none() {
            result.signal = wire::usage_signal(&resp);
        }
        result
    }

    pub(super) async fn delete(&self, http: &Http<'_>, items: &[&Item]) -> BatchResult {
        let mut out = Merged::new();
        let (by_id, by_external): (Vec<usize>, Vec<usize>) = (0..items.len())
            .partition(|&k| items[k].record_id.as_deref().is_some_and(is_record_id));
        for chunk in by_id.chunks(MAX_RECORDS) {
            if out.stopped() {
                out.not_sent(chunk);
                continue;
            }
            let ids: Vec<&str> = chunk
                .iter()
                .filter_map(|&k| items[k].record_id.as_deref())
                .collect();
            out.add(chunk, self.delete_by_ids(http, &ids).await);
        }
        for &k in &by_external {
            if out.stopped() {
                out.not_sent(&[k]);
                continue;
            }
            out.add(&[k], self.delete_by_external_id(http, items[k]).await);
        }
        out.finish()
    }

    async fn delete_by_ids(&self, http: &Http<'_>, ids: &[&str]) -> BatchResult {
        let query = format!("ids={}&allOrNone=false", ids.join(","));
        let build = |instance: &url::Url, token: &Secret| {
            let mut url = self.data_url(instance, &["composite", "sobjects"]);
            url.set_query(Some(&query));
            http.client()
                .delete(url)
                .bearer_auth(token.expose())
                .header(reqwest::header::ACCEPT, "application/json")
        };
        let resp = match self.call(http, &build).await {
            Ok(resp) => resp,
            Err(stop) => return stop.into_result(ids.len()),
        };
        let results = match (resp.status, resp.json::<Vec<wire::SaveResult>>()) {
            (200, Ok(results)) => results,
            (200..=299, _) => {
                return BatchResult::uniform(
                    ids.len(),
                    Some(resp.status),
                    ItemOutcome::Retry {
                        reason: format!("HTTP {}: unreadable delete results", resp.status),
                    },
                );
            }
            _ => return BatchResult::from_class(ids.len(), resp.status, wire::classify(&resp)),
        };
        // Matched by record id (15-character ids match their 18-character
        // form); a result without an id by its place, which Salesforce keeps.
        let same = |a: &str, b: &str| a.get(..15).is_some() && a.get(..15) == b.get(..15);
        let outcomes = ids
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let result = results
                    .iter()
                    .find(|r| r.id.as_deref().is_some_and(|rid| same(rid, id)))
                    .or_else(|| {
                        (results.len() == ids.len())
                            .then(|| &results[k])
                            .filter(|r| r.id.is_none())
                    });
                let outcome = match result {
                    Some(r) if r.success || wire::already_deleted(r) => {
                        ItemOutcome::Delivered { record_id: None }
                    }
                    Some(r) => wire::record_outcome(r),
                    None => ItemOutcome::Retry {
                        reason: "Salesforce's answer does not mention this record".into(),
                    },
                };
                (k, outcome)
            })
            .collect();
        BatchResult {
            status: Some(resp.status),
            outcomes,
            signal: wire::usage_signal(&resp),
        }
    }

    async fn delete_by_external_id(&self, http: &Http<'_>, item: &Item) -> BatchResult {
        let segments = [
            "sobjects",
            self.sobject.as_str(),
            self.external_id_field.as_str(),
            item.subject_id.as_str(),
        ];
        let build = |instance: &url::Url, token: &Secret| {
            http.client()
                .delete(self.data_url(instance, &segments))
                .bearer_auth(token.expose())
                .header(reqwest::header::ACCEPT, "application/json")
        };
        let resp = match self.call(http, &build).await {
            Ok(resp) => resp,
            Err(stop) => return stop.into_result(1),
        };
        let mut result = match resp.status {
            // 404: no record holds this external id; nothing to erase.
            200..=299 | 404 => BatchResult::uniform(
                1,
                Some(resp.status),
                ItemOutcome::Delivered { record_id: None },
            ),
            _ => BatchResult::from_class(1, resp.status, wire::classify(&resp)),
        };
        if result.signal.is_none() {
            result.signal = wire::usage_signal(&resp);
        }
        result
    }
}
