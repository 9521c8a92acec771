//! `hub bench`: pushes N signed webhooks through an in-process hub to the
//! local sink and prints accepted/s, delivered/s and latencies, beside a bare
//! HTTP loop posting the same payloads to the same sink (the ceiling).
//! Scenario `one` adds p999 and the peak RSS ([`super::rss`]);
//! `--workers N` runs it with the hub as child processes, one per role
//! ([`super::bench_workers`]).
//!
//! The first scenario (`one`: one destination, one subject per webhook) is
//! the README's table; [`super::bench_engine`] adds the others (batched,
//! eight destinations with one hanging, one rate-limited), and
//! `--connector NAME` runs [`super::bench_connector`] against a vendor fake.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::local::{LocalHub, SOURCE, random_secret, signed_post};
use super::sink::{Received, Sink};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Webhooks to push (one subject each, so nothing coalesces).
    #[arg(long, default_value_t = 20_000)]
    pub n: usize,
    /// Concurrent senders.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// `sqlite` (a temporary file) or a `postgres://` URL, in which a fresh
    /// database is created for the run and dropped afterwards.
    #[arg(long, default_value = "sqlite")]
    pub database: String,
    /// Which engine scenarios to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    pub scenario: Scenario,
    /// Instead of the engine scenarios: push webhooks to one vendor's fake
    /// through its connector (hubspot, salesforce, braze, mailchimp,
    /// klaviyo, segment, rudderstack, shopify) or every one (`all`).
    #[arg(long)]
    pub connector: Option<String>,
    /// Requests per second allowed to the limited destination of the
    /// `rate-limited` scenario.
    #[arg(long, default_value_t = 50)]
    pub rate_limit: u32,
    /// Webhooks of the `eight` scenario (each fans out to eight destinations).
    #[arg(long, default_value_t = 2_000)]
    pub eight_n: usize,
    /// `eight` as a control: the eighth destination is healthy too.
    #[arg(long)]
    pub no_hang: bool,
    /// Instead of the in-process hub: run it as child processes of this
    /// binary, one `hub serve --role api` and N `hub serve --role worker`,
    /// on a fresh PostgreSQL database (scenario `one` only).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
}

/// The engine scenarios of `hub bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// One destination, one webhook POST per change (the README's table).
    One,
    /// One destination in the webhook connector's batch mode.
    Batched,
    /// Eight destinations at once, one of them hanging until its timeout.
    Eight,
    /// Ingest latency while one of two destinations is rate-limited.
    RateLimited,
    /// Every scenario above, in that order.
    All,
}

impl Scenario {
    pub fn includes(self, other: Scenario) -> bool {
        self == Scenario::All || self == other
    }
}

pub(crate) const BENCH_MAPPING: &str = r#"destination: DESTINATION
connector: webhook
settings:
  url: SINK_URL
  secret: SINK_SECRET
  timeout: 10s
fields:
  external_id: { from: externalId }
  email:
    from: emails[primary eq true].value
    transform: [trim, lowercase]
  first_name: { from: name.givenName }
"#;

/// The bench mapping for destination `name` pointed at `sink`.
pub(crate) fn bench_mapping(
    name: &str,
    sink: &Sink,
    secret: &connectors::standard_webhooks::WebhookSecret,
) -> String {
    BENCH_MAPPING
        .replace("DESTINATION", name)
        .replace("SINK_URL", &sink.url())
        .replace("SINK_SECRET", &secret.to_text())
}

pub(crate) fn event(i: usize) -> serde_json::Value {
    json!({
        "type": "profile.upserted",
        "subject": {
            "externalId": format!("bench-{i}"),
            "userName": format!("user{i}@example.com"),
            "name": {"givenName": "Bench", "familyName": format!("User {i}")},
            "emails": [{"value": format!("User{i}@Example.com"), "primary": true}],
            "active": true
        },
        "consent": {"marketing_email": "granted"},
        "occurredAt": "2026-11-23T10:00:00Z"
    })
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Runs `n` requests over `concurrency` tasks; returns each one's latency.
pub(crate) async fn drive<F, Fut>(
    n: usize,
    concurrency: usize,
    send: F,
) -> anyhow::Result<(Duration, Vec<Duration>)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let send = Arc::new(send);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let send = send.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let t = Instant::now();
                send(i).await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed();
    all.sort();
    Ok((elapsed, all))
}

/// The webhooks of one run as the senders saw them.
pub(crate) struct Intake {
    /// When the first webhook was sent.
    pub started: Instant,
    /// From the first send to the last 202.
    pub elapsed: Duration,
    /// 202 latencies, sorted.
    pub latencies: Vec<Duration>,
    /// When each webhook was sent, by index.
    pub sent_at: Arc<Vec<std::sync::OnceLock<Instant>>>,
}

