//! The `mailchimp` connector against the Mailchimp fake, over real HTTP on
//! loopback. Every test ends with the fake's journal free of violations.

use std::time::Duration;

use connectors::http::OpenGate;
use connectors::{
    Action, BatchResult, Connector, DestinationSignal, Http, Item, ItemOutcome, build,
    classify::DEFAULT_THROTTLE, mailchimp::subscriber_hash,
};
use serde_json::{Value, json};
use vendor_fakes::Forced;
use vendor_fakes::mailchimp::{self, API_KEY, LIST_ID, MailchimpFake, OAUTH_TOKEN};

fn connector_with(settings: Value) -> Box<dyn Connector> {
    build("mailchimp", &settings).expect("valid settings")
}

fn connector(fake: &MailchimpFake) -> Box<dyn Connector> {
    connector_with(json!({"api_key": API_KEY, "list_id": LIST_ID, "base_url": fake.base_url}))
}

fn email(n: usize) -> String {
    format!("member{n}@example.com")
}

fn upsert(n: usize, consent: Option<bool>) -> Item {
    let fields = json!({"email": email(n), "FNAME": format!("Ada{n}"), "LNAME": "Lovelace"});
    let mut item = Item {
        subject_id: format!("0190-subject-{n}"),
        delivery_id: format!("msg_{n}"),
        action: Action::Upsert(fields.as_object().cloned().unwrap()),
        identity: json!({"email": email(n)}).as_object().cloned().unwrap(),
        record_id: None,
        consent: Default::default(),
    };
    if let Some(granted) = consent {
        item.consent.insert("marketing_email".into(), granted);
    }
    item
}

fn action(n: usize, action: Action) -> Item {
    Item {
        action,
        ..upsert(n, None)
    }
}

async fn send(c: &dyn Connector, items: &[Item]) -> BatchResult {
    let client = client();
    c.send(
        &Http::new(&client, &OpenGate, Duration::from_secs(10)),
        items,
    )
    .await
}

fn client() -> reqwest::Client {
    connectors::install_crypto_provider();
    reqwest::Client::new()
}

fn delivered(n: usize) -> ItemOutcome {
    ItemOutcome::Delivered {
        record_id: Some(subscriber_hash(&email(n))),
    }
}

fn outcome(result: &BatchResult, i: usize) -> &ItemOutcome {
    &result
        .outcomes
        .iter()
        .find(|(k, _)| *k == i)
        .unwrap_or_else(|| panic!("no outcome for item {i}: {result:?}"))
        .1
}

