//! The Klaviyo fake's operations: each checks what the description
//! leaves out, changes the model and answers as Klaviyo does.

use super::*;

pub(super) fn route(app: &App, rec: &Recorded) -> Response {
    let segments: Vec<&str> = rec.path.trim_matches('/').split('/').collect();
    let base = app.url.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let body = rec.json();
    let mut m = app.model.lock().unwrap_or_else(|e| e.into_inner());
    match (rec.method.as_str(), segments.as_slice()) {
        ("POST", ["api", "profile-import"]) => profile_import(app, rec, &mut m, &base, &body),
        ("POST", ["api", "profile-bulk-import-jobs"]) => {
            bulk_import(app, rec, &mut m, &base, &body)
        }
        ("GET", ["api", "profile-bulk-import-jobs", id]) => match m.poll(id) {
            Some(job) => reply(
                200,
                Some(
                    json!({"data": job_json(&job, &base), "links": {"self": format!("{base}{}", rec.path)}}),
                ),
            ),
            None => error(
                404,
                "not_found",
                "Not found.",
                &format!("A job with id {id} was not found."),
                None,
            ),
        },
        ("GET", ["api", "profile-bulk-import-jobs", id, "import-errors"]) => {
            import_errors(app, rec, &m, &base, id)
        }
        (
            "POST",
            [
                "api",
                kind @ ("profile-subscription-bulk-create-jobs"
                | "profile-subscription-bulk-delete-jobs"),
            ],
        ) => subscription_job(
            app,
            rec,
            &mut m,
            &body,
            *kind == "profile-subscription-bulk-create-jobs",
        ),
        ("POST", ["api", "data-privacy-deletion-jobs"]) => deletion_job(app, rec, &mut m, &body),
        ("GET", ["api", "profiles", id]) => {
            m.read(&[id.to_string()]);
            match m.profiles.get(*id) {
                Some(p) => reply(200, Some(json!({"data": p.to_json(&base)}))),
                None => error(
                    404,
                    "not_found",
                    "Not found.",
                    &format!("A profile with id {id} does not exist."),
                    None,
                ),
            }
        }
        ("GET", ["api", "profiles"]) => list_profiles(app, rec, &mut m, &base),
        _ => {
            app.journal.violation(format!(
                "{} {}: Klaviyo has this operation, the fake does not model it",
                rec.method, rec.path
            ));
            error(
                404,
                "not_found",
                "Not found.",
                "The fake does not model this operation.",
                None,
            )
        }
    }
}