impl Intake {
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// Ingest-to-delivery latencies of `arrivals`, sorted.
    pub fn to_delivery(&self, arrivals: &HashMap<usize, Instant>) -> Vec<Duration> {
        let mut e2e: Vec<Duration> = arrivals
            .iter()
            .filter_map(|(i, at)| self.sent_at[*i].get().map(|s| at.duration_since(*s)))
            .collect();
        e2e.sort();
        e2e
    }
}

/// Posts `event(i)` for i in 0..n to the hub, `concurrency` at a time, each
/// answered 202.
pub(crate) async fn push(
    hub: &LocalHub,
    client: &reqwest::Client,
    n: usize,
    concurrency: usize,
    event: fn(usize) -> serde_json::Value,
) -> anyhow::Result<Intake> {
    push_to(&hub.url, &hub.source_secret, client, n, concurrency, event).await
}

/// [`push`] to the hub at `url` (`http://HOST:PORT`) whose source
/// [`SOURCE`] has `source_secret`.
pub(crate) async fn push_to(
    url: &str,
    source_secret: &connectors::standard_webhooks::WebhookSecret,
    client: &reqwest::Client,
    n: usize,
    concurrency: usize,
    event: fn(usize) -> serde_json::Value,
) -> anyhow::Result<Intake> {
    let sent_at: Arc<Vec<std::sync::OnceLock<Instant>>> =
        Arc::new((0..n).map(|_| std::sync::OnceLock::new()).collect());
    let started = Instant::now();
    let c = client.clone();
    let sa = sent_at.clone();
    let hub_url = format!("{url}/webhooks/{SOURCE}");
    let source_secret = source_secret.clone();
    let (elapsed, latencies) = drive(n, concurrency, move |i| {
        let id = format!("msg_bench_{i}");
        let request = signed_post(&c, &hub_url, &source_secret, &id, event(i).to_string());
        let sa = sa.clone();
        async move {
            let _ = sa[i].set(Instant::now());
            let r = request.send().await?;
            anyhow::ensure!(r.status().as_u16() == 202, "hub answered {}", r.status());
            Ok(())
        }
    })
    .await?;
    Ok(Intake {
        started,
        elapsed,
        latencies,
        sent_at,
    })
}

/// Reads the sink's channel until `n` distinct `bench-{i}` subjects arrived
/// or `within` passed: each subject's first arrival.
pub(crate) fn collect(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Received>,
    n: usize,
    within: Duration,
) -> tokio::task::JoinHandle<HashMap<usize, Instant>> {
    tokio::spawn(async move {
        let mut arrivals: HashMap<usize, Instant> = HashMap::with_capacity(n);
        let deadline = tokio::time::Instant::now() + within;
        while arrivals.len() < n {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => {
                    let id = r
                        .event
                        .data
                        .get("external_id")
                        .and_then(|v| v.as_str())
                        .and_then(|s| s.strip_prefix("bench-"))
                        .and_then(|s| s.parse().ok());
                    if let Some(i) = id {
                        arrivals.entry(i).or_insert(r.at);
                    }
                }
                _ => break,
            }
        }
        arrivals
    })
}

/// The bare-HTTP ceiling: `n` signed POSTs straight to a sink, requests/s.
async fn ceiling(client: &reqwest::Client, n: usize, concurrency: usize) -> anyhow::Result<f64> {
    let secret = random_secret();
    let sink = Sink::start(secret.clone(), &[], true).await?;
    let url = sink.url();
    let c = client.clone();
    let (time, _) = drive(n, concurrency, move |i| {
        let c = c.clone();
        let url = url.clone();
        let body = json!({"type": "profile.upserted", "timestamp": "2026-11-23T10:00:00Z",
            "subject": format!("s{i}"), "data": {"external_id": format!("ceiling-{i}")}})
        .to_string();
        let id = format!("msg_ceiling_{i}");
        let request = signed_post(&c, &url, &secret, &id, body);
        async move {
            let r = request.send().await?;
            anyhow::ensure!(r.status().is_success(), "sink answered {}", r.status());
            Ok(())
        }
    })
    .await?;
    Ok(n as f64 / time.as_secs_f64())
}

pub(crate) fn backend_name(database: &str) -> &'static str {
    if database == "sqlite" || database.starts_with("sqlite") {
        "sqlite (WAL, synchronous=FULL)"
    } else {
        "postgres (default durability)"
    }
}

