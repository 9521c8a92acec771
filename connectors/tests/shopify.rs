//! The shopify connector against the Shopify fake, which validates every
//! query and its variables against the Admin API 2025-01 schema.

use std::collections::BTreeMap;
use std::time::Duration;

use connectors::http::OpenGate;
use connectors::{
    Action, BatchResult, Connector, DestinationSignal, Http, Item, ItemOutcome, Ticket,
    TicketStatus,
};
use serde_json::json;
use vendor_fakes::Forced;
use vendor_fakes::shopify::{self, Fake};

fn connector_with(fake: &Fake, extra: serde_json::Value) -> Box<dyn Connector> {
    let mut settings = json!({"shop": "acme.myshopify.com", "access_token": shopify::ACCESS_TOKEN,
                              "base_url": fake.url});
    for (k, v) in extra.as_object().unwrap() {
        settings[k] = v.clone();
    }
    connectors::build("shopify", &settings).unwrap()
}

fn connector(fake: &Fake) -> Box<dyn Connector> {
    connector_with(fake, json!({}))
}

fn item(n: usize, action: Action, email_consent: bool) -> Item {
    let mut consent = BTreeMap::new();
    consent.insert("marketing_email".to_string(), email_consent);
    let mut identity = serde_json::Map::new();
    identity.insert("email".into(), json!(format!("u{n}@example.com")));
    Item {
        subject_id: format!("0190c0de-0000-7000-8000-{n:012}"),
        delivery_id: format!("dlv_{n}"),
        action,
        identity,
        record_id: None,
        consent,
    }
}

fn upsert(n: usize, email: &str) -> Item {
    let fields = json!({"email": email, "firstName": "Ada", "lastName": format!("L{n}"),
                        "tags": ["hub"], "tier": "gold"});
    item(
        n,
        Action::Upsert(fields.as_object().cloned().unwrap()),
        true,
    )
}

async fn send(c: &dyn Connector, items: &[Item]) -> BatchResult {
    connectors::install_crypto_provider();
    let client = reqwest::Client::new();
    c.send(
        &Http::new(&client, &OpenGate, Duration::from_secs(10)),
        items,
    )
    .await
}

async fn check(c: &dyn Connector, tickets: &[Ticket]) -> Vec<(usize, TicketStatus)> {
    let client = reqwest::Client::new();
    c.check(
        &Http::new(&client, &OpenGate, Duration::from_secs(10)),
        tickets,
    )
    .await
    .statuses
}

