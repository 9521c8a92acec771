//! Delivery engine v2, end to end with the real binary: one delivery per
//! (destination, subject) at a time, convergence on the latest state,
//! destinations isolated from each other, pause on refused credentials,
//! batching, per-item results and the rate limit shared by processes.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::timed_sink::{Answer, Call, TimedSink, by_subject, overlapping_subjects};
use common::*;
use futures::StreamExt;
use serde_json::{Value, json};

backend_tests!(
    converges_on_the_latest_version_under_concurrency,
    no_two_deliveries_of_one_subject_overlap_behind_a_slow_sink,
    an_erasure_waits_for_the_upsert_in_flight,
    an_erasure_after_an_upsert_in_doubt_still_deletes,
    a_hanging_destination_does_not_hold_back_another,
    refused_credentials_pause_the_destination_not_the_jobs,
    batches_fill_under_a_burst_and_a_lone_change_goes_at_once,
    a_batch_with_refused_items_dead_letters_only_those,
);

/// A webhook destination without consent requirements that sends the
/// subject's `title` as `version`.
fn plain_mapping(name: &str, url: &str, extra_settings: &str) -> String {
    let secret = destination_secret().to_text();
    format!(
        "destination: {name}\nconnector: webhook\nsettings:\n  url: {url}\n  secret: {secret}\n  timeout: 5s\n{extra_settings}\
         fields:\n  version: {{ from: title }}\n  email:\n    from: emails[primary eq true].value\n"
    )
}

/// A profile event of `ext` at version `v` (later versions occur later).
fn versioned(ext: &str, v: u32, t0: chrono::DateTime<chrono::Utc>) -> Value {
    let mut e = profile_event(ext, t0 + chrono::Duration::milliseconds(i64::from(v)));
    e["subject"]["title"] = json!(format!("v{v:03}"));
    e
}

fn version_of(event: &Value) -> Option<u32> {
    event["data"]["version"]
        .as_str()?
        .strip_prefix('v')?
        .parse()
        .ok()
}

/// Posts every event, `concurrency` at a time; each must be accepted.
async fn send_all(hub: &TestHub, events: Vec<Value>, concurrency: usize) {
    futures::stream::iter(events)
        .for_each_concurrent(concurrency, |e| async move {
            let r = hub.webhook(&e).send().await;
            assert_eq!(r.status, 202, "{r:?}");
        })
        .await;
}

/// The hub's own store, opened beside the running process.
async fn store_of(hub: &TestHub) -> std::sync::Arc<dyn hub::store::Store> {
    hub::store::connect(&hub.db.url).await.unwrap()
}

