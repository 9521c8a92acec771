//! The `braze` connector against the Braze fake, over real HTTP.

mod common;

use std::time::Duration;

use common::*;
use connectors::{Action, ItemOutcome, RateLimit};
use serde_json::{Value, json};
use vendor_fakes::Forced;
use vendor_fakes::braze::{self, API_KEY};

fn settings(fake: &braze::Fake) -> Value {
    json!({ "api_key": API_KEY, "base_url": fake.url })
}

fn profile(n: usize) -> connectors::Item {
    with_consent(
        upsert(
            n,
            json!({ "email": format!("ada{n}@example.com"), "first_name": "Ada", "loyalty_tier": "gold" }),
        ),
        "marketing_email",
        true,
    )
}

#[tokio::test]
async fn declares_75_per_batch_and_braze_track_limit() {
    let fake = braze::start().await;
    let c = connector("braze", settings(&fake));
    assert_eq!(c.batch_policy().max_items, 75);
    assert_eq!(
        c.rate_limit(),
        Some(RateLimit {
            calls: 3000,
            per: Duration::from_secs(3)
        })
    );
    assert!(c.identity_fields().is_empty(), "external_id is the hub id");
    let small = connector(
        "braze",
        json!({ "api_key": API_KEY, "batch_size": 50, "rate_limit": 100 }),
    );
    assert_eq!(small.batch_policy().max_items, 50);
}

