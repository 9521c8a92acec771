//! The `Store` contract, run against SQLite and (when HUB_TEST_DATABASE_URL is
//! set; else reported ignored) PostgreSQL, each test on a fresh database.

use std::sync::Arc;

use hub::event::CanonicalEvent;
use std::time::Duration;

use connectors::ActionKind;
use hub::store::{
    self, AttemptOutcome, ClaimMode, DeliveryJob, DestinationStatus, Finished, Held, Holding,
    IngestItem, IngestOutcome, JobReason, NextStep, PausedBy, Store, SubjectKey, TicketItem,
};
use serde_json::json;

mod common;

use common::Backend;

/// A store on a fresh database; fields drop in order: pool, database, dir.
struct Fixture {
    store: Arc<dyn Store>,
    _db: common::Db,
    _dir: tempfile::TempDir,
}

async fn fixture(backend: Backend) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = common::Db::create(backend, dir.path()).await;
    Fixture {
        store: store::connect(&db.url).await.unwrap(),
        _db: db,
        _dir: dir,
    }
}

async fn sqlite() -> Fixture {
    fixture(Backend::Sqlite).await
}

async fn postgres() -> Fixture {
    fixture(Backend::Postgres).await
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test] async fn $name() {
                let db = super::sqlite().await;
                super::$name(db.store.as_ref()).await;
            })*
        }
        mod on_postgres {
            $(#[tokio::test]
            #[cfg_attr(not(hub_pg), ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant")]
            async fn $name() {
                let db = super::postgres().await;
                super::$name(db.store.as_ref()).await;
            })*
        }
    };
}

contract!(
    a_change_and_its_jobs_commit_together,
    a_repeated_message_id_changes_nothing,
    pending_jobs_coalesce_per_destination_and_subject,
    a_retry_is_rescheduled_and_merges_with_newer_work,
    dead_letters_can_be_replayed,
    an_older_event_does_not_regress_the_profile,
    expired_leases_are_reclaimed,
    consent_is_recorded_and_fails_closed,
    delivered_actions_record_what_the_destination_holds,
    erasure_deletes_where_sent_then_removes_pii_with_a_receipt,
    reports_hold_consent_history_with_evidence,
    brand_consent_and_membership_are_kept,
    attempts_past_retention_are_pruned,
    a_deleted_profile_reaches_every_destination_that_had_it,
    one_delivery_per_destination_and_subject_at_a_time,
    a_late_finish_after_the_lease_changes_nothing,
    a_waiting_ticket_holds_its_pair_until_checked,
    erasure_waits_for_deliveries_in_flight,
    destination_state_is_shared_and_probes_are_taken_once,
    shared_rate_limit_spaces_reserved_calls,
    destination_reports_count_queue_and_outcomes,
    claims_hold_back_while_paused_or_throttled,
);

fn event(
    kind: &str,
    ext: &str,
    given: &str,
    consent: serde_json::Value,
    at: &str,
) -> CanonicalEvent {
    serde_json::from_value(json!({
        "type": kind,
        "subject": {"externalId": ext, "userName": format!("{ext}@example.com"), "name": {"givenName": given},
                    "emails": [{"value": format!(" {ext}@Example.com "), "primary": true}]},
        "consent": consent,
        "occurredAt": at,
    }))
    .unwrap()
}

fn item(id: &str, e: CanonicalEvent, destinations: &[&str]) -> IngestItem {
    IngestItem {
        source: "ciam".into(),
        message_id: id.into(),
        event: e,
        destinations: destinations.iter().map(|s| s.to_string()).collect(),
        received_at: store::now_ms(),
        traceparent: None,
    }
}

fn upsert(id: &str, ext: &str, given: &str, at: &str) -> IngestItem {
    item(
        id,
        event("profile.upserted", ext, given, json!({}), at),
        &["crm", "cdp"],
    )
}

const LEASE: Duration = Duration::from_secs(60);

fn result(job: DeliveryJob, outcome: AttemptOutcome, next: NextStep) -> Finished {
    Finished {
        job,
        action: Some(ActionKind::Upsert),
        outcome,
        status_code: Some(503),
        latency_ms: 3,
        detail: Some("HTTP 503".into()),
        next,
        holding: None,
        attempted: true,
    }
}

fn delivered(job: DeliveryJob, action: ActionKind) -> Finished {
    Finished {
        action: Some(action),
        status_code: Some(200),
        detail: None,
        holding: Some(Holding::new(Held::after(action))),
        ..result(job, AttemptOutcome::Delivered, NextStep::Done)
    }
}

