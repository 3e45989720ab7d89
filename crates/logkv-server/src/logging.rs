//! The server's log: one line per event on stderr, as text or JSON
//! (`log_format`), filtered by `log_filter` (RUST_LOG's syntax). Progress
//! bars share stderr with it: every bar is made by [`progress_bar`], and on
//! a terminal each log line is written with the bars hidden, so a line and
//! a bar never interleave.

use std::io::{IsTerminal, Write};
use std::sync::LazyLock;

use indicatif::{MultiProgress, ProgressBar};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The bars on stderr; log lines suspend them while they are written.
static BARS: LazyLock<MultiProgress> = LazyLock::new(MultiProgress::new);

/// A progress bar of `len` steps on stderr that log lines do not break
/// (hidden when stderr is not a terminal, as indicatif does).
pub fn progress_bar(len: u64) -> ProgressBar {
    BARS.add(ProgressBar::new(len))
}

/// Starts logging. `filter` was checked when the configuration was loaded.
pub fn init(format: LogFormat, filter: &str) -> Result<(), String> {
    let filter = EnvFilter::builder().parse(filter).map_err(|e| format!("bad log_filter {filter:?}: {e}"))?;
    let terminal = std::io::stderr().is_terminal();
    let writer = Stderr { terminal };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let installed = match format {
        LogFormat::Text => builder.with_ansi(terminal).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    installed.map_err(|e| format!("cannot start logging: {e}"))
}

/// Makes one [`Line`] per event.
#[derive(Clone, Copy)]
struct Stderr {
    terminal: bool,
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { text: Vec::with_capacity(256), terminal: self.terminal }
    }
}

/// One event's text, written to stderr in one piece when the event is
/// done, with the bars hidden on a terminal.
struct Line {
    text: Vec<u8>,
    terminal: bool,
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let write = || {
            // A log line that cannot be written has nowhere else to go.
            let _ = std::io::stderr().lock().write_all(&self.text);
        };
        if self.terminal {
            BARS.suspend(write);
        } else {
            write();
        }
    }
}
