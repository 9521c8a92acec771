//! One batch sent as several vendor calls (one per action kind, or chunks
//! of a per-call limit smaller than the batch): each call's outcomes are
//! mapped back to the batch's indices, and once a call says the whole
//! destination must stop (throttle, pause) the items not sent yet retry.

use crate::{ActionKind, BatchResult, DestinationSignal, Item, ItemOutcome};

/// The indices of `batch` per action kind, kinds in order of first appearance.
pub fn by_kind(batch: &[Item]) -> Vec<(ActionKind, Vec<usize>)> {
    let mut groups: Vec<(ActionKind, Vec<usize>)> = Vec::new();
    for (i, item) in batch.iter().enumerate() {
        let kind = item.action.kind();
        match groups.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, indices)) => indices.push(i),
            None => groups.push((kind, vec![i])),
        }
    }
    groups
}

/// The answer to a batch, assembled from the answers to its calls.
#[derive(Debug, Default)]
pub struct Merged {
    result: BatchResult,
}

impl Merged {
    pub fn new() -> Self {
        Self::default()
    }

    /// A call said the destination must stop: send nothing more.
    pub fn stopped(&self) -> bool {
        self.result.signal.is_some()
    }

    /// Adds the answer to one call whose item `k` was the batch's
    /// `indices[k]`.
    pub fn add(&mut self, indices: &[usize], part: BatchResult) {
        if part.status.is_some() {
            self.result.status = part.status;
        }
        for (k, outcome) in part.outcomes {
            if let Some(&i) = indices.get(k) {
                self.result.outcomes.push((i, outcome));
            }
        }
        if self.result.signal.is_none() {
            self.result.signal = part.signal;
        }
    }

    /// An outcome decided without a call (an item the vendor cannot take).
    pub fn set(&mut self, index: usize, outcome: ItemOutcome) {
        self.result.outcomes.push((index, outcome));
    }

    /// A destination-wide signal from a call whose items were recorded
    /// already (a success whose headers say the quota is spent).
    pub fn signal(&mut self, signal: DestinationSignal) {
        if self.result.signal.is_none() {
            self.result.signal = Some(signal);
        }
    }

    /// Items left unsent because an earlier call stopped the destination.
    pub fn not_sent(&mut self, indices: &[usize]) {
        for &i in indices {
            self.result.outcomes.push((
                i,
                ItemOutcome::Retry {
                    reason: "not sent: the destination was told to stop".into(),
                },
            ));
        }
    }

    pub fn finish(mut self) -> BatchResult {
        self.result.outcomes.sort_by_key(|(i, _)| *i);
        self.result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Action;

    fn item(action: Action) -> Item {
        Item {
            subject_id: "s".into(),
            delivery_id: "d".into(),
            action,
            identity: Default::default(),
            record_id: None,
            consent: Default::default(),
        }
    }

    #[test]
    fn groups_keep_batch_order_and_outcomes_map_back() {
        let batch = vec![
            item(Action::Delete),
            item(Action::Upsert(Default::default())),
            item(Action::Delete),
        ];
        let groups = by_kind(&batch);
        assert_eq!(
            groups,
            vec![
                (ActionKind::Delete, vec![0, 2]),
                (ActionKind::Upsert, vec![1])
            ]
        );
        let mut merged = Merged::new();
        merged.add(
            &groups[0].1,
            BatchResult::uniform(2, Some(204), ItemOutcome::Delivered { record_id: None })
                .with_signal(DestinationSignal::Pause { reason: "x".into() }),
        );
        assert!(merged.stopped());
        merged.not_sent(&groups[1].1);
        let result = merged.finish();
        assert_eq!(result.outcomes.len(), 3);
        assert_eq!(result.outcomes[1].0, 1);
        assert!(matches!(result.outcomes[1].1, ItemOutcome::Retry { .. }));
        assert_eq!(result.status, Some(204));
    }
}
