//! The engine in this process, with a connector written for the test that
//! talks to a loopback job server over real HTTP: asynchronous vendor jobs
//! (`Accepted` tickets polled through `check`), and a lease that expires
//! while its call is still in flight. Both databases.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::{Path, State};
use common::Backend;
use connectors::{
    BatchPolicy, BatchResult, CheckResult, Connector, ConnectorKind, Http, Item, ItemOutcome,
    Ticket, TicketStatus,
};
use hub::config::DeliverySettings;
use hub::delivery::Engine;
use hub::destinations::{ActiveDestination, DestinationSet};
use hub::event::CanonicalEvent;
use hub::store::{self, Held, IngestItem, IngestOutcome, Store};
use serde_json::{Value, json};

backend_tests!(
    an_accepted_job_completes_only_when_its_ticket_is_confirmed,
    a_lease_that_expires_mid_call_lets_the_late_finish_change_nothing,
);

/// A vendor with asynchronous jobs: `POST /jobs` takes items and answers a
/// job id; `GET /jobs/{id}` says `pending` until the job was asked about
/// `polls` times, then `done` (or `failed`, for jobs whose subject is on
/// the fail list, once). `hold` delays every POST.
#[derive(Default)]
struct JobServer {
    jobs: HashMap<String, (u32, bool)>,
    posts: Vec<(Instant, Value)>,
    polls: u32,
    fail_once: Vec<String>,
    hold: Duration,
}

type Shared = Arc<Mutex<JobServer>>;

