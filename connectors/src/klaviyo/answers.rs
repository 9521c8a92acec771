//! Reading Klaviyo's answers: classification with Klaviyo's own messages,
//! per-profile refusals of a job, the steady window running out, and the
//! outcomes of the several calls one batch may take.

use std::time::Duration;

use super::wire::ErrorDocument;
use crate::classify::{Class, classify_status, summarize_body};
use crate::{BatchResult, DestinationSignal, ItemOutcome, VendorResponse};

/// Per-item outcomes gathered over the calls of one `send`.
pub(super) struct Tally {
    status: Option<u16>,
    outcomes: Vec<Option<ItemOutcome>>,
    signal: Option<DestinationSignal>,
}

impl Tally {
    pub(super) fn new(len: usize) -> Self {
        Self {
            status: None,
            outcomes: vec![None; len],
            signal: None,
        }
    }

    pub(super) fn set(&mut self, i: usize, outcome: ItemOutcome) {
        self.outcomes[i] = Some(outcome);
    }

    pub(super) fn note(&mut self, part: &mut BatchResult) {
        if part.status.is_some() {
            self.status = part.status;
        }
        if self.signal.is_none() {
            self.signal = part.signal.take();
        }
    }

    /// A call's outcomes become these items' outcomes.
    pub(super) fn take(&mut self, indices: &[usize], mut part: BatchResult) {
        self.note(&mut part);
        for (k, outcome) in part.outcomes {
            if let Some(&i) = indices.get(k) {
                self.outcomes[i] = Some(outcome);
            }
        }
    }

    /// A second call for the same items: its failures win, its success
    /// leaves the first call's outcome (a record id, a ticket).
    pub(super) fn combine(&mut self, indices: &[usize], mut part: BatchResult) {
        self.note(&mut part);
        for (k, outcome) in part.outcomes {
            if let Some(&i) = indices.get(k)
                && !matches!(outcome, ItemOutcome::Delivered { .. })
            {
                self.outcomes[i] = Some(outcome);
            }
        }
    }

    /// Items whose call was not made because the destination must wait.
    pub(super) fn hold(&mut self, indices: &[usize]) {
        for &i in indices {
            self.outcomes[i] = Some(ItemOutcome::Retry {
                reason: "not sent: an earlier call of this batch was throttled or refused".into(),
            });
        }
    }

    pub(super) fn stopped(&self) -> bool {
        self.signal.is_some()
    }

    pub(super) fn went_through(&self, i: usize) -> bool {
        matches!(
            self.outcomes[i],
            Some(ItemOutcome::Delivered { .. } | ItemOutcome::Accepted { .. })
        )
    }

    pub(super) fn finish(self) -> BatchResult {
        BatchResult {
            status: self.status,
            outcomes: self
                .outcomes
                .into_iter()
                .enumerate()
                .filter_map(|(i, o)| o.map(|o| (i, o)))
                .collect(),
            signal: self.signal,
        }
    }
}

/// Klaviyo's messages from its error document, else the summary.
pub(super) fn classify(resp: &VendorResponse) -> Class {
    let class = classify_status(resp.status, &resp.headers, &resp.body);
    if class == Class::Success {
        return class;
    }
    let reason = match resp.json::<ErrorDocument>() {
        Ok(doc) if !doc.errors.is_empty() => format!(
            "Klaviyo {}: {}",
            resp.status,
            doc.errors
                .iter()
                .map(|e| e.reason())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        _ => summarize_body(resp.status, &resp.body),
    };
    class.with_reason(reason)
}

/// A refused job: when Klaviyo points at profiles (`/data/attributes/
/// profiles/data/3/...`), only those fail and the others retry without
/// them; otherwise the whole job has the class's outcome.
pub(super) fn job_refusal(resp: &VendorResponse, len: usize, class: Class) -> BatchResult {
    let Class::Permanent { .. } = class else {
        return BatchResult::from_class(len, resp.status, class);
    };
    let errors = resp
        .json::<ErrorDocument>()
        .map(|d| d.errors)
        .unwrap_or_default();
    let mut refused: Vec<(usize, String)> = errors
        .iter()
        .filter_map(|e| Some((e.profile_index()?, e.reason())))
        .filter(|(k, _)| *k < len)
        .collect();
    if refused.is_empty() || refused.len() < errors.len() {
        return BatchResult::from_class(len, resp.status, class);
    }
    refused.sort();
    let outcomes = (0..len)
        .map(|k| {
            let reasons: Vec<&str> = refused
                .iter()
                .filter(|(i, _)| *i == k)
                .map(|(_, r)| r.as_str())
                .collect();
            let outcome = if reasons.is_empty() {
                ItemOutcome::Retry {
                    reason: "another profile of the same Klaviyo job was refused".into(),
                }
            } else {
                ItemOutcome::Permanent {
                    reason: format!("Klaviyo {}: {}", resp.status, reasons.join("; ")),
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

/// A successful answer that spent the last call of the steady window
/// (`RateLimit-Remaining: 0`): wait `RateLimit-Reset` seconds.
pub(super) fn quota_spent(resp: &VendorResponse) -> Option<DestinationSignal> {
    if resp.status == 429 {
        return None;
    }
    let remaining: u64 = resp.header("ratelimit-remaining")?.trim().parse().ok()?;
    if remaining > 0 {
        return None;
    }
    let reset: u64 = resp
        .header("ratelimit-reset")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1);
    Some(DestinationSignal::Throttle {
        retry_after: Duration::from_secs(reset.max(1)),
        reason: format!(
            "Klaviyo: no calls left in this window (RateLimit-Remaining 0, reset in {reset}s)"
        ),
    })
}
