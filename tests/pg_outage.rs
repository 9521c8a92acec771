//! PostgreSQL stopped for 8 s under webhook load and started again, on a
//! throwaway cluster of the test's own (`pg_createcluster`, trust auth, a
//! free port; the shared cluster on 5432 stays up): `/readyz` answers 503
//! within 2 s while it is down, writers get 503 with `Retry-After` within
//! the store timeout (default 5 s), the same hub process recovers once the
//! database is back, and every accepted change is delivered.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// A PostgreSQL cluster made for one test and dropped after it.
struct Cluster {
    version: String,
    name: String,
    port: u16,
}

fn pg_command(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} (PostgreSQL's server package, as root): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    fn create() -> Cluster {
        let mut versions: Vec<String> = std::fs::read_dir("/usr/lib/postgresql")
            .expect(
                "PostgreSQL server binaries in /usr/lib/postgresql (apt-get install postgresql)",
            )
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|v| v.chars().all(|c| c.is_ascii_digit()))
            .collect();
        versions.sort_by_key(|v| v.parse::<u32>().unwrap_or(0));
        let version = versions.pop().expect("a PostgreSQL version installed");
        let cluster = Cluster {
            version,
            name: format!("huboutage{}", std::process::id()),
            port: unused_addr().port(),
        };
        pg_command(
            "pg_createcluster",
            &[
                &cluster.version,
                &cluster.name,
                "-p",
                &cluster.port.to_string(),
                "--",
                "--auth=trust",
            ],
        );
        cluster.start();
        cluster
    }

    fn ctl(&self, action: &[&str]) {
        let mut args = vec!["--skip-systemctl-redirect", &self.version, &self.name];
        args.extend_from_slice(action);
        pg_command("pg_ctlcluster", &args);
    }

    fn start(&self) {
        self.ctl(&["start"]);
    }

    fn stop(&self) {
        self.ctl(&["stop", "-m", "fast"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster")
            .args([&self.version, &self.name, "--stop"])
            .output();
    }
}

/// `/readyz`'s status; it must answer within 2 s (with slack for the client).
async fn ready(hub: &TestHub) -> u16 {
    let started = Instant::now();
    let status = hub
        .http
        .get(format!("{}/readyz", hub.url))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "/readyz answered in {:?}",
        started.elapsed()
    );
    status
}

/// What the load saw: accepted subjects, 503s, the slowest answer.
#[derive(Default)]
struct Load {
    accepted: Vec<String>,
    refused: usize,
    slowest: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(hub_pg),
    ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant"
)]
async fn a_stopped_postgres_gets_bounded_503s_and_heals_without_a_restart_postgres() {
    const STORE_TIMEOUT: Duration = Duration::from_secs(5);
    let cluster = Cluster::create();
    let sink = Sink::start().await;
    let hub = Arc::new(
        TestHub::builder(Backend::Postgres)
            .database_url(cluster.url())
            .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
            .start()
            .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (hub, stop) = (hub.clone(), stop.clone());
        senders.spawn(async move {
            let mut load = Load::default();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let started = Instant::now();
                let r = hub
                    .webhook(&profile_event(&format!("w{worker}-{i}"), now_utc()))
                    .send()
                    .await;
                load.slowest = load.slowest.max(started.elapsed());
                match r.status {
                    202 => load
                        .accepted
                        .push(r.json["subject"].as_str().unwrap().to_string()),
                    503 => {
                        assert!(r.retry_after.is_some(), "a 503 says when to retry: {r:?}");
                        load.refused += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    other => panic!("a stopped database answered {other}: {r:?}"),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            load
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ready(&hub).await, 200);

    cluster.stop();
    let stopped = Instant::now();
    while ready(&hub).await != 503 {
        assert!(
            stopped.elapsed() < Duration::from_secs(2),
            "/readyz still not 503 {:?} after the stop",
            stopped.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unready_after = stopped.elapsed();
    assert!(
        unready_after < Duration::from_secs(2),
        "/readyz 503 only {unready_after:?} after the stop"
    );
    while stopped.elapsed() < Duration::from_secs(8) {
        assert_eq!(ready(&hub).await, 503, "down is down");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    cluster.start();
    let started = Instant::now();
    while ready(&hub).await != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "/readyz not 200 again 20 s after the start\n{}",
            hub.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_after = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut load = Load::default();
    while let Some(l) = senders.join_next().await {
        let l = l.unwrap();
        load.accepted.extend(l.accepted);
        load.refused += l.refused;
        load.slowest = load.slowest.max(l.slowest);
    }
    assert!(load.refused > 0, "writers saw the outage as 503s");
    assert!(
        load.slowest < STORE_TIMEOUT + Duration::from_millis(1500),
        "every answer within the store timeout: the slowest took {:?}",
        load.slowest
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: std::collections::HashSet<String> = sink.subjects().into_iter().collect();
        let missing = load.accepted.iter().filter(|s| !seen.contains(*s)).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} accepted change(s) never delivered\n{}",
            hub.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "postgres outage: /readyz 503 {:.2} s after the stop, 200 {:.2} s after the start; \
         {} accepted and delivered, {} refused with 503, slowest answer {:.2} s",
        unready_after.as_secs_f64(),
        ready_after.as_secs_f64(),
        load.accepted.len(),
        load.refused,
        load.slowest.as_secs_f64()
    );
}
