//! Inbound webhooks end to end: accepted events reach the destination mapped
//! and signed; refused ones change nothing; a repeated webhook-id is a no-op.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sha2::Digest;

backend_tests!(
    signed_upsert_is_mapped_and_delivered,
    bad_requests_are_refused_and_change_nothing,
    duplicate_webhook_id_is_delivered_once,
    a_refused_change_fails_alone_in_its_group_commit,
    deliveries_are_found_by_source_id,
);

const TABLES: [&str; 4] = ["subjects", "changes", "delivery_jobs", "inbound_messages"];

async fn signed_upsert_is_mapped_and_delivered(backend: Backend) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;

    let event = profile_event("cust-0001", now_utc());
    let reply = hub.send_ok(&event).await;
    assert_eq!(reply["status"], "accepted");
    assert_eq!(reply["duplicate"], false);
    let subject = reply["subject"]
        .as_str()
        .expect("subject id in reply")
        .to_string();

    let got = sink.wait_for(1, PATIENCE).await;
    let req = &got[0];
    req.verify(&destination_secret())
        .expect("delivery is signed with the destination secret");
    assert!(
        req.verify(&source_secret()).is_err(),
        "signature must not verify with another secret"
    );
    let body = req.json();
    assert_eq!(body["type"], "profile.upserted");
    assert_eq!(body["subject"], subject.as_str());
    let expected_sha = hex::encode(sha2::Sha256::digest(b"ada@example.com"));
    assert_eq!(
        body["data"],
        json!({
            "email": "ada@example.com",
            "email_sha256": expected_sha,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": "+4915123456789",
            "tier": "free",
            "country": "Germany",
        }),
        "mapped fields; full body: {body:#}"
    );
    // analytics was denied, marketing_email granted: consent is not leaked as data.
    assert!(body["data"].get("consent").is_none());

    // Exactly one call, and it is recorded as delivered.
    let list = hub
        .wait_deliveries(&subject, "a delivered attempt", |l| {
            l.iter().any(|a| a["outcome"] == "delivered")
        })
        .await;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["destination"], "crm");
    assert_eq!(list[0]["status_code"], 200);
    assert_eq!(sink.received().len(), 1);
}

async fn bad_requests_are_refused_and_change_nothing(backend: Backend) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .webhooks("max_body", "\"2KiB\"")
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let event = profile_event("cust-bad", now_utc());

    let mut cases: Vec<(&str, u16, WebhookResponse)> = Vec::new();
    cases.push((
        "forged signature",
        401,
        hub.webhook(&event).forge().send().await,
    ));
    cases.push((
        "timestamp 6 min old",
        401,
        hub.webhook(&event).shift(-360).send().await,
    ));
    cases.push((
        "timestamp 6 min ahead",
        401,
        hub.webhook(&event).shift(360).send().await,
    ));
    for header in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        cases.push((
            "missing header",
            400,
            hub.webhook(&event).without(header).send().await,
        ));
    }
    cases.push((
        "unknown source",
        404,
        hub.webhook(&event).source("nobody").send().await,
    ));
    let mut big = event.clone();
    big["subject"]["nickName"] = json!("x".repeat(4096));
    cases.push(("body over max_body", 413, hub.webhook(&big).send().await));
    cases.push((
        "malformed JSON",
        400,
        hub.webhook(&event)
            .raw_body(b"{\"type\": \"profile.upserted\", ".to_vec())
            .send()
            .await,
    ));
    let mut no_ext = event.clone();
    no_ext["subject"]
        .as_object_mut()
        .unwrap()
        .remove("externalId");
    cases.push(("missing externalId", 422, hub.webhook(&no_ext).send().await));

    for (what, status, resp) in &cases {
        assert_eq!(resp.status, *status, "{what}: {resp:?}");
        assert!(
            resp.content_type.starts_with("application/problem+json"),
            "{what}: content-type {:?}",
            resp.content_type
        );
        assert_eq!(
            resp.json["status"], *status,
            "{what}: problem body {:?}",
            resp.json
        );
        assert!(
            resp.json["title"].is_string(),
            "{what}: problem body {:?}",
            resp.json
        );
    }

    // The database holds nothing, by its own gauges and by a direct count.
    let m = hub.metrics().await;
    assert_eq!(m.get("hub_subjects"), Some(&0.0), "{m:?}");
    assert_eq!(
        m.get("hub_delivery_jobs{status=\"pending\"}"),
        Some(&0.0),
        "{m:?}"
    );
    assert_eq!(
        m.get("hub_delivery_jobs{status=\"running\"}"),
        Some(&0.0),
        "{m:?}"
    );
    assert_eq!(
        m.get("hub_webhooks_rejected_total"),
        Some(&(cases.len() as f64)),
        "{m:?}"
    );
    for (table, n) in hub.db.counts(&TABLES).await {
        assert_eq!(n, 0, "{table} must stay empty");
    }

    // A valid request still works afterwards (the hub is not wedged), which
    // also proves the sink would have seen anything that slipped through.
    // Four minutes of clock skew is inside the 5 minute tolerance.
    let ok = hub
        .webhook(&profile_event("cust-good", now_utc()))
        .shift(-240)
        .send()
        .await;
    assert_eq!(ok.status, 202, "{ok:?}");
    let got = sink.wait_for(1, PATIENCE).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.received().len(),
        1,
        "only the valid event is delivered"
    );
    assert_eq!(got[0].json()["data"]["email"], "ada@example.com");
    let counts = hub
        .db
        .counts(&["subjects", "changes", "inbound_messages"])
        .await;
    for (table, n) in counts {
        assert_eq!(n, 1, "{table} holds exactly the valid event");
    }
}

