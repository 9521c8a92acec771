//! Cuts a destination's planned items into batches its connector takes:
//! one action kind per batch unless the connector mixes them, at most
//! `max_items` items and `max_bytes` bytes, oldest first.

use std::collections::VecDeque;

use connectors::BatchPolicy;
use tokio::time::Instant;

use crate::store::DeliveryJob;

/// A claimed job, planned and ready to send.
#[derive(Debug, Clone)]
pub struct Planned {
    pub job: DeliveryJob,
    pub item: connectors::Item,
    /// Why this send happens, when it is not a plain sync (withdrawal).
    pub note: Option<String>,
    /// When the job was claimed: its lease runs from here.
    pub claimed_at: Instant,
    /// What the item adds to a call ([`connectors::Connector::item_bytes`]).
    pub bytes: usize,
}

/// Takes the next batch off the front of `queue`. An item larger than
/// `max_bytes` on its own goes alone (the connector refuses it).
pub fn next_batch(queue: &mut VecDeque<Planned>, policy: &BatchPolicy) -> Vec<Planned> {
    let Some(first) = queue.front() else {
        return Vec::new();
    };
    let kind = first.item.action.kind();
    let max_items = policy.max_items.max(1);
    let mut batch: Vec<Planned> = Vec::new();
    let mut bytes = 0usize;
    let mut rest = VecDeque::with_capacity(queue.len());
    while let Some(p) = queue.pop_front() {
        let fits_kind = policy.mixed_actions || p.item.action.kind() == kind;
        let fits_bytes = policy
            .max_bytes
            .is_none_or(|max| batch.is_empty() || bytes + p.bytes <= max);
        if batch.len() < max_items && fits_kind && fits_bytes {
            bytes += p.bytes;
            batch.push(p);
        } else {
            rest.push_back(p);
        }
        if batch.len() >= max_items {
            break;
        }
    }
    rest.extend(queue.drain(..));
    *queue = rest;
    batch
}

/// True when the front of `queue` would make a full batch.
pub fn full_batch_ready(queue: &VecDeque<Planned>, policy: &BatchPolicy) -> bool {
    let Some(first) = queue.front() else {
        return false;
    };
    let kind = first.item.action.kind();
    let mut n = 0;
    let mut bytes = 0;
    for p in queue {
        if policy.mixed_actions || p.item.action.kind() == kind {
            n += 1;
            bytes += p.bytes;
        }
        if n >= policy.max_items.max(1) || policy.max_bytes.is_some_and(|m| bytes >= m) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::JobReason;
    use connectors::{Action, Item};

    fn planned(n: usize, action: Action, bytes: usize) -> Planned {
        Planned {
            job: DeliveryJob {
                id: format!("j{n}"),
                destination: "d".into(),
                subject_id: format!("s{n}"),
                reason: JobReason::Change,
                attempt: 0,
                first_enqueued_at: 0,
                lease_token: "t".into(),
                ticket: None,
                traceparent: None,
            },
            item: Item {
                subject_id: format!("s{n}"),
                delivery_id: format!("m{n}"),
                action,
                identity: Default::default(),
                record_id: None,
                consent: Default::default(),
            },
            note: None,
            claimed_at: Instant::now(),
            bytes,
        }
    }

    fn upsert(n: usize, bytes: usize) -> Planned {
        planned(n, Action::Upsert(Default::default()), bytes)
    }

    fn ids(batch: &[Planned]) -> Vec<String> {
        batch.iter().map(|p| p.job.id.clone()).collect()
    }

    const POLICY: BatchPolicy = BatchPolicy {
        max_items: 3,
        max_bytes: Some(100),
        mixed_actions: false,
    };

    #[test]
    fn batches_hold_one_kind_up_to_the_item_limit() {
        let mut q: VecDeque<Planned> = [
            upsert(1, 10),
            planned(2, Action::Delete, 10),
            upsert(3, 10),
            upsert(4, 10),
            upsert(5, 10),
        ]
        .into();
        assert!(full_batch_ready(&q, &POLICY));
        assert_eq!(ids(&next_batch(&mut q, &POLICY)), ["j1", "j3", "j4"]);
        assert_eq!(ids(&next_batch(&mut q, &POLICY)), ["j2"]);
        assert!(!full_batch_ready(&q, &POLICY));
        assert_eq!(ids(&next_batch(&mut q, &POLICY)), ["j5"]);
        assert!(next_batch(&mut q, &POLICY).is_empty());
    }

    #[test]
    fn the_byte_limit_holds_and_an_oversized_item_goes_alone() {
        let mut q: VecDeque<Planned> = [upsert(1, 60), upsert(2, 60), upsert(3, 500)].into();
        assert_eq!(ids(&next_batch(&mut q, &POLICY)), ["j1"]);
        assert_eq!(ids(&next_batch(&mut q, &POLICY)), ["j2"]);
        assert_eq!(ids(&next_batch(&mut q, &POLICY)), ["j3"]);
    }

    #[test]
    fn mixed_batches_keep_the_order() {
        let policy = BatchPolicy {
            mixed_actions: true,
            max_bytes: None,
            ..POLICY
        };
        let mut q: VecDeque<Planned> =
            [upsert(1, 1), planned(2, Action::Delete, 1), upsert(3, 1)].into();
        assert_eq!(ids(&next_batch(&mut q, &policy)), ["j1", "j2", "j3"]);
    }
}
