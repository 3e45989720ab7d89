//! Accepting connections when accepting fails. Out of file descriptors
//! (`EMFILE`, `ENFILE`) or memory, `accept` fails for as long as the
//! condition lasts while clients wait in the kernel's backlog with no
//! answer. Each listener keeps one spare descriptor: when it runs out, it
//! gives the spare up, accepts the waiting client so that it can be told
//! (the caller refuses it in its protocol), and when the refusal is done
//! the client's descriptor becomes the spare again in one `dup2`, so no
//! other listener or thread of the process can take it in between. When
//! even that cannot be done it backs off, 10 ms doubling to 1 s. Either
//! way the log gets one warning when such an episode starts and one line
//! when it ends (once accepting worked for a second), with how many
//! connections were refused meanwhile.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    /// out of them: answer it with an error and drop it.
    Refuse(Refused),
}

/// A connection to refuse. Dropping it turns its descriptor back into the
/// listener's spare.
pub struct Refused {
    stream: Option<TcpStream>,
    spare: Arc<Spare>,
}

impl Refused {
    /// The connection, to write the refusal on.
    pub fn stream(&mut self) -> &mut TcpStream {
        self.stream.as_mut().expect("present until dropped")
    }
}

impl Drop for Refused {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else { return };
        // Out of the reactor first: it must not watch a descriptor that is
        // about to become something else.
        match stream.into_std() {
            Ok(stream) => self.spare.recycle(stream.into_raw_fd()),
            Err(e) => tracing::debug!(error = %e, "refused connection not deregistered"),
        }
    }
}

/// One listener's spare descriptor, and the open `/dev/null` it is made
/// from by `dup2` when a refused connection gives its descriptor back.
struct Spare {
    null: Option<File>,
    slot: Mutex<Option<File>>,
}

impl Spare {
    fn new() -> Self {
        let null = open_null();
        Spare { slot: Mutex::new(open_null()), null }
    }

    /// Gives the spare up (so that `accept` can have its descriptor).
    fn release(&self) -> bool {
        self.slot.lock().expect("spare").take().is_some()
    }

    /// Takes a spare if there is none and one can be opened.
    fn refill(&self) -> bool {
        let mut slot = self.slot.lock().expect("spare");
        if slot.is_none() {
            *slot = open_null();
        }
        slot.is_some()
    }

    /// Closes the socket `fd` and makes `fd` the spare, atomically.
    fn recycle(&self, fd: std::os::fd::RawFd) {
        let reused = self.null.as_ref().is_some_and(|null| {
            // SAFETY: both descriptors are open and `fd` is owned here.
            unsafe { libc::dup2(null.as_raw_fd(), fd) == fd }
        });
        // SAFETY: `fd` is owned here: a duplicate of /dev/null if `dup2`
        // worked, else still the socket; either way closed by this `File`.
        let file = unsafe { File::from_raw_fd(fd) };
        if reused {
            let mut slot = self.slot.lock().expect("spare");
            if slot.is_none() {
                *slot = Some(file);
            }
        }
    }
}

/// A listener that survives failing accepts.
pub struct Acceptor {
    listener: TcpListener,
    /// `resp` or `http`, in the log.
    what: &'static str,
    spare: Arc<Spare>,
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
        Acceptor { listener, what, spare: Arc::new(Spare::new()), episode: None }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection, to serve or to refuse. Never fails: an accept
    /// that does is retried as described in the module's documentation.
    pub async fn accept(&mut self) -> Accepted {
        loop {
            // Opened again if a refused connection could not give it back.
            self.spare.refill();
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
            if self.spare.release() {
                if let Ok((stream, _)) = self.listener.accept().await {
                    episode.refused += 1;
                    episode.backoff = FIRST_BACKOFF;
                    return Accepted::Refuse(Refused { stream: Some(stream), spare: self.spare.clone() });
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
        let over = self.spare.refill() && self.episode.as_ref().is_some_and(|e| e.last.elapsed() >= QUIET);
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

/// How long a refused client may go on sending before it is closed.
const REFUSE_DRAIN: Duration = Duration::from_millis(500);

/// Sends a refusal's `answer` and closes. What the client goes on sending
/// is read (briefly) first: closing with unread bytes would reset the
/// connection, and the client could lose the answer.
pub async fn answer_and_close(stream: &mut TcpStream, answer: &[u8]) {
    let _ = stream.write_all(answer).await;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(REFUSE_DRAIN, drain).await;
}

/// Whether a failed accept means the process or the system is out of a
/// resource (it will fail again until something is freed).
fn exhausted(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// `/dev/null`, if a descriptor can be had.
fn open_null() -> Option<File> {
    File::open("/dev/null").ok()
}