async fn duplicate_webhook_id_is_delivered_once(backend: Backend) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let event = profile_event("cust-dup", now_utc());
    let first = hub.webhook(&event).id("msg_same_id_1").send().await;
    let second = hub.webhook(&event).id("msg_same_id_1").send().await;
    assert!((200..300).contains(&first.status), "{first:?}");
    assert!((200..300).contains(&second.status), "{second:?}");
    assert_eq!(first.json["duplicate"], false, "{first:?}");
    assert_eq!(second.json["duplicate"], true, "{second:?}");
    let subject = first.json["subject"].as_str().unwrap().to_string();

    sink.wait_for(1, PATIENCE).await;
    hub.wait_deliveries(&subject, "delivery", |l| {
        l.iter().any(|a| a["outcome"] == "delivered")
    })
    .await;
    // A third copy after the delivery: still nothing new.
    let third = hub.webhook(&event).id("msg_same_id_1").send().await;
    assert_eq!(third.json["duplicate"], true, "{third:?}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(sink.received().len(), 1, "exactly one delivery");
    let counts: Vec<(String, i64)> = hub
        .db
        .counts(&["changes", "inbound_messages", "subjects"])
        .await;
    for (table, n) in counts {
        assert_eq!(n, 1, "{table}: one row for one webhook-id");
    }
    let m = hub.metrics().await;
    assert_eq!(m.get("hub_webhooks_duplicate_total"), Some(&2.0), "{m:?}");
}

/// Makes the database itself refuse any subject with externalId `poison`
/// (a trigger), as it refuses data it cannot hold: the input checks pass it.
async fn install_poison_trigger(db: &Db) {
    use sqlx::Connection;
    match db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON subjects \
                 WHEN NEW.external_id = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END",
            )
            .execute(&mut c)
            .await
            .unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            for sql in [
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
                 IF NEW.external_id = 'poison' THEN \
                 RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON subjects \
                 FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
            ] {
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
        }
    }
}

/// One change the database refuses, sent among many good ones so that they
/// share group commits: every good one is answered 202 and delivered, the
/// refused one gets a 4xx (never a 503 that a source would retry forever).
async fn a_refused_change_fails_alone_in_its_group_commit(backend: Backend) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    install_poison_trigger(&hub.db).await;
    let split = "group commit failed; committing its halves apart";
    let mut good = 0;
    // Until a batch held the refused change with others (nearly always the first round).
    for round in 0..5 {
        let t = now_utc();
        let sends: Vec<_> = (0..60)
            .map(|i| {
                let ext = if i == 30 {
                    "poison".to_string()
                } else {
                    format!("batch-{round}-{i}")
                };
                let request = hub.webhook(&profile_event(&ext, t));
                async move { (ext, request.send().await) }
            })
            .collect();
        for (ext, r) in futures::future::join_all(sends).await {
            if ext == "poison" {
                assert_eq!(r.status, 422, "{r:?}");
                assert_eq!(r.content_type, "application/problem+json");
            } else {
                assert_eq!(r.status, 202, "{ext}: {r:?}\n{}", hub.log_text());
                good += 1;
            }
        }
        let log = std::fs::read_to_string(&hub.log).unwrap_or_default();
        if log.contains(split) {
            break;
        }
    }
    hub.wait_for_log(split, 1).await;
    // Every good change is delivered; the refused one left nothing behind.
    sink.wait_for(good, PATIENCE).await;
    assert_eq!(sink.subjects().len(), good);
    let counts = hub.db.counts(&["subjects"]).await;
    assert_eq!(counts[0].1, good as i64);
    let out = hub.cli(&["deliveries", "--subject", "ciam:poison"]).await;
    assert!(!out.status.success(), "no subject poison: {out:?}");
}

/// `GET /admin/deliveries?subject=SOURCE:externalId` finds what the hub id
/// finds, as `hub deliveries --subject` does.
async fn deliveries_are_found_by_source_id(backend: Backend) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let reply = hub.send_ok(&profile_event("dd-1", now_utc())).await;
    let id = reply["subject"].as_str().unwrap().to_string();
    hub.wait_deliveries(&id, "a delivery", |l| !l.is_empty())
        .await;
    let get = |q: String| {
        let hub = &hub;
        async move {
            let r = hub
                .http
                .get(format!("{}/admin/deliveries?subject={q}", hub.url))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (status, by_id) = get(id.clone()).await;
    assert_eq!(status, 200);
    let (status, by_source) = get("ciam:dd-1".into()).await;
    assert_eq!(status, 200);
    assert!(
        !by_id["deliveries"].as_array().unwrap().is_empty(),
        "{by_id}"
    );
    assert_eq!(by_source, by_id);
    let cli = hub.deliveries(Some("ciam:dd-1")).await;
    assert_eq!(cli.len(), by_id["deliveries"].as_array().unwrap().len());
    let (status, body) = get("ciam:nobody".into()).await;
    assert_eq!(status, 404, "{body}");
}
