//! `/services/data/vXX.X/...`: sObject Collections upsert by external id
//! and delete by ids, and the single-record delete by external id.

use serde_json::{Map, Value, json};

use super::{App, Model, Record, errors, forced};
use crate::{Recorded, percent_decode, reply};

/// Records (or ids) per collection call.
pub const MAX_RECORDS: usize = 200;

/// Fields Salesforce requires to create a record of these sObjects.
fn required_on_create(sobject: &str) -> &'static [&'static str] {
    match sobject {
        "Contact" => &["LastName"],
        "Lead" => &["LastName", "Company"],
        "Account" => &["Name"],
        _ => &[],
    }
}

/// An 18-character id with the sObject's key prefix.
pub(super) fn new_id(model: &mut Model, sobject: &str) -> String {
    model.next_id += 1;
    let prefix = match sobject {
        "Contact" => "003",
        "Lead" => "00Q",
        "Account" => "001",
        _ => "a00",
    };
    format!("{prefix}{:012}AAA", model.next_id)
}

/// `v64.0` -> 64
fn version(text: &str) -> Option<u32> {
    let (major, minor) = text.strip_prefix('v')?.split_once('.')?;
    (minor.len() == 1 && minor.chars().all(|c| c.is_ascii_digit()))
        .then(|| major.parse().ok())
        .flatten()
}

pub(super) async fn api(app: &App, rec: &Recorded) -> axum::response::Response {
    let where_ = format!("salesforce {} {}", rec.method, rec.path);
    let segments: Vec<String> = rec
        .path
        .trim_start_matches("/services/data/")
        .split('/')
        .map(percent_decode)
        .collect();
    let mut violations = Vec::new();
    let token = rec
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::to_string);
    if token.is_none() {
        violations.push(format!(
            "{where_}: no `Authorization: Bearer <access token>`"
        ));
    }
    let v = version(&segments[0]);
    if v.is_none_or(|v| v < 46) {
        violations.push(format!(
            "{where_}: API version {:?}; sObject Collections upsert needs v46.0 or later",
            segments[0]
        ));
    }
    let tail: Vec<&str> = segments[1..].iter().map(String::as_str).collect();
    let external_delete =
        matches!(tail.as_slice(), ["sobjects", _, _, _]) && rec.method == "DELETE";
    if external_delete {
        if !rec.body.is_empty() {
            violations.push(format!("{where_}: a delete takes no body"));
        }
    } else {
        violations.extend(app.spec.check(&rec.parts()).into_iter().map(|v| v.0));
    }
    for v in &violations {
        app.journal.violation(v.clone());
    }
    if let Some(resp) = forced(app).await {
        return resp;
    }
    let mut model = app.model();
    let session_ok = token
        .as_ref()
        .is_some_and(|t| model.valid_tokens.contains(t))
        && !model.refuse_sessions;
    if !session_ok {
        return reply::json(
            401,
            &[],
            &errors("INVALID_SESSION_ID", "Session expired or invalid"),
        );
    }
    model.api_used += 1;
    let limit = vec![(
        "sforce-limit-info".to_string(),
        format!("api-usage={}/{}", model.api_used, model.api_max),
    )];
    if model.api_used > model.api_max {
        return reply::json(
            403,
            &limit,
            &errors("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
        );
    }
    if !violations.is_empty() {
        return reply::json(
            400,
            &limit,
            &errors("JSON_PARSER_ERROR", &violations.join("; ")),
        );
    }
    let (status, body) = match (rec.method.as_str(), tail.as_slice()) {
        ("PATCH", ["composite", "sobjects", sobject, field]) => {
            upsert(app, &mut model, &where_, sobject, field, &rec.json())
        }
        ("DELETE", ["composite", "sobjects"]) => delete_ids(&mut model, rec),
        ("DELETE", ["sobjects", sobject, field, value]) => {
            delete_external(&mut model, sobject, field, value)
        }
        _ => {
            app.journal.violation(format!(
                "{where_}: not an operation the hub's connector should call"
            ));
            (
                404,
                Some(errors("NOT_FOUND", "The requested resource does not exist")),
            )
        }
    };
    match body {
        Some(b) => reply::json(status, &limit, &b),
        None => reply::empty(status, &limit),
    }
}

fn record_error(code: &str, message: &str, fields: &[&str]) -> Value {
    json!({
        "success": false,
        "errors": [{ "statusCode": code, "message": message, "fields": fields }],
    })
}

