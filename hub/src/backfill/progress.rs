//! How `hub backfill` shows its progress: an indicatif bar when stderr is
//! a terminal, else plain lines (one per tenth of the run, or every few
//! seconds) that logs and scripts can read.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::BackfillEvent;
use crate::store::BackfillStatus;

/// At most this long between two plain lines while a run moves.
const LINE_EVERY: Duration = Duration::from_secs(2);

/// A progress display for one run.
pub enum Progress {
    Bar(ProgressBar),
    Lines {
        last_line: Instant,
        /// The tenth of the run the last line reported.
        last_tenth: i64,
    },
}

impl Progress {
    /// A bar if stderr is a terminal, else plain lines on stderr.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{msg} [{bar:40}] {human_pos}/{human_len} subjects, {elapsed} elapsed, ~{eta} left",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            Progress::Bar(bar)
        } else {
            Progress::lines()
        }
    }

    pub fn lines() -> Self {
        Progress::Lines {
            last_line: Instant::now(),
            last_tenth: -1,
        }
    }

    pub fn show(&mut self, event: &BackfillEvent) {
        match (self, event) {
            (Progress::Bar(bar), BackfillEvent::Started { status, resumed }) => {
                bar.set_length(status.total.max(0) as u64);
                bar.set_position(status.queued.max(0) as u64);
                bar.set_message(format!(
                    "{} {}",
                    if *resumed { "resuming" } else { "backfill" },
                    status.destination
                ));
            }
            (Progress::Bar(bar), BackfillEvent::Batch(status)) => {
                // Subjects created since the start make the run longer.
                bar.set_length(status.total.max(status.queued).max(0) as u64);
                bar.set_position(status.queued.max(0) as u64);
            }
            (Progress::Bar(bar), BackfillEvent::Finished(status)) => {
                bar.set_position(status.queued.max(0) as u64);
                bar.finish();
            }
            (Progress::Lines { .. }, BackfillEvent::Started { status, resumed }) => {
                if *resumed {
                    eprintln!(
                        "backfill {}: resuming after {} of {} subjects",
                        status.destination, status.queued, status.total
                    );
                } else {
                    eprintln!(
                        "backfill {}: {} subjects to queue",
                        status.destination, status.total
                    );
                }
            }
            (
                Progress::Lines {
                    last_line,
                    last_tenth,
                },
                BackfillEvent::Batch(status),
            ) => {
                let tenth = tenth_of(status);
                if tenth > *last_tenth || last_line.elapsed() >= LINE_EVERY {
                    eprintln!("{}", line(status));
                    *last_line = Instant::now();
                    *last_tenth = tenth;
                }
            }
            (Progress::Lines { .. }, BackfillEvent::Finished(status)) => {
                eprintln!(
                    "backfill {}: done, {} subjects queued",
                    status.destination, status.queued
                );
            }
        }
    }
}

fn tenth_of(status: &BackfillStatus) -> i64 {
    if status.total <= 0 {
        return 10;
    }
    (status.queued * 10 / status.total).min(10)
}

/// `backfill crm: 300000 of 1000000 subjects queued (30%)`
pub fn line(status: &BackfillStatus) -> String {
    let percent = if status.total > 0 {
        (status.queued * 100 / status.total).min(100)
    } else {
        100
    };
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

    #[test]
    fn a_line_per_tenth() {
        assert_eq!(tenth_of(&status(99, 1000)), 0);
        assert_eq!(tenth_of(&status(100, 1000)), 1);
        assert_eq!(tenth_of(&status(1200, 1000)), 10);
    }
}
