//! Scaling out: `hub serve --role api|worker` on one PostgreSQL. Two
//! workers share the work of one API process, one of them with its clock two
//! hours ahead (libfaketime) and SIGKILLed mid-load: the other takes over its
//! jobs once their lease (on the database's clock) expires, and nothing is
//! missing at the sink. Jobs are due by the database's clock too, and two
//! processes finishing the same erasure write one receipt. SQLite refuses
//! the split roles.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::timed_sink::{Answer, TimedSink};
use common::*;
use hub::event::CanonicalEvent;
use hub::store::{self, ClaimMode, IngestItem, IngestOutcome, JobReason, Store};
use serde_json::json;

/// libfaketime as Debian's `faketime` package installs it (.ci/run does).
const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// How far ahead the skewed worker's clock runs.
const SKEW_SECS: i64 = 7200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_roles_refuse_sqlite() {
    let hub = TestHub::builder(Backend::Sqlite).start().await;
    for role in ["api", "worker"] {
        let out = hub.cli(&["serve", "--role", role]).await;
        assert!(!out.status.success(), "--role {role} on SQLite: {out:?}");
        assert!(
            out.stderr.contains("needs PostgreSQL"),
            "the refusal says why: {}",
            out.stderr
        );
    }
    let out = hub.cli(&["serve", "--role", "everything"]).await;
    assert!(!out.status.success() && out.stderr.contains("possible values"));
}

/// A worker serves only health and metrics; an API process takes webhooks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hub_pg),
    ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant"
)]
async fn a_worker_serves_only_health_and_metrics_postgres() {
    let api = TestHub::builder(Backend::Postgres)
        .role("api")
        .start()
        .await;
    let worker = TestHub::builder(Backend::Postgres)
        .role("worker")
        .share_database(&api)
        .start()
        .await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = worker
            .http
            .get(format!("{}{path}", worker.url))
            .send()
            .await;
        assert_eq!(r.unwrap().status(), 200, "{path} on a worker");
    }
    let r = worker
        .webhook(&profile_event("w-1", now_utc()))
        .send()
        .await;
    assert_eq!(r.status, 404, "a worker takes no webhooks: {r:?}");
    api.send_ok(&profile_event("a-1", now_utc())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hub_pg),
    ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant"
)]
async fn a_worker_hears_of_a_change_at_once_postgres() {
    let sink = TimedSink::start(|_| Answer::ok()).await;
    // The poll alone would find each change only after up to 10 s.
    let tune = |b: HubBuilder| {
        b.mapping(
            "crm.yaml",
            crm_mapping("crm", &format!("http://{}/hook", sink.addr)),
        )
        .delivery("poll_interval", "\"10s\"")
    };
    let api = tune(TestHub::builder(Backend::Postgres).role("api"))
        .start()
        .await;
    let worker = tune(TestHub::builder(Backend::Postgres).role("worker"))
        .share_database(&api)
        .start()
        .await;
    // Let the worker's first poll pass, so that only a wake-up can start it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (i, ext) in ["n-1", "n-2", "n-3"].iter().enumerate() {
        let sent = Instant::now();
        api.send_ok(&profile_event(ext, now_utc())).await;
        sink.wait(Duration::from_secs(20), "the change", |calls| {
            calls.len() > i
        })
        .await;
        let took = sent.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "change {} reached the sink after {took:?}: the worker waited for its poll\n{}",
            i + 1,
            worker.log_text()
        );
    }
}

fn preload_faketime() -> &'static str {
    assert!(
        Path::new(FAKETIME_LIB).exists(),
        "this test skews a worker's clock with libfaketime: apt-get install faketime"
    );
    FAKETIME_LIB
}

