//! The engine scenarios of `hub bench` after the first (`one`, in
//! [`super::bench`]): one destination in batch mode, eight destinations at
//! once with one hanging until its timeout, and the ingest latency while
//! one destination is rate-limited. Each runs on a fresh hub and database
//! and prints its figures beside the ceiling of the same run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::bench::{
    BenchArgs, Intake, OneFigures, Scenario, bench_mapping, collect, event, ms, percentile, push,
};
use super::local::{LocalHub, random_secret};
use super::sink::Sink;

/// Events per POST in the `batched` scenario.
const BATCH_ITEMS: usize = 100;
/// Healthy destinations beside the hanging one in the `eight` scenario.
const HEALTHY: usize = 7;
/// The hanging destination's connector timeout, and how long its sink
/// holds every call (well past the timeout: it never answers in time).
const HANG_TIMEOUT: Duration = Duration::from_secs(2);
const HANG_HOLD: Duration = Duration::from_secs(60);
/// How long a scenario waits for its deliveries.
const WAIT: Duration = Duration::from_secs(300);

pub(crate) async fn run(
    args: &BenchArgs,
    client: &reqwest::Client,
    n: usize,
    ceiling: f64,
    one: Option<OneFigures>,
) -> anyhow::Result<()> {
    if args.scenario.includes(Scenario::Batched) {
        batched(args, client, n, ceiling).await?;
    }
    if args.scenario.includes(Scenario::Eight) {
        eight(args, client, args.eight_n.max(1), ceiling, one).await?;
    }
    if args.scenario.includes(Scenario::RateLimited) {
        rate_limited(args, client, n, ceiling, one).await?;
    }
    Ok(())
}

/// The bench mapping with extra lines under `settings:`.
fn with_settings(mapping: String, extra: &str) -> String {
    mapping.replacen("  timeout: 10s\n", extra, 1)
}

/// What one destination's sink saw in a scenario.
struct Delivered {
    arrivals: HashMap<usize, Instant>,
}

impl Delivered {
    fn count(&self) -> usize {
        self.arrivals.len()
    }

    fn last(&self, or: Instant) -> Instant {
        self.arrivals.values().max().copied().unwrap_or(or)
    }

    fn per_second(&self, started: Instant) -> f64 {
        self.count() as f64 / self.last(started).duration_since(started).as_secs_f64()
    }
}

fn accept_line(intake: &Intake, ceiling: f64) {
    println!(
        "  accepted (202, committed)        {:>9.0} /s   {:.3} of ceiling   accept p50 {:.1} ms  p99 {:.1} ms",
        intake.per_second(),
        intake.per_second() / ceiling,
        ms(percentile(&intake.latencies, 0.5)),
        ms(percentile(&intake.latencies, 0.99))
    );
}

async fn batched(
    args: &BenchArgs,
    client: &reqwest::Client,
    n: usize,
    ceiling: f64,
) -> anyhow::Result<()> {
    let secret = random_secret();
    let sink = Sink::start(secret.clone(), &[], true).await?;
    let counts = sink.counts.clone();
    let mapping = with_settings(
        bench_mapping("bench-batched", &sink, &secret),
        &format!("  timeout: 10s\n  batch: {{ max_items: {BATCH_ITEMS} }}\n"),
    );
    let hub = LocalHub::start(&args.database, &[("bench.yaml", mapping)], |_| {}).await?;
    let collector = collect(sink.rx, n, WAIT);
    let intake = push(&hub, client, n, args.concurrency, event).await?;
    let delivered = Delivered {
        arrivals: collector.await?,
    };
    hub.stop().await?;
    let e2e = intake.to_delivery(&delivered.arrivals);
    let rate = delivered.per_second(intake.started);
    println!("scenario batched: one destination, batch max_items {BATCH_ITEMS}");
    accept_line(&intake, ceiling);
    println!(
        "  delivered (signed, to the sink)  {rate:>9.0} /s   {:.3} of ceiling   ingest-to-delivery p50 {:.1} ms  p99 {:.1} ms",
        rate / ceiling,
        ms(percentile(&e2e, 0.5)),
        ms(percentile(&e2e, 0.99))
    );
    println!(
        "  delivered {} of {n}   mean batch {:.1} events per call ({} calls)",
        delivered.count(),
        counts.mean_batch(),
        counts.calls()
    );
    anyhow::ensure!(
        delivered.count() == n,
        "batched: only {} of {n} webhooks were delivered",
        delivered.count()
    );
    Ok(())
}