/// Waits until no job is pending, running or waiting.
async fn drained(hub: &TestHub, within: Duration) {
    let store = store_of(hub).await;
    let deadline = Instant::now() + within;
    loop {
        let s = store.stats().await.unwrap();
        if s.pending_jobs + s.running_jobs + s.waiting_jobs == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queue not drained: {s:?}\n{}",
            hub.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stored `title` version of each subject, by hub id.
async fn stored_versions(hub: &TestHub, ids: &[String]) -> HashMap<String, u32> {
    let subjects = store_of(hub).await.load_subjects(ids).await.unwrap();
    subjects
        .into_iter()
        .map(|s| {
            let v = s.profile["title"].as_str().unwrap()[1..].parse().unwrap();
            (s.id, v)
        })
        .collect()
}

/// Checks the three promises over everything a sink answered: no overlap
/// per subject, versions never go back in answer order, and the last
/// answered version of each subject is its stored one.
fn assert_converged(calls: &[Call], stored: &HashMap<String, u32>) {
    let overlapping = overlapping_subjects(calls);
    assert!(
        overlapping.is_empty(),
        "overlapping deliveries for {overlapping:?}"
    );
    let answered = by_subject(calls);
    for (subject, latest) in stored {
        let list = answered
            .get(subject)
            .unwrap_or_else(|| panic!("{subject} never delivered"));
        let versions: Vec<u32> = list.iter().filter_map(|(_, _, e)| version_of(e)).collect();
        assert!(
            versions.windows(2).all(|w| w[0] <= w[1]),
            "{subject}: an older version answered after a newer one: {versions:?}"
        );
        assert_eq!(
            versions.last(),
            Some(latest),
            "{subject}: last answered {versions:?}, stored {latest}"
        );
    }
}

async fn converges_on_the_latest_version_under_concurrency(backend: Backend) {
    let sink =
        TimedSink::start(|_| Answer::held(Duration::from_millis(rand::random_range(0..=50)))).await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", plain_mapping("crm", &sink.url(), ""))
        .start()
        .await;
    let (subjects, versions) = (300, 20);
    for run in 0..5 {
        let t0 = now_utc();
        // Version-major order across 64 senders: the versions of one subject
        // race each other in and their deliveries race each other out.
        let events: Vec<Value> = (1..=versions)
            .flat_map(|v| (0..subjects).map(move |s| (s, v)))
            .map(|(s, v)| versioned(&format!("run{run}-s{s}"), v, t0))
            .collect();
        let before = sink.calls().len();
        send_all(&hub, events, 64).await;
        drained(&hub, Duration::from_secs(120)).await;
        let calls: Vec<Call> = sink.calls()[before..].to_vec();
        let ids: Vec<String> = by_subject(&calls).into_keys().collect();
        assert_eq!(ids.len(), subjects, "run {run}: every subject delivered");
        let stored = stored_versions(&hub, &ids).await;
        assert!(
            stored.values().all(|v| *v == versions),
            "run {run}: {stored:?}"
        );
        assert_converged(&calls, &stored);
        eprintln!(
            "run {run}: {} deliveries for {} changes",
            calls.len(),
            subjects * versions as usize
        );
    }
}

/// 50 subjects, each updated 4 more times while its first delivery is held
/// for a second by the sink.
async fn slow_sink_scenario(hubs: &[&TestHub], sink: &TimedSink) {
    let t0 = now_utc();
    let first: Vec<Value> = (0..50)
        .map(|s| versioned(&format!("slow-{s}"), 1, t0))
        .collect();
    send_all(hubs[0], first, 16).await;
    sink.wait_started(Duration::from_secs(20), 50).await;
    let later: Vec<Value> = (2..=5)
        .flat_map(|v| (0..50).map(move |s| (s, v)))
        .map(|(s, v)| versioned(&format!("slow-{s}"), v, t0))
        .collect();
    for (i, chunk) in later.chunks(50).enumerate() {
        send_all(hubs[i % hubs.len()], chunk.to_vec(), 16).await;
    }
    drained(hubs[0], Duration::from_secs(60)).await;
    let calls = sink.calls();
    let ids: Vec<String> = by_subject(&calls).into_keys().collect();
    assert_eq!(ids.len(), 50);
    let stored = stored_versions(hubs[0], &ids).await;
    assert_converged(&calls, &stored);
    assert!(
        calls.len() < 50 * 5,
        "changes made while a delivery was in flight coalesce: {} calls",
        calls.len()
    );
}

async fn no_two_deliveries_of_one_subject_overlap_behind_a_slow_sink(backend: Backend) {
    let sink = TimedSink::start(|_| Answer::held(Duration::from_secs(1))).await;
    let hub = TestHub::builder(backend)
        .delivery("http_timeout", "\"3s\"")
        .delivery("lease", "\"10s\"")
        .mapping("crm.yaml", plain_mapping("crm", &sink.url(), ""))
        .start()
        .await;
    slow_sink_scenario(&[&hub], &sink).await;
}

/// The same with two hub processes on one PostgreSQL, each taking changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hub_pg),
    ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant"
)]
async fn two_processes_never_overlap_deliveries_of_one_subject() {
    let sink = TimedSink::start(|_| Answer::held(Duration::from_secs(1))).await;
    let mapping = plain_mapping("crm", &sink.url(), "");
    let a = TestHub::builder(Backend::Postgres)
        .delivery("http_timeout", "\"3s\"")
        .delivery("lease", "\"10s\"")
        .mapping("crm.yaml", mapping.clone())
        .start()
        .await;
    let b = TestHub::builder(Backend::Postgres)
        .delivery("http_timeout", "\"3s\"")
        .delivery("lease", "\"10s\"")
        .share_database(&a)
        .mapping("crm.yaml", mapping)
        .start()
        .await;
    slow_sink_scenario(&[&a, &b], &sink).await;
}

