use super::*;
use crate::DestinationSignal;
use crate::http::OpenGate;
use crate::standard_webhooks::verify;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use std::sync::{Arc, Mutex};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type Seen = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A receiver that records each request and answers with `reply(body)`.
async fn receiver(
    reply: impl Fn(&[u8]) -> axum::response::Response + Send + Sync + 'static,
) -> (String, Seen) {
    let seen: Seen = Default::default();
    let s = seen.clone();
    let reply = Arc::new(reply);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let s = s.clone();
            let reply = reply.clone();
            async move {
                s.lock().unwrap().push((headers, body.to_vec()));
                reply(&body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

fn status(code: StatusCode) -> impl Fn(&[u8]) -> axum::response::Response + Send + Sync {
    move |_| (code, "nope").into_response()
}

fn item(n: usize, action: Action) -> Item {
    Item {
        subject_id: format!("0190-subject-{n}"),
        delivery_id: format!("msg_{n}"),
        action,
        identity: Default::default(),
        record_id: None,
        consent: Default::default(),
    }
}

fn upsert(n: usize) -> Item {
    let mut fields = serde_json::Map::new();
    fields.insert("email".into(), format!("u{n}@example.com").into());
    item(n, Action::Upsert(fields))
}

fn connector(settings: serde_json::Value) -> WebhookConnector {
    WebhookConnector::from_settings(&settings).unwrap()
}

async fn send(c: &WebhookConnector, items: &[Item]) -> BatchResult {
    crate::install_crypto_provider();
    let client = reqwest::Client::new();
    c.send(
        &Http::new(&client, &OpenGate, Duration::from_secs(5)),
        items,
    )
    .await
}

#[tokio::test]
async fn posts_signed_standard_webhook_body() {
    let (url, seen) = receiver(status(StatusCode::NO_CONTENT)).await;
    let c = connector(serde_json::json!({"url": url, "secret": SECRET}));
    let out = send(&c, &[upsert(1)]).await;
    assert_eq!(
        out.outcomes,
        vec![(0, ItemOutcome::Delivered { record_id: None })]
    );
    assert_eq!(out.status, Some(204));
    let (headers, body) = seen.lock().unwrap().pop().unwrap();
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    assert_eq!(h(HEADER_ID), Some("msg_1"));
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let now = chrono::Utc::now().timestamp();
    verify(
        &[secret],
        h(HEADER_ID),
        h(HEADER_TIMESTAMP),
        h(HEADER_SIGNATURE),
        &body,
        now,
        300,
    )
    .unwrap();
    let event: WebhookEvent = serde_json::from_slice(&body).unwrap();
    assert_eq!(event.event_type, "profile.upserted");
    assert_eq!(event.subject, "0190-subject-1");
    assert_eq!(event.data["email"], "u1@example.com");
}

#[tokio::test]
async fn delete_has_empty_data_and_a_refusal_is_permanent() {
    let (url, seen) = receiver(status(StatusCode::BAD_REQUEST)).await;
    let c = connector(serde_json::json!({"url": url, "secret": SECRET}));
    let out = send(&c, &[item(1, Action::Delete)]).await;
    assert_eq!(
        out.outcomes,
        vec![(
            0,
            ItemOutcome::Permanent {
                reason: "HTTP 400: nope".into()
            }
        )]
    );
    let (_, body) = seen.lock().unwrap().pop().unwrap();
    let event: WebhookEvent = serde_json::from_slice(&body).unwrap();
    assert_eq!(event.event_type, "profile.deleted");
    assert!(event.data.is_empty());
}

#[tokio::test]
async fn throttling_and_refused_credentials_are_destination_signals() {
    let (url, _) = receiver(|_| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "7")],
            "slow",
        )
            .into_response()
    })
    .await;
    let out = send(
        &connector(serde_json::json!({"url": url, "secret": SECRET})),
        &[upsert(1)],
    )
    .await;
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Retry { .. }));
    assert!(matches!(
        out.signal,
        Some(DestinationSignal::Throttle { retry_after, .. }) if retry_after == Duration::from_secs(7)
    ));
    let (url, _) = receiver(status(StatusCode::UNAUTHORIZED)).await;
    let out = send(
        &connector(serde_json::json!({"url": url, "secret": SECRET})),
        &[upsert(1)],
    )
    .await;
    assert!(matches!(out.signal, Some(DestinationSignal::Pause { .. })));
}

#[tokio::test]
async fn connection_refused_is_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let c = connector(serde_json::json!({"url": url, "secret": SECRET}));
    let out = send(&c, &[item(1, Action::Suppress)]).await;
    assert_eq!(out.status, None);
    assert!(matches!(out.outcomes[0].1, ItemOutcome::Retry { .. }));
}

#[tokio::test]
async fn a_batch_answered_207_fails_only_the_refused_events() {
    // Refuses every event whose subject number is divisible by 40, by id.
    let (url, seen) = receiver(|body| {
        let batch: WebhookBatch = serde_json::from_slice(body).unwrap();
        let results: Vec<EventResult> = batch
            .events
            .iter()
            .filter(|e| {
                e.subject
                    .rsplit('-')
                    .next()
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
                    % 40
                    == 0
            })
            .map(|e| EventResult {
                id: e.id.clone().unwrap(),
                status: 422,
                error: Some(format!("{} is not allowed", e.subject)),
            })
            .collect();
        (
            StatusCode::MULTI_STATUS,
            axum::Json(BatchAnswer { results }),
        )
            .into_response()
    })
    .await;
    let c =
        connector(serde_json::json!({"url": url, "secret": SECRET, "batch": {"max_items": 100}}));
    assert_eq!(c.batch_policy().max_items, 100);
    let items: Vec<Item> = (1..=100).map(upsert).collect();
    let out = send(&c, &items).await;
    assert_eq!(seen.lock().unwrap().len(), 1, "one POST for the batch");
    let failed: Vec<(usize, String)> = out
        .outcomes
        .iter()
        .filter_map(|(i, o)| match o {
            ItemOutcome::Permanent { reason } => Some((*i, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            (39, "HTTP 422: 0190-subject-40 is not allowed".to_string()),
            (79, "HTTP 422: 0190-subject-80 is not allowed".to_string()),
        ]
    );
    let delivered = out
        .outcomes
        .iter()
        .filter(|(_, o)| matches!(o, ItemOutcome::Delivered { .. }))
        .count();
    assert_eq!(delivered, 98);
    let (headers, body) = seen.lock().unwrap().pop().unwrap();
    let batch: WebhookBatch = serde_json::from_slice(&body).unwrap();
    assert_eq!(batch.events.len(), 100);
    assert_eq!(batch.events[0].id.as_deref(), Some("msg_1"));
    let id = headers.get(HEADER_ID).unwrap().to_str().unwrap();
    assert_eq!(id, batch_id(&items), "the same events give the same id");
}

#[test]
fn rejects_bad_settings() {
    for bad in [
        serde_json::json!({"url": "ftp://x", "secret": SECRET}),
        serde_json::json!({"url": "http://x", "secret": "plain"}),
        serde_json::json!({"url": "http://x", "secret": SECRET, "bogus": 1}),
        serde_json::json!({"url": "http://x", "secret": SECRET, "rate_limit": 0}),
        serde_json::json!({"url": "http://x", "secret": SECRET, "batch": {"max_items": 0}}),
    ] {
        assert!(WebhookConnector::from_settings(&bad).is_err(), "{bad}");
    }
}