async fn delivered_count(hub: &TestHub) -> f64 {
    hub.metrics()
        .await
        .get("hub_delivery_attempts_total{outcome=\"delivered\"}")
        .copied()
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hub_pg),
    ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant"
)]
async fn two_workers_share_the_load_and_survive_a_kill_postgres() {
    const SUBJECTS: usize = 600;
    let sink = TimedSink::start(|_| Answer::held(Duration::from_millis(300))).await;
    let tune = |b: HubBuilder| {
        b.mapping(
            "crm.yaml",
            crm_mapping("crm", &format!("http://{}/hook", sink.addr)),
        )
        .delivery("batch", "16")
        .delivery("concurrency", "8")
    };
    let api = tune(TestHub::builder(Backend::Postgres).role("api"))
        .start()
        .await;
    // Worker A's clock runs two hours ahead: were leases taken on the host's
    // clock, its jobs would stay locked for two hours after its death.
    let mut skewed = tune(TestHub::builder(Backend::Postgres).role("worker"))
        .share_database(&api)
        .env("LD_PRELOAD", preload_faketime())
        .env("FAKETIME", &format!("+{SKEW_SECS}s"))
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .start()
        .await;
    let steady = tune(TestHub::builder(Backend::Postgres).role("worker"))
        .share_database(&api)
        .start()
        .await;

    // The load: one change per subject, 16 at a time.
    let api = Arc::new(api);
    let mut accepted = Vec::new();
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let api = api.clone();
        senders.spawn(async move {
            let mut ids = Vec::new();
            for i in (worker..SUBJECTS).step_by(16) {
                let json = api
                    .send_ok(&profile_event(&format!("load-{i}"), now_utc()))
                    .await;
                ids.push(json["subject"].as_str().unwrap().to_string());
            }
            ids
        });
    }
    while let Some(ids) = senders.join_next().await {
        accepted.extend(ids.unwrap());
    }

    // Both workers deliver; then the skewed one dies with calls in flight.
    let deadline = Instant::now() + PATIENCE;
    let (a_before, b_before) = loop {
        let (a, b) = (
            delivered_count(&skewed).await,
            delivered_count(&steady).await,
        );
        if a >= 20.0 && b >= 20.0 {
            break (a, b);
        }
        assert!(
            Instant::now() < deadline,
            "both workers deliver: {a} and {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    skewed.kill_9();
    let killed_at = Instant::now();
    let running_sql = "SELECT id FROM delivery_jobs WHERE status = 'running'";
    let at_kill: BTreeSet<String> = api.db.strings(running_sql).await.into_iter().collect();
    // The steady worker's calls take 300 ms: what is still running 3 s
    // later (a second before the 4 s lease runs out) was the dead one's.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let orphans: BTreeSet<String> = api
        .db
        .strings(running_sql)
        .await
        .into_iter()
        .filter(|id| at_kill.contains(id))
        .collect();
    assert!(
        !orphans.is_empty(),
        "the killed worker left jobs in flight ({} running at the kill)",
        at_kill.len()
    );

    // The steady worker takes them over after the lease, and finishes all.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered: HashSet<String> = sink
            .calls()
            .iter()
            .filter(|c| c.status == 200)
            .map(|c| c.body["subject"].as_str().unwrap_or_default().to_string())
            .collect();
        let missing = accepted.iter().filter(|s| !delivered.contains(*s)).count();
        let left = api.db.counts(&["delivery_jobs"]).await[0].1;
        if missing == 0 && left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} subject(s) never delivered, {left} job(s) left\n{}",
            steady.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let skewed_ts = |c: &common::timed_sink::Call| {
        c.headers
            .get("webhook-timestamp")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|ts| ts > chrono::Utc::now().timestamp() + SKEW_SECS / 2)
    };
    let calls = sink.calls();
    let from_skewed = calls.iter().filter(|c| skewed_ts(c)).count();
    let from_steady = calls.len() - from_skewed;
    // (A request written just before the kill may still be read after it.)
    let after_kill = calls
        .iter()
        .filter(|c| c.start > killed_at + Duration::from_millis(500) && skewed_ts(c))
        .count();
    assert_eq!(after_kill, 0, "nothing comes from the dead worker");
    let b_after = delivered_count(&steady).await;
    assert_eq!(
        delivered_count(&api).await,
        0.0,
        "an API process runs no delivery drivers"
    );
    eprintln!(
        "two workers: {} subjects; before the kill skewed {a_before}, steady {b_before} delivered; \
         calls seen from skewed {from_skewed}, steady {from_steady}; {} running at the kill, \
         {} orphaned and taken over after the lease; steady delivered {b_after} in all",
        accepted.len(),
        at_kill.len(),
        orphans.len(),
    );
    assert!(
        b_after - b_before >= orphans.len() as f64,
        "the steady worker delivered the orphans too"
    );
}

