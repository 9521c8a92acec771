//! `GET /metrics` end to end: after a webhook is delivered and a few SCIM
//! calls are answered, the scrape (read by a Prometheus text-format parser)
//! holds the destination's series with the right values; and every series
//! the Grafana dashboard in docs/ queries is one the hub exports.

mod common;

use common::*;
use serde_json::json;
use sha2::Digest;

backend_tests!(
    a_delivery_shows_in_the_destination_series,
    the_dashboard_queries_only_exported_series,
);

const SCIM_TOKEN: &str = "metrics-scim-token";

/// A hub that delivered one webhook to `crm`, answered a SCIM list (200),
/// refused a SCIM create (400) and an unauthenticated list (401). Returns
/// the scrape's text.
async fn busy_hub(backend: Backend) -> (TestHub, Sink, String) {
    let sink = Sink::start().await;
    let hash = hex::encode(sha2::Sha256::digest(SCIM_TOKEN.as_bytes()));
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .toml(&format!("[scim.clients.okta]\ntoken_sha256 = \"{hash}\"\n"))
        .start()
        .await;
    let reply = hub.send_ok(&profile_event("cust-0001", now_utc())).await;
    let subject = reply["subject"].as_str().unwrap().to_string();
    sink.wait_for(1, PATIENCE).await;
    hub.wait_deliveries(&subject, "a delivered attempt", |l| {
        l.iter().any(|a| a["outcome"] == "delivered")
    })
    .await;

    let scim = |path: &str| format!("{}/scim/v2/{path}", hub.url);
    let list = hub
        .http
        .get(scim("Users"))
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let refused = hub
        .http
        .post(scim("Users"))
        .bearer_auth(SCIM_TOKEN)
        .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let anonymous = hub.http.get(scim("Users")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let text = scrape_text(&hub).await;
    (hub, sink, text)
}

async fn scrape_text(hub: &TestHub) -> String {
    hub.http
        .get(format!("{}/metrics", hub.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("the scrape parses as Prometheus text")
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<&prometheus_parse::Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?}: {matching:#?}");
    matching.first().and_then(|s| match &s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => Some(*v),
        _ => None,
    })
}

/// The histogram `name` with `labels`: its buckets (upper bound, count).
fn buckets(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Vec<(f64, f64)> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .find_map(|s| match &s.value {
            prometheus_parse::Value::Histogram(h) => {
                Some(h.iter().map(|b| (b.less_than, b.count)).collect())
            }
            _ => None,
        })
        .unwrap_or_default()
}

async fn a_delivery_shows_in_the_destination_series(backend: Backend) {
    let (_hub, _sink, text) = busy_hub(backend).await;
    let s = parse(&text);
    let crm = [("destination", "crm")];

    assert_eq!(
        value(&s, "hub_destination_delivered_total", &crm),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&s, "hub_destination_failed_total", &crm),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&s, "hub_destination_retried_total", &crm),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&s, "hub_destination_suppressed_total", &crm),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&s, "hub_destination_queue_depth", &crm),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&s, "hub_destination_paused", &crm),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&s, "hub_destination_oldest_pending_age_seconds", &crm),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(
            &s,
            "hub_delivery_attempts_total",
            &[("outcome", "delivered")]
        ),
        Some(1.0),
        "{text}"
    );

    // One call of one item: each histogram counted it once, in the right bucket.
    let latency = buckets(&s, "hub_destination_delivery_duration_seconds", &crm);
    assert_eq!(latency.last().map(|b| b.1), Some(1.0), "{text}");
    assert_eq!(
        value(&s, "hub_destination_delivery_duration_seconds_count", &crm),
        Some(1.0),
        "{text}"
    );
    let batch = buckets(&s, "hub_destination_batch_size", &crm);
    assert!(
        batch
            .iter()
            .all(|(le, n)| *n == if *le >= 1.0 { 1.0 } else { 0.0 }),
        "one call of one item: {batch:?}"
    );
    assert_eq!(
        value(&s, "hub_destination_batch_size_sum", &crm),
        Some(1.0),
        "{text}"
    );

    let webhook = |outcome| [("source", "webhook"), ("outcome", outcome)];
    assert_eq!(
        value(&s, "hub_ingest_requests_total", &webhook("accepted")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&s, "hub_ingest_requests_total", &webhook("duplicate")),
        None,
        "{text}"
    );
    assert_eq!(
        value(
            &s,
            "hub_ingest_requests_total",
            &[("source", "scim"), ("outcome", "rejected")]
        ),
        Some(1.0),
        "the refused SCIM create: {text}"
    );
    assert_eq!(
        value(
            &s,
            "hub_ingest_duration_seconds_count",
            &[("source", "webhook")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&s, "hub_webhooks_accepted_total", &[]),
        Some(1.0),
        "{text}"
    );

    let scim = |method, status| {
        [
            ("method", method),
            ("resource", "Users"),
            ("status", status),
        ]
    };
    assert_eq!(
        value(&s, "hub_scim_requests_total", &scim("GET", "200")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&s, "hub_scim_requests_total", &scim("POST", "400")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&s, "hub_scim_requests_total", &scim("GET", "401")),
        Some(1.0),
        "{text}"
    );
}

/// Every `hub_*` name in the dashboard's expressions (`hub_[a-z_]+`).
fn dashboard_names() -> std::collections::BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana/hub.json");
    let text = std::fs::read_to_string(path).expect("docs/grafana/hub.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 6, "the dashboard has its panels: {exprs:?}");
    let mut names = std::collections::BTreeSet::new();
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(at) = rest.find("hub_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    // Panel queries, and the variable that lists destinations.
                    ("expr" | "definition" | "query", serde_json::Value::String(e)) => {
                        out.push(e.clone())
                    }
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(list) => list.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

async fn the_dashboard_queries_only_exported_series(backend: Backend) {
    let (_hub, _sink, text) = busy_hub(backend).await;
    let exported: std::collections::BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    let used = dashboard_names();
    assert!(!used.is_empty());
    let missing: Vec<&String> = used.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries series the hub does not export: {missing:?}\nexported: {exported:?}"
    );
}
