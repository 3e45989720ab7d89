//! Section 8, runtime: the node (`logkv_runtime::node::Node`) on the
//! embedded store.
//!
//! (a) trusted replay: `Node::open` of a node store holding the 100 B data
//! set as signed entries of 5 writes each (replay indexes records; no
//! entry is applied or verified), next to `Store::open` of the same files;
//! (b) signature-verified replay: the entries verified on all cores
//! (`node::verify::verify_entries`), next to the bound `cores / one
//! recovery` measured in this run, and applied to a fresh node with
//! `apply_replicated_batch` (verification + apply); (c) local writes
//! through the commit pipeline with 1, 4 and 32 threads in `always` and
//! `periodic` mode, batched into one signed entry per group commit, next
//! to the rate one signature per write would allow.

use std::error::Error;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use logkv_log::Durability;
use logkv_runtime::apply::Watched;
use logkv_runtime::codec::{native, zerog, ZEROG};
use logkv_runtime::envelope::{Entry, EntryView, TxPart};
use logkv_runtime::node::verify::{par_map, threads, verify_entries, verify_one};
use logkv_runtime::node::{Node, NodeOptions};
use logkv_runtime::pipeline::{Pipeline, PipelineOptions, Write};
use logkv_runtime::shared_log::LogEntry;
use logkv_runtime::signing::{keccak256, recover, Signer};
use logkv_runtime::types::StreamId;
use logkv_store::Store;

use crate::ctx::{fresh, options, Ctx};
use crate::data::{key, value};
use crate::report::{dur, per_sec, progress, rate, thousands, times, Row, Runs, Table, Target};

type Res<T> = Result<T, Box<dyn Error>>;

/// Writes per entry of the replay data set.
const WRITES_PER_ENTRY: usize = 5;
/// Writes per second trusted replay should reach.
const TARGET_REPLAY_WRITES_PER_SEC: f64 = 1.5e6;
/// Share of the `cores / recovery` bound verification should reach.
const TARGET_VERIFY_SHARE: f64 = 0.8;
/// Recoveries timed one by one for the bound.
const RECOVERIES: usize = 2_000;
/// Entries per `apply_replicated_batch` call when loading.
const APPLY_BATCH: usize = 16_384;

fn node_options(durability: Durability) -> NodeOptions {
    NodeOptions { store: options(durability), watched: Watched::All, ..NodeOptions::default() }
}

fn the_signer() -> Signer {
    Signer::from_secret_bytes([7; 32]).expect("a valid secret")
}

const STREAM: StreamId = StreamId([0x5a; 32]);

/// One 0G transaction putting `keys` (100 B values) in the bench stream.
fn put_tx(keys: impl Iterator<Item = u64>) -> TxPart {
    let writes = keys
        .map(|i| zerog::BodyWrite { stream: STREAM, key: key(i).to_vec(), value: value(i).to_vec() })
        .collect();
    let body = zerog::Body { version: u64::MAX, writes, ..zerog::Body::default() };
    TxPart { codec: ZEROG, tags: body.tags(), body: zerog::encode(&body) }
}

/// `n` signed entries, entry `e` writing keys `5e .. 5e+5` at nonce `e+1`.
fn build_entries(n: usize) -> Vec<Vec<u8>> {
    let signer = the_signer();
    let ids: Vec<u64> = (0..n as u64).collect();
    par_map(&ids, threads(), |&e| {
        let w = WRITES_PER_ENTRY as u64;
        let tx = put_tx(e * w..(e + 1) * w);
        Entry { sender: signer.address(), nonce: e + 1, txs: vec![tx] }
            .encode_signed(&signer)
            .expect("encodes")
    })
}

/// One thread's signature figures: the median time of one `recover`
/// (digest precomputed) over [`RECOVERIES`] calls timed one by one, the
/// mean of the same calls in a loop, and the mean of `verify_one` (parse,
/// keccak, recovery, address) over as many distinct entries.
struct Recovery {
    median: Duration,
    loop_mean: Duration,
    verify_mean: Duration,
}

fn recovery_time(entries: &[Vec<u8>]) -> Recovery {
    let samples: Vec<(_, _)> = entries
        .iter()
        .take(64)
        .map(|e| {
            let v = EntryView::parse(e).expect("well-formed");
            (v.signing_digest(), *v.signature())
        })
        .collect();
    let mut times: Vec<Duration> = (0..RECOVERIES)
        .map(|i| {
            let (d, s) = &samples[i % samples.len()];
            let began = Instant::now();
            std::hint::black_box(recover(d, s).expect("genuine"));
            began.elapsed()
        })
        .collect();
    times.sort();
    let began = Instant::now();
    for i in 0..RECOVERIES {
        let (d, s) = &samples[i % samples.len()];
        std::hint::black_box(recover(d, s).expect("genuine"));
    }
    let loop_mean = began.elapsed() / RECOVERIES as u32;
    let n = RECOVERIES.min(entries.len());
    let began = Instant::now();
    for e in entries.iter().take(n) {
        std::hint::black_box(verify_one(e));
    }
    Recovery { median: times[times.len() / 2], loop_mean, verify_mean: began.elapsed() / n as u32 }
}

