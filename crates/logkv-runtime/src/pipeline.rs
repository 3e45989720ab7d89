//! The commit pipeline: the one way writes reach a node, whoever makes
//! them — RESP sessions, JSON-RPC (`kv_submit` and the node's own
//! writes), the CLI on a data directory — on the node's own log or on a
//! shared log.
//!
//! A writer hands over a [`Write`]: the node's own transactions as
//! *planned* native bodies (nothing encoded yet), or a client's signed
//! entry. The worker thread takes everything queued, and for each signer
//! build one entry of its planned transactions: blind writes of a key that
//! a later blind write of the same key in the same entry replaces are
//! dropped first when the store keeps one version per key (coalescing, on
//! the planned ops, before anything is encoded), then the bodies are
//! encoded, the entry signed, applied, and acknowledged — by the node's
//! log (the worker leads or joins the group commit) or, on a shared log,
//! by the [`Sequencer`] once the log ordered it and the node applied it.
//! Each writer gets its own share of the entry's [`Applied`]: results,
//! versions and the op answers replies are built from.
//!
//! One worker: while it syncs, the writes queued meanwhile wait and form
//! the next entry, so an entry (one signature, one sync) carries every
//! write that arrived during the previous one. Two workers taking turns
//! (one applying while the other syncs) split the writers into two
//! smaller entries per sync and were slower in every mode measured
//! (docs/benchmarks.md). A write crosses one thread boundary each way: the
//! writer's task to the worker, the worker's answer back.
//!
//! The queue is bounded in bytes ([`PipelineOptions::queue_bytes`]): a
//! writer waits for room before its write joins the queue, and the room
//! is given back once the write is answered. A RESP session waiting here
//! reads nothing from its socket, so a client that writes faster than the
//! log takes it is held back by TCP, not buffered.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{JoinHandle, Thread};

use parking_lot::{Condvar, Mutex};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::codec::native::{self, Body, Op};
use crate::envelope::{EntryView, Protocol};
use crate::node::{Applied, Node, NodeError, Result};
use crate::signing::Signer;
use crate::types::{StreamId, MAX_TXS_PER_ENTRY};

/// About how many bytes of transactions one entry of the node's own takes
/// (a single writer's transactions always go, whatever their size).
pub const MAX_ENTRY_BYTES: usize = 4 << 20;

/// The default bound of the queue, in bytes of queued and in-flight writes.
pub const DEFAULT_QUEUE_BYTES: usize = 64 << 20;

/// How the pipeline runs.
#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions {
    /// Bytes of writes queued or in flight at most; a writer waits for
    /// room beyond that. A single write larger than the bound waits until
    /// the queue is empty and then goes alone.
    pub queue_bytes: usize,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self { queue_bytes: DEFAULT_QUEUE_BYTES }
    }
}

/// One writer's write.
#[derive(Debug)]
pub enum Write {
    /// Transactions of the node's own, planned, to be signed by `signer`
    /// in an entry it may share with other queued writes of that signer.
    /// They stay together and in order inside the entry.
    Local {
        /// Who signs.
        signer: Signer,
        /// The transactions; each is tagged with the streams it writes.
        txs: Vec<Body>,
    },
    /// A client's signed entry, verified and applied as it is.
    Signed(Vec<u8>),
}

impl Write {
    /// What the write weighs in the queue: about the bytes it adds to an
    /// entry.
    fn bytes(&self) -> usize {
        match self {
            Write::Signed(entry) => entry.len(),
            Write::Local { txs, .. } => txs.iter().map(planned_bytes).sum(),
        }
    }
}

/// About the bytes a planned transaction adds to an entry.
fn planned_bytes(body: &Body) -> usize {
    let reads: usize = body.reads.iter().map(|r| r.key.len() + 4).sum();
    let writes: usize =
        body.writes.iter().map(|w| w.key.len() + w.op.value().map_or(9, <[u8]>::len) + 6).sum();
    16 + reads + writes
}

/// Hands the node's entries to a shared log and calls back once the node
/// applied them from it (the server's replica implements it).
pub trait Sequencer: Send + Sync {
    /// Appends `entry`, which the node signed as `signer` (keccak256
    /// `hash`), and calls `done` once the node applied it — signing it
    /// again if another node used its nonce first.
    fn append_own(&self, signer: Signer, entry: Vec<u8>, hash: [u8; 32], done: Done);
    /// Appends a client's signed `entry` and calls `done` once the node
    /// applied it.
    fn append(&self, entry: Vec<u8>, done: Done);
}