/// Claims every due job of both test destinations.
async fn claim_all(s: &dyn Store, lease: Duration) -> Vec<DeliveryJob> {
    let mut jobs = s
        .claim("crm", 100, lease, ClaimMode::Deliver)
        .await
        .unwrap();
    jobs.extend(
        s.claim("cdp", 100, lease, ClaimMode::Deliver)
            .await
            .unwrap(),
    );
    jobs
}

/// Waits until `check` holds, polling; panics after 10 s.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_change_and_its_jobs_commit_together(s: &dyn Store) {
    let out = s
        .ingest(&[upsert("m1", "ada", "Ada", "2026-11-23T10:00:00Z")])
        .await
        .unwrap();
    let IngestOutcome::Applied { subject_id, jobs } = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(*jobs, 2);
    let stats = s.stats().await.unwrap();
    assert_eq!(
        (stats.subjects, stats.changes, stats.pending_jobs),
        (1, 1, 2)
    );
    let subjects = s
        .load_subjects(std::slice::from_ref(subject_id))
        .await
        .unwrap();
    assert_eq!(subjects[0].profile["name"]["givenName"], "Ada");
    assert_eq!(subjects[0].profile["id"], json!(subject_id));
    let found = s
        .find_subject(&SubjectKey::External {
            source: "ciam".into(),
            external_id: "ada".into(),
        })
        .await
        .unwrap();
    assert_eq!(found.as_ref(), Some(subject_id));
}

async fn a_repeated_message_id_changes_nothing(s: &dyn Store) {
    s.ingest(&[upsert("m1", "ada", "Ada", "2026-11-23T10:00:00Z")])
        .await
        .unwrap();
    let again = s
        .ingest(&[upsert("m1", "ada", "Eve", "2026-11-23T10:01:00Z")])
        .await
        .unwrap();
    assert_eq!(again, vec![IngestOutcome::Duplicate]);
    let stats = s.stats().await.unwrap();
    assert_eq!((stats.changes, stats.pending_jobs), (1, 2));
}

async fn pending_jobs_coalesce_per_destination_and_subject(s: &dyn Store) {
    let items: Vec<IngestItem> = (0..10)
        .map(|i| {
            upsert(
                &format!("m{i}"),
                "ada",
                &format!("Ada {i}"),
                &format!("2026-11-23T10:00:{i:02}Z"),
            )
        })
        .collect();
    s.ingest(&items).await.unwrap();
    let stats = s.stats().await.unwrap();
    assert_eq!(
        (stats.changes, stats.pending_jobs),
        (10, 2),
        "ten changes, one job per destination"
    );
    let jobs = claim_all(s, LEASE).await;
    assert_eq!(jobs.len(), 2);
    // A change while the job runs queues a new one: the running attempt may have read older state.
    s.ingest(&[upsert("m10", "ada", "Ada 10", "2026-11-23T10:00:10Z")])
        .await
        .unwrap();
    let stats = s.stats().await.unwrap();
    assert_eq!((stats.running_jobs, stats.pending_jobs), (2, 2));
}

async fn a_retry_is_rescheduled_and_merges_with_newer_work(s: &dyn Store) {
    s.ingest(&[item(
        "m1",
        event(
            "profile.upserted",
            "ada",
            "Ada",
            json!({}),
            "2026-11-23T10:00:00Z",
        ),
        &["crm"],
    )])
    .await
    .unwrap();
    let job = s
        .claim("crm", 10, LEASE, ClaimMode::Deliver)
        .await
        .unwrap()
        .remove(0);
    // Nothing else is due while it runs.
    assert!(
        s.claim("crm", 10, LEASE, ClaimMode::Deliver)
            .await
            .unwrap()
            .is_empty()
    );
    s.ingest(&[item(
        "m2",
        event(
            "profile.upserted",
            "ada",
            "Ada B",
            json!({}),
            "2026-11-23T10:00:01Z",
        ),
        &["crm"],
    )])
    .await
    .unwrap();
    assert!(
        s.claim("crm", 10, LEASE, ClaimMode::Deliver)
            .await
            .unwrap()
            .is_empty(),
        "the newer change waits while the pair is in flight"
    );
    let backoff = Duration::from_millis(700);
    s.finish(&[result(
        job.clone(),
        AttemptOutcome::Retry,
        NextStep::Retry {
            after: backoff,
            counted: true,
        },
    )])
    .await
    .unwrap();
    let stats = s.stats().await.unwrap();
    assert_eq!(
        (stats.pending_jobs, stats.running_jobs, stats.attempts),
        (1, 0, 1),
        "merged into one pending job"
    );
    assert!(
        s.claim("crm", 10, LEASE, ClaimMode::Deliver)
            .await
            .unwrap()
            .is_empty(),
        "the backoff holds"
    );
    let due = s.next_due("crm").await.unwrap().expect("a job is queued");
    assert!(due > Duration::ZERO && due <= backoff, "{due:?}");
    tokio::time::sleep(backoff).await;
    let again = s.claim("crm", 10, LEASE, ClaimMode::Deliver).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 1, "the attempt count survives the merge");
    assert!(again[0].first_enqueued_at <= job.first_enqueued_at);
    let attempts = s.attempts(Some(&job.subject_id), 10).await.unwrap();
    assert_eq!(attempts[0].outcome, "retry");
    assert_eq!(attempts[0].status_code, Some(503));
}

