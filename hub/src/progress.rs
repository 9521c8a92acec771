//! How long CLI work (`hub backfill`, `hub dlq replay`) shows its
//! progress: an indicatif bar when stderr is a terminal, else plain lines
//! (one per tenth of the run, or every few seconds while it moves) that
//! logs and scripts can read. Callers word the lines; this decides when.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

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
    /// A bar counting `unit` (`subjects`) if stderr is a terminal, else
    /// plain lines on stderr.
    pub fn for_stderr(unit: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress::lines();
        }
        let bar = ProgressBar::new(0);
        let template = format!(
            "{{msg}} [{{bar:40}}] {{human_pos}}/{{human_len}} {unit}, {{elapsed}} elapsed, ~{{eta}} left"
        );
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        Progress::Bar(bar)
    }

    pub fn lines() -> Self {
        Progress::Lines {
            last_line: Instant::now(),
            last_tenth: -1,
        }
    }

    /// The run starts at `done` of `total`: the bar is labelled `message`,
    /// plain output prints `line`.
    pub fn start(&mut self, message: String, done: u64, total: u64, line: impl FnOnce() -> String) {
        match self {
            Progress::Bar(bar) => {
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(message);
            }
            Progress::Lines { .. } => eprintln!("{}", line()),
        }
    }

    /// The run moved to `done` of `total`; `line` is printed when a new
    /// tenth is reached or the last line is a few seconds old.
    pub fn advance(&mut self, done: u64, total: u64, line: impl FnOnce() -> String) {
        match self {
            Progress::Bar(bar) => {
                bar.set_length(total.max(done));
                bar.set_position(done);
            }
            Progress::Lines {
                last_line,
                last_tenth,
            } => {
                let tenth = tenth_of(done, total);
                if tenth > *last_tenth || last_line.elapsed() >= LINE_EVERY {
                    eprintln!("{}", line());
                    *last_line = Instant::now();
                    *last_tenth = tenth;
                }
            }
        }
    }

    /// The run ended at `done`.
    pub fn finish(&mut self, done: u64, line: impl FnOnce() -> String) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(done);
                bar.finish();
            }
            Progress::Lines { .. } => eprintln!("{}", line()),
        }
    }
}

/// Which tenth of the run `done` of `total` is (10 when there is nothing).
pub fn tenth_of(done: u64, total: u64) -> i64 {
    if total == 0 {
        return 10;
    }
    ((done * 10 / total) as i64).min(10)
}

/// `done` of `total` in percent, at most 100 (100 when there is nothing).
pub fn percent(done: u64, total: u64) -> u64 {
    if total == 0 {
        return 100;
    }
    (done * 100 / total).min(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_per_tenth() {
        assert_eq!(tenth_of(99, 1000), 0);
        assert_eq!(tenth_of(100, 1000), 1);
        assert_eq!(tenth_of(1200, 1000), 10);
        assert_eq!(tenth_of(0, 0), 10);
    }

    #[test]
    fn percent_is_capped() {
        assert_eq!(percent(300, 1000), 30);
        assert_eq!(percent(1200, 1000), 100);
        assert_eq!(percent(0, 0), 100);
    }
}
