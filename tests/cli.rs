//! Admin surfaces: `hub mappings check`, hot reload of mapping files in a
//! running hub (bad files refused, good edits picked up), graceful shutdown.

mod common;

use std::time::{Duration, Instant};

use common::*;

backend_tests!(
    hot_reload_keeps_good_mapping_and_picks_up_edits,
    sigterm_exits_zero_promptly,
    sigterm_finishes_in_flight_delivery,
    dlq_replay_shows_plain_progress_lines_off_a_terminal,
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
        .delivery("lease", "\"12s\"")
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

/// Starts `hub serve` on a fresh directory with `env`, waits for its
/// listening line, stops it and returns what it logged.
fn serve_log(env: &[(&str, &str)]) -> String {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::create_dir_all(dir.path().join("mappings")).unwrap();
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = {}\nmappings = {}\n",
            serde_json::to_string(&format!("sqlite://{}", dir.path().join("hub.db").display()))
                .unwrap(),
            serde_json::to_string(&dir.path().join("mappings").display().to_string()).unwrap()
        ),
    )
    .unwrap();
    let log = dir.path().join("hub.log");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hub"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("HUB_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied()).env("NO_COLOR", "1");
    let mut child = cmd
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("hub listening on"), "{line:?}");
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(&log).unwrap()
}

/// `HUB_LOG` wins, then `RUST_LOG`, then the default (`info,sqlx=warn`).
#[test]
fn log_filter_reads_hub_log_then_rust_log() {
    let info_line = "mappings loaded";
    let cases: [(&[(&str, &str)], bool); 4] = [
        (&[], true),
        (&[("RUST_LOG", "warn")], false),
        (&[("RUST_LOG", "warn"), ("HUB_LOG", "info")], true),
        (&[("RUST_LOG", "info"), ("HUB_LOG", "warn")], false),
    ];
    for (env, shown) in cases {
        let log = serve_log(env);
        assert_eq!(log.contains(info_line), shown, "{env:?}:\n{log}");
    }
}

/// Every file shipped in `mappings/` passes `hub mappings check` as a new
/// user runs it: default settings, no environment prepared.
#[test]
fn every_shipped_mapping_file_passes_check() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let files = std::fs::read_dir(&shipped)
        .unwrap()
        .flatten()
        .filter(|e| {
            matches!(
                e.path().extension().and_then(|x| x.to_str()),
                Some("yaml" | "yml")
            )
        })
        .count();
    assert!(
        files > 0,
        "no mapping files shipped in {}",
        shipped.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hub"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HUB_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .current_dir(dir.path())
        .arg("--config")
        .arg(dir.path().join("absent.toml"))
        .args(["mappings", "check"])
        .arg(&shipped)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{out:?}");
    assert!(
        stdout.contains(&format!("{files} destination(s) OK")),
        "every shipped file loads: {stdout}"
    );
}

/// Runs `hub --config FILE ARGS` with `env` (no other HUB_* or RUST_LOG) and
/// returns stdout and stderr together; `hub serve` is stopped once it
/// prints its listening line.
fn run_hub(config: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    use std::io::Read;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hub"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("HUB_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    let err_file = config.with_extension("stderr");
    let mut child = cmd
        .envs(env.iter().copied())
        .env("HUB_LOG", "debug")
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut out = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = stdout.read(&mut buf).unwrap_or(0);
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
        if n == 0 || out.contains("hub listening on") || Instant::now() > deadline {
            break;
        }
    }
    if out.contains("hub listening on") {
        // Let the startup logs (mapping errors) land, then stop it.
        std::thread::sleep(Duration::from_millis(300));
        let _ = child.kill();
    }
    let _ = child.wait();
    out + &std::fs::read_to_string(&err_file).unwrap()
}

