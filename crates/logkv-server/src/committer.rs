//! The committer: the threads that turn the writes of every connection
//! into signed entries.
//!
//! Connections hand their writes over a channel and await a one-shot
//! answer, so a write costs no thread of its own: the earlier design (a
//! blocking-pool thread per write, parked until its group commit) spent
//! most of the server's CPU switching between those threads. Each
//! committer thread takes everything queued, signs one entry per signer
//! and waits for it; with two threads, one signs and applies the next
//! entry while the other waits for its sync. On a shared log the entry is
//! handed to the log's runtime to append and wait for, so the thread goes
//! on signing at once.
//!
//! When the store coalesces writes (`periodic` mode keeping one version
//! per key, see `docs/compaction.md`), a blind write of one key (`SET`)
//! that a later blind write of the same key in the same entry replaces is
//! not signed at all: its caller gets the later write's answer, as if both
//! had been one write, which retention would have made them anyway.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use logkv_runtime::codec::native;
use logkv_runtime::envelope::TxPart;
use logkv_runtime::node::batch::{tx_bytes, MAX_BATCH_BYTES};
use logkv_runtime::node::{Applied, Node, NodeError};
use logkv_runtime::shared_log::SharedLog;
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use logkv_runtime::types::MAX_TXS_PER_ENTRY;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::replica::Replica;

/// Threads committing entries: one signs and applies while another syncs.
const THREADS: usize = 2;

/// One caller's transactions and where its answer goes.
struct Job {
    signer: Signer,
    txs: Vec<TxPart>,
    bytes: usize,
    answer: oneshot::Sender<Result<Applied, NodeError>>,
}

