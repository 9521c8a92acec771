//! The delivery engine end to end: retries with growing backoff, Retry-After,
//! dead letters and replay, coalescing while a destination is down, consent
//! suppression, and crash recovery after SIGKILL.

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use common::*;
use serde_json::Value;

backend_tests!(
    retries_back_off_until_delivered,
    retry_after_is_honoured,
    permanent_failure_dead_letters_then_replays,
    updates_coalesce_while_destination_is_down,
    missing_consent_is_suppressed,
    job_survives_sigkill,
    slow_destination_is_cut_off_at_http_timeout,
    rate_limit_spaces_deliveries_without_spending_attempts,
);

fn outcomes(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|a| a["outcome"].as_str().unwrap_or("?").to_string())
        .collect()
}

async fn retries_back_off_until_delivered(backend: Backend) {
    let sink = Sink::start().await;
    sink.script([Reply::Status(503), Reply::Status(503), Reply::Status(200)]);
    let base = Duration::from_millis(400);
    let hub = TestHub::builder(backend)
        .delivery("retry_base", "\"400ms\"")
        .delivery("retry_cap", "\"10s\"")
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let reply = hub.send_ok(&profile_event("cust-retry", now_utc())).await;
    let subject = reply["subject"].as_str().unwrap().to_string();

    let got = sink.wait_for(3, PATIENCE).await;
    let list = hub
        .wait_deliveries(&subject, "three attempts", |l| l.len() >= 3)
        .await;
    assert_eq!(
        outcomes(&list),
        ["retry", "retry", "delivered"],
        "{list:#?}"
    );
    assert_eq!(list[0]["status_code"], 503);
    assert_eq!(list[2]["status_code"], 200);
    let attempts: Vec<i64> = list
        .iter()
        .map(|a| a["attempt"].as_i64().unwrap())
        .collect();
    assert!(
        attempts.windows(2).all(|w| w[1] > w[0]),
        "attempt numbers grow: {attempts:?}"
    );

    // The same content each time; the sink verifies every one.
    for r in &got {
        r.verify(&destination_secret()).unwrap();
        assert_eq!(r.json()["data"]["email"], "ada@example.com");
    }
    // Gap n lies in [w/2, w] (+ polling slack) with w = base * 2^(n-1).
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    eprintln!("retry gaps: {gap1:?}, {gap2:?}");
    let slack = Duration::from_millis(700);
    assert!(gap1 >= base / 2, "first gap {gap1:?} below {:?}", base / 2);
    assert!(gap1 <= base + slack, "first gap {gap1:?} too long");
    assert!(
        gap2 >= base,
        "second gap {gap2:?} below {base:?}: backoff did not grow"
    );
    assert!(gap2 <= base * 2 + slack, "second gap {gap2:?} too long");
    // Windows [200,400] and [400,800] ms touch only at 400: allow for
    // polling noise at that edge without letting a flat backoff pass.
    assert!(
        gap2 + Duration::from_millis(50) > gap1,
        "gaps must grow: {gap1:?} then {gap2:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 3, "nothing after the success");
}

async fn retry_after_is_honoured(backend: Backend) {
    let sink = Sink::start().await;
    sink.script([Reply::RetryAfter(429, 2)]);
    let hub = TestHub::builder(backend)
        .delivery("retry_base", "\"100ms\"")
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let reply = hub.send_ok(&profile_event("cust-429", now_utc())).await;
    let subject = reply["subject"].as_str().unwrap().to_string();
    let got = sink.wait_for(2, PATIENCE).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_secs(2),
        "Retry-After: 2 not honoured: {gap:?}"
    );
    assert!(
        gap < Duration::from_secs(6),
        "second try far too late: {gap:?}"
    );
    let list = hub
        .wait_deliveries(&subject, "delivery", |l| {
            l.iter().any(|a| a["outcome"] == "delivered")
        })
        .await;
    // A 429 throttles the destination; the item did not fail, so it is
    // recorded as throttled and its attempt is not counted.
    assert_eq!(outcomes(&list), ["throttled", "delivered"], "{list:#?}");
    assert_eq!(list[0]["status_code"], 429);
    assert_eq!(list[1]["attempt"], 1, "{list:#?}");
}