#[tokio::test]
async fn upserts_one_member_with_its_status_from_consent_and_merge_fields() {
    let fake = mailchimp::start().await;
    let out = send(&*connector(&fake), &[upsert(1, Some(true))]).await;
    assert_eq!(out.outcomes, vec![(0, delivered(1))]);
    assert_eq!(out.status, Some(200));
    let member = fake.member(&email(1)).expect("the member exists");
    assert_eq!(member.status, "subscribed");
    assert_eq!(member.merge_fields["FNAME"], "Ada1");
    assert_eq!(member.merge_fields["LNAME"], "Lovelace");
    let calls = fake.journal.requests();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, format!("/3.0/lists/{LIST_ID}"));
    assert_eq!(calls[0].json()["update_existing"], true);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_full_batch_of_500_is_one_call_and_every_member_gets_its_hash() {
    let fake = mailchimp::start().await;
    let c = connector(&fake);
    assert_eq!(c.batch_policy().max_items, 500);
    // Granted, denied and never asked: subscribed, unsubscribed, transactional.
    let consent = |n: usize| match n % 3 {
        0 => Some(true),
        1 => Some(false),
        _ => None,
    };
    let items: Vec<Item> = (0..500).map(|n| upsert(n, consent(n))).collect();
    let out = send(&*c, &items).await;
    assert_eq!(fake.journal.requests().len(), 1, "one call for the batch");
    assert_eq!(out.outcomes.len(), 500);
    for n in 0..500 {
        assert_eq!(outcome(&out, n), &delivered(n));
    }
    assert_eq!(fake.members().len(), 500);
    assert_eq!(fake.member(&email(3)).unwrap().status, "subscribed");
    assert_eq!(fake.member(&email(4)).unwrap().status, "unsubscribed");
    assert_eq!(fake.member(&email(5)).unwrap().status, "transactional");
    // The same batch again updates: still 500 members, all delivered.
    let again = send(&*c, &items).await;
    assert!(
        again
            .outcomes
            .iter()
            .all(|(_, o)| matches!(o, ItemOutcome::Delivered { .. }))
    );
    assert_eq!(fake.members().len(), 500);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_bad_member_fails_alone_with_mailchimps_message() {
    let fake = mailchimp::start().await;
    fake.reject_email(&email(7), "member7@example.com has signed up to a lot of lists very recently; we're not allowing more signups for now");
    let mut items: Vec<Item> = (0..10).map(|n| upsert(n, Some(true))).collect();
    let mut bad = upsert(3, Some(true));
    bad.action = Action::Upsert(
        json!({"email": "not an address"})
            .as_object()
            .cloned()
            .unwrap(),
    );
    items[3] = bad;
    let out = send(&*connector(&fake), &items).await;
    for n in (0..10).filter(|n| ![3, 7].contains(n)) {
        assert_eq!(outcome(&out, n), &delivered(n));
    }
    match outcome(&out, 3) {
        ItemOutcome::Permanent { reason } => assert!(
            reason.contains("not an address looks fake or invalid")
                && reason.contains("ERROR_GENERIC"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    match outcome(&out, 7) {
        ItemOutcome::Permanent { reason } => {
            assert!(reason.contains("signed up to a lot of lists"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn an_item_without_email_is_permanent_before_any_call() {
    let fake = mailchimp::start().await;
    let mut item = upsert(1, Some(true));
    item.action = Action::Upsert(json!({"FNAME": "Ada"}).as_object().cloned().unwrap());
    let out = send(&*connector(&fake), &[item]).await;
    assert!(
        matches!(&out.outcomes[0].1, ItemOutcome::Permanent { reason } if reason.contains("`email`"))
    );
    assert!(fake.journal.requests().is_empty());
}

#[tokio::test]
async fn a_required_merge_field_refuses_only_the_new_member_without_it() {
    let fake = mailchimp::start().await;
    fake.require_merge_field("FNAME");
    let mut without = upsert(2, Some(true));
    without.action = Action::Upsert(json!({"email": email(2)}).as_object().cloned().unwrap());
    let out = send(&*connector(&fake), &[upsert(1, Some(true)), without]).await;
    assert_eq!(outcome(&out, 0), &delivered(1));
    assert!(
        matches!(outcome(&out, 1), ItemOutcome::Permanent { reason } if reason.contains("FNAME: Please enter a value"))
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn delete_is_permanent_by_the_email_last_delivered() {
    let fake = mailchimp::start().await;
    let c = connector(&fake);
    send(&*c, &[upsert(1, Some(true))]).await;
    let out = send(&*c, &[action(1, Action::Delete)]).await;
    assert_eq!(
        out.outcomes,
        vec![(0, ItemOutcome::Delivered { record_id: None })]
    );
    assert_eq!(out.status, Some(204));
    assert!(fake.member(&email(1)).is_none());
    assert!(fake.is_forgotten(&email(1)));
    let hash = subscriber_hash(&email(1));
    let last = fake.journal.requests().pop().unwrap();
    assert_eq!(
        last.path,
        format!("/3.0/lists/{LIST_ID}/members/{hash}/actions/delete-permanent")
    );
    // Mailchimp never takes the address back.
    let again = send(&*c, &[upsert(1, Some(true))]).await;
    assert!(
        matches!(&again.outcomes[0].1, ItemOutcome::Permanent { reason } if reason.contains("permanently deleted"))
    );
    // Deleting what is gone is done.
    let twice = send(&*c, &[action(1, Action::Delete)]).await;
    assert_eq!(
        twice.outcomes,
        vec![(0, ItemOutcome::Delivered { record_id: None })]
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn withdrawal_unsubscribes_the_member() {
    let fake = mailchimp::start().await;
    let c = connector(&fake);
    send(&*c, &[upsert(1, Some(true)), upsert(2, Some(true))]).await;
    let out = send(
        &*c,
        &[action(1, Action::Unsubscribe), action(2, Action::Suppress)],
    )
    .await;
    assert_eq!(out.outcomes, vec![(0, delivered(1)), (1, delivered(2))]);
    assert_eq!(fake.member(&email(1)).unwrap().status, "unsubscribed");
    assert_eq!(fake.member(&email(2)).unwrap().status, "unsubscribed");
    let patches: Vec<_> = fake
        .journal
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 2);
    assert_eq!(patches[0].json(), json!({"status": "unsubscribed"}));
    // Not on the list: nothing to unsubscribe, which is what was asked.
    let absent = send(&*c, &[action(9, Action::Unsubscribe)]).await;
    assert!(matches!(
        absent.outcomes[0].1,
        ItemOutcome::Delivered { .. }
    ));
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_changed_address_renames_the_member_instead_of_adding_one() {
    let fake = mailchimp::start().await;
    let c = connector(&fake);
    send(&*c, &[upsert(1, Some(true))]).await;
    let mut moved = upsert(1, Some(true));
    moved.record_id = Some(subscriber_hash(&email(1)));
    moved.action = Action::Upsert(
        json!({"email": "ada.new@example.com", "FNAME": "Ada"})
            .as_object()
            .cloned()
            .unwrap(),
    );
    let out = send(&*c, &[moved]).await;
    assert_eq!(
        out.outcomes,
        vec![(
            0,
            ItemOutcome::Delivered {
                record_id: Some(subscriber_hash("ada.new@example.com"))
            }
        )]
    );
    assert_eq!(fake.members().len(), 1);
    assert!(fake.member(&email(1)).is_none());
    assert_eq!(
        fake.member("ada.new@example.com").unwrap().status,
        "subscribed"
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn the_eleventh_connection_is_throttled_and_throttles_the_destination() {
    let fake = mailchimp::start().await;
    fake.set_latency(Duration::from_millis(1000));
    let c = connector(&fake);
    let sends = (0..11).map(|n| {
        let c = &c;
        async move { send(&**c, &[upsert(n, Some(true))]).await }
    });
    let results = futures::future::join_all(sends).await;
    let throttled: Vec<&BatchResult> = results.iter().filter(|r| r.status == Some(429)).collect();
    assert_eq!(throttled.len(), 1, "{results:?}");
    let t = throttled[0];
    // Mailchimp sends no Retry-After: the default pause.
    assert!(
        matches!(
            &t.signal,
            Some(DestinationSignal::Throttle { retry_after, reason })
                if *retry_after == DEFAULT_THROTTLE && reason.contains("10 simultaneous connections")
        ),
        "{t:?}"
    );
    assert!(matches!(t.outcomes[0].1, ItemOutcome::Retry { .. }));
    assert_eq!(results.iter().filter(|r| r.status == Some(200)).count(), 10);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_429_with_retry_after_throttles_for_that_long() {
    let fake = mailchimp::start().await;
    let body = r#"{"type":"https://mailchimp.com/developer/marketing/docs/errors/","title":"Too Many Requests","status":429,"detail":"You have exceeded the limit of 10 simultaneous connections.","instance":"x"}"#;
    fake.journal.force([Forced::reply(
        429,
        &[
            ("retry-after", "5"),
            ("content-type", "application/problem+json"),
        ],
        body,
    )]);
    let out = send(&*connector(&fake), &[upsert(1, Some(true))]).await;
    assert!(matches!(
        &out.signal,
        Some(DestinationSignal::Throttle { retry_after, .. }) if *retry_after == Duration::from_secs(5)
    ));
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Retry { .. }));
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_refused_key_pauses_the_destination_and_loses_nothing() {
    let fake = mailchimp::start().await;
    let c = connector_with(json!({
        "api_key": "ffffffffffffffffffffffffffffffff-us6", "list_id": LIST_ID, "base_url": fake.base_url
    }));
    let items = vec![upsert(1, Some(true)), upsert(2, Some(true))];
    let out = send(&*c, &items).await;
    assert_eq!(out.status, Some(401));
    assert!(
        matches!(&out.signal, Some(DestinationSignal::Pause { reason }) if reason.contains("API Key Invalid"))
    );
    assert!(
        out.outcomes
            .iter()
            .all(|(_, o)| matches!(o, ItemOutcome::Retry { .. }))
    );
    assert_eq!(out.outcomes.len(), 2);
    assert!(fake.members().is_empty());
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn server_errors_are_retried() {
    let fake = mailchimp::start().await;
    let c = connector(&fake);
    fake.journal
        .force([Forced::reply(503, &[], "upstream unavailable")]);
    let out = send(&*c, &[upsert(1, Some(true))]).await;
    assert!(matches!(&out.outcomes[0].1, ItemOutcome::Retry { reason } if reason.contains("503")));
    assert_eq!(out.signal, None);
    fake.journal.force([Forced::reply(500, &[("content-type", "application/problem+json")], r#"{"title":"Internal Server Error","status":500,"detail":"An unexpected internal error has occurred.","type":"t","instance":"i"}"#)]);
    let out = send(&*c, &[action(1, Action::Delete)]).await;
    assert!(
        matches!(&out.outcomes[0].1, ItemOutcome::Retry { reason } if reason.contains("Internal Server Error"))
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_permanent_refusal_carries_mailchimps_message() {
    let fake = mailchimp::start().await;
    let c = connector_with(
        json!({"api_key": API_KEY, "list_id": "nosuchlist", "base_url": fake.base_url}),
    );
    let out = send(&*c, &[upsert(1, Some(true))]).await;
    assert_eq!(
        out.outcomes,
        vec![(
            0,
            ItemOutcome::Permanent {
                reason:
                    "Mailchimp 404 Resource Not Found: The requested resource could not be found."
                        .into()
            }
        )]
    );
    assert_eq!(out.signal, None);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn an_oauth_token_goes_as_bearer() {
    let fake = mailchimp::start().await;
    let c = connector_with(json!({
        "api_key": OAUTH_TOKEN, "auth": "bearer", "list_id": LIST_ID, "base_url": fake.base_url
    }));
    let out = send(&*c, &[upsert(1, Some(true))]).await;
    assert_eq!(out.outcomes, vec![(0, delivered(1))]);
    let auth = fake.journal.requests()[0]
        .header("authorization")
        .unwrap()
        .to_string();
    assert_eq!(auth, format!("Bearer {OAUTH_TOKEN}"));
    fake.journal.assert_no_violations();
}

#[test]
fn settings_are_refused_with_the_key_and_never_the_secret() {
    let secret = "s3cr3t0123456789";
    let cases = [
        (json!({"api_key": secret, "list_id": LIST_ID}), "api_key"),
        (json!({"api_key": format!("{secret}-us6")}), "list_id"),
        (
            json!({"api_key": format!("{secret}-us6"), "list_id": "a/../b"}),
            "list_id",
        ),
        (
            json!({"api_key": format!("{secret}-us6"), "list_id": LIST_ID, "base_url": "ftp://x"}),
            "base_url",
        ),
        (
            json!({"api_key": secret, "auth": "bearer", "list_id": LIST_ID}),
            "base_url",
        ),
        (
            json!({"api_key": format!("{secret}-us6"), "list_id": LIST_ID, "token": secret}),
            "token",
        ),
        (json!({"api_key": 42, "list_id": LIST_ID}), "api_key"),
    ];
    for (settings, key) in cases {
        let err = build("mailchimp", &settings).unwrap_err().to_string();
        assert!(err.contains(key), "{settings}: {err}");
        assert!(!err.contains(secret), "{err}");
    }
    let c = build(
        "mailchimp",
        &json!({"api_key": format!("{secret}-us6"), "list_id": LIST_ID}),
    )
    .unwrap();
    assert!(!format!("{c:?}").contains(secret));
    assert_eq!(c.identity_fields(), vec!["email".to_string()]);
}

#[tokio::test]
async fn the_fake_refuses_what_mailchimp_would_and_records_it() {
    let fake = mailchimp::start().await;
    let client = client();
    let url = format!("{}/lists/{LIST_ID}", fake.base_url);
    // A status Mailchimp does not have.
    let resp = client
        .post(&url)
        .basic_auth("u", Some(API_KEY))
        .json(&json!({"members": [{"email_address": "a@example.com", "status": "active"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["title"], "Invalid Resource");
    // 501 members.
    let members: Vec<Value> = (0..501)
        .map(|n| json!({"email_address": email(n), "status": "subscribed"}))
        .collect();
    let resp = client
        .post(&url)
        .basic_auth("u", Some(API_KEY))
        .json(&json!({"members": members}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // No credentials; a member without status.
    let resp = client
        .post(&url)
        .json(&json!({"members": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .post(&url)
        .basic_auth("u", Some(API_KEY))
        .json(&json!({"members": [{"email_address": "a@example.com"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let violations = fake.journal.violations();
    assert_eq!(violations.len(), 4, "{violations:#?}");
    assert!(
        violations[0].contains("/members/0/status"),
        "{violations:#?}"
    );
    assert!(violations[1].contains("501 members"));
    assert!(violations[2].contains("no Authorization"));
    assert!(violations[3].contains("has no status"));
    assert!(fake.members().is_empty());
}
