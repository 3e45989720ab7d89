//! [`Follower`]: the stream's entries from a position on, in order, read
//! through one ordered consumer per subject filter.
//!
//! With one filter (a node watching every stream) messages arrive in
//! stream order and are passed on as they come. With several (a node
//! watching a set: [`Subjects::filters`]) each consumer is in order but
//! they interleave, so an entry is passed on only once every other
//! consumer is known to hold nothing before it: because its next message
//! is later, or because a probe showed it complete — the stream's last
//! sequence `L` is read, then each idle filter's last message; if that is
//! one the node already received, the filter holds nothing more up to `L`.
//!
//! Messages on a subject other than the one their bytes belong on
//! ([`Subjects::of_entry`]) are dropped here, the same way on every node.
//!
//! A consumer passes over positions that are gone as silently as over
//! other filters' ones, so a trimmed stream ([`crate::trim`]) would look
//! complete. A message that comes after a gap in its filter is therefore
//! held until the stream's first position, read after it arrived, shows
//! nothing in the gap was purged; otherwise, and whenever the stream's
//! first position passes one a filter still needs, the follower stops
//! with [`SharedLogError::Trimmed`]. (This is conservative for a filter that had nothing
//! in the purged range, which only a trim past what the follower handed
//! over can cause.)
//!
//! Each entry's log time is the stream's timestamp of its message, which
//! every node reads alike.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use bytes::Bytes;
use futures::StreamExt;
use logkv_runtime::apply::Watched;
use logkv_runtime::shared_log::{Batch, LogEntry, SharedLogError};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::subjects::Subjects;
use crate::trim;

/// Messages a consumer may have waiting in the follower.
const SOURCE_QUEUE: usize = 4096;

/// Entries handed over at most per batch.
const MAX_BATCH: usize = 4096;

/// How often an idle follower of several filters probes, so `through`
/// moves while nothing it reads is written.
const IDLE_PROBE: Duration = Duration::from_millis(200);

/// Wait before recreating a consumer that failed.
const RECREATE_DELAY: Duration = Duration::from_millis(250);

/// What a follower counted.
#[derive(Debug, Default)]
pub struct FollowStats {
    /// Messages dropped for being on a subject their bytes do not belong on.
    pub misrouted: AtomicU64,
    /// Consumers recreated after an error.
    pub recreated: AtomicU64,
}

/// Reads the stream from a position on; stops when dropped.
pub struct Follower {
    batches: mpsc::Receiver<Result<Batch, SharedLogError>>,
    /// What a caller asking for fewer entries than a batch left.
    rest: Option<Batch>,
    tasks: Vec<JoinHandle<()>>,
    stats: Arc<FollowStats>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// One message from one filter's consumer.
struct Delivered {
    source: usize,
    position: u64,
    time_ms: u64,
    subject: String,
    entry: Bytes,
}

impl Follower {
    pub(crate) fn start(
        handle: &Handle,
        client: &async_nats::Client,
        stream: Stream,
        subjects: &Subjects,
        watched: &Watched,
        from: u64,
    ) -> Self {
        let from = from.max(1);
        let filters = subjects.filters(watched);
        let stats = Arc::new(FollowStats::default());
        let (deliver, delivered) = mpsc::channel(SOURCE_QUEUE * filters.len());
        let (out, batches) = mpsc::channel(4);
        let mut tasks: Vec<JoinHandle<()>> = filters
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let consumer = consume(
                    client.clone(),
                    stream.clone(),
                    i,
                    f.clone(),
                    from,
                    deliver.clone(),
                    stats.clone(),
                );
                handle.spawn(consumer)
            })
            .collect();
        let whole = filters.len() == 1 && filters[0] == subjects.all();
        let merge = Merge::new(stream, filters, whole, from, subjects.clone(), stats.clone());
        tasks.push(handle.spawn(merge.run(delivered, out)));
        Follower { batches, rest: None, tasks, stats }
    }

    /// What the follower counted (shared, so it can be read while the
    /// follower is busy on another thread).
    pub fn stats(&self) -> &Arc<FollowStats> {
        &self.stats
    }
}

impl logkv_runtime::shared_log::Follower for Follower {
    /// Batches come from the merge task on the log's runtime; this only
    /// receives them (cancel-safe), so it runs on any runtime.
    async fn next(&mut self, max: usize) -> Result<Batch, SharedLogError> {
        let mut batch = match self.rest.take() {
            Some(rest) => rest,
            None => match self.batches.recv().await {
                Some(b) => b?,
                None => return Err(SharedLogError::Unavailable("the follower stopped".into())),
            },
        };
        if batch.entries.len() > max.max(1) {
            // A reader asking for fewer than a batch: keep the rest for the
            // next call; this part is through its own last entry only.
            let rest = batch.entries.split_off(max.max(1));
            let through = batch.entries.last().map_or(batch.through, |e| e.position);
            self.rest = Some(Batch { entries: rest, through: batch.through });
            batch.through = through;
        }
        Ok(batch)
    }
}

