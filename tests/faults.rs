//! The hub heals by itself once a store fault is gone: a full disk under
//! SQLite (a tiny tmpfs filled up, then freed) gets 503s with Retry-After
//! and a 503 `/readyz` while it lasts, and 202s, a 200 `/readyz` and every
//! accepted change delivered after, without a restart.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A tmpfs mounted for the test, unmounted on drop.
struct TinyDisk {
    path: PathBuf,
}

impl TinyDisk {
    fn mount(dir: &Path, size: &str) -> TinyDisk {
        let path = dir.join("tiny");
        std::fs::create_dir_all(&path).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs (root, as on CI): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TinyDisk { path }
    }

    /// Writes a filler file until the filesystem is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0xa5u8; 64 * 1024];
        loop {
            if f.write_all(&block).is_err() {
                break;
            }
        }
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.sync_all();
        filler
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

async fn ready_status(hub: &TestHub) -> (u16, Value) {
    let started = Instant::now();
    let r = hub
        .http
        .get(format!("{}/readyz", hub.url))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "/readyz answered within 2 s (took {:?})",
        started.elapsed()
    );
    (status, body)
}

/// A profile event with a body of about 6 KB, so the database grows fast.
fn bulky(ext: &str) -> Value {
    let mut e = profile_event(ext, now_utc());
    e["subject"]["userName"] = json!(format!("{ext}@example.com"));
    e["subject"]["nickName"] = json!("n".repeat(6000));
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gets_503s_and_heals_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let disk = TinyDisk::mount(dir.path(), "24m");
    let sink = Sink::start().await;
    let hub = TestHub::builder(Backend::Sqlite)
        .database_url(format!("sqlite://{}", disk.path.join("hub.db").display()))
        .toml("[store]\ntimeout = \"3s\"")
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    let mut accepted: Vec<String> = Vec::new();
    for i in 0..20 {
        let r = hub.webhook(&bulky(&format!("before-{i}"))).send().await;
        assert_eq!(r.status, 202, "{r:?}");
        accepted.push(r.json["subject"].as_str().unwrap().to_string());
    }
    assert_eq!(ready_status(&hub).await.0, 200);

    // Full: keep sending until the store refuses; each answer is bounded.
    let filler = disk.fill();
    let mut refused = 0;
    for i in 0..3000 {
        let started = Instant::now();
        let r = hub.webhook(&bulky(&format!("during-{i}"))).send().await;
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "answered within the store timeout: {:?}",
            started.elapsed()
        );
        match r.status {
            202 => accepted.push(r.json["subject"].as_str().unwrap().to_string()),
            503 => {
                assert!(r.retry_after.is_some(), "{r:?}");
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("a full disk answered {other}: {r:?}"),
        }
    }
    assert!(refused >= 5, "the full disk never refused a change");
    let (status, body) = ready_status(&hub).await;
    assert_eq!(status, 503, "/readyz while full: {body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("commit")),
        "the reason is given: {body}"
    );

    // Freed: the same process takes changes again and delivers everything.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if ready_status(&hub).await.0 == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed 503 after freeing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for i in 0..30 {
        let r = hub.webhook(&bulky(&format!("after-{i}"))).send().await;
        assert_eq!(r.status, 202, "after freeing, without a restart: {r:?}");
        accepted.push(r.json["subject"].as_str().unwrap().to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: std::collections::HashSet<String> = sink.subjects().into_iter().collect();
        let missing: Vec<&String> = accepted.iter().filter(|s| !seen.contains(*s)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} accepted changes never delivered, e.g. {:?}\n{}",
            missing.len(),
            missing.first(),
            hub.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(hub);
}
