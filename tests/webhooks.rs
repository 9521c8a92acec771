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
