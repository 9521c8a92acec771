//! `hub bench`, run small: scenario `one` in one process prints p50/p99/p999
//! of accept and ingest-to-delivery latency and the peak RSS beside the
//! ceiling; `--workers 2` runs one API and two worker processes on
//! PostgreSQL and prints each one's peak RSS and deliveries; `--workers` on
//! SQLite is refused.

mod common;

use std::process::Command;

const N: usize = 300;

fn bench(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hub"))
        .arg("bench")
        .args(args)
        .env_remove("HUB_LOG")
        .env_remove("HUB_CONFIG")
        .output()
        .expect("run hub bench");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The number right after `label` in `line` (`p999 12.5 ms` -> 12.5).
fn figure_after(line: &str, label: &str) -> f64 {
    let at = line
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} missing in {line:?}"));
    let rest = line[at + label.len()..].trim_start();
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no figure after {label:?} in {line:?}"))
}

fn line<'a>(stdout: &'a str, starts: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.trim_start().starts_with(starts))
        .unwrap_or_else(|| panic!("no line starting {starts:?} in\n{stdout}"))
}

/// The latency triple of a line: p50 <= p99 <= p999, all above zero.
fn assert_percentiles(line: &str) {
    let p50 = figure_after(line, "p50 ");
    let p99 = figure_after(line, "p99 ");
    let p999 = figure_after(line, "p999 ");
    assert!(
        0.0 < p50 && p50 <= p99 && p99 <= p999,
        "percentiles in order: {line}"
    );
}

/// The lines both modes share: the ceiling, the rates with their
/// percentiles, every webhook delivered.
fn assert_rates(stdout: &str) {
    assert!(figure_after(line(stdout, "ceiling"), "sink)") > 0.0);
    let accepted = line(stdout, "accepted (202");
    assert!(figure_after(accepted, "committed)") > 0.0, "{accepted}");
    assert_percentiles(accepted);
    let delivered = line(stdout, "delivered (signed");
    assert!(figure_after(delivered, "sink)") > 0.0, "{delivered}");
    assert_percentiles(delivered);
    assert!(
        stdout.contains(&format!("delivered {N} of {N}")),
        "{stdout}"
    );
}

#[test]
fn scenario_one_prints_p999_and_peak_rss() {
    let (ok, stdout, stderr) = bench(&["--n", &N.to_string(), "--scenario", "one"]);
    assert!(ok, "hub bench failed\n{stdout}\n{stderr}");
    assert_rates(&stdout);
    let rss = line(&stdout, "peak RSS (VmHWM)");
    let mib = figure_after(rss, "(VmHWM)");
    // A hub with its runtime, pools and the load generator: megabytes, not
    // kilobytes, and far from gigabytes.
    assert!((5.0..2048.0).contains(&mib), "{rss}");
}

#[test]
fn workers_need_postgres() {
    let (ok, stdout, stderr) = bench(&["--n", "10", "--workers", "2"]);
    assert!(!ok, "--workers on SQLite must fail\n{stdout}");
    assert!(stderr.contains("needs PostgreSQL"), "{stderr}");
    assert!(
        !stdout.contains("ceiling"),
        "refused before measuring anything: {stdout}"
    );
}

#[test]
#[cfg_attr(
    not(hub_pg),
    ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant"
)]
fn two_worker_processes_print_their_rss_and_shares_postgres() {
    let url = common::postgres_url();
    let (ok, stdout, stderr) =
        bench(&["--n", &N.to_string(), "--workers", "2", "--database", &url]);
    assert!(ok, "hub bench --workers 2 failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 API"), "{stdout}");
    assert_rates(&stdout);
    let rss = line(&stdout, "peak RSS (VmHWM)");
    for process in ["api ", "worker 1 ", "worker 2 ", "sink: "] {
        let mib = figure_after(rss, process);
        assert!((5.0..2048.0).contains(&mib), "{process}: {rss}");
    }
    // Every delivery was made by one of the two workers (the API process
    // delivers nothing).
    let shares = line(&stdout, "deliveries per worker");
    let total = figure_after(shares, "worker 1 ") + figure_after(shares, "worker 2 ");
    assert_eq!(total as usize, N, "{shares}");
}