/// Called with what became of an entry handed to a [`Sequencer`].
pub type Done = Box<dyn FnOnce(Result<Applied>) + Send>;

/// One queued write and where its answer goes; the permit holds its room
/// in the queue until it is answered.
struct Job {
    write: Write,
    answer: oneshot::Sender<Result<Applied>>,
    _room: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

struct Inner {
    node: Arc<Node>,
    sequencer: Option<Arc<dyn Sequencer>>,
    queue: Mutex<Queue>,
    queued: Condvar,
    room: Arc<Semaphore>,
    capacity: usize,
}

/// The commit pipeline of one node.
pub struct Pipeline {
    inner: Arc<Inner>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("capacity", &self.inner.capacity).finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Starts the worker on `node`, appending to `sequencer`'s shared
    /// log if there is one, else to the node's own.
    pub fn start(
        node: Arc<Node>,
        sequencer: Option<Arc<dyn Sequencer>>,
        options: PipelineOptions,
    ) -> Pipeline {
        let capacity = options.queue_bytes.clamp(1, Semaphore::MAX_PERMITS);
        let inner = Arc::new(Inner {
            node,
            sequencer,
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
            room: Arc::new(Semaphore::new(capacity)),
            capacity,
        });
        let worker = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("logkv-commit".into())
                .spawn(move || inner.work())
                .expect("spawn the commit worker")
        };
        Pipeline { inner, worker: Some(worker) }
    }

    /// The node written to.
    pub fn node(&self) -> &Arc<Node> {
        &self.inner.node
    }

    /// Commits `write` and answers once it is acknowledged (durable per
    /// the durability mode, and applied): for a local write, the entry's
    /// position, the version of the writer's *last* transaction (its
    /// transactions hold consecutive versions) and only its results and
    /// answers; for a signed entry, the whole entry's. Waits first for
    /// room in the queue.
    pub async fn write(&self, write: Write) -> Result<Applied> {
        let weight = write.bytes().clamp(1, self.inner.capacity) as u32;
        let room =
            self.inner.room.clone().acquire_many_owned(weight).await.expect("the semaphore is never closed");
        let (answer, answered) = oneshot::channel();
        {
            let mut q = self.inner.queue.lock();
            assert!(!q.closed, "the pipeline takes writes until it is closed");
            q.jobs.push_back(Job { write, answer, _room: room });
        }
        self.inner.queued.notify_one();
        answered.await.expect("the worker answers every write")
    }

    /// [`Pipeline::write`] for a caller outside any async runtime (the
    /// CLI, tools, tests): blocks the calling thread.
    pub fn write_blocking(&self, write: Write) -> Result<Applied> {
        block_on(self.write(write))
    }

    /// Bytes of writes queued or in flight now.
    pub fn queued_bytes(&self) -> usize {
        self.inner.capacity - self.inner.room.available_permits()
    }

    /// Stops the worker once the queue is empty, releasing the node.
    pub fn close(mut self) {
        self.inner.queue.lock().closed = true;
        self.inner.queued.notify_all();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.inner.queue.lock().closed = true;
        self.inner.queued.notify_all();
    }
}

impl Inner {
    /// The worker: takes every queued write, commits them, repeats until
    /// the pipeline closes and its queue is empty.
    fn work(&self) {
        loop {
            let taken: Vec<Job> = {
                let mut q = self.queue.lock();
                while q.jobs.is_empty() && !q.closed {
                    self.queued.wait(&mut q);
                }
                if q.jobs.is_empty() {
                    return;
                }
                q.jobs.drain(..).collect()
            };
            for group in groups(taken) {
                match group {
                    Group::Signed(job) => self.commit_signed(job),
                    Group::Local(signer, jobs) => self.commit_local(signer, jobs),
                }
            }
        }
    }

    /// Applies a client's entry, or hands it to the shared log.
    fn commit_signed(&self, job: Job) {
        let Write::Signed(entry) = job.write else { unreachable!("a signed group holds a signed write") };
        let answer = job.answer;
        let room = job._room;
        match &self.sequencer {
            None => {
                let _ = answer.send(self.node.submit(&entry));
            }
            Some(log) => match EntryView::parse(&entry) {
                Err(e) if e.needs_upgrade() => {
                    let _ = answer.send(Err(NodeError::UpgradeNeeded(e)));
                }
                _ => log.append(
                    entry,
                    Box::new(move |applied| {
                        let _ = answer.send(applied);
                        drop(room);
                    }),
                ),
            },
        }
    }

