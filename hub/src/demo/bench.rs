//! `hub bench`: pushes N signed webhooks through an in-process hub to the
//! local sink and prints accepted/s, delivered/s and latencies, beside a bare
//! HTTP loop posting the same payloads to the same sink (the ceiling).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::local::{LocalHub, SOURCE, random_secret, signed_post};
use super::sink::Sink;

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
}

const BENCH_MAPPING: &str = r#"destination: bench-sink
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

fn event(i: usize) -> serde_json::Value {
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

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    connectors::install_crypto_provider();
    let n = args.n.max(1);
    let sink_secret = random_secret();
    let mut sink = Sink::start(sink_secret.clone(), &[], true).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;

    // 1. The ceiling: the same payloads straight to the sink.
    let url = sink.url();
    let c = client.clone();
    let secret = sink_secret.clone();
    let (ceiling_time, _) = drive(n, args.concurrency, move |i| {
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
    while sink.rx.try_recv().is_ok() {}
    let ceiling = n as f64 / ceiling_time.as_secs_f64();

    // 2. The hub, in this process, on the chosen database.
    let mapping = BENCH_MAPPING
        .replace("SINK_URL", &sink.url())
        .replace("SINK_SECRET", &sink_secret.to_text());
    let hub = LocalHub::start(&args.database, &[("bench.yaml", mapping)], |_| {}).await?;

    let sent_at: Arc<Vec<std::sync::OnceLock<Instant>>> =
        Arc::new((0..n).map(|_| std::sync::OnceLock::new()).collect());
    let collector = tokio::spawn(async move {
        let mut arrivals: HashMap<usize, Instant> = HashMap::with_capacity(n);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while arrivals.len() < n {
            match tokio::time::timeout_at(deadline, sink.rx.recv()).await {
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
    });

    let started = Instant::now();
    let c = client.clone();
    let sa = sent_at.clone();
    let hub_url = format!("{}/webhooks/{SOURCE}", hub.url);
    let source_secret = hub.source_secret.clone();
    let (accept_time, accept_lat) = drive(n, args.concurrency, move |i| {
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
    let arrivals = collector.await?;
    let backend = hub.backend();
    hub.stop().await?;

    let delivered = arrivals.len();
    let last = arrivals.values().max().copied().unwrap_or(started);
    let deliver_time = last.duration_since(started);
    let mut e2e: Vec<Duration> = arrivals
        .iter()
        .filter_map(|(i, at)| sent_at[*i].get().map(|s| at.duration_since(*s)))
        .collect();
    e2e.sort();
    let accepted = n as f64 / accept_time.as_secs_f64();
    let delivered_per_s = delivered as f64 / deliver_time.as_secs_f64();
    println!(
        "hub bench: {n} webhooks, {} concurrent senders, {backend}",
        args.concurrency
    );
    println!("  ceiling (bare HTTP to the sink)  {ceiling:>9.0} req/s");
    println!(
        "  accepted (202, committed)        {accepted:>9.0} /s   {:.3} of ceiling   accept p50 {:.1} ms  p99 {:.1} ms",
        accepted / ceiling,
        ms(percentile(&accept_lat, 0.5)),
        ms(percentile(&accept_lat, 0.99))
    );
    println!(
        "  delivered (signed, to the sink)  {delivered_per_s:>9.0} /s   {:.3} of ceiling   ingest-to-delivery p50 {:.1} ms  p99 {:.1} ms",
        delivered_per_s / ceiling,
        ms(percentile(&e2e, 0.5)),
        ms(percentile(&e2e, 0.99))
    );
    println!("  delivered {delivered} of {n}");
    anyhow::ensure!(
        delivered == n,
        "only {delivered} of {n} webhooks were delivered"
    );
    Ok(())
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
