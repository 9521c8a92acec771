//! Retention on both databases: history past its age goes, in bounded
//! batches; recent history and everything still needed stays (live jobs,
//! current state, unreplayed dead letters, erasure receipts, and the
//! consent ledger, which is an audit record).

use std::time::Duration;

use hub::config::{PrivacySettings, RetentionSettings};
use hub::housekeeping::{self, Upkeep};
use hub::store::{self, now_ms};

mod common;

use common::{Backend, PATIENCE, Sink, TestHub};

backend_tests!(
    prunes_history_past_retention_and_keeps_what_is_needed,
    a_serving_hub_prunes_on_its_own,
);

const DAY: i64 = 86_400_000;

/// Runs statements straight on the database (rows with chosen ages).
async fn exec(pool: &sqlx::AnyPool, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn count(pool: &sqlx::AnyPool, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    n
}

/// Rows of every kind, `n` of them `age` ms old, ids prefixed with `tag`.
async fn history(pool: &sqlx::AnyPool, tag: &str, n: usize, age: i64) {
    let at = now_ms() - age;
    for i in 0..n {
        let s = format!("{tag}-{i}");
        exec(pool, &format!(
            "INSERT INTO changes (subject_id, source, kind, message_id, attributes, occurred_at, received_at) \
             VALUES ('{s}', 'ciam', 'profile_upserted', 'm-{s}', '[]', {at}, {at})"
        )).await;
        exec(
            pool,
            &format!(
                "INSERT INTO inbound_messages (source, message_id, received_at) VALUES ('ciam', 'm-{s}', {at})"
            ),
        )
        .await;
        exec(pool, &format!(
            "INSERT INTO delivery_attempts (job_id, destination, subject_id, attempt, action, outcome, \
             status_code, latency_ms, detail, created_at) \
             VALUES ('j-{s}', 'crm', '{s}', 1, 'upsert', 'delivered', 200, 3, NULL, {at})"
        )).await;
        // A replayed dead letter goes with age; one never replayed stays.
        exec(pool, &format!(
            "INSERT INTO dead_letters (id, destination, subject_id, attempts, status_code, detail, created_at, replayed_at) \
             VALUES ('dr-{s}', 'crm', '{s}', 3, 400, 'refused', {at}, {at}), \
             ('dl-{s}', 'crm', '{s}', 3, 400, 'refused', {at}, NULL)"
        )).await;
        exec(pool, &format!(
            "INSERT INTO consent_ledger (subject_id, purpose, brand, previous_state, new_state, source, evidence, occurred_at, recorded_at) \
             VALUES ('{s}', 'marketing_email', '', NULL, 'granted', 'ciam', NULL, {at}, {at})"
        )).await;
        exec(pool, &format!(
            "INSERT INTO erasure_receipts (subject_id, requested_at, completed_at, confirmed, unconfirmed) \
             VALUES ('{s}', {at}, {at}, '[]', '[]')"
        )).await;
        // Live work, however old: a job waiting for its turn and one in flight.
        exec(pool, &format!(
            "INSERT INTO delivery_jobs (id, destination, subject_id, reason, status, attempt, not_before, locked_until, first_enqueued_at) \
             VALUES ('p-{s}', 'crm', '{s}', 'change', 'pending', 0, {at}, NULL, {at}), \
             ('r-{s}', 'crm', '{s}-r', 'change', 'running', 0, {at}, {at}, {at})"
        )).await;
    }
    // One count row per minute (destinations share minutes).
    let first_minute = at / 60_000;
    for m in 0..n as i64 {
        let minute = first_minute - m;
        exec(
            pool,
            &format!(
                "INSERT INTO destination_counts (destination, minute, delivered, failed) \
                 VALUES ('crm', {minute}, 1, 0), ('shop', {minute}, 2, 1)"
            ),
        )
        .await;
    }
}

const TABLES: [&str; 8] = [
    "changes",
    "inbound_messages",
    "delivery_attempts",
    "dead_letters",
    "consent_ledger",
    "erasure_receipts",
    "delivery_jobs",
    "destination_counts",
];

async fn counts(pool: &sqlx::AnyPool, tag: &str) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for t in TABLES {
        let key = match t {
            "inbound_messages" => "message_id",
            _ => "subject_id",
        };
        let n = if t == "destination_counts" {
            0
        } else {
            count(
                pool,
                &format!("SELECT COUNT(*) FROM {t} WHERE {key} LIKE '%{tag}-%'"),
            )
            .await
        };
        out.push((t, n));
    }
    out
}

