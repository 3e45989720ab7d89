//! Progress bars on stderr (indicatif hides them when stderr is not a
//! terminal): replay, shown only when the log is big enough to make the
//! user wait, and compaction.

use indicatif::{ProgressBar, ProgressStyle};

/// Logs up to this size replay too fast to be worth a bar.
const SHOW_ABOVE_BYTES: u64 = 64 << 20;

/// Feeds `Store::open_with_progress`; the bar is created on the first update
/// that shows the log is large, and cleared when this is dropped.
#[derive(Default)]
pub struct Replay {
    bar: Option<ProgressBar>,
}

impl Replay {
    /// Records that `scanned` of `total` segment bytes have been replayed.
    pub fn update(&mut self, scanned: u64, total: u64) {
        if total <= SHOW_ABOVE_BYTES {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let style =
                ProgressStyle::with_template("replaying log {bar:40} {binary_bytes}/{binary_total_bytes}")
                    .expect("the template is a valid constant");
            ProgressBar::new(total).with_style(style)
        });
        bar.set_position(scanned);
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Feeds `Store::compact` with keys done of keys to rewrite; the bar is
/// cleared when this is dropped.
#[derive(Default)]
pub struct Compaction {
    bar: Option<ProgressBar>,
}

impl Compaction {
    /// Records that `done` of `total` keys have been rewritten.
    pub fn update(&mut self, done: u64, total: u64) {
        let bar = self.bar.get_or_insert_with(|| {
            let style =
                ProgressStyle::with_template("compacting {bar:40} {human_pos}/{human_len} keys ({eta})")
                    .expect("the template is a valid constant");
            ProgressBar::new(total).with_style(style)
        });
        bar.set_length(total);
        bar.set_position(done);
    }
}

impl Drop for Compaction {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
