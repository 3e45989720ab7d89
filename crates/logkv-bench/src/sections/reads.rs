//! Section 4, random reads: one thread, `get` of random keys of the
//! loaded small-value store, against the `HashMap` holding the same data.

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use logkv_store::{Durability, Store, StoreOptions};

use crate::ctx::{options, Ctx};
use crate::data::value;
use crate::report::{checksum_cost_row, dur, per_sec, rate, thousands, times, Row, Runs, Table, Target};

/// Gets per second the store should reach.
const TARGET_GETS_PER_SEC: f64 = 1e6;
/// Seed of the random key order.
const SEED: u64 = 0x10_6C_4B_00;

/// Runs the section (needs `periodic` to have loaded the store and map).
pub fn run(ctx: &mut Ctx) -> Result<Table, Box<dyn Error>> {
    let store = ctx.store.as_ref().expect("the periodic section loads the store");
    let map = ctx.map.as_ref().expect("the periodic section loads the map");
    let keys = &ctx.keys;
    let n = keys.len();
    // Everything is written to the segment files and read once (checking
    // every value), so the timed gets find the pages cached and mapped.
    store.sync()?;
    let began = Instant::now();
    for (i, k) in keys.iter().enumerate() {
        let got = store.get(k)?.ok_or_else(|| format!("key {i} is missing"))?;
        if got.data != value(i as u64) {
            return Err(format!("key {i} has the wrong value").into());
        }
    }
    let warm = began.elapsed();

    let mut rng = StdRng::seed_from_u64(SEED);
    let order: Vec<u32> = (0..n).map(|_| rng.random_range(0..n as u32)).collect();

    let (mut runs, mut map_runs, mut borrow_runs) = (Runs::default(), Runs::default(), Runs::default());
    for _ in 0..ctx.sizes.runs {
        let began = Instant::now();
        for &i in &order {
            black_box(store.get(&keys[i as usize])?);
        }
        runs.push(began.elapsed());

        let began = Instant::now();
        for &i in &order {
            black_box(map.get(&keys[i as usize][..]).map(|v| v.to_vec()));
        }
        map_runs.push(began.elapsed());

        let began = Instant::now();
        for &i in &order {
            black_box(map.get(&keys[i as usize][..]));
        }
        borrow_runs.push(began.elapsed());
    }
    let (took, map_took, map_borrow_took) = (runs.median(), map_runs.median(), borrow_runs.median());

    let gets = per_sec(n as f64, took);
    let map_gets = per_sec(n as f64, map_took);
    let mut t = Table::default();
    t.row(
        Row::new("gets/s (random, value copied out)", rate(gets))
            .baseline(rate(map_gets))
            .ratio(times(gets / map_gets))
            .target(">= 1,000,000/s", Target::AtLeast(TARGET_GETS_PER_SEC), gets),
    );
    if runs.len() > 1 {
        t.row(
            Row::new("  range over runs", runs.rate_range(n as f64)).baseline(map_runs.rate_range(n as f64)),
        );
    }
    t.row(Row::new("mean get", dur(took / n as u32)).baseline(dur(map_took / n as u32)));
    t.row(
        Row::new("HashMap get without copying the value", "")
            .baseline(rate(per_sec(n as f64, map_borrow_took))),
    );
    t.row(Row::new("sequential verify pass (first touch)", rate(per_sec(n as f64, warm))));
    t.note(format!(
        "{} gets of uniformly random keys (fixed seed) over {} keys, one thread, after a full read pass; \
         median of {} run(s)",
        thousands(n as f64),
        thousands(n as f64),
        runs.len()
    ));
    t.note("baseline: HashMap<Vec<u8>, Vec<u8>>::get plus a copy of the value, as Store::get returns owned bytes");
    checksum_cost(ctx, &order, &mut t)?;
    Ok(t)
}

/// The same random gets on the same store reopened with value checksums
/// off and on, alternating, so the ratio is what checking every value's
/// CRC32C costs a read (the section's store stays closed afterwards; later
/// sections reopen it).
fn checksum_cost(ctx: &mut Ctx, order: &[u32], t: &mut Table) -> Result<(), Box<dyn Error>> {
    ctx.close_loaded()?;
    let dir = ctx.keys_dir();
    let (mut on, mut off) = (Runs::default(), Runs::default());
    for _ in 0..ctx.sizes.runs.max(3) {
        for (verify, runs) in [(false, &mut off), (true, &mut on)] {
            let store =
                Store::open(&dir, StoreOptions { verify_checksums: verify, ..options(Durability::None) })?;
            let timed = |store: &Store| -> Result<std::time::Duration, Box<dyn Error>> {
                let began = Instant::now();
                for &i in order {
                    black_box(store.get(&ctx.keys[i as usize])?);
                }
                Ok(began.elapsed())
            };
            timed(&store)?; // the same pages cached and mapped for both
            runs.push(timed(&store)?);
            store.close()?;
        }
    }
    let n = order.len() as f64;
    t.row(checksum_cost_row("gets/s with value checksums, same store reopened", n, &on, &off));
    t.note(format!(
        "checksums: median of {} alternating reopen-and-read runs each; ranges on {} / off {}",
        on.len(),
        on.rate_range(n),
        off.rate_range(n)
    ));
    Ok(())
}
