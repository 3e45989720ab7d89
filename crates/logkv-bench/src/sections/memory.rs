//! Section 6, index memory: heap bytes per key of the index, measured by
//! the counting allocator around `Store::open` of the small-value store,
//! against std maps holding the same keys, measured the same way.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;

use logkv_store::{Durability, Store};

use crate::alloc::live_bytes;
use crate::ctx::{options, Ctx};
use crate::data::{value, KEY_BYTES};
use crate::report::{thousands, times, Row, Table, Target};
use logkv_eval::machine::{rss_anon_bytes, trim_heap};

/// The index should cost at most the key plus this, per key.
const TARGET_OVERHEAD_BYTES: usize = 32;

/// Live heap bytes and anonymous resident bytes added by `build`, and what it built.
fn measure<T>(build: impl FnOnce() -> T) -> (T, usize, i64) {
    trim_heap();
    let (live, rss) = (live_bytes(), rss_anon_bytes().unwrap_or(0));
    let built = build();
    trim_heap();
    let grown = live_bytes().saturating_sub(live);
    let rss_grown = rss_anon_bytes().unwrap_or(0) as i64 - rss as i64;
    (built, grown, rss_grown)
}

/// Runs the section (needs `periodic` to have written the store).
pub fn run(ctx: &mut Ctx) -> Result<Table, Box<dyn Error>> {
    ctx.close_loaded()?;
    let dir = ctx.keys_dir();
    let (store, live, rss) = measure(|| Store::open(&dir, options(Durability::None)));
    let store = store?;
    let (entries, index_bytes) = (store.index_entries(), store.index_bytes());
    store.close()?;
    let keys = &ctx.keys;
    let (btree, bt_live, bt_rss) =
        measure(|| keys.iter().enumerate().map(|(i, k)| (k.to_vec(), i as u64)).collect::<BTreeMap<_, _>>());
    drop(btree);
    let (hash, hm_live, hm_rss) = measure(|| {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.to_vec(), value(i as u64).to_vec()))
            .collect::<HashMap<_, _>>()
    });
    drop(hash);

    let per = |bytes: f64| bytes / entries.max(1) as f64;
    let b = |x: f64| format!("{x:.1} B");
    let target = (KEY_BYTES + TARGET_OVERHEAD_BYTES) as f64;
    let (ix, bt, hm) = (per(live as f64), per(bt_live as f64), per(hm_live as f64));
    let mut t = Table::default();
    t.row(Row::new("index bytes/key (allocator)", b(ix)).baseline(b(bt)).ratio(times(ix / bt)).target(
        "<= 16 + 32 = 48 B",
        Target::AtMost(target),
        ix,
    ));
    t.row(Row::new("  index_bytes() / index_entries()", b(per(index_bytes as f64))));
    t.row(Row::new("  resident anon memory/key", b(per(rss as f64))).baseline(b(per(bt_rss as f64))));
    t.row(Row::new("HashMap<key, 100 B value> bytes/key", "").baseline(b(hm)));
    t.row(Row::new("  resident anon memory/key", "").baseline(b(per(hm_rss as f64))));
    t.note(format!(
        "{} keys of 16 B; logkv: heap growth across Store::open (replay) of the small-value store",
        thousands(entries as f64)
    ));
    t.note("baseline: BTreeMap<Vec<u8>, u64> holding each key and an 8-byte location, built with the same inserts");
    t.note("heap bytes as requested from the allocator (its own headers and rounding excluded); resident anon memory includes them");
    Ok(t)
}