async fn job_server(server: Shared) -> String {
    let app = axum::Router::new()
        .route(
            "/jobs",
            axum::routing::post(
                |State(s): State<Shared>, axum::Json(body): axum::Json<Value>| async move {
                    let hold = s.lock().unwrap().hold;
                    tokio::time::sleep(hold).await;
                    let mut st = s.lock().unwrap();
                    let subject = body["items"][0]["subject"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let fail = st.fail_once.contains(&subject);
                    st.fail_once.retain(|f| *f != subject);
                    let id = format!("job-{}", st.jobs.len() + 1);
                    st.jobs.insert(id.clone(), (0, fail));
                    st.posts.push((Instant::now(), body));
                    axum::Json(json!({ "id": id }))
                },
            ),
        )
        .route(
            "/jobs/{id}",
            axum::routing::get(
                |State(s): State<Shared>, Path(id): Path<String>| async move {
                    let mut st = s.lock().unwrap();
                    let polls = st.polls;
                    let Some(job) = st.jobs.get_mut(&id) else {
                        return axum::Json(json!({ "state": "unknown" }));
                    };
                    job.0 += 1;
                    let state = match (job.0 > polls, job.1) {
                        (false, _) => "pending",
                        (true, false) => "done",
                        (true, true) => "failed",
                    };
                    axum::Json(json!({ "state": state }))
                },
            ),
        )
        .with_state(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// The test's connector: one item per job, every upsert Accepted.
#[derive(Debug)]
struct JobConnector {
    url: String,
}

#[async_trait::async_trait]
impl Connector for JobConnector {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Webhook
    }

    fn batch_policy(&self) -> BatchPolicy {
        BatchPolicy::SINGLE
    }

    async fn send(&self, http: &Http<'_>, batch: &[Item]) -> BatchResult {
        let items: Vec<Value> = batch
            .iter()
            .map(|i| json!({"subject": i.subject_id, "action": i.action.kind()}))
            .collect();
        let request = http
            .client()
            .post(format!("{}/jobs", self.url))
            .json(&json!({ "items": items }));
        match http.send(request).await {
            Ok(resp) => {
                let id = resp
                    .json::<Value>()
                    .ok()
                    .and_then(|v| v["id"].as_str().map(String::from));
                match id {
                    Some(ticket) => BatchResult::uniform(
                        batch.len(),
                        Some(resp.status),
                        ItemOutcome::Accepted {
                            ticket,
                            check_after: Duration::from_millis(50),
                        },
                    ),
                    None => BatchResult::uniform(
                        batch.len(),
                        Some(resp.status),
                        ItemOutcome::Retry {
                            reason: "no job id".into(),
                        },
                    ),
                }
            }
            Err(e) => BatchResult::transport(batch.len(), &e),
        }
    }

    async fn check(&self, http: &Http<'_>, tickets: &[Ticket]) -> CheckResult {
        let mut statuses = Vec::new();
        for (i, t) in tickets.iter().enumerate() {
            let request = http.client().get(format!("{}/jobs/{}", self.url, t.ticket));
            let Ok(resp) = http.send(request).await else {
                continue;
            };
            let state = resp.json::<Value>().unwrap_or_default()["state"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            statuses.push((
                i,
                match state.as_str() {
                    "done" => TicketStatus::Confirmed {
                        record_id: Some(format!("rec-{}", t.ticket)),
                    },
                    "failed" => TicketStatus::Failed {
                        reason: "the vendor's job failed".into(),
                        retry: true,
                    },
                    _ => TicketStatus::Pending {
                        check_after: Duration::from_millis(50),
                    },
                },
            ));
        }
        CheckResult {
            status: Some(200),
            statuses,
            signal: None,
        }
    }
}

struct World {
    store: Arc<dyn Store>,
    set: Arc<ArcSwap<DestinationSet>>,
    _db: common::Db,
    _dir: tempfile::TempDir,
}

async fn world(backend: Backend, url: &str) -> World {
    connectors::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let db = common::Db::create(backend, dir.path()).await;
    let store = store::connect(&db.url).await.unwrap();
    let text = "destination: jobs\nconnector: webhook\nsettings: {}\nfields:\n  name: { from: name.givenName }\n";
    let mapping = mapping::parse_file(std::path::Path::new("jobs.yaml"), text, &|_| None).unwrap();
    let set = DestinationSet::from_destinations(vec![ActiveDestination {
        mapping,
        connector: Some(Box::new(JobConnector {
            url: url.to_string(),
        })),
    }]);
    World {
        store,
        set: Arc::new(ArcSwap::from_pointee(set)),
        _db: db,
        _dir: dir,
    }
}

fn settings(lease: Duration) -> DeliverySettings {
    DeliverySettings {
        retry_base: Duration::from_millis(50),
        retry_cap: Duration::from_millis(200),
        poll_interval: Duration::from_millis(20),
        http_timeout: Duration::from_secs(5),
        lease,
        ..Default::default()
    }
}

/// Starts an engine over `w`; returns its stop switch and task.
fn start(
    w: &World,
    settings: DeliverySettings,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let engine = Engine::new(
        w.store.clone(),
        w.set.clone(),
        settings,
        Default::default(),
        Default::default(),
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    (stop, tokio::spawn(engine.run(stopped)))
}

async fn ingest(store: &dyn Store, ext: &str) -> String {
    let event: CanonicalEvent = serde_json::from_value(json!({
        "type": "profile.upserted",
        "subject": {"externalId": ext, "name": {"givenName": ext}},
        "occurredAt": "2026-11-23T10:00:00Z",
    }))
    .unwrap();
    let out = store
        .ingest(&[IngestItem {
            source: "ciam".into(),
            message_id: format!("m-{ext}"),
            event,
            destinations: vec!["jobs".into()],
            received_at: store::now_ms(),
            traceparent: None,
        }])
        .await
        .unwrap();
    match &out[0] {
        IngestOutcome::Applied { subject_id, .. } => subject_id.clone(),
        other => panic!("{other:?}"),
    }
}

async fn held(store: &dyn Store, id: &str) -> Option<Held> {
    store
        .load_subjects(&[id.to_string()])
        .await
        .unwrap()
        .remove(0)
        .held_by("jobs")
}

async fn outcomes(store: &dyn Store, id: &str) -> Vec<String> {
    let mut list = store.attempts(Some(id), 100).await.unwrap();
    list.reverse();
    list.into_iter().map(|a| a.outcome).collect()
}

async fn an_accepted_job_completes_only_when_its_ticket_is_confirmed(backend: Backend) {
    let server: Shared = Default::default();
    server.lock().unwrap().polls = 2;
    let url = job_server(server.clone()).await;
    let w = world(backend, &url).await;
    let ada = ingest(w.store.as_ref(), "ada").await;
    let grace = ingest(w.store.as_ref(), "grace").await;
    server.lock().unwrap().fail_once.push(grace.clone());
    let (stop, task) = start(&w, settings(Duration::from_secs(30)));

    // Ada's job: accepted, then pending twice, then confirmed.
    let deadline = Instant::now() + Duration::from_secs(20);
    while held(w.store.as_ref(), &ada).await.is_none() {
        let s = w.store.stats().await.unwrap();
        if server
            .lock()
            .unwrap()
            .jobs
            .get("job-1")
            .is_some_and(|j| j.0 < 3)
        {
            assert_eq!(
                held(w.store.as_ref(), &ada).await,
                None,
                "held only once confirmed"
            );
            assert!(s.waiting_jobs + s.pending_jobs + s.running_jobs > 0);
        }
        assert!(Instant::now() < deadline, "ada never confirmed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let polls = server
        .lock()
        .unwrap()
        .jobs
        .values()
        .map(|j| j.0)
        .max()
        .unwrap();
    assert!(
        polls >= 3,
        "confirmed on the third check, after two pending answers"
    );
    assert_eq!(
        outcomes(w.store.as_ref(), &ada).await,
        ["accepted", "delivered"]
    );
    let ada_state = w
        .store
        .load_subjects(std::slice::from_ref(&ada))
        .await
        .unwrap()
        .remove(0);
    assert!(
        ada_state.received["jobs"]
            .record_id
            .as_deref()
            .is_some_and(|r| r.starts_with("rec-job-")),
        "the confirmation's record id is kept"
    );

    // Grace's first job fails at the vendor: retried as a new job, then confirmed.
    let deadline = Instant::now() + Duration::from_secs(20);
    while held(w.store.as_ref(), &grace).await.is_none() {
        assert!(Instant::now() < deadline, "grace never confirmed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        outcomes(w.store.as_ref(), &grace).await,
        ["accepted", "retry", "accepted", "delivered"],
    );
    assert_eq!(
        server.lock().unwrap().posts.len(),
        3,
        "one job each, and one more for the failed one"
    );
    let _ = stop.send(true);
    task.await.unwrap();
    let s = w.store.stats().await.unwrap();
    assert_eq!((s.pending_jobs, s.running_jobs, s.waiting_jobs), (0, 0, 0));
}

async fn a_lease_that_expires_mid_call_lets_the_late_finish_change_nothing(backend: Backend) {
    let server: Shared = Default::default();
    server.lock().unwrap().hold = Duration::from_millis(1_200);
    let url = job_server(server.clone()).await;
    let w = world(backend, &url).await;
    let ada = ingest(w.store.as_ref(), "ada").await;
    // Engine A claims with a lease far shorter than the vendor's answer.
    let lease = Duration::from_millis(300);
    let (stop_a, task_a) = start(&w, settings(lease));
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.store.stats().await.unwrap().running_jobs == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A stops claiming (its call stays in flight); engine B, another
    // process say, finds the lease expired and sends again.
    let _ = stop_a.send(true);
    let (stop_b, task_b) = start(&w, settings(Duration::from_secs(30)));
    let deadline = Instant::now() + Duration::from_secs(20);
    while held(w.store.as_ref(), &ada).await.is_none() {
        assert!(Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let A's late answer arrive and be recorded (or not).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let _ = stop_b.send(true);
    task_a.await.unwrap();
    task_b.await.unwrap();
    let posts = server.lock().unwrap().posts.len();
    assert_eq!(
        posts, 2,
        "the expired claim was sent again, once: {posts} calls"
    );
    let list = outcomes(w.store.as_ref(), &ada).await;
    assert_eq!(
        list.iter().filter(|o| *o == "delivered").count(),
        1,
        "the late finish wrote nothing: {list:?}"
    );
    let s = w.store.stats().await.unwrap();
    assert_eq!(
        (s.pending_jobs, s.running_jobs, s.waiting_jobs),
        (0, 0, 0),
        "{s:?}"
    );
}