async fn dead_letters_can_be_replayed(s: &dyn Store) {
    s.ingest(&[upsert("m1", "ada", "Ada", "2026-11-23T10:00:00Z")])
        .await
        .unwrap();
    let now = store::now_ms();
    let jobs = claim_all(s, LEASE).await;
    let results: Vec<Finished> = jobs
        .into_iter()
        .map(|j| result(j, AttemptOutcome::Dead, NextStep::DeadLetter))
        .collect();
    s.finish(&results).await.unwrap();
    assert_eq!(s.dead_letters(None).await.unwrap().len(), 2);
    assert_eq!(s.dead_letters(Some("crm")).await.unwrap().len(), 1);
    assert_eq!(s.stats().await.unwrap().pending_jobs, 0);
    assert_eq!(
        s.replay_dead_letters(Some("crm"), None, now).await.unwrap(),
        1
    );
    assert_eq!(s.dead_letters(None).await.unwrap().len(), 1);
    let jobs = claim_all(s, LEASE).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].destination.as_str(), jobs[0].reason),
        ("crm", JobReason::Replay)
    );
}

async fn an_older_event_does_not_regress_the_profile(s: &dyn Store) {
    s.ingest(&[upsert("m2", "ada", "New", "2026-11-23T10:05:00Z")])
        .await
        .unwrap();
    let out = s
        .ingest(&[upsert("m1", "ada", "Old", "2026-11-23T10:00:00Z")])
        .await
        .unwrap();
    let IngestOutcome::Stale { subject_id } = &out[0] else {
        panic!("{out:?}")
    };
    let subject = s
        .load_subjects(std::slice::from_ref(subject_id))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(subject.profile["name"]["givenName"], "New");
    let deleted = s
        .ingest(&[item(
            "m3",
            event(
                "profile.deleted",
                "ada",
                "",
                json!({}),
                "2026-11-23T10:06:00Z",
            ),
            &["crm"],
        )])
        .await
        .unwrap();
    assert!(matches!(deleted[0], IngestOutcome::Applied { .. }));
    let subject = s
        .load_subjects(std::slice::from_ref(subject_id))
        .await
        .unwrap()
        .remove(0);
    assert!(subject.deleted);
    let unknown = s
        .ingest(&[item(
            "m4",
            event(
                "profile.deleted",
                "nobody",
                "",
                json!({}),
                "2026-11-23T10:06:00Z",
            ),
            &["crm"],
        )])
        .await
        .unwrap();
    assert_eq!(unknown, vec![IngestOutcome::Unknown]);
}

async fn expired_leases_are_reclaimed(s: &dyn Store) {
    s.ingest(&[upsert("m1", "ada", "Ada", "2026-11-23T10:00:00Z")])
        .await
        .unwrap();
    let lease = Duration::from_millis(300);
    assert_eq!(claim_all(s, lease).await.len(), 2);
    assert!(claim_all(s, lease).await.is_empty(), "leased");
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert_eq!(
        claim_all(s, lease).await.len(),
        2,
        "a dead worker's jobs come back"
    );
}

async fn consent_is_recorded_and_fails_closed(s: &dyn Store) {
    let e = event(
        "profile.upserted",
        "ada",
        "Ada",
        json!({"marketing_email": "granted", "analytics": "denied"}),
        "2026-11-23T10:00:00Z",
    );
    let out = s.ingest(&[item("m1", e, &["crm"])]).await.unwrap();
    let IngestOutcome::Applied { subject_id, .. } = &out[0] else {
        panic!()
    };
    let subject = s
        .load_subjects(std::slice::from_ref(subject_id))
        .await
        .unwrap()
        .remove(0);
    assert!(subject.granted("marketing_email", None));
    assert!(!subject.granted("analytics", None));
    assert!(!subject.granted("sms", None), "no record means not granted");
    // A withdrawal via consent.updated; an older grant arriving late does not undo it.
    let w = event(
        "consent.updated",
        "ada",
        "",
        json!({"marketing_email": "denied"}),
        "2026-11-23T10:05:00Z",
    );
    let late = event(
        "consent.updated",
        "ada",
        "",
        json!({"marketing_email": "granted"}),
        "2026-11-23T10:01:00Z",
    );
    s.ingest(&[item("m2", w, &["crm"]), item("m3", late, &["crm"])])
        .await
        .unwrap();
    let subject = s
        .load_subjects(std::slice::from_ref(subject_id))
        .await
        .unwrap()
        .remove(0);
    assert!(!subject.granted("marketing_email", None));
    assert_eq!(
        subject.profile["name"]["givenName"], "Ada",
        "consent.updated leaves the profile alone"
    );
}

