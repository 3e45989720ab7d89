//! A background thread that runs a step every interval (measured from the
//! end of the previous step) until stopped, and remembers the first step
//! that failed so writes can refuse to go on after it: the naive
//! baseline's snapshots and fjall's once-a-second syncs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use super::Result;

/// What the thread shares with its owner.
#[derive(Debug, Default)]
struct State {
    stop: AtomicBool,
    failed: Mutex<Option<String>>,
}

/// The thread; dropping it stops it.
#[derive(Debug)]
pub(super) struct Ticker {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts thread `name` running `step` every `interval`; a failed step
    /// ends the thread and is reported by [`Ticker::check`] as
    /// "`what` failed: ...".
    pub(super) fn start(
        name: &str,
        what: &'static str,
        interval: Duration,
        mut step: impl FnMut() -> Result<()> + Send + 'static,
    ) -> std::io::Result<Self> {
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            while !shared.stop.load(Ordering::Acquire) {
                std::thread::park_timeout(interval);
                if shared.stop.load(Ordering::Acquire) {
                    break;
                }
                if let Err(e) = step() {
                    *shared.failed.lock() = Some(format!("{what} failed: {e}"));
                    break;
                }
            }
        })?;
        Ok(Self { state, thread: Some(thread) })
    }

    /// The failure of a step, if one failed.
    pub(super) fn check(&self) -> Result<()> {
        match &*self.state.failed.lock() {
            Some(why) => Err(why.clone().into()),
            None => Ok(()),
        }
    }

    /// Stops the thread and waits for it (a step under way finishes first).
    pub(super) fn stop(&mut self) -> Result<()> {
        self.state.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            t.join().map_err(|_| "a background thread panicked")?;
        }
        Ok(())
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
