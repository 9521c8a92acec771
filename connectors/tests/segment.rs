//! The segment connector against the Segment fake (Tracking API checked
//! against segment-tracking.derived.yaml; Public API regulations).

use std::collections::BTreeMap;
use std::time::Duration;

use connectors::http::OpenGate;
use connectors::{
    Action, BatchResult, Connector, DestinationSignal, Http, Item, ItemOutcome, Ticket,
    TicketStatus,
};
use serde_json::{Value, json};
use vendor_fakes::Forced;
use vendor_fakes::segment::{self, Fake};

fn connector(fake: &Fake) -> Box<dyn Connector> {
    connectors::build(
        "segment",
        &json!({"write_key": segment::WRITE_KEY, "base_url": fake.url,
                "public_api_token": segment::PUBLIC_API_TOKEN, "public_api_url": fake.url}),
    )
    .unwrap()
}

fn item(n: usize, action: Action) -> Item {
    let mut consent = BTreeMap::new();
    consent.insert("analytics".to_string(), true);
    consent.insert("marketing_email".to_string(), n.is_multiple_of(2));
    Item {
        subject_id: format!("0190c0de-0000-7000-8000-{n:012}"),
        delivery_id: format!("dlv_{n}_{}", action.kind().as_str()),
        action,
        identity: Default::default(),
        record_id: None,
        consent,
    }
}

fn upsert(n: usize) -> Item {
    let fields = json!({"email": format!("u{n}@example.com"), "firstName": "Ada", "plan": "pro"});
    item(n, Action::Upsert(fields.as_object().cloned().unwrap()))
}

async fn send(c: &dyn Connector, items: &[Item]) -> BatchResult {
    connectors::install_crypto_provider();
    let client = reqwest::Client::new();
    c.send(
        &Http::new(&client, &OpenGate, Duration::from_secs(5)),
        items,
    )
    .await
}

async fn check(c: &dyn Connector, tickets: &[Ticket]) -> Vec<(usize, TicketStatus)> {
    let client = reqwest::Client::new();
    c.check(
        &Http::new(&client, &OpenGate, Duration::from_secs(5)),
        tickets,
    )
    .await
    .statuses
}

fn ticket_of(out: &BatchResult, index: usize, item: &Item) -> Ticket {
    match &out.outcomes.iter().find(|(i, _)| *i == index).unwrap().1 {
        ItemOutcome::Accepted { ticket, .. } => Ticket {
            ticket: ticket.clone(),
            item: item.clone(),
        },
        other => panic!("not accepted: {other:?}"),
    }
}

/// Polls `check` until the ticket is no longer pending.
async fn settle(c: &dyn Connector, t: &Ticket) -> TicketStatus {
    for _ in 0..10 {
        let statuses = check(c, std::slice::from_ref(t)).await;
        match &statuses[0].1 {
            TicketStatus::Pending { .. } => continue,
            other => return other.clone(),
        }
    }
    panic!("still pending");
}

