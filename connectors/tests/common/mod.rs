//! What the vendor connector tests share: items, a send through a real
//! HTTP client on loopback, and reading outcomes.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use connectors::http::OpenGate;
use connectors::{Action, BatchResult, Connector, DestinationSignal, Http, Item, ItemOutcome};
use serde_json::{Map, Value};

pub fn connector(name: &str, settings: Value) -> Box<dyn Connector> {
    connectors::build(name, &settings).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("fields must be an object, not {other}"),
    }
}

pub fn item(n: usize, action: Action) -> Item {
    Item {
        subject_id: subject(n),
        delivery_id: format!("msg_{n:04}"),
        action,
        identity: Map::new(),
        record_id: None,
        consent: BTreeMap::new(),
    }
}

pub fn subject(n: usize) -> String {
    format!("0190a1b2-0000-7000-8000-{n:012}")
}

pub fn upsert(n: usize, mapped: Value) -> Item {
    item(n, Action::Upsert(fields(mapped)))
}

pub fn with_identity(mut item: Item, identity: Value) -> Item {
    item.identity = fields(identity);
    item
}

pub fn with_record(mut item: Item, record_id: &str) -> Item {
    item.record_id = Some(record_id.to_string());
    item
}

pub fn with_consent(mut item: Item, purpose: &str, granted: bool) -> Item {
    item.consent.insert(purpose.to_string(), granted);
    item
}

pub async fn send(c: &dyn Connector, items: &[Item]) -> BatchResult {
    connectors::install_crypto_provider();
    let client = reqwest::Client::new();
    let http = Http::new(&client, &OpenGate, Duration::from_secs(10));
    let result = c.send(&http, items).await;
    assert_eq!(
        result.outcomes.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..items.len()).collect::<Vec<_>>(),
        "one outcome per item, by index: {result:?}"
    );
    result
}

pub fn record_id(outcome: &ItemOutcome) -> String {
    match outcome {
        ItemOutcome::Delivered {
            record_id: Some(id),
        } => id.clone(),
        other => panic!("expected delivered with a record id, got {other:?}"),
    }
}

pub fn delivered(result: &BatchResult) -> usize {
    result
        .outcomes
        .iter()
        .filter(|(_, o)| matches!(o, ItemOutcome::Delivered { .. }))
        .count()
}

pub fn permanent(outcome: &ItemOutcome) -> &str {
    match outcome {
        ItemOutcome::Permanent { reason } => reason,
        other => panic!("expected permanent, got {other:?}"),
    }
}

pub fn all_retry(result: &BatchResult) -> bool {
    result
        .outcomes
        .iter()
        .all(|(_, o)| matches!(o, ItemOutcome::Retry { .. }))
}

pub fn throttle(result: &BatchResult) -> Duration {
    match &result.signal {
        Some(DestinationSignal::Throttle { retry_after, .. }) => *retry_after,
        other => panic!("expected a throttle signal, got {other:?}"),
    }
}

pub fn paused(result: &BatchResult) -> &str {
    match &result.signal {
        Some(DestinationSignal::Pause { reason }) => reason,
        other => panic!("expected a pause signal, got {other:?}"),
    }
}

/// The settings error for `settings`, which must hold no secret.
pub fn refused(name: &str, settings: Value, secret: &str) -> String {
    let e = connectors::build(name, &settings)
        .err()
        .unwrap_or_else(|| panic!("{name} accepted {settings}"))
        .to_string();
    assert!(!e.contains(secret), "the message shows the secret: {e}");
    e
}

/// `mappings/NAME.yaml` with every `${env:...}` replaced by a dummy value:
/// the connector must accept its settings, and its fields must include the
/// connector's identity fields.
pub fn check_example_mapping(name: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mappings")
        .join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut doc = vendor_fakes::yaml::to_json(&text).unwrap();
    fn resolve(v: &mut Value) {
        match v {
            Value::String(s) if s.contains("${env:") => *s = "dummy-secret".into(),
            Value::Array(items) => items.iter_mut().for_each(resolve),
            Value::Object(map) => map.values_mut().for_each(resolve),
            _ => {}
        }
    }
    resolve(&mut doc);
    assert_eq!(doc["connector"], name);
    assert_eq!(doc["enabled"], false, "examples stay disabled");
    let c = connector(name, doc["settings"].clone());
    let fields = doc["fields"].as_object().unwrap();
    for identity in c.identity_fields() {
        assert!(
            fields.contains_key(&identity),
            "{name}.yaml lacks `{identity}`"
        );
    }
}