    /// Signs one entry of `signer`'s planned transactions and commits it.
    fn commit_local(&self, signer: Signer, jobs: Vec<Job>) {
        let (txs, shares) = gather(jobs, self.node.store().coalesces());
        // While a key has an expiry, entries sweep (protocol 5, docs/expiry.md).
        let floor = if self.node.has_queued_expiries() { Protocol::V5 } else { Protocol::V2 };
        let protocol = txs.iter().map(protocol_of).fold(floor, Protocol::max);
        let parts: Vec<_> = txs.iter().map(|body| native::CompactTx::new(body, body.tags())).collect();
        let signed = self.node.sign_entry(&signer, parts, protocol);
        drop(txs);
        match (&self.sequencer, signed) {
            (_, Err(e)) => answer(shares, Err(e)),
            (None, Ok((entry, hash))) => answer(shares, self.node.commit_own(&entry, hash)),
            (Some(log), Ok((entry, hash))) => {
                log.append_own(signer, entry, hash, Box::new(move |applied| answer(shares, applied)))
            }
        }
    }
}

/// The oldest protocol whose nodes know every op of a planned transaction
/// (format.md, "Feature levels"): an entry is signed in the oldest one its
/// transactions allow, so nodes that know no newer ops keep following.
fn protocol_of(body: &Body) -> Protocol {
    body.writes.iter().map(|w| w.op.protocol()).max().unwrap_or(Protocol::V2).max(Protocol::V2)
}

/// Entries to build from the writes taken: a client's entry alone; the
/// node's own writes one entry per signer, in queue order, within an
/// entry's bounds.
enum Group {
    Signed(Job),
    Local(Signer, Vec<Job>),
}

fn groups(jobs: Vec<Job>) -> Vec<Group> {
    let mut out: Vec<(Group, usize, usize)> = Vec::new();
    for job in jobs {
        let (signer, n, bytes) = match &job.write {
            Write::Signed(_) => {
                out.push((Group::Signed(job), 0, 0));
                continue;
            }
            Write::Local { signer, txs } => (signer.clone(), txs.len(), job.write.bytes()),
        };
        let fits = |(g, txs, b): &&mut (Group, usize, usize)| {
            matches!(g, Group::Local(s, _) if s.address() == signer.address())
                && *txs + n <= MAX_TXS_PER_ENTRY
                && *b + bytes <= MAX_ENTRY_BYTES
        };
        match out.iter_mut().rev().find(fits) {
            Some((Group::Local(_, group), txs, b)) => {
                *txs += n;
                *b += bytes;
                group.push(job);
            }
            _ => out.push((Group::Local(signer, vec![job]), n, bytes)),
        }
    }
    out.into_iter().map(|(g, ..)| g).collect()
}

/// Where each writer's answer goes, which of the entry's transactions are
/// its (`first index, count`), and its room in the queue.
type Shares = Vec<(oneshot::Sender<Result<Applied>>, usize, usize, OwnedSemaphorePermit)>;

/// The jobs' transactions in one list, and their shares. With `coalesce`,
/// a job that only blindly writes a key, when the next job to touch that
/// key only blindly writes it too, contributes nothing and shares the
/// answer of the job that finally writes the key — as if both had been one
/// write, which retention would have made them anyway.
fn gather(jobs: Vec<Job>, coalesce: bool) -> (Vec<Body>, Shares) {
    let planned: Vec<&[Body]> = jobs
        .iter()
        .map(|j| match &j.write {
            Write::Local { txs, .. } => txs.as_slice(),
            Write::Signed(_) => &[],
        })
        .collect();
    let replaced_by = if coalesce { replacements(&planned) } else { vec![None; jobs.len()] };
    let mut shares = Vec::with_capacity(jobs.len());
    let mut txs = Vec::new();
    let mut place = vec![(0, 0); jobs.len()];
    let mut replaced = Vec::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let Write::Local { txs: mine, .. } = job.write else {
            unreachable!("a local group holds local writes")
        };
        match replaced_by[i] {
            Some(last) => replaced.push((job.answer, last, job._room)),
            None => {
                place[i] = (txs.len(), mine.len());
                shares.push((job.answer, txs.len(), mine.len(), job._room));
                txs.extend(mine);
            }
        }
    }
    shares.extend(
        replaced.into_iter().map(|(answer, last, room)| (answer, place[last].0, place[last].1, room)),
    );
    (txs, shares)
}

