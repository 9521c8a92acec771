//! The `klaviyo` connector against the Klaviyo fake, over real HTTP on
//! loopback. Every test ends with the fake's journal free of violations.

use std::time::Duration;

use connectors::http::OpenGate;
use connectors::{
    Action, BatchResult, CheckResult, Connector, DestinationSignal, Http, Item, ItemOutcome,
    Ticket, TicketStatus, build,
};
use serde_json::{Value, json};
use vendor_fakes::Forced;
use vendor_fakes::klaviyo::{self, API_KEY, KlaviyoFake, LIST_ID, REVISION};

fn connector_with(fake: &KlaviyoFake, extra: Value) -> Box<dyn Connector> {
    let mut settings = json!({"api_key": API_KEY, "base_url": fake.url});
    if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    build("klaviyo", &settings).expect("valid settings")
}

fn connector(fake: &KlaviyoFake) -> Box<dyn Connector> {
    connector_with(fake, json!({}))
}

fn email(n: usize) -> String {
    format!("profile{n}@example.com")
}

fn subject(n: usize) -> String {
    format!("0190-subject-{n}")
}

fn upsert(n: usize, consent: Option<bool>) -> Item {
    upsert_with(
        n,
        consent,
        json!({"email": email(n), "first_name": "Ada", "loyalty_tier": "gold"}),
    )
}