/// The median time of one signature of a 32-byte digest.
fn signing_time() -> Duration {
    let signer = the_signer();
    let mut times: Vec<Duration> = (0..500u32)
        .map(|i| {
            let d = keccak256(&i.to_be_bytes());
            let began = Instant::now();
            std::hint::black_box(signer.sign_digest(&d));
            began.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn open_node(dir: &Path) -> Res<Duration> {
    let began = Instant::now();
    let node = Node::open(dir, node_options(Durability::None))?;
    let took = began.elapsed();
    node.close()?;
    Ok(took)
}

fn open_store(dir: &Path) -> Res<Duration> {
    let began = Instant::now();
    let store = Store::open(dir, options(Durability::None))?;
    let took = began.elapsed();
    store.close()?;
    Ok(took)
}

struct Local {
    writes: u64,
    took: Duration,
    entries: u64,
}

/// One native put of key `i`: what the node's own writers plan.
fn put_planned(i: u64) -> native::Body {
    let write = native::BodyWrite {
        stream: STREAM,
        key: key(i).to_vec(),
        op: native::Op::Put(value(i).to_vec().into()),
    };
    native::Body { version: u64::MAX, writes: vec![write], ..native::Body::default() }
}

/// `threads` writers through the commit pipeline (one 100 B write each)
/// for `run`.
fn local_writes(dir: &Path, durability: Durability, callers: usize, run: Duration) -> Res<Local> {
    fresh(dir)?;
    let node = Arc::new(Node::open(dir, node_options(durability))?);
    let pipeline = Pipeline::start(node.clone(), None, PipelineOptions::default());
    let signer = the_signer();
    let stop = AtomicBool::new(false);
    let start = Barrier::new(callers + 1);
    let (writes, took) = std::thread::scope(|s| -> Res<(u64, Duration)> {
        let handles: Vec<_> = (0..callers as u64)
            .map(|t| {
                let (pipeline, signer, stop, start) = (&pipeline, &signer, &stop, &start);
                s.spawn(move || -> Result<u64, String> {
                    start.wait();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let k = (t << 40) | i;
                        let write = Write::Local { signer: signer.clone(), txs: vec![put_planned(k)] };
                        pipeline.write_blocking(write).map_err(|e| e.to_string())?;
                        i += 1;
                    }
                    Ok(i)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        std::thread::sleep(run);
        stop.store(true, Ordering::Relaxed);
        let mut writes = 0;
        for h in handles {
            writes += h.join().expect("writer panicked")?;
        }
        Ok((writes, began.elapsed()))
    })?;
    let entries = node.entries_signed();
    pipeline.close();
    Arc::into_inner(node).expect("the pipeline released the node").close()?;
    fresh(dir)?;
    Ok(Local { writes, took, entries })
}

/// Runs the section.
pub fn run(ctx: &mut Ctx) -> Res<Table> {
    let mut t = Table::default();
    let cores = threads();
    let n_entries = (ctx.sizes.keys / WRITES_PER_ENTRY).max(1);
    let n_writes = (n_entries * WRITES_PER_ENTRY) as f64;

    progress(format!("  signing {} entries of {WRITES_PER_ENTRY} writes", thousands(n_entries as f64)));
    let entries = build_entries(n_entries);
    let entry_bytes = entries.iter().map(Vec::len).sum::<usize>() as f64 / n_entries as f64;

    // (b) first: the bound, then pure verification on all cores.
    progress("  timing signature recovery and verification");
    let rec = recovery_time(&entries);
    let one = rec.median;
    let bound = cores as f64 / one.as_secs_f64();
    let mut verifies = Runs::default();
    for _ in 0..ctx.sizes.runs {
        let began = Instant::now();
        let verdicts = verify_entries(&entries);
        verifies.push(began.elapsed());
        assert!(verdicts.iter().all(|v| *v == Some(true)), "every entry is genuine");
    }
    let vps = per_sec(n_entries as f64, verifies.median());
    let began = Instant::now();
    let sequential = par_map(&entries, 1, |e| verify_one(e));
    let one_thread = per_sec(n_entries as f64, began.elapsed());
    assert!(sequential.iter().all(|v| *v == Some(true)));

    // Load a node with apply_replicated_batch: verification + apply.
    progress("  applying the entries to a node (apply_replicated_batch, periodic)");
    let dir = ctx.root.join("runtime-replay");
    fresh(&dir)?;
    let node = Node::open(&dir, node_options(Durability::periodic_default()))?;
    // Log times are not measured here: any will do.
    let items: Vec<LogEntry> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| LogEntry { position: i as u64 + 1, time_ms: 0, bytes: e.clone().into() })
        .collect();
    let began = Instant::now();
    for chunk in items.chunks(APPLY_BATCH) {
        node.apply_replicated_batch(chunk)?;
    }
    node.store().sync()?;
    let applied = began.elapsed();
    assert_eq!(node.signatures_verified(), n_entries as u64);
    node.close()?;

    // (a) trusted replay of that store.
    progress("  reopening the node store");
    let first = open_node(&dir)?;
    let (mut opens, mut stores) = (Runs::default(), Runs::default());
    for _ in 0..ctx.sizes.runs {
        opens.push(open_node(&dir)?);
        stores.push(open_store(&dir)?);
    }
    let (open, store) = (opens.median(), stores.median());
    let wps = per_sec(n_writes, open);
    t.row(
        Row::new("trusted replay: writes/s (Node::open)", rate(wps))
            .baseline(rate(per_sec(n_writes, store)))
            .ratio(times(store.as_secs_f64() / open.as_secs_f64()))
            .target(">= 1,500,000/s", Target::AtLeast(TARGET_REPLAY_WRITES_PER_SEC), wps),
    );
    t.row(
        Row::new("  entries/s", rate(per_sec(n_entries as f64, open)))
            .baseline(rate(per_sec(n_entries as f64, store))),
    );
    if ctx.sizes.runs > 1 {
        t.row(Row::new("  range over runs (writes/s)", opens.rate_range(n_writes)));
    }
    t.row(Row::new("  open time (median)", dur(open)).baseline(dur(store)));
    t.row(Row::new("  first open after writing", dur(first)));

    t.row(
        Row::new(format!("verified replay: entries/s on {cores} cores"), rate(vps))
            .baseline(format!("{} (bound)", rate(bound)))
            .ratio(times(vps / bound))
            .target(">= 80% of the bound", Target::AtLeast(TARGET_VERIFY_SHARE * bound), vps),
    );
    t.row(
        Row::new("  on 1 thread", rate(one_thread))
            .baseline(format!("{} (bound)", rate(1.0 / one.as_secs_f64())))
            .ratio(times(one_thread * one.as_secs_f64())),
    );
    t.row(Row::new("  one recovery (median of 2,000)", dur(one)));
    t.row(Row::new("  one recovery (mean, 2,000 in a loop)", dur(rec.loop_mean)));
    t.row(Row::new("  one verify_one (mean, distinct entries)", dur(rec.verify_mean)));
    t.row(
        Row::new("  verify + apply (apply_replicated_batch)", rate(per_sec(n_entries as f64, applied)))
            .baseline(format!("{} writes/s", rate(per_sec(n_writes, applied)))),
    );
    fresh(&dir)?;

    // (c) local batched writes.
    let sign = signing_time();
    let sign_bound = 1.0 / sign.as_secs_f64();
    let run = ctx.sizes.always_run;
    let local_dir = ctx.root.join("runtime-local");
    for (mode, durability) in [("always", Durability::Always), ("periodic", Durability::periodic_default())] {
        for callers in [1usize, 4, 32] {
            progress(format!("  pipeline: {mode}, {callers} threads"));
            let l = local_writes(&local_dir, durability, callers, run)?;
            let wps = per_sec(l.writes as f64, l.took);
            t.row(
                Row::new(format!("local writes/s, {mode}, {callers} thr"), rate(wps))
                    .baseline(format!("{} (1 sig/write)", rate(sign_bound)))
                    .ratio(times(wps / sign_bound))
                    .note(format!("{:.1} tx/entry", l.writes as f64 / l.entries.max(1) as f64)),
            );
        }
    }

    t.note(format!(
        "replay data set: {} entries x {WRITES_PER_ENTRY} writes (16 B keys, 100 B values, one 0G transaction per \
         entry), {:.0} B per entry, one signer",
        thousands(n_entries as f64),
        entry_bytes
    ));
    t.note("trusted replay baseline: Store::open of the same files (the node adds the system-keyspace scans); page-cached, median of the runs after a first open");
    t.note(format!(
        "verified replay bound: {cores} cores / one secp256k1 recovery (digest given), timed in this run; \
         the figure is verify_entries (parse + keccak + recovery + address) over all entries on {cores} threads"
    ));
    t.note(format!(
        "local writes: each caller writes one 100 B value per write through the commit pipeline; baseline: one signature per write on one \
         core (signing takes {}); each run lasts {}",
        dur(sign),
        dur(run)
    ));
    Ok(t)
}