/// Runs one filter's ordered consumer from `from`, recreating it from the
/// next position after any error (its server died, the consumer vanished).
async fn consume(
    client: async_nats::Client,
    stream: Stream,
    source: usize,
    filter: String,
    from: u64,
    deliver: mpsc::Sender<Delivered>,
    stats: Arc<FollowStats>,
) {
    let mut next = from;
    loop {
        let config = OrderedConfig {
            // A push consumer needs somewhere to push: without a deliver
            // subject the server takes it for a pull consumer and refuses
            // its idle heartbeat (error 10088), so nothing was ever read.
            deliver_subject: client.new_inbox(),
            filter_subject: filter.clone(),
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: next },
            ..Default::default()
        };
        let messages = match stream.create_consumer(config).await {
            Ok(consumer) => consumer.messages().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%filter, error = %e, "cannot create a consumer; retrying");
                stats.recreated.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(RECREATE_DELAY).await;
                continue;
            }
        };
        while let Some(message) = messages.next().await {
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(%filter, error = %e, "consumer failed; recreating it at {next}");
                    break;
                }
            };
            let Ok((position, time_ms)) = message.info().map(|i| {
                let ms = i.published.unix_timestamp_nanos() / 1_000_000;
                (i.stream_sequence, u64::try_from(ms).unwrap_or(0))
            }) else {
                continue;
            };
            if position < next {
                continue;
            }
            next = position + 1;
            let m = message.message;
            let d = Delivered { source, position, time_ms, subject: m.subject.to_string(), entry: m.payload };
            if deliver.send(d).await.is_err() {
                return;
            }
        }
        stats.recreated.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(RECREATE_DELAY).await;
    }
}

/// Why a probe did not complete.
enum ProbeError {
    /// The servers did not answer: probe again later.
    Unavailable(SharedLogError),
    /// The stream no longer holds a position a filter needs
    /// ([`SharedLogError::Trimmed`]): stop.
    Trimmed(SharedLogError),
}

impl From<SharedLogError> for ProbeError {
    fn from(e: SharedLogError) -> Self {
        match e {
            SharedLogError::Trimmed { .. } => ProbeError::Trimmed(e),
            e => ProbeError::Unavailable(e),
        }
    }
}

/// One filter's state in the merge.
struct Source {
    filter: String,
    queue: VecDeque<Delivered>,
    /// Highest position received.
    received: u64,
    /// Known to hold nothing more up to here (a probe).
    complete_to: u64,
    /// Where this filter was known complete when a message came after a
    /// gap: what was in the gap may have been purged rather than never
    /// this filter's, until a probe shows the stream still started inside
    /// it. Later gaps are proven by the same probe.
    gap_after: Option<u64>,
}

impl Source {
    /// Up to where this filter is known complete.
    fn complete(&self) -> u64 {
        let known = match self.queue.front() {
            Some(d) => d.position - 1,
            None => self.received.max(self.complete_to),
        };
        self.gap_after.map_or(known, |g| known.min(g))
    }

    /// The first position this filter may lack: what a trim must not
    /// pass.
    fn needs(&self) -> u64 {
        self.gap_after.unwrap_or(self.received.max(self.complete_to)) + 1
    }
}

/// Merges the filters' consumers into batches in stream order.
struct Merge {
    stream: Stream,
    sources: Vec<Source>,
    /// One filter covering the whole stream: nothing to prove.
    whole: bool,
    subjects: Subjects,
    stats: Arc<FollowStats>,
    through: u64,
}

impl Merge {
    fn new(
        stream: Stream,
        filters: Vec<String>,
        whole: bool,
        from: u64,
        subjects: Subjects,
        stats: Arc<FollowStats>,
    ) -> Self {
        let sources = filters
            .into_iter()
            .map(|filter| Source {
                filter,
                queue: VecDeque::new(),
                received: from - 1,
                complete_to: from - 1,
                gap_after: None,
            })
            .collect();
        Merge { stream, sources, whole, subjects, stats, through: from - 1 }
    }

    fn push(&mut self, d: Delivered) {
        let source = &mut self.sources[d.source];
        let known = source.received.max(source.complete_to);
        if d.position > known + 1 && source.gap_after.is_none() {
            source.gap_after = Some(known);
        }
        source.received = source.received.max(d.position);
        source.queue.push_back(d);
    }