async fn prunes_history_past_retention_and_keeps_what_is_needed(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = common::Db::create(backend, dir.path()).await;
    let store = store::connect(&db.url).await.unwrap();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();

    let upkeep = Upkeep {
        privacy: PrivacySettings {
            attempt_retention: Duration::from_secs(30 * 86_400),
            ..PrivacySettings::default()
        },
        retention: RetentionSettings {
            changes: Duration::from_secs(30 * 86_400),
            inbound_messages: Duration::from_secs(7 * 86_400),
            dead_letters: Duration::from_secs(30 * 86_400),
            destination_counts: Duration::from_secs(86_400),
            // Small batches: the pass must loop until nothing old is left.
            batch: 4,
            ..RetentionSettings::default()
        },
    };
    // 23 of each past every retention, 5 inside all of them.
    history(&pool, "old", 23, 40 * DAY).await;
    history(&pool, "new", 5, DAY / 2).await;
    let counts_before = count(&pool, "SELECT COUNT(*) FROM destination_counts").await;
    assert_eq!(counts_before, 2 * (23 + 5));

    let pruned = store
        .prune_history(
            &housekeeping::cutoffs(&upkeep, now_ms()),
            upkeep.retention.batch,
        )
        .await
        .unwrap();
    assert_eq!(pruned.changes, 23);
    assert_eq!(pruned.inbound_messages, 23);
    assert_eq!(pruned.attempts, 23);
    assert_eq!(pruned.dead_letters, 23, "only the replayed ones");
    assert_eq!(pruned.destination_counts, 2 * 23);

    let old = counts(&pool, "old").await;
    assert_eq!(
        old,
        vec![
            ("changes", 0),
            ("inbound_messages", 0),
            ("delivery_attempts", 0),
            ("dead_letters", 23),
            ("consent_ledger", 23),
            ("erasure_receipts", 23),
            ("delivery_jobs", 46),
            ("destination_counts", 0),
        ],
        "old history gone; ledger, receipts, live jobs, unreplayed dead letters kept"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NULL AND subject_id LIKE 'old-%'"
        )
        .await,
        23
    );
    let new = counts(&pool, "new").await;
    assert_eq!(
        new,
        vec![
            ("changes", 5),
            ("inbound_messages", 5),
            ("delivery_attempts", 5),
            ("dead_letters", 10),
            ("consent_ledger", 5),
            ("erasure_receipts", 5),
            ("delivery_jobs", 10),
            ("destination_counts", 0),
        ],
        "recent history stays"
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM destination_counts").await,
        2 * 5
    );

    // A second pass finds nothing more.
    let again = store
        .prune_history(&housekeeping::cutoffs(&upkeep, now_ms()), 4)
        .await
        .unwrap();
    assert_eq!(again.total(), 0);
    pool.close().await;
}

/// `hub serve` runs the passes itself: with second-long retention, changes
/// and attempts go soon after delivery; subjects and the ledger stay.
async fn a_serving_hub_prunes_on_its_own(backend: Backend) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", common::crm_mapping("crm", &sink.url()))
        .toml(
            "\n[privacy]\nattempt_retention = \"1s\"\n\
             \n[retention]\nchanges = \"1s\"\ninterval = \"1s\"\n",
        )
        .start()
        .await;
    for i in 0..3 {
        hub.send_ok(&common::profile_event(
            &format!("rt-{i}"),
            common::now_utc(),
        ))
        .await;
    }
    sink.wait_for(3, PATIENCE).await;
    let tables = ["changes", "delivery_attempts", "subjects", "consent_ledger"];
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let counts = hub.db.counts(&tables).await;
        let n = |t: &str| counts.iter().find(|c| c.0 == t).unwrap().1;
        if n("changes") == 0 && n("delivery_attempts") == 0 {
            assert_eq!(n("subjects"), 3);
            assert!(n("consent_ledger") >= 3, "{counts:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{counts:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
