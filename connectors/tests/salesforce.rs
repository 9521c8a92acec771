//! The `salesforce` connector against the Salesforce fake, over real HTTP.

mod common;

use common::*;
use connectors::salesforce::{DAILY_LIMIT_WAIT, MAX_RECORDS};
use connectors::{Action, ItemOutcome};
use serde_json::{Value, json};
use vendor_fakes::Forced;
use vendor_fakes::salesforce::{
    self, CLIENT_ID, CLIENT_SECRET, OTHER_KEY_PEM, TEST_KEY_PEM, USERNAME,
};

const EXT: &str = "Hub_Id__c";

fn settings(fake: &salesforce::Fake) -> Value {
    json!({
        "base_url": fake.url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "external_id_field": EXT,
    })
}

fn jwt_settings(fake: &salesforce::Fake, key: &str) -> Value {
    json!({
        "login_url": fake.url,
        "client_id": CLIENT_ID,
        "username": USERNAME,
        "private_key": key,
        "external_id_field": EXT,
    })
}

fn contact(n: usize) -> connectors::Item {
    with_consent(
        upsert(
            n,
            json!({ "LastName": format!("Lovelace{n}"), "FirstName": "Ada", "Email": format!("ada{n}@example.com") }),
        ),
        "marketing_email",
        true,
    )
}

fn stored(fake: &salesforce::Fake, n: usize) -> salesforce::Record {
    fake.record_by_external_id("Contact", EXT, &subject(n))
        .unwrap_or_else(|| panic!("no Contact for subject {n}"))
}

#[tokio::test]
async fn declares_200_records_per_batch_and_no_identity_field() {
    let fake = salesforce::start().await;
    let c = connector("salesforce", settings(&fake));
    assert_eq!(c.batch_policy().max_items, 200);
    assert!(!c.batch_policy().mixed_actions);
    assert!(
        c.identity_fields().is_empty(),
        "the hub id is the external id"
    );
    assert_eq!(c.rate_limit(), None);
}