// ---------------------------------------------------------------- store level

fn upsert(ext: &str, destinations: &[&str], received_at: i64) -> IngestItem {
    let event: CanonicalEvent = serde_json::from_value(json!({
        "type": "profile.upserted",
        "subject": {"externalId": ext, "userName": format!("{ext}@example.com")},
        "occurredAt": "2026-11-23T10:00:00Z",
    }))
    .unwrap();
    IngestItem {
        source: "ciam".into(),
        message_id: format!("msg-{ext}"),
        event,
        destinations: destinations.iter().map(|s| s.to_string()).collect(),
        received_at,
        traceparent: None,
    }
}

async fn applied(s: &dyn Store, item: IngestItem) -> String {
    match s.ingest(&[item]).await.unwrap().remove(0) {
        IngestOutcome::Applied { subject_id, .. } => subject_id,
        other => panic!("{other:?}"),
    }
}

backend_tests!(
    jobs_are_due_by_the_database_clock,
    two_processes_finishing_one_erasure_write_one_receipt,
);

/// A host whose clock runs an hour ahead queues jobs that are due now: the
/// claims compare due times with the database's clock, so the inserts must
/// take it too.
async fn jobs_are_due_by_the_database_clock(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(backend, dir.path()).await;
    let s = store::connect(&db.url).await.unwrap();
    let ahead = store::now_ms() + 3_600_000;
    applied(s.as_ref(), upsert("ingested", &["crm"], ahead)).await;
    let other = applied(s.as_ref(), upsert("enqueued", &[], ahead)).await;
    assert!(
        s.enqueue("cdp", &other, JobReason::Backfill, ahead)
            .await
            .unwrap()
    );
    for destination in ["crm", "cdp"] {
        let jobs = s
            .claim(destination, 10, Duration::from_secs(60), ClaimMode::Deliver)
            .await
            .unwrap();
        assert_eq!(
            jobs.len(),
            1,
            "{destination}: a job queued by a fast host is due at once"
        );
    }
}

/// Two hub processes (two pools) run the erasure check at once, again and
/// again: each erasure is completed by exactly one of them.
async fn two_processes_finishing_one_erasure_write_one_receipt(backend: Backend) {
    const SUBJECTS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(backend, dir.path()).await;
    let first = store::connect(&db.url).await.unwrap();
    let second = store::connect(&db.url).await.unwrap();
    let now = store::now_ms();
    let mut ids = BTreeSet::new();
    for i in 0..SUBJECTS {
        let id = applied(first.as_ref(), upsert(&format!("erase-{i}"), &[], now)).await;
        assert!(first.request_erasure(&id, &[], now).await.unwrap());
        ids.insert(id);
    }
    let day = 86_400_000;
    let finish = |s: Arc<dyn Store>| async move {
        let mut done = Vec::new();
        for _ in 0..5 {
            done.extend(
                s.complete_erasures(store::now_ms(), day)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.subject_id),
            );
        }
        done
    };
    let (a, b) = tokio::join!(
        tokio::spawn(finish(first.clone())),
        tokio::spawn(finish(second.clone()))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let both: Vec<&String> = a.iter().filter(|id| b.contains(id)).collect();
    assert!(both.is_empty(), "completed twice: {both:?}");
    let all: BTreeSet<String> = a.iter().chain(b.iter()).cloned().collect();
    assert_eq!(all, ids, "every erasure completed once");
    assert_eq!(a.len() + b.len(), SUBJECTS);
    assert_eq!(db.counts(&["erasure_receipts"]).await[0].1, SUBJECTS as i64);
    eprintln!(
        "erasures: {} by the first process, {} by the second",
        a.len(),
        b.len()
    );
}
