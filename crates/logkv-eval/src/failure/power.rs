//! Simulated power loss: the engine runs in this process on the in-memory
//! fault-injecting file system ([`SimFs`]), one thread writes, and at a
//! random moment the machine is cut off: [`SimFs::power_loss`] keeps a
//! random subset of everything not yet synced (one write possibly torn),
//! [`SimFs::power_loss_keep_nothing`] only what was synced; trials
//! alternate between the two. The engine is reopened on what survived and
//! the acknowledged writes that are gone are counted.
//!
//! Only logkv (in its three modes) and the naive baseline run on the
//! [`logkv_fs::FileSystem`] trait, so only they can be measured this way.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logkv_fs::{DynFs, SimFs};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Acks, Outcome, Tally};
use crate::engine::{self, Engine, EngineKind, Logkv, Naive};
use crate::progress::Progress;
use crate::record::LossRow;
use crate::workload;

/// Keys overwritten at random.
pub const KEYS: u64 = 10_000;
/// Bytes per value.
pub const VALUE_BYTES: usize = 100;
/// The power fails this many milliseconds after the first acknowledged
/// write, uniformly at random: long enough that most trials see a `periodic`
/// window and a naive snapshot (both every second) complete.
pub const CUT_AFTER_MS: std::ops::Range<u64> = 300..3000;
/// The writer's pace limit, which bounds the memory the in-memory file
/// system needs (every unsynced write is kept as an operation).
pub const MAX_WRITES_PER_SEC: f64 = 100_000.0;

const DIR: &str = "/power";

/// Cuts the power under `kind` `trials` times and sums what the reopened
/// engine lost. `progress` counts trials. Logkv's modes and the naive
/// engine only.
pub fn power_trials(
    kind: EngineKind,
    trials: u32,
    seed: u64,
    progress: &Progress,
) -> Result<LossRow, String> {
    if !(kind.is_logkv() || kind == EngineKind::Naive) {
        return Err(format!(
            "{kind} does not run on logkv's file system trait, so power loss cannot be simulated"
        ));
    }
    let mut tally = Tally::new(kind, "power-loss");
    for trial in 0..trials {
        let outcome =
            trial_once(kind, seed, trial).map_err(|e| format!("{kind} power-loss trial {trial}: {e}"))?;
        tally.add(outcome);
        progress.inc(1);
    }
    Ok(tally.0)
}

fn open_on(kind: EngineKind, fs: &SimFs) -> engine::Result<Box<dyn Engine>> {
    let dynfs: DynFs = Arc::new(fs.clone());
    match kind {
        EngineKind::Naive => {
            Ok(Box::new(Naive::open(dynfs, Path::new(DIR), crate::engine::NAIVE_SNAPSHOT_INTERVAL)?))
        }
        _ => Ok(Box::new(Logkv::open_on(kind, dynfs, Path::new(DIR))?)),
    }
}

fn trial_once(kind: EngineKind, seed: u64, trial: u32) -> Result<Outcome, String> {
    let mut rng = SmallRng::seed_from_u64(workload::mix(seed ^ workload::mix(u64::from(trial))));
    let cut_after = Duration::from_millis(rng.random_range(CUT_AFTER_MS));
    let (writer_seed, crash_seed): (u64, u64) = (rng.random(), rng.random());
    let keep_nothing = trial % 2 == 1;

    let fs = SimFs::new();
    let engine = open_on(kind, &fs).map_err(|e| format!("opening: {e}"))?;
    let published = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (mut log, counted, crashed) = std::thread::scope(|s| {
        let writer = s.spawn(|| -> Result<Vec<(u64, u64)>, String> {
            let mut rng = SmallRng::seed_from_u64(writer_seed);
            let mut log = Vec::new();
            let start = Instant::now();
            while !stop.load(Ordering::Acquire) {
                if log.len() as f64 > start.elapsed().as_secs_f64() * MAX_WRITES_PER_SEC {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                let i = rng.random_range(0..KEYS);
                let w = log.len() as u64 + 1;
                engine
                    .put(&workload::key(i), &workload::value(i, w, VALUE_BYTES))
                    .map_err(|e| format!("put of key {i}: {e}"))?;
                log.push((i, w));
                published.store(log.len(), Ordering::Release);
            }
            Ok(log)
        });
        while published.load(Ordering::Acquire) == 0 && !writer.is_finished() {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(cut_after);
        // Count the acknowledgements first: each of them happened before
        // the power failed.
        let counted = published.load(Ordering::Acquire);
        let crashed = if keep_nothing { fs.power_loss_keep_nothing() } else { fs.power_loss(crash_seed) };
        stop.store(true, Ordering::Release);
        let log = writer.join().map_err(|_| "the writer thread panicked".to_string())??;
        Ok::<_, String>((log, counted, crashed))
    })?;
    drop(engine);
    log.truncate(counted);
    let mut acks = Acks::new(KEYS);
    for (i, w) in log {
        acks.record(i, w)?;
    }
    let how =
        if keep_nothing { "keeping nothing unsynced".to_string() } else { format!("seed {crash_seed}") };
    let engine = open_on(kind, &crashed).map_err(|e| format!("reopening after a power loss ({how}): {e}"))?;
    acks.check(&*engine, VALUE_BYTES)
}