fn profile_import(app: &App, rec: &Recorded, m: &mut Model, base: &str, body: &Value) -> Response {
    if rec.body.len() > MAX_PROFILE_BYTES {
        app.journal.violation(format!(
            "POST {}: {} bytes, a profile takes {MAX_PROFILE_BYTES}",
            rec.path,
            rec.body.len()
        ));
        return error(
            413,
            "request_too_large",
            "Request too large.",
            "The payload exceeds 100 KB.",
            None,
        );
    }
    let attrs = body["data"]["attributes"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if let Some((at, code, detail)) = m.refusal(&attrs) {
        return error(
            400,
            code,
            "Invalid input.",
            &detail,
            Some(&format!("/data{at}")),
        );
    }
    match m.upsert(&attrs) {
        Ok((id, created)) => {
            let profile = m.profiles[&id].to_json(base);
            reply(
                if created { 201 } else { 200 },
                Some(json!({"data": profile})),
            )
        }
        Err(other) => errors(
            409,
            vec![json!({
                "id": "00000000-0000-4000-8000-000000000000", "status": 409,
                "code": "duplicate_profile", "title": "Conflict.",
                "detail": "A profile already exists with one of these identifiers.",
                "source": {"pointer": "/data/attributes"},
                "meta": {"duplicate_profile_id": other},
            })],
        ),
    }
}

fn bulk_import(app: &App, rec: &Recorded, m: &mut Model, base: &str, body: &Value) -> Response {
    let profiles = body["data"]["attributes"]["profiles"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if profiles.len() > MAX_IMPORT_PROFILES || profiles.is_empty() {
        app.journal.violation(format!(
            "POST {}: {} profiles, a job takes 1 to {MAX_IMPORT_PROFILES}",
            rec.path,
            profiles.len()
        ));
        return error(
            400,
            "invalid",
            "Invalid input.",
            "A job takes 1 to 10000 profiles.",
            Some("/data/attributes/profiles/data"),
        );
    }
    for (k, p) in profiles.iter().enumerate() {
        let size = p.to_string().len();
        if size > MAX_PROFILE_BYTES {
            app.journal.violation(format!(
                "POST {}: profile {k} is {size} bytes, Klaviyo takes {MAX_PROFILE_BYTES}",
                rec.path
            ));
            return error(
                400,
                "invalid",
                "Invalid input.",
                "A profile exceeds 100 KB.",
                Some(&format!("/data/attributes/profiles/data/{k}")),
            );
        }
    }
    let id = m.fresh_id("FAKEJOB");
    let cancel = std::mem::take(&mut m.cancel_next_job);
    let job = ImportJob {
        id: id.clone(),
        profiles,
        polls: 0,
        polls_needed: m.job_polls,
        cancel,
        status: "queued",
        errors: Vec::new(),
        completed: 0,
    };
    let json = job_json(&job, base);
    m.jobs.insert(id, job);
    reply(
        202,
        Some(json!({"data": json, "links": {"self": format!("{base}{}", rec.path)}})),
    )
}

fn job_json(job: &ImportJob, base: &str) -> Value {
    let done = job.status == "complete";
    json!({
        "type": "profile-bulk-import-job",
        "id": job.id,
        "attributes": {
            "status": job.status,
            "created_at": "2026-11-23T10:00:00+00:00",
            "total_count": job.profiles.len(),
            "completed_count": job.completed,
            "failed_count": job.errors.len(),
            "completed_at": if done { json!("2026-11-23T10:01:00+00:00") } else { Value::Null },
            "expires_at": "2026-11-30T10:00:00+00:00",
            "started_at": if job.polls > 1 { json!("2026-11-23T10:00:30+00:00") } else { Value::Null },
        },
        "links": {"self": format!("{base}/api/profile-bulk-import-jobs/{}", job.id)},
    })
}

fn import_errors(app: &App, rec: &Recorded, m: &Model, base: &str, id: &str) -> Response {
    let Some(job) = m.jobs.get(id) else {
        return error(
            404,
            "not_found",
            "Not found.",
            &format!("A job with id {id} was not found."),
            None,
        );
    };
    let query = |k: &str| {
        rec.query
            .iter()
            .find(|(q, _)| q == k)
            .map(|(_, v)| v.clone())
    };
    let size: usize = match query("page[size]").map(|s| s.parse::<usize>()) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            app.journal
                .violation(format!("GET {}: page[size] must be 1 to 100", rec.path));
            return error(
                400,
                "invalid",
                "Invalid input.",
                "page[size] must be between 1 and 100.",
                None,
            );
        }
    };
    let from: usize = query("page[cursor]")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = job.errors.iter().skip(from).take(size).cloned().collect();
    let mut links = json!({"self": format!("{base}{}", rec.path)});
    if from + size < job.errors.len() {
        links["next"] = Value::from(format!(
            "{base}/api/profile-bulk-import-jobs/{id}/import-errors?page%5Bsize%5D={size}&page%5Bcursor%5D={}",
            from + size
        ));
    }
    reply(200, Some(json!({"data": page, "links": links})))
}