fn upsert_with(n: usize, consent: Option<bool>, fields: Value) -> Item {
    let mut item = Item {
        subject_id: subject(n),
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

fn client() -> reqwest::Client {
    connectors::install_crypto_provider();
    reqwest::Client::new()
}

fn http(client: &reqwest::Client) -> Http<'_> {
    Http::new(client, &OpenGate, Duration::from_secs(10))
}

async fn send(c: &dyn Connector, items: &[Item]) -> BatchResult {
    let client = client();
    c.send(&http(&client), items).await
}

async fn check(c: &dyn Connector, items: &[Item], result: &BatchResult) -> CheckResult {
    let tickets: Vec<Ticket> = result
        .outcomes
        .iter()
        .filter_map(|(i, o)| match o {
            ItemOutcome::Accepted { ticket, .. } => Some(Ticket {
                ticket: ticket.clone(),
                item: items[*i].clone(),
            }),
            _ => None,
        })
        .collect();
    assert!(!tickets.is_empty(), "nothing accepted: {result:?}");
    let client = client();
    c.check(&http(&client), &tickets).await
}

fn outcome(result: &BatchResult, i: usize) -> &ItemOutcome {
    &result
        .outcomes
        .iter()
        .find(|(k, _)| *k == i)
        .unwrap_or_else(|| panic!("no outcome for item {i}: {result:?}"))
        .1
}

fn all_pending(c: &CheckResult, n: usize) -> bool {
    c.statuses.len() == n
        && c.statuses
            .iter()
            .all(|(_, s)| matches!(s, TicketStatus::Pending { .. }))
}

#[tokio::test]
async fn one_upsert_is_a_profile_import_answering_the_profile_id() {
    let fake = klaviyo::start().await;
    let out = send(&*connector(&fake), &[upsert(1, None)]).await;
    let profile = fake.profile_by_email(&email(1)).expect("created");
    assert_eq!(
        out.outcomes,
        vec![(
            0,
            ItemOutcome::Delivered {
                record_id: Some(profile.id.clone())
            }
        )]
    );
    assert_eq!(out.status, Some(201));
    assert_eq!(profile.external_id.as_deref(), Some(subject(1).as_str()));
    assert_eq!(profile.attributes["first_name"], "Ada");
    assert_eq!(profile.properties["loyalty_tier"], "gold");
    let call = &fake.journal.requests()[0];
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("POST", "/api/profile-import")
    );
    assert_eq!(
        call.header("authorization"),
        Some(format!("Klaviyo-API-Key {API_KEY}").as_str())
    );
    assert_eq!(call.header("revision"), Some(REVISION));
    assert_eq!(
        call.header("content-type"),
        Some("application/vnd.api+json")
    );
    // Again: an update of the same profile (200), found by its identifiers.
    let again = send(&*connector(&fake), &[upsert(1, None)]).await;
    assert_eq!(again.status, Some(200));
    assert_eq!(fake.profiles().len(), 1);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_full_batch_is_one_bulk_import_job_confirmed_by_polling() {
    let fake = klaviyo::start().await;
    fake.set_job_polls(3);
    let c = connector(&fake);
    let max = c.batch_policy().max_items;
    assert_eq!(max, 1000);
    let items: Vec<Item> = (0..max).map(|n| upsert(n, None)).collect();
    let out = send(&*c, &items).await;
    assert_eq!(out.status, Some(202));
    let imports = fake.journal.requests_to("/api/profile-bulk-import-jobs");
    assert_eq!(imports.len(), 1, "one job for the batch");
    assert_eq!(
        imports[0].json()["data"]["attributes"]["profiles"]["data"]
            .as_array()
            .unwrap()
            .len(),
        max
    );
    let tickets: std::collections::BTreeSet<String> = out
        .outcomes
        .iter()
        .map(|(_, o)| match o {
            ItemOutcome::Accepted { ticket, .. } => ticket.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(tickets.len(), 1);
    // queued, processing, complete.
    assert!(all_pending(&check(&*c, &items, &out).await, max));
    assert!(all_pending(&check(&*c, &items, &out).await, max));
    assert!(
        fake.profiles().is_empty(),
        "Klaviyo writes the profiles when the job runs"
    );
    let done = check(&*c, &items, &out).await;
    assert_eq!(done.statuses.len(), max);
    assert!(
        done.statuses
            .iter()
            .all(|(_, s)| matches!(s, TicketStatus::Confirmed { .. }))
    );
    assert_eq!(fake.profiles().len(), max);
    assert_eq!(
        fake.journal
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .count(),
        3,
        "one poll per distinct ticket"
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn bad_profiles_in_a_bulk_job_fail_alone_with_klaviyos_import_errors() {
    let fake = klaviyo::start().await;
    fake.set_job_polls(1);
    fake.refuse_email(
        &email(1),
        "This email is on the suppression list of the account",
    );
    let c = connector(&fake);
    // Every other profile of 300 has an address Klaviyo refuses: 150
    // import errors, two pages of them.
    let items: Vec<Item> = (0..300)
        .map(|n| {
            if n % 2 == 0 && n > 0 {
                upsert_with(
                    n,
                    None,
                    json!({"email": format!("broken{n}-at-example.com")}),
                )
            } else {
                upsert(n, None)
            }
        })
        .collect();
    let out = send(&*c, &items).await;
    let done = check(&*c, &items, &out).await;
    assert_eq!(done.statuses.len(), 300);
    for (i, status) in &done.statuses {
        match status {
            TicketStatus::Failed { reason, retry } if *i == 1 => {
                assert!(!retry);
                assert!(reason.contains("suppression list"), "{reason}");
            }
            TicketStatus::Failed {
                reason,
                retry: false,
            } if i % 2 == 0 && *i > 0 => {
                assert!(reason.contains("Invalid email address"), "{reason}")
            }
            TicketStatus::Confirmed { .. } if i % 2 == 1 && *i != 1 || *i == 0 => {}
            other => panic!("item {i}: {other:?}"),
        }
    }
    assert_eq!(
        fake.journal
            .requests_to("/api/profile-bulk-import-jobs/")
            .len(),
        3,
        "the job and two pages of errors"
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_cancelled_job_fails_its_items_for_a_retry() {
    let fake = klaviyo::start().await;
    fake.set_job_polls(1);
    fake.cancel_next_job();
    let c = connector(&fake);
    let items: Vec<Item> = (0..3).map(|n| upsert(n, None)).collect();
    let out = send(&*c, &items).await;
    let done = check(&*c, &items, &out).await;
    assert!(
        done.statuses
            .iter()
            .all(|(_, s)| matches!(s, TicketStatus::Failed { retry: true, .. })),
        "{done:?}"
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn with_a_list_upserts_subscribe_the_consented_and_unsubscribe_the_refusing() {
    let fake = klaviyo::start().await;
    let c = connector_with(&fake, json!({"list_id": LIST_ID}));
    let out = send(&*c, &[upsert(1, Some(true))]).await;
    assert!(
        matches!(
            out.outcomes[0].1,
            ItemOutcome::Delivered { record_id: Some(_) }
        ),
        "{out:?}"
    );
    let p = fake.profile_by_email(&email(1)).unwrap();
    assert_eq!(p.email_marketing.as_deref(), Some("SUBSCRIBED"));
    assert!(p.lists.contains(LIST_ID));
    let subscribe = &fake
        .journal
        .requests_to("/api/profile-subscription-bulk-create-jobs")[0];
    assert_eq!(
        subscribe.json()["data"]["relationships"]["list"]["data"]["id"],
        LIST_ID
    );
    // Denied: unsubscribed; never asked: left alone.
    let out = send(&*c, &[upsert(1, Some(false)), upsert(2, None)]).await;
    assert!(
        out.outcomes
            .iter()
            .all(|(_, o)| matches!(o, ItemOutcome::Accepted { .. })),
        "{out:?}"
    );
    assert_eq!(
        fake.journal
            .requests_to("/api/profile-subscription-bulk-delete-jobs")
            .len(),
        1
    );
    assert_eq!(
        fake.profile_by_email(&email(1))
            .unwrap()
            .email_marketing
            .as_deref(),
        Some("UNSUBSCRIBED")
    );
    // Without a list, upserts leave subscriptions alone.
    let plain = klaviyo::start().await;
    send(&*connector(&plain), &[upsert(1, Some(true))]).await;
    assert!(
        plain
            .journal
            .requests_to("/api/profile-subscription")
            .is_empty()
    );
    fake.journal.assert_no_violations();
    plain.journal.assert_no_violations();
}

#[tokio::test]
async fn a_bad_address_in_a_subscribe_job_fails_alone_and_the_others_retry() {
    let fake = klaviyo::start().await;
    fake.refuse_email(
        &email(2),
        "Profile can not be subscribed: the email is blocked",
    );
    let c = connector_with(&fake, json!({"list_id": LIST_ID}));
    let items: Vec<Item> = (0..3).map(|n| upsert(n, Some(true))).collect();
    let out = send(&*c, &items).await;
    match outcome(&out, 2) {
        ItemOutcome::Permanent { reason } => {
            assert!(
                reason.contains("email is blocked")
                    && reason.contains("/data/attributes/profiles/data/2"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    for i in [0, 1] {
        assert!(
            matches!(outcome(&out, i), ItemOutcome::Retry { .. }),
            "{out:?}"
        );
    }
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn withdrawal_is_an_unsubscribe_job_of_at_most_100_profiles() {
    let fake = klaviyo::start().await;
    let c = connector_with(&fake, json!({"list_id": LIST_ID}));
    let items: Vec<Item> = (0..150).map(|n| upsert(n, Some(true))).collect();
    send(&*c, &items).await;
    let withdrawals: Vec<Item> = (0..150)
        .map(|n| {
            action(
                n,
                if n % 2 == 0 {
                    Action::Unsubscribe
                } else {
                    Action::Suppress
                },
            )
        })
        .collect();
    let out = send(&*c, &withdrawals).await;
    assert_eq!(out.outcomes.len(), 150);
    assert!(
        out.outcomes
            .iter()
            .all(|(_, o)| matches!(o, ItemOutcome::Delivered { .. })),
        "{out:?}"
    );
    let jobs = fake
        .journal
        .requests_to("/api/profile-subscription-bulk-delete-jobs");
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        jobs[0].json()["data"]["attributes"]["profiles"]["data"]
            .as_array()
            .unwrap()
            .len(),
        100
    );
    assert_eq!(
        jobs[0].json()["data"]["attributes"]["profiles"]["data"][0]["attributes"]["subscriptions"],
        json!({"email": {"marketing": {"consent": "UNSUBSCRIBED"}}})
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn delete_is_a_deletion_job_confirmed_once_the_profile_is_gone() {
    let fake = klaviyo::start().await;
    fake.set_deletion_reads(2);
    let c = connector(&fake);
    let first = send(&*c, &[upsert(1, None)]).await;
    let ItemOutcome::Delivered {
        record_id: Some(id),
    } = first.outcomes[0].1.clone()
    else {
        panic!("{first:?}")
    };
    let mut delete = action(1, Action::Delete);
    delete.record_id = Some(id.clone());
    let items = vec![delete];
    let out = send(&*c, &items).await;
    assert!(
        matches!(outcome(&out, 0), ItemOutcome::Accepted { .. }),
        "{out:?}"
    );
    assert_eq!(fake.deletion_requests()[0].by, "id");
    assert!(all_pending(&check(&*c, &items, &out).await, 1));
    assert!(all_pending(&check(&*c, &items, &out).await, 1));
    let done = check(&*c, &items, &out).await;
    assert_eq!(
        done.statuses,
        vec![(0, TicketStatus::Confirmed { record_id: None })]
    );
    assert!(fake.is_deleted(&id));
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn without_a_profile_id_delete_goes_by_email_else_by_our_id() {
    let fake = klaviyo::start().await;
    fake.set_deletion_reads(0);
    let c = connector(&fake);
    send(&*c, &[upsert(1, None)]).await;
    let items = vec![action(1, Action::Delete)];
    let out = send(&*c, &items).await;
    assert_eq!(fake.deletion_requests()[0].by, "email");
    let done = check(&*c, &items, &out).await;
    assert_eq!(
        done.statuses,
        vec![(0, TicketStatus::Confirmed { record_id: None })]
    );
    // No id, no email: found by external id, deleted by its id.
    let id = fake.insert_profile(&email(2), Some(&subject(2)));
    let mut unknown = action(2, Action::Delete);
    unknown.identity.clear();
    let out = send(&*c, &[unknown.clone()]).await;
    assert!(matches!(outcome(&out, 0), ItemOutcome::Accepted { .. }));
    assert_eq!(fake.deletion_requests()[1].value, id);
    // Nothing there: done.
    let mut absent = action(3, Action::Delete);
    absent.identity.clear();
    let out = send(&*c, &[absent]).await;
    assert_eq!(
        out.outcomes,
        vec![(0, ItemOutcome::Delivered { record_id: None })]
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn the_steady_window_throttles_with_klaviyos_headers() {
    let fake = klaviyo::start().await;
    fake.set_rate_limit("profile-import", 10, 1);
    let c = connector(&fake);
    // The call that spends the window says so: RateLimit-Remaining 0.
    let out = send(&*c, &[upsert(1, None)]).await;
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Delivered { .. }));
    let Some(DestinationSignal::Throttle {
        retry_after,
        reason,
    }) = out.signal
    else {
        panic!("{out:?}")
    };
    assert!(
        retry_after > Duration::from_secs(50) && retry_after <= Duration::from_secs(60),
        "{retry_after:?}"
    );
    assert!(reason.contains("RateLimit-Remaining 0"));
    // The next one gets Klaviyo's 429 with Retry-After.
    let out = send(&*c, &[upsert(2, None)]).await;
    assert_eq!(out.status, Some(429));
    let Some(DestinationSignal::Throttle {
        retry_after,
        reason,
    }) = out.signal
    else {
        panic!("{out:?}")
    };
    assert!(retry_after > Duration::from_secs(50) && retry_after <= Duration::from_secs(60));
    assert!(reason.contains("throttled"), "{reason}");
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Retry { .. }));
    let answer = fake.journal.requests().len();
    assert_eq!(answer, 2);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_forced_429_throttles_for_its_retry_after() {
    let fake = klaviyo::start().await;
    fake.journal.force([Forced::reply(
        429,
        &[("retry-after", "7"), ("content-type", "application/vnd.api+json")],
        r#"{"errors":[{"id":"x","status":429,"code":"throttled","title":"Request was throttled.","detail":"Request was throttled. Expected available in 7 seconds."}]}"#,
    )]);
    let items: Vec<Item> = (0..2).map(|n| upsert(n, None)).collect();
    let out = send(&*connector(&fake), &items).await;
    assert!(matches!(
        &out.signal,
        Some(DestinationSignal::Throttle { retry_after, .. }) if *retry_after == Duration::from_secs(7)
    ));
    assert!(
        out.outcomes
            .iter()
            .all(|(_, o)| matches!(o, ItemOutcome::Retry { .. }))
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_refused_key_pauses_the_destination_and_loses_nothing() {
    let fake = klaviyo::start().await;
    let c = build(
        "klaviyo",
        &json!({"api_key": "pk_revoked", "base_url": fake.url}),
    )
    .unwrap();
    let items: Vec<Item> = (0..3).map(|n| upsert(n, None)).collect();
    let out = send(&*c, &items).await;
    assert!(
        matches!(&out.signal, Some(DestinationSignal::Pause { reason }) if reason.contains("authentication_failed"))
    );
    assert_eq!(out.outcomes.len(), 3);
    assert!(
        out.outcomes
            .iter()
            .all(|(_, o)| matches!(o, ItemOutcome::Retry { .. }))
    );
    assert!(fake.profiles().is_empty());
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn server_errors_are_retried_and_a_poll_that_fails_asks_again() {
    let fake = klaviyo::start().await;
    let c = connector(&fake);
    fake.journal.force([Forced::reply(503, &[], "")]);
    let out = send(&*c, &[upsert(1, None)]).await;
    assert!(matches!(&out.outcomes[0].1, ItemOutcome::Retry { reason } if reason.contains("503")));
    let items: Vec<Item> = (0..2).map(|n| upsert(n, None)).collect();
    let out = send(&*c, &items).await;
    fake.journal.force([Forced::reply(500, &[], "")]);
    let polled = check(&*c, &items, &out).await;
    assert!(polled.statuses.is_empty(), "no status: asked again later");
    assert_eq!(polled.signal, None);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_conflict_is_permanent_with_klaviyos_message() {
    let fake = klaviyo::start().await;
    // Another profile already has this subject's email.
    fake.insert_profile(&email(1), Some("someone-else"));
    fake.insert_profile("other@example.com", Some(&subject(1)));
    let out = send(&*connector(&fake), &[upsert(1, None)]).await;
    match outcome(&out, 0) {
        ItemOutcome::Permanent { reason } => assert!(
            reason
                .starts_with("Klaviyo 409: duplicate_profile: Conflict.: A profile already exists"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(out.signal, None);
    fake.journal.assert_no_violations();
}

#[test]
fn settings_are_refused_with_the_key_and_never_the_secret() {
    let secret = "pk_s3cr3t0123456789";
    let cases = [
        (json!({}), "api_key"),
        (json!({"api_key": secret, "revision": "latest"}), "revision"),
        (
            json!({"api_key": secret, "base_url": "a.klaviyo.com"}),
            "base_url",
        ),
        (json!({"api_key": secret, "list_id": "Y6 nRLr"}), "list_id"),
        (
            json!({"api_key": secret, "email_purpose": " "}),
            "email_purpose",
        ),
        (json!({"api_key": secret, "apikey": secret}), "apikey"),
        (json!({"api_key": [secret]}), "api_key"),
    ];
    for (settings, key) in cases {
        let err = build("klaviyo", &settings).unwrap_err().to_string();
        assert!(err.contains(key), "{settings}: {err}");
        assert!(!err.contains(secret), "{err}");
    }
    let c = build("klaviyo", &json!({"api_key": secret})).unwrap();
    assert!(!format!("{c:?}").contains(secret));
    assert!(format!("{c:?}").contains("https://a.klaviyo.com"));
    assert_eq!(c.identity_fields(), vec!["email".to_string()]);
}

#[tokio::test]
async fn the_fake_refuses_what_klaviyo_would_and_records_it() {
    let fake = klaviyo::start().await;
    let client = client();
    let url = |p: &str| format!("{}{p}", fake.url);
    let profile = json!({"data": {"type": "profile", "attributes": {"email": "a@example.com"}}});
    let auth = format!("Klaviyo-API-Key {API_KEY}");
    // Plain JSON instead of JSON:API.
    let r = client
        .post(url("/api/profile-import"))
        .header("authorization", &auth)
        .header("revision", REVISION)
        .json(&profile)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "invalid");
    // No revision; a revision from the future; a bearer token.
    let post = |path: &str, body: &Value| {
        client
            .post(url(path))
            .header("authorization", &auth)
            .header("content-type", "application/vnd.api+json")
            .body(body.to_string())
    };
    assert_eq!(
        post("/api/profile-import", &profile)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post("/api/profile-import", &profile)
            .header("revision", "2099-01-01")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let r = client
        .post(url("/api/profile-import"))
        .header("authorization", format!("Bearer {API_KEY}"))
        .header("revision", REVISION)
        .header("content-type", "application/vnd.api+json")
        .body(profile.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A deletion naming two identifiers; an unsubscribe job of 101.
    let two = json!({"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {"type": "profile", "id": "01X", "attributes": {"email": "a@example.com"}}}}}});
    assert_eq!(
        post("/api/data-privacy-deletion-jobs", &two)
            .header("revision", REVISION)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let many: Vec<Value> = (0..101).map(|n| json!({"type": "profile", "attributes": {"email": email(n), "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}}})).collect();
    let unsubscribe = json!({"data": {"type": "profile-subscription-bulk-delete-job", "attributes": {"profiles": {"data": many}}}});
    assert_eq!(
        post("/api/profile-subscription-bulk-delete-jobs", &unsubscribe)
            .header("revision", REVISION)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    // A consent value the schema does not have.
    let wrong = json!({"data": {"type": "profile-subscription-bulk-create-job", "attributes": {"profiles": {"data": [{"type": "profile", "attributes": {"email": "a@example.com", "subscriptions": {"email": {"marketing": {"consent": "YES"}}}}}]}}}});
    assert_eq!(
        post("/api/profile-subscription-bulk-create-jobs", &wrong)
            .header("revision", REVISION)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let v = fake.journal.violations();
    assert!(v[0].contains("content-type application/json"), "{v:#?}");
    assert!(v[1].contains("\"revision\" is missing"), "{v:#?}");
    assert!(v[2].contains("2099-01-01"), "{v:#?}");
    assert!(v[3].contains("Klaviyo-API-Key"), "{v:#?}");
    assert!(v[4].contains("exactly one"), "{v:#?}");
    assert!(v[5].contains("101 profiles"), "{v:#?}");
    assert!(v[6].contains("consent"), "{v:#?}");
    assert_eq!(v.len(), 7, "{v:#?}");
    assert!(fake.profiles().is_empty());
}
