//! Admin surfaces: `hub mappings check`, hot reload of mapping files in a
//! running hub (bad files refused, good edits picked up), graceful shutdown.

mod common;

use std::time::{Duration, Instant};

use common::*;

backend_tests!(
    hot_reload_keeps_good_mapping_and_picks_up_edits,
    sigterm_exits_zero_promptly,
    sigterm_finishes_in_flight_delivery,
);

fn broken(yaml: &str) -> String {
    // An unknown transform on line 14, column 23 (`transform: [trim, lowercase]` of email).
    let out = yaml.replace(
        "transform: [trim, lowercase]\n",
        "transform: [trim, frobnicate]\n",
    );
    assert_ne!(out, yaml);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_check_reports_file_line_col() {
    let sink = Sink::start().await;
    let hub = TestHub::builder(Backend::Sqlite)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    // The good directory passes.
    let out = hub.cli(&["mappings", "check"]).await;
    assert!(out.status.success(), "{out:?}");

    let dir = hub.dir.path().join("broken-maps");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("crm.yaml"),
        broken(&crm_mapping("crm", &sink.url())),
    )
    .unwrap();
    std::fs::write(
        dir.join("syntax.yaml"),
        "destination: x\nconnector: webhook\nfields: [unclosed\n",
    )
    .unwrap();
    let out = hub.cli(&["mappings", "check", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let crm = dir.join("crm.yaml").display().to_string();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{crm}:")))
        .unwrap_or_else(|| panic!("no error line for {crm}: {out:?}"));
    // file:line:col: key: reason, pointing at the bad transform.
    let rest = &line[crm.len() + 1..];
    let mut parts = rest.splitn(3, ':');
    let line_no: usize = parts.next().unwrap().parse().expect("line number");
    let col: usize = parts.next().unwrap().parse().expect("column");
    assert_eq!((line_no, col), (14, 23), "points at `frobnicate`: {line}");
    assert!(line.contains("transform"), "{line}");
    assert!(line.contains("frobnicate"), "{line}");
    let syntax = dir.join("syntax.yaml").display().to_string();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with(&format!("{syntax}:4:"))),
        "YAML syntax error located: {out:?}"
    );
}

async fn hot_reload_keeps_good_mapping_and_picks_up_edits(backend: Backend) {
    let sink = Sink::start().await;
    let good = crm_mapping("crm", &sink.url());
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", good.clone())
        .start()
        .await;
    let t0 = now_utc();

    hub.send_ok(&profile_event("cust-a", t0)).await;
    let got = sink.wait_for(1, PATIENCE).await;
    assert_eq!(got[0].json()["data"]["first_name"], "Ada");

    // A broken edit (which would also rename the field) is refused...
    let bad = broken(&crm_mapping_with("crm", &sink.url(), "given_name"));
    hub.write_mapping("crm.yaml", &bad);
    hub.wait_for_log("previous version kept", 1).await;
    hub.wait_for_log("mappings reloaded", 1).await;
    // ...and the old mapping keeps delivering.
    hub.send_ok(&profile_event("cust-b", t0)).await;
    let got = sink.wait_for(2, PATIENCE).await;
    let data = &got[1].json()["data"];
    assert_eq!(data["first_name"], "Ada", "old mapping still live: {data}");
    assert_eq!(data["email"], "ada@example.com");
    assert!(data.get("given_name").is_none(), "{data}");

    // A good edit is picked up.
    let renamed = crm_mapping_with("crm", &sink.url(), "given_name");
    hub.write_mapping("crm.yaml", &renamed);
    hub.wait_for_log("mappings reloaded", 2).await;
    hub.send_ok(&profile_event("cust-c", t0)).await;
    let got = sink.wait_for(3, PATIENCE).await;
    let data = &got[2].json()["data"];
    assert_eq!(data["given_name"], "Ada", "renamed field: {data}");
    assert!(data.get("first_name").is_none(), "{data}");
    got[2].verify(&destination_secret()).unwrap();
}

async fn sigterm_exits_zero_promptly(backend: Backend) {
    let sink = Sink::start().await;
    let mut hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    hub.send_ok(&profile_event("cust-term", now_utc())).await;
    sink.wait_for(1, PATIENCE).await;
    let url = hub.url.clone();
    let started = Instant::now();
    let status = hub.terminate(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        hub.log_text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(
        hub.http.get(format!("{url}/healthz")).send().await.is_err(),
        "nothing listens after exit"
    );
    let log = std::fs::read_to_string(&hub.log).unwrap();
    assert!(
        log.contains("stopped"),
        "clean stop logged\n{}",
        hub.log_text()
    );
}

/// A delivery in flight when SIGTERM arrives completes and is recorded.
async fn sigterm_finishes_in_flight_delivery(backend: Backend) {
    let sink = Sink::start().await;
    sink.script([Reply::Hang(Duration::from_millis(1500))]);
    let mut hub = TestHub::builder(backend)
        .delivery("http_timeout", "\"5s\"")
        .delivery("lease", "\"10s\"")
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let reply = hub.send_ok(&profile_event("cust-drain", now_utc())).await;
    let subject = reply["subject"].as_str().unwrap().to_string();
    sink.wait_for(1, PATIENCE).await;
    let status = hub.terminate(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        hub.log_text()
    );
    // The hub is gone; its last attempt is on record.
    let list = hub.deliveries(Some(&subject)).await;
    assert_eq!(list.len(), 1, "{list:#?}\n{}", hub.log_text());
    assert_eq!(list[0]["outcome"], "delivered", "{list:#?}");
    assert_eq!(sink.received().len(), 1);
}
