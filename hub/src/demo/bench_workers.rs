//! `hub bench --workers N`: scenario `one` with the hub split by role into
//! child processes of this binary, one `hub serve --role api` and N
//! `hub serve --role worker`, on a fresh PostgreSQL database. The load
//! generator posts to the API process and the sink (in this process)
//! receives the deliveries, so the figures compare with the in-process run;
//! each child's peak RSS is read from `/proc/PID/status` before it is
//! killed, and each worker's share from its own `/metrics`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use connectors::standard_webhooks::WebhookSecret;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::bench::{BenchArgs, bench_mapping, collect, event, print_rates, push_to};
use super::local::{SOURCE, prepare_database, random_secret};
use super::rss;
use super::sink::Sink;
use crate::config::Role;

/// How long a child may take to print its address and answer `/readyz`.
const START_WITHIN: Duration = Duration::from_secs(60);
/// How long the run waits for its deliveries.
const WAIT: Duration = Duration::from_secs(300);

/// One `hub serve` child process.
struct HubProcess {
    /// `api` or `worker K`, for the report.
    label: String,
    /// `http://127.0.0.1:PORT` (a worker serves only health and metrics).
    url: String,
    /// Killed on drop too, so an early return leaves no process behind.
    process: tokio::process::Child,
    /// Its stderr, shown when the run fails.
    log: PathBuf,
}

impl HubProcess {
    fn peak_kib(&self) -> Option<u64> {
        self.process
            .id()
            .and_then(|pid| rss::peak_kib(&pid.to_string()))
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

pub(crate) async fn run(
    args: &BenchArgs,
    client: &reqwest::Client,
    n: usize,
    ceiling: f64,
    workers: usize,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let (database_url, cleanup) = prepare_database(&args.database, dir.path()).await?;
    let mut children = Vec::new();
    let result = measure(
        args,
        client,
        n,
        ceiling,
        workers,
        dir.path(),
        &database_url,
        &mut children,
    )
    .await;
    if result.is_err() {
        for child in &children {
            eprintln!(
                "--- {} log (last lines) ---\n{}",
                child.label,
                child.log_tail(20)
            );
        }
    }
    // Every child goes before the database does (DROP ... WITH (FORCE)
    // would cut them off anyway, but they would log errors meanwhile).
    for child in &mut children {
        let _ = child.process.kill().await;
    }
    let dropped = match cleanup {
        Some(drop) => drop.await,
        None => Ok(()),
    };
    result?;
    dropped
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    args: &BenchArgs,
    client: &reqwest::Client,
    n: usize,
    ceiling: f64,
    workers: usize,
    dir: &Path,
    database_url: &str,
    children: &mut Vec<HubProcess>,
) -> anyhow::Result<()> {
    let sink_secret = random_secret();
    let sink = Sink::start(sink_secret.clone(), &[], true).await?;
    let counts = sink.counts.clone();
    let mappings = dir.join("mappings");
    std::fs::create_dir_all(&mappings)?;
    std::fs::write(
        mappings.join("bench.yaml"),
        bench_mapping("bench-sink", &sink, &sink_secret),
    )?;
    let source_secret = random_secret();
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let config = HubToml {
        database_url,
        mappings: &mappings,
        source_secret: &source_secret,
    };

    // The API first: it migrates the fresh database before the workers
    // start on it.
    children.push(spawn(&exe, dir, &config, Role::Api, "api").await?);
    for k in 1..=workers {
        let label = format!("worker {k}");
        children.push(spawn(&exe, dir, &config, Role::Worker, &label).await?);
    }
    rss::reset_own_peak();

    let collector = collect(sink.rx, n, WAIT);
    let intake = push_to(
        &children[0].url,
        &source_secret,
        client,
        n,
        args.concurrency,
        event,
    )
    .await
    .context("posting webhooks to the API process")?;
    let arrivals = collector.await?;
    // Read while the children still run: /proc/PID goes with them.
    let peaks: Vec<(String, Option<u64>)> = children
        .iter()
        .map(|c| (c.label.clone(), c.peak_kib()))
        .collect();
    let own_peak = rss::peak_kib("self");
    let shares = worker_shares(client, &children[1..], arrivals.len()).await;

    let delivered = arrivals.len();
    println!(
        "scenario one as processes: 1 API (hub serve --role api) + {workers} worker{} (hub serve --role worker), one destination",
        if workers == 1 { "" } else { "s" }
    );
    print_rates(&intake, &arrivals, ceiling);
    println!(
        "  delivered {delivered} of {n}   mean batch {:.2} events per call ({} calls)",
        counts.mean_batch(),
        counts.calls()
    );
    let peaks_text: Vec<String> = peaks
        .iter()
        .map(|(label, kib)| format!("{label} {}", rss::format_mib(*kib)))
        .collect();
    println!(
        "  peak RSS (VmHWM) {}   (bench process, load generator and sink: {})",
        peaks_text.join(", "),
        rss::format_mib(own_peak)
    );
    let shares_text: Vec<String> = shares
        .iter()
        .map(|(label, count)| match count {
            Some(c) => format!("{label} {c}"),
            None => format!("{label} unknown"),
        })
        .collect();
    println!(
        "  deliveries per worker (delivered attempts in its /metrics): {}",
        shares_text.join(", ")
    );
    anyhow::ensure!(
        delivered == n,
        "only {delivered} of {n} webhooks were delivered"
    );
    Ok(())
}

/// What every child's hub.toml says: the same database, mappings and source.
struct HubToml<'a> {
    database_url: &'a str,
    mappings: &'a Path,
    source_secret: &'a WebhookSecret,
}

impl HubToml<'_> {
    fn render(&self) -> String {
        // TOML basic strings take JSON's escapes for what these values hold.
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
        format!(
            "listen = \"127.0.0.1:0\"\n\
             database_url = {}\n\
             mappings = {}\n\n\
             [sources.{SOURCE}]\n\
             secret = {}\n",
            quote(self.database_url),
            quote(&self.mappings.display().to_string()),
            quote(&self.source_secret.to_text()),
        )
    }
}