async fn delivered_actions_record_what_the_destination_holds(s: &dyn Store) {
    use hub::store::Held;
    s.ingest(&[upsert("m1", "ada", "Ada", "2026-11-23T10:00:00Z")])
        .await
        .unwrap();
    let now = store::now_ms();
    let jobs = claim_all(s, LEASE).await;
    let subject_id = jobs[0].subject_id.clone();
    let results: Vec<Finished> = jobs
        .into_iter()
        .map(|j| {
            if j.destination == "crm" {
                let mut identity = serde_json::Map::new();
                identity.insert("email".into(), json!("ada@example.com"));
                Finished {
                    holding: Some(Holding {
                        state: Held::Sent,
                        record_id: Some("vendor-42".into()),
                        identity,
                    }),
                    ..delivered(j, ActionKind::Upsert)
                }
            } else {
                Finished {
                    action: None,
                    ..result(j, AttemptOutcome::Suppressed, NextStep::Done)
                }
            }
        })
        .collect();
    s.finish(&results).await.unwrap();
    let subject = s
        .load_subjects(std::slice::from_ref(&subject_id))
        .await
        .unwrap()
        .remove(0);
    let crm = subject.received.get("crm").expect("crm holds the subject");
    assert_eq!(crm.state, Held::Sent);
    assert_eq!(crm.record_id.as_deref(), Some("vendor-42"));
    assert_eq!(crm.identity["email"], "ada@example.com");
    assert_eq!(
        subject.held_by("cdp"),
        None,
        "a suppressed attempt sends nothing"
    );
    s.enqueue("crm", &subject_id, JobReason::Change, now)
        .await
        .unwrap();
    let job = s
        .claim("crm", 10, LEASE, ClaimMode::Deliver)
        .await
        .unwrap()
        .remove(0);
    let withdrawn = Finished {
        holding: Some(Holding::new(Held::Withdrawn)),
        ..delivered(job, ActionKind::Suppress)
    };
    s.finish(&[withdrawn]).await.unwrap();
    let subject = s
        .load_subjects(std::slice::from_ref(&subject_id))
        .await
        .unwrap()
        .remove(0);
    let crm = subject.received.get("crm").unwrap();
    assert_eq!(crm.state, Held::Withdrawn);
    assert_eq!(
        crm.record_id.as_deref(),
        Some("vendor-42"),
        "the vendor's id is kept when an answer names none"
    );
    assert_eq!(crm.identity["email"], "ada@example.com");
}

/// Delivers every due job with the action the engine would choose.
async fn deliver_all(s: &dyn Store, action: ActionKind) -> Vec<String> {
    let jobs = claim_all(s, LEASE).await;
    let names = jobs.iter().map(|j| j.destination.clone()).collect();
    let results: Vec<Finished> = jobs.into_iter().map(|j| delivered(j, action)).collect();
    s.finish(&results).await.unwrap();
    names
}

async fn erasure_deletes_where_sent_then_removes_pii_with_a_receipt(s: &dyn Store) {
    let out = s
        .ingest(&[upsert("m1", "ada", "Ada", "2026-11-23T10:00:00Z")])
        .await
        .unwrap();
    let IngestOutcome::Applied { subject_id, .. } = &out[0] else {
        panic!()
    };
    assert_eq!(deliver_all(s, ActionKind::Upsert).await.len(), 2);
    let now = store::now_ms();
    assert!(
        s.request_erasure(subject_id, &["crm".into()], now)
            .await
            .unwrap()
    );
    assert!(
        !s.request_erasure(subject_id, &["crm".into()], now)
            .await
            .unwrap(),
        "only once"
    );
    let state = s
        .load_subjects(std::slice::from_ref(subject_id))
        .await
        .unwrap()
        .remove(0);
    assert!(state.erasing && state.deleted);
    // Both destinations held the subject: both are asked, though only crm is enabled now.
    assert!(
        s.complete_erasures(now, 86_400_000)
            .await
            .unwrap()
            .is_empty(),
        "not before the deletes"
    );
    let mut asked = deliver_all(s, ActionKind::Delete).await;
    asked.sort();
    assert_eq!(asked, vec!["cdp".to_string(), "crm".to_string()]);
    let receipts = s
        .complete_erasures(store::now_ms(), 86_400_000)
        .await
        .unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].confirmed.len(), 2);
    assert!(receipts[0].unconfirmed.is_empty());
    let report = s.subject_report(subject_id).await.unwrap().unwrap();
    assert_eq!(report.profile, json!({}), "no PII left");
    assert!(report.erased_at.is_some());
    assert!(report.deliveries.iter().all(|d| d.detail.is_none()));
    assert_eq!(report.erasure_receipt.as_ref(), Some(&receipts[0]));
    // The source's id is detached: a new event makes a new subject.
    let again = s
        .ingest(&[upsert("m2", "ada", "Ada", "2026-11-23T11:00:00Z")])
        .await
        .unwrap();
    let IngestOutcome::Applied {
        subject_id: new_id, ..
    } = &again[0]
    else {
        panic!("{again:?}")
    };
    assert_ne!(new_id, subject_id);
}

