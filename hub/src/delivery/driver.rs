//! One destination's pipeline, in the spirit of a Vector sink driver:
//! claim only this destination's due jobs, plan each from the subject's
//! current state, cut batches to the connector's limits (or let a partial
//! batch linger while others are in flight), send them with adaptive
//! concurrency through the shared rate limit, and record each batch's
//! outcomes as soon as it returns. A destination that hangs, throttles or
//! refuses our credentials holds back only its own driver.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use connectors::{BatchResult, CheckResult, DestinationSignal, Http, Item, Ticket};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use super::batcher::{Planned, full_batch_ready, next_batch};
use super::engine::Shared;
use super::judge::{Judge, Verdict, handed_back, settled};
use super::limits::{Aimd, Gate, SharedRateLimit};
use super::plan::{Plan, plan};
use super::recorder::Recorder;
use crate::destinations::ActiveDestination;
use crate::metrics::DestinationMetrics;
use crate::store::{
    AttemptOutcome, ClaimMode, DeliveryJob, DestinationState, DestinationStatus, PausedBy,
    SubjectState, now_ms,
};

/// Calls in flight a destination starts with; adaptive concurrency moves it.
const INITIAL_CONCURRENCY: usize = 32;
/// Waiting tickets checked per call to the connector.
const TICKETS_PER_CHECK: usize = 100;

/// A finished send or ticket check, back from its task.
enum Returned {
    Sent {
        batch: Vec<Planned>,
        result: BatchResult,
        sent_at: Instant,
        latency: Duration,
        saturated: bool,
        probe: bool,
    },
    Checked {
        jobs: Vec<DeliveryJob>,
        result: CheckResult,
        latency: Duration,
    },
}

pub(super) struct Driver {
    name: String,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    aimd: Aimd,
    gate: Arc<Gate>,
    queue: VecDeque<Planned>,
    tasks: JoinSet<Returned>,
    sends: usize,
    checking: bool,
    probing: bool,
    state: DestinationState,
    state_read: Option<Instant>,
    last_ticket_check: Option<Instant>,
    /// When a send last came back: a destination whose calls just returned
    /// is busy, not idle, and lets a partial batch linger.
    last_return: Option<Instant>,
    /// Nothing was due at the last claim: wait for a wake or this time.
    idle_until: Option<Instant>,
    recorder: Recorder,
    /// This destination's series, taken once: counting is an atomic add.
    metrics: DestinationMetrics,
}

impl Driver {
    pub(super) fn new(name: &str, shared: Arc<Shared>) -> Self {
        let wake = shared.wakers.get(name);
        let recorder = Recorder::start(
            shared.store.clone(),
            wake.clone(),
            name,
            shared.settings.lease,
        );
        Self {
            name: name.to_string(),
            aimd: Aimd::new(INITIAL_CONCURRENCY, shared.settings.concurrency),
            gate: Arc::new(Gate { rate: None }),
            queue: VecDeque::new(),
            tasks: JoinSet::new(),
            sends: 0,
            checking: false,
            probing: false,
            state: DestinationState::default(),
            state_read: None,
            last_ticket_check: None,
            last_return: None,
            idle_until: None,
            recorder,
            metrics: shared.metrics.destination(name),
            wake,
            shared,
        }
    }

    /// The destination as currently loaded, while it is enabled.
    fn destination(&self) -> Option<Arc<ActiveDestination>> {
        self.shared
            .destinations
            .load()
            .get(&self.name)
            .filter(|d| d.mapping.enabled && d.connector.is_some())
            .cloned()
    }

