//! Section 10, maintenance: what checkpoints and compaction buy and cost.
//!
//! 1. [`restart`]: `Store::open` from a fresh checkpoint against a full
//!    replay of the same log, as overwrites grow it.
//! 2. [`space`]: log bytes per live byte on an overwrite-heavy workload,
//!    before and after `Store::compact` with `retain_versions = 1`.
//! 3. [`busy`]: writers' throughput and latency while checkpoints loop
//!    and while a compaction runs, against the same writers idle.
//! 4. [`hot`]: log bytes a skewed workload writes when writes coalesce in
//!    memory, against the same writes keeping all history.
//!
//! Everything goes through the `Store` API, without a server.

mod busy;
mod hot;
mod restart;
mod space;

use std::error::Error;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use logkv_store::{Durability, Retention, Store, StoreOptions};

use crate::ctx::{options, Ctx};
use crate::data::{key, value};
use crate::report::{progress, Table};

/// Errors cross writer threads here.
type Failure = Box<dyn Error + Send + Sync>;

/// Overwrites per key of the overwrite-heavy workload, on average.
const OVERWRITES: usize = 4;
/// Seed of the overwrite-heavy workload's key choice.
const SEED: u64 = 0x6d61_696e;

/// Runs the section.
pub fn run(ctx: &mut Ctx) -> Result<Table, Box<dyn Error>> {
    let mut t = Table::default();
    restart::run(ctx, &mut t).map_err(|e| e as Box<dyn Error>)?;
    space::run(ctx, &mut t).map_err(|e| e as Box<dyn Error>)?;
    busy::run(ctx, &mut t).map_err(|e| e as Box<dyn Error>)?;
    hot::run(ctx, &mut t).map_err(|e| e as Box<dyn Error>)?;
    Ok(t)
}

/// Store options keeping one version per key, so compaction drops every
/// superseded one.
fn retain_one(durability: Durability) -> StoreOptions {
    StoreOptions {
        retention: Retention { versions: Some(1), duration: None, tombstone_horizon: None },
        ..options(durability)
    }
}

/// Puts `n` keys, then `OVERWRITES * n` values under keys chosen uniformly
/// at random (fixed seed). Write `j` stores `value(j)`; returns, per key,
/// the `j` of its newest value, so a reader can check every key.
fn overwrite_heavy(store: &Store, n: usize, what: &str) -> Result<Vec<u64>, Failure> {
    let total = n * (1 + OVERWRITES);
    let mut newest = vec![0u64; n];
    let mut rng = StdRng::seed_from_u64(SEED);
    for j in 0..total {
        let i = if j < n { j } else { rng.random_range(0..n) };
        store.put(&key(i as u64), &value(j as u64))?;
        newest[i] = j as u64;
        tenths(what, j + 1, total);
    }
    Ok(newest)
}

/// Checks every key holds the value [`overwrite_heavy`] wrote last.
fn check_newest(store: &Store, newest: &[u64]) -> Result<(), Failure> {
    for (i, &j) in newest.iter().enumerate() {
        let got = store.get(&key(i as u64))?.ok_or_else(|| format!("key {i} is missing"))?;
        if got.data != value(j) {
            return Err(format!("key {i} does not hold its newest value (write {j})").into());
        }
    }
    Ok(())
}

/// Progress of a long loop on stderr, at every tenth of `total`.
fn tenths(what: &str, done: usize, total: usize) {
    if total >= 1_000_000 && done.is_multiple_of(total / 10) {
        progress(format!("    {what}: {}%", done * 100 / total));
    }
}