async fn reports_hold_consent_history_with_evidence(s: &dyn Store) {
    let mut e = event(
        "profile.upserted",
        "ada",
        "Ada",
        json!({"marketing_email": "granted"}),
        "2026-11-23T10:00:00Z",
    );
    e.evidence = Some(json!({"form": "signup-v2", "policy": "2026-09"}));
    let out = s.ingest(&[item("m1", e, &["crm"])]).await.unwrap();
    let IngestOutcome::Applied { subject_id, .. } = &out[0] else {
        panic!()
    };
    let w = event(
        "consent.updated",
        "ada",
        "",
        json!({"marketing_email": "denied"}),
        "2026-11-23T10:05:00Z",
    );
    s.ingest(&[item("m2", w, &["crm"])]).await.unwrap();
    let report = s.subject_report(subject_id).await.unwrap().unwrap();
    assert_eq!(report.consent.len(), 1);
    assert_eq!(report.consent[0].state, "denied");
    assert_eq!(report.consent[0].version, 2);
    let history = &report.consent_history;
    assert_eq!(history.len(), 2);
    assert_eq!(
        (
            history[0].previous_state.as_deref(),
            history[0].new_state.as_str()
        ),
        (None, "granted")
    );
    assert_eq!(
        history[0].evidence,
        Some(json!({"form": "signup-v2", "policy": "2026-09"}))
    );
    assert_eq!(
        (
            history[1].previous_state.as_deref(),
            history[1].new_state.as_str()
        ),
        (Some("granted"), "denied")
    );
    assert_eq!(report.changes.len(), 2);
}

async fn brand_consent_and_membership_are_kept(s: &dyn Store) {
    let mut e = event(
        "profile.upserted",
        "ada",
        "Ada",
        json!({"marketing_email": "granted"}),
        "2026-11-23T10:00:00Z",
    );
    e.brands = vec!["acme".into()];
    e.brand_consent.insert(
        "acme".into(),
        [(
            "marketing_email".to_string(),
            hub::event::ConsentState::Denied,
        )]
        .into(),
    );
    let out = s.ingest(&[item("m1", e, &["crm"])]).await.unwrap();
    let IngestOutcome::Applied { subject_id, .. } = &out[0] else {
        panic!()
    };
    let mut later = event(
        "profile.upserted",
        "ada",
        "Ada",
        json!({}),
        "2026-11-23T10:01:00Z",
    );
    later.brands = vec!["globex".into()];
    s.ingest(&[item("m2", later, &["crm"])]).await.unwrap();
    let subject = s
        .load_subjects(std::slice::from_ref(subject_id))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        hub::event::profile_brands(&subject.profile),
        vec!["acme", "globex"]
    );
    assert!(subject.granted("marketing_email", None));
    assert!(
        !subject.granted("marketing_email", Some("acme")),
        "the brand's own answer wins"
    );
    assert!(
        subject.granted("marketing_email", Some("globex")),
        "else the global one"
    );
}

async fn attempts_past_retention_are_pruned(s: &dyn Store) {
    s.ingest(&[upsert("m1", "ada", "Ada", "2026-11-23T10:00:00Z")])
        .await
        .unwrap();
    deliver_all(s, ActionKind::Upsert).await;
    assert_eq!(s.stats().await.unwrap().attempts, 2);
    assert_eq!(
        s.prune_attempts(store::now_ms() - 60_000).await.unwrap(),
        0,
        "recent attempts stay"
    );
    assert_eq!(s.prune_attempts(store::now_ms() + 1).await.unwrap(), 2);
    assert_eq!(s.stats().await.unwrap().attempts, 0);
}

