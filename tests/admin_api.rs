//! The admin API over real HTTP on loopback against `hub serve` (SQLite,
//! and PostgreSQL for the routes that write): every route, its scopes, its
//! problem JSON, and the OpenAPI document that describes it.

mod common;

use std::time::{Duration, Instant};

use common::{
    ADMIN_TOKEN, Backend, PATIENCE, Reply, Sink, TestHub, crm_mapping, now_utc, profile_event,
};
use serde_json::{Value, json};
use sha2::Digest;

/// A read-scoped token named `reader`, and a second write token `ops`.
const READ_TOKEN: &str = "e2e-read-token";
const OPS_TOKEN: &str = "e2e-ops-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Read,
    Write,
    /// The document itself, served without a token.
    Nothing,
}

/// Every admin route, by hand: the document must list exactly these, and
/// the router must serve each (a missing one answers 404, not 401).
const ROUTES: &[(&str, &str, Needs)] = &[
    ("get", "/admin/openapi.json", Needs::Nothing),
    ("get", "/admin/subjects", Needs::Read),
    ("get", "/admin/subjects/{subject}", Needs::Read),
    ("get", "/admin/subjects/{subject}/consent", Needs::Read),
    ("get", "/admin/subjects/{subject}/timeline", Needs::Read),
    ("get", "/admin/subjects/{subject}/export", Needs::Read),
    ("post", "/admin/subjects/{subject}/erase", Needs::Write),
    ("get", "/admin/destinations", Needs::Read),
    ("get", "/admin/destinations/{name}", Needs::Read),
    ("post", "/admin/destinations/{name}/pause", Needs::Write),
    ("post", "/admin/destinations/{name}/resume", Needs::Write),
    ("post", "/admin/destinations/{name}/backfill", Needs::Write),
    ("get", "/admin/dead-letters", Needs::Read),
    ("post", "/admin/dead-letters/replay", Needs::Write),
    ("get", "/admin/dead-letters/{id}", Needs::Read),
    ("delete", "/admin/dead-letters/{id}", Needs::Write),
    ("post", "/admin/dead-letters/{id}/replay", Needs::Write),
    ("get", "/admin/deliveries", Needs::Read),
    ("get", "/admin/changes", Needs::Read),
    ("get", "/admin/mappings", Needs::Read),
    ("post", "/admin/mappings/validate", Needs::Read),
    ("get", "/admin/mappings/{destination}/preview", Needs::Read),
    ("get", "/admin/erasure-receipts", Needs::Read),
    ("get", "/admin/erasure-receipts/{subject_id}", Needs::Read),
];

