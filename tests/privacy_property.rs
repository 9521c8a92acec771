//! Property test of the privacy core: random interleavings of profile
//! changes, consent grants and withdrawals (global and per brand), erasures
//! and destination outages, with the real store, engine, connector and a
//! recording HTTP sink. Invariants, checked against what the sink received:
//! 1. no destination receives data of a subject whose purpose was not granted
//!    at the instant of sending (fields with their own purpose included);
//! 2. a withdrawal reaches each affected destination exactly once;
//! 3. an erasure ends with a delete at every destination that had the subject,
//!    and no PII left in the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use connectors::webhook::WebhookEvent;
use hub::config::{DeliverySettings, Vocabulary};
use hub::delivery::Engine;
use hub::destinations::{self, DestinationSet};
use hub::event::CanonicalEvent;
use hub::store::{self, IngestItem, IngestOutcome, Store};
use proptest::prelude::*;
use serde_json::json;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PURPOSES: [&str; 2] = ["marketing_email", "analytics"];
const DESTS: [&str; 3] = ["mkt", "ana", "acme-crm"];
const SUBJECTS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Upsert(usize),
    Consent {
        subject: usize,
        purpose: usize,
        brand: bool,
        granted: bool,
    },
    /// By `hub erase` / the admin API, or by a `profile.deleted` event.
    Erase(usize, bool),
    Outage {
        dest: usize,
        down: bool,
    },
    Deliver,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..SUBJECTS).prop_map(Op::Upsert),
        4 => (0..SUBJECTS, 0..2usize, any::<bool>(), any::<bool>())
            .prop_map(|(subject, purpose, brand, granted)| Op::Consent { subject, purpose, brand, granted }),
        1 => (0..SUBJECTS, any::<bool>()).prop_map(|(s, by_event)| Op::Erase(s, by_event)),
        1 => (0..3usize, any::<bool>()).prop_map(|(dest, down)| Op::Outage { dest, down }),
        4 => Just(Op::Deliver),
    ]
}

#[derive(Clone, Default)]
struct Sink {
    log: Arc<Mutex<Vec<(String, WebhookEvent)>>>,
    down: Arc<Mutex<BTreeMap<String, bool>>>,
}

async fn record(
    State(s): State<Sink>,
    Path(dest): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    if s.down.lock().unwrap().get(&dest).copied().unwrap_or(false) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let event: WebhookEvent = serde_json::from_slice(&body).unwrap();
    s.log.lock().unwrap().push((dest, event));
    StatusCode::NO_CONTENT
}

fn mapping(name: &str, url: &str, extra: &str) -> String {
    format!(
        "destination: {name}\nconnector: webhook\nsettings:\n  url: {url}/hook/{name}\n  secret: {SECRET}\n{extra}\
         fields:\n  email:\n    from: emails[primary eq true].value\n  score:\n    from: score\n    consent: analytics\n"
    )
}

/// The model: what the customer agreed to, as the hub should see it.
#[derive(Default)]
struct Model {
    /// (subject, purpose, brand) -> granted; brand "" is global.
    consent: HashMap<(usize, &'static str, &'static str), bool>,
    ids: HashMap<usize, String>,
    erased: Vec<String>,
    clock: i64,
}

impl Model {
    fn granted(&self, subject: usize, purpose: &'static str, brand: &'static str) -> bool {
        if !brand.is_empty()
            && let Some(g) = self.consent.get(&(subject, purpose, brand))
        {
            return *g;
        }
        self.consent
            .get(&(subject, purpose, ""))
            .copied()
            .unwrap_or(false)
    }

    /// (purposes, brand, in brand?) of each destination.
    fn needs(dest: &str) -> (&'static [&'static str], &'static str) {
        match dest {
            "mkt" => (&["marketing_email"], ""),
            "ana" => (&["analytics"], ""),
            _ => (&["marketing_email"], "acme"),
        }
    }

    fn allowed(&self, subject: usize, dest: &str) -> bool {
        let (purposes, brand) = Self::needs(dest);
        // Subjects 0 and 1 are acme customers; subject 2 is not.
        if brand == "acme" && subject == 2 {
            return false;
        }
        purposes.iter().all(|p| self.granted(subject, p, brand))
    }
}