#[tokio::test]
async fn upserts_one_contact_by_external_id_with_client_credentials() {
    let fake = salesforce::start().await;
    let c = connector("salesforce", settings(&fake));
    let out = send(&*c, &[contact(1)]).await;
    assert_eq!(out.status, Some(200));
    let id = record_id(&out.outcomes[0].1);
    let record = stored(&fake, 1);
    assert_eq!(record.id, id);
    assert_eq!(record.fields["LastName"], "Lovelace1");
    assert_eq!(
        record.fields["HasOptedOutOfEmail"], false,
        "consent mirrored"
    );
    let calls = fake.journal.requests();
    assert_eq!(calls[0].path, "/services/oauth2/token");
    assert_eq!(
        calls[1].path,
        format!("/services/data/v64.0/composite/sobjects/Contact/{EXT}")
    );
    assert_eq!(calls[1].method, "PATCH");
    let body = calls[1].json();
    assert_eq!(body["allOrNone"], false);
    assert_eq!(body["records"][0]["attributes"]["type"], "Contact");
    assert_eq!(body["records"][0][EXT], subject(1));
    // The token is cached.
    let again = send(&*c, &[contact(1)]).await;
    assert_eq!(record_id(&again.outcomes[0].1), id);
    assert_eq!(fake.token_requests(), 1);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn upserts_a_full_batch_of_200_in_one_call() {
    let fake = salesforce::start().await;
    let c = connector("salesforce", settings(&fake));
    let items: Vec<_> = (1..=MAX_RECORDS).map(contact).collect();
    let out = send(&*c, &items).await;
    assert_eq!(delivered(&out), 200);
    assert_eq!(fake.journal.requests_to("/services/data/").len(), 1);
    for (i, outcome) in &out.outcomes {
        assert_eq!(record_id(outcome), stored(&fake, i + 1).id);
    }
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_record_salesforce_refuses_fails_alone_with_its_message() {
    let fake = salesforce::start().await;
    let c = connector("salesforce", settings(&fake));
    let mut items: Vec<_> = (1..=4).map(contact).collect();
    items[1] = upsert(2, json!({ "FirstName": "No last name" }));
    items[3] = upsert(4, json!({ "LastName": "X", "Email": "not-an-email" }));
    let out = send(&*c, &items).await;
    assert_eq!(delivered(&out), 2);
    assert_eq!(
        permanent(&out.outcomes[1].1),
        "Salesforce REQUIRED_FIELD_MISSING: Required fields are missing: [LastName] (LastName)"
    );
    assert!(permanent(&out.outcomes[3].1).contains("INVALID_EMAIL_ADDRESS"));
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn withdrawal_sets_the_opt_out_field_by_external_id() {
    let fake = salesforce::start().await;
    let c = connector("salesforce", settings(&fake));
    send(&*c, &[contact(1)]).await;
    let out = send(&*c, &[item(1, Action::Unsubscribe)]).await;
    assert_eq!(record_id(&out.outcomes[0].1), stored(&fake, 1).id);
    let record = stored(&fake, 1);
    assert_eq!(record.fields["HasOptedOutOfEmail"], true);
    assert_eq!(record.fields["LastName"], "Lovelace1", "the rest is kept");
    // A configured field instead.
    let c = connector(
        "salesforce",
        json!({ "base_url": fake.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "external_id_field": EXT, "opt_out_field": "DoNotCall" }),
    );
    send(&*c, &[item(1, Action::Suppress)]).await;
    assert_eq!(stored(&fake, 1).fields["DoNotCall"], true);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn delete_goes_by_record_ids_and_falls_back_to_the_external_id() {
    let fake = salesforce::start().await;
    let c = connector("salesforce", settings(&fake));
    let out = send(&*c, &[contact(1), contact(2), contact(3)]).await;
    let ids: Vec<String> = out.outcomes.iter().map(|(_, o)| record_id(o)).collect();
    let items = vec![
        with_record(item(1, Action::Delete), &ids[0]),
        with_record(item(2, Action::Delete), &ids[1]),
        item(3, Action::Delete),
    ];
    let out = send(&*c, &items).await;
    assert_eq!(delivered(&out), 3, "{out:?}");
    for id in &ids {
        assert!(fake.record(id).unwrap().deleted, "{id}");
    }
    let deletes: Vec<_> = fake
        .journal
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 2);
    assert_eq!(
        deletes[0].query,
        vec![
            ("ids".to_string(), format!("{},{}", ids[0], ids[1])),
            ("allOrNone".to_string(), "false".to_string())
        ]
    );
    assert_eq!(
        deletes[1].path,
        format!("/services/data/v64.0/sobjects/Contact/{EXT}/{}", subject(3))
    );
    // Deleting again: already in the recycle bin, or no record by that id.
    let again = vec![
        with_record(item(1, Action::Delete), &ids[0]),
        item(3, Action::Delete),
    ];
    assert_eq!(delivered(&send(&*c, &again).await), 2);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn an_expired_session_gets_one_new_token_and_the_call_is_replayed() {
    let fake = salesforce::start().await;
    let c = connector("salesforce", settings(&fake));
    send(&*c, &[contact(1)]).await;
    fake.expire_sessions();
    let out = send(&*c, &[contact(2)]).await;
    assert_eq!(delivered(&out), 1);
    assert!(out.signal.is_none());
    assert_eq!(fake.token_requests(), 2);
    let paths: Vec<_> = fake
        .journal
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths.len(),
        5,
        "token, upsert, upsert (401), token, replay: {paths:?}"
    );
    assert!(stored(&fake, 2).fields.contains_key("LastName"));
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_second_401_after_a_new_token_pauses() {
    let fake = salesforce::start().await;
    let c = connector("salesforce", settings(&fake));
    send(&*c, &[contact(1)]).await;
    fake.refuse_sessions(true);
    let out = send(&*c, &[contact(2), contact(3)]).await;
    assert!(all_retry(&out));
    assert!(paused(&out).contains("INVALID_SESSION_ID"));
    assert_eq!(fake.token_requests(), 2, "exactly one refresh");
    assert_eq!(fake.journal.requests().len(), 5);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn refused_credentials_pause_with_salesforces_error() {
    let fake = salesforce::start().await;
    let mut s = settings(&fake);
    s["client_secret"] = json!("wrong-secret");
    let c = connector("salesforce", s);
    let out = send(&*c, &[contact(1)]).await;
    assert!(all_retry(&out));
    assert!(paused(&out).contains("invalid_client: invalid client credentials"));
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn the_jwt_bearer_flow_signs_an_assertion_salesforce_verifies() {
    let fake = salesforce::start().await;
    fake.set_jwt_public_key(salesforce::rsa_public_key(TEST_KEY_PEM).unwrap());
    let c = connector("salesforce", jwt_settings(&fake, TEST_KEY_PEM));
    let out = send(&*c, &[contact(1)]).await;
    assert_eq!(delivered(&out), 1, "{out:?}");
    let token = &fake.journal.requests()[0];
    let form = String::from_utf8_lossy(&token.body).to_string();
    assert!(
        form.starts_with(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
        ),
        "{form}"
    );
    // A key Salesforce does not have (PKCS#1 this time) is refused: pause.
    let c = connector("salesforce", jwt_settings(&fake, OTHER_KEY_PEM));
    let out = send(&*c, &[contact(2)]).await;
    assert!(paused(&out).contains("invalid_grant"));
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn request_limit_exceeded_throttles_instead_of_pausing() {
    let fake = salesforce::start().await;
    let c = connector("salesforce", settings(&fake));
    fake.set_api_usage(5000, 5000);
    let out = send(&*c, &[contact(1)]).await;
    assert_eq!(out.status, Some(403));
    assert!(all_retry(&out));
    assert_eq!(throttle(&out), DAILY_LIMIT_WAIT);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn the_last_call_of_the_allocation_delivers_and_throttles() {
    let fake = salesforce::start().await;
    let c = connector("salesforce", settings(&fake));
    fake.set_api_usage(4999, 5000);
    let out = send(&*c, &[contact(1)]).await;
    assert_eq!(delivered(&out), 1);
    assert_eq!(throttle(&out), DAILY_LIMIT_WAIT);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn server_errors_retry() {
    let fake = salesforce::start().await;
    let c = connector("salesforce", settings(&fake));
    send(&*c, &[contact(1)]).await;
    fake.journal.force([Forced::reply(
        503,
        &[("content-type", "application/json")],
        r#"[{"message":"Server unavailable","errorCode":"SERVER_UNAVAILABLE"}]"#,
    )]);
    let out = send(&*c, &[contact(2)]).await;
    assert!(all_retry(&out));
    assert!(out.signal.is_none());
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn an_unknown_field_is_permanent_with_salesforces_message() {
    let fake = salesforce::start().await;
    fake.set_known_fields(
        "Contact",
        &["LastName", "FirstName", "Email", "HasOptedOutOfEmail", EXT],
    );
    let c = connector("salesforce", settings(&fake));
    let item = upsert(1, json!({ "LastName": "X", "Loyalty__c": "gold" }));
    let out = send(&*c, &[item, contact(2)]).await;
    assert_eq!(out.status, Some(400));
    for (_, o) in &out.outcomes {
        assert_eq!(
            permanent(o),
            "HTTP 400 INVALID_FIELD: No such column 'Loyalty__c' on sobject of type Contact"
        );
    }
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_forced_record_error_keeps_its_code() {
    let fake = salesforce::start().await;
    fake.fail_record(
        &subject(1),
        "UNABLE_TO_LOCK_ROW",
        "unable to obtain exclusive access to this record",
    );
    let c = connector("salesforce", settings(&fake));
    let out = send(&*c, &[contact(1), contact(2)]).await;
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Retry { .. }));
    assert!(matches!(out.outcomes[1].1, ItemOutcome::Delivered { .. }));
    fake.journal.assert_no_violations();
}

#[test]
fn settings_are_refused_with_a_clear_message_that_holds_no_secret() {
    let secret = "s3cr3t-consumer-secret";
    let base = json!({ "client_id": "id", "client_secret": secret, "external_id_field": EXT });
    let with = |key: &str, value: Value| {
        let mut s = base.clone();
        s[key] = value;
        s
    };
    let e = refused(
        "salesforce",
        with("external_id_field", json!("Hub Id")),
        secret,
    );
    assert!(
        e.contains("external_id_field: expected a Salesforce API name"),
        "{e}"
    );
    let e = refused("salesforce", with("api_version", json!("v40.0")), secret);
    assert!(e.contains("api_version"), "{e}");
    let e = refused(
        "salesforce",
        with("login_url", json!("login.salesforce.com")),
        secret,
    );
    assert!(
        e.contains("login_url: expected an http or https URL"),
        "{e}"
    );
    let e = refused(
        "salesforce",
        with("private_key", json!(TEST_KEY_PEM)),
        secret,
    );
    assert!(e.contains("not both"), "{e}");
    let e = refused(
        "salesforce",
        json!({ "client_id": "id", "external_id_field": EXT, "private_key": "-----BEGIN PRIVATE KEY-----s3cr3t" , "username": "u"}),
        "s3cr3t",
    );
    assert!(
        e.contains("private_key: expected an RSA private key"),
        "{e}"
    );
    let e = refused(
        "salesforce",
        json!({ "client_id": "id", "external_id_field": EXT, "private_key": TEST_KEY_PEM }),
        "PRIVATE KEY",
    );
    assert!(e.contains("username: required"), "{e}");
    let e = refused(
        "salesforce",
        json!({ "client_id": "id", "client_secret": secret }),
        secret,
    );
    assert!(e.contains("missing field `external_id_field`"), "{e}");
}

#[tokio::test]
async fn the_fake_refuses_and_records_requests_salesforce_would_refuse() {
    let fake = salesforce::start().await;
    let client = reqwest::Client::new();
    // A token request as JSON, not a form.
    let resp = client
        .post(format!("{}/services/oauth2/token", fake.url))
        .json(&json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // A form with an unknown grant type.
    let resp = client
        .post(format!("{}/services/oauth2/token", fake.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=magic")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // 201 records, no attributes, and no token.
    let records: Vec<Value> = (0..201).map(|n| json!({ EXT: format!("u{n}") })).collect();
    let resp = client
        .patch(format!(
            "{}/services/data/v64.0/composite/sobjects/Contact/{EXT}",
            fake.url
        ))
        .json(&json!({ "allOrNone": false, "records": records }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let violations = fake.journal.violations();
    assert!(
        violations
            .iter()
            .any(|v| v.contains("not application/x-www-form-urlencoded")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v.contains("form")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v.contains("/records")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v.contains("attributes")),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains("Authorization: Bearer")),
        "{violations:?}"
    );
    assert!(fake.records().is_empty());
}

#[test]
fn the_example_mapping_is_accepted_and_defines_the_identity_fields() {
    check_example_mapping("salesforce");
}