#[tokio::test]
async fn upserts_one_identify_with_traits_consent_and_message_id() {
    let fake = segment::start().await;
    let c = connector(&fake);
    let it = upsert(2);
    let out = send(c.as_ref(), std::slice::from_ref(&it)).await;
    assert_eq!(
        out.outcomes,
        vec![(
            0,
            ItemOutcome::Delivered {
                record_id: Some(it.subject_id.clone())
            }
        )]
    );
    let profile = fake.profile(&it.subject_id).unwrap();
    assert_eq!(profile.traits["email"], "u2@example.com");
    let consent = profile.consent.unwrap();
    assert_eq!(consent["Analytics"], true);
    assert_eq!(consent["Marketing"], true);
    assert_eq!(consent["Advertising"], false, "no record: not granted");
    let body = fake.journal.requests_to("/v1/batch")[0].json();
    assert_eq!(body["batch"][0]["messageId"], it.delivery_id);
    assert_eq!(body["batch"][0]["type"], "identify");
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn upserts_a_full_batch_in_one_call() {
    let fake = segment::start().await;
    // 2,500 events fit 500 KB only when small (short ids, one category, one
    // trait); with UUIDs the byte limit ends a batch first.
    let c = connectors::build(
        "segment",
        &json!({"write_key": segment::WRITE_KEY, "base_url": fake.url,
                "consent_categories": {"analytics": "Analytics"}}),
    )
    .unwrap();
    let policy = c.batch_policy();
    assert_eq!(policy.max_items, 2500);
    let items: Vec<Item> = (0..policy.max_items)
        .map(|n| Item {
            subject_id: format!("s{n}"),
            delivery_id: format!("d{n}"),
            ..item(
                n,
                Action::Upsert(json!({"plan": "pro"}).as_object().cloned().unwrap()),
            )
        })
        .collect();
    let bytes: usize = items.iter().map(|i| c.item_bytes(i)).sum();
    assert!(
        bytes <= policy.max_bytes.unwrap(),
        "{bytes} bytes fit the policy"
    );
    let out = send(c.as_ref(), &items).await;
    assert_eq!(fake.journal.requests_to("/v1/batch").len(), 1);
    assert!(
        out.outcomes
            .iter()
            .all(|(_, o)| matches!(o, ItemOutcome::Delivered { .. }))
    );
    assert_eq!(fake.profiles().len(), 2500);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn an_event_over_32_kb_fails_alone() {
    let fake = segment::start().await;
    let c = connector(&fake);
    let mut big = upsert(1);
    if let Action::Upsert(fields) = &mut big.action {
        fields.insert("bio".into(), json!("x".repeat(40 * 1024)));
    }
    let out = send(c.as_ref(), &[upsert(0), big, upsert(2)]).await;
    let failed: Vec<_> = out
        .outcomes
        .iter()
        .filter(|(_, o)| matches!(o, ItemOutcome::Permanent { .. }))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, 1);
    assert!(format!("{:?}", failed[0].1).contains("32 KB"));
    assert_eq!(fake.profiles().len(), 2);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn delete_files_suppress_with_delete_and_check_confirms_when_finished() {
    let fake = segment::start().await;
    fake.set_regulation_polls(2);
    let c = connector(&fake);
    send(c.as_ref(), &[upsert(4)]).await;
    let del = item(4, Action::Delete);
    let out = send(c.as_ref(), std::slice::from_ref(&del)).await;
    let ticket = ticket_of(&out, 0, &del);
    let regulation = &fake.regulations()[0];
    assert_eq!(regulation.regulation_type, "SUPPRESS_WITH_DELETE");
    assert_eq!(regulation.subject_ids, vec![del.subject_id.clone()]);
    assert!(matches!(
        check(c.as_ref(), std::slice::from_ref(&ticket)).await[0].1,
        TicketStatus::Pending { .. }
    ));
    assert!(
        !fake.profile(&del.subject_id).unwrap().deleted,
        "not before it finished"
    );
    assert_eq!(
        settle(c.as_ref(), &ticket).await,
        TicketStatus::Confirmed { record_id: None }
    );
    assert!(fake.profile(&del.subject_id).unwrap().deleted);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_failed_regulation_is_a_failed_ticket() {
    let fake = segment::start().await;
    fake.script_regulation_outcomes(&["NOT_SUPPORTED"]);
    let c = connector(&fake);
    let del = item(5, Action::Delete);
    let out = send(c.as_ref(), std::slice::from_ref(&del)).await;
    let status = settle(c.as_ref(), &ticket_of(&out, 0, &del)).await;
    assert!(
        matches!(status, TicketStatus::Failed { retry: false, .. }),
        "{status:?}"
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn withdrawal_suppresses_and_the_next_upsert_unsuppresses_first() {
    let fake = segment::start().await;
    let c = connector(&fake);
    send(c.as_ref(), &[upsert(6)]).await;
    let sup = item(6, Action::Suppress);
    let out = send(c.as_ref(), std::slice::from_ref(&sup)).await;
    let ticket = ticket_of(&out, 0, &sup);
    assert_eq!(fake.regulations()[0].regulation_type, "SUPPRESS_ONLY");
    assert_eq!(
        settle(c.as_ref(), &ticket).await,
        TicketStatus::Confirmed {
            record_id: Some(connectors::segment::SUPPRESSED.into())
        }
    );
    assert!(fake.profile(&sup.subject_id).unwrap().suppressed);
    // An unsubscribe is an identify whose categories say no.
    let unsub = item(7, Action::Unsubscribe);
    let out = send(c.as_ref(), std::slice::from_ref(&unsub)).await;
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Delivered { .. }));
    assert_eq!(
        fake.profile(&unsub.subject_id).unwrap().consent.unwrap()["Marketing"],
        false
    );
    // Consent back: the upsert lifts the suppression, then identifies.
    let mut again = upsert(6);
    again.delivery_id = "dlv_6_again".into();
    again.record_id = Some(connectors::segment::SUPPRESSED.into());
    let out = send(c.as_ref(), std::slice::from_ref(&again)).await;
    let ticket = ticket_of(&out, 0, &again);
    assert_eq!(fake.regulations()[1].regulation_type, "UNSUPPRESS");
    let status = settle(c.as_ref(), &ticket).await;
    assert!(
        matches!(status, TicketStatus::Confirmed { .. }),
        "{status:?}"
    );
    let profile = fake.profile(&sup.subject_id).unwrap();
    assert!(!profile.suppressed);
    assert_eq!(profile.identifies, 2);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_429_throttles_for_the_vendors_retry_after() {
    let fake = segment::start().await;
    let c = connector(&fake);
    fake.journal.force([Forced::reply(
        429,
        &[("retry-after", "7"), ("x-ratelimit-reset", "7")],
        r#"{"code":"rate_limit_exceeded","message":"Too many requests"}"#,
    )]);
    let out = send(c.as_ref(), &[upsert(1)]).await;
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Retry { .. }));
    assert!(
        matches!(out.signal, Some(DestinationSignal::Throttle { retry_after, .. }) if retry_after == Duration::from_secs(7))
    );
    // The Public API says how long in its body.
    fake.journal.force([Forced::reply(
        429,
        &[("content-type", "application/json")],
        r#"{"errors":[{"type":"RequestError","message":"Too many requests","data":{"remainingPoints":0,"msBeforeNext":57647,"consumedPoints":21}}]}"#,
    )]);
    let out = send(c.as_ref(), &[item(1, Action::Delete)]).await;
    assert!(
        matches!(out.signal, Some(DestinationSignal::Throttle { retry_after, .. }) if retry_after == Duration::from_millis(57647))
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_401_pauses_a_500_retries_a_400_is_permanent_with_the_message() {
    let fake = segment::start().await;
    let c = connector(&fake);
    fake.journal.force([
        Forced::reply(
            401,
            &[],
            r#"{"code":"unauthorized","message":"Invalid write key"}"#,
        ),
        Forced::reply(502, &[], "bad gateway"),
        Forced::reply(
            400,
            &[],
            r#"{"code":"invalid_request","message":"Invalid JSON"}"#,
        ),
    ]);
    let out = send(c.as_ref(), &[upsert(1)]).await;
    assert!(matches!(out.signal, Some(DestinationSignal::Pause { .. })));
    assert!(
        matches!(out.outcomes[0].1, ItemOutcome::Retry { .. }),
        "nothing lost"
    );
    let out = send(c.as_ref(), &[upsert(1)]).await;
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Retry { .. }));
    assert_eq!(out.signal, None);
    let out = send(c.as_ref(), &[upsert(1)]).await;
    match &out.outcomes[0].1 {
        ItemOutcome::Permanent { reason } => assert!(reason.contains("Invalid JSON"), "{reason}"),
        other => panic!("{other:?}"),
    }
    fake.journal.assert_no_violations();
}

#[test]
fn settings_are_refused_with_a_clear_message_and_no_secret() {
    for (bad, key) in [
        (json!({"base_url": "https://x"}), "write_key"),
        (
            json!({"write_key": "s3cr3t-key", "base_url": "not a url s3cr3t"}),
            "base_url",
        ),
        (
            json!({"write_key": "s3cr3t-key", "wrute_key": "s3cr3t"}),
            "wrute_key",
        ),
        (json!({"write_key": ""}), "write_key"),
        (
            json!({"write_key": "s3cr3t-key", "consent_categories": {"analytics": " "}}),
            "consent_categories",
        ),
    ] {
        let e = connectors::build("segment", &bad).unwrap_err().to_string();
        assert!(e.contains(key), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}

#[tokio::test]
async fn the_fake_refuses_and_records_a_request_that_does_not_validate() {
    let fake = segment::start().await;
    let client = reqwest::Client::new();
    let auth = connectors::tracking::basic_write_key(segment::WRITE_KEY);
    // A batch item without type; a track without event.
    let resp = client
        .post(format!("{}/v1/batch", fake.url))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(json!({"batch": [{"userId": "u1", "event": 1}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(!fake.journal.violations().is_empty());
    // A regulation type Segment does not have.
    let resp = client
        .post(format!("{}/regulations", fake.url))
        .bearer_auth(segment::PUBLIC_API_TOKEN)
        .header("content-type", "application/json")
        .body(
            json!({"regulationType": "SUPPRESS", "subjectType": "USER_ID", "subjectIds": ["u1"]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("regulationType")
    );
    assert!(
        fake.journal
            .violations()
            .iter()
            .any(|v| v.contains("regulationType"))
    );
}