struct World {
    store: Arc<dyn Store>,
    engine: Engine,
    names: Vec<String>,
    sink: Sink,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    connectors::install_crypto_provider();
    let sink = Sink::default();
    let app = axum::Router::new()
        .route("/hook/{dest}", axum::routing::post(record))
        .with_state(sink.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let maps = dir.path().join("mappings");
    std::fs::create_dir_all(&maps).unwrap();
    std::fs::write(
        maps.join("mkt.yaml"),
        mapping(
            "mkt",
            &url,
            "consent: [marketing_email]\non_withdraw: suppress\n",
        ),
    )
    .unwrap();
    std::fs::write(
        maps.join("ana.yaml"),
        mapping("ana", &url, "consent: [analytics]\non_withdraw: delete\n"),
    )
    .unwrap();
    std::fs::write(
        maps.join("acme.yaml"),
        mapping(
            "acme-crm",
            &url,
            "brand: acme\nconsent: [marketing_email]\non_withdraw: unsubscribe\n",
        ),
    )
    .unwrap();
    let vocab = Vocabulary {
        purposes: PURPOSES.iter().map(|s| s.to_string()).collect(),
        brands: vec!["acme".into()],
    };
    let (set, errors) = destinations::reload(&maps, &DestinationSet::default(), &vocab);
    assert!(errors.is_empty(), "{errors:?}");
    let names = set.enabled_names();
    assert_eq!(names.len(), 3);
    let store = store::connect(&format!("sqlite://{}", dir.path().join("hub.db").display()))
        .await
        .unwrap();
    let settings = DeliverySettings {
        retry_base: Duration::from_millis(1),
        retry_cap: Duration::from_millis(4),
        max_attempts: 10_000,
        poll_interval: Duration::from_millis(5),
        http_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let engine = Engine::new(
        store.clone(),
        Arc::new(ArcSwap::from_pointee(set)),
        settings,
        Default::default(),
        Default::default(),
    )
    .unwrap();
    World {
        store,
        engine,
        names,
        sink,
        _dir: dir,
    }
}

impl World {
    async fn ingest(&self, model: &mut Model, subject: usize, body: serde_json::Value) {
        model.clock += 1;
        let mut event = json!({
            "type": "profile.upserted",
            "subject": {"externalId": format!("c{subject}")},
            "occurredAt": chrono::DateTime::from_timestamp(1_790_000_000 + model.clock, 0).unwrap().to_rfc3339(),
        });
        for (k, v) in body.as_object().unwrap() {
            event[k] = v.clone();
        }
        let event: CanonicalEvent = serde_json::from_value(event).unwrap();
        let item = IngestItem {
            source: "ciam".into(),
            message_id: format!("m{}", model.clock),
            event,
            destinations: self.names.clone(),
            received_at: store::now_ms(),
            traceparent: None,
        };
        let out = self.store.ingest(&[item]).await.unwrap();
        if let IngestOutcome::Applied { subject_id, .. } = &out[0] {
            model.ids.insert(subject, subject_id.clone());
        }
    }

    /// Runs the engine over everything due, checking invariant 1 on each send.
    async fn deliver(&self, model: &Model, rounds: usize) {
        for _ in 0..rounds {
            let before = self.sink.log.lock().unwrap().len();
            let n = self.engine.run_once().await;
            let sent: Vec<(String, WebhookEvent)> =
                self.sink.log.lock().unwrap()[before..].to_vec();
            for (dest, event) in &sent {
                if event.event_type != "profile.upserted" {
                    continue;
                }
                let subject = model
                    .ids
                    .iter()
                    .find(|(_, id)| **id == event.subject)
                    .map(|(s, _)| *s)
                    .expect("data of an erased subject was sent");
                assert!(
                    model.allowed(subject, dest),
                    "{dest} got data of subject {subject} without consent"
                );
                if event.data.contains_key("score") {
                    assert!(
                        model.granted(subject, "analytics", Model::needs(dest).1),
                        "{dest} got a field without its purpose"
                    );
                }
            }
            if n == 0 {
                tokio::time::sleep(Duration::from_millis(6)).await;
            }
        }
    }
}

async fn run(ops: Vec<Op>) {
    let w = world().await;
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Upsert(s) => {
                let brands = if s < 2 { json!(["acme"]) } else { json!([]) };
                w.ingest(&mut model, s, json!({
                    "subject": {"externalId": format!("c{s}"), "emails": [{"value": format!("c{s}@example.com"), "primary": true}], "score": 5},
                    "brands": brands,
                }))
                .await;
            }
            Op::Consent {
                subject,
                purpose,
                brand,
                granted,
            } => {
                let purpose = PURPOSES[purpose];
                let state = if granted { "granted" } else { "denied" };
                let body = if brand {
                    json!({"type": "consent.updated", "brandConsent": {"acme": {purpose: state}}})
                } else {
                    json!({"type": "consent.updated", "consent": {purpose: state}})
                };
                w.ingest(&mut model, subject, body).await;
                let brand = if brand { "acme" } else { "" };
                model.consent.insert((subject, purpose, brand), granted);
            }
            Op::Erase(s, by_event) => {
                if let Some(id) = model.ids.get(&s).cloned() {
                    if by_event {
                        w.ingest(&mut model, s, json!({"type": "profile.deleted"}))
                            .await;
                    } else {
                        assert!(
                            w.store
                                .request_erasure(&id, &w.names, store::now_ms())
                                .await
                                .unwrap()
                        );
                    }
                    model.ids.remove(&s);
                    model.erased.push(id);
                    // A new profile for this customer would be a new subject.
                    model.consent.retain(|k, _| k.0 != s);
                }
            }
            Op::Outage { dest, down } => {
                w.sink
                    .down
                    .lock()
                    .unwrap()
                    .insert(DESTS[dest].to_string(), down);
            }
            Op::Deliver => w.deliver(&model, 3).await,
        }
    }
    // Everything comes back up and drains.
    w.sink.down.lock().unwrap().clear();
    for _ in 0..100 {
        w.deliver(&model, 5).await;
        let stats = w.store.stats().await.unwrap();
        if stats.pending_jobs == 0 && stats.running_jobs == 0 {
            break;
        }
    }
    let stats = w.store.stats().await.unwrap();
    assert_eq!(
        (stats.pending_jobs, stats.running_jobs, stats.dead_letters),
        (0, 0, 0)
    );

