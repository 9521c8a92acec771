use super::*;
use crate::store::{JobReason, PendingTicket};
use connectors::{Action, ActionKind, Item};
use tokio::time::Instant;

fn policy() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_secs(5),
        cap: Duration::from_secs(3600),
        retry_after_cap: Duration::from_secs(600),
        max_attempts: 3,
        max_age: Duration::from_secs(86400),
        ticket_check_cap: Duration::from_secs(3600),
    }
}

fn job(n: usize, attempt: i64) -> DeliveryJob {
    DeliveryJob {
        id: format!("j{n}"),
        destination: "crm".into(),
        subject_id: format!("s{n}"),
        reason: JobReason::Change,
        attempt,
        first_enqueued_at: 1_000,
        lease_token: "t".into(),
        ticket: None,
        traceparent: None,
    }
}

fn planned(n: usize, action: Action) -> Planned {
    let mut identity = serde_json::Map::new();
    identity.insert("email".into(), format!("u{n}@example.com").into());
    Planned {
        job: job(n, 0),
        item: Item {
            subject_id: format!("s{n}"),
            delivery_id: format!("m{n}"),
            action,
            identity,
            record_id: Some(format!("old-{n}")),
            consent: Default::default(),
        },
        note: None,
        claimed_at: Instant::now(),
        bytes: 10,
    }
}

fn judge(p: &RetryPolicy) -> Judge<'_> {
    Judge {
        policy: p,
        now_ms: 2_000,
        latency: Duration::from_millis(40),
    }
}

fn upserts(n: usize) -> Vec<Planned> {
    (0..n)
        .map(|i| planned(i, Action::Upsert(Default::default())))
        .collect()
}

#[test]
fn outcomes_are_matched_by_index_whatever_their_order() {
    let p = policy();
    let result = BatchResult {
        status: Some(207),
        outcomes: vec![
            (
                2,
                ItemOutcome::Permanent {
                    reason: "bad email".into(),
                },
            ),
            (
                0,
                ItemOutcome::Delivered {
                    record_id: Some("v-0".into()),
                },
            ),
            (1, ItemOutcome::Delivered { record_id: None }),
        ],
        signal: None,
    };
    let v = judge(&p).batch(upserts(3), result);
    let f = &v.finished;
    assert_eq!(f[0].outcome, AttemptOutcome::Delivered);
    let held = f[0].holding.as_ref().unwrap();
    assert_eq!(
        (held.state, held.record_id.as_deref()),
        (Held::Sent, Some("v-0"))
    );
    assert_eq!(held.identity["email"], "u0@example.com");
    assert_eq!(
        f[1].holding.as_ref().unwrap().record_id.as_deref(),
        Some("old-1"),
        "a record id once known is kept"
    );
    assert_eq!(f[2].outcome, AttemptOutcome::Dead);
    assert_eq!(f[2].next, NextStep::DeadLetter);
    assert_eq!(f[2].detail.as_deref(), Some("bad email"));
    assert!(!v.back_pressure);
}

#[test]
fn a_missing_outcome_is_a_counted_retry() {
    let p = policy();
    let v = judge(&p).batch(upserts(2), BatchResult::default());
    for f in &v.finished {
        assert!(
            matches!(f.next, NextStep::Retry { counted: true, .. }),
            "{f:?}"
        );
    }
    assert!(v.back_pressure);
}

#[test]
fn throttles_and_pauses_hold_items_back_without_counting_an_attempt() {
    let p = policy();
    let retry = ItemOutcome::Retry {
        reason: "429".into(),
    };
    let throttled = BatchResult::uniform(2, Some(429), retry.clone()).with_signal(
        DestinationSignal::Throttle {
            retry_after: Duration::from_secs(100_000),
            reason: "slow down".into(),
        },
    );
    let v = judge(&p).batch(upserts(2), throttled);
    for f in &v.finished {
        assert_eq!(f.outcome, AttemptOutcome::Throttled);
        assert_eq!(
            f.next,
            NextStep::Retry {
                after: p.retry_after_cap,
                counted: false
            },
            "the vendor's wait, within the cap"
        );
    }
    let paused = BatchResult::uniform(1, Some(401), retry).with_signal(DestinationSignal::Pause {
        reason: "bad token".into(),
    });
    let v = judge(&p).batch(upserts(1), paused);
    assert_eq!(v.finished[0].outcome, AttemptOutcome::Paused);
    assert!(matches!(
        v.finished[0].next,
        NextStep::Retry { counted: false, .. }
    ));
}