fn sha(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

fn tokens_toml() -> String {
    format!(
        "[admin.tokens.reader]\ntoken_sha256 = \"{}\"\nscope = \"read\"\n\n\
         [admin.tokens.ops]\ntoken_sha256 = \"{}\"\nscope = \"write\"\n",
        sha(READ_TOKEN),
        sha(OPS_TOKEN)
    )
}

async fn start(backend: Backend, sink: &Sink, extra_mapping_lines: &str) -> TestHub {
    let mapping = format!("{}{extra_mapping_lines}", crm_mapping("crm", &sink.url()));
    TestHub::builder(backend)
        .mapping("crm.yaml", mapping)
        .toml(&tokens_toml())
        .start()
        .await
}

struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

async fn call(
    hub: &TestHub,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let url = format!("{}{path}", hub.url);
    let mut req = hub
        .http
        .request(method.to_uppercase().parse().unwrap(), &url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status >= 400 {
        assert_eq!(
            content_type, "application/problem+json",
            "{method} {path}: {status} {body}"
        );
        assert_eq!(body["status"], status, "{body}");
    }
    assert!(status < 500, "{method} {path}: {status} {body}");
    Answer {
        status,
        content_type,
        body,
    }
}

async fn get(hub: &TestHub, path: &str) -> Value {
    let a = call(hub, "get", path, Some(READ_TOKEN), None).await;
    assert_eq!(a.status, 200, "GET {path}: {}", a.body);
    a.body
}

async fn write(hub: &TestHub, method: &str, path: &str, body: Option<Value>) -> Answer {
    call(hub, method, path, Some(OPS_TOKEN), body).await
}

/// Polls `path` (read token) until `done` holds.
async fn wait_get(hub: &TestHub, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let body = get(hub, path).await;
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {body:#}\n{}",
            hub.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn concrete(template: &str) -> String {
    template
        .replace("{subject}", "ciam:nobody")
        .replace("{subject_id}", "nobody")
        .replace("{name}", "crm")
        .replace("{destination}", "crm")
        .replace("{id}", "no-such-letter")
}

// ------------------------------------------------------------ the document

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_in_the_openapi_document_and_served() {
    let sink = Sink::start().await;
    let hub = start(Backend::Sqlite, &sink, "").await;
    let doc = call(&hub, "get", "/admin/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    assert!(doc.content_type.starts_with("application/json"));
    let doc = doc.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());

    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.push((method.clone(), path.clone()));
            for p in op["parameters"].as_array().into_iter().flatten() {
                let schema = &p["schema"];
                if schema["type"] == "string" {
                    assert_eq!(schema["pattern"], "^[^\\x00]*$", "{method} {path}: {p}");
                }
            }
            if path != "/admin/openapi.json" {
                assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
                for status in ["400", "401", "403", "503"] {
                    let content = &op["responses"][status]["content"]["application/problem+json"];
                    assert_eq!(
                        content["schema"]["$ref"], "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    documented.sort();
    let mut listed: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    listed.sort();
    assert_eq!(documented, listed, "the document and the route list differ");

    for (method, template, needs) in ROUTES {
        let path = concrete(template);
        let anonymous = call(&hub, method, &path, None, None).await;
        match needs {
            Needs::Nothing => assert_eq!(anonymous.status, 200, "{method} {path}"),
            _ => assert_eq!(anonymous.status, 401, "{method} {path}: {}", anonymous.body),
        }
        let wrong = call(&hub, method, &path, Some("not-a-token"), None).await;
        if *needs != Needs::Nothing {
            assert_eq!(wrong.status, 401, "{method} {path}");
        }
        let read = call(&hub, method, &path, Some(READ_TOKEN), None).await;
        match needs {
            Needs::Write => {
                assert_eq!(read.status, 403, "{method} {path}: {}", read.body);
                assert_eq!(read.body["title"], "Insufficient scope");
            }
            _ => assert_ne!(read.status, 403, "{method} {path}: {}", read.body),
        }
    }
    // Something that is not a route is 404, so the 401s above were routes.
    let none = call(&hub, "get", "/admin/no-such-thing", Some(READ_TOKEN), None).await;
    assert_eq!(none.status, 404);
}

// ------------------------------------------------------------ scopes

async fn a_read_token_changes_nothing(backend: Backend) {
    let sink = Sink::start().await;
    sink.script([Reply::Status(422)]);
    let hub = start(backend, &sink, "").await;
    let reply = hub.send_ok(&profile_event("cust-scope", now_utc())).await;
    let subject = reply["subject"].as_str().unwrap().to_string();
    let letters = wait_get(&hub, "/admin/dead-letters", "a dead letter", |b| {
        b["dead_letters"].as_array().unwrap().len() == 1
    })
    .await;
    let id = letters["dead_letters"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (method, path, body) in [
        ("post", format!("/admin/dead-letters/{id}/replay"), None),
        (
            "post",
            "/admin/dead-letters/replay".to_string(),
            Some(json!({"all": true})),
        ),
        ("delete", format!("/admin/dead-letters/{id}"), None),
        ("post", "/admin/destinations/crm/pause".to_string(), None),
        ("post", "/admin/destinations/crm/resume".to_string(), None),
        ("post", "/admin/destinations/crm/backfill".to_string(), None),
        ("post", format!("/admin/subjects/{subject}/erase"), None),
    ] {
        let a = call(&hub, method, &path, Some(READ_TOKEN), body).await;
        assert_eq!(a.status, 403, "{method} {path}: {}", a.body);
        assert!(
            a.body["detail"].as_str().unwrap().contains("reader"),
            "{}",
            a.body
        );
        let a = call(&hub, method, &path, None, None).await;
        assert_eq!(a.status, 401, "{method} {path}");
    }
    // Nothing moved: the letter waits, the destination is active, the
    // subject is not being erased, no backfill ran.
    let letter = get(&hub, &format!("/admin/dead-letters/{id}")).await;
    assert!(letter["replayed_at"].is_null(), "{letter}");
    let crm = get(&hub, "/admin/destinations/crm").await;
    assert_eq!(crm["state"], "active", "{crm}");
    assert!(crm["backfill"].is_null(), "{crm}");
    let view = get(&hub, &format!("/admin/subjects/{subject}")).await;
    assert!(view["erase_requested_at"].is_null(), "{view}");
    // The same requests with a write token do what they say.
    let a = write(&hub, "post", "/admin/destinations/crm/pause", None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        get(&hub, "/admin/destinations/crm").await["state"],
        "paused"
    );
}

// ------------------------------------------------------------ subjects

async fn subjects_are_found_and_shown_with_consent_and_timeline(backend: Backend) {
    let sink = Sink::start().await;
    let hub = start(backend, &sink, "").await;
    let reply = hub.send_ok(&profile_event("cust-find", now_utc())).await;
    let id = reply["subject"].as_str().unwrap().to_string();
    sink.wait_for(1, PATIENCE).await;

    // The fixture's e-mail is " Ada@Example.com ": found trimmed, any case.
    for q in [
        "ada@example.com",
        "ADA@example.COM",
        "cust-find",
        id.as_str(),
    ] {
        let found = get(&hub, &format!("/admin/subjects?q={}", urlencode(q))).await;
        let ids: Vec<&str> = found["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![id.as_str()], "q={q}: {found}");
    }
    let none = get(&hub, "/admin/subjects?q=nobody%40example.com").await;
    assert_eq!(none["subjects"], json!([]));

    let view = get(&hub, "/admin/subjects/ciam:cust-find").await;
    assert_eq!(view["id"], id.as_str());
    assert_eq!(view["external_id"], "cust-find");
    assert_eq!(view["profile"]["name"]["givenName"], "Ada");
    let consent: Vec<(String, String)> = view["consent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["purpose"].as_str().unwrap().into(),
                c["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        consent.contains(&("marketing_email".into(), "granted".into())),
        "{view}"
    );
    assert!(
        consent.contains(&("analytics".into(), "denied".into())),
        "{view}"
    );
    assert_eq!(
        view["consent_history"].as_array().unwrap().len(),
        2,
        "{view}"
    );

    let consent = get(&hub, &format!("/admin/subjects/{id}/consent")).await;
    assert_eq!(consent["history"], view["consent_history"]);

    let timeline = wait_get(
        &hub,
        &format!("/admin/subjects/{id}/timeline"),
        "a delivery",
        |t| t["destinations"][0]["holds"] == "sent",
    )
    .await;
    let crm = &timeline["destinations"][0];
    assert_eq!(crm["destination"], "crm");
    assert_eq!(crm["attempts"][0]["outcome"], "delivered", "{timeline}");
    let held = get(&hub, &format!("/admin/subjects/{id}")).await;
    assert_eq!(held["destinations"][0]["destination"], "crm", "{held}");

    let export = get(&hub, &format!("/admin/subjects/{id}/export")).await;
    assert_eq!(export["id"], id.as_str());
    assert!(!export["changes"].as_array().unwrap().is_empty());

    let deliveries = get(&hub, &format!("/admin/deliveries?subject={id}&limit=10")).await;
    assert_eq!(deliveries["deliveries"][0]["subject_id"], id.as_str());

    for path in [
        "/admin/subjects/ciam:nobody".to_string(),
        "/admin/subjects/ciam:nobody/timeline".to_string(),
        "/admin/deliveries?subject=ciam:nobody".to_string(),
    ] {
        let a = call(&hub, "get", &path, Some(READ_TOKEN), None).await;
        assert_eq!(a.status, 404, "{path}");
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn erasure_leaves_a_receipt_the_api_lists(backend: Backend) {
    let sink = Sink::start().await;
    let hub = start(backend, &sink, "").await;
    let reply = hub.send_ok(&profile_event("cust-gone", now_utc())).await;
    let id = reply["subject"].as_str().unwrap().to_string();
    sink.wait_for(1, PATIENCE).await;
    let a = write(&hub, "post", "/admin/subjects/ciam:cust-gone/erase", None).await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["subject"], id.as_str());
    assert_eq!(a.body["erasure"], "requested");
    let again = write(&hub, "post", &format!("/admin/subjects/{id}/erase"), None).await;
    assert_eq!(again.status, 409);

    let list = wait_get(&hub, "/admin/erasure-receipts", "a receipt", |b| {
        !b["receipts"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(list["receipts"][0]["subject_id"], id.as_str());
    let one = get(&hub, &format!("/admin/erasure-receipts/{id}")).await;
    assert_eq!(one["confirmed"][0][0], "crm", "{one}");
    assert_eq!(one["unconfirmed"], json!([]));
    let missing = call(
        &hub,
        "get",
        "/admin/erasure-receipts/nobody",
        Some(READ_TOKEN),
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
}

// ------------------------------------------------------------ destinations

async fn destinations_pause_resume_and_backfill(backend: Backend) {
    let sink = Sink::start().await;
    let hub = start(backend, &sink, "").await;
    let list = get(&hub, "/admin/destinations").await;
    assert_eq!(list["destinations"][0]["name"], "crm");
    assert_eq!(list["destinations"][0]["connector"], "webhook");
    assert_eq!(list["destinations"][0]["state"], "active");

    let a = write(
        &hub,
        "post",
        "/admin/destinations/crm/pause",
        Some(json!({"reason": "vendor maintenance"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["state"], "paused");
    let crm = get(&hub, "/admin/destinations/crm").await;
    assert_eq!(crm["state"], "paused");
    assert_eq!(crm["reason"], "vendor maintenance");
    assert_eq!(crm["paused_by"], "admin");

    hub.send_ok(&profile_event("cust-paused", now_utc())).await;
    let crm = wait_get(&hub, "/admin/destinations/crm", "a pending job", |d| {
        d["pending"] == 1
    })
    .await;
    assert!(
        crm["oldest_pending_ms"].as_i64().is_some(),
        "lag is shown: {crm}"
    );
    assert!(sink.received().is_empty(), "nothing is sent while paused");

    let a = write(&hub, "post", "/admin/destinations/crm/resume", None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["was_paused"], true);
    sink.wait_for(1, PATIENCE).await;
    let crm = wait_get(&hub, "/admin/destinations/crm", "a delivery counted", |d| {
        d["delivered_last_hour"] == 1
    })
    .await;
    assert_eq!(crm["state"], "active");
    assert_eq!(crm["error_rate_last_hour"], 0.0, "{crm}");

    let a = write(&hub, "post", "/admin/destinations/crm/backfill", None).await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["backfill"]["total"], 1, "{}", a.body);
    wait_get(&hub, "/admin/destinations/crm", "the backfill done", |d| {
        d["backfill"]["state"] == "done"
    })
    .await;
    sink.wait_for(2, PATIENCE).await;

    for (method, path) in [
        ("get", "/admin/destinations/nope"),
        ("post", "/admin/destinations/nope/pause"),
        ("post", "/admin/destinations/nope/resume"),
        ("post", "/admin/destinations/nope/backfill"),
    ] {
        let a = call(&hub, method, path, Some(OPS_TOKEN), None).await;
        assert_eq!(a.status, 404, "{method} {path}");
    }
}

// ------------------------------------------------------------ dead letters

async fn dead_letters_are_inspected_replayed_and_discarded(backend: Backend) {
    let sink = Sink::start().await;
    sink.script([Reply::Status(422), Reply::Status(422)]);
    let hub = start(backend, &sink, "").await;
    hub.send_ok(&profile_event("cust-dl-1", now_utc())).await;
    hub.send_ok(&profile_event("cust-dl-2", now_utc())).await;
    let list = wait_get(&hub, "/admin/dead-letters", "two dead letters", |b| {
        b["dead_letters"].as_array().unwrap().len() == 2
    })
    .await;
    let ids: Vec<String> = list["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let only_crm = get(&hub, "/admin/dead-letters?destination=crm").await;
    assert_eq!(only_crm["dead_letters"].as_array().unwrap().len(), 2);
    let other = get(&hub, "/admin/dead-letters?destination=other").await;
    assert_eq!(other["dead_letters"], json!([]));

    // An empty name selects nothing (the store reads "" as "any").
    for body in [json!({"id": ""}), json!({"destination": ""}), json!([""])] {
        let a = write(&hub, "post", "/admin/dead-letters/replay", Some(body)).await;
        assert!(matches!(a.status, 400 | 422), "{}", a.body);
    }
    let still = get(&hub, "/admin/dead-letters").await;
    assert_eq!(
        still["dead_letters"].as_array().unwrap().len(),
        2,
        "{still}"
    );

    let letter = get(&hub, &format!("/admin/dead-letters/{}", ids[0])).await;
    assert_eq!(letter["vendor_answer"]["status_code"], 422, "{letter}");
    assert!(letter["vendor_answer"]["detail"].is_string(), "{letter}");
    assert_eq!(letter["attempts"], 1, "{letter}");
    assert_eq!(letter["recent_attempts"][0]["outcome"], "dead", "{letter}");

    let a = write(
        &hub,
        "post",
        &format!("/admin/dead-letters/{}/replay", ids[0]),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["replayed"], 1);
    sink.wait_for(3, PATIENCE).await;
    let again = write(
        &hub,
        "post",
        &format!("/admin/dead-letters/{}/replay", ids[0]),
        None,
    )
    .await;
    assert_eq!(again.status, 404, "a replayed letter is not replayed twice");

    let a = write(
        &hub,
        "delete",
        &format!("/admin/dead-letters/{}", ids[1]),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["discarded"], true);
    let gone = get(&hub, "/admin/dead-letters").await;
    assert_eq!(gone["dead_letters"], json!([]));
    let again = write(
        &hub,
        "delete",
        &format!("/admin/dead-letters/{}", ids[1]),
        None,
    )
    .await;
    assert_eq!(again.status, 404);
    let none = write(
        &hub,
        "post",
        "/admin/dead-letters/replay",
        Some(json!({"all": true})),
    )
    .await;
    assert_eq!(none.status, 200);
    assert_eq!(none.body["replayed"], 0);
    // Discarded means not delivered: only the replayed one came through.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 3);
}

// ------------------------------------------------------------ changes

async fn changes_are_listed_newest_first_and_paged(backend: Backend) {
    let sink = Sink::start().await;
    let hub = start(backend, &sink, "").await;
    for n in 1..=3 {
        hub.send_ok(&profile_event(&format!("cust-ch-{n}"), now_utc()))
            .await;
    }
    let page = get(&hub, "/admin/changes?limit=2").await;
    let changes = page["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes[0]["id"].as_i64() > changes[1]["id"].as_i64());
    assert_eq!(changes[0]["kind"], "profile_upserted");
    assert_eq!(changes[0]["source"], "ciam");
    let before = page["next_before"].as_i64().unwrap();
    let rest = get(&hub, &format!("/admin/changes?limit=2&before={before}")).await;
    assert_eq!(rest["changes"].as_array().unwrap().len(), 1, "{rest}");
    assert!(rest["next_before"].is_null());
    let text = page.to_string();
    assert!(!text.contains("Ada"), "no values in the change log: {text}");
}

// ------------------------------------------------------------ mappings

async fn mappings_are_listed_validated_and_previewed(backend: Backend) {
    let sink = Sink::start().await;
    let hub = start(
        backend,
        &sink,
        "  nickname: { from: userName, consent: analytics }\n",
    )
    .await;
    let list = get(&hub, "/admin/mappings").await;
    let crm = &list["mappings"][0];
    assert_eq!(crm["destination"], "crm");
    assert_eq!(crm["file"], "crm.yaml");
    assert_eq!(crm["consent"], json!(["marketing_email"]));
    assert!(
        crm["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["target"] == "nickname" && f["consent"] == "analytics")
    );

    let bad = "destination: x\nconnector: webhook\nsettings:\n  url: http://127.0.0.1:9/hook\n  secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\nfields:\n  email:\n    from: emails[primary eq true].value\n    transform: [trim, shout]\n";
    let a = call(
        &hub,
        "post",
        "/admin/mappings/validate",
        Some(READ_TOKEN),
        Some(json!({"file": "x.yaml", "text": bad})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["valid"], false);
    let e = &a.body["errors"][0];
    assert_eq!(e["file"], "x.yaml");
    assert_eq!(e["line"], 9, "{e}");
    assert!(
        e["key_path"]
            .as_str()
            .unwrap()
            .starts_with("fields.email.transform"),
        "{e}"
    );
    assert!(
        e["message"].as_str().unwrap().starts_with("x.yaml:9:"),
        "{e}"
    );
    let good = bad.replace("shout", "lowercase");
    let a = call(
        &hub,
        "post",
        "/admin/mappings/validate",
        Some(READ_TOKEN),
        Some(json!({"text": good})),
    )
    .await;
    assert_eq!(a.body["valid"], true, "{}", a.body);
    assert_eq!(a.body["destination"], "x");
    let a = call(
        &hub,
        "post",
        "/admin/mappings/validate",
        Some(READ_TOKEN),
        Some(json!({"txt": good})),
    )
    .await;
    assert_eq!(a.status, 422, "{}", a.body);

    // Marketing granted, analytics denied (the fixture): the upsert goes
    // out without the analytics field, and the preview says why.
    hub.send_ok(&profile_event("cust-prev", now_utc())).await;
    let p = get(&hub, "/admin/mappings/crm/preview?subject=ciam:cust-prev").await;
    assert_eq!(p["outcome"], "send", "{p}");
    assert_eq!(p["action"], "upsert");
    assert_eq!(p["payload"]["email"], "ada@example.com", "{p}");
    assert!(p["payload"].get("nickname").is_none(), "{p}");
    assert_eq!(
        p["removed_fields"],
        json!([{"field": "nickname", "purpose": "analytics", "reason": "denied"}])
    );
    // Without marketing consent nothing is sent at all.
    let mut withdrawn = profile_event("cust-prev2", now_utc());
    withdrawn["consent"] = json!({"analytics": "granted"});
    hub.send_ok(&withdrawn).await;
    let p = get(&hub, "/admin/mappings/crm/preview?subject=ciam:cust-prev2").await;
    assert_eq!(p["outcome"], "suppressed", "{p}");
    assert!(p["payload"].is_null());
    assert_eq!(
        p["missing_consent"],
        json!([{"purpose": "marketing_email", "reason": "not_recorded"}])
    );
    for path in [
        "/admin/mappings/nope/preview?subject=ciam:cust-prev",
        "/admin/mappings/crm/preview?subject=ciam:nobody",
    ] {
        let a = call(&hub, "get", path, Some(READ_TOKEN), None).await;
        assert_eq!(a.status, 404, "{path}");
    }
}

// ------------------------------------------------------------ bad input

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_problem_that_quotes_no_value() {
    let sink = Sink::start().await;
    let hub = start(Backend::Sqlite, &sink, "").await;
    for (method, path, body, status) in [
        ("get", "/admin/subjects", None, 400),
        ("get", "/admin/subjects?q=", None, 400),
        ("get", "/admin/subjects?q=x&limit=0", None, 400),
        ("get", "/admin/subjects?q=x&limit=1001", None, 400),
        ("get", "/admin/changes?limit=ada%40example.com", None, 400),
        ("get", "/admin/changes?before=-1", None, 400),
        ("get", "/admin/deliveries?colour=blue", None, 400),
        ("get", "/admin/mappings/crm/preview", None, 400),
        ("post", "/admin/dead-letters/replay", None, 400),
        ("post", "/admin/dead-letters/replay", Some(json!({})), 422),
        ("post", "/admin/dead-letters/replay", Some(json!([""])), 422),
        (
            "post",
            "/admin/dead-letters/replay",
            Some(json!({"id": ""})),
            400,
        ),
        (
            "post",
            "/admin/dead-letters/replay",
            Some(json!({"destination": ""})),
            400,
        ),
        (
            "post",
            "/admin/dead-letters/replay",
            Some(json!({"id": "a", "all": true})),
            422,
        ),
        (
            "post",
            "/admin/dead-letters/replay",
            Some(json!({"all": "ada@example.com"})),
            422,
        ),
        ("post", "/admin/mappings/validate", None, 400),
        (
            "post",
            "/admin/destinations/crm/pause",
            Some(json!({"reason": "x".repeat(501)})),
            400,
        ),
    ] {
        let a = write(&hub, method, path, body).await;
        assert_eq!(a.status, status, "{method} {path}: {}", a.body);
        assert!(
            !a.body.to_string().contains("ada@example.com"),
            "{method} {path}: {}",
            a.body
        );
    }
    let raw = hub
        .http
        .post(format!("{}/admin/mappings/validate", hub.url))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(raw.headers()["content-type"], "application/problem+json");
}

// ------------------------------------------------------------ tokens

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_hub_token_new_admin_works_with_its_scope() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["token", "new", "--admin", "auditor", "--scope", "read"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find_map(|l| {
            l.rsplit_once(": ")
                .filter(|_| l.starts_with("token"))
                .map(|(_, t)| t.to_string())
        })
        .expect("a token line");
    let lines: String = text
        .lines()
        .skip_while(|l| !l.starts_with("[admin.tokens.auditor]"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(lines.contains("scope = \"read\""), "{text}");
    assert!(!lines.contains(&token), "only the hash goes into hub.toml");
    let sink = Sink::start().await;
    let hub = TestHub::builder(Backend::Sqlite)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .toml(&lines)
        .start()
        .await;
    let a = call(&hub, "get", "/admin/destinations", Some(&token), None).await;
    assert_eq!(a.status, 200);
    let a = call(
        &hub,
        "post",
        "/admin/destinations/crm/pause",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(a.status, 403);
    // The single `admin.token_sha256` of earlier versions still writes.
    let a = call(
        &hub,
        "post",
        "/admin/destinations/crm/pause",
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_admin_scope_is_a_config_error_naming_the_key() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[admin.tokens.ops]\ntoken_sha256 = \"{}\"\nscope = \"admin\"\n",
            sha("x")
        ),
    )
    .unwrap();
    drop(sink);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
        .arg("--config")
        .arg(&config)
        .args(["mappings", "check", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("admin.tokens.ops.scope: expected \"read\" or \"write\""),
        "{err}"
    );
}

backend_tests!(
    a_read_token_changes_nothing,
    subjects_are_found_and_shown_with_consent_and_timeline,
    erasure_leaves_a_receipt_the_api_lists,
    destinations_pause_resume_and_backfill,
    dead_letters_are_inspected_replayed_and_discarded,
    changes_are_listed_newest_first_and_paged,
    mappings_are_listed_validated_and_previewed,
);
