//! Group commit: how an append waits to be acknowledged in each durability mode.
//!
//! `always` and `none`: the first waiter with no flush under way becomes the
//! leader; it writes (and, in `always`, syncs) everything appended so far and
//! wakes the others, so concurrent writers share one write and one sync. A
//! plain leader/follower scheme splits N writers into two alternating halves
//! (those acknowledged by one sync return during the next one), which halves
//! throughput; so a leader first waits, a fraction of a sync at most, for as
//! many writers as its predecessor's group held.
//!
//! `periodic`: appends are acknowledged at once; a flusher thread writes and
//! syncs the buffer every interval or when it reaches its size threshold.
//! Writers block only when the buffer holds twice that threshold.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::config::Durability;
use crate::error::{LogError, Result};
use crate::log::Inner;

#[derive(Debug, Default)]
struct State {
    /// Newest position acknowledged.
    durable: u64,
    /// A flush is under way.
    leader: bool,
    /// A leader is waiting for its group to gather.
    gathering: bool,
    /// Positions of callers waiting for acknowledgement.
    waiters: BinaryHeap<Reverse<u64>>,
    /// Callers the previous flush acknowledged.
    last_group: usize,
    /// Smoothed duration of a flush, in nanoseconds.
    flush_ewma_ns: u64,
    flush_requested: bool,
    shut_down: bool,
}

/// Shared state of group commit.
#[derive(Debug)]
pub(crate) struct Commit {
    state: Mutex<State>,
    acked: Condvar,
    gather: Condvar,
    flusher: Condvar,
}

impl Commit {
    pub(crate) fn new(durable: u64) -> Self {
        Self {
            state: Mutex::new(State { durable, ..State::default() }),
            acked: Condvar::new(),
            gather: Condvar::new(),
            flusher: Condvar::new(),
        }
    }

    pub(crate) fn acknowledge(&self, position: u64) {
        let mut st = self.state.lock();
        st.durable = st.durable.max(position);
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
            if inner.buffered_bytes() >= 2 * flush_size_bytes {
                let c = &inner.commit;
                let mut st = c.state.lock();
                while st.durable < position && !st.shut_down && inner.failed().is_none() {
                    if !st.flush_requested {
                        st.flush_requested = true;
                        c.flusher.notify_one();
                    }
                    c.acked.wait(&mut st);
                }
            }
            match inner.failed() {
                Some(why) => Err(LogError::ReadOnly(why.to_string())),
                None => Ok(()),
            }
        }
    }
}

fn lead_or_follow(inner: &Inner, position: u64, sync: bool) -> Result<()> {
    let c = &inner.commit;
    let mut st = c.state.lock();
    if st.durable >= position {
        return Ok(());
    }
    st.waiters.push(Reverse(position));
    if st.gathering {
        c.gather.notify_one();
    }
    loop {
        if let Some(why) = inner.failed() {
            return Err(LogError::ReadOnly(why.to_string()));
        }
        if st.durable >= position {
            return Ok(());
        }
        if st.leader {
            c.acked.wait(&mut st);
            continue;
        }
        st.leader = true;
        if sync && st.waiters.len() < st.last_group {
            let budget = Duration::from_nanos(st.flush_ewma_ns / 2).min(Duration::from_millis(5));
            let deadline = Instant::now() + budget;
            st.gathering = true;
            while st.waiters.len() < st.last_group {
                if c.gather.wait_until(&mut st, deadline).timed_out() {
                    break;
                }
            }
            st.gathering = false;
        }
        let started = Instant::now();
        let flushed = parking_lot::MutexGuard::unlocked(&mut st, || inner.flush(sync));
        let took = started.elapsed().as_nanos() as u64;
        st.flush_ewma_ns = (st.flush_ewma_ns * 7 + took) / 8;
        st.leader = false;
        if let Ok(last) = flushed {
            st.durable = st.durable.max(last);
            inner.publish(last);
            let mut group = 0;
            while st.waiters.peek().is_some_and(|w| w.0 <= last) {
                st.waiters.pop();
                group += 1;
            }
            st.last_group = group;
        }
        c.acked.notify_all();
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
        if let Ok(last) = flushed {
            st.durable = st.durable.max(last);
        }
        c.acked.notify_all();
        if flushed.is_err() {
            return;
        }
    }
}
