//! Group commit: how an append waits to be acknowledged in each durability mode.
//!
//! `always` and `none`: a waiter that finds no flush under way becomes the
//! leader; it writes (and, in `always`, syncs) everything appended so far and
//! wakes the waiters it covered, so concurrent writers share one write and one
//! sync. A plain leader/follower scheme splits N writers into two alternating
//! halves (those acknowledged by one sync return during the next one), which
//! halves throughput; so in `always` a flush starts only once as many writers
//! wait as the previous flush acknowledged, or half a flush time has passed.
//! The writer that completes the group leads, so starting the flush costs no
//! wake-up.
//!
//! `periodic`: appends are acknowledged at once; a flusher thread writes and
//! syncs the buffer every interval or when it reaches its size threshold.
//! Writers block only when the buffer holds twice that threshold.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::config::Durability;
use crate::error::{LogError, Result};
use crate::log::Inner;

#[derive(Debug, Default)]
struct State {
    /// Newest position acknowledged (also in [`Commit::durable`]).
    durable: u64,
    /// A flush is under way.
    leader: bool,
    /// Callers waiting for acknowledgement: their position and thread.
    waiters: Vec<(u64, Thread)>,
    /// Callers the previous flush acknowledged.
    last_group: usize,
    /// Smoothed duration of a flush, in nanoseconds.
    flush_ewma_ns: u64,
    flush_requested: bool,
    shut_down: bool,
}

/// Shared state of group commit.
///
/// Waiters park their own thread and the leader unparks exactly the ones a
/// flush covered, all at once: a condition variable would hand its mutex
/// from one woken waiter to the next, serialising the wake-ups.
#[derive(Debug)]
pub(crate) struct Commit {
    state: Mutex<State>,
    durable: AtomicU64,
    acked: Condvar,
    flusher: Condvar,
}

impl Commit {
    pub(crate) fn new(durable: u64) -> Self {
        Self {
            state: Mutex::new(State { durable, ..State::default() }),
            durable: AtomicU64::new(durable),
            acked: Condvar::new(),
            flusher: Condvar::new(),
        }
    }

    pub(crate) fn acknowledge(&self, position: u64) {
        let mut st = self.state.lock();
        let wake = self.complete(&mut st, position);
        drop(st);
        wake.iter().for_each(Thread::unpark);
    }

    /// Records `position` as acknowledged; returns the waiters to wake.
    fn complete(&self, st: &mut State, position: u64) -> Vec<Thread> {
        st.durable = st.durable.max(position);
        self.durable.store(st.durable, Ordering::Release);
        self.acked.notify_all();
        let (done, waiting): (Vec<_>, Vec<_>) = st.waiters.drain(..).partition(|w| w.0 <= st.durable);
        st.waiters = waiting;
        st.last_group = done.len();
        done.into_iter().map(|w| w.1).collect()
    }

    /// Wakes writers held back by a full `periodic` buffer.
    pub(crate) fn wake_writers(&self) {
        let _st = self.state.lock();
        self.acked.notify_all();
    }

    pub(crate) fn request_flush(&self) {
        let mut st = self.state.lock();
        if !st.flush_requested {
            st.flush_requested = true;
            self.flusher.notify_one();
        }
    }

    pub(crate) fn shut_down(&self) {
        let mut st = self.state.lock();
        st.shut_down = true;
        self.flusher.notify_all();
        self.acked.notify_all();
    }
}

/// Waits until `position` is acknowledged under the log's durability mode.
pub(crate) fn wait(inner: &Inner, position: u64) -> Result<()> {
    match inner.config.durability {
        Durability::Always => lead_or_follow(inner, position, true),
        Durability::None => lead_or_follow(inner, position, false),
        Durability::Periodic { flush_size_bytes, .. } => {
            // Back-pressure: wait until the flusher has taken the buffer
            // below twice its threshold (after its write, while it syncs),
            // not for this write to be synced, so filling and flushing overlap.
            let limit = flush_size_bytes.saturating_mul(2);
            if inner.buffered_bytes() >= limit {
                let c = &inner.commit;
                let mut st = c.state.lock();
                while inner.buffered_bytes() >= limit && !st.shut_down && inner.failed().is_none() {
                    if !st.flush_requested {
                        st.flush_requested = true;
                        c.flusher.notify_one();
                    }
                    c.acked.wait(&mut st);
                }
            }
            read_only_error(inner)
        }
    }
}

fn read_only_error(inner: &Inner) -> Result<()> {
    match inner.failed() {
        Some(why) => Err(LogError::ReadOnly(why.to_string())),
        None => Ok(()),
    }
}

fn lead_or_follow(inner: &Inner, position: u64, sync: bool) -> Result<()> {
    let c = &inner.commit;
    if c.durable.load(Ordering::Acquire) >= position {
        return Ok(());
    }
    let me = thread::current();
    c.state.lock().waiters.push((position, me.clone()));
    let mut deadline = None;
    loop {
        // Durable first: a flush that covered `position` acknowledged it,
        // even if a later flush failed before this waiter ran again.
        if c.durable.load(Ordering::Acquire) >= position {
            return Ok(());
        }
        if inner.failed().is_some() {
            c.state.lock().waiters.retain(|w| w.1.id() != me.id());
            return read_only_error(inner);
        }
        let mut st = c.state.lock();
        if st.durable >= position {
            return Ok(());
        }
        if st.leader {
            drop(st);
            thread::park();
            continue;
        }
        // Lead once the group is as large as the last one, or the wait
        // budget (half a flush) is spent; whoever completes the group leads,
        // so no thread has to be woken to start the flush.
        if sync && st.waiters.len() < st.last_group {
            let budget = Duration::from_nanos(st.flush_ewma_ns / 2).min(Duration::from_millis(5));
            let until = *deadline.get_or_insert_with(|| Instant::now() + budget);
            if let Some(left) = until.checked_duration_since(Instant::now()) {
                drop(st);
                thread::park_timeout(left);
                continue;
            }
        }
        st.leader = true;
        let started = Instant::now();
        let flushed = parking_lot::MutexGuard::unlocked(&mut st, || inner.flush(sync));
        st.flush_ewma_ns = (st.flush_ewma_ns * 7 + started.elapsed().as_nanos() as u64) / 8;
        st.leader = false;
        let mut wake = match flushed {
            Ok(last) => {
                inner.publish(last);
                c.complete(&mut st, last.position)
            }
            Err(_) => st.waiters.drain(..).map(|w| w.1).collect(),
        };
        // Someone still waiting must take the lead for the next group.
        wake.extend(st.waiters.first().map(|w| w.1.clone()));
        drop(st);
        wake.iter().filter(|t| t.id() != me.id()).for_each(Thread::unpark);
    }
}

/// The `periodic` flusher thread's loop.
pub(crate) fn run_flusher(inner: &Inner) {
    let Durability::Periodic { flush_interval, .. } = inner.config.durability else {
        return;
    };
    let c = &inner.commit;
    let mut st = c.state.lock();
    loop {
        if !st.flush_requested && !st.shut_down {
            c.flusher.wait_for(&mut st, flush_interval);
        }
        if st.shut_down {
            return;
        }
        st.flush_requested = false;
        let flushed = parking_lot::MutexGuard::unlocked(&mut st, || inner.flush(true));
        c.acked.notify_all();
        match flushed {
            Ok(last) => drop(c.complete(&mut st, last.position)),
            Err(_) => return,
        }
    }
}
