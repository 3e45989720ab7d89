//! Progress of long steps: a bar on a terminal, a line every few seconds
//! otherwise (CI logs), so a long run never looks hung.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use parking_lot::Mutex;

/// How often a line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Progress of one step with a known amount of work.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    done: AtomicU64,
    bar: Option<ProgressBar>,
    last_line: Mutex<Instant>,
}

impl Progress {
    /// Starts showing progress of `label` towards `total` units.
    pub fn new(label: impl Into<String>, total: u64) -> Self {
        let label = label.into();
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{msg:40} [{bar:30}] {percent:>3}% {elapsed_precise} eta {eta}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            b.set_message(label.clone());
            b
        });
        Self { label, total, done: AtomicU64::new(0), bar, last_line: Mutex::new(Instant::now()) }
    }

    /// Records `n` more units done.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.bar {
            Some(b) => b.set_position(done),
            None => {
                let mut last = self.last_line.lock();
                if last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    eprintln!("  {}: {}%", self.label, done * 100 / self.total.max(1));
                }
            }
        }
    }

    /// Ends the step.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
