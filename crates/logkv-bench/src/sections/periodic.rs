//! Section 3, `periodic` mode: one writer loads the small-value data set,
//! against the same inserts into a `HashMap`. The store and the map of the
//! last run stay loaded for the reads section.

use std::collections::HashMap;
use std::error::Error;
use std::time::Instant;

use logkv_store::{Durability, Store};

use crate::ctx::{fresh, options, Ctx};
use crate::data::{value, SMALL_PUT_FRAME_BYTES};
use crate::report::{dur, per_sec, progress, rate, thousands, times, Row, Runs, Table, Target};

/// Puts per second the store should reach.
const TARGET_PUTS_PER_SEC: f64 = 1e6;

/// Runs the section.
pub fn run(ctx: &mut Ctx) -> Result<Table, Box<dyn Error>> {
    ctx.close_loaded()?;
    let dir = ctx.keys_dir();
    let n = ctx.keys.len();
    let runs = ctx.sizes.runs;
    let (mut acked, mut durable, mut map_runs) = (Runs::default(), Runs::default(), Runs::default());
    let mut loaded: Option<Store> = None;
    for run in 1..=runs {
        progress(format!("  periodic: load {run} of {runs}"));
        if let Some(previous) = loaded.take() {
            Store::close(previous)?;
        }
        fresh(&dir)?;
        let store = Store::open(&dir, options(Durability::periodic_default()))?;
        let began = Instant::now();
        for (i, k) in ctx.keys.iter().enumerate() {
            store.put(k, &value(i as u64))?;
        }
        acked.push(began.elapsed());
        store.sync()?;
        durable.push(began.elapsed());
        loaded = Some(store);
    }
    let store = loaded.expect("at least one run");
    let stats = store.log().stats().snapshot();

    let mut map = HashMap::new();
    for _ in 0..runs {
        drop(std::mem::take(&mut map));
        let began = Instant::now();
        for (i, k) in ctx.keys.iter().enumerate() {
            map.insert(k.to_vec(), value(i as u64).to_vec());
        }
        map_runs.push(began.elapsed());
        std::hint::black_box(&map);
    }

    let count = n as f64;
    let puts = per_sec(count, acked.median());
    let map_puts = per_sec(count, map_runs.median());
    let mut t = Table::default();
    t.row(
        Row::new("puts/s (acknowledged)", rate(puts))
            .baseline(rate(map_puts))
            .ratio(times(puts / map_puts))
            .target(">= 1,000,000/s", Target::AtLeast(TARGET_PUTS_PER_SEC), puts),
    );
    if runs > 1 {
        t.row(Row::new("  range over runs", acked.rate_range(count)).baseline(map_runs.rate_range(count)));
    }
    t.row(Row::new("puts/s incl. final sync", rate(per_sec(count, durable.median()))));
    t.row(Row::new("mean put", dur(acked.median() / n as u32)).baseline(dur(map_runs.median() / n as u32)));
    t.row(
        Row::new("log bytes written", thousands(stats.bytes_written as f64))
            .baseline(format!("{} expected", thousands((n * SMALL_PUT_FRAME_BYTES) as f64))),
    );
    t.row(Row::new("flushes / fdatasyncs", format!("{} / {}", stats.writes, stats.syncs)));
    t.note(format!(
        "{} puts of 16 B keys + 100 B values into a fresh store, one thread, durability periodic \
         (1000 ms, 4 MiB); median of {runs} run(s)",
        thousands(count)
    ));
    t.note(
        "baseline: the same inserts (owned key and value) into std HashMap<Vec<u8>, Vec<u8>>, default hasher",
    );
    ctx.store = Some(store);
    ctx.map = Some(map);
    Ok(t)
}