fn record_id(out: &BatchResult, index: usize) -> String {
    match &out.outcomes.iter().find(|(i, _)| *i == index).unwrap().1 {
        ItemOutcome::Delivered {
            record_id: Some(id),
        } => id.clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn creates_one_customer_with_metafields_and_consent_then_updates_it_by_record_id() {
    let fake = shopify::start().await;
    let c = connector(&fake);
    let it = upsert(1, "ada@example.com");
    let out = send(c.as_ref(), std::slice::from_ref(&it)).await;
    let id = record_id(&out, 0);
    let customer = fake.customer(&id).unwrap();
    assert_eq!(customer.email.as_deref(), Some("ada@example.com"));
    assert_eq!(customer.tags, vec!["hub"]);
    assert_eq!(
        customer.metafields[&("hub".to_string(), "tier".to_string())],
        ("single_line_text_field".to_string(), "gold".to_string())
    );
    assert_eq!(customer.email_marketing.as_deref(), Some("SUBSCRIBED"));
    // The update goes by the recorded id and sets consent with its own mutation.
    let mut again = item(
        1,
        Action::Upsert(
            json!({"email": "ada@example.com", "firstName": "Augusta"})
                .as_object()
                .cloned()
                .unwrap(),
        ),
        false,
    );
    again.record_id = Some(id.clone());
    let out = send(c.as_ref(), &[again]).await;
    assert_eq!(record_id(&out, 0), id);
    let customer = fake.customer(&id).unwrap();
    assert_eq!(customer.first_name.as_deref(), Some("Augusta"));
    assert_eq!(customer.email_marketing.as_deref(), Some("UNSUBSCRIBED"));
    assert_eq!(fake.customers().len(), 1);
    let query = fake.journal.requests().last().unwrap().json()["query"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        query.contains("customerUpdate") && query.contains("customerEmailMarketingConsentUpdate"),
        "{query}"
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_retried_create_finds_the_customer_by_email_instead_of_duplicating() {
    let fake = shopify::start().await;
    let c = connector(&fake);
    let existing = fake.insert_customer("grace@example.com");
    let out = send(c.as_ref(), &[upsert(2, "grace@example.com")]).await;
    assert_eq!(record_id(&out, 0), existing);
    assert_eq!(fake.customers().len(), 1);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_full_batch_is_one_lookup_and_one_aliased_mutation_document() {
    let fake = shopify::start().await;
    let c = connector(&fake);
    let max = c.batch_policy().max_items;
    let items: Vec<Item> = (0..max)
        .map(|n| upsert(n, &format!("u{n}@example.com")))
        .collect();
    let out = send(c.as_ref(), &items).await;
    assert_eq!(fake.journal.requests().len(), 2, "lookup + mutations");
    assert_eq!(out.outcomes.len(), max);
    for (i, _) in items.iter().enumerate() {
        let id = record_id(&out, i);
        assert_eq!(
            fake.customer(&id).unwrap().email,
            Some(format!("u{i}@example.com")),
            "matched by alias, not position"
        );
    }
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn one_bad_item_fails_alone_with_shopifys_user_error() {
    let fake = shopify::start().await;
    let c = connector(&fake);
    let items = vec![
        upsert(0, "a@example.com"),
        upsert(1, "not-an-email"),
        upsert(2, "c@example.com"),
    ];
    let out = send(c.as_ref(), &items).await;
    let failed: Vec<_> = out
        .outcomes
        .iter()
        .filter_map(|(i, o)| match o {
            ItemOutcome::Permanent { reason } => Some((*i, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![(1, "Shopify: email: Email is invalid".to_string())]
    );
    assert_eq!(fake.customers().len(), 2);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn erasure_is_requested_then_confirmed_when_the_customer_is_gone() {
    let fake = shopify::start().await;
    fake.set_erasure_polls(2);
    let c = connector(&fake);
    let id = record_id(
        &send(c.as_ref(), &[upsert(3, "erase@example.com")]).await,
        0,
    );
    let mut del = item(3, Action::Delete, false);
    del.record_id = Some(id.clone());
    let out = send(c.as_ref(), std::slice::from_ref(&del)).await;
    let ticket = match &out.outcomes[0].1 {
        ItemOutcome::Accepted { ticket, .. } => Ticket {
            ticket: ticket.clone(),
            item: del.clone(),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(ticket.ticket, id);
    let t = std::slice::from_ref(&ticket);
    assert!(matches!(
        check(c.as_ref(), t).await[0].1,
        TicketStatus::Pending { .. }
    ));
    assert!(matches!(
        check(c.as_ref(), t).await[0].1,
        TicketStatus::Pending { .. }
    ));
    assert_eq!(
        check(c.as_ref(), t).await[0].1,
        TicketStatus::Confirmed { record_id: None }
    );
    assert_eq!(fake.erased(), vec![id]);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn customer_delete_when_configured_and_its_refusal_for_customers_with_orders() {
    let fake = shopify::start().await;
    let c = connector_with(&fake, json!({"delete_with": "customer_delete"}));
    let a = record_id(&send(c.as_ref(), &[upsert(4, "a4@example.com")]).await, 0);
    let b = record_id(&send(c.as_ref(), &[upsert(5, "u5@example.com")]).await, 0);
    fake.add_orders(&b, 1);
    let mut da = item(4, Action::Delete, false);
    da.record_id = Some(a.clone());
    // No record id: found by the last delivered email.
    let db = item(5, Action::Delete, false);
    let out = send(c.as_ref(), &[da, db]).await;
    assert_eq!(
        out.outcomes[0],
        (0, ItemOutcome::Delivered { record_id: None })
    );
    match &out.outcomes[1].1 {
        ItemOutcome::Permanent { reason } => {
            assert!(reason.contains("associated orders"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.customer(&a).is_none() && fake.customer(&b).is_some());
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn withdrawal_unsubscribes_email_marketing() {
    let fake = shopify::start().await;
    let c = connector(&fake);
    let id = record_id(&send(c.as_ref(), &[upsert(6, "w6@example.com")]).await, 0);
    assert_eq!(
        fake.customer(&id).unwrap().email_marketing.as_deref(),
        Some("SUBSCRIBED")
    );
    let mut w = item(6, Action::Unsubscribe, false);
    w.record_id = Some(id.clone());
    let out = send(c.as_ref(), &[w]).await;
    assert!(
        matches!(out.outcomes[0].1, ItemOutcome::Delivered { .. }),
        "{out:?}"
    );
    assert_eq!(
        fake.customer(&id).unwrap().email_marketing.as_deref(),
        Some("UNSUBSCRIBED")
    );
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_call_that_empties_the_bucket_makes_the_next_call_wait_for_the_restore_rate() {
    let fake = shopify::start().await;
    let c = connector(&fake);
    // 35 points, restoring 10 a second: the 3 lookups (3) and 3 creates
    // (30) leave 2, so the next call of the same cost waits (30 - 2) / 10.
    fake.set_bucket(100.0, 35.0, 10.0);
    let items: Vec<Item> = (0..3)
        .map(|n| upsert(n, &format!("b{n}@example.com")))
        .collect();
    let out = send(c.as_ref(), &items).await;
    assert!(
        out.outcomes
            .iter()
            .all(|(_, o)| matches!(o, ItemOutcome::Delivered { .. }))
    );
    match out.signal {
        Some(DestinationSignal::Throttle { retry_after, .. }) => {
            assert!(
                retry_after >= Duration::from_millis(2500) && retry_after <= Duration::from_secs(3),
                "{retry_after:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Sent anyway: Shopify answers THROTTLED with its cost, and nothing is lost.
    let more: Vec<Item> = (3..6)
        .map(|n| upsert(n, &format!("b{n}@example.com")))
        .collect();
    fake.set_bucket(100.0, 2.0, 10.0);
    let out = send(c.as_ref(), &more).await;
    assert!(
        out.outcomes
            .iter()
            .all(|(_, o)| matches!(o, ItemOutcome::Retry { .. }))
    );
    assert!(matches!(
        out.signal,
        Some(DestinationSignal::Throttle { .. })
    ));
    assert_eq!(fake.customers().len(), 3);
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn throttled_as_http_429_also_throttles() {
    let fake = shopify::start().await;
    fake.set_throttle_status(429);
    // Slow to refill (2 s for the lookup's 10 points), so that a busy
    // machine's delay before the request cannot refill it (at 50 a second
    // a 200 ms stall did, and the fake answered 200).
    fake.set_bucket(1000.0, 0.0, 5.0);
    let c = connector(&fake);
    let out = send(c.as_ref(), &[upsert(1, "t@example.com")]).await;
    match out.signal {
        // The lookup's cost (at most 10 points) restored at 5 a second,
        // less what the bucket regained before the fake answered.
        Some(DestinationSignal::Throttle { retry_after, .. }) => {
            assert!(
                retry_after > Duration::ZERO && retry_after <= Duration::from_secs(2),
                "{retry_after:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(out.status, Some(429));
    fake.journal.assert_no_violations();
}

#[tokio::test]
async fn a_401_pauses_a_5xx_retries_a_400_is_permanent_with_the_message() {
    let fake = shopify::start().await;
    let c = connector(&fake);
    fake.journal.force([
        Forced::reply(401, &[("content-type", "application/json")], r#"{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}"#),
        Forced::reply(503, &[], "Service Unavailable"),
        Forced::reply(400, &[("content-type", "application/json")], r#"{"errors":{"query":"Required parameter missing or invalid"}}"#),
    ]);
    let it = upsert(1, "p@example.com");
    let out = send(c.as_ref(), std::slice::from_ref(&it)).await;
    assert!(matches!(out.signal, Some(DestinationSignal::Pause { .. })));
    assert!(
        matches!(out.outcomes[0].1, ItemOutcome::Retry { .. }),
        "nothing lost"
    );
    let out = send(c.as_ref(), std::slice::from_ref(&it)).await;
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Retry { .. }) && out.signal.is_none());
    let out = send(c.as_ref(), std::slice::from_ref(&it)).await;
    match &out.outcomes[0].1 {
        ItemOutcome::Permanent { reason } => {
            assert!(reason.contains("Required parameter missing"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    fake.journal.assert_no_violations();
}

#[test]
fn settings_are_refused_with_a_clear_message_and_no_secret() {
    for (bad, key) in [
        (
            json!({"shop": "acme.example.com", "access_token": "shpat_s3cr3t"}),
            "shop",
        ),
        (json!({"shop": "acme.myshopify.com"}), "access_token"),
        (
            json!({"shop": "acme.myshopify.com", "access_token": "shpat_s3cr3t", "api_version": "latest"}),
            "api_version",
        ),
        (
            json!({"shop": "acme.myshopify.com", "access_token": "shpat_s3cr3t", "delete_with": "s3cr3t"}),
            "delete_with",
        ),
        (
            json!({"shop": "acme.myshopify.com", "access_token": "shpat_s3cr3t", "base_url": "s3cr3t"}),
            "base_url",
        ),
    ] {
        let e = connectors::build("shopify", &bad).unwrap_err().to_string();
        assert!(e.contains(key), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}

#[tokio::test]
async fn the_fake_refuses_and_records_a_query_that_does_not_validate() {
    let fake = shopify::start().await;
    let client = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        client
            .post(format!("{}/admin/api/2025-01/graphql.json", fake.url))
            .header("x-shopify-access-token", shopify::ACCESS_TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    // customerSet's upsert is not in 2025-01.
    let resp = post(json!({"query": "mutation { customerSet(identifier: {email: \"a@b.c\"}, input: {email: \"a@b.c\"}) { customer { id } } }"})).await.unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().is_some());
    assert!(body.get("data").is_none());
    // A variable of the wrong shape.
    let resp = post(json!({"query": "mutation($i: CustomerInput!) { customerCreate(input: $i) { customer { id } } }",
                           "variables": {"i": {"email": "a@b.c", "tags": [1, {"x": 2}]}}})).await.unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["errors"].is_array());
    assert_eq!(
        fake.journal.violations().len(),
        2,
        "{:?}",
        fake.journal.violations()
    );
    assert!(fake.customers().is_empty());
}
