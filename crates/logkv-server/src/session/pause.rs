//! `CLIENT PAUSE` and `CLIENT UNPAUSE`: holding every connection's
//! commands (or only its writes) until a deadline, as Redis does for a
//! failover. A held command waits before it runs, so a paused pipeline
//! keeps its order; a pause only ever lengthens or widens until it ends
//! or `CLIENT UNPAUSE` lifts it.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The longest pause kept: a deadline past it is taken as this far off
/// (a century), so no deadline overflows the clock.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A pause in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    until: Instant,
    /// `WRITE` mode: only commands that may write wait.
    writes_only: bool,
}

impl Held {
    fn holds(&self, writes: bool, now: Instant) -> bool {
        self.until > now && (writes || !self.writes_only)
    }
}

/// The server's pause, which every session consults before a command.
pub struct Pause {
    held: watch::Sender<Option<Held>>,
}

impl Default for Pause {
    fn default() -> Pause {
        Pause { held: watch::Sender::new(None) }
    }
}

impl Pause {
    /// `CLIENT PAUSE millis [WRITE|ALL]`: pauses until `millis` from now,
    /// merged with a pause in force as Redis merges them (the later
    /// deadline, and `ALL` if either is).
    pub fn pause(&self, millis: u64, writes_only: bool) {
        let now = Instant::now();
        let until = now + Duration::from_millis(millis).min(LONGEST);
        self.held.send_modify(|held| {
            *held = Some(match held.filter(|h| h.until > now) {
                Some(old) => {
                    Held { until: old.until.max(until), writes_only: old.writes_only && writes_only }
                }
                None => Held { until, writes_only },
            });
        });
    }

    /// `CLIENT UNPAUSE`: every held command runs.
    pub fn unpause(&self) {
        self.held.send_replace(None);
    }

    /// Whether a pause holds a command that `writes` (or not) now.
    pub fn holds(&self, writes: bool) -> bool {
        self.held.borrow().is_some_and(|h| h.holds(writes, Instant::now()))
    }

    /// Waits while a pause holds a command that `writes` (or not): `true`
    /// once it may run, `false` if `closing` (the connection killed, the
    /// server shutting down) came first — then it must not run.
    pub async fn wait(&self, writes: bool, closing: [&CancellationToken; 2]) -> bool {
        let mut changes = self.held.subscribe();
        loop {
            let held = *changes.borrow_and_update();
            let Some(held) = held.filter(|h| h.holds(writes, Instant::now())) else {
                return true;
            };
            // Closing first: a connection killed before an `UNPAUSE` must
            // not run its held command once both have happened.
            tokio::select! {
                biased;
                () = closing[0].cancelled() => return false,
                () = closing[1].cancelled() => return false,
                () = tokio::time::sleep_until(held.until.into()) => {}
                // (The sender lives as long as `self`.)
                _ = changes.changed() => {}
            }
        }
    }
}
