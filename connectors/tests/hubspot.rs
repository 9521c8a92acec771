//! The `hubspot` connector against the HubSpot fake, over real HTTP.

mod common;

use std::time::Duration;

use common::*;
use connectors::{Action, BatchPolicy, ItemOutcome, RateLimit};
use serde_json::json;
use vendor_fakes::Forced;
use vendor_fakes::hubspot::{self, TOKEN};

fn settings(fake: &hubspot::Fake) -> serde_json::Value {
    json!({ "token": TOKEN, "base_url": fake.url })
}

fn contact(n: usize) -> connectors::Item {
    upsert(
        n,
        json!({ "email": format!("Person{n}@Example.com"), "firstname": format!("P{n}"), "lastname": "Lovelace" }),
    )
}

#[tokio::test]
async fn declares_batch_identity_and_ten_second_rate_limit() {
    let fake = hubspot::start().await;
    let c = connector("hubspot", settings(&fake));
    assert_eq!(
        c.batch_policy(),
        BatchPolicy {
            max_items: 100,
            max_bytes: None,
            mixed_actions: false
        }
    );
    assert_eq!(
        c.rate_limit(),
        Some(RateLimit {
            calls: 100,
            per: Duration::from_secs(10)
        })
    );
    assert_eq!(c.identity_fields(), vec!["email"]);
    let custom = connector(
        "hubspot",
        json!({ "token": TOKEN, "id_property": "hub_id", "rate_limit": 190 }),
    );
    assert_eq!(custom.identity_fields(), vec!["hub_id", "email"]);
    assert_eq!(custom.rate_limit().unwrap().calls, 190);
}