/// The committer threads and the queue that feeds them.
pub struct Committer {
    queue: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Committer {
    /// Starts the committer threads on `node`, appending to `replica`'s
    /// shared log if there is one, else to the node's own.
    pub fn start<L: SharedLog>(node: Arc<Node>, replica: Option<Arc<Replica<L>>>) -> Committer {
        let (queue, jobs) = mpsc::channel();
        let jobs = Arc::new(Mutex::new(jobs));
        let threads = (0..THREADS)
            .map(|i| {
                let (node, replica, jobs) = (node.clone(), replica.clone(), jobs.clone());
                std::thread::Builder::new()
                    .name(format!("logkv-commit-{i}"))
                    .spawn(move || commit_loop(&node, replica.as_ref(), &jobs))
                    .expect("spawn a committer thread")
            })
            .collect();
        Committer { queue: Some(queue), threads }
    }

    /// Signs `txs` as `signer` into an entry (shared with other queued
    /// callers of the same signer) and answers once it is acknowledged:
    /// the entry's position, the version of the caller's last transaction
    /// and the caller's results.
    pub async fn append(&self, signer: Signer, txs: Vec<TxPart>) -> Result<Applied, NodeError> {
        let (answer, answered) = oneshot::channel();
        let bytes = txs.iter().map(tx_bytes).sum();
        let queue = self.queue.as_ref().expect("the committer runs until closed");
        queue.send(Job { signer, txs, bytes, answer }).expect("committer threads run until closed");
        answered.await.expect("a committer answers every job")
    }

    /// Stops the threads once the queue is empty, releasing the node.
    pub fn close(mut self) {
        self.queue = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Takes every queued job, commits them, repeats until the queue closes.
fn commit_loop<L: SharedLog>(
    node: &Arc<Node>,
    replica: Option<&Arc<Replica<L>>>,
    jobs: &Mutex<Receiver<Job>>,
) {
    loop {
        let taken = {
            let jobs = jobs.lock();
            let Ok(first) = jobs.recv() else { return };
            let mut taken = vec![first];
            taken.extend(jobs.try_iter());
            taken
        };
        for entry in entries(taken) {
            match replica {
                None => commit(node, entry),
                Some(replica) => commit_shared(node, replica, entry),
            }
        }
    }
}

/// Splits jobs into entries: one signer each, within an entry's bounds, in
/// queue order per signer.
fn entries(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let mut entries: Vec<(Vec<Job>, usize, usize)> = Vec::new();
    for job in jobs {
        let fits = |(e, txs, bytes): &&mut (Vec<Job>, usize, usize)| {
            e[0].signer.address() == job.signer.address()
                && *txs + job.txs.len() <= MAX_TXS_PER_ENTRY
                && *bytes + job.bytes <= MAX_BATCH_BYTES
        };
        match entries.iter_mut().rev().find(fits) {
            Some((e, txs, bytes)) => {
                *txs += job.txs.len();
                *bytes += job.bytes;
                e.push(job);
            }
            None => {
                let (txs, bytes) = (job.txs.len(), job.bytes);
                entries.push((vec![job], txs, bytes));
            }
        }
    }
    entries.into_iter().map(|(e, ..)| e).collect()
}

/// Commits one entry and answers each of its jobs with its own share.
fn commit(node: &Node, jobs: Vec<Job>) {
    let signer = jobs[0].signer.clone();
    let (txs, answers) = gather(jobs, node.store().coalesces());
    answer(answers, node.append_entry(&signer, txs));
}

/// Signs one entry and leaves appending it to the shared log, and waiting
/// until the node applied it, to the replica's runtime.
fn commit_shared<L: SharedLog>(node: &Arc<Node>, replica: &Arc<Replica<L>>, jobs: Vec<Job>) {
    let signer = jobs[0].signer.clone();
    let (txs, answers) = gather(jobs, node.store().coalesces());
    match node.sign_entry(&signer, txs) {
        Ok((entry, hash)) => {
            let (node, replica) = (node.clone(), replica.clone());
            replica.clone().spawn(async move {
                answer(answers, replica.append_own(&node, &signer, entry.into(), hash).await);
            });
        }
        Err(e) => answer(answers, Err(e)),
    }
}

/// Where each job's answer goes and which of the entry's transactions
/// are its: `(answer, first index, count)`.
type Answers = Vec<(oneshot::Sender<Result<Applied, NodeError>>, usize, usize)>;

/// The jobs' transactions in one list, and their answers. With
/// `coalesce`, a job that only blindly writes a key, when the next job to
/// touch that key only blindly writes it too, contributes nothing and
/// shares the answer of the job that finally writes the key.
fn gather(jobs: Vec<Job>, coalesce: bool) -> (Vec<TxPart>, Answers) {
    let replaced_by = if coalesce { replacements(&jobs) } else { vec![None; jobs.len()] };
    let mut answers = Vec::with_capacity(jobs.len());
    let mut txs = Vec::new();
    let mut place = vec![(0, 0); jobs.len()];
    let mut replaced = Vec::new();
    for (i, job) in jobs.into_iter().enumerate() {
        match replaced_by[i] {
            Some(last) => replaced.push((job.answer, last)),
            None => {
                place[i] = (txs.len(), job.txs.len());
                answers.push((job.answer, txs.len(), job.txs.len()));
                txs.extend(job.txs);
            }
        }
    }
    answers.extend(replaced.into_iter().map(|(answer, last)| (answer, place[last].0, place[last].1)));
    (txs, answers)
}

/// What a job's transactions touch.
enum Touch {
    /// One unconditional put or delete of one key, reading nothing.
    Blind((StreamId, Vec<u8>)),
    /// These keys, read or written some other way.
    Keys(Vec<(StreamId, Vec<u8>)>),
    /// Unknown (not the native codec): anything.
    All,
}

fn touch(txs: &[TxPart]) -> Touch {
    let mut keys = Vec::new();
    for tx in txs {
        let Some(Ok(body)) = native::decode_part(tx) else {
            return Touch::All;
        };
        if let ([_], [write]) = (txs, &body.writes[..]) {
            let blind = body.reads.is_empty()
                && body.controls.is_empty()
                && matches!(write.op, native::Op::Put(_) | native::Op::Delete);
            if blind {
                return Touch::Blind((write.stream, write.key.clone()));
            }
        }
        if !body.controls.is_empty() {
            return Touch::All;
        }
        keys.extend(body.reads.into_iter().map(|r| (r.stream, r.key)));
        keys.extend(body.writes.into_iter().map(|w| (w.stream, w.key)));
    }
    Touch::Keys(keys)
}

/// For each job, the job whose write replaces its own, if any (see
/// [`gather`]). Walks the jobs backwards, remembering for each key the
/// next job to touch it.
fn replacements(jobs: &[Job]) -> Vec<Option<usize>> {
    let mut replaced_by = vec![None; jobs.len()];
    let mut next: HashMap<(StreamId, Vec<u8>), Option<usize>> = HashMap::new();
    for (i, job) in jobs.iter().enumerate().rev() {
        match touch(&job.txs) {
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

/// Answers every job of an entry with its share of `result`.
fn answer(mut answers: Answers, result: Result<Applied, NodeError>) {
    match result {
        Ok(applied) => {
            for (answer, start, n) in answers {
                let _ = answer.send(Ok(applied.share(start, n)));
            }
        }
        Err(e) if answers.len() == 1 => {
            let (answer, ..) = answers.pop().expect("one job");
            let _ = answer.send(Err(e));
        }
        Err(e) => {
            let e = Arc::new(e);
            for (answer, ..) in answers {
                let _ = answer.send(Err(NodeError::Batch(e.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logkv_runtime::codec::Read;

    fn job(op: Option<native::Op>, key: &[u8], read: bool) -> Job {
        let stream = StreamId([1; 32]);
        let body = native::Body {
            version: u64::MAX,
            check_reads_only: true,
            reads: if read { vec![Read { stream, key: key.to_vec() }] } else { Vec::new() },
            writes: op.map(|op| native::BodyWrite { stream, key: key.to_vec(), op }).into_iter().collect(),
            controls: Vec::new(),
        };
        let signer = Signer::from_secret_bytes([7; 32]).expect("a valid key");
        let (answer, _) = oneshot::channel();
        Job { signer, txs: vec![native::compact_tx(&body, [stream])], bytes: 0, answer }
    }

    fn set(key: &[u8], v: u8) -> Job {
        job(Some(native::Op::Put(vec![v])), key, false)
    }

    #[test]
    fn a_blind_write_is_replaced_only_by_the_next_job_touching_its_key() {
        let jobs = vec![
            set(b"a", 1),
            set(b"a", 2),
            job(Some(native::Op::Increment(1)), b"a", false),
            set(b"a", 3),
            set(b"b", 1),
            job(None, b"a", true),
            set(b"a", 4),
            set(b"a", 5),
            set(b"a", 6),
        ];
        assert_eq!(
            replacements(&jobs),
            [Some(1), None, None, None, None, None, Some(8), Some(8), None],
            "an increment or a read between two sets keeps the first"
        );
        let (txs, answers) = gather(jobs, true);
        assert_eq!(txs.len(), 6);
        // Replaced jobs share the answer of the write that replaced them.
        let shares: Vec<(usize, usize)> = answers.iter().map(|(_, start, n)| (*start, *n)).collect();
        assert_eq!(shares, [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (0, 1), (5, 1), (5, 1)]);
    }
}
