//! The customer mutations and queries the fake executes against its model
//! of the shop, with `userErrors` worded as Shopify words them.

use serde_json::{Value, json};

use super::{Customer, Model};
use crate::Journal;
use crate::graphql::{Checked, RootField};

fn user_error(field: &[&str], message: &str, code: Option<&str>) -> Value {
    let mut e = json!({"field": field, "message": message});
    if let Some(code) = code {
        e["code"] = json!(code);
    }
    e
}

fn customer_json(c: &Customer) -> Value {
    json!({
        "id": c.id,
        "email": c.email,
        "phone": c.phone,
        "firstName": c.first_name,
        "lastName": c.last_name,
        "note": c.note,
        "locale": c.locale,
        "tags": c.tags,
        "emailMarketingConsent": c.email_marketing.as_ref().map(|s| json!({
            "marketingState": s, "marketingOptInLevel": c.email_opt_in_level, "consentUpdatedAt": null})),
        "smsMarketingConsent": c.sms_marketing.as_ref().map(|s| json!({
            "marketingState": s, "marketingOptInLevel": null, "consentUpdatedAt": null,
            "consentCollectedFrom": "OTHER"})),
    })
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

fn valid_phone(phone: &str) -> bool {
    phone.starts_with('+')
        && (8..=16).contains(&phone.len())
        && phone[1..].chars().all(|c| c.is_ascii_digit())
}

pub(super) fn execute(
    model: &mut Model,
    journal: &Journal,
    _checked: &Checked,
    field: &RootField,
) -> Option<Value> {
    let args = &field.arguments;
    match field.name.as_str() {
        "customerCreate" => Some(upsert(model, &args["input"], true)),
        "customerUpdate" => Some(upsert(model, &args["input"], false)),
        "customerByIdentifier" => {
            let email = args["identifier"]["emailAddress"].as_str();
            let id = args["identifier"]["id"].as_str();
            model
                .customers
                .values()
                .find(|c| {
                    (email.is_some() && c.email.as_deref() == email)
                        || (id.is_some() && Some(c.id.as_str()) == id)
                })
                .map(customer_json)
        }
        "customer" => {
            let id = args["id"].as_str().unwrap_or("");
            let erasure_done = match model.customers.get_mut(id) {
                Some(c) => match c.erasure_pending {
                    Some(0) => true,
                    Some(n) => {
                        c.erasure_pending = Some(n - 1);
                        false
                    }
                    None => false,
                },
                None => false,
            };
            if erasure_done {
                model.customers.remove(id);
                model.erased.push(id.to_string());
            }
            model.customers.get(id).map(customer_json)
        }
        "customerEmailMarketingConsentUpdate" | "customerSmsMarketingConsentUpdate" => {
            let sms = field.name == "customerSmsMarketingConsentUpdate";
            let input = &args["input"];
            let id = input["customerId"].as_str().unwrap_or("");
            let consent = if sms {
                &input["smsMarketingConsent"]
            } else {
                &input["emailMarketingConsent"]
            };
            let state = consent["marketingState"].as_str().unwrap_or("");
            let Some(c) = model.customers.get_mut(id) else {
                return Some(json!({"customer": null, "userErrors": [
                    user_error(&["input", "customerId"], "Customer not found", Some("INVALID"))]}));
            };
            if !["SUBSCRIBED", "UNSUBSCRIBED", "PENDING"].contains(&state) {
                return Some(json!({"customer": null, "userErrors": [user_error(
                    &["input", if sms { "smsMarketingConsent" } else { "emailMarketingConsent" }, "marketingState"],
                    "Marketing state is not included in the list", Some("INCLUSION"))]}));
            }
            if sms {
                if c.phone.is_none() {
                    return Some(json!({"customer": null, "userErrors": [user_error(
                        &["input", "smsMarketingConsent"],
                        "Phone number is required to update SMS marketing consent", Some("MISSING_ARGUMENT"))]}));
                }
                c.sms_marketing = Some(state.to_string());
            } else {
                if c.email.is_none() {
                    return Some(json!({"customer": null, "userErrors": [user_error(
                        &["input", "emailMarketingConsent"],
                        "Email is required to update email marketing consent", Some("MISSING_ARGUMENT"))]}));
                }
                c.email_marketing = Some(state.to_string());
                c.email_opt_in_level = consent["marketingOptInLevel"].as_str().map(String::from);
            }
            Some(json!({"customer": customer_json(c), "userErrors": []}))
        }
        "customerDelete" => {
            let id = args["input"]["id"].as_str().unwrap_or("").to_string();
            match model.customers.get(&id) {
                None => Some(
                    json!({"deletedCustomerId": null, "shop": {"id": "gid://shopify/Shop/1"},
                    "userErrors": [user_error(&["id"], "Customer can't be found", None)]}),
                ),
                Some(c) if c.orders > 0 => Some(
                    json!({"deletedCustomerId": null, "shop": {"id": "gid://shopify/Shop/1"},
                    "userErrors": [user_error(&["id"], "Customer can’t be deleted because they have associated orders", None)]}),
                ),
                Some(_) => {
                    model.customers.remove(&id);
                    Some(
                        json!({"deletedCustomerId": id, "shop": {"id": "gid://shopify/Shop/1"}, "userErrors": []}),
                    )
                }
            }
        }
        "customerRequestDataErasure" => {
            let id = args["customerId"].as_str().unwrap_or("").to_string();
            let polls = model.erasure_polls;
            match model.customers.get_mut(&id) {
                None => Some(json!({"customerId": null, "userErrors": [
                    user_error(&["customerId"], "Customer does not exist", Some("DOES_NOT_EXIST"))]})),
                Some(c) => {
                    c.erasure_pending.get_or_insert(polls);
                    Some(json!({"customerId": id, "userErrors": []}))
                }
            }
        }
        other => {
            journal.violation(format!("shopify: the fake does not model {other}"));
            None
        }
    }
}

fn upsert(model: &mut Model, input: &Value, create: bool) -> Value {
    let mut errors = Vec::new();
    let email = input["email"].as_str();
    let phone = input["phone"].as_str();
    if let Some(e) = email
        && !valid_email(e)
    {
        errors.push(user_error(&["email"], "Email is invalid", None));
    }
    if let Some(p) = phone
        && !valid_phone(p)
    {
        errors.push(user_error(&["phone"], "Phone is invalid", None));
    }
    let id = if create {
        if !input["id"].is_null() {
            errors.push(user_error(
                &["id"],
                "Id must not be set when creating a customer",
                None,
            ));
        }
        None
    } else {
        match input["id"].as_str() {
            Some(id) if model.customers.contains_key(id) => Some(id.to_string()),
            _ => {
                errors.push(user_error(&["id"], "Customer does not exist", None));
                None
            }
        }
    };
    if let Some(e) = email
        && model
            .customers
            .values()
            .any(|c| c.email.as_deref() == Some(e) && Some(&c.id) != id.as_ref())
    {
        errors.push(user_error(&["email"], "Email has already been taken", None));
    }
    if let Some(p) = phone
        && model
            .customers
            .values()
            .any(|c| c.phone.as_deref() == Some(p) && Some(&c.id) != id.as_ref())
    {
        errors.push(user_error(&["phone"], "Phone has already been taken", None));
    }
    if create && !input["emailMarketingConsent"].is_null() && email.is_none() {
        errors.push(user_error(
            &["emailMarketingConsent"],
            "An email address is required to set the email marketing consent state.",
            None,
        ));
    }
    if create && !input["smsMarketingConsent"].is_null() && phone.is_none() {
        errors.push(user_error(
            &["smsMarketingConsent"],
            "A phone number is required to set the SMS consent state.",
            None,
        ));
    }
    if !errors.is_empty() {
        return json!({"customer": null, "userErrors": errors});
    }
    let id = id.unwrap_or_else(|| {
        model.next_id += 1;
        format!("gid://shopify/Customer/{}", model.next_id)
    });
    let customer = model
        .customers
        .entry(id.clone())
        .or_insert_with(|| Customer {
            id: id.clone(),
            ..Customer::default()
        });
    let text = |key: &str| input.get(key).map(|v| v.as_str().map(String::from));
    if let Some(v) = text("email") {
        customer.email = v;
    }
    if let Some(v) = text("phone") {
        customer.phone = v;
    }
    if let Some(v) = text("firstName") {
        customer.first_name = v;
    }
    if let Some(v) = text("lastName") {
        customer.last_name = v;
    }
    if let Some(v) = text("note") {
        customer.note = v;
    }
    if let Some(v) = text("locale") {
        customer.locale = v;
    }
    if let Some(tags) = input["tags"].as_array() {
        customer.tags = tags
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
    }
    for m in input["metafields"].as_array().into_iter().flatten() {
        let key = (
            m["namespace"].as_str().unwrap_or("custom").to_string(),
            m["key"].as_str().unwrap_or("").to_string(),
        );
        customer.metafields.insert(
            key,
            (
                m["type"]
                    .as_str()
                    .unwrap_or("single_line_text_field")
                    .to_string(),
                m["value"].as_str().unwrap_or("").to_string(),
            ),
        );
    }
    if let Some(state) = input["emailMarketingConsent"]["marketingState"].as_str() {
        customer.email_marketing = Some(state.to_string());
        customer.email_opt_in_level = input["emailMarketingConsent"]["marketingOptInLevel"]
            .as_str()
            .map(String::from);
    }
    if let Some(state) = input["smsMarketingConsent"]["marketingState"].as_str() {
        customer.sms_marketing = Some(state.to_string());
    }
    json!({"customer": customer_json(customer), "userErrors": []})
}