/// What a job's planned transactions touch.
enum Touch<'a> {
    /// One unconditional put or delete of one key, reading nothing.
    Blind((StreamId, &'a [u8])),
    /// These keys, read or written some other way.
    Keys(Vec<(StreamId, &'a [u8])>),
    /// Access control: anything.
    All,
}

fn touch(txs: &[Body]) -> Touch<'_> {
    if let [body] = txs {
        if let [w] = &body.writes[..] {
            let blind =
                body.reads.is_empty() && body.controls.is_empty() && matches!(w.op, Op::Put(_) | Op::Delete);
            if blind {
                return Touch::Blind((w.stream, &w.key));
            }
        }
    }
    let mut keys = Vec::new();
    for body in txs {
        if !body.controls.is_empty() {
            return Touch::All;
        }
        keys.extend(body.reads.iter().map(|r| (r.stream, r.key.as_slice())));
        keys.extend(body.writes.iter().map(|w| (w.stream, w.key.as_slice())));
    }
    Touch::Keys(keys)
}

/// For each job, the job whose write replaces its own, if any (see
/// [`gather`]). Walks the jobs backwards, remembering for each key the
/// next job to touch it.
fn replacements(jobs: &[&[Body]]) -> Vec<Option<usize>> {
    let mut replaced_by = vec![None; jobs.len()];
    let mut next: HashMap<(StreamId, &[u8]), Option<usize>> = HashMap::new();
    for (i, txs) in jobs.iter().enumerate().rev() {
        match touch(txs) {
            Touch::Blind(key) => {
                if let Some(&Some(j)) = next.get(&key) {
                    replaced_by[i] = Some(replaced_by[j].unwrap_or(j));
                }
                next.insert(key, Some(i));
            }
            Touch::Keys(keys) => {
                for key in keys {
                    next.insert(key, None);
                }
            }
            Touch::All => next.clear(),
        }
    }
    replaced_by
}

/// Answers every writer of an entry with its share of `result`.
fn answer(shares: Shares, result: Result<Applied>) {
    match result {
        Ok(applied) => {
            for (answer, start, n, _room) in shares {
                let _ = answer.send(Ok(applied.share(start, n)));
            }
        }
        Err(e) if shares.len() == 1 => {
            let (answer, ..) = shares.into_iter().next().expect("one writer");
            let _ = answer.send(Err(e));
        }
        Err(e) => {
            let e = Arc::new(e);
            for (answer, ..) in shares {
                let _ = answer.send(Err(NodeError::Batch(e.clone())));
            }
        }
    }
}

/// Runs `future` to completion on this thread, parking while it waits.
fn block_on<T>(future: impl Future<Output = T>) -> T {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::native::BodyWrite;
    use crate::codec::Read;

    fn body(op: Option<Op>, key: &[u8], read: bool) -> Vec<Body> {
        let stream = StreamId([1; 32]);
        vec![Body {
            version: u64::MAX,
            check_reads_only: true,
            reads: if read { vec![Read { stream, key: key.to_vec() }] } else { Vec::new() },
            writes: op.map(|op| BodyWrite { stream, key: key.to_vec(), op }).into_iter().collect(),
            controls: Vec::new(),
        }]
    }

    fn set(key: &[u8], v: u8) -> Vec<Body> {
        body(Some(Op::Put(vec![v].into())), key, false)
    }

    #[test]
    fn a_blind_write_is_replaced_only_by_the_next_write_touching_its_key() {
        let jobs = [
            set(b"a", 1),
            set(b"a", 2),
            body(Some(Op::Increment(1)), b"a", false),
            set(b"a", 3),
            set(b"b", 1),
            body(None, b"a", true),
            set(b"a", 4),
            set(b"a", 5),
            set(b"a", 6),
        ];
        let planned: Vec<&[Body]> = jobs.iter().map(Vec::as_slice).collect();
        assert_eq!(
            replacements(&planned),
            [Some(1), None, None, None, None, None, Some(8), Some(8), None],
            "an increment or a read between two sets keeps the first"
        );
    }
}
