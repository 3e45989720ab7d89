//! Accepting connections when accepting fails. Out of file descriptors
//! (`EMFILE`, `ENFILE`) or memory, `accept` fails for as long as the
//! condition lasts while clients wait in the kernel's backlog with no
//! answer. Each listener keeps one spare descriptor: when it runs out, it
//! gives the spare up, accepts the waiting client so that it can be told
//! (the caller refuses it in its protocol) and opens the spare again. When
//! even that cannot be done it backs off, 10 ms doubling to 1 s. Either
//! way the log gets one warning when such an episode starts and one line
//! when it ends (once accepting worked for a second), with how many
//! connections were refused meanwhile.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

/// First wait after a failed accept that no spare descriptor helps.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long accepting must work before an episode is over.
const QUIET: Duration = Duration::from_secs(1);

/// What [`Acceptor::accept`] got.
pub enum Accepted {
    /// A connection to serve.
    Serve(TcpStream, SocketAddr),
    /// A connection taken with the spare descriptor while the process is
    /// out of them: answer it with an error and close it.
    Refuse(TcpStream),
}

/// A listener that survives failing accepts.
pub struct Acceptor {
    listener: TcpListener,
    /// `resp` or `http`, in the log.
    what: &'static str,
    spare: Option<std::fs::File>,
    episode: Option<Episode>,
}

/// Accepting failing since `since`.
struct Episode {
    since: Instant,
    /// The last failed accept.
    last: Instant,
    refused: u64,
    backoff: Duration,
}

impl Acceptor {
    /// Wraps a bound listener.
    pub fn new(listener: TcpListener, what: &'static str) -> Self {
        Acceptor { listener, what, spare: spare(), episode: None }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection, to serve or to refuse. Never fails: an accept
    /// that does is retried as described in the module's documentation.
    pub async fn accept(&mut self) -> Accepted {
        loop {
            // Taken back as soon as a refused connection freed its slot.
            if self.spare.is_none() {
                self.spare = spare();
            }
            let error = match self.listener.accept().await {
                Ok((stream, peer)) => {
                    self.recovered();
                    return Accepted::Serve(stream, peer);
                }
                Err(e) => e,
            };
            if !exhausted(&error) {
                // The one client's trouble (it reset before we took it).
                tracing::debug!(listener = self.what, error = %error, "accept failed");
                continue;
            }
            let what = self.what;
            let episode = self.episode.get_or_insert_with(|| {
                tracing::warn!(
                    listener = what,
                    error = %error,
                    "cannot accept connections (out of file descriptors or memory); refusing new ones until it passes"
                );
                Episode { since: Instant::now(), last: Instant::now(), refused: 0, backoff: FIRST_BACKOFF }
            });
            episode.last = Instant::now();
            // Opened again on the next turn, not right after a refusal:
            // the refused connection holds the descriptor until answered.
            if self.spare.take().is_some() {
                if let Ok((stream, _)) = self.listener.accept().await {
                    episode.refused += 1;
                    episode.backoff = FIRST_BACKOFF;
                    return Accepted::Refuse(stream);
                }
            }
            tokio::time::sleep(episode.backoff).await;
            episode.backoff = (episode.backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Ends an episode, if one was going on and accepting has not failed
    /// for [`QUIET`], with its line in the log. (At the limit, accepts
    /// succeed and fail by turns as connections close: that is still one
    /// episode.)
    fn recovered(&mut self) {
        let over = self.spare.is_some() && self.episode.as_ref().is_some_and(|e| e.last.elapsed() >= QUIET);
        if !over {
            return;
        }
        if let Some(e) = self.episode.take() {
            tracing::warn!(
                listener = self.what,
                refused = e.refused,
                lasted_ms = e.since.elapsed().as_millis() as u64,
                "accepting connections again"
            );
        }
    }
}

/// Whether a failed accept means the process or the system is out of a
/// resource (it will fail again until something is freed).
fn exhausted(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// The spare descriptor, if one can be had.
fn spare() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}