async fn eight(
    args: &BenchArgs,
    client: &reqwest::Client,
    n: usize,
    ceiling: f64,
    one: Option<OneFigures>,
) -> anyhow::Result<()> {
    let healthy_count = if args.no_hang { HEALTHY + 1 } else { HEALTHY };
    let mut mappings = Vec::new();
    let mut collectors = Vec::new();
    for k in 0..healthy_count {
        let secret = random_secret();
        let sink = Sink::start(secret.clone(), &[], true).await?;
        let name = format!("bench-healthy-{k}");
        mappings.push((format!("{name}.yaml"), bench_mapping(&name, &sink, &secret)));
        collectors.push(collect(sink.rx, n, WAIT));
    }
    let secret = random_secret();
    let hanging = Sink::start_with(secret.clone(), &[], true, Some(HANG_HOLD)).await?;
    let hang_counts = hanging.counts.clone();
    if !args.no_hang {
        mappings.push((
            "bench-hanging.yaml".into(),
            with_settings(
                bench_mapping("bench-hanging", &hanging, &secret),
                &format!("  timeout: {}s\n", HANG_TIMEOUT.as_secs()),
            ),
        ));
    }
    let files: Vec<(&str, String)> = mappings
        .iter()
        .map(|(f, m)| (f.as_str(), m.clone()))
        .collect();
    let hub = LocalHub::start(&args.database, &files, |_| {}).await?;
    let intake = push(&hub, client, n, args.concurrency, event).await?;
    let intake_end = intake.started + intake.elapsed;
    let mut healthy = Vec::new();
    for c in collectors {
        healthy.push(Delivered { arrivals: c.await? });
    }
    let hanging_calls = hang_counts.calls();
    hub.stop().await?;

    let rates: Vec<f64> = healthy
        .iter()
        .map(|d| d.per_second(intake.started))
        .collect();
    let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rates.iter().copied().fold(0.0, f64::max);
    let total: usize = healthy.iter().map(Delivered::count).sum();
    let last = healthy
        .iter()
        .map(|d| d.last(intake.started))
        .max()
        .unwrap_or(intake.started);
    let together = total as f64 / last.duration_since(intake.started).as_secs_f64();
    let worst_p99 = healthy
        .iter()
        .map(|d| percentile(&intake.to_delivery(&d.arrivals), 0.99))
        .max()
        .unwrap_or_default();
    let worst_p50 = healthy
        .iter()
        .map(|d| percentile(&intake.to_delivery(&d.arrivals), 0.5))
        .max()
        .unwrap_or_default();
    if args.no_hang {
        println!("scenario eight (control, --no-hang): {healthy_count} healthy destinations");
    } else {
        println!(
            "scenario eight: {HEALTHY} healthy destinations + 1 hanging (its sink holds every call past its {}s timeout)",
            HANG_TIMEOUT.as_secs()
        );
    }
    accept_line(&intake, ceiling);
    println!(
        "  delivered, each healthy          {min:>9.0} .. {max:.0} /s   {:.3} .. {:.3} of ceiling{}",
        min / ceiling,
        max / ceiling,
        one.map(|o| format!(
            "   ({:.2} .. {:.2} of `one`)",
            min / o.delivered_per_s,
            max / o.delivered_per_s
        ))
        .unwrap_or_default()
    );
    println!(
        "  delivered, healthy together      {together:>9.0} /s   {:.3} of ceiling   ingest-to-delivery (worst destination) p50 {:.1} ms  p99 {:.1} ms",
        together / ceiling,
        ms(worst_p50),
        ms(worst_p99)
    );
    println!(
        "  delivered {total} of {} to the healthy ones; last one {:.0} ms after the last 202{}",
        n * healthy_count,
        ms(last.saturating_duration_since(intake_end)),
        if args.no_hang {
            String::new()
        } else {
            format!("; hanging destination: {hanging_calls} calls, none answered in time")
        }
    );
    anyhow::ensure!(
        total == n * healthy_count,
        "eight: only {total} of {} deliveries reached the healthy destinations",
        n * healthy_count
    );
    Ok(())
}

async fn rate_limited(
    args: &BenchArgs,
    client: &reqwest::Client,
    n: usize,
    ceiling: f64,
    one: Option<OneFigures>,
) -> anyhow::Result<()> {
    let limit = args.rate_limit.max(1);
    let secret = random_secret();
    let paced = Sink::start(secret.clone(), &[], true).await?;
    let paced_counts = paced.counts.clone();
    let paced_mapping = bench_mapping("bench-paced", &paced, &secret);
    let secret = random_secret();
    let limited = Sink::start(secret.clone(), &[], true).await?;
    let limited_counts = limited.counts.clone();
    let limited_mapping = with_settings(
        bench_mapping("bench-limited", &limited, &secret),
        &format!("  timeout: 10s\n  rate_limit: {limit}\n"),
    );
    let hub = LocalHub::start(
        &args.database,
        &[
            ("bench-paced.yaml", paced_mapping),
            ("bench-limited.yaml", limited_mapping),
        ],
        |_| {},
    )
    .await?;
    // Measured over the intake only: the limited destination would take
    // n / limit seconds to drain, and the figure asked for is the 202
    // latency while it is limited.
    let intake = push(&hub, client, n, args.concurrency, event).await?;
    let window = intake.started.elapsed();
    let limited_calls = limited_counts.calls();
    let paced_events = paced_counts.events();
    hub.stop().await?;

    let limited_rate = limited_calls as f64 / window.as_secs_f64();
    let paced_rate = paced_events as f64 / window.as_secs_f64();
    let p99 = percentile(&intake.latencies, 0.99);
    println!(
        "scenario rate-limited: two destinations, one limited to {limit} requests/s, the other not"
    );
    accept_line(&intake, ceiling);
    if let Some(o) = one {
        println!(
            "  accept p99 {:.1} ms against {:.1} ms in `one` ({:.2}x)",
            ms(p99),
            ms(o.accept_p99),
            p99.as_secs_f64() / o.accept_p99.as_secs_f64().max(1e-9)
        );
    }
    println!(
        "  unlimited destination: {paced_events} delivered during the intake = {paced_rate:.0} /s   {:.3} of ceiling",
        paced_rate / ceiling,
    );
    println!(
        "  limited destination: {limited_calls} calls during the intake ({:.1} s) = {limited_rate:.1} /s (limit {limit}/s; the rest still queued when the run ended)",
        window.as_secs_f64(),
    );
    anyhow::ensure!(
        limited_rate <= f64::from(limit) * 1.05 + 1.0,
        "rate-limited: the limited destination got {limited_rate:.1} calls/s, over its {limit}/s"
    );
    Ok(())
}
