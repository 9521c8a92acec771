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

use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
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

/// Links a batch span keeps: enough to find the traces it served.
const MAX_LINKS: usize = 32;

/// The current span's trace context as a W3C `traceparent`, if it belongs
/// to an exported trace.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// A W3C `traceparent` (`00-TRACEID-SPANID-FLAGS`) as a remote span
/// context; `None` unless well formed with non-zero ids.
pub fn parse_traceparent(text: &str) -> Option<SpanContext> {
    let mut parts = text.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |p: &str, len: usize| p.len() == len && p.bytes().all(|b| b.is_ascii_hexdigit());
    if parts.next().is_some()
        || version != "00"
        || !hex(trace, 32)
        || !hex(span, 16)
        || !hex(flags, 2)
    {
        return None;
    }
    let sc = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    sc.is_valid().then_some(sc)
}

/// Joins a span to the traces its work came from: the first valid context
/// becomes the parent, the next few are links. Nothing is parsed or
/// allocated for work queued without one (telemetry off).
pub fn join_traces<'a>(span: &tracing::Span, traceparents: impl IntoIterator<Item = &'a str>) {
    let mut parented = false;
    let mut links = 0;
    for sc in traceparents.into_iter().filter_map(parse_traceparent) {
        if !parented {
            parented = span
                .set_parent(opentelemetry::Context::new().with_remote_span_context(sc))
                .is_ok();
            if !parented {
                return;
            }
        } else if links < MAX_LINKS {
            span.add_link(sc);
            links += 1;
        } else {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_parses_only_when_well_formed() {
        let sc = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("the W3C example");
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled() && sc.is_remote());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?}");
        }
    }
}