/// What the `one` scenario measured, for the scenarios after it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OneFigures {
    pub delivered_per_s: f64,
    pub accept_p99: Duration,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    connectors::install_crypto_provider();
    if let Some(name) = &args.connector {
        return super::bench_connector::run(&args, name).await;
    }
    let n = args.n.max(1);
    if args.workers.is_some() && !args.database.starts_with("postgres") {
        anyhow::bail!(
            "--workers runs one API and N worker processes on one database: it needs \
             PostgreSQL (--database postgres://...); SQLite runs every part in one process"
        );
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;

    // 1. The ceiling: the same payloads straight to the sink.
    let ceiling = ceiling(&client, n, args.concurrency).await?;
    println!(
        "hub bench: {n} webhooks, {} concurrent senders, {}",
        args.concurrency,
        backend_name(&args.database)
    );
    println!("  ceiling (bare HTTP to the sink)  {ceiling:>9.0} req/s");

    // 2. The hub as child processes, one per role.
    if let Some(workers) = args.workers {
        return super::bench_workers::run(&args, &client, n, ceiling, workers.into()).await;
    }

    // 3. The hub, in this process, on the chosen database.
    let mut one = None;
    if args.scenario.includes(Scenario::One) {
        one = Some(run_one(&args, &client, n, ceiling).await?);
    }
    super::bench_engine::run(&args, &client, n, ceiling, one).await
}

/// One destination, one POST per change: the README's first table.
async fn run_one(
    args: &BenchArgs,
    client: &reqwest::Client,
    n: usize,
    ceiling: f64,
) -> anyhow::Result<OneFigures> {
    let sink_secret = random_secret();
    let sink = Sink::start(sink_secret.clone(), &[], true).await?;
    let counts = sink.counts.clone();
    let mapping = bench_mapping("bench-sink", &sink, &sink_secret);
    // The high-water mark from here on: the hub's run, not the ceiling's.
    super::rss::reset_own_peak();
    let hub = LocalHub::start(&args.database, &[("bench.yaml", mapping)], |_| {}).await?;
    let collector = collect(sink.rx, n, Duration::from_secs(300));
    let intake = push(&hub, client, n, args.concurrency, event).await?;
    let arrivals = collector.await?;
    let peak = super::rss::peak_kib("self");
    hub.stop().await?;

    let delivered = arrivals.len();
    let accept_p99 = percentile(&intake.latencies, 0.99);
    println!("scenario one: one destination, one POST per change");
    let delivered_per_s = print_rates(&intake, &arrivals, ceiling);
    println!(
        "  delivered {delivered} of {n}   mean batch {:.2} events per call ({} calls)",
        counts.mean_batch(),
        counts.calls()
    );
    println!(
        "  peak RSS (VmHWM) {}   (this process: hub, load generator and sink)",
        super::rss::format_mib(peak)
    );
    anyhow::ensure!(
        delivered == n,
        "only {delivered} of {n} webhooks were delivered"
    );
    Ok(OneFigures {
        delivered_per_s,
        accept_p99,
    })
}

/// The accepted and delivered lines of scenario `one`, in-process or as
/// child processes.
/// Prints the accepted and delivered lines of an intake whose deliveries
/// arrived at the sink at `arrivals`; returns delivered/s.
pub(crate) fn print_rates(
    intake: &Intake,
    arrivals: &HashMap<usize, Instant>,
    ceiling: f64,
) -> f64 {
    let last = arrivals.values().max().copied().unwrap_or(intake.started);
    let delivered_per_s = arrivals.len() as f64 / last.duration_since(intake.started).as_secs_f64();
    let e2e = intake.to_delivery(arrivals);
    let accepted = intake.per_second();
    println!(
        "  accepted (202, committed)        {accepted:>9.0} /s   {:.3} of ceiling   accept p50 {:.1} ms  p99 {:.1} ms  p999 {:.1} ms",
        accepted / ceiling,
        ms(percentile(&intake.latencies, 0.5)),
        ms(percentile(&intake.latencies, 0.99)),
        ms(percentile(&intake.latencies, 0.999))
    );
    println!(
        "  delivered (signed, to the sink)  {delivered_per_s:>9.0} /s   {:.3} of ceiling   ingest-to-delivery p50 {:.1} ms  p99 {:.1} ms  p999 {:.1} ms",
        delivered_per_s / ceiling,
        ms(percentile(&e2e, 0.5)),
        ms(percentile(&e2e, 0.99)),
        ms(percentile(&e2e, 0.999))
    );
    delivered_per_s
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