async fn an_erasure_waits_for_the_upsert_in_flight(backend: Backend) {
    // Upserts are held for 2 s; deletes are answered at once.
    let sink = TimedSink::start(|body| {
        if body["type"] == "profile.upserted" {
            Answer::held(Duration::from_secs(2))
        } else {
            Answer::ok()
        }
    })
    .await;
    let hub = TestHub::builder(backend)
        .delivery("http_timeout", "\"4s\"")
        .delivery("lease", "\"10s\"")
        .mapping("crm.yaml", plain_mapping("crm", &sink.url(), ""))
        .start()
        .await;
    let reply = hub.send_ok(&versioned("erase-me", 1, now_utc())).await;
    let subject = reply["subject"].as_str().unwrap().to_string();
    sink.wait_started(PATIENCE, 1).await;
    let erase = hub.cli(&["erase", &subject]).await;
    assert!(erase.status.success(), "{erase:?}");
    // Until the delete is answered, no receipt.
    let deadline = Instant::now() + PATIENCE;
    let receipt_seen_at = loop {
        let export = hub.cli(&["export", &subject]).await;
        let report: Value = serde_json::from_str(&export.stdout).unwrap();
        if !report["erasure_receipt"].is_null() {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "no receipt\n{}", hub.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let calls = sink.calls();
    let mine = &by_subject(&calls)[&subject];
    let kinds: Vec<&str> = mine
        .iter()
        .map(|(_, _, e)| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["profile.upserted", "profile.deleted"],
        "the delete goes after the upsert in flight, and is the last word"
    );
    let delete_answered = mine[1].1;
    assert!(
        delete_answered <= receipt_seen_at,
        "the receipt appeared before the delete was answered"
    );
    assert!(
        mine[1].0 >= mine[0].1,
        "the delete started after the upsert ended"
    );
}

async fn an_erasure_after_an_upsert_in_doubt_still_deletes(backend: Backend) {
    // Every upsert fails with a 503, which a vendor may answer after it
    // stored the data; deletes are answered at once.
    let sink = TimedSink::start(|body| {
        if body["type"] == "profile.upserted" {
            Answer::status(503)
        } else {
            Answer::ok()
        }
    })
    .await;
    let hub = TestHub::builder(backend)
        .delivery("retry_base", "\"300ms\"")
        .mapping("crm.yaml", plain_mapping("crm", &sink.url(), ""))
        .start()
        .await;
    let reply = hub.send_ok(&versioned("doubt", 1, now_utc())).await;
    let subject = reply["subject"].as_str().unwrap().to_string();
    sink.wait(PATIENCE, "the first upsert", |calls| !calls.is_empty())
        .await;
    let erase = hub.cli(&["erase", &subject]).await;
    assert!(erase.status.success(), "{erase:?}");
    let deadline = Instant::now() + PATIENCE;
    let receipt = loop {
        let export = hub.cli(&["export", &subject]).await;
        let report: Value = serde_json::from_str(&export.stdout).unwrap();
        if !report["erasure_receipt"].is_null() {
            break report["erasure_receipt"].clone();
        }
        assert!(Instant::now() < deadline, "no receipt\n{}", hub.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let calls = sink.calls();
    let by = by_subject(&calls);
    let kinds: Vec<&str> = by[&subject]
        .iter()
        .map(|(_, _, e)| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.last(),
        Some(&"profile.deleted"),
        "the upsert's outcome was unknown, so the erasure must reach the vendor: {kinds:?}"
    );
    assert!(
        receipt.to_string().contains("crm"),
        "the receipt names the destination: {receipt}"
    );
}

/// Deliveries per second at `sink` for `n` fresh changes.
async fn rate_for(hub: &TestHub, sink: &TimedSink, tag: &str, n: usize) -> f64 {
    let before = sink.calls().len();
    let t0 = now_utc();
    let events: Vec<Value> = (0..n)
        .map(|i| versioned(&format!("{tag}-{i}"), 1, t0))
        .collect();
    let started = Instant::now();
    send_all(hub, events, 32).await;
    sink.wait(Duration::from_secs(60), "all delivered", |c| {
        c.len() >= before + n
    })
    .await;
    n as f64 / started.elapsed().as_secs_f64()
}

async fn a_hanging_destination_does_not_hold_back_another(backend: Backend) {
    let slow = TimedSink::start(|_| Answer::ok()).await;
    let fast = TimedSink::start(|_| Answer::ok()).await;
    let hub = TestHub::builder(backend)
        .delivery("http_timeout", "\"1s\"")
        .mapping("a.yaml", plain_mapping("a", &slow.url(), ""))
        .mapping("b.yaml", plain_mapping("b", &fast.url(), ""))
        .start()
        .await;
    let alone = rate_for(&hub, &fast, "warm", 400).await;
    let alone = alone.max(rate_for(&hub, &fast, "alone", 400).await);
    // Now A hangs until our timeout on every call.
    slow.respond(|_| Answer::held(Duration::from_secs(30)));
    let beside = rate_for(&hub, &fast, "beside", 400).await;
    eprintln!("destination B: {alone:.0}/s alone, {beside:.0}/s beside a hanging A");
    assert!(
        beside >= alone * 0.3,
        "a hanging destination slowed another from {alone:.0}/s to {beside:.0}/s"
    );
}

async fn refused_credentials_pause_the_destination_not_the_jobs(backend: Backend) {
    let crm = TimedSink::start(|_| Answer::status(401)).await;
    let other = TimedSink::start(|_| Answer::ok()).await;
    let hub = TestHub::builder(backend)
        .delivery("probe_interval", "\"1s\"")
        .mapping("crm.yaml", plain_mapping("crm", &crm.url(), ""))
        .mapping("other.yaml", plain_mapping("other", &other.url(), ""))
        .start()
        .await;
    let t0 = now_utc();
    let first: Vec<Value> = (0..5).map(|s| versioned(&format!("p{s}"), 1, t0)).collect();
    send_all(&hub, first, 5).await;
    other
        .wait(PATIENCE, "the other destination gets all", |c| c.len() >= 5)
        .await;
    let paused = wait_destination(&hub, "crm", |d| d["state"] == "paused").await;
    assert_eq!(paused["paused_by"], "vendor");
    let calls_at_pause = crm.calls().len();
    assert!(
        calls_at_pause <= 5,
        "paused within the first round: {calls_at_pause}"
    );
    // While paused: changes keep coming, the destination sees one probe per interval.
    let later: Vec<Value> = (0..5).map(|s| versioned(&format!("p{s}"), 2, t0)).collect();
    send_all(&hub, later, 5).await;
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let probes = crm.calls().len() - calls_at_pause;
    assert!(
        (1..=4).contains(&probes),
        "{probes} probes in 3.2 s at a 1 s interval"
    );
    assert!(
        other.calls().len() >= 10,
        "the other destination is unaffected"
    );
    let attempts = hub.deliveries(None).await;
    let crm_attempts: Vec<&Value> = attempts
        .iter()
        .filter(|a| a["destination"] == "crm")
        .collect();
    assert!(
        crm_attempts
            .iter()
            .all(|a| a["outcome"] == "paused" && a["attempt"] == 1),
        "a pause spends no attempts: {crm_attempts:#?}"
    );
    // Credentials fixed: the next probe resumes, everything missed arrives, latest only.
    crm.respond(|_| Answer::ok());
    let before = crm.calls().len();
    let calls = crm
        .wait(PATIENCE, "the five subjects at version 2", |c| {
            let answered = by_subject(&c[before..]);
            answered.len() == 5
                && answered
                    .values()
                    .all(|l| version_of(&l.last().unwrap().2) == Some(2))
        })
        .await;
    let delivered = &calls[before..];
    assert!(
        delivered
            .iter()
            .flat_map(|c| c.events())
            .all(|e| version_of(&e) == Some(2)),
        "only the latest state goes out after a pause"
    );
    wait_destination(&hub, "crm", |d| d["state"] == "active").await;

    // An admin's pause holds until the admin resumes it.
    let out = hub.cli(&["destinations", "pause", "crm"]).await;
    assert!(out.status.success(), "{out:?}");
    let before = crm.calls().len();
    send_all(&hub, vec![versioned("p0", 3, t0)], 1).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let extra: Vec<Value> = crm.calls()[before..]
        .iter()
        .map(|c| c.body.clone())
        .collect();
    assert!(
        extra.is_empty(),
        "nothing while paused by an admin: {extra:#?}\n{}",
        hub.log_text()
    );
    let out = hub.cli(&["destinations", "resume", "crm"]).await;
    assert!(out.stdout.contains("resumed crm"), "{out:?}");
    crm.wait(PATIENCE, "delivered after resume", |c| c.len() > before)
        .await;
}

/// Polls `hub destinations` until `pred` holds for `name`'s entry.
async fn wait_destination(hub: &TestHub, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let out = hub.cli(&["destinations"]).await;
        assert!(out.status.success(), "{out:?}");
        let list: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
        let entry = list.into_iter().find(|d| d["name"] == name).unwrap();
        if pred(&entry) {
            return entry;
        }
        assert!(Instant::now() < deadline, "never: {entry:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn batches_fill_under_a_burst_and_a_lone_change_goes_at_once(backend: Backend) {
    let sink = TimedSink::start(|_| Answer::held(Duration::from_millis(20))).await;
    let hub = TestHub::builder(backend)
        .mapping(
            "crm.yaml",
            plain_mapping("crm", &sink.url(), "  batch: { max_items: 100 }\n"),
        )
        .start()
        .await;
    let t0 = now_utc();
    let burst: Vec<Value> = (0..2000)
        .map(|i| versioned(&format!("b{i}"), 1, t0))
        .collect();
    send_all(&hub, burst, 64).await;
    let calls = sink
        .wait(Duration::from_secs(60), "2000 delivered", |c| {
            c.iter().map(|c| c.events().len()).sum::<usize>() >= 2000
        })
        .await;
    assert!(
        calls.iter().all(|c| c.events().len() <= 100),
        "max_batch holds"
    );
    let mean = 2000.0 / calls.len() as f64;
    eprintln!(
        "burst of 2000: {} calls, {mean:.1} items per batch",
        calls.len()
    );
    assert!(mean >= 80.0, "batches average {mean:.1} items");
    drained(&hub, PATIENCE).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A lone change under no load goes at once, not after a linger.
    let before = sink.started().len();
    let sent = Instant::now();
    hub.send_ok(&versioned("lone", 1, now_utc())).await;
    let deadline = Instant::now() + PATIENCE;
    let arrived = loop {
        if let Some((at, _)) = sink.started().get(before) {
            break *at;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let after = arrived.duration_since(sent);
    eprintln!("a lone change reached the sink {after:?} after it was posted");
    assert!(
        after <= Duration::from_millis(150),
        "linger 100 ms + 50 ms: {after:?}"
    );
}

async fn a_batch_with_refused_items_dead_letters_only_those(backend: Backend) {
    // Refuses events whose version field says so, by event id (207).
    let sink = TimedSink::start(|body| {
        let results: Vec<Value> = body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                e["data"]["email"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("refuse"))
            })
            .map(|e| json!({"id": e["id"], "status": 422, "error": "mailbox refused by policy"}))
            .collect();
        Answer {
            status: 207,
            body: Some(json!({ "results": results })),
            ..Answer::ok()
        }
    })
    .await;
    let hub = TestHub::builder(backend)
        .mapping(
            "crm.yaml",
            plain_mapping("crm", &sink.url(), "  batch: { max_items: 100 }\n"),
        )
        .start()
        .await;
    // Paused while the 100 changes come in, so they go as one batch.
    assert!(
        hub.cli(&["destinations", "pause", "crm"])
            .await
            .status
            .success()
    );
    let t0 = now_utc();
    let events: Vec<Value> = (0..100)
        .map(|i| {
            let mut e = versioned(&format!("r{i}"), 1, t0);
            let who = if [7, 42, 77].contains(&i) {
                "refuse"
            } else {
                "ok"
            };
            e["subject"]["emails"] =
                json!([{"value": format!("{who}{i}@example.com"), "primary": true}]);
            e
        })
        .collect();
    send_all(&hub, events, 32).await;
    assert!(
        hub.cli(&["destinations", "resume", "crm"])
            .await
            .status
            .success()
    );
    let calls = sink.wait(PATIENCE, "the batch", |c| !c.is_empty()).await;
    assert_eq!(calls[0].events().len(), 100, "one batch of 100");
    drained(&hub, PATIENCE).await;
    let out = hub.cli(&["dlq", "list", "--destination", "crm"]).await;
    let dead: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(dead.len(), 3, "{dead:#?}");
    for d in &dead {
        assert_eq!(d["detail"], "HTTP 422: mailbox refused by policy");
    }
    let attempts = hub.deliveries(None).await;
    let delivered = attempts
        .iter()
        .filter(|a| a["outcome"] == "delivered")
        .count();
    assert_eq!(delivered, 97);
    assert_eq!(sink.calls().len(), 1, "dead letters are not retried");
}

/// Two hubs on one PostgreSQL, one destination limited to 50 calls/s: at
/// the sink no one-second window holds more than 50, and while limited the
/// hubs sleep rather than spin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hub_pg),
    ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant"
)]
async fn a_rate_limit_holds_for_two_processes_together() {
    let sink = TimedSink::start(|_| Answer::ok()).await;
    let mapping = plain_mapping("crm", &sink.url(), "  rate_limit: 50\n");
    let a = TestHub::builder(Backend::Postgres)
        .mapping("crm.yaml", mapping.clone())
        .start()
        .await;
    let b = TestHub::builder(Backend::Postgres)
        .share_database(&a)
        .mapping("crm.yaml", mapping)
        .start()
        .await;
    let t0 = now_utc();
    let events: Vec<Value> = (0..300)
        .map(|i| versioned(&format!("rl{i}"), 1, t0))
        .collect();
    let (first, second) = events.split_at(150);
    send_all(&a, first.to_vec(), 16).await;
    send_all(&b, second.to_vec(), 16).await;
    // Measure CPU over the limited stretch.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu0 = cpu_seconds(a.pid()) + cpu_seconds(b.pid());
    let wall = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = cpu_seconds(a.pid()) + cpu_seconds(b.pid()) - cpu0;
    let share = cpu / wall.elapsed().as_secs_f64();
    let calls = sink
        .wait(Duration::from_secs(30), "300 delivered", |c| c.len() >= 300)
        .await;
    let mut starts: Vec<Instant> = sink.started().iter().map(|(t, _)| *t).collect();
    starts.sort();
    let busiest = starts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            starts[i..]
                .iter()
                .take_while(|s| **s < *t + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    let span = starts.last().unwrap().duration_since(starts[0]);
    eprintln!(
        "rate limit 50/s, two hubs: {} calls over {span:?}, busiest 1 s window {busiest}; \
         both hubs used {:.1}% of one core while limited",
        calls.len(),
        share * 100.0
    );
    assert!(busiest <= 50, "busiest second had {busiest} calls");
    assert!(
        span >= Duration::from_secs(5),
        "300 calls at 50/s take 6 s: {span:?}"
    );
    assert!(
        share < 0.35,
        "limited hubs should sleep, not spin: {:.0}%",
        share * 100.0
    );
}

/// User plus system CPU time of a process, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}