#[tokio::test]
async fn upserts_one_contact_by_email_and_keeps_its_record_id() {
    let fake = hubspot::start().await;
    let c = connector("hubspot", settings(&fake));
    let out = send(&*c, &[contact(1)]).await;
    assert_eq!(out.status, Some(200));
    let id = record_id(&out.outcomes[0].1);
    let stored = fake.contact_by("email", "person1@example.com").unwrap();
    assert_eq!(stored.id, id);
    assert_eq!(stored.properties["firstname"], "P1");
    let req = &fake.journal.requests()[0];
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let input = &req.json()["inputs"][0];
    assert_eq!(input["idProperty"], "email");
    assert_eq!(input["id"], "Person1@Example.com");
    assert_eq!(input["objectWriteTraceId"], "msg_0001");
    // The same subject again updates the same contact.
    let again = send(&*c, &[contact(1)]).await;
    assert_eq!(record_id(&again.outcomes[0].1), id);
    assert_eq!(fake.contacts().len(), 1);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn upserts_a_full_batch_of_100_in_one_call() {
    let fake = hubspot::start().await;
    let c = connector("hubspot", settings(&fake));
    let items: Vec<_> = (1..=100).map(contact).collect();
    let out = send(&*c, &items).await;
    assert_eq!(delivered(&out), 100);
    assert_eq!(fake.journal.requests().len(), 1);
    assert_eq!(fake.contacts().len(), 100);
    // Each record id is the one HubSpot gave that item's contact.
    for (i, outcome) in &out.outcomes {
        let email = format!("person{}@example.com", i + 1);
        assert_eq!(
            record_id(outcome),
            fake.contact_by("email", &email).unwrap().id
        );
    }
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn an_invalid_email_fails_only_its_item_with_hubspots_message() {
    let fake = hubspot::start().await;
    let c = connector("hubspot", settings(&fake));
    let mut items: Vec<_> = (1..=5).map(contact).collect();
    items[2] = upsert(3, json!({ "email": "not-an-email", "firstname": "Bad" }));
    let out = send(&*c, &items).await;
    assert_eq!(out.status, Some(207));
    assert_eq!(delivered(&out), 4);
    let reason = permanent(&out.outcomes[2].1);
    assert!(reason.contains("VALIDATION_ERROR"), "{reason}");
    assert!(
        reason.contains("Email address not-an-email is invalid"),
        "{reason}"
    );
    assert!(fake.contact_by("email", "not-an-email").is_none());
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_subject_without_its_id_property_is_permanent_without_a_call() {
    let fake = hubspot::start().await;
    let c = connector("hubspot", settings(&fake));
    let out = send(&*c, &[upsert(1, json!({ "firstname": "No email" }))]).await;
    assert!(permanent(&out.outcomes[0].1).contains("`email` has no value"));
    assert!(fake.journal.requests().is_empty());
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_custom_unique_id_property_is_the_upsert_key() {
    let fake = hubspot::start().await;
    fake.add_unique_property("hub_id");
    let c = connector(
        "hubspot",
        json!({ "token": TOKEN, "base_url": fake.url, "id_property": "hub_id" }),
    );
    let item = upsert(
        7,
        json!({ "hub_id": subject(7), "email": "ada@example.com" }),
    );
    let out = send(&*c, &[item]).await;
    let id = record_id(&out.outcomes[0].1);
    assert_eq!(fake.contact_by("hub_id", &subject(7)).unwrap().id, id);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn gdpr_deletes_by_record_id_and_falls_back_to_email() {
    let fake = hubspot::start().await;
    let c = connector("hubspot", settings(&fake));
    let out = send(&*c, &[contact(1), contact(2)]).await;
    let id1 = record_id(&out.outcomes[0].1);
    let by_id = with_record(
        with_identity(
            item(1, Action::Delete),
            json!({ "email": "person1@example.com" }),
        ),
        &id1,
    );
    let by_email = with_identity(
        item(2, Action::Delete),
        json!({ "email": "person2@example.com" }),
    );
    let out = send(&*c, &[by_id, by_email]).await;
    assert_eq!(delivered(&out), 2);
    assert!(fake.erased(&id1));
    assert!(fake.contacts().is_empty());
    let bodies: Vec<_> = fake
        .journal
        .requests_to("/crm/v3/objects/contacts/gdpr-delete")
        .iter()
        .map(|r| r.json())
        .collect();
    assert_eq!(bodies[0], json!({ "objectId": id1 }));
    assert_eq!(
        bodies[1],
        json!({ "objectId": "person2@example.com", "idProperty": "email" })
    );
    // Deleting again: already gone is done.
    let again = with_record(item(1, Action::Delete), &id1);
    assert_eq!(delivered(&send(&*c, &[again]).await), 1);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn withdrawal_opts_the_email_out_of_all_email() {
    let fake = hubspot::start().await;
    let c = connector("hubspot", settings(&fake));
    send(&*c, &[contact(1)]).await;
    let items = vec![
        with_identity(
            item(1, Action::Unsubscribe),
            json!({ "email": "Person1@Example.com" }),
        ),
        with_identity(
            item(2, Action::Unsubscribe),
            json!({ "email": "other@example.com" }),
        ),
        // No email at HubSpot: nothing to opt out, no call needed for it.
        item(3, Action::Unsubscribe),
    ];
    let out = send(&*c, &items).await;
    assert_eq!(delivered(&out), 3, "{out:?}");
    assert!(fake.opted_out("person1@example.com"));
    assert!(fake.opted_out("other@example.com"));
    let calls = fake
        .journal
        .requests_to("/communication-preferences/v4/statuses/batch/unsubscribe-all");
    assert_eq!(calls.len(), 1, "one call for the batch");
    assert_eq!(
        calls[0].query,
        vec![("channel".to_string(), "EMAIL".to_string())]
    );
    // Suppression does the same.
    let suppress = with_identity(
        item(4, Action::Suppress),
        json!({ "email": "third@example.com" }),
    );
    assert_eq!(delivered(&send(&*c, &[suppress]).await), 1);
    assert!(fake.opted_out("third@example.com"));
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_withdrawal_hubspot_refuses_fails_only_that_email() {
    let fake = hubspot::start().await;
    let c = connector("hubspot", settings(&fake));
    let items = vec![
        with_identity(
            item(1, Action::Unsubscribe),
            json!({ "email": "ok@example.com" }),
        ),
        with_identity(item(2, Action::Unsubscribe), json!({ "email": "broken@" })),
    ];
    let out = send(&*c, &items).await;
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Delivered { .. }));
    assert!(permanent(&out.outcomes[1].1).contains("broken@ is not a valid email address"));
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn the_101st_call_in_ten_seconds_throttles_for_hubspots_window() {
    let fake = hubspot::start().await;
    let c = connector("hubspot", settings(&fake));
    for n in 1..=100 {
        let out = send(&*c, &[contact(n)]).await;
        assert_eq!(delivered(&out), 1, "call {n}");
        assert!(out.signal.is_none());
    }
    let out = send(&*c, &[contact(101)]).await;
    assert_eq!(out.status, Some(429));
    assert!(all_retry(&out));
    assert_eq!(throttle(&out), Duration::from_secs(10));
    let last = fake.journal.requests().len();
    assert_eq!(last, 101);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_daily_limit_429_throttles_for_an_hour() {
    let fake = hubspot::start().await;
    fake.journal.force([Forced::reply(
        429,
        &[("content-type", "application/json")],
        r#"{"status":"error","message":"You have reached your daily limit.","errorType":"RATE_LIMIT","correlationId":"x","policyName":"DAILY"}"#,
    )]);
    let c = connector("hubspot", settings(&fake));
    let out = send(&*c, &[contact(1)]).await;
    assert_eq!(throttle(&out), hubspot_daily());
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn the_throttle_follows_hubspots_interval_header() {
    let fake = hubspot::start().await;
    fake.journal.force([Forced::reply(
        429,
        &[
            ("content-type", "application/json"),
            ("x-hubspot-ratelimit-interval-milliseconds", "2500"),
            ("x-hubspot-ratelimit-max", "190"),
            ("x-hubspot-ratelimit-remaining", "0"),
        ],
        r#"{"status":"error","message":"You have reached your ten secondly limit.","errorType":"RATE_LIMIT","correlationId":"x","policyName":"TEN_SECONDLY_ROLLING"}"#,
    )]);
    let c = connector("hubspot", settings(&fake));
    let out = send(&*c, &[contact(1)]).await;
    assert_eq!(throttle(&out), Duration::from_millis(2500));
    fake.journal.assert_no_violations();
}

fn hubspot_daily() -> Duration {
    connectors::hubspot::DAILY_LIMIT_WAIT
}

#[tokio::test]
async fn a_refused_token_pauses_the_destination_and_keeps_the_items() {
    let fake = hubspot::start().await;
    let c = connector(
        "hubspot",
        json!({ "token": "pat-na1-revoked", "base_url": fake.url }),
    );
    let out = send(&*c, &[contact(1), contact(2)]).await;
    assert_eq!(out.status, Some(401));
    assert!(all_retry(&out));
    assert!(paused(&out).contains("INVALID_AUTHENTICATION"));
    assert!(fake.contacts().is_empty());
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn server_errors_retry() {
    let fake = hubspot::start().await;
    fake.journal
        .force([Forced::reply(502, &[], "<html>502 Bad Gateway</html>")]);
    let c = connector("hubspot", settings(&fake));
    let out = send(&*c, &[contact(1)]).await;
    assert!(all_retry(&out));
    assert!(out.signal.is_none());
    // The next attempt goes through.
    assert_eq!(delivered(&send(&*c, &[contact(1)]).await), 1);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn an_id_property_that_is_not_unique_is_permanent_with_hubspots_message() {
    let fake = hubspot::start().await;
    let c = connector(
        "hubspot",
        json!({ "token": TOKEN, "base_url": fake.url, "id_property": "firstname" }),
    );
    let out = send(&*c, &[contact(1), contact(2)]).await;
    assert_eq!(out.status, Some(400));
    for (_, o) in &out.outcomes {
        let reason = permanent(o);
        assert!(
            reason.contains("firstname is not a unique identifier property"),
            "{reason}"
        );
    }
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn two_subjects_with_one_email_are_not_sent_in_one_batch() {
    let fake = hubspot::start().await;
    let c = connector("hubspot", settings(&fake));
    let twin = upsert(2, json!({ "email": "person1@example.com" }));
    let out = send(&*c, &[contact(1), twin]).await;
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Delivered { .. }));
    assert!(matches!(out.outcomes[1].1, ItemOutcome::Retry { .. }));
    fake.journal.assert_no_violations();
}

#[test]
fn settings_are_refused_with_a_clear_message_that_holds_no_secret() {
    let secret = "pat-na1-s3cr3t";
    let e = refused(
        "hubspot",
        json!({ "token": secret, "rate_limit": "many" }),
        secret,
    );
    assert_eq!(
        e,
        "invalid settings: rate_limit: invalid type: expected u32"
    );
    let e = refused(
        "hubspot",
        json!({ "token": secret, "base_url": "ftp://x" }),
        secret,
    );
    assert!(e.contains("base_url: expected an http or https URL"), "{e}");
    let e = refused(
        "hubspot",
        json!({ "token": secret, "id_property": "e-mail" }),
        secret,
    );
    assert!(e.contains("id_property"), "{e}");
    let e = refused("hubspot", json!({ "token": secret, "tokn": 1 }), secret);
    assert!(e.contains("unknown field `tokn`"), "{e}");
    let e = refused("hubspot", json!({}), secret);
    assert!(e.contains("missing field `token`"), "{e}");
    let e = refused(
        "hubspot",
        json!({ "token": secret, "rate_limit": 0 }),
        secret,
    );
    assert!(e.contains("rate_limit"), "{e}");
}

#[tokio::test]
async fn the_fake_refuses_and_records_requests_hubspot_would_refuse() {
    let fake = hubspot::start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/crm/v3/objects/contacts/batch/upsert", fake.url);
    // An input without `id`: not HubSpot's schema.
    let resp = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({ "inputs": [{ "idProperty": "email", "properties": {} }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["category"], "VALIDATION_ERROR");
    // 101 inputs.
    let inputs: Vec<_> = (0..101)
        .map(|n| json!({ "id": format!("p{n}@example.com"), "idProperty": "email", "properties": {} }))
        .collect();
    let resp = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({ "inputs": inputs }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // No bearer token.
    let resp = client
        .post(&url)
        .header("authorization", format!("Basic {TOKEN}"))
        .json(&json!({ "inputs": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // The opt-out without its required `channel`.
    let resp = client
        .post(format!(
            "{}/communication-preferences/v4/statuses/batch/unsubscribe-all",
            fake.url
        ))
        .bearer_auth(TOKEN)
        .json(&json!({ "inputs": ["a@example.com"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let violations = fake.journal.violations();
    assert!(
        violations.iter().any(|v| v.contains("/inputs/0")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v.contains("101 inputs")),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains("Authorization: Bearer")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v.contains("\"channel\"")),
        "{violations:?}"
    );
    assert!(fake.contacts().is_empty());
}

#[test]
fn the_example_mapping_is_accepted_and_defines_the_identity_fields() {
    check_example_mapping("hubspot");
}