async fn a_deleted_profile_reaches_every_destination_that_had_it(s: &dyn Store) {
    s.ingest(&[upsert("m1", "ada", "Ada", "2026-11-23T10:00:00Z")])
        .await
        .unwrap();
    assert_eq!(deliver_all(s, ActionKind::Upsert).await.len(), 2);
    // `cdp` has since been disabled: the delete event fans out to `crm` only...
    let delete = event(
        "profile.deleted",
        "ada",
        "",
        json!({}),
        "2026-11-23T10:05:00Z",
    );
    s.ingest(&[item("m2", delete, &["crm"])]).await.unwrap();
    // ...yet the erasure must reach both, since both hold the subject.
    let mut asked = deliver_all(s, ActionKind::Delete).await;
    asked.sort();
    assert_eq!(asked, vec!["cdp".to_string(), "crm".to_string()]);
}

async fn ingest_for(s: &dyn Store, msg: &str, ext: &str, at: &str) -> String {
    let out = s
        .ingest(&[item(
            msg,
            event("profile.upserted", ext, ext, json!({}), at),
            &["crm"],
        )])
        .await
        .unwrap();
    match &out[0] {
        IngestOutcome::Applied { subject_id, .. } => subject_id.clone(),
        other => panic!("{other:?}"),
    }
}

async fn one_delivery_per_destination_and_subject_at_a_time(s: &dyn Store) {
    let ada = ingest_for(s, "m1", "ada", "2026-11-23T10:00:00Z").await;
    ingest_for(s, "m2", "bob", "2026-11-23T10:00:00Z").await;
    let running = s.claim("crm", 10, LEASE, ClaimMode::Deliver).await.unwrap();
    assert_eq!(running.len(), 2);
    ingest_for(s, "m3", "ada", "2026-11-23T10:00:01Z").await;
    assert!(
        s.claim("crm", 10, LEASE, ClaimMode::Deliver)
            .await
            .unwrap()
            .is_empty(),
        "ada's change waits: her delivery is in flight"
    );
    let ada_job = running
        .iter()
        .find(|j| j.subject_id == ada)
        .unwrap()
        .clone();
    assert_eq!(
        s.finish(&[delivered(ada_job, ActionKind::Upsert)])
            .await
            .unwrap(),
        1
    );
    let next = s.claim("crm", 10, LEASE, ClaimMode::Deliver).await.unwrap();
    assert_eq!(next.len(), 1, "then it goes, once");
    assert_eq!(next[0].subject_id, ada);
}