/// A malformed value next to a secret, in `hub.toml`, in the environment and
/// in a mapping file's settings (where `${env:...}` put the secret): every
/// command names the file, position and key, and the secret appears nowhere.
#[test]
fn secrets_never_appear_in_config_or_mapping_errors() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let token = "tok-9f8e7d6c5b4a-do-not-print";
    let config = dir.path().join("hub.toml");
    let db = format!("sqlite://{}", dir.path().join("hub.db").display());
    let maps = dir.path().join("mappings");
    std::fs::create_dir_all(&maps).unwrap();
    let head = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = {}\nmappings = {}\n",
        serde_json::to_string(&db).unwrap(),
        serde_json::to_string(&maps.display().to_string()).unwrap()
    );
    let commands: [&[&str]; 3] = [&["serve"], &["mappings", "check"], &["dlq", "list"]];
    let broken_files = [
        // A syntax error on the secret's own line.
        format!("{head}[sources.ciam]\nsecret = \"{secret}\" oops\n"),
        // The secret where another type belongs, and an unknown key beside one.
        format!("{head}[webhooks]\ntolerance = \"{secret}\"\n"),
        format!("{head}[webhooks]\nmax_body = \"{secret}\"\n"),
        format!("{head}[sources.ciam]\nsecrets = \"{secret}\"\n"),
    ];
    for text in &broken_files {
        std::fs::write(&config, text).unwrap();
        for args in commands {
            let out = run_hub(&config, args, &[]);
            assert!(!out.contains(secret), "{args:?} printed the secret:\n{out}");
            assert!(
                !out.contains("MfKQ9r8G"),
                "{args:?} printed part of it:\n{out}"
            );
            assert!(out.contains("hub.toml:"), "{args:?} names the file:\n{out}");
        }
    }
    std::fs::write(&config, &head).unwrap();
    let out = run_hub(
        &config,
        &["dlq", "list"],
        &[("HUB_WEBHOOKS__TOLERANCE", secret)],
    );
    assert!(!out.contains(secret), "{out}");
    assert!(out.contains("HUB_WEBHOOKS__TOLERANCE"), "{out}");

    // Mapping files whose settings hold a secret where a URL or duration belongs.
    let file = |name: &str, settings: &str| {
        std::fs::write(
            maps.join(format!("{name}.yaml")),
            format!("destination: {name}\nconnector: webhook\nenabled: true\nsettings:\n{settings}fields:\n  email: {{ from: userName }}\n"),
        )
        .unwrap();
    };
    file(
        "bad-url",
        &format!("  url: ${{env:HOOK_TOKEN}}\n  secret: {secret}\n"),
    );
    file(
        "bad-timeout",
        &format!(
            "  url: https://hooks.example/x\n  secret: {secret}\n  timeout: \"${{env:HOOK_TOKEN}}\"\n"
        ),
    );
    file(
        "bad-url-with-token",
        &format!("  url: \"https://user:${{env:HOOK_TOKEN}}@ho st/\"\n  secret: {secret}\n"),
    );
    let env = [("HOOK_TOKEN", token)];
    let check = run_hub(&config, &["mappings", "check"], &env);
    let serve = run_hub(&config, &["serve"], &env);
    for (what, out) in [("mappings check", &check), ("serve log", &serve)] {
        assert!(!out.contains(token), "{what} printed the token:\n{out}");
        assert!(!out.contains(secret), "{what} printed the secret:\n{out}");
    }
    for (name, key) in [
        ("bad-url", "settings.url"),
        ("bad-timeout", "settings.timeout"),
        ("bad-url-with-token", "settings.url"),
    ] {
        let line = check
            .lines()
            .find(|l| l.contains(&format!("{name}.yaml:")))
            .unwrap_or_else(|| panic!("no error for {name}:\n{check}"));
        assert!(line.contains(key), "{line}");
        assert!(serve.contains(&format!("{name}.yaml")), "{serve}");
    }
}

/// Each vendor's shipped example, enabled with its secrets filled in, minus
/// one thing its connector needs: `hub mappings check` refuses it with
/// `file:line:col` and names what is missing.
#[test]
fn mappings_check_refuses_what_a_connector_cannot_send() {
    // (example, a required setting, the identity field or "")
    let cases = [
        ("hubspot", "token", "email"),
        ("salesforce", "external_id_field", ""),
        ("braze", "api_key", ""),
        ("mailchimp", "list_id", "email"),
        ("klaviyo", "api_key", "email"),
        ("segment", "write_key", ""),
        ("rudderstack", "write_key", ""),
        ("shopify", "shop", "email"),
    ];
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    for (vendor, setting, identity) in cases {
        let text = std::fs::read_to_string(shipped.join(format!("{vendor}.yaml"))).unwrap();
        let ready = enable_with_dummy_secrets(&text);
        assert_eq!(
            check_one(vendor, &ready).0,
            Some(0),
            "{vendor}: the example passes"
        );

        let without_setting = drop_block(&ready, &format!("  {setting}:"));
        let (code, stdout) = check_one(vendor, &without_setting);
        assert_eq!(code, Some(1), "{vendor} without {setting}: {stdout}");
        assert_points_at(&stdout, vendor, setting);

        if !identity.is_empty() {
            let without_identity = drop_block(&ready, &format!("  {identity}:"));
            let (code, stdout) = check_one(vendor, &without_identity);
            assert_eq!(code, Some(1), "{vendor} without field {identity}: {stdout}");
            assert_points_at(&stdout, vendor, identity);
        }
    }
}