    let log = w.sink.log.lock().unwrap().clone();
    let mut by_pair: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for (dest, e) in &log {
        by_pair
            .entry((dest.clone(), e.subject.clone()))
            .or_default()
            .push(e.event_type.as_str());
    }
    for ((dest, subject_id), events) in &by_pair {
        // Invariant 2: a withdrawal (or delete) only after data, never twice in a row.
        let erased = model.erased.contains(subject_id);
        for pair in events.windows(2) {
            let repeated = pair[0] != "profile.upserted" && pair[1] != "profile.upserted";
            // Only an erasure may follow a withdrawal: it must delete what was suppressed.
            let erasure_after_withdrawal =
                erased && pair[0] != "profile.deleted" && pair[1] == "profile.deleted";
            assert!(
                !repeated || erasure_after_withdrawal,
                "{dest}/{subject_id}: {events:?}"
            );
        }
        assert_ne!(
            events[0], "profile.suppressed",
            "{dest}: withdrawal before any data"
        );
        let last = *events.last().unwrap();
        if erased {
            // Invariant 3: every destination that had the subject deleted it.
            assert_eq!(last, "profile.deleted", "{dest}/{subject_id}: {events:?}");
        } else if let Some((s, _)) = model.ids.iter().find(|(_, id)| *id == subject_id)
            && !model.allowed(*s, dest)
        {
            // The withdrawal reached it: it holds no data now.
            assert_ne!(last, "profile.upserted", "{dest}/{subject_id}: {events:?}");
        }
    }
    let receipts = w
        .store
        .complete_erasures(store::now_ms(), 86_400_000)
        .await
        .unwrap();
    assert_eq!(receipts.len(), model.erased.len());
    for r in &receipts {
        assert!(r.unconfirmed.is_empty(), "{r:?}");
        let report = w
            .store
            .subject_report(&r.subject_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.profile, json!({}), "PII left after erasure");
        assert!(report.deliveries.iter().all(|d| d.detail.is_none()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn consent_withdrawal_and_erasure_hold_under_any_interleaving(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run(ops));
    }
}

#[tokio::test]
async fn a_retry_uses_the_consent_state_of_its_own_moment() {
    let w = world().await;
    let mut model = Model::default();
    w.sink.down.lock().unwrap().insert("mkt".into(), true);
    w.ingest(&mut model, 2, json!({
        "subject": {"externalId": "c2", "emails": [{"value": "c2@example.com", "primary": true}]},
        "consent": {"marketing_email": "granted"},
    }))
    .await;
    model.consent.insert((2, "marketing_email", ""), true);
    w.deliver(&model, 3).await;
    let attempts = w.store.attempts(None, 100).await.unwrap();
    assert!(
        attempts
            .iter()
            .any(|a| a.destination == "mkt" && a.outcome == "retry"),
        "mkt is in retry"
    );
    // Consent is withdrawn while the delivery waits for its retry.
    w.ingest(
        &mut model,
        2,
        json!({"type": "consent.updated", "consent": {"marketing_email": "denied"}}),
    )
    .await;
    model.consent.insert((2, "marketing_email", ""), false);
    w.sink.down.lock().unwrap().clear();
    w.deliver(&model, 20).await;
    let mkt_got_data = w.sink.log.lock().unwrap().iter().any(|(d, _)| d == "mkt");
    assert!(
        !mkt_got_data,
        "the retry sent nothing: consent is now denied"
    );
    let attempts = w.store.attempts(None, 100).await.unwrap();
    let last_mkt = attempts.iter().find(|a| a.destination == "mkt").unwrap();
    assert_eq!(last_mkt.outcome, "suppressed");
    assert_eq!(
        last_mkt.detail.as_deref(),
        Some("consent not granted: marketing_email")
    );
}