fn subscription_job(
    app: &App,
    rec: &Recorded,
    m: &mut Model,
    body: &Value,
    subscribe: bool,
) -> Response {
    let data = &body["data"];
    let profiles = data["attributes"]["profiles"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let max = if subscribe {
        MAX_SUBSCRIBE_PROFILES
    } else {
        MAX_UNSUBSCRIBE_PROFILES
    };
    if profiles.is_empty() || profiles.len() > max {
        app.journal.violation(format!(
            "POST {}: {} profiles, the job takes 1 to {max}",
            rec.path,
            profiles.len()
        ));
        return error(
            400,
            "invalid",
            "Invalid input.",
            &format!("A job takes 1 to {max} profiles."),
            Some("/data/attributes/profiles/data"),
        );
    }
    let list = data["relationships"]["list"]["data"]["id"]
        .as_str()
        .map(str::to_string);
    if let Some(list) = &list
        && list != LIST_ID
    {
        return error(
            404,
            "not_found",
            "Not found.",
            &format!("A list with id {list} does not exist."),
            Some("/data/relationships/list/data/id"),
        );
    }
    let historical = data["attributes"]["historical_import"]
        .as_bool()
        .unwrap_or(false);
    let mut problems = Vec::new();
    for (k, p) in profiles.iter().enumerate() {
        let at = |field: &str| format!("/data/attributes/profiles/data/{k}/attributes/{field}");
        let attrs = &p["attributes"];
        let email = attrs["email"].as_str();
        let marketing = &attrs["subscriptions"]["email"]["marketing"];
        let problem = |code: &str, detail: String, pointer: String| {
            json!({
                "id": "00000000-0000-4000-8000-000000000000", "status": 400, "code": code,
                "title": "Invalid input.", "detail": detail, "source": {"pointer": pointer},
            })
        };
        if marketing.is_object() && email.is_none() {
            problems.push(problem(
                "invalid",
                "An email is required for email subscriptions.".into(),
                at("email"),
            ));
        } else if let Some(email) = email {
            if !crate::mailchimp::looks_like_email(email) {
                problems.push(problem(
                    "invalid",
                    format!("Invalid email address: {email}"),
                    at("email"),
                ));
            } else if let Some(detail) = m.refused.get(&email.to_lowercase()) {
                problems.push(problem("invalid", detail.clone(), at("email")));
            }
        }
        if marketing["consented_at"].is_string() && !historical {
            problems.push(problem(
                "invalid",
                "consented_at requires historical_import.".into(),
                at("subscriptions/email/marketing/consented_at"),
            ));
        }
    }
    if !problems.is_empty() {
        return errors(400, problems);
    }
    for p in &profiles {
        let Some(email) = p["attributes"]["email"].as_str() else {
            continue;
        };
        let found = m.find("email", email);
        let id = match found.first() {
            Some(id) => id.clone(),
            None if subscribe => {
                let mut attrs = Map::new();
                attrs.insert("email".into(), Value::from(email));
                match m.upsert(&attrs) {
                    Ok((id, _)) => id,
                    Err(_) => continue,
                }
            }
            None => continue,
        };
        if let Some(profile) = m.profiles.get_mut(&id) {
            if subscribe {
                profile.email_marketing = Some("SUBSCRIBED".into());
                if let Some(l) = &list {
                    profile.lists.insert(l.clone());
                }
            } else {
                // Not on the list, or no list: unsubscribed account-wide.
                profile.email_marketing = Some("UNSUBSCRIBED".into());
                if let Some(l) = &list {
                    profile.lists.remove(l);
                }
            }
        }
    }
    reply(202, None)
}

fn deletion_job(app: &App, rec: &Recorded, m: &mut Model, body: &Value) -> Response {
    let data = &body["data"]["attributes"]["profile"]["data"];
    let mut named: Vec<(String, String)> = Vec::new();
    if let Some(id) = data["id"].as_str() {
        named.push(("id".into(), id.into()));
    }
    for field in ["email", "phone_number"] {
        if let Some(v) = data["attributes"][field].as_str() {
            named.push((field.into(), v.into()));
        }
    }
    if named.len() != 1 {
        app.journal.violation(format!(
            "POST {}: {} identifiers, a deletion takes exactly one of id, email, phone_number",
            rec.path,
            named.len()
        ));
        return error(
            400,
            "invalid",
            "Invalid input.",
            "Exactly one of id, email or phone_number is required.",
            Some("/data/attributes/profile/data"),
        );
    }
    let (by, value) = named.remove(0);
    let ids = m.find(&by, &value);
    let reads = m.deletion_reads;
    for id in ids {
        if reads == 0 {
            m.erase(&id);
        } else {
            m.pending_deletions.push(PendingDeletion {
                profile_id: id,
                reads_left: reads,
            });
        }
    }
    m.deletion_requests.push(DeletionRequest { by, value });
    reply(202, None)
}

fn list_profiles(app: &App, rec: &Recorded, m: &mut Model, base: &str) -> Response {
    let filter = rec
        .query
        .iter()
        .find(|(k, _)| k == "filter")
        .map(|(_, v)| v.clone());
    let ids: Vec<String> = match filter {
        None => m.profiles.keys().take(20).cloned().collect(),
        Some(f) => match parse_equals(&f) {
            Some((field, value))
                if ["id", "email", "phone_number", "external_id"].contains(&field.as_str()) =>
            {
                m.find(&field, &value)
            }
            _ => {
                app.journal.violation(format!("GET {}: the fake models only equals(id|email|phone_number|external_id,\"...\") filters", rec.path));
                return error(400, "invalid", "Invalid input.", "Invalid filter.", None);
            }
        },
    };
    m.read(&ids);
    let data: Vec<Value> = ids
        .iter()
        .filter_map(|id| m.profiles.get(id))
        .map(|p| p.to_json(base))
        .collect();
    reply(
        200,
        Some(json!({"data": data, "links": {"self": format!("{base}{}", rec.path)}})),
    )
}
