//! Email consent in Klaviyo: subscribe and unsubscribe bulk jobs on the
//! configured list (account-wide without one). Klaviyo answers them 202
//! with no body and offers nothing to poll, so 202 is delivery.

use serde_json::{Value, json};

use super::answers::{Tally, classify, job_refusal, quota_spent};
use super::{CUSTOM_SOURCE, EMAIL, KlaviyoConnector, MAX_UNSUBSCRIBE};
use crate::classify::Class;
use crate::{BatchResult, Http, Item, ItemOutcome};

impl KlaviyoConnector {
    /// A subscribe (`consent` true) or unsubscribe job for these items'
    /// emails on the list (account-wide without one). Klaviyo answers 202
    /// with no body and offers nothing to poll for these jobs, so 202 is
    /// as far as delivery can be known.
    pub(super) async fn subscription_job(
        &self,
        http: &Http<'_>,
        emails: &[&str],
        subscribe: bool,
    ) -> BatchResult {
        let (kind, consent, path) = if subscribe {
            (
                "profile-subscription-bulk-create-job",
                "SUBSCRIBED",
                "/api/profile-subscription-bulk-create-jobs",
            )
        } else {
            (
                "profile-subscription-bulk-delete-job",
                "UNSUBSCRIBED",
                "/api/profile-subscription-bulk-delete-jobs",
            )
        };
        let profiles: Vec<Value> = emails
            .iter()
            .map(|email| {
                json!({"type": "profile", "attributes": {
                    "email": email,
                    "subscriptions": {"email": {"marketing": {"consent": consent}}}
                }})
            })
            .collect();
        let mut data = json!({"type": kind, "attributes": {"profiles": {"data": profiles}}});
        if subscribe {
            data["attributes"]["custom_source"] = Value::from(CUSTOM_SOURCE);
        }
        if let Some(list) = &self.list_id {
            data["relationships"] = json!({"list": {"data": {"type": "list", "id": list}}});
        }
        let resp = match self.post(http, path, &json!({ "data": data })).await {
            Ok(resp) => resp,
            Err(e) => return BatchResult::transport(emails.len(), &e),
        };
        let mut result = match classify(&resp) {
            Class::Success => BatchResult::uniform(
                emails.len(),
                Some(resp.status),
                ItemOutcome::Delivered { record_id: None },
            ),
            class => job_refusal(&resp, emails.len(), class),
        };
        result.signal = result.signal.or_else(|| quota_spent(&resp));
        result
    }

    pub(super) async fn consent_call(
        &self,
        http: &Http<'_>,
        chunk: &[(usize, &str)],
        subscribe: bool,
        tally: &mut Tally,
    ) {
        let indices: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
        if tally.stopped() {
            tally.hold(&indices);
            return;
        }
        let emails: Vec<&str> = chunk.iter().map(|(_, e)| *e).collect();
        let part = self.subscription_job(http, &emails, subscribe).await;
        tally.combine(&indices, part);
    }

    pub(super) async fn send_withdrawals(
        &self,
        http: &Http<'_>,
        batch: &[Item],
        indices: &[usize],
        tally: &mut Tally,
    ) {
        let mut addressed = Vec::new();
        for &i in indices {
            match batch[i]
                .identity_str(EMAIL)
                .map(str::trim)
                .filter(|e| !e.is_empty())
            {
                Some(email) => addressed.push((i, email)),
                None => tally.set(
                    i,
                    ItemOutcome::Permanent {
                        reason:
                            "no email was delivered for this subject: Klaviyo unsubscribes by email"
                                .into(),
                    },
                ),
            }
        }
        for chunk in addressed.chunks(MAX_UNSUBSCRIBE) {
            let indices: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
            if tally.stopped() {
                tally.hold(&indices);
                continue;
            }
            let emails: Vec<&str> = chunk.iter().map(|(_, e)| *e).collect();
            let mut part = self.subscription_job(http, &emails, false).await;
            for (k, outcome) in part.outcomes.iter_mut() {
                if let ItemOutcome::Delivered { record_id } = outcome {
                    *record_id = batch[indices[*k]].record_id.clone();
                }
            }
            tally.take(&indices, part);
        }
    }
}
