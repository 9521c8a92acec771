//! Communication preferences v4: opting emails out of all email
//! subscriptions in one batch call.

use serde_json::{Value, json};

use super::{App, MAX_INPUTS, error_body};
use crate::openapi::Spec;
use crate::{Recorded, reply};

/// The one operation the connector calls, as HubSpot's own v4 description
/// has it (HubSpot/HubSpot-public-api-spec-collection,
/// `PublicApiSpecs/Communication Preferences/Subscriptions/Rollouts/176901/v4/subscriptions.json`,
/// path `/communication-preferences/v4/statuses/batch/unsubscribe-all`:
/// required query `channel` with enum `EMAIL`, optional `businessUnitId`
/// and `verbose`, body `BatchInputString`). `shared/vendor-specs` holds
/// only HubSpot's contacts description, so this subset is kept here.
pub(super) fn spec() -> Spec {
    Spec::from_document(
        "hubspot/communication-preferences-v4 (subset)",
        json!({
            "openapi": "3.0.1",
            "servers": [{"url": "https://api.hubapi.com"}],
            "paths": {
                "/communication-preferences/v4/statuses/batch/unsubscribe-all": {
                    "post": {
                        "parameters": [
                            {"name": "channel", "in": "query", "required": true,
                             "schema": {"type": "string", "enum": ["EMAIL"]}},
                            {"name": "businessUnitId", "in": "query", "required": false,
                             "schema": {"type": "integer", "format": "int64"}},
                            {"name": "verbose", "in": "query", "required": false,
                             "schema": {"type": "boolean", "default": false}}
                        ],
                        "requestBody": {
                            "required": true,
                            "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/BatchInputString"}}}
                        },
                        "responses": {}
                    }
                }
            },
            "components": {"schemas": {"BatchInputString": {
                "required": ["inputs"],
                "type": "object",
                "properties": {"inputs": {"type": "array", "items": {"type": "string"}}}
            }}}
        }),
    )
}

/// `POST /communication-preferences/v4/statuses/batch/unsubscribe-all?channel=EMAIL`:
/// each valid email is opted out of all email; an invalid one gets an
/// error naming it.
pub(super) fn unsubscribe_all(app: &App, rec: &Recorded, body: &Value) -> (u16, Option<Value>) {
    let inputs: Vec<String> = body["inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        app.journal.violation(format!(
            "hubspot {} {}: {} inputs; a batch takes 1 to {MAX_INPUTS}",
            rec.method,
            rec.path,
            inputs.len()
        ));
        return (
            400,
            Some(error_body(
                "VALIDATION_ERROR",
                &format!("Batch input must have between 1 and {MAX_INPUTS} inputs"),
                json!({}),
            )),
        );
    }
    let now = reply::now();
    let mut model = app.model();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for email in inputs {
        if !reply::is_email(&email) {
            let mut e = error_body(
                "VALIDATION_ERROR",
                &format!("{email} is not a valid email address"),
                json!({ "subscriberIdString": [email] }),
            );
            e["errors"] = json!([]);
            errors.push(e);
            continue;
        }
        let email = email.trim().to_lowercase();
        model.opted_out.insert(email.clone());
        results.push(json!({
            "subscriberIdString": email,
            "statuses": [{
                "channel": "EMAIL",
                "status": "NOT_SUBSCRIBED",
                "subscriberIdString": email,
                "source": "Public API",
                "timestamp": now,
            }],
        }));
    }
    let mut answer = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": now,
        "completedAt": reply::now(),
    });
    if !errors.is_empty() {
        answer["numErrors"] = json!(errors.len());
        answer["errors"] = Value::Array(errors);
    }
    (200, Some(answer))
}