#[tokio::test]
async fn upserts_one_profile_with_consent_as_email_subscribe() {
    let fake = braze::start().await;
    let c = connector("braze", settings(&fake));
    let out = send(&*c, &[profile(1)]).await;
    assert_eq!(out.status, Some(201));
    assert_eq!(
        out.outcomes[0].1,
        ItemOutcome::Delivered { record_id: None }
    );
    let user = fake.user(&subject(1)).unwrap();
    assert_eq!(user.attributes["email"], "ada1@example.com");
    assert_eq!(user.attributes["loyalty_tier"], "gold");
    assert_eq!(user.email_subscribe.as_deref(), Some("opted_in"));
    let req = &fake.journal.requests()[0];
    assert_eq!(req.path, "/users/track");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(req.json()["attributes"][0]["external_id"], subject(1));
    // Consent not recorded: fails closed.
    let out = send(&*c, &[upsert(2, json!({ "email": "b@example.com" }))]).await;
    assert_eq!(delivered(&out), 1);
    assert_eq!(
        fake.user(&subject(2)).unwrap().email_subscribe.as_deref(),
        Some("unsubscribed")
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn subscription_groups_follow_their_purposes() {
    let fake = braze::start().await;
    let c = connector(
        "braze",
        json!({ "api_key": API_KEY, "base_url": fake.url, "subscription_groups": [
            { "id": "sg-newsletter" }, { "id": "sg-sms", "purpose": "marketing_sms" }
        ]}),
    );
    send(&*c, &[profile(1)]).await;
    let user = fake.user(&subject(1)).unwrap();
    assert_eq!(user.subscription_groups["sg-newsletter"], "subscribed");
    assert_eq!(user.subscription_groups["sg-sms"], "unsubscribed");
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn upserts_a_full_batch_of_75_in_one_call() {
    let fake = braze::start().await;
    let c = connector("braze", settings(&fake));
    let items: Vec<_> = (1..=75).map(profile).collect();
    let out = send(&*c, &items).await;
    assert_eq!(delivered(&out), 75);
    assert_eq!(fake.journal.requests().len(), 1);
    assert_eq!(fake.users().len(), 75);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_minor_error_fails_only_the_object_at_its_index() {
    let fake = braze::start().await;
    fake.fail_external_id(&subject(4), "'dob' must be a valid date");
    let c = connector("braze", settings(&fake));
    let mut items: Vec<_> = (1..=6).map(profile).collect();
    items[1] = upsert(2, json!({ "email": "not-an-email" }));
    let out = send(&*c, &items).await;
    assert_eq!(out.status, Some(201));
    assert_eq!(delivered(&out), 4);
    assert!(permanent(&out.outcomes[1].1).contains("'email' must be a valid email address"));
    assert_eq!(
        permanent(&out.outcomes[3].1),
        "Braze: 'dob' must be a valid date"
    );
    assert!(fake.user(&subject(2)).is_none());
    assert!(fake.user(&subject(5)).is_some());
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn withdrawal_unsubscribes_an_existing_profile_and_never_creates_one() {
    let fake = braze::start().await;
    let c = connector(
        "braze",
        json!({ "api_key": API_KEY, "base_url": fake.url,
                "subscription_groups": [{ "id": "sg-newsletter" }] }),
    );
    send(&*c, &[profile(1)]).await;
    let out = send(
        &*c,
        &[item(1, Action::Unsubscribe), item(2, Action::Suppress)],
    )
    .await;
    assert_eq!(delivered(&out), 2);
    let user = fake.user(&subject(1)).unwrap();
    assert_eq!(user.email_subscribe.as_deref(), Some("unsubscribed"));
    assert_eq!(user.subscription_groups["sg-newsletter"], "unsubscribed");
    assert_eq!(user.attributes["first_name"], "Ada", "the profile is kept");
    assert!(fake.user(&subject(2)).is_none(), "no profile was created");
    let calls = fake.journal.requests();
    assert_eq!(
        calls.len(),
        3,
        "one upsert, then one call per kind of withdrawal"
    );
    let unsubscribe = &calls[1].json()["attributes"][0];
    assert_eq!(unsubscribe["_update_existing_only"], true);
    assert!(unsubscribe.get("push_subscribe").is_none());
    let suppress = &calls[2].json()["attributes"][0];
    assert_eq!(suppress["_update_existing_only"], true);
    assert_eq!(suppress["push_subscribe"], "unsubscribed");
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn delete_sends_50_external_ids_per_call() {
    let fake = braze::start().await;
    let c = connector("braze", settings(&fake));
    let items: Vec<_> = (1..=75).map(profile).collect();
    send(&*c, &items).await;
    let deletes: Vec<_> = (1..=75).map(|n| item(n, Action::Delete)).collect();
    let out = send(&*c, &deletes).await;
    assert_eq!(delivered(&out), 75);
    let calls = fake.journal.requests_to("/users/delete");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].json()["external_ids"].as_array().unwrap().len(),
        50
    );
    assert_eq!(
        calls[1].json()["external_ids"].as_array().unwrap().len(),
        25
    );
    assert!(fake.users().is_empty());
    assert!(fake.deleted(&subject(75)));
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_429_throttles_until_brazes_reset() {
    let fake = braze::start().await;
    fake.set_rate_limit(2, Duration::from_secs(60));
    let c = connector("braze", settings(&fake));
    let first = send(&*c, &[profile(1)]).await;
    assert!(first.signal.is_none());
    // The second call spends the window: delivered, and the destination
    // waits for the reset instead of trying a third.
    let second = send(&*c, &[profile(2)]).await;
    assert_eq!(delivered(&second), 1);
    let wait = throttle(&second);
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(61),
        "{wait:?}"
    );
    let third = send(&*c, &[profile(3)]).await;
    assert_eq!(third.status, Some(429));
    assert!(all_retry(&third));
    let wait = throttle(&third);
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(61),
        "{wait:?}"
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn an_unknown_key_pauses_and_keeps_the_items() {
    let fake = braze::start().await;
    let c = connector(
        "braze",
        json!({ "api_key": "revoked", "base_url": fake.url }),
    );
    let out = send(&*c, &[profile(1)]).await;
    assert_eq!(out.status, Some(401));
    assert!(all_retry(&out));
    assert!(paused(&out).contains("Invalid API key"));
    assert!(fake.users().is_empty());
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn server_errors_retry() {
    let fake = braze::start().await;
    fake.journal
        .force([Forced::reply(503, &[], "Service Unavailable")]);
    let c = connector("braze", settings(&fake));
    let out = send(&*c, &[profile(1)]).await;
    assert!(all_retry(&out));
    assert!(out.signal.is_none());
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_fatal_400_is_permanent_with_brazes_message() {
    let fake = braze::start().await;
    fake.journal.force([Forced::reply(
        400,
        &[("content-type", "application/json")],
        r#"{"message":"Valid data must be provided in the 'attributes', 'events', or 'purchases' fields.","errors":[]}"#,
    )]);
    let c = connector("braze", settings(&fake));
    let out = send(&*c, &[profile(1), profile(2)]).await;
    for (_, o) in &out.outcomes {
        assert_eq!(
            permanent(o),
            "HTTP 400 Braze: Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
        );
    }
    fake.journal.assert_no_violations();
}

#[test]
fn settings_are_refused_with_a_clear_message_that_holds_no_secret() {
    let secret = "braze-s3cr3t";
    let e = refused(
        "braze",
        json!({ "api_key": secret, "batch_size": 100 }),
        secret,
    );
    assert_eq!(
        e,
        "invalid settings: batch_size: expected 1 to 75 attribute objects per call"
    );
    let e = refused(
        "braze",
        json!({ "api_key": secret, "base_url": "rest.iad-01.braze.com" }),
        secret,
    );
    assert!(e.contains("base_url: expected an http or https URL"), "{e}");
    let e = refused(
        "braze",
        json!({ "api_key": secret, "email_purpose": null, "subscription_groups": [{ "id": "g" }] }),
        secret,
    );
    assert!(e.contains("subscription_groups[0].purpose"), "{e}");
    let e = refused("braze", json!({ "api_key": secret, "key": 1 }), secret);
    assert!(e.contains("unknown field `key`"), "{e}");
}

#[tokio::test]
async fn the_fake_refuses_and_records_requests_braze_would_refuse() {
    let fake = braze::start().await;
    let client = reqwest::Client::new();
    let objects: Vec<Value> = (0..76)
        .map(|n| json!({ "external_id": format!("u{n}") }))
        .collect();
    let resp = client
        .post(format!("{}/users/track", fake.url))
        .bearer_auth(API_KEY)
        .json(&json!({ "attributes": objects }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Max Input Length Exceeded");
    let resp = client
        .post(format!("{}/users/track", fake.url))
        .bearer_auth(API_KEY)
        .json(&json!({ "attributes": [{ "external_id": "u1", "email_subscribe": "yes" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = client
        .post(format!("{}/users/delete", fake.url))
        .header("authorization", API_KEY)
        .json(&json!({ "external_ids": ["a"], "braze_ids": ["b"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let violations = fake.journal.violations();
    assert!(
        violations.iter().any(|v| v.contains("/attributes")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v.contains("76 objects")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v.contains("email_subscribe")),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains("Authorization: Bearer")),
        "{violations:?}"
    );
    assert!(fake.users().is_empty());
}

#[test]
fn the_example_mapping_is_accepted_and_defines_the_identity_fields() {
    check_example_mapping("braze");
}
