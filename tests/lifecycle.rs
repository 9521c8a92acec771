//! A subject's life as a destination sees it: out-of-order events never
//! regress it, consent withdrawal and deletion go out as their own actions,
//! and the admin API sees and replays what the CLI does.

mod common;

use chrono::TimeDelta;
use common::*;
use serde_json::{Value, json};

backend_tests!(
    older_event_does_not_regress_destination,
    withdrawal_and_delete_are_propagated,
    admin_api_lists_and_replays_dead_letters,
);

async fn older_event_does_not_regress_destination(backend: Backend) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let t0 = now_utc();
    let mut newer = profile_event("cust-order", t0);
    newer["subject"]["name"]["givenName"] = json!("Newer");
    let reply = hub.send_ok(&newer).await;
    let subject = reply["subject"].as_str().unwrap().to_string();
    sink.wait_until(PATIENCE, |r| r.json()["data"]["first_name"] == "Newer")
        .await;

    let mut older = profile_event("cust-order", t0 - TimeDelta::minutes(1));
    older["subject"]["name"]["givenName"] = json!("Older");
    let reply = hub.send_ok(&older).await;
    assert_eq!(reply["duplicate"], false);
    // Whatever happens next, the destination must not go back to "Older".
    // A later event proves the pipeline moved on, then we look at everything.
    let mut latest = profile_event("cust-order", t0 + TimeDelta::seconds(1));
    latest["subject"]["name"]["givenName"] = json!("Latest");
    hub.send_ok(&latest).await;
    sink.wait_until(PATIENCE, |r| r.json()["data"]["first_name"] == "Latest")
        .await;
    for r in sink.received() {
        assert_ne!(
            r.json()["data"]["first_name"],
            "Older",
            "regressed: {}",
            r.json()
        );
        assert_eq!(r.json()["subject"], subject.as_str());
    }
}

async fn withdrawal_and_delete_are_propagated(backend: Backend) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let t0 = now_utc();
    let reply = hub.send_ok(&profile_event("cust-life", t0)).await;
    let subject = reply["subject"].as_str().unwrap().to_string();
    let got = sink.wait_for(1, PATIENCE).await;
    assert_eq!(got[0].json()["type"], "profile.upserted");

    // Withdrawal: the destination's on_withdraw action (default suppress), no PII.
    let withdraw = json!({
        "type": "consent.updated",
        "subject": { "externalId": "cust-life" },
        "consent": { "marketing_email": "denied" },
        "occurredAt": (t0 + TimeDelta::seconds(1)).to_rfc3339(),
    });
    hub.send_ok(&withdraw).await;
    let got = sink.wait_for(2, PATIENCE).await;
    let body = got[1].json();
    got[1].verify(&destination_secret()).unwrap();
    assert_eq!(body["type"], "profile.suppressed", "{body}");
    assert_eq!(body["subject"], subject.as_str());
    assert_eq!(
        body["data"],
        json!({}),
        "a withdrawal carries no profile data"
    );

    // Updates while withdrawn are not sent.
    let mut update = profile_event("cust-life", t0 + TimeDelta::seconds(2));
    update.as_object_mut().unwrap().remove("consent");
    update["subject"]["name"]["givenName"] = json!("Ada2");
    hub.send_ok(&update).await;
    hub.wait_deliveries(&subject, "a suppressed attempt", |l| {
        l.iter().any(|a| a["outcome"] == "suppressed")
    })
    .await;
    assert_eq!(sink.received().len(), 2, "nothing sent without consent");

    // Deletion reaches a destination that held data.
    let delete = json!({
        "type": "profile.deleted",
        "subject": { "externalId": "cust-life" },
        "occurredAt": (t0 + TimeDelta::seconds(3)).to_rfc3339(),
    });
    hub.send_ok(&delete).await;
    let got = sink.wait_for(3, PATIENCE).await;
    let body = got[2].json();
    assert_eq!(body["type"], "profile.deleted", "{body}");
    assert_eq!(body["subject"], subject.as_str());
}

async fn admin_api_lists_and_replays_dead_letters(backend: Backend) {
    let sink = Sink::start().await;
    sink.script([Reply::Status(422)]);
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let reply = hub.send_ok(&profile_event("cust-admin", now_utc())).await;
    let subject = reply["subject"].as_str().unwrap().to_string();
    hub.wait_deliveries(&subject, "a dead attempt", |l| {
        l.iter().any(|a| a["outcome"] == "dead")
    })
    .await;

    let url = format!("{}/admin/dead-letters", hub.url);
    let anon = hub.http.get(&url).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    let wrong = hub.http.get(&url).bearer_auth("nope").send().await.unwrap();
    assert!(
        matches!(wrong.status().as_u16(), 401 | 403),
        "{}",
        wrong.status()
    );

    let list: Value = hub
        .http
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let letters = list["dead_letters"].as_array().expect("dead_letters array");
    assert_eq!(letters.len(), 1, "{list:#}");
    assert_eq!(letters[0]["subject_id"], subject.as_str());
    assert_eq!(letters[0]["status_code"], 422);
    let id = letters[0]["id"].as_str().unwrap().to_string();

    let replay: Value = hub
        .http
        .post(format!("{url}/replay"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "id": id }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replay["replayed"], 1, "{replay}");
    let got = sink.wait_for(2, PATIENCE).await;
    assert_eq!(got[1].json()["subject"], subject.as_str());

    let deliveries: Value = hub
        .http
        .get(format!("{}/admin/deliveries?subject={subject}", hub.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut deliveries = deliveries;
    while !deliveries["deliveries"]
        .as_array()
        .is_some_and(|l| l.iter().any(|a| a["outcome"] == "delivered"))
    {
        assert!(std::time::Instant::now() < deadline, "{deliveries:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        deliveries = hub
            .http
            .get(format!("{}/admin/deliveries?subject={subject}", hub.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    assert_eq!(
        deliveries["deliveries"].as_array().unwrap().len(),
        2,
        "{deliveries:#}"
    );
}
