//! The committer: the threads that turn the writes of every connection
//! into signed entries.
//!
//! Connections hand their writes over a channel and await a one-shot
//! answer, so a write costs no thread of its own: the earlier design (a
//! blocking-pool thread per write, parked until its group commit) spent
//! most of the server's CPU switching between those threads. Each
//! committer thread takes everything queued, signs one entry per signer
//! and waits for it; with two threads, one signs and applies the next
//! entry while the other waits for its sync.

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
    /// Starts the committer threads on `node`.
    pub fn start(node: Arc<Node>) -> Committer {
        let (queue, jobs) = mpsc::channel();
        let jobs = Arc::new(Mutex::new(jobs));
        let threads = (0..THREADS)
            .map(|i| {
                let (node, jobs) = (node.clone(), jobs.clone());
                std::thread::Builder::new()
                    .name(format!("logkv-commit-{i}"))
                    .spawn(move || commit_loop(&node, &jobs))
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
fn commit_loop(node: &Node, jobs: &Mutex<Receiver<Job>>) {
    loop {
        let taken = {
            let jobs = jobs.lock();
            let Ok(first) = jobs.recv() else { return };
            let mut taken = vec![first];
            taken.extend(jobs.try_iter());
            taken
        };
        for entry in entries(taken) {
            commit(node, entry);
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
    let mut answers = Vec::with_capacity(jobs.len());
    let mut txs = Vec::new();
    for job in jobs {
        answers.push((job.answer, txs.len(), job.txs.len()));
        txs.extend(job.txs);
    }
    match node.append_entry(&signer, txs) {
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