async fn permanent_failure_dead_letters_then_replays(backend: Backend) {
    let sink = Sink::start().await;
    sink.set_default(Reply::Status(400));
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let reply = hub.send_ok(&profile_event("cust-400", now_utc())).await;
    let subject = reply["subject"].as_str().unwrap().to_string();

    sink.wait_for(1, PATIENCE).await;
    let list = hub
        .wait_deliveries(&subject, "a dead attempt", |l| !l.is_empty())
        .await;
    assert_eq!(
        outcomes(&list),
        ["dead"],
        "dead at once, no retry: {list:#?}"
    );
    assert_eq!(list[0]["status_code"], 400);

    let out = hub.cli(&["dlq", "list", "--destination", "crm"]).await;
    assert!(out.status.success(), "{out:?}");
    let dead: Vec<Value> = serde_json::from_str(&out.stdout).expect("dlq list prints JSON");
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert_eq!(dead[0]["destination"], "crm");
    assert_eq!(dead[0]["subject_id"], subject.as_str());
    assert_eq!(dead[0]["attempts"], 1);
    assert_eq!(dead[0]["status_code"], 400);
    assert!(dead[0]["replayed_at"].is_null());
    // Another destination's list is empty.
    let out = hub.cli(&["dlq", "list", "--destination", "other"]).await;
    assert_eq!(
        serde_json::from_str::<Vec<Value>>(&out.stdout)
            .unwrap()
            .len(),
        0
    );
    assert_eq!(sink.received().len(), 1, "a 400 is not retried");

    // The receiver is fixed; replay from the CLI while the hub runs.
    sink.set_default(Reply::Status(200));
    let out = hub.cli(&["dlq", "replay", "--destination", "crm"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.contains("replayed 1"), "{out:?}");
    let got = sink.wait_for(2, PATIENCE).await;
    got[1].verify(&destination_secret()).unwrap();
    assert_eq!(got[1].json()["subject"], subject.as_str());
    let list = hub
        .wait_deliveries(&subject, "delivered after replay", |l| {
            l.iter().any(|a| a["outcome"] == "delivered")
        })
        .await;
    assert_eq!(outcomes(&list), ["dead", "delivered"], "{list:#?}");
    let out = hub.cli(&["dlq", "list", "--destination", "crm"]).await;
    let dead: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        dead.iter().all(|d| !d["replayed_at"].is_null()),
        "replayed letters are marked: {dead:#?}"
    );
}

async fn updates_coalesce_while_destination_is_down(backend: Backend) {
    let addr = unused_addr();
    let hub = TestHub::builder(backend)
        .delivery("retry_base", "\"200ms\"")
        .delivery("retry_cap", "\"1s\"")
        .delivery("max_attempts", "50")
        .mapping("crm.yaml", crm_mapping("crm", &url_for(addr)))
        .start()
        .await;
    let t0 = now_utc();
    let mut subject = String::new();
    for i in 0..10 {
        let mut e = profile_event("cust-burst", t0 + TimeDelta::seconds(i));
        e["subject"]["name"]["givenName"] = format!("Ada{i}").into();
        let reply = hub.send_ok(&e).await;
        subject = reply["subject"].as_str().unwrap().to_string();
    }
    // Nothing listens: the attempts fail while the updates pile up.
    hub.wait_deliveries(&subject, "a failed attempt", |l| {
        l.iter().any(|a| a["outcome"] == "retry")
    })
    .await;

    let sink = Sink::start_at(addr).await;
    let latest = sink
        .wait_until(PATIENCE, |r| r.json()["data"]["first_name"] == "Ada9")
        .await;
    latest.verify(&destination_secret()).unwrap();
    // Let any straggler arrive, then count.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = sink.received();
    assert!(
        got.len() <= 3,
        "{} calls for one subject; expected coalescing",
        got.len()
    );
    let last = got.last().unwrap().json();
    assert_eq!(
        last["data"]["first_name"], "Ada9",
        "the last call carries the latest state"
    );
    let counts = hub.db.counts(&["changes"]).await;
    assert_eq!(counts[0].1, 10, "every update is recorded as a change");
}

async fn missing_consent_is_suppressed(backend: Backend) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let mut denied = profile_event("cust-denied", now_utc());
    denied["consent"] = serde_json::json!({ "marketing_email": "denied" });
    let mut missing = profile_event("cust-missing", now_utc());
    missing.as_object_mut().unwrap().remove("consent");
    let mut other = profile_event("cust-other", now_utc());
    other["consent"] = serde_json::json!({ "analytics": "granted" });

    for event in [&denied, &missing, &other] {
        let reply = hub.send_ok(event).await;
        let subject = reply["subject"].as_str().unwrap().to_string();
        let list = hub
            .wait_deliveries(&subject, "a suppressed attempt", |l| !l.is_empty())
            .await;
        assert_eq!(outcomes(&list), ["suppressed"], "{list:#?}");
        assert_eq!(list[0]["destination"], "crm");
        assert!(list[0]["status_code"].is_null());
    }
    // Sanity: a granted subject does go out, so the sink is reachable.
    hub.send_ok(&profile_event("cust-granted", now_utc())).await;
    sink.wait_for(1, PATIENCE).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = sink.received();
    assert_eq!(got.len(), 1, "only the consenting subject is sent");
    let by_ext = hub
        .cli(&["deliveries", "--subject", "ciam:cust-granted"])
        .await;
    assert!(by_ext.stdout.contains("delivered"), "{by_ext:?}");
}

