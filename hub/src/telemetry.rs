//! OTLP span export, on when `[telemetry] otlp_endpoint` is set: a
//! `tracing-opentelemetry` layer over a batch exporter that posts protobuf
//! to the collector through the hub's own reqwest client.
//!
//! One trace runs from an inbound request to its deliveries: ingest stores
//! the request span's W3C `traceparent` on each delivery job it queues
//! ([`current_traceparent`]), and the driver makes the first job's context
//! the parent of the batch's delivery span and links the others
//! ([`join_traces`]). Span fields never hold PII or secrets: routes are the
//! matched pattern, subjects are hub ids, payloads are never recorded.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::Telemetry;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("the OTLP exporter could not be built")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("the HTTP client for the OTLP exporter could not be built")]
    Client(#[from] reqwest::Error),
}

/// The running exporter; [`Exporter::shutdown`] sends what is buffered.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Flushes buffered spans and stops the export thread. Blocking: call
    /// it off the async workers (the export itself runs on `runtime`).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            eprintln!("warning: spans not exported at shutdown: {e}");
        }
    }
}

/// The layer to add to the subscriber, and its exporter; `None` when
/// telemetry is off. `runtime` runs the export calls (the batch processor
/// works on a thread of its own, outside the runtime).
pub fn otlp_layer<S>(
    settings: &Telemetry,
    runtime: tokio::runtime::Handle,
) -> Result<Option<(impl tracing_subscriber::Layer<S> + use<S>, Exporter)>, TelemetryError>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let Some(url) = &settings.traces_url else {
        return Ok(None);
    };
    connectors::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(settings.export_timeout)
        .build()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(RuntimeClient { client, runtime })
        .with_endpoint(url.as_str())
        .with_timeout(settings.export_timeout)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("hub");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    Ok(Some((layer, Exporter { provider })))
}

/// Posts through reqwest on the hub's runtime, whichever thread asks.
#[derive(Debug)]
struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let call = async move {
            let request = reqwest::Request::try_from(request)?;
            let answer = client.execute(request).await?;
            let mut response = Response::builder().status(answer.status().as_u16());
            if let Some(headers) = response.headers_mut() {
                headers.extend(answer.headers().iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            let body = answer.bytes().await?;
            Ok::<_, HttpError>(response.body(body)?)
        };
        self.runtime.spawn(call).await?
    }
}

/// The current span's trace context as a W3C `traceparent`, if it belongs
/// to an exported trace.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Joins a batch's span to the traces its jobs came from: the first
/// valid context becomes the parent, the rest are links. Nothing happens
/// (and nothing is parsed) for jobs queued without one.
pub fn join_traces<'a>(span: &tracing::Span, traceparents: impl IntoIterator<Item = &'a str>) {
    let propagator = TraceContextPropagator::new();
    let mut parented = false;
    for tp in traceparents {
        let carrier = HashMap::from([("traceparent".to_string(), tp.to_string())]);
        let cx = propagator.extract(&carrier);
        let sc = cx.span().span_context().clone();
        if !sc.is_valid() {
            continue;
        }
        if parented {
            span.add_link(sc);
        } else {
            parented = span.set_parent(cx).is_ok();
        }
    }
}
