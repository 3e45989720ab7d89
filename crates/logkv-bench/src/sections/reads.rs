//! Section 4, random reads: one thread, `get` of random keys of the
//! loaded small-value store, against the `HashMap` holding the same data.

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::ctx::Ctx;
use crate::data::value;
use crate::report::{dur, per_sec, rate, thousands, times, Row, Runs, Table, Target};

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
    Ok(t)
}
