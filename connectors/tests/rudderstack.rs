//! The rudderstack connector against the RudderStack fake (data plane
//! checked against rudder-server's gateway OpenAPI; User Suppression API).

use std::collections::BTreeMap;
use std::time::Duration;

use connectors::http::OpenGate;
use connectors::{
    Action, BatchResult, Connector, DestinationSignal, Http, Item, ItemOutcome, Ticket,
    TicketStatus,
};
use serde_json::json;
use vendor_fakes::Forced;
use vendor_fakes::rudderstack::{self, Fake};

fn connector(fake: &Fake) -> Box<dyn Connector> {
    connectors::build(
        "rudderstack",
        &json!({"write_key": rudderstack::WRITE_KEY, "base_url": fake.url,
                "api_token": rudderstack::API_TOKEN, "regulation_url": fake.url,
                "consent_ids": {"analytics": "C0002", "marketing_email": "C0004"},
                "delete_destination_ids": ["2FIKkByqJTXbS7ATMA4Cnm2Rn8o"]}),
    )
    .unwrap()
}

fn item(n: usize, action: Action) -> Item {
    let mut consent = BTreeMap::new();
    consent.insert("analytics".to_string(), true);
    consent.insert("marketing_email".to_string(), n.is_multiple_of(2));
    let mut identity = serde_json::Map::new();
    identity.insert("email".into(), json!(format!("u{n}@example.com")));
    Item {
        subject_id: format!("0190c0de-0000-7000-8000-{n:012}"),
        delivery_id: format!("dlv_{n}_{}", action.kind().as_str()),
        action,
        identity,
        record_id: None,
        consent,
    }
}