    /// Runs until shutdown or until the destination is removed or disabled
    /// (its pending jobs stay); in-flight sends finish and are recorded.
    pub(super) async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut woken = true;
        while !*shutdown.borrow() {
            let Some(dest) = self.destination() else {
                break;
            };
            self.step(&dest, woken).await;
            woken = false;
            let tick = self.next_tick();
            tokio::select! {
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Ok(done) = done {
                        self.returned(&dest, done).await;
                    }
                    // Reap every call that finished meanwhile before the next
                    // step: one step per returned call left finished calls
                    // counted as in flight while a claim waited for the
                    // database, and the destination ran at the loop's pace.
                    while let Some(done) = self.tasks.try_join_next() {
                        if let Ok(done) = done {
                            self.returned(&dest, done).await;
                        }
                    }
                    woken = true;
                }
                _ = self.wake.notified() => woken = true,
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => {}
            }
        }
        self.stop().await;
    }

    /// Hands back what was claimed but not sent, lets in-flight work finish
    /// and waits until every outcome is committed.
    async fn stop(mut self) {
        self.hand_back_queue(Duration::ZERO);
        let dest = self.destination();
        while let Some(done) = self.tasks.join_next().await {
            if let (Ok(done), Some(dest)) = (done, dest.as_ref()) {
                self.returned(dest, done).await;
            }
        }
        self.recorder.close().await;
    }

    pub(super) async fn close(self) {
        self.stop().await;
    }

    /// One round for tests and tools: claim what is due, send it all, wait
    /// for every answer and commit. Returns how many jobs it took.
    pub(super) async fn round(&mut self) -> usize {
        let Some(dest) = self.destination() else {
            return 0;
        };
        self.state_read = None;
        self.refresh_state().await;
        self.sync_gate(&dest);
        if self.state.status() != DestinationStatus::Active {
            return 0;
        }
        let claimed = self.claim(&dest, self.shared.settings.batch).await;
        self.check_tickets(&dest, true).await;
        loop {
            self.dispatch(&dest, true);
            match self.tasks.join_next().await {
                Some(Ok(done)) => self.returned(&dest, done).await,
                Some(Err(_)) => {}
                None => break,
            }
        }
        self.recorder.flush().await;
        claimed
    }

    async fn step(&mut self, dest: &Arc<ActiveDestination>, woken: bool) {
        self.refresh_state().await;
        self.sync_gate(dest);
        match self.state.status() {
            DestinationStatus::Paused => {
                self.hand_back_queue(Duration::ZERO);
                self.probe(dest).await;
            }
            DestinationStatus::Throttled => {
                let left = self.state.throttle_left().unwrap_or_default();
                self.hand_back_queue(left);
            }
            DestinationStatus::Active => {
                self.check_tickets(dest, false).await;
                let due = woken || self.idle_until.is_none_or(|t| Instant::now() >= t);
                let want = self.claim_size(dest);
                if due && want > 0 {
                    let got = self.claim(dest, want).await;
                    if got < want {
                        self.idle_until = Some(Instant::now() + self.idle_wait().await);
                    } else {
                        self.idle_until = None;
                    }
                }
                self.dispatch(dest, false);
            }
        }
    }

    /// How many more jobs to claim: enough for about two rounds of full
    /// batches at the current concurrency, within `delivery.batch`, once
    /// the queue is down to half of that; and for
    /// a rate-limited destination no more than it may send in a quarter of
    /// the lease (so that no claim outlives its lease waiting for a slot).
    fn claim_size(&self, dest: &ActiveDestination) -> usize {
        let Some(connector) = dest.connector.as_ref() else {
            return 0;
        };
        let per_call = connector.batch_policy().max_items.max(1);
        let mut target = (self.aimd.limit() * per_call * 2).min(self.shared.settings.batch);
        if let Some(limit) = connector.rate_limit() {
            let calls = self.shared.settings.lease.as_secs_f64()
                / 4.0
                / limit.interval().as_secs_f64().max(1e-6);
            target = target.min(((calls as usize).max(1)) * per_call);
        }
        // Whole batches: a remainder would wait out its linger half empty.
        if per_call > 1 && target >= per_call {
            target -= target % per_call;
        }
        // Refill in bulk: a claim is a write transaction, so it waits until
        // half the target has gone out instead of taking one job per call
        // that returns.
        if self.queue.len() > target / 2 {
            return 0;
        }
        target.saturating_sub(self.queue.len())
    }

    /// After an empty or short claim: until the next job is due, at most
    /// the poll interval (jobs from other processes do not wake us).
    async fn idle_wait(&self) -> Duration {
        let poll = self.shared.settings.poll_interval;
        match self.shared.store.next_due(&self.name).await {
            Ok(Some(d)) => d.min(poll),
            _ => poll,
        }
    }

    fn next_tick(&self) -> Duration {
        let poll = self.shared.settings.poll_interval;
        match self.state.status() {
            DestinationStatus::Paused => self.state.probe_in().unwrap_or(poll).min(poll),
            DestinationStatus::Throttled => {
                self.state.throttle_left().unwrap_or(poll).min(poll * 4)
            }
            DestinationStatus::Active => {
                let linger = self.queue.front().map(|p| {
                    (p.claimed_at + self.shared.settings.linger)
                        .saturating_duration_since(Instant::now())
                });
                let idle = self
                    .idle_until
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .unwrap_or(poll);
                linger.map_or(idle, |l| l.min(idle))
            }
        }
    }

    /// Re-reads the shared state when it is older than the poll interval.
    async fn refresh_state(&mut self) {
        let fresh = self
            .state_read
            .is_some_and(|t| t.elapsed() < self.shared.settings.poll_interval);
        if fresh {
            return;
        }
        match self.shared.store.destination_state(&self.name).await {
            Ok(state) => {
                self.state = state;
                self.state_read = Some(Instant::now());
            }
            Err(e) => {
                tracing::warn!(destination = %self.name, error = %e.log_text(), "destination state unreadable")
            }
        }
    }

    /// The rate limiter follows the connector's declared limit.
    fn sync_gate(&mut self, dest: &ActiveDestination) {
        let wanted = dest.connector.as_ref().and_then(|c| c.rate_limit());
        let current = self.gate.rate.as_ref().map(|r| r.limit());
        if wanted != current {
            self.gate = Arc::new(Gate {
                rate: wanted.map(|limit| {
                    Arc::new(SharedRateLimit::new(
                        self.shared.store.clone(),
                        &self.name,
                        limit,
                    ))
                }),
            });
        }
    }

    /// Claims up to `want` jobs, plans them, and queues what must be sent.
    async fn claim(&mut self, dest: &ActiveDestination, want: usize) -> usize {
        let lease = self.shared.settings.lease;
        let jobs = match self
            .shared
            .store
            .claim(&self.name, want, lease, ClaimMode::Deliver)
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(destination = %self.name, error = %e.log_text(), "claim failed; retrying");
                return 0;
            }
        };
        let n = jobs.len();
        if n > 0 {
            self.plan(dest, jobs).await;
        }
        n
    }

    /// Plans claimed jobs from their subjects' current state: sends go to
    /// the queue, the rest (suppressed, skipped) straight to the recorder.
    async fn plan(&mut self, dest: &ActiveDestination, jobs: Vec<DeliveryJob>) {
        let claimed_at = Instant::now();
        let mut ids: Vec<String> = jobs.iter().map(|j| j.subject_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let subjects: HashMap<String, SubjectState> = match self
            .shared
            .store
            .load_subjects(&ids)
            .await
        {
            Ok(list) => list.into_iter().map(|s| (s.id.clone(), s)).collect(),
            Err(e) => {
                tracing::error!(destination = %self.name, error = %e.log_text(), "loading subjects failed");
                let back = jobs
                    .into_iter()
                    .map(|j| handed_back(j, self.shared.policy.base))
                    .collect();
                self.recorder.submit(back);
                return;
            }
        };
        let connector = dest
            .connector
            .as_ref()
            .expect("enabled destinations have a connector");
        let identity_fields = connector.identity_fields();
        let mut settled_now = Vec::new();
        for job in jobs {
            let subject = subjects.get(&job.subject_id);
            let (action, note) = match plan(Some(dest), subject, job.attempt > 0) {
                Plan::Send(action) => (action, None),
                Plan::Withdraw { action, missing } => (
                    action,
                    Some(format!("consent withdrawn: {}", missing.join(", "))),
                ),
                Plan::Suppressed { missing } => {
                    settled_now.push(settled(
                        job,
                        AttemptOutcome::Suppressed,
                        format!("consent not granted: {}", missing.join(", ")),
                    ));
                    continue;
                }
                Plan::Skip(why) => {
                    settled_now.push(settled(job, AttemptOutcome::Skipped, why.into()));
                    continue;
                }
            };
            let Some(subject) = subject else {
                settled_now.push(settled(
                    job,
                    AttemptOutcome::Skipped,
                    "subject not found".into(),
                ));
                continue;
            };
            let item = build_item(dest, &identity_fields, subject, &job, action);
            self.queue.push_back(Planned {
                bytes: connector.item_bytes(&item),
                job,
                item,
                note,
                claimed_at,
            });
        }
        for f in &settled_now {
            self.metrics.outcome(f.outcome);
        }
        self.recorder.submit(settled_now);
    }

    /// Starts sends while concurrency allows. A partial batch waits up to
    /// `linger` for company while other batches are in flight; an idle
    /// destination sends at once. `all`: send partial batches now.
    fn dispatch(&mut self, dest: &Arc<ActiveDestination>, all: bool) {
        let Some(connector) = dest.connector.as_ref() else {
            return;
        };
        let policy = connector.batch_policy();
        let settings = &self.shared.settings;
        let linger = settings.linger;
        // A job claimed too long ago might outlive its lease in the call.
        // (Validated settings leave at least an http_timeout of room; a
        // lease shorter than the call is only ever a test's.)
        let stale = settings
            .lease
            .saturating_sub(settings.http_timeout + settings.linger + Duration::from_secs(1))
            .max(settings.lease / 2);
        while self.sends < self.aimd.limit() && !self.queue.is_empty() {
            let lingering = self
                .queue
                .front()
                .is_some_and(|p| p.claimed_at.elapsed() < linger);
            let busy = self.sends > 0 || self.last_return.is_some_and(|t| t.elapsed() < linger);
            if !all && busy && lingering && !full_batch_ready(&self.queue, &policy) {
                break;
            }
            let (batch, old): (Vec<Planned>, Vec<Planned>) = next_batch(&mut self.queue, &policy)
                .into_iter()
                .partition(|p| p.claimed_at.elapsed() < stale);
            if !old.is_empty() {
                self.recorder.submit(
                    old.into_iter()
                        .map(|p| handed_back(p.job, Duration::ZERO))
                        .collect(),
                );
            }
            if !batch.is_empty() {
                self.spawn_send(dest.clone(), batch, false);
            }
        }
    }

    fn spawn_send(&mut self, dest: Arc<ActiveDestination>, batch: Vec<Planned>, probe: bool) {
        self.sends += 1;
        let saturated = self.sends >= self.aimd.limit();
        let client = self.shared.client.clone();
        let gate = self.gate.clone();
        let deadline = self.shared.settings.http_timeout;
        let span = tracing::info_span!(
            "delivery",
            destination = %self.name,
            connector = %dest.mapping.connector,
            items = batch.len(),
            probe,
        );
        crate::telemetry::join_traces(
            &span,
            batch.iter().filter_map(|p| p.job.traceparent.as_deref()),
        );
        self.tasks.spawn(
            async move {
                let items: Vec<Item> = batch.iter().map(|p| p.item.clone()).collect();
                let http = Http::new(&client, gate.as_ref(), deadline);
                let started = Instant::now();
                let connector = dest.connector.as_ref().expect("checked by the driver");
                // The connector's own calls are bounded by `deadline`; this
                // bounds a connector that makes several.
                let result = tokio::time::timeout(deadline * 3, connector.send(&http, &items))
                    .await
                    .unwrap_or_else(|_| {
                        BatchResult::transport(items.len(), &connectors::CallError::Timeout)
                    });
                Returned::Sent {
                    batch,
                    result,
                    sent_at: started,
                    latency: started.elapsed(),
                    saturated,
                    probe,
                }
            }
            .instrument(span),
        );
    }

    /// Asks the connector about due vendor tickets, at most once per poll
    /// interval and one check at a time.
    async fn check_tickets(&mut self, dest: &Arc<ActiveDestination>, now: bool) {
        let poll = self.shared.settings.poll_interval;
        let recent = self.last_ticket_check.is_some_and(|t| t.elapsed() < poll);
        if self.checking || (recent && !now) {
            return;
        }
        self.last_ticket_check = Some(Instant::now());
        let lease = self.shared.settings.lease;
        let jobs = match self
            .shared
            .store
            .claim_tickets(&self.name, TICKETS_PER_CHECK, lease)
            .await
        {
            Ok(jobs) if !jobs.is_empty() => jobs,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(destination = %self.name, error = %e.log_text(), "claiming tickets failed");
                return;
            }
        };
        // A waiting row without its ticket cannot be checked: run it again.
        let (jobs, broken): (Vec<DeliveryJob>, Vec<DeliveryJob>) =
            jobs.into_iter().partition(|j| j.ticket.is_some());
        self.recorder.submit(
            broken
                .into_iter()
                .map(|j| handed_back(j, Duration::ZERO))
                .collect(),
        );
        if jobs.is_empty() {
            return;
        }
        self.checking = true;
        let client = self.shared.client.clone();
        let gate = self.gate.clone();
        let deadline = self.shared.settings.http_timeout;
        let dest = dest.clone();
        let span =
            tracing::info_span!("ticket_check", destination = %self.name, tickets = jobs.len());
        self.tasks.spawn(
            async move {
                let tickets: Vec<Ticket> = jobs.iter().filter_map(ticket_of).collect();
                let http = Http::new(&client, gate.as_ref(), deadline);
                let started = Instant::now();
                let connector = dest.connector.as_ref().expect("checked by the driver");
                let result = tokio::time::timeout(deadline * 3, connector.check(&http, &tickets))
                    .await
                    .unwrap_or_default();
                Returned::Checked {
                    jobs,
                    result,
                    latency: started.elapsed(),
                }
            }
            .instrument(span),
        );
    }

    /// A paused destination: when its probe is due and this process takes
    /// it, send one job; success resumes the destination.
    async fn probe(&mut self, dest: &Arc<ActiveDestination>) {
        let due = self.state.probe_in().is_some_and(|d| d.is_zero());
        if self.probing || !due {
            return;
        }
        let interval = self.shared.settings.probe_interval;
        match self.shared.store.take_probe(&self.name, interval).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(destination = %self.name, error = %e.log_text(), "probe not taken");
                return;
            }
        }
        self.state_read = None;
        let lease = self.shared.settings.lease;
        let jobs = match self
            .shared
            .store
            .claim(&self.name, 1, lease, ClaimMode::Probe)
            .await
        {
            Ok(jobs) => jobs,
            Err(_) => return,
        };
        if jobs.is_empty() {
            return;
        }
        tracing::info!(destination = %self.name, "probing a paused destination");
        self.plan(dest, jobs).await;
        if let Some(p) = self.queue.pop_front() {
            self.probing = true;
            self.spawn_send(dest.clone(), vec![p], true);
        }
        self.hand_back_queue(Duration::ZERO);
    }

    /// A send or check came back: judge it, act on its signal, record it.
    async fn returned(&mut self, dest: &ActiveDestination, done: Returned) {
        let judge = Judge {
            policy: &self.shared.policy,
            now_ms: now_ms(),
            latency: Duration::ZERO,
        };
        let (verdict, probe) = match done {
            Returned::Sent {
                batch,
                result,
                sent_at,
                latency,
                saturated,
                probe,
            } => {
                self.sends = self.sends.saturating_sub(1);
                self.last_return = Some(Instant::now());
                self.metrics.call(latency, batch.len());
                let verdict = Judge { latency, ..judge }.batch(batch, result);
                self.aimd
                    .observe(sent_at, latency, verdict.back_pressure, saturated);
                (verdict, probe)
            }
            Returned::Checked {
                jobs,
                result,
                latency,
            } => {
                self.checking = false;
                (Judge { latency, ..judge }.check(jobs, result), false)
            }
        };
        self.act_on_signal(dest, &verdict, probe).await;
        for f in verdict.finished.iter().filter(|f| f.attempted) {
            self.metrics.outcome(f.outcome);
            tracing::debug!(
                destination = %self.name,
                subject = %f.job.subject_id,
                job = %f.job.id,
                attempt = f.job.attempt + 1,
                outcome = f.outcome.as_str(),
                status = ?f.status_code,
                latency_ms = f.latency_ms,
                "delivery attempt"
            );
            if f.outcome == AttemptOutcome::Dead {
                tracing::info!(destination = %self.name, job = %f.job.id, status = ?f.status_code, "dead-lettered");
            }
        }
        self.recorder.submit(verdict.finished);
    }

    async fn act_on_signal(&mut self, dest: &ActiveDestination, verdict: &Verdict, probe: bool) {
        let store = &self.shared.store;
        match &verdict.signal {
            Some(DestinationSignal::Pause { .. }) => {
                // The reason may echo the vendor's body; the log names the status only.
                tracing::warn!(destination = %self.name, connector = %dest.mapping.connector, "destination refuses our credentials; paused, jobs kept");
                let reason = verdict
                    .finished
                    .first()
                    .and_then(|f| f.status_code)
                    .map_or("credentials refused".to_string(), |s| {
                        format!("credentials refused (HTTP {s})")
                    });
                let probe_in = Some(self.shared.settings.probe_interval);
                if let Err(e) = store
                    .pause_destination(&self.name, PausedBy::Vendor, &reason, probe_in)
                    .await
                {
                    tracing::error!(destination = %self.name, error = %e.log_text(), "could not record the pause");
                }
                self.state_read = None;
            }
            Some(DestinationSignal::Throttle { retry_after, .. }) => {
                let wait = (*retry_after).min(self.shared.policy.retry_after_cap);
                tracing::info!(destination = %self.name, wait_ms = wait.as_millis() as u64, "vendor throttles the destination");
                let status = verdict.finished.first().and_then(|f| f.status_code);
                let reason = status.map_or("throttled by the vendor".to_string(), |s| {
                    format!("throttled by the vendor (HTTP {s})")
                });
                if let Err(e) = store.throttle_destination(&self.name, wait, &reason).await {
                    tracing::error!(destination = %self.name, error = %e.log_text(), "could not record the throttle");
                }
                self.state_read = None;
            }
            None => {}
        }
        if probe {
            self.probing = false;
            let paused = matches!(verdict.signal, Some(DestinationSignal::Pause { .. }));
            if !paused {
                match store.resume_destination(&self.name).await {
                    Ok(true) => {
                        tracing::info!(destination = %self.name, "probe succeeded; destination resumed")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(destination = %self.name, error = %e.log_text(), "could not resume")
                    }
                }
                self.state_read = None;
                self.idle_until = None;
            }
        }
    }

    /// Claimed jobs not sent are handed back, due after `after`.
    fn hand_back_queue(&mut self, after: Duration) {
        if self.queue.is_empty() {
            return;
        }
        let back = self
            .queue
            .drain(..)
            .map(|p| handed_back(p.job, after))
            .collect();
        self.recorder.submit(back);
    }
}

