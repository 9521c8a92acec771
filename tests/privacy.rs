//! The privacy surfaces end to end, against the real binary: consent ledger
//! (`hub consent show`, admin API), withdrawal, erasure (`hub erase`, admin
//! API) with its receipt, access (`hub export`), and refusal of undeclared
//! purposes and brands.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

backend_tests!(
    consent_ledger_is_shown_by_cli_and_admin_api,
    withdrawal_reaches_the_destination_once,
    erasure_deletes_at_the_destination_and_leaves_a_receipt,
    undeclared_purposes_and_brands_are_refused,
);

async fn admin_get(hub: &TestHub, path: &str) -> (u16, Value) {
    let r = hub
        .http
        .get(format!("{}{path}", hub.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn admin_post(hub: &TestHub, path: &str) -> (u16, Value) {
    let r = hub
        .http
        .post(format!("{}{path}", hub.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn events_of(sink: &Sink) -> Vec<String> {
    sink.received()
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or("?").to_string())
        .collect()
}

async fn consent_ledger_is_shown_by_cli_and_admin_api(backend: Backend) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let mut first = profile_event("cust-ledger", now_utc() - chrono::TimeDelta::seconds(10));
    first["evidence"] = json!({"form": "signup-v2", "ip": "203.0.113.7"});
    hub.send_ok(&first).await;
    let withdraw = json!({
        "type": "consent.updated",
        "subject": {"externalId": "cust-ledger"},
        "consent": {"marketing_email": "denied"},
        "occurredAt": now_utc().to_rfc3339(),
    });
    hub.send_ok(&withdraw).await;

    let out = hub.cli(&["consent", "show", "ciam:cust-ledger"]).await;
    assert!(out.status.success(), "{out:?}");
    let shown: Value = serde_json::from_str(&out.stdout).unwrap();
    let current = shown["consent"].as_array().unwrap();
    let marketing = current
        .iter()
        .find(|c| c["purpose"] == "marketing_email")
        .unwrap();
    assert_eq!(marketing["state"], "denied");
    let history = shown["history"].as_array().unwrap();
    let marketing_history: Vec<&Value> = history
        .iter()
        .filter(|h| h["purpose"] == "marketing_email")
        .collect();
    assert_eq!(marketing_history.len(), 2, "{history:#?}");
    assert_eq!(marketing_history[0]["new_state"], "granted");
    assert_eq!(marketing_history[0]["evidence"]["form"], "signup-v2");
    assert_eq!(marketing_history[1]["previous_state"], "granted");
    assert_eq!(marketing_history[1]["new_state"], "denied");

    let (status, api) = admin_get(&hub, "/admin/subjects/ciam:cust-ledger/consent").await;
    assert_eq!(status, 200);
    assert_eq!(api["history"], shown["history"]);
    let (status, _) = admin_get(&hub, "/admin/subjects/ciam:nobody/consent").await;
    assert_eq!(status, 404);
    let unauthorized = hub
        .http
        .get(format!(
            "{}/admin/subjects/ciam:cust-ledger/consent",
            hub.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);

    let out = hub.cli(&["export", "ciam:cust-ledger"]).await;
    assert!(out.status.success(), "{out:?}");
    let export: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(export["profile"]["externalId"], "cust-ledger");
    assert_eq!(export["consent_history"], shown["history"]);
    assert!(!export["changes"].as_array().unwrap().is_empty());
}

async fn withdrawal_reaches_the_destination_once(backend: Backend) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let t0 = now_utc() - chrono::TimeDelta::seconds(60);
    let reply = hub.send_ok(&profile_event("cust-w", t0)).await;
    let subject = reply["subject"].as_str().unwrap().to_string();
    sink.wait_for(1, PATIENCE).await;
    let withdraw = json!({
        "type": "consent.updated",
        "subject": {"externalId": "cust-w"},
        "consent": {"marketing_email": "denied"},
        "occurredAt": (t0 + chrono::TimeDelta::seconds(1)).to_rfc3339(),
    });
    hub.send_ok(&withdraw).await;
    sink.wait_until(PATIENCE, |r| r.json()["type"] == "profile.suppressed")
        .await;
    // Later profile changes while withdrawn send nothing, not even another suppress.
    let mut update = profile_event("cust-w", t0 + chrono::TimeDelta::seconds(2));
    update.as_object_mut().unwrap().remove("consent");
    hub.send_ok(&update).await;
    hub.wait_deliveries(&subject, "a suppressed attempt", |l| {
        l.iter().filter(|a| a["outcome"] == "suppressed").count() >= 1
    })
    .await;
    assert_eq!(
        events_of(&sink),
        vec!["profile.upserted", "profile.suppressed"]
    );
    let export = hub.cli(&["export", &subject]).await;
    let export: Value = serde_json::from_str(&export.stdout).unwrap();
    assert_eq!(export["destinations"][0]["state"], "withdrawn");
}

async fn erasure_deletes_at_the_destination_and_leaves_a_receipt(backend: Backend) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let a = hub
        .send_ok(&profile_event("cust-erase-cli", now_utc()))
        .await;
    let b = hub
        .send_ok(&profile_event("cust-erase-api", now_utc()))
        .await;
    let (a, b) = (
        a["subject"].as_str().unwrap().to_string(),
        b["subject"].as_str().unwrap().to_string(),
    );
    sink.wait_for(2, PATIENCE).await;

    let out = hub.cli(&["erase", "ciam:cust-erase-cli"]).await;
    assert!(out.status.success(), "{out:?}");
    let (status, body) = admin_post(&hub, &format!("/admin/subjects/{b}/erase")).await;
    assert_eq!(status, 202, "{body}");
    let (status, _) = admin_post(&hub, &format!("/admin/subjects/{b}/erase")).await;
    assert_eq!(status, 409, "an erasure is requested once");

    for id in [&a, &b] {
        sink.wait_until(PATIENCE, |r| {
            let e = r.json();
            e["type"] == "profile.deleted" && e["subject"] == json!(id)
        })
        .await;
    }
    // The hub completes the erasure once the delete is confirmed.
    let deadline = Instant::now() + PATIENCE;
    for id in [&a, &b] {
        let export = loop {
            let out = hub.cli(&["export", id]).await;
            assert!(out.status.success(), "{out:?}");
            let export: Value = serde_json::from_str(&out.stdout).unwrap();
            if !export["erasure_receipt"].is_null() {
                break export;
            }
            assert!(Instant::now() < deadline, "no erasure receipt: {export:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(export["profile"], json!({}), "PII removed");
        let receipt = &export["erasure_receipt"];
        assert_eq!(receipt["confirmed"][0][0], "crm");
        assert_eq!(receipt["unconfirmed"], json!([]));
        assert!(
            export["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["detail"].is_null())
        );
    }
    // The source's identifier is free again: a new event makes a new subject.
    let again = hub
        .send_ok(&profile_event("cust-erase-cli", now_utc()))
        .await;
    assert_ne!(again["subject"].as_str().unwrap(), a);
}

async fn undeclared_purposes_and_brands_are_refused(backend: Backend) {
    let hub = TestHub::builder(backend).start().await;
    let mut e = profile_event("cust-x", now_utc());
    e["consent"] = json!({"telepathy": "granted"});
    let r = hub.webhook(&e).send().await;
    assert_eq!(r.status, 422, "{r:?}");
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("unknown consent purpose \"telepathy\"")
    );
    let mut e = profile_event("cust-x", now_utc());
    e["brands"] = json!(["nobrand"]);
    let r = hub.webhook(&e).send().await;
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.json["detail"].as_str().unwrap().contains("unknown brand"));
    let counts = hub
        .db
        .counts(&["subjects", "changes", "inbound_messages"])
        .await;
    assert!(counts.iter().all(|(_, n)| *n == 0), "{counts:?}");
}