    /// Takes every entry that is provably next, in order.
    fn take(&mut self) -> Batch {
        let mut entries = Vec::new();
        while entries.len() < MAX_BATCH {
            let Some((i, head)) = self
                .sources
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.queue.front().map(|d| (i, d.position)))
                .min_by_key(|(_, p)| *p)
            else {
                break;
            };
            let after_gap = self.sources[i].gap_after.is_some_and(|g| head > g);
            let others_done = self.sources.iter().enumerate().all(|(j, s)| j == i || s.complete() >= head);
            if after_gap || !others_done {
                break;
            }
            let d = self.sources[i].queue.pop_front().expect("a head");
            if d.subject == self.subjects.of_entry(&d.entry) {
                entries.push(LogEntry { position: d.position, time_ms: d.time_ms, bytes: d.entry });
            } else {
                tracing::warn!(position = d.position, subject = %d.subject, "dropped an entry on the wrong subject");
                self.stats.misrouted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let through = self.sources.iter().map(Source::complete).min().unwrap_or(self.through);
        self.through = self.through.max(through);
        Batch { entries, through: self.through }
    }

    /// Reads the stream's last position, then marks complete up to it
    /// every idle filter whose last message was already received — once
    /// the stream's first position, read after every message and lookup
    /// judged here, shows that nothing a filter lacked was purged.
    async fn probe(&mut self) -> Result<(), ProbeError> {
        let trim::Bounds { mut first, last } = trim::bounds(&self.stream).await?;
        let mut complete = vec![false; self.sources.len()];
        let mut looked_up = false;
        for (i, s) in self.sources.iter().enumerate() {
            if !s.queue.is_empty() || s.complete() >= last {
                continue;
            }
            let newest = if self.whole {
                last
            } else {
                looked_up = true;
                match self.stream.get_last_raw_message_by_subject(&s.filter).await {
                    Ok(m) => m.sequence,
                    Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => 0,
                    Err(e) => {
                        return Err(SharedLogError::Unavailable(format!("last of {}: {e}", s.filter)).into())
                    }
                }
            };
            complete[i] = newest <= s.received;
        }
        if looked_up {
            // A message purged after the bounds were read would have been
            // missing from its filter's lookup.
            first = trim::bounds(&self.stream).await?.first;
        }
        self.check_trim(first)?;
        for (s, complete) in self.sources.iter_mut().zip(complete) {
            if complete {
                s.complete_to = s.complete_to.max(last);
            }
        }
        Ok(())
    }

    /// Proves the gaps held: the stream's first position, read now (after
    /// every message pushed), must not have passed what a filter lacks.
    async fn prove_gaps(&mut self) -> Result<(), ProbeError> {
        let first = trim::bounds(&self.stream).await?.first;
        Ok(self.check_trim(first)?)
    }

    /// [`SharedLogError::Trimmed`] if `first` (read after every message
    /// pushed) passed a position a filter lacks; else every gap held is
    /// proven.
    fn check_trim(&mut self, first: u64) -> Result<(), SharedLogError> {
        if let Some(needed) = self.sources.iter().map(Source::needs).min() {
            SharedLogError::check_trimmed(first, needed)?;
        }
        self.sources.iter_mut().for_each(|s| s.gap_after = None);
        Ok(())
    }

    async fn run(
        mut self,
        mut delivered: mpsc::Receiver<Delivered>,
        out: mpsc::Sender<Result<Batch, SharedLogError>>,
    ) {
        let mut probe_now = true;
        // When the next probe is due: kept across messages, so a steady
        // trickle of them cannot postpone it.
        let mut probe_at: Option<Instant> = None;
        loop {
            while let Ok(d) = delivered.try_recv() {
                self.push(d);
            }
            let before = self.through;
            let batch = self.take();
            if !batch.entries.is_empty() || batch.through > before {
                if out.send(Ok(batch)).await.is_err() {
                    return;
                }
                continue;
            }
            let step = if self.sources.iter().any(|s| s.gap_after.is_some()) {
                // Held behind a gap: proven at once, not after a wait.
                Some(self.prove_gaps().await)
            } else if probe_now {
                probe_now = false;
                probe_at = None;
                Some(self.probe().await)
            } else {
                None
            };
            if let Some(done) = step {
                match done {
                    Ok(()) => {}
                    Err(ProbeError::Unavailable(e)) => {
                        tracing::warn!(error = %e, "probe failed");
                        tokio::time::sleep(RECREATE_DELAY).await;
                    }
                    Err(ProbeError::Trimmed(t)) => {
                        tracing::error!(error = %t, "the stream no longer holds what this follower needs");
                        let _ = out.send(Err(t)).await;
                        return;
                    }
                }
                continue;
            }
            // Waiting on a filter to prove itself: probe again soon; else
            // wait for a message, probing now and then.
            let blocked = self.sources.iter().any(|s| !s.queue.is_empty());
            let wait = if blocked { Duration::from_millis(2) } else { IDLE_PROBE };
            let due = Instant::now() + wait;
            let at = *probe_at.insert(probe_at.map_or(due, |p| p.min(due)));
            tokio::select! {
                d = delivered.recv() => match d {
                    Some(d) => self.push(d),
                    None => return,
                },
                _ = tokio::time::sleep_until(at) => probe_now = true,
            }
        }
    }
}
