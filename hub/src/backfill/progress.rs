//! How `hub backfill` words its progress (the bar or plain lines come from
//! [`crate::progress`]).

use super::BackfillEvent;
use crate::progress::{self, Progress};
use crate::store::BackfillStatus;

/// Shows one event of the run.
pub fn show(progress: &mut Progress, event: &BackfillEvent) {
    match event {
        BackfillEvent::Started { status, resumed } => progress.start(
            format!(
                "{} {}",
                if *resumed { "resuming" } else { "backfill" },
                status.destination
            ),
            count(status.queued),
            count(status.total),
            || {
                if *resumed {
                    format!(
                        "backfill {}: resuming after {} of {} subjects",
                        status.destination, status.queued, status.total
                    )
                } else {
                    format!(
                        "backfill {}: {} subjects to queue",
                        status.destination, status.total
                    )
                }
            },
        ),
        // Subjects created since the start make the run longer.
        BackfillEvent::Batch(status) => progress.advance(
            count(status.queued),
            count(status.total.max(status.queued)),
            || line(status),
        ),
        BackfillEvent::Finished(status) => progress.finish(count(status.queued), || {
            format!(
                "backfill {}: done, {} subjects queued",
                status.destination, status.queued
            )
        }),
    }
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

/// `backfill crm: 300000 of 1000000 subjects queued (30%)`
pub fn line(status: &BackfillStatus) -> String {
    let percent = progress::percent(count(status.queued), count(status.total));
    format!(
        "backfill {}: {} of {} subjects queued ({percent}%)",
        status.destination, status.queued, status.total
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BackfillState;

    fn status(queued: i64, total: i64) -> BackfillStatus {
        BackfillStatus {
            destination: "crm".into(),
            state: BackfillState::Running,
            last_subject_id: String::new(),
            total,
            queued,
            started_at: 0,
            updated_at: 0,
            finished_at: None,
        }
    }

    #[test]
    fn lines_name_position_and_percent() {
        assert_eq!(
            line(&status(300_000, 1_000_000)),
            "backfill crm: 300000 of 1000000 subjects queued (30%)"
        );
        assert_eq!(
            line(&status(0, 0)),
            "backfill crm: 0 of 0 subjects queued (100%)"
        );
    }
}