async fn job_survives_sigkill(backend: Backend) {
    let sink = Sink::start().await;
    // The first call hangs: the job is claimed and in flight when we kill.
    sink.script([Reply::Hang(Duration::from_secs(60))]);
    let mut hub = TestHub::builder(backend)
        .delivery("lease", "\"4s\"")
        .delivery("http_timeout", "\"1s\"")
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let reply = hub.send_ok(&profile_event("cust-crash", now_utc())).await;
    let subject = reply["subject"].as_str().unwrap().to_string();
    sink.wait_for(1, PATIENCE).await;
    hub.kill_9();
    hub.restart().await;
    let got = sink.wait_for(2, PATIENCE).await;
    eprintln!(
        "redelivery {:?} after the first call",
        got[1].at - got[0].at
    );
    assert_eq!(got[1].json()["subject"], subject.as_str());
    got[1].verify(&destination_secret()).unwrap();
    let list = hub
        .wait_deliveries(&subject, "delivered after restart", |l| {
            l.iter().any(|a| a["outcome"] == "delivered")
        })
        .await;
    assert_eq!(outcomes(&list).last().unwrap(), "delivered", "{list:#?}");
}

/// `delivery.http_timeout` bounds every call, whatever a mapping's own
/// `timeout` says; otherwise a call outlives its lease and a second worker
/// sends the same job concurrently.
async fn slow_destination_is_cut_off_at_http_timeout(backend: Backend) {
    let sink = Sink::start().await;
    sink.script([Reply::Hang(Duration::from_secs(5))]);
    let hub = TestHub::builder(backend)
        .delivery("lease", "\"4s\"")
        .delivery("http_timeout", "\"1s\"")
        .delivery("retry_base", "\"200ms\"")
        // The mapping allows 5s per call: more than the lease.
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let reply = hub.send_ok(&profile_event("cust-slow", now_utc())).await;
    let subject = reply["subject"].as_str().unwrap().to_string();
    let got = sink.wait_for(2, PATIENCE).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap < Duration::from_millis(2500),
        "the hung call should be abandoned after http_timeout (1s); retried after {gap:?}"
    );
    let list = hub
        .wait_deliveries(&subject, "delivery", |l| {
            l.iter().any(|a| a["outcome"] == "delivered")
        })
        .await;
    // Let the hung request's 5 s run out: it must not count as a delivery.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let list2 = hub.deliveries(Some(&subject)).await;
    assert_eq!(
        outcomes(&list2),
        ["retry", "delivered"],
        "{list:#?} then {list2:#?}"
    );
    assert_eq!(sink.received().len(), 2);
}

/// Several hubs on one PostgreSQL share the queue: every job goes out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hub_pg),
    ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant"
)]
async fn two_hubs_share_one_postgres_queue() {
    let sink = Sink::start().await;
    let a = TestHub::builder(Backend::Postgres)
        .delivery("batch", "4")
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let b = TestHub::builder(Backend::Postgres)
        .delivery("batch", "4")
        .share_database(&a)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let n = 30;
    let t0 = now_utc();
    for i in 0..n {
        let hub = if i % 2 == 0 { &a } else { &b };
        hub.send_ok(&profile_event(&format!("cust-{i}"), t0)).await;
    }
    sink.wait_for(n, PATIENCE).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = sink.received();
    assert_eq!(sink.subjects().len(), n, "every subject delivered");
    assert_eq!(got.len(), n, "no subject delivered twice");
}

async fn rate_limit_spaces_deliveries_without_spending_attempts(backend: Backend) {
    let sink = Sink::start().await;
    let mapping = crm_mapping("crm", &sink.url())
        .replace("  timeout: 5s\n", "  timeout: 5s\n  rate_limit: 4\n");
    assert!(mapping.contains("rate_limit: 4"));
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", mapping)
        .start()
        .await;
    for i in 0..10 {
        hub.send_ok(&profile_event(&format!("cust-rate-{i}"), now_utc()))
            .await;
    }
    let got = sink.wait_for(10, PATIENCE).await;
    // A burst of 4, then 4 per second: the last of 10 is >= 1.5 s after the first.
    let spread = got[9].at.duration_since(got[0].at);
    assert!(
        spread >= Duration::from_millis(1300),
        "10 deliveries in {spread:?}"
    );
    // The last outcomes are committed just after the sink answered them.
    let deadline = std::time::Instant::now() + PATIENCE;
    while hub.deliveries(None).await.len() < 10 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let attempts = hub.deliveries(None).await;
    assert_eq!(
        attempts.len(),
        10,
        "a deferral is not an attempt: {attempts:#?}"
    );
    assert!(
        attempts
            .iter()
            .all(|a| a["outcome"] == "delivered" && a["attempt"] == 1)
    );
}
