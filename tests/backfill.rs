//! Backfills: batches walked by subject id with a cursor and lease in the
//! database (both databases), and a million subjects on SQLite, the
//! `hub backfill` process SIGKILLed midway and resumed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hub::store::{self, BackfillClaim, BackfillState, BackfillStep, JobReason, Store};

mod common;

use common::{ADMIN_TOKEN, Backend, PATIENCE, Sink, TestHub};

backend_tests!(
    backfill_resumes_after_its_last_committed_batch,
    admin_backfill_brings_a_new_destination_up_to_date,
);

/// The hub id `hub dev seed` gives subject N.
fn seed_id(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Reads one integer with a query straight from the database.
async fn count(url: &str, sql: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url)
        .await
        .expect("open the database");
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pool.close().await;
    n
}

async fn claim_when_free(s: &dyn Store, lease: Duration) -> (String, bool, i64) {
    let deadline = Instant::now() + common::PATIENCE;
    loop {
        match s.claim_backfill("crm", false, lease).await.unwrap() {
            BackfillClaim::Taken {
                status,
                token,
                resumed,
            } => return (token, resumed, status.queued),
            BackfillClaim::Held { .. } => {
                assert!(Instant::now() < deadline, "the lease never ran out");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn backfill_resumes_after_its_last_committed_batch(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = common::Db::create(backend, dir.path()).await;
    let store = store::connect(&db.url).await.unwrap();
    let s = store.as_ref();
    assert_eq!(s.seed_subjects(2500).await.unwrap(), 2500);
    assert_eq!(
        s.seed_subjects(2500).await.unwrap(),
        0,
        "seeding is idempotent"
    );
    // A tombstoned subject is not backfilled; a pair with a pending job
    // keeps that one job.
    assert!(s.request_erasure(&seed_id(7), &[], 1).await.unwrap());
    assert!(
        s.enqueue("crm", &seed_id(1), JobReason::Change, 1)
            .await
            .unwrap()
    );

    let lease = Duration::from_secs(1);
    let BackfillClaim::Taken {
        status,
        token,
        resumed,
    } = s.claim_backfill("crm", false, lease).await.unwrap()
    else {
        panic!("a fresh destination's backfill is free");
    };
    assert!(!resumed);
    assert_eq!((status.total, status.queued), (2499, 0));
    for expected in [1000, 2000] {
        match s.backfill_step("crm", &token, 1000, lease).await.unwrap() {
            BackfillStep::Queued { subjects, status } => {
                assert_eq!(subjects, 1000);
                assert_eq!(status.queued, expected);
            }
            other => panic!("expected a batch, got {other:?}"),
        }
    }
    // The runner dies here (no release): its lease holds the destination...
    assert!(matches!(
        s.claim_backfill("crm", false, lease).await.unwrap(),
        BackfillClaim::Held { .. }
    ));
    // ...until it runs out; the next runner continues after the cursor.
    let (token2, resumed, queued) = claim_when_free(s, Duration::from_secs(30)).await;
    assert!(resumed, "an unfinished run is resumed, not restarted");
    assert_eq!(queued, 2000);
    assert_eq!(
        s.backfill_step("crm", &token, 1000, lease).await.unwrap(),
        BackfillStep::LeaseLost,
        "the old runner's batches are fenced off"
    );
    let step = s
        .backfill_step("crm", &token2, 1000, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(matches!(step, BackfillStep::Queued { subjects: 499, .. }));
    let BackfillStep::Finished(done) = s
        .backfill_step("crm", &token2, 1000, Duration::from_secs(30))
        .await
        .unwrap()
    else {
        panic!("nothing was left");
    };
    assert_eq!((done.state, done.queued), (BackfillState::Done, 2499));

    let jobs = count(
        &db.url,
        "SELECT COUNT(*) FROM delivery_jobs WHERE destination = 'crm'",
    )
    .await;
    assert_eq!(jobs, 2499, "one job per live subject, no duplicates");
    let distinct = count(
        &db.url,
        "SELECT COUNT(DISTINCT subject_id) FROM delivery_jobs WHERE destination = 'crm'",
    )
    .await;
    assert_eq!(distinct, 2499);
    let erased = format!(
        "SELECT COUNT(*) FROM delivery_jobs WHERE subject_id = '{}'",
        seed_id(7)
    );
    assert_eq!(count(&db.url, &erased).await, 0, "no job for a tombstone");
    let kept = format!(
        "SELECT COUNT(*) FROM delivery_jobs WHERE subject_id = '{}' AND reason = 'change'",
        seed_id(1)
    );
    assert_eq!(count(&db.url, &kept).await, 1, "the pending job was kept");
    let statuses = s.backfill_statuses(&["crm".into(), "other".into()]).await;
    assert_eq!(statuses.unwrap(), vec![done]);

    // A finished run is not resumed: the next one starts from the first subject.
    let BackfillClaim::Taken {
        status, resumed, ..
    } = s.claim_backfill("crm", false, lease).await.unwrap()
    else {
        panic!("a finished backfill holds no lease");
    };
    assert!(!resumed);
    assert_eq!((status.state, status.queued), (BackfillState::Running, 0));
}

/// The highest resident set size so far of a live process (VmHWM), bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A `hub backfill` run: its stderr lines on a channel, its peak RSS
/// sampled until it exits.
struct Run {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
}

impl Run {
    fn start(dir: &std::path::Path, db_url: &str) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(["backfill", "--destination", "crm", "--lease", "2s"])
            .current_dir(dir)
            .env("HUB_DATABASE_URL", db_url)
            .env("HUB_MAPPINGS", dir.join("mappings"))
            .env("HUB_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hub backfill");
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                println!("  backfill: {line}");
                let _ = tx.send(line);
            }
        });
        let peak = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (pid, p, d) = (child.id(), peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                if let Some(rss) = peak_rss(pid) {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Run {
            child,
            lines,
            peak,
            done,
        }
    }

    /// The next stderr line, within the test's patience.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("a progress line")
    }

    fn peak_mib(&self) -> f64 {
        self.peak.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `backfill crm: 300000 of 1000000 subjects queued (30%)` -> 300000.
fn queued_in(line: &str) -> Option<i64> {
    let rest = line.strip_prefix("backfill crm: ")?;
    let (n, tail) = rest.split_once(" of ")?;
    tail.contains("subjects queued").then(|| n.parse().ok())?
}

const MILLION: i64 = 1_000_000;
/// Peak resident memory a backfill may use, whatever the subject count.
const RSS_LIMIT_MIB: f64 = 200.0;

#[test]
fn million_subject_backfill_is_killed_resumed_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mappings")).unwrap();
    common::write_atomic(
        &dir.path().join("mappings/crm.yaml"),
        &common::crm_mapping("crm", "http://127.0.0.1:9/unused"),
    );
    let db_url = format!("sqlite://{}", dir.path().join("hub.db").display());
    let hub = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(args)
            .current_dir(dir.path())
            .env("HUB_DATABASE_URL", &db_url)
            .env("HUB_MAPPINGS", dir.path().join("mappings"))
            .env("HUB_LOG", "warn")
            .output()
            .expect("run hub");
        assert!(out.status.success(), "hub {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let began = Instant::now();
    assert_eq!(
        hub(&["dev", "seed", "--subjects", "1000000"]).trim(),
        "created 1000000 subject(s)"
    );
    println!("seeded 1,000,000 subjects in {:.1?}", began.elapsed());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sql = |q: &str| rt.block_on(count(&db_url, q));

    // First run: SIGKILL once it reports 30%.
    let first = Instant::now();
    let mut run = Run::start(dir.path(), &db_url);
    assert_eq!(run.line(), "backfill crm: 1000000 subjects to queue");
    loop {
        let line = run.line();
        if queued_in(&line).is_some_and(|n| n >= 300_000) {
            break;
        }
    }
    run.child.kill().expect("SIGKILL the backfill");
    run.child.wait().unwrap();
    let killed_peak = run.peak_mib();
    drop(run);
    let committed = sql("SELECT queued FROM backfills WHERE destination = 'crm'");
    let cursor_jobs = sql(
        "SELECT COUNT(*) FROM delivery_jobs WHERE destination = 'crm' \
         AND subject_id <= (SELECT last_subject_id FROM backfills WHERE destination = 'crm')",
    );
    let jobs = sql("SELECT COUNT(*) FROM delivery_jobs WHERE destination = 'crm'");
    println!(
        "killed after {:.1?}: {committed} subjects committed, {jobs} jobs",
        first.elapsed()
    );
    assert!(
        (300_000..MILLION).contains(&committed),
        "killed midway: {committed}"
    );
    assert_eq!(jobs, committed, "jobs and cursor committed together");
    assert_eq!(cursor_jobs, committed, "no job past the cursor");

    // Second run: resumes after the last committed batch and completes.
    let second = Instant::now();
    let mut run = Run::start(dir.path(), &db_url);
    let mut line = run.line();
    while line.contains("another runner holds it") {
        line = run.line();
    }
    assert_eq!(
        line,
        format!("backfill crm: resuming after {committed} of 1000000 subjects")
    );
    let status = run.child.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut run.child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(status.success(), "resumed backfill: {status:?} {stdout}");
    assert_eq!(stdout.trim(), "queued 1000000 subject(s) for crm");
    let resumed_peak = run.peak_mib();
    drop(run);
    println!("resumed run finished in {:.1?}", second.elapsed());
    println!("peak RSS: killed run {killed_peak:.1} MiB, resumed run {resumed_peak:.1} MiB");

    assert_eq!(
        sql("SELECT COUNT(*) FROM delivery_jobs WHERE destination = 'crm' AND reason = 'backfill'"),
        MILLION
    );
    assert_eq!(
        sql("SELECT COUNT(DISTINCT subject_id) FROM delivery_jobs WHERE destination = 'crm'"),
        MILLION,
        "no duplicates"
    );
    assert_eq!(
        sql(
            "SELECT COUNT(*) FROM subjects s WHERE NOT EXISTS (SELECT 1 FROM delivery_jobs j \
             WHERE j.destination = 'crm' AND j.subject_id = s.id)"
        ),
        0,
        "no gaps"
    );
    for peak in [killed_peak, resumed_peak] {
        assert!(peak > 0.0, "RSS was sampled");
        assert!(peak < RSS_LIMIT_MIB, "peak RSS {peak:.1} MiB");
    }

    // `hub destinations` shows the finished backfill and what is left to deliver.
    let report: serde_json::Value = serde_json::from_str(&hub(&["destinations"])).unwrap();
    let crm = report
        .as_array()
        .and_then(|l| l.iter().find(|d| d["name"] == "crm"))
        .expect("crm in hub destinations");
    assert_eq!(crm["pending"], MILLION);
    assert_eq!(crm["backfill"]["state"], "done");
    assert_eq!(crm["backfill"]["queued"], MILLION);
    assert_eq!(crm["backfill"]["total"], MILLION);
}

/// `POST /admin/destinations/{name}/backfill` answers at once; the run goes
/// on in the hub, the driver delivers every subject, and `hub destinations`
/// shows the finished run.
async fn admin_backfill_brings_a_new_destination_up_to_date(backend: Backend) {
    let old = Sink::start().await;
    let new = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", common::crm_mapping("crm", &old.url()))
        .start()
        .await;
    for i in 0..3 {
        hub.send_ok(&common::profile_event(
            &format!("bf-{i}"),
            common::now_utc(),
        ))
        .await;
    }
    old.wait_for(3, PATIENCE).await;
    hub.write_mapping("crm2.yaml", &common::crm_mapping("crm2", &new.url()));
    let url = format!("{}/admin/destinations/crm2/backfill", hub.url);
    let deadline = Instant::now() + PATIENCE;
    let answer = loop {
        let r = hub
            .http
            .post(&url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        if r.status() != 404 {
            break r;
        }
        assert!(Instant::now() < deadline, "crm2 was never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(answer.status(), 202);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["backfill"]["state"], "running", "{body}");
    assert_eq!(body["backfill"]["total"], 3, "{body}");
    let got = new.wait_for(3, PATIENCE).await;
    let mut subjects: Vec<String> = got
        .iter()
        .map(|r| r.json()["subject"].to_string())
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(
        subjects.len(),
        3,
        "every subject reached the new destination"
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let out = hub.cli(&["destinations"]).await;
        let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let crm2 = list
            .as_array()
            .and_then(|l| l.iter().find(|d| d["name"] == "crm2"))
            .cloned()
            .unwrap_or_default();
        if crm2["backfill"]["state"] == "done" {
            assert_eq!(crm2["backfill"]["queued"], 3, "{crm2}");
            break;
        }
        assert!(Instant::now() < deadline, "{crm2}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