#[test]
fn failures_dead_letter_after_max_attempts() {
    let p = policy();
    let mut batch = upserts(1);
    batch[0].job.attempt = 2;
    let v = judge(&p).batch(
        batch,
        BatchResult::uniform(
            1,
            Some(503),
            ItemOutcome::Retry {
                reason: "HTTP 503".into(),
            },
        ),
    );
    assert_eq!(v.finished[0].next, NextStep::DeadLetter);
    assert_eq!(
        v.finished[0].detail.as_deref(),
        Some("gave up after 3 attempts: HTTP 503")
    );
}

#[test]
fn accepted_items_wait_on_their_ticket_and_checks_settle_them() {
    let p = policy();
    let v = judge(&p).batch(
        vec![planned(1, Action::Delete)],
        BatchResult::uniform(
            1,
            Some(202),
            ItemOutcome::Accepted {
                ticket: "job-7".into(),
                check_after: Duration::from_secs(2),
            },
        ),
    );
    let NextStep::Wait {
        ticket,
        item,
        after,
    } = &v.finished[0].next
    else {
        panic!("{:?}", v.finished[0].next)
    };
    assert_eq!((ticket.as_str(), *after), ("job-7", Duration::from_secs(2)));
    assert_eq!(item.action, ActionKind::Delete);
    assert_eq!(v.finished[0].outcome, AttemptOutcome::Accepted);
    assert!(
        v.finished[0].holding.is_none(),
        "not held as deleted before confirmation"
    );

    let waiting = |n| DeliveryJob {
        ticket: Some(PendingTicket {
            ticket: "job-7".into(),
            item: item.clone(),
        }),
        ..job(n, 0)
    };
    let result = CheckResult {
        status: Some(200),
        statuses: vec![
            (
                0,
                TicketStatus::Pending {
                    check_after: Duration::from_secs(3),
                },
            ),
            (1, TicketStatus::Confirmed { record_id: None }),
            (
                2,
                TicketStatus::Failed {
                    reason: "rejected".into(),
                    retry: true,
                },
            ),
            (
                3,
                TicketStatus::Failed {
                    reason: "no such profile".into(),
                    retry: false,
                },
            ),
        ],
        signal: None,
    };
    let v = judge(&p).check((1..=4).map(waiting).collect(), result);
    let f = &v.finished;
    assert!(matches!(f[0].next, NextStep::Wait { after, .. } if after == Duration::from_secs(3)));
    assert!(!f[0].attempted, "a pending ticket records no attempt");
    assert_eq!(f[1].next, NextStep::Done);
    assert_eq!(f[1].holding.as_ref().unwrap().state, Held::Deleted);
    assert!(matches!(f[2].next, NextStep::Retry { counted: true, .. }));
    assert_eq!(f[3].next, NextStep::DeadLetter);
}

#[test]
fn a_vendor_ticket_is_checked_at_least_every_ticket_check_cap() {
    let p = RetryPolicy {
        ticket_check_cap: Duration::from_secs(60),
        ..policy()
    };
    let day = Duration::from_secs(86_400);
    let v = judge(&p).batch(
        vec![planned(1, Action::Delete)],
        BatchResult::uniform(
            1,
            Some(202),
            ItemOutcome::Accepted {
                ticket: "erasure-1".into(),
                check_after: day,
            },
        ),
    );
    let NextStep::Wait { item, after, .. } = &v.finished[0].next else {
        panic!("{:?}", v.finished[0].next)
    };
    assert_eq!(*after, Duration::from_secs(60));
    let waiting = DeliveryJob {
        ticket: Some(PendingTicket {
            ticket: "erasure-1".into(),
            item: item.clone(),
        }),
        ..job(1, 0)
    };
    let still = CheckResult {
        status: Some(200),
        statuses: vec![(0, TicketStatus::Pending { check_after: day })],
        signal: None,
    };
    let v = judge(&p).check(vec![waiting], still);
    assert!(
        matches!(v.finished[0].next, NextStep::Wait { after, .. } if after == Duration::from_secs(60)),
        "{:?}",
        v.finished[0].next
    );
}

#[test]
fn a_vendors_reason_keeps_none_of_the_items_values() {
    let p = policy();
    let mut fields = serde_json::Map::new();
    fields.insert("email".into(), "carol@example.com".into());
    fields.insert("country".into(), "DE".into());
    let v = judge(&p).batch(
        vec![planned(1, Action::Upsert(fields))],
        BatchResult::uniform(
            1,
            Some(400),
            ItemOutcome::Permanent {
                reason: "carol@example.com looks fake or invalid (u1@example.com); DE".into(),
            },
        ),
    );
    assert_eq!(
        v.finished[0].detail.as_deref(),
        Some("(value not shown) looks fake or invalid ((value not shown)); DE")
    );
}
