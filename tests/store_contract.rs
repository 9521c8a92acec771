//! The `Store` contract, run against SQLite and (when HUB_TEST_DATABASE_URL is
//! set) PostgreSQL, each test on a fresh database.

use std::sync::Arc;

use hub::event::CanonicalEvent;
use hub::store::{
    self, AttemptOutcome, IngestItem, IngestOutcome, JobReason, JobResult, NextStep, Store,
    SubjectKey,
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

/// A fresh PostgreSQL database, or None when none is configured (outside CI).
async fn postgres() -> Option<Fixture> {
    if common::postgres_enabled() {
        Some(fixture(Backend::Postgres).await)
    } else {
        None
    }
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
            $(#[tokio::test] async fn $name() {
                if let Some(db) = super::postgres().await {
                    super::$name(db.store.as_ref()).await;
                }
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
    }
}

fn upsert(id: &str, ext: &str, given: &str, at: &str) -> IngestItem {
    item(
        id,
        event("profile.upserted", ext, given, json!({}), at),
        &["crm", "cdp"],
    )
}

fn result(job: hub::store::DeliveryJob, outcome: AttemptOutcome, next: NextStep) -> JobResult {
    JobResult {
        job,
        action: "upsert",
        outcome,
        status_code: Some(503),
        latency_ms: 3,
        detail: Some("HTTP 503".into()),
        next,
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
    let jobs = s.claim_jobs(100, store::now_ms(), 60_000).await.unwrap();
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
    let now = store::now_ms();
    let job = s.claim_jobs(10, now, 60_000).await.unwrap().remove(0);
    // Nothing else is due while it runs.
    assert!(s.claim_jobs(10, now, 60_000).await.unwrap().is_empty());
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
    let retry_at = now + 5_000;
    s.finish_jobs(
        &[result(
            job.clone(),
            AttemptOutcome::Retry,
            NextStep::RetryAt(retry_at),
        )],
        now,
    )
    .await
    .unwrap();
    let stats = s.stats().await.unwrap();
    assert_eq!(
        (stats.pending_jobs, stats.running_jobs, stats.attempts),
        (1, 0, 1),
        "merged into one pending job"
    );
    assert!(
        s.claim_jobs(10, now + 4_000, 60_000)
            .await
            .unwrap()
            .is_empty(),
        "the backoff holds"
    );
    let again = s.claim_jobs(10, retry_at, 60_000).await.unwrap();
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
    let jobs = s.claim_jobs(10, now, 60_000).await.unwrap();
    let results: Vec<JobResult> = jobs
        .into_iter()
        .map(|j| result(j, AttemptOutcome::Dead, NextStep::DeadLetter))
        .collect();
    s.finish_jobs(&results, now).await.unwrap();
    assert_eq!(s.dead_letters(None).await.unwrap().len(), 2);
    assert_eq!(s.dead_letters(Some("crm")).await.unwrap().len(), 1);
    assert_eq!(s.stats().await.unwrap().pending_jobs, 0);
    assert_eq!(
        s.replay_dead_letters(Some("crm"), None, now).await.unwrap(),
        1
    );
    assert_eq!(s.dead_letters(None).await.unwrap().len(), 1);
    let jobs = s.claim_jobs(10, now, 60_000).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].destination.as_str(), jobs[0].reason.as_str()),
        ("crm", JobReason::Replay.as_str())
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
    let now = store::now_ms();
    assert_eq!(s.claim_jobs(10, now, 1_000).await.unwrap().len(), 2);
    assert!(s.claim_jobs(10, now + 500, 1_000).await.unwrap().is_empty());
    assert_eq!(
        s.claim_jobs(10, now + 1_500, 1_000).await.unwrap().len(),
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
    let jobs = s.claim_jobs(10, now, 60_000).await.unwrap();
    let subject_id = jobs[0].subject_id.clone();
    let results: Vec<JobResult> = jobs
        .into_iter()
        .map(|j| {
            let delivered = j.destination == "crm";
            JobResult {
                action: "upsert",
                outcome: if delivered {
                    AttemptOutcome::Delivered
                } else {
                    AttemptOutcome::Suppressed
                },
                ..result(j, AttemptOutcome::Delivered, NextStep::Done)
            }
        })
        .collect();
    s.finish_jobs(&results, now).await.unwrap();
    let subject = s
        .load_subjects(std::slice::from_ref(&subject_id))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(subject.received.get("crm"), Some(&Held::Sent));
    assert_eq!(
        subject.received.get("cdp"),
        None,
        "a suppressed attempt sends nothing"
    );
    s.enqueue("crm", &subject_id, JobReason::Change, now)
        .await
        .unwrap();
    let job = s.claim_jobs(10, now, 60_000).await.unwrap().remove(0);
    let withdrawn = JobResult {
        action: "suppress",
        ..result(job, AttemptOutcome::Delivered, NextStep::Done)
    };
    s.finish_jobs(&[withdrawn], now).await.unwrap();
    let subject = s
        .load_subjects(std::slice::from_ref(&subject_id))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(subject.received.get("crm"), Some(&Held::Withdrawn));
}

/// Delivers every due job with the action the engine would choose.
async fn deliver_all(s: &dyn Store, action: &'static str) -> Vec<String> {
    let now = store::now_ms();
    let jobs = s.claim_jobs(100, now, 60_000).await.unwrap();
    let names = jobs.iter().map(|j| j.destination.clone()).collect();
    let results: Vec<JobResult> = jobs
        .into_iter()
        .map(|j| JobResult {
            action,
            ..result(j, AttemptOutcome::Delivered, NextStep::Done)
        })
        .collect();
    s.finish_jobs(&results, now).await.unwrap();
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
    assert_eq!(deliver_all(s, "upsert").await.len(), 2);
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
    let mut asked = deliver_all(s, "delete").await;
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
    deliver_all(s, "upsert").await;
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
    assert_eq!(deliver_all(s, "upsert").await.len(), 2);
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
    let mut asked = deliver_all(s, "delete").await;
    asked.sort();
    assert_eq!(asked, vec!["cdp".to_string(), "crm".to_string()]);
}
