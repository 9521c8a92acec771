//! One batch item's part of the mutation document, and what the answer
//! to those mutations means for it.

use serde_json::{Value, json};

use super::document::{self, Document};
use super::{
    CONSENT_SELECTION, CUSTOMER_SELECTION, DeleteWith, ERASURE_CHECK, Known, MUTATION_COST,
    ShopifyConnector, fields,
};
use crate::{Action, Item, ItemOutcome};

/// The aliases an item's mutations went under, and what it becomes on success.
#[derive(Debug, Default)]
pub(super) struct Plan {
    aliases: Vec<String>,
    /// The alias whose `customer.id` is the record id (a create).
    creates: Option<String>,
    erasure: bool,
}

impl ShopifyConnector {
    /// Adds item `i`'s mutations to `doc`; `Err` is its outcome when it
    /// needs no call (nothing to change at Shopify, or refused as mapped).
    pub(super) fn plan(
        &self,
        i: usize,
        item: &Item,
        known: &Known,
        doc: &mut Document,
    ) -> Result<Plan, ItemOutcome> {
        let mut plan = Plan::default();
        match &item.action {
            Action::Upsert(fields) => {
                let mut input = match fields::customer_input(fields, &self.namespace) {
                    Ok(input) => input,
                    Err(reason) => return Err(ItemOutcome::Permanent { reason }),
                };
                let email = fields.get("email").is_some_and(|v| v.is_string());
                let phone = fields.get("phone").is_some_and(|v| v.is_string());
                match &known.id {
                    None => {
                        // Consent rides in the create; unsubscribed is
                        // Shopify's default, so only a grant is sent.
                        if email && item.granted(&self.email_purpose) {
                            input.insert("emailMarketingConsent".into(), self.consent(true));
                        }
                        if phone && item.granted(&self.sms_purpose) {
                            input.insert("smsMarketingConsent".into(), self.consent(true));
                        }
                        let alias = format!("c{i}");
                        doc.add(
                            &alias,
                            "customerCreate",
                            "input",
                            "CustomerInput!",
                            input.into(),
                            CUSTOMER_SELECTION,
                            MUTATION_COST,
                        );
                        plan.creates = Some(alias.clone());
                        plan.aliases.push(alias);
                    }
                    Some(id) => {
                        input.insert("id".into(), json!(id));
                        let alias = format!("u{i}");
                        doc.add(
                            &alias,
                            "customerUpdate",
                            "input",
                            "CustomerInput!",
                            input.into(),
                            CUSTOMER_SELECTION,
                            MUTATION_COST,
                        );
                        plan.aliases.push(alias);
                        if email {
                            let alias = format!("e{i}");
                            doc.add(&alias, "customerEmailMarketingConsentUpdate", "input",
                                "CustomerEmailMarketingConsentUpdateInput!",
                                json!({"customerId": id, "emailMarketingConsent": self.consent(item.granted(&self.email_purpose))}),
                                CONSENT_SELECTION, MUTATION_COST);
                            plan.aliases.push(alias);
                        }
                        if phone {
                            let alias = format!("s{i}");
                            doc.add(&alias, "customerSmsMarketingConsentUpdate", "input",
                                "CustomerSmsMarketingConsentUpdateInput!",
                                json!({"customerId": id, "smsMarketingConsent": self.consent(item.granted(&self.sms_purpose))}),
                                CONSENT_SELECTION, MUTATION_COST);
                            plan.aliases.push(alias);
                        }
                    }
                }
            }
            Action::Suppress | Action::Unsubscribe => {
                let Some(id) = known.id.clone() else {
                    return Err(ItemOutcome::Delivered { record_id: None });
                };
                if known.has_email {
                    let alias = format!("e{i}");
                    doc.add(
                        &alias,
                        "customerEmailMarketingConsentUpdate",
                        "input",
                        "CustomerEmailMarketingConsentUpdateInput!",
                        json!({"customerId": id, "emailMarketingConsent": self.consent(false)}),
                        CONSENT_SELECTION,
                        MUTATION_COST,
                    );
                    plan.aliases.push(alias);
                }
                if known.has_phone {
                    let alias = format!("s{i}");
                    doc.add(
                        &alias,
                        "customerSmsMarketingConsentUpdate",
                        "input",
                        "CustomerSmsMarketingConsentUpdateInput!",
                        json!({"customerId": id, "smsMarketingConsent": self.consent(false)}),
                        CONSENT_SELECTION,
                        MUTATION_COST,
                    );
                    plan.aliases.push(alias);
                }
                if plan.aliases.is_empty() {
                    return Err(ItemOutcome::Delivered {
                        record_id: Some(id),
                    });
                }
            }
            Action::Delete => {
                let Some(id) = known.id.clone() else {
                    return Err(ItemOutcome::Delivered { record_id: None });
                };
                let alias = format!("d{i}");
                match self.delete_with {
                    DeleteWith::DataErasure => {
                        doc.add(
                            &alias,
                            "customerRequestDataErasure",
                            "customerId",
                            "ID!",
                            json!(id),
                            "{ customerId userErrors { field message code } }",
                            MUTATION_COST,
                        );
                        plan.erasure = true;
                    }
                    DeleteWith::CustomerDelete => doc.add(
                        &alias,
                        "customerDelete",
                        "input",
                        "CustomerDeleteInput!",
                        json!({"id": id}),
                        "{ deletedCustomerId userErrors { field message } }",
                        MUTATION_COST,
                    ),
                }
                plan.aliases.push(alias);
            }
        }
        Ok(plan)
    }
}

impl Plan {
    /// The item's outcome from the answer to the mutation document
    /// (`errors`: its top-level errors, as `document::errors` reads them).
    pub(super) fn outcome(
        &self,
        item: &Item,
        known: &Known,
        answer: &Value,
        errors: &[(Option<String>, String, Option<String>)],
    ) -> ItemOutcome {
        let mut problems = Vec::new();
        let mut missing = None;
        for alias in &self.aliases {
            let payload = answer
                .pointer(&format!("/data/{alias}"))
                .cloned()
                .unwrap_or(Value::Null);
            if payload.is_null() {
                let message = errors
                    .iter()
                    .find(|(_, _, path)| path.as_deref() == Some(alias.as_str()))
                    .map(|(_, m, _)| m.clone())
                    .unwrap_or_else(|| "no answer for this mutation".into());
                missing = Some(message);
            } else if let Some(e) = document::user_errors(&payload) {
                problems.push(e);
            }
        }
        if !problems.is_empty() {
            ItemOutcome::Permanent {
                reason: format!("Shopify: {}", problems.join("; ")),
            }
        } else if let Some(message) = missing {
            ItemOutcome::Retry {
                reason: format!("Shopify: {message}"),
            }
        } else if self.erasure {
            ItemOutcome::Accepted {
                ticket: known.id.clone().unwrap_or_default(),
                check_after: ERASURE_CHECK,
            }
        } else if matches!(item.action, Action::Delete) {
            ItemOutcome::Delivered { record_id: None }
        } else {
            let created = self.creates.as_ref().and_then(|alias| {
                answer
                    .pointer(&format!("/data/{alias}/customer/id"))
                    .and_then(Value::as_str)
                    .map(String::from)
            });
            ItemOutcome::Delivered {
                record_id: created.or_else(|| known.id.clone()),
            }
        }
    }
}
