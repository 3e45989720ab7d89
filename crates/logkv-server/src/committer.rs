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

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use logkv_runtime::envelope::TxPart;
use logkv_runtime::node::batch::{tx_bytes, MAX_BATCH_BYTES};
use logkv_runtime::node::{Applied, Node, NodeError};
use logkv_runtime::signing::Signer;
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
    pub fn start(node: Arc<Node>, replica: Option<Arc<Replica>>) -> Committer {
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
fn commit_loop(node: &Arc<Node>, replica: Option<&Arc<Replica>>, jobs: &Mutex<Receiver<Job>>) {
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
    let (txs, answers) = gather(jobs);
    answer(answers, node.append_entry(&signer, txs));
}

/// Signs one entry and leaves appending it to the shared log, and waiting
/// until the node applied it, to the log's runtime.
fn commit_shared(node: &Arc<Node>, replica: &Arc<Replica>, jobs: Vec<Job>) {
    let signer = jobs[0].signer.clone();
    let (txs, answers) = gather(jobs);
    match node.sign_entry(&signer, txs) {
        Ok((entry, hash)) => {
            let (node, replica) = (node.clone(), replica.clone());
            replica.clone().log().handle().spawn(async move {
                answer(answers, replica.append_own(&node, &signer, entry.into(), hash).await);
            });
        }
        Err(e) => answer(answers, Err(e)),
    }
}

/// Where each job's answer goes and which of the entry's transactions
/// are its: `(answer, first index, count)`.
type Answers = Vec<(oneshot::Sender<Result<Applied, NodeError>>, usize, usize)>;

/// The jobs' transactions in one list, and their answers.
fn gather(jobs: Vec<Job>) -> (Vec<TxPart>, Answers) {
    let mut answers = Vec::with_capacity(jobs.len());
    let mut txs = Vec::new();
    for job in jobs {
        answers.push((job.answer, txs.len(), job.txs.len()));
        txs.extend(job.txs);
    }
    (txs, answers)
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
