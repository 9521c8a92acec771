//! The Mailchimp fake's operations on the audience.

use super::*;

pub(super) fn route(app: &App, rec: &Recorded) -> Response {
    let path = rec.path.strip_prefix("/3.0").unwrap_or(&rec.path);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let not_found = || {
        problem(
            404,
            "Resource Not Found",
            "The requested resource could not be found.",
        )
    };
    match (rec.method.as_str(), segments.as_slice()) {
        (_, ["lists", list, ..]) if *list != LIST_ID => not_found(),
        ("POST", ["lists", _]) => batch(app, rec),
        (method, ["lists", _, "members", hash]) => member_call(app, rec, method, hash),
        ("POST", ["lists", _, "members", hash, "actions", "delete-permanent"]) => {
            let mut m = app.model.lock().unwrap_or_else(|e| e.into_inner());
            match m.members.remove(*hash) {
                Some(_) => {
                    m.forgotten.insert(hash.to_string());
                    StatusCode::NO_CONTENT.into_response()
                }
                None => not_found(),
            }
        }
        _ => {
            app.journal.violation(format!(
                "{} {}: Mailchimp has this operation, the fake does not model it",
                rec.method, rec.path
            ));
            not_found()
        }
    }
}

/// `POST /lists/{list_id}`: batch subscribe.
fn batch(app: &App, rec: &Recorded) -> Response {
    let body = rec.json();
    let members = body["members"].as_array().cloned().unwrap_or_default();
    if members.len() > MAX_MEMBERS {
        app.journal.violation(format!(
            "POST {}: {} members, Mailchimp takes {MAX_MEMBERS}",
            rec.path,
            members.len()
        ));
        return problem_with(
            400,
            "Invalid Resource",
            "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
            Some(
                json!([{"field": "members", "message": "Schema describes array, with max 500 items"}]),
            ),
        );
    }
    for (k, member) in members.iter().enumerate() {
        for field in ["email_address", "status"] {
            if member.get(field).and_then(Value::as_str).is_none() {
                app.journal.violation(format!(
                    "POST {}: members[{k}] has no {field}, which the batch endpoint requires",
                    rec.path
                ));
                return problem_with(
                    400,
                    "Invalid Resource",
                    "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                    Some(
                        json!([{"field": format!("members.item:{k}.{field}"), "message": "This value should not be blank."}]),
                    ),
                );
            }
        }
    }
    let update_existing = body["update_existing"].as_bool().unwrap_or(false);
    let skip_duplicates = rec
        .query
        .iter()
        .any(|(k, v)| k == "skip_duplicate_check" && v == "true");
    let mut m = app.model.lock().unwrap_or_else(|e| e.into_inner());
    let (mut created, mut updated, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let mut seen = BTreeSet::new();
    for member in members {
        let email = member["email_address"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let status = member["status"].as_str().unwrap_or_default().to_string();
        let merge_fields = member["merge_fields"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let hash = subscriber_hash(&email);
        let error = |message: String, code: &str, field: Option<(&str, &str)>| {
            let mut e = json!({"email_address": email, "error": message, "error_code": code});
            if let Some((f, msg)) = field {
                e["field"] = Value::from(f);
                e["field_message"] = Value::from(msg);
            }
            e
        };
        if !seen.insert(hash.clone()) {
            if !skip_duplicates {
                errors.push(error(
                    format!("{email} is in this request more than once."),
                    "ERROR_GENERIC",
                    None,
                ));
            }
            continue;
        }
        if !looks_like_email(&email) {
            errors.push(error(
                format!("{email} looks fake or invalid, please enter a real email address."),
                "ERROR_GENERIC",
                Some(("email_address", "Please enter a real email address.")),
            ));
            continue;
        }
        if let Some(message) = m.rejected.get(&email.to_lowercase()) {
            errors.push(error(message.clone(), "ERROR_GENERIC", None));
            continue;
        }
        if m.forgotten.contains(&hash) {
            errors.push(error(
                format!("{email} was permanently deleted and cannot be re-imported. The contact must re-subscribe to get back on the list."),
                "ERROR_GENERIC",
                None,
            ));
            continue;
        }
        match m.members.get_mut(&hash) {
            Some(_) if !update_existing => errors.push(error(
                format!("{email} is already a list member. Set update_existing to update it."),
                "ERROR_CONTACT_EXISTS",
                None,
            )),
            Some(existing) => {
                existing.status = status;
                existing.email_address = email.clone();
                existing.merge_fields.extend(merge_fields);
                updated.push(existing.to_json());
            }
            None => {
                let missing = m
                    .required_merge_fields
                    .iter()
                    .find(|tag| {
                        merge_fields
                            .get(tag.as_str())
                            .and_then(Value::as_str)
                            .is_none_or(str::is_empty)
                    })
                    .cloned();
                if let Some(tag) = missing {
                    errors.push(error(
                        "Your merge fields were invalid.".into(),
                        "ERROR_GENERIC",
                        Some((&tag, "Please enter a value")),
                    ));
                    continue;
                }
                let member = m.new_member(&email, &status, merge_fields);
                created.push(member.to_json());
                m.members.insert(hash, member);
            }
        }
    }
    ok_json(
        200,
        json!({
            "total_created": created.len(),
            "total_updated": updated.len(),
            "error_count": errors.len(),
            "new_members": created,
            "updated_members": updated,
            "errors": errors,
            "_links": [],
        }),
    )
}

/// `GET | PUT | PATCH | DELETE /lists/{list_id}/members/{hash}`.
fn member_call(app: &App, rec: &Recorded, method: &str, hash: &str) -> Response {
    let body = rec.json();
    let mut m = app.model.lock().unwrap_or_else(|e| e.into_inner());
    let not_found = || {
        problem(
            404,
            "Resource Not Found",
            "The requested resource could not be found.",
        )
    };
    match method {
        "GET" => match m.members.get(hash) {
            Some(member) => ok_json(200, member.to_json()),
            None => not_found(),
        },
        "DELETE" => match m.members.get_mut(hash) {
            Some(member) => {
                member.status = "archived".into();
                StatusCode::NO_CONTENT.into_response()
            }
            None => not_found(),
        },
        "PATCH" => {
            let Some(mut member) = m.members.get(hash).cloned() else {
                return not_found();
            };
            if let Some(email) = body["email_address"].as_str() {
                let new_hash = subscriber_hash(email);
                if new_hash != hash && m.members.contains_key(&new_hash) {
                    return problem(
                        400,
                        "Member Exists",
                        &format!(
                            "{email} is already a list member. Use PUT to insert or update list members."
                        ),
                    );
                }
                if !looks_like_email(email) {
                    return problem(
                        400,
                        "Invalid Resource",
                        &format!(
                            "{email} looks fake or invalid, please enter a real email address."
                        ),
                    );
                }
                member.email_address = email.to_string();
                member.id = new_hash;
            }
            if let Some(status) = body["status"].as_str() {
                member.status = status.to_string();
            }
            if let Some(fields) = body["merge_fields"].as_object() {
                member.merge_fields.extend(fields.clone());
            }
            m.members.remove(hash);
            m.members.insert(member.id.clone(), member.clone());
            ok_json(200, member.to_json())
        }
        "PUT" => {
            let email = body["email_address"].as_str().unwrap_or_default();
            if subscriber_hash(email) != hash {
                app.journal.violation(format!(
                    "PUT {}: the subscriber hash is not the MD5 of the lowercased email_address",
                    rec.path
                ));
                return problem(
                    400,
                    "Invalid Resource",
                    "The subscriber hash does not match the email address.",
                );
            }
            if m.forgotten.contains(hash) {
                return problem(
                    400,
                    "Forgotten Email Not Subscribed",
                    &format!(
                        "{email} was permanently deleted and cannot be re-imported. The contact must re-subscribe to get back on the list."
                    ),
                );
            }
            let fields = body["merge_fields"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let status = body["status"].as_str();
            let member = match m.members.get_mut(hash) {
                Some(existing) => {
                    if let Some(s) = status {
                        existing.status = s.to_string();
                    }
                    existing.merge_fields.extend(fields);
                    existing.clone()
                }
                None => {
                    let s = status
                        .or(body["status_if_new"].as_str())
                        .unwrap_or("subscribed")
                        .to_string();
                    let member = m.new_member(email, &s, fields);
                    m.members.insert(hash.to_string(), member.clone());
                    member
                }
            };
            ok_json(200, member.to_json())
        }
        _ => problem(
            405,
            "Method Not Allowed",
            "The requested method and resource are not compatible.",
        ),
    }
}