fn upsert(
    app: &App,
    model: &mut Model,
    where_: &str,
    sobject: &str,
    field: &str,
    body: &Value,
) -> (u16, Option<Value>) {
    let records = body["records"].as_array().cloned().unwrap_or_default();
    if records.len() > MAX_RECORDS {
        app.journal.violation(format!(
            "{where_}: {} records; a collection takes {MAX_RECORDS}",
            records.len()
        ));
        return (
            400,
            Some(errors(
                "EXCEEDED_ID_LIMIT",
                &format!(
                    "record limit reached. cannot submit more than {MAX_RECORDS} records into this call"
                ),
            )),
        );
    }
    if let Some(known) = model.known_fields.get(sobject) {
        for record in records.iter().filter_map(Value::as_object) {
            for name in record.keys().filter(|k| *k != "attributes") {
                if !known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                    return (
                        400,
                        Some(errors(
                            "INVALID_FIELD",
                            &format!("No such column '{name}' on sobject of type {sobject}"),
                        )),
                    );
                }
            }
        }
    }
    let mut results = Vec::new();
    for record in records.iter().filter_map(Value::as_object) {
        results.push(upsert_one(app, model, where_, sobject, field, record));
    }
    (200, Some(Value::Array(results)))
}

fn upsert_one(
    app: &App,
    model: &mut Model,
    where_: &str,
    sobject: &str,
    field: &str,
    record: &Map<String, Value>,
) -> Value {
    if record["attributes"]["type"] != sobject {
        app.journal.violation(format!(
            "{where_}: a record's attributes.type is not {sobject}"
        ));
        return record_error(
            "INVALID_TYPE",
            &format!("Records must all be of type {sobject}"),
            &[],
        );
    }
    if record.keys().any(|k| k.eq_ignore_ascii_case("id")) {
        app.journal.violation(format!(
            "{where_}: a record carries an Id; upserts go by external id"
        ));
        return record_error(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "Unable to create/update fields: Id",
            &["Id"],
        );
    }
    let Some(external) = record
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        app.journal
            .violation(format!("{where_}: a record has no {field} value"));
        return record_error(
            "MISSING_ARGUMENT",
            &format!("{field} not specified"),
            &[field],
        );
    };
    if let Some((code, message)) = model.failing.get(&external) {
        return record_error(code, message, &[]);
    }
    if let Some(email) = record.get("Email").and_then(Value::as_str)
        && !email.is_empty()
        && !reply::is_email(email)
    {
        return record_error(
            "INVALID_EMAIL_ADDRESS",
            &format!("Email: invalid email address: {email}"),
            &["Email"],
        );
    }
    let existing = model
        .by_external(sobject, field, &external)
        .map(|r| r.id.clone());
    let created = existing.is_none();
    if created {
        let missing: Vec<&str> = required_on_create(sobject)
            .iter()
            .copied()
            .filter(|f| {
                record
                    .get(*f)
                    .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
            })
            .collect();
        if !missing.is_empty() {
            return record_error(
                "REQUIRED_FIELD_MISSING",
                &format!("Required fields are missing: [{}]", missing.join(", ")),
                &missing,
            );
        }
    }
    let id = existing.unwrap_or_else(|| new_id(model, sobject));
    let entry = model.records.entry(id.clone()).or_insert_with(|| Record {
        id: id.clone(),
        sobject: sobject.into(),
        fields: Map::new(),
        deleted: false,
    });
    for (name, value) in record.iter().filter(|(k, _)| *k != "attributes") {
        if value.is_null() {
            entry.fields.remove(name);
        } else {
            entry.fields.insert(name.clone(), value.clone());
        }
    }
    json!({ "id": id, "success": true, "errors": [], "created": created })
}

fn delete_ids(model: &mut Model, rec: &Recorded) -> (u16, Option<Value>) {
    let ids = rec
        .query
        .iter()
        .find(|(k, _)| k == "ids")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let results: Vec<Value> = ids
        .split(',')
        .filter(|id| !id.is_empty())
        .map(|id| match model.records.get_mut(id) {
            Some(r) if !r.deleted => {
                r.deleted = true;
                json!({ "id": id, "success": true, "errors": [] })
            }
            Some(_) => json!({
                "id": id, "success": false,
                "errors": [{ "statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": [] }],
            }),
            None => json!({
                "id": id, "success": false,
                "errors": [{ "statusCode": "INVALID_CROSS_REFERENCE_KEY", "message": "invalid cross reference id", "fields": [] }],
            }),
        })
        .collect();
    (200, Some(Value::Array(results)))
}

fn delete_external(
    model: &mut Model,
    sobject: &str,
    field: &str,
    value: &str,
) -> (u16, Option<Value>) {
    let id = model
        .by_external(sobject, field, value)
        .map(|r| r.id.clone());
    match id.and_then(|id| model.records.get_mut(&id)) {
        Some(record) => {
            record.deleted = true;
            (204, None)
        }
        None => (
            404,
            Some(errors("NOT_FOUND", "The requested resource does not exist")),
        ),
    }
}
