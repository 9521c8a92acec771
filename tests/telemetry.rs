//! OTLP tracing end to end: a hub with `[telemetry] otlp_endpoint` posts
//! its spans to a fake collector on loopback; the webhook's request span
//! and the delivery it caused share one trace, and no span or event
//! attribute holds the customer's email or a credential.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use sha2::Digest;

backend_tests!(
    a_webhook_and_its_delivery_share_one_trace,
    without_an_endpoint_jobs_carry_no_trace_context,
);

const SCIM_TOKEN: &str = "telemetry-scim-token";
/// The email of `profile_event`'s subject.
const EMAIL: &str = "ada@example.com";

/// Accepts `POST /v1/traces` (OTLP/HTTP protobuf) and keeps every span.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start() -> Collector {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let kept = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| {
                let kept = kept.clone();
                async move {
                    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                    let mut kept = kept.lock().unwrap();
                    for resource in request.resource_spans {
                        for scope in resource.scope_spans {
                            kept.extend(scope.spans);
                        }
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Collector { url, spans, task }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn attributes(span: &Span) -> impl Iterator<Item = &KeyValue> {
    span.attributes
        .iter()
        .chain(span.events.iter().flat_map(|e| e.attributes.iter()))
}

async fn a_webhook_and_its_delivery_share_one_trace(backend: Backend) {
    let collector = Collector::start().await;
    let sink = Sink::start().await;
    let hash = hex::encode(sha2::Sha256::digest(SCIM_TOKEN.as_bytes()));
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &sink.url()))
        .toml(&format!(
            "[scim.clients.okta]\ntoken_sha256 = \"{hash}\"\n\n\
             [telemetry]\notlp_endpoint = \"{}\"\nservice_name = \"hub-under-test\"\n",
            collector.url
        ))
        // Export every 200 ms instead of every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .start()
        .await;
    hub.send_ok(&profile_event("cust-0001", now_utc())).await;
    sink.wait_for(1, PATIENCE).await;
    // A caller that is itself traced: the hub's spans join its trace.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = serde_json::to_vec(&profile_event("cust-0003", now_utc())).unwrap();
    let (id, ts) = ("msg-traced", chrono::Utc::now().timestamp());
    let traced = hub
        .http
        .post(format!("{}/webhooks/{SOURCE}", hub.url))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", source_secret().sign(id, ts, &body))
        .header(
            "traceparent",
            format!("00-{caller_trace}-00f067aa0ba902b7-01"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), 202);
    sink.wait_for(2, PATIENCE).await;
    // A SCIM call with its bearer token, whose span must not hold it.
    let list = hub
        .http
        .get(format!(
            "{}/scim/v2/Users?filter=userName%20eq%20%22{EMAIL}%22",
            hub.url
        ))
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (ingest, delivery) = loop {
        let spans = collector.spans();
        let delivery = spans.iter().find(|s| s.name == "delivery").cloned();
        let ingest = delivery.as_ref().and_then(|d| {
            spans
                .iter()
                .find(|s| s.name == "receive" && s.trace_id == d.trace_id)
                .cloned()
        });
        let caller_seen = spans
            .iter()
            .filter(|s| hex::encode(&s.trace_id) == caller_trace)
            .map(|s| s.name.as_str())
            .collect::<std::collections::BTreeSet<_>>();
        let caller_joined = ["request", "receive", "delivery"]
            .iter()
            .all(|n| caller_seen.contains(n));
        let scim_seen = spans.iter().any(|s| {
            s.name == "request"
                && attributes(s).any(|kv| format!("{kv:?}").contains("/scim/v2/Users"))
        });
        if let (Some(i), Some(d), true, true) = (ingest, delivery, scim_seen, caller_joined) {
            break (i, d);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no receive and delivery spans in one trace (a SCIM request span, and the \
             traced caller's request, receive and delivery in its trace): {:#?}",
            spans
                .iter()
                .map(|s| (&s.name, hex::encode(&s.trace_id)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ingest.trace_id, delivery.trace_id);
    assert_eq!(ingest.trace_id.len(), 16);
    assert_ne!(ingest.trace_id, vec![0; 16]);
    assert!(
        !delivery.parent_span_id.is_empty(),
        "the delivery span has a parent"
    );

    // Nothing personal or secret in any span.
    let secret = source_secret().to_text();
    for span in collector.spans() {
        for kv in attributes(&span) {
            let text = format!("{kv:?}");
            for needle in [EMAIL, "Lovelace", SCIM_TOKEN, ADMIN_TOKEN, secret.as_str()] {
                assert!(
                    !text.contains(needle),
                    "span {:?} holds {needle:?}: {text}",
                    span.name
                );
            }
        }
    }
}

/// Without `otlp_endpoint` nothing is exported and jobs carry no trace
/// context (the column stays NULL).
async fn without_an_endpoint_jobs_carry_no_trace_context(backend: Backend) {
    // A destination that never answers keeps the job in the queue.
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", crm_mapping("crm", &url_for(unused_addr())))
        .start()
        .await;
    hub.send_ok(&profile_event("cust-0002", now_utc())).await;
    let traceparents = hub
        .db
        .strings("SELECT COALESCE(traceparent, 'none') FROM delivery_jobs")
        .await;
    assert_eq!(traceparents, ["none"], "one job, without a trace context");
}