async fn a_late_finish_after_the_lease_changes_nothing(s: &dyn Store) {
    ingest_for(s, "m1", "ada", "2026-11-23T10:00:00Z").await;
    let lease = Duration::from_millis(200);
    let first = s
        .claim("crm", 10, lease, ClaimMode::Deliver)
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let second = s
        .claim("crm", 10, LEASE, ClaimMode::Deliver)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(first.id, second.id, "the same job, reclaimed");
    assert_ne!(first.lease_token, second.lease_token);
    assert_eq!(
        (first.attempt, second.attempt),
        (0, 1),
        "a call whose lease ran out may have landed: it counts as an attempt"
    );
    let late = s
        .finish(&[delivered(first, ActionKind::Upsert)])
        .await
        .unwrap();
    assert_eq!(late, 0, "the expired claim owns nothing");
    let stats = s.stats().await.unwrap();
    assert_eq!(
        (stats.running_jobs, stats.attempts),
        (1, 0),
        "the new claim is intact and no attempt was written"
    );
    let subject = s
        .load_subjects(std::slice::from_ref(&second.subject_id))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(subject.held_by("crm"), None);
    assert_eq!(
        s.finish(&[delivered(second, ActionKind::Upsert)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.stats().await.unwrap().attempts, 1);
}

async fn a_waiting_ticket_holds_its_pair_until_checked(s: &dyn Store) {
    let ada = ingest_for(s, "m1", "ada", "2026-11-23T10:00:00Z").await;
    let job = s
        .claim("crm", 10, LEASE, ClaimMode::Deliver)
        .await
        .unwrap()
        .remove(0);
    let check_after = Duration::from_millis(300);
    let wait = Finished {
        outcome: AttemptOutcome::Accepted,
        next: NextStep::Wait {
            ticket: "vendor-job-1".into(),
            item: TicketItem {
                action: ActionKind::Delete,
                delivery_id: "msg_1".into(),
                identity: Default::default(),
                record_id: Some("r-1".into()),
            },
            after: check_after,
        },
        ..delivered(job, ActionKind::Delete)
    };
    let wait = Finished {
        holding: None,
        ..wait
    };
    s.finish(&[wait]).await.unwrap();
    assert_eq!(s.stats().await.unwrap().waiting_jobs, 1);
    ingest_for(s, "m2", "ada", "2026-11-23T10:00:01Z").await;
    assert!(
        s.claim("crm", 10, LEASE, ClaimMode::Deliver)
            .await
            .unwrap()
            .is_empty(),
        "a waiting vendor job holds the pair"
    );
    assert!(
        s.claim_tickets("crm", 10, LEASE).await.unwrap().is_empty(),
        "not due yet"
    );
    tokio::time::sleep(check_after + Duration::from_millis(50)).await;
    let checked = s.claim_tickets("crm", 10, LEASE).await.unwrap();
    assert_eq!(checked.len(), 1);
    let ticket = checked[0]
        .ticket
        .clone()
        .expect("the ticket travels with the job");
    assert_eq!(ticket.ticket, "vendor-job-1");
    assert_eq!(ticket.item.record_id.as_deref(), Some("r-1"));
    assert!(
        s.claim_tickets("crm", 10, LEASE).await.unwrap().is_empty(),
        "leased"
    );
    let confirmed = delivered(checked[0].clone(), ActionKind::Delete);
    assert_eq!(s.finish(&[confirmed]).await.unwrap(), 1);
    let subject = s
        .load_subjects(std::slice::from_ref(&ada))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(subject.held_by("crm"), Some(Held::Deleted));
    assert_eq!(
        s.claim("crm", 10, LEASE, ClaimMode::Deliver)
            .await
            .unwrap()
            .len(),
        1,
        "the pair is free"
    );
}

async fn erasure_waits_for_deliveries_in_flight(s: &dyn Store) {
    let ada = ingest_for(s, "m1", "ada", "2026-11-23T10:00:00Z").await;
    assert_eq!(
        deliver_all(s, ActionKind::Upsert).await,
        vec!["crm".to_string()]
    );
    ingest_for(s, "m2", "ada", "2026-11-23T10:00:01Z").await;
    // An upsert is in flight when the erasure arrives.
    let in_flight = s
        .claim("crm", 10, LEASE, ClaimMode::Deliver)
        .await
        .unwrap()
        .remove(0);
    assert!(
        s.request_erasure(&ada, &["crm".into()], store::now_ms())
            .await
            .unwrap()
    );
    let day = 86_400_000;
    assert!(
        s.complete_erasures(store::now_ms(), day)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.claim("crm", 10, LEASE, ClaimMode::Deliver)
            .await
            .unwrap()
            .is_empty(),
        "the delete waits for the upsert"
    );
    s.finish(&[delivered(in_flight, ActionKind::Upsert)])
        .await
        .unwrap();
    assert!(
        s.complete_erasures(store::now_ms(), day)
            .await
            .unwrap()
            .is_empty(),
        "the upsert landed: data is held again"
    );
    assert_eq!(
        deliver_all(s, ActionKind::Delete).await,
        vec!["crm".to_string()]
    );
    let receipts = s.complete_erasures(store::now_ms(), day).await.unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].confirmed[0].0, "crm");
    assert!(
        s.complete_erasures(store::now_ms(), day)
            .await
            .unwrap()
            .is_empty(),
        "one receipt"
    );
}

async fn destination_state_is_shared_and_probes_are_taken_once(s: &dyn Store) {
    assert_eq!(
        s.destination_state("crm").await.unwrap().status(),
        DestinationStatus::Active
    );
    let probe_in = Duration::from_millis(300);
    s.pause_destination(
        "crm",
        PausedBy::Vendor,
        "credentials refused (HTTP 401)",
        Some(probe_in),
    )
    .await
    .unwrap();
    let state = s.destination_state("crm").await.unwrap();
    assert_eq!(state.status(), DestinationStatus::Paused);
    assert_eq!(state.pause.as_ref().unwrap().by, PausedBy::Vendor);
    assert!(state.probe_in().unwrap() > Duration::ZERO);
    assert!(!s.take_probe("crm", probe_in).await.unwrap(), "not due yet");
    tokio::time::sleep(probe_in + Duration::from_millis(50)).await;
    let interval = Duration::from_secs(60);
    assert!(s.take_probe("crm", interval).await.unwrap());
    assert!(
        !s.take_probe("crm", interval).await.unwrap(),
        "one probe per interval"
    );
    // An admin's pause wins over the vendor's and is never probed.
    s.pause_destination("crm", PausedBy::Admin, "maintenance", None)
        .await
        .unwrap();
    s.pause_destination("crm", PausedBy::Vendor, "401", Some(Duration::ZERO))
        .await
        .unwrap();
    let state = s.destination_state("crm").await.unwrap();
    assert_eq!(state.pause.as_ref().unwrap().by, PausedBy::Admin);
    assert_eq!(state.probe_in(), None);
    assert!(s.resume_destination("crm").await.unwrap());
    assert!(
        !s.resume_destination("crm").await.unwrap(),
        "not paused any more"
    );
    assert_eq!(
        s.destination_state("crm").await.unwrap().status(),
        DestinationStatus::Active
    );
    let wait = Duration::from_millis(400);
    s.throttle_destination("crm", wait, "429").await.unwrap();
    s.throttle_destination("crm", Duration::from_millis(10), "429")
        .await
        .unwrap();
    let state = s.destination_state("crm").await.unwrap();
    assert_eq!(state.status(), DestinationStatus::Throttled);
    assert!(
        state.throttle_left().unwrap() > Duration::from_millis(200),
        "a shorter throttle does not end a longer one"
    );
    eventually("the throttle ends", || async {
        s.destination_state("crm").await.unwrap().status() == DestinationStatus::Active
    })
    .await;
}

