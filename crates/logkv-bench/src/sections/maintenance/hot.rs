//! Part 4: compaction in memory. A skewed workload — keys chosen from a
//! Zipf distribution (s = 0.99), so a few keys take most writes — in
//! `periodic` mode, with one version kept (writes of one flush window
//! coalesce) against the same writes keeping all history (they do not):
//! log bytes written and puts per second.

use std::time::Instant;

use logkv_store::{Durability, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{retain_one, Failure};
use crate::ctx::{fresh, options, Ctx};
use crate::data::{key, value};
use crate::report::{per_sec, progress, rate, thousands, times, Row, Table};

/// The Zipf exponent: YCSB's default skew.
const ZIPF_S: f64 = 0.99;
/// Seed of the key choice.
const SEED: u64 = 0x686f_7421;

/// Draws key indices `0..n` with probability proportional to `1 / (i+1)^s`.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|i| {
                total += 1.0 / (i as f64).powf(s);
                total
            })
            .collect::<Vec<_>>();
        Self { cumulative: cumulative.iter().map(|c| c / total).collect() }
    }

    fn sample(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.random();
        self.cumulative.partition_point(|&c| c < u).min(self.cumulative.len() - 1)
    }
}

/// What one run wrote.
struct Written {
    log_bytes: u64,
    puts_per_sec: f64,
    coalesced: bool,
}

fn load(dir: &std::path::Path, coalesce: bool, keys: usize, writes: usize) -> Result<Written, Failure> {
    fresh(dir)?;
    let opts = if coalesce {
        retain_one(Durability::periodic_default())
    } else {
        options(Durability::periodic_default())
    };
    let store = Store::open(dir, opts)?;
    let zipf = Zipf::new(keys, ZIPF_S);
    let mut rng = StdRng::seed_from_u64(SEED);
    let began = Instant::now();
    for j in 0..writes {
        store.put(&key(zipf.sample(&mut rng) as u64), &value(j as u64))?;
    }
    store.sync()?;
    let elapsed = began.elapsed();
    let written = Written {
        log_bytes: store.log().stats().snapshot().bytes_written,
        puts_per_sec: per_sec(writes as f64, elapsed),
        coalesced: store.coalesces(),
    };
    store.close()?;
    fresh(dir)?;
    Ok(written)
}

/// Decimal megabytes with two decimals (the quick run writes little).
fn mb(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / 1e6)
}

/// Runs part 4 into `t`.
pub(super) fn run(ctx: &Ctx, t: &mut Table) -> Result<(), Failure> {
    let keys = (ctx.sizes.upkeep_keys / 20).max(1_000);
    let writes = ctx.sizes.upkeep_keys;
    let dir = ctx.root.join("maintenance-hot");
    progress(format!(
        "  hot keys: {} writes over {} keys (Zipf {ZIPF_S})",
        thousands(writes as f64),
        thousands(keys as f64)
    ));
    let plain = load(&dir, false, keys, writes)?;
    let coalesced = load(&dir, true, keys, writes)?;
    if plain.coalesced || !coalesced.coalesced {
        return Err("the store did not coalesce exactly when one version is kept".into());
    }
    t.row(
        Row::new("hot keys: log MB written, writes coalesced", mb(coalesced.log_bytes))
            .baseline(mb(plain.log_bytes))
            .ratio(times(coalesced.log_bytes as f64 / plain.log_bytes as f64)),
    );
    t.row(
        Row::new("  puts/s, writes coalesced", rate(coalesced.puts_per_sec))
            .baseline(rate(plain.puts_per_sec))
            .ratio(times(coalesced.puts_per_sec / plain.puts_per_sec)),
    );
    t.note(format!(
        "hot keys: one writer, {} puts of 100 B values under {} keys drawn from a Zipf distribution \
         (s = {ZIPF_S}, fixed seed), periodic (1 s / 4 MiB windows); logkv = retain_versions = 1, where \
         each window's writes coalesce in memory; baseline = the same writes keeping all history; \
         log bytes are what the log wrote to its segments, synced at the end",
        thousands(writes as f64),
        thousands(keys as f64),
    ));
    Ok(())
}
