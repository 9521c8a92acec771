//! The contacts endpoints: batch upsert by a unique property, and GDPR
//! delete.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::{App, Contact, MAX_INPUTS, error_body, normalize};
use crate::{Recorded, reply};

/// `POST /crm/v3/objects/contacts/batch/upsert`. With an
/// `objectWriteTraceId` on every input a partly failed batch answers 207
/// with per-input errors; without, one bad input fails the whole batch
/// (400) and nothing is written.
pub(super) fn upsert(app: &App, rec: &Recorded, body: &Value) -> (u16, Option<Value>) {
    let inputs = body["inputs"].as_array().cloned().unwrap_or_default();
    let where_ = format!("hubspot {} {}", rec.method, rec.path);
    if inputs.len() > MAX_INPUTS || inputs.is_empty() {
        app.journal.violation(format!(
            "{where_}: {} inputs; a batch takes 1 to {MAX_INPUTS}",
            inputs.len()
        ));
        return (
            400,
            Some(error_body(
                "VALIDATION_ERROR",
                &format!(
                    "Batch input must have between 1 and {MAX_INPUTS} inputs, got {}",
                    inputs.len()
                ),
                json!({}),
            )),
        );
    }
    let mut model = app.model();
    let mut seen = BTreeSet::new();
    for input in &inputs {
        let property = input["idProperty"].as_str().unwrap_or("hs_object_id");
        if !model.unique.contains(property) {
            return (
                400,
                Some(error_body(
                    "VALIDATION_ERROR",
                    &format!("{property} is not a unique identifier property for CONTACT"),
                    json!({ "idProperty": [property] }),
                )),
            );
        }
        let id = normalize(property, input["id"].as_str().unwrap_or(""));
        if !seen.insert((property.to_string(), id.clone())) {
            app.journal
                .violation(format!("{where_}: the id {id:?} is in the batch twice"));
            return (
                400,
                Some(error_body(
                    "VALIDATION_ERROR",
                    &format!("Duplicate IDs found in batch input: [{id}]. IDs must be unique"),
                    json!({ "ids": [id] }),
                )),
            );
        }
    }
    let multi_status = inputs
        .iter()
        .all(|i| i["objectWriteTraceId"].as_str().is_some());
    // Validate every input first: without multi-status one error fails all.
    let mut checked = Vec::new();
    for input in &inputs {
        let property = input["idProperty"].as_str().unwrap_or("hs_object_id");
        let id = normalize(property, input["id"].as_str().unwrap_or(""));
        let properties: BTreeMap<String, String> = input["properties"]
            .as_object()
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let error = invalid(&model.failing, property, &id, &properties);
        if let Some((category, message)) = &error
            && !multi_status
        {
            return (
                400,
                Some(error_body(category, message, json!({ "ids": [id] }))),
            );
        }
        checked.push((input, property, id, properties, error));
    }
    let now = reply::now();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (input, property, id, mut properties, error) in checked {
        let trace = input["objectWriteTraceId"].as_str();
        if let Some((category, message)) = error {
            let mut context = Map::new();
            if let Some(t) = trace {
                context.insert("objectWriteTraceId".into(), json!([t]));
            }
            let mut e = error_body(&category, &message, Value::Object(context));
            e["errors"] = json!([]);
            errors.push(e);
            continue;
        }
        if property == "email" {
            properties.insert("email".into(), id.clone());
        } else if property != "hs_object_id" {
            properties.insert(property.into(), id.clone());
        }
        if let Some(email) = properties.get_mut("email") {
            *email = email.trim().to_lowercase();
        }
        let existing = model.find(property, &id).map(|c| c.id.clone());
        let (contact_id, new) = match existing {
            Some(cid) => (cid, false),
            None => {
                model.next_id += 1;
                (model.next_id.to_string(), true)
            }
        };
        let contact = model
            .contacts
            .entry(contact_id.clone())
            .or_insert_with(|| Contact {
                id: contact_id.clone(),
                properties: BTreeMap::new(),
                created_at: now.clone(),
                updated_at: now.clone(),
            });
        for (k, v) in properties {
            contact.properties.insert(k, v);
        }
        contact
            .properties
            .insert("hs_object_id".into(), contact_id.clone());
        contact.updated_at = now.clone();
        let mut result = json!({
            "id": contact.id,
            "new": new,
            "archived": false,
            "properties": contact.properties,
            "createdAt": contact.created_at,
            "updatedAt": contact.updated_at,
        });
        if let Some(t) = trace {
            result["objectWriteTraceId"] = json!(t);
        }
        results.push(result);
    }
    // HubSpot does not keep the inputs' order in its results.
    results.reverse();
    let mut answer = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": now,
        "completedAt": reply::now(),
    });
    if errors.is_empty() {
        (200, Some(answer))
    } else {
        answer["numErrors"] = json!(errors.len());
        answer["errors"] = Value::Array(errors);
        (207, Some(answer))
    }
}

/// Why HubSpot would refuse one input, as (category, message).
fn invalid(
    failing: &BTreeMap<String, (String, String)>,
    property: &str,
    id: &str,
    properties: &BTreeMap<String, String>,
) -> Option<(String, String)> {
    if let Some(forced) = failing.get(&normalize("email", id)) {
        return Some(forced.clone());
    }
    let email = if property == "email" {
        Some(id)
    } else {
        properties.get("email").map(String::as_str)
    };
    match email {
        Some(e) if !e.is_empty() && !reply::is_email(e) => Some((
            "VALIDATION_ERROR".into(),
            format!(
                "Property values were not valid: [{{\"isValid\":false,\"message\":\"Email address {e} is invalid\",\"error\":\"INVALID_EMAIL\",\"name\":\"email\"}}]"
            ),
        )),
        _ => None,
    }
}

/// `POST /crm/v3/objects/contacts/gdpr-delete`: by id, or by a unique
/// property; an email that matches no contact is blocklisted (204).
pub(super) fn gdpr_delete(app: &App, body: &Value) -> (u16, Option<Value>) {
    let object_id = body["objectId"].as_str().unwrap_or("");
    let property = body["idProperty"].as_str();
    let mut model = app.model();
    if let Some(p) = property
        && !model.unique.contains(p)
    {
        return (
            400,
            Some(error_body(
                "VALIDATION_ERROR",
                &format!("{p} is not a unique identifier property for CONTACT"),
                json!({}),
            )),
        );
    }
    let found = model
        .find(property.unwrap_or("hs_object_id"), object_id)
        .map(|c| c.id.clone());
    match (found, property) {
        (Some(id), _) => {
            model.contacts.remove(&id);
            model.erased.insert(id);
            (204, None)
        }
        (None, Some("email")) => {
            model.blocklist.insert(object_id.trim().to_lowercase());
            (204, None)
        }
        (None, _) => (
            404,
            Some(error_body(
                "OBJECT_NOT_FOUND",
                "resource not found",
                json!({}),
            )),
        ),
    }
}