fn enable_with_dummy_secrets(yaml: &str) -> String {
    let mut out = String::new();
    for line in yaml.lines() {
        let line = match line.find("${env:") {
            Some(at) => format!("{}dummy-secret-value", &line[..at]),
            None if line == "enabled: false" => "enabled: true".to_string(),
            None => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `yaml` without the line starting with `start` and the lines indented
/// under it (the first block only: `  email:` under settings or fields).
fn drop_block(yaml: &str, start: &str) -> String {
    let indent = start.len() - start.trim_start().len();
    let mut out = String::new();
    let mut dropping = false;
    let mut dropped = false;
    for line in yaml.lines() {
        let depth = line.len() - line.trim_start().len();
        if dropping && (line.trim().is_empty() || depth > indent) {
            continue;
        }
        dropping = false;
        if !dropped && line.starts_with(start) {
            dropping = true;
            dropped = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(dropped, "no {start:?} in the example");
    out
}

/// `hub mappings check` on a directory holding only `yaml`.
fn check_one(vendor: &str, yaml: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let maps = dir.path().join("mappings");
    std::fs::create_dir_all(&maps).unwrap();
    std::fs::write(maps.join(format!("{vendor}.yaml")), yaml).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hub"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HUB_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .current_dir(dir.path())
        .arg("--config")
        .arg(dir.path().join("absent.toml"))
        .args(["mappings", "check"])
        .arg(&maps)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// An error line `…/VENDOR.yaml:LINE:COL: …` that names `what`, and no
/// secret.
fn assert_points_at(output: &str, vendor: &str, what: &str) {
    let file = format!("{vendor}.yaml:");
    let line = output
        .lines()
        .find(|l| l.contains(&file) && l.contains(what))
        .unwrap_or_else(|| panic!("{vendor}: no file:line:col error naming {what}: {output}"));
    let rest = &line[line.find(&file).unwrap() + file.len()..];
    let mut parts = rest.splitn(3, ':');
    let line_no: usize = parts.next().unwrap().parse().expect("a line number");
    let col: usize = parts.next().unwrap().parse().expect("a column number");
    assert!(line_no >= 1 && col >= 1, "{line}");
    assert!(
        !output.contains("dummy-secret-value"),
        "a secret in: {output}"
    );
}

/// Five dead letters replayed two at a time: stderr (not a terminal here)
/// gets plain progress lines, and every letter is delivered again.
async fn dlq_replay_shows_plain_progress_lines_off_a_terminal(backend: Backend) {
    let sink = Sink::start().await;
    sink.set_default(Reply::Status(400));
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .start()
        .await;
    for i in 0..5 {
        hub.send_ok(&profile_event(&format!("cust-dlq-{i}"), now_utc()))
            .await;
    }
    sink.wait_for(5, PATIENCE).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let out = hub.cli(&["dlq", "list", "--destination", "crm"]).await;
        let dead: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
        if dead.len() == 5 {
            break;
        }
        assert!(Instant::now() < deadline, "five dead letters: {dead:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    sink.set_default(Reply::Status(200));
    let out = hub
        .cli(&["dlq", "replay", "--destination", "crm", "--batch", "2"])
        .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout.trim(), "replayed 5 dead letter(s)", "{out:?}");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("dlq replay:"))
        .collect();
    assert_eq!(
        lines,
        [
            "dlq replay: 5 dead letter(s) to replay",
            "dlq replay: 2 of 5 dead letters replayed (40%)",
            "dlq replay: 4 of 5 dead letters replayed (80%)",
            "dlq replay: 5 of 5 dead letters replayed (100%)",
            "dlq replay: done, 5 dead letter(s) requeued",
        ],
        "{out:?}"
    );
    assert!(
        !out.stderr.contains('\u{1b}'),
        "no terminal control codes off a terminal: {out:?}"
    );
    sink.wait_for(10, PATIENCE).await;
    let out = hub.cli(&["dlq", "list", "--destination", "crm"]).await;
    let dead: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert!(dead.is_empty(), "every letter was replayed: {dead:#?}");
    let out = hub.cli(&["dlq", "replay", "--id", "no-such-id"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.contains("replayed 0"), "{out:?}");
}