async fn shared_rate_limit_spaces_reserved_calls(s: &dyn Store) {
    let step = Duration::from_millis(100);
    let first = s.reserve_calls("crm", 5, step).await.unwrap();
    assert_eq!(first.len(), 5);
    assert!(first[0] <= Duration::from_millis(20), "{first:?}");
    for pair in first.windows(2) {
        let gap = pair[1].saturating_sub(pair[0]);
        assert!(
            gap >= Duration::from_millis(99) && gap <= Duration::from_millis(101),
            "{first:?}"
        );
    }
    // Another process reserving now gets the times after these.
    let next = s.reserve_calls("crm", 2, step).await.unwrap();
    assert!(next[0] >= Duration::from_millis(450), "{next:?}");
    // Other destinations have their own schedule.
    let other = s.reserve_calls("cdp", 1, step).await.unwrap();
    assert!(other[0] <= Duration::from_millis(20), "{other:?}");
}

async fn destination_reports_count_queue_and_outcomes(s: &dyn Store) {
    ingest_for(s, "m1", "ada", "2026-11-23T10:00:00Z").await;
    ingest_for(s, "m2", "bob", "2026-11-23T10:00:00Z").await;
    let jobs = s.claim("crm", 1, LEASE, ClaimMode::Deliver).await.unwrap();
    s.finish(&[result(
        jobs[0].clone(),
        AttemptOutcome::Dead,
        NextStep::DeadLetter,
    )])
    .await
    .unwrap();
    let reports = s
        .destination_reports(&["crm".to_string(), "cdp".to_string()])
        .await
        .unwrap();
    let crm = &reports[0];
    assert_eq!((crm.pending, crm.running, crm.failed_last_hour), (1, 0, 1));
    assert!(crm.oldest_pending_ms.is_some());
    assert_eq!(crm.last_error.as_ref().unwrap().status_code, Some(503));
    assert_eq!(reports[1].pending, 0);
    assert_eq!(reports[1].state, DestinationStatus::Active);
    deliver_all(s, ActionKind::Upsert).await;
    let crm = s
        .destination_reports(&["crm".to_string()])
        .await
        .unwrap()
        .remove(0);
    assert_eq!((crm.pending, crm.delivered_last_hour), (0, 1));
}

async fn claims_hold_back_while_paused_or_throttled(s: &dyn Store) {
    ingest_for(s, "m1", "ada", "2026-11-23T10:00:00Z").await;
    s.pause_destination("crm", PausedBy::Admin, "maintenance", None)
        .await
        .unwrap();
    assert!(
        s.claim("crm", 10, LEASE, ClaimMode::Deliver)
            .await
            .unwrap()
            .is_empty(),
        "nothing is claimed while paused"
    );
    let probe = s.claim("crm", 1, LEASE, ClaimMode::Probe).await.unwrap();
    assert_eq!(probe.len(), 1, "a probe takes one job");
    s.finish(&[Finished {
        holding: None,
        ..result(
            probe[0].clone(),
            AttemptOutcome::Paused,
            NextStep::Retry {
                after: Duration::ZERO,
                counted: false,
            },
        )
    }])
    .await
    .unwrap();
    s.resume_destination("crm").await.unwrap();
    s.throttle_destination("crm", Duration::from_secs(60), "429")
        .await
        .unwrap();
    assert!(
        s.claim("crm", 10, LEASE, ClaimMode::Deliver)
            .await
            .unwrap()
            .is_empty(),
        "nothing is claimed while throttled"
    );
    let job = s.claim("cdp", 10, LEASE, ClaimMode::Deliver).await.unwrap();
    assert!(
        job.is_empty(),
        "cdp has no jobs here; its state is its own anyway"
    );
}