fn upsert(n: usize) -> Item {
    let fields = json!({"email": format!("u{n}@example.com"), "firstName": "Ada"});
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

fn tickets(out: &BatchResult, items: &[Item]) -> Vec<Ticket> {
    out.outcomes
        .iter()
        .map(|(i, o)| match o {
            ItemOutcome::Accepted { ticket, .. } => Ticket {
                ticket: ticket.clone(),
                item: items[*i].clone(),
            },
            other => panic!("not accepted: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn upserts_one_identify_with_rfc3339_timestamp_and_consent_ids() {
    let fake = rudderstack::start().await;
    let c = connector(&fake);
    let it = upsert(1);
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
    assert_eq!(out.status, Some(200));
    let profile = fake.profile(&it.subject_id).unwrap();
    assert_eq!(profile.traits["firstName"], "Ada");
    let consent = profile.consent.unwrap();
    assert_eq!(consent["allowedConsentIds"], json!(["C0002"]));
    assert_eq!(consent["deniedConsentIds"], json!(["C0004"]));
    assert_eq!(consent["provider"], "custom");
    let ts = profile.timestamp.unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(&ts).is_ok(), "{ts}");
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn upserts_a_full_batch_in_one_call() {
    let fake = rudderstack::start().await;
    let c = connector(&fake);
    let policy = c.batch_policy();
    let items: Vec<Item> = (0..policy.max_items).map(upsert).collect();
    let bytes: usize = items.iter().map(|i| c.item_bytes(i)).sum();
    assert!(bytes <= policy.max_bytes.unwrap());
    let out = send(c.as_ref(), &items).await;
    assert_eq!(fake.journal.requests_to("/v1/batch").len(), 1);
    assert!(
        out.outcomes
            .iter()
            .all(|(_, o)| matches!(o, ItemOutcome::Delivered { .. }))
    );
    assert_eq!(fake.profiles().len(), policy.max_items);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn an_event_over_32_kb_fails_alone() {
    let fake = rudderstack::start().await;
    let c = connector(&fake);
    let mut big = upsert(1);
    if let Action::Upsert(fields) = &mut big.action {
        fields.insert("bio".into(), json!("x".repeat(33 * 1024)));
    }
    let out = send(c.as_ref(), &[upsert(0), big, upsert(2)]).await;
    let failed: Vec<_> = out
        .outcomes
        .iter()
        .filter(|(_, o)| matches!(o, ItemOutcome::Permanent { .. }))
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(failed, vec![1]);
    assert_eq!(fake.profiles().len(), 2);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn delete_files_suppress_with_delete_and_is_confirmed_once_listed() {
    let fake = rudderstack::start().await;
    fake.set_listing_delay(1);
    fake.add_unrelated_regulations(120);
    fake.set_page_size(50);
    let c = connector(&fake);
    send(c.as_ref(), &[upsert(3), upsert(4)]).await;
    let dels = vec![item(3, Action::Delete), item(4, Action::Delete)];
    let out = send(c.as_ref(), &dels).await;
    let ts = tickets(&out, &dels);
    assert_ne!(
        ts[0].ticket, ts[1].ticket,
        "one regulation per user, matched by userId"
    );
    let body = fake.journal.requests_to("/v2/regulations")[0].json();
    assert_eq!(body["regulationType"], "suppress_with_delete");
    assert_eq!(
        body["destinationIds"],
        json!(["2FIKkByqJTXbS7ATMA4Cnm2Rn8o"])
    );
    assert_eq!(body["users"][0]["email"], "u3@example.com");
    // Not listed yet: pending.
    let first = check(c.as_ref(), &ts).await;
    assert!(
        first
            .iter()
            .all(|(_, s)| matches!(s, TicketStatus::Pending { .. })),
        "{first:?}"
    );
    // Listed (on the third page): confirmed.
    let second = check(c.as_ref(), &ts).await;
    assert!(
        second
            .iter()
            .all(|(_, s)| *s == TicketStatus::Confirmed { record_id: None }),
        "{second:?}"
    );
    assert!(fake.profile(&dels[0].subject_id).unwrap().deleted);
    // Canceled in the dashboard: failed.
    fake.cancel(&ts[0].ticket);
    let third = check(c.as_ref(), &ts).await;
    assert!(matches!(third[0].1, TicketStatus::Failed { .. }));
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn withdrawal_suppresses_and_the_next_upsert_cancels_the_suppression() {
    let fake = rudderstack::start().await;
    let c = connector(&fake);
    send(c.as_ref(), &[upsert(5)]).await;
    let sup = vec![item(5, Action::Suppress)];
    let out = send(c.as_ref(), &sup).await;
    let ts = tickets(&out, &sup);
    let body = fake.journal.requests_to("/v2/regulations")[0].json();
    assert_eq!(body["regulationType"], "suppress");
    assert!(body.get("destinationIds").is_none());
    let status = check(c.as_ref(), &ts).await;
    let record = format!("suppressed:{}", ts[0].ticket);
    assert_eq!(
        status[0].1,
        TicketStatus::Confirmed {
            record_id: Some(record.clone())
        }
    );
    assert!(fake.profile(&sup[0].subject_id).unwrap().suppressed);
    // Unsubscribe: an identify whose consent denies the purpose.
    let out = send(c.as_ref(), &[item(7, Action::Unsubscribe)]).await;
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Delivered { .. }));
    let consent = fake
        .profile(&item(7, Action::Unsubscribe).subject_id)
        .unwrap()
        .consent
        .unwrap();
    assert_eq!(consent["deniedConsentIds"], json!(["C0004"]));
    // Consent back: the suppression is canceled, then the identify lands.
    let mut again = upsert(5);
    again.delivery_id = "dlv_5_again".into();
    again.record_id = Some(record);
    let out = send(c.as_ref(), &[again]).await;
    assert!(
        matches!(out.outcomes[0].1, ItemOutcome::Delivered { .. }),
        "{out:?}"
    );
    assert!(fake.regulations()[0].canceled);
    let profile = fake.profile(&sup[0].subject_id).unwrap();
    assert!(!profile.suppressed);
    assert_eq!(profile.identifies, 2);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_429_throttles_a_401_pauses_a_5xx_retries_a_400_is_permanent() {
    let fake = rudderstack::start().await;
    let c = connector(&fake);
    fake.journal.force([
        Forced::reply(
            429,
            &[
                ("retry-after", "4"),
                ("content-type", "text/plain; charset=utf-8"),
            ],
            "Max Requests Limit reached",
        ),
        Forced::reply(
            401,
            &[("content-type", "text/plain; charset=utf-8")],
            "Invalid Write Key",
        ),
        Forced::reply(503, &[], "upstream unavailable"),
        Forced::reply(
            400,
            &[("content-type", "text/plain; charset=utf-8")],
            "Event is not a valid rudder event",
        ),
        Forced::reply(
            404,
            &[("content-type", "text/plain; charset=utf-8")],
            "Source is disabled",
        ),
    ]);
    let out = send(c.as_ref(), &[upsert(1)]).await;
    assert!(
        matches!(out.signal, Some(DestinationSignal::Throttle { retry_after, .. }) if retry_after == Duration::from_secs(4))
    );
    let out = send(c.as_ref(), &[upsert(1)]).await;
    assert!(matches!(out.signal, Some(DestinationSignal::Pause { .. })));
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Retry { .. }));
    let out = send(c.as_ref(), &[upsert(1)]).await;
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Retry { .. }) && out.signal.is_none());
    let out = send(c.as_ref(), &[upsert(1)]).await;
    match &out.outcomes[0].1 {
        ItemOutcome::Permanent { reason } => {
            assert!(reason.contains("not a valid rudder event"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let out = send(c.as_ref(), &[upsert(1)]).await;
    assert!(
        matches!(out.signal, Some(DestinationSignal::Pause { .. })),
        "a disabled source pauses"
    );
    fake.journal.assert_no_violations();
}

#[test]
fn settings_are_refused_with_a_clear_message_and_no_secret() {
    for (bad, key) in [
        (json!({"write_key": "s3cr3t"}), "base_url"),
        (
            json!({"write_key": "s3cr3t", "base_url": "ftp://s3cr3t"}),
            "base_url",
        ),
        (
            json!({"write_key": "s3cr3t", "base_url": "https://dp.example", "api_token": ""}),
            "api_token",
        ),
        (
            json!({"write_key": "s3cr3t", "base_url": "https://dp.example", "consent_ids": "s3cr3t"}),
            "consent_ids",
        ),
    ] {
        let e = connectors::build("rudderstack", &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}

#[tokio::test]
async fn the_fake_refuses_and_records_requests_rudderstack_would_refuse() {
    let fake = rudderstack::start().await;
    let client = reqwest::Client::new();
    let auth = connectors::tracking::basic_write_key(rudderstack::WRITE_KEY);
    let resp = client
        .post(format!("{}/v1/batch", fake.url))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(json!({"batch": [{"type": "identify", "traits": {}}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.text().await.unwrap(),
        "Request neither has anonymousId nor userId"
    );
    let resp = client
        .post(format!("{}/v2/regulations", fake.url))
        .bearer_auth(rudderstack::API_TOKEN)
        .header("content-type", "application/json")
        .body(json!({"regulationType": "suppress", "destinationIds": ["d"], "users": [{"userId": "u"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v = fake.journal.violations();
    assert!(
        v.iter().any(|v| v.contains("userId")) && v.iter().any(|v| v.contains("destinationIds")),
        "{v:?}"
    );
}