/// The connector's view of a planned job.
fn build_item(
    dest: &ActiveDestination,
    identity_fields: &[String],
    subject: &SubjectState,
    job: &DeliveryJob,
    action: connectors::Action,
) -> Item {
    let holding = subject.received.get(&dest.mapping.name);
    let identity = match &action {
        connectors::Action::Upsert(fields) => identity_fields
            .iter()
            .filter_map(|f| fields.get(f).map(|v| (f.clone(), v.clone())))
            .collect(),
        // Deletes and withdrawals address what the vendor knows: the values
        // last delivered, or (never recorded) the current mapping.
        _ => match holding.filter(|h| !h.identity.is_empty()) {
            Some(h) => h.identity.clone(),
            None => {
                let fields = dest.mapping.map(&subject.profile, &|_| true);
                identity_fields
                    .iter()
                    .filter_map(|f| fields.get(f).map(|v| (f.clone(), v.clone())))
                    .collect()
            }
        },
    };
    Item {
        subject_id: job.subject_id.clone(),
        // Same content, same id: receivers may dedupe on it.
        delivery_id: format!("msg_{}_{}", job.id.replace('-', ""), subject.version),
        action,
        identity,
        record_id: holding.and_then(|h| h.record_id.clone()),
        consent: subject.consent_map(dest.mapping.brand.as_deref()),
    }
}

fn ticket_of(job: &DeliveryJob) -> Option<Ticket> {
    let pending = job.ticket.as_ref()?;
    let action = match pending.item.action {
        connectors::ActionKind::Upsert => connectors::Action::Upsert(Default::default()),
        connectors::ActionKind::Delete => connectors::Action::Delete,
        connectors::ActionKind::Suppress => connectors::Action::Suppress,
        connectors::ActionKind::Unsubscribe => connectors::Action::Unsubscribe,
    };
    Some(Ticket {
        ticket: pending.ticket.clone(),
        item: Item {
            subject_id: job.subject_id.clone(),
            delivery_id: pending.item.delivery_id.clone(),
            action,
            identity: pending.item.identity.clone(),
            record_id: pending.item.record_id.clone(),
            consent: Default::default(),
        },
    })
}