/// Starts `hub serve --role ROLE` with its own hub.toml under `dir`, and
/// waits for its address and a 200 from `/readyz`.
async fn spawn(
    exe: &Path,
    dir: &Path,
    config: &HubToml<'_>,
    role: Role,
    label: &str,
) -> anyhow::Result<HubProcess> {
    let home = dir.join(label.replace(' ', "-"));
    std::fs::create_dir_all(&home)?;
    let toml = home.join("hub.toml");
    std::fs::write(&toml, config.render())?;
    let log = home.join("hub.log");
    let mut cmd = tokio::process::Command::new(exe);
    // Only the file written here speaks: no HUB_* from our environment,
    // except the log filter (quiet by default, as the in-process hub is).
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HUB_") {
            cmd.env_remove(key);
        }
    }
    cmd.env(
        "HUB_LOG",
        std::env::var("HUB_LOG").unwrap_or_else(|_| "warn".into()),
    );
    cmd.arg("--config")
        .arg(&toml)
        .args(["serve", "--role", role.as_str()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true);
    let mut process = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let stdout = process.stdout.take().context("no stdout from the child")?;
    let mut child = HubProcess {
        label: label.to_string(),
        url: String::new(),
        process,
        log,
    };
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(START_WITHIN, lines.next_line()).await;
    let url = match first {
        Ok(Ok(Some(line))) => line
            .trim()
            .strip_prefix("hub listening on ")
            .map(String::from),
        _ => None,
    };
    let Some(url) = url else {
        anyhow::bail!("{label} did not print its address\n{}", child.log_tail(20));
    };
    // Keep reading so the child never writes into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child.url = url;
    let deadline = tokio::time::Instant::now() + START_WITHIN;
    let http = reqwest::Client::new();
    loop {
        let ready = http
            .get(format!("{}/readyz", child.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Ok(child);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("{label} never became ready\n{}", child.log_tail(20));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each worker's delivered attempts. A worker counts an attempt once its
/// outcome is committed, a moment after the sink saw the call: read until
/// the counts add up to what the sink saw, or a few seconds passed.
async fn worker_shares(
    client: &reqwest::Client,
    workers: &[HubProcess],
    seen: usize,
) -> Vec<(String, Option<u64>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut shares = Vec::new();
        for w in workers {
            shares.push((w.label.clone(), delivered_attempts(client, &w.url).await));
        }
        let total: u64 = shares.iter().filter_map(|(_, c)| *c).sum();
        if total >= seen as u64 || tokio::time::Instant::now() > deadline {
            return shares;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `hub_delivery_attempts_total{outcome="delivered"}` of one process.
async fn delivered_attempts(client: &reqwest::Client, url: &str) -> Option<u64> {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("hub_delivery_attempts_total{outcome=\"delivered\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}
