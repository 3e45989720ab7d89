//! The 1 MiB data set: written once in `periodic` mode (section 7 reports
//! how fast), then replayed by section 5. The baseline writes the same bytes
//! to preallocated files with plain positional writes, synced as often as
//! the store's flusher syncs.

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use logkv_fs::{File, FileSystem, StdFs};
use logkv_store::{Durability, Store};

use crate::ctx::{fresh, options, Ctx, LargeWrite};
use crate::data::{key, mix, LARGE_VALUE_BYTES};
use crate::report::{dur, mb_per_sec, progress, thousands, times, Row, Table};

/// Key indices of this data set start here, far from the other keys.
const KEY_BASE: u64 = 1 << 56;
/// Segment capacity, as the store's default.
const SEGMENT_BYTES: u64 = 64 << 20;
/// The default `periodic` flush threshold: the baseline syncs this often.
const FLUSH_BYTES: usize = 4 << 20;

fn large_value() -> Vec<u8> {
    (0..LARGE_VALUE_BYTES / 8).flat_map(|i| mix(i as u64).to_le_bytes()).collect()
}

/// Writes `count` values of 1 MiB into files created like segments,
/// syncing every [`FLUSH_BYTES`]; returns the time taken.
fn raw_write(dir: &Path, count: usize, value: &[u8]) -> std::io::Result<Duration> {
    let fs = StdFs;
    fs.create_dir_all(dir)?;
    let began = Instant::now();
    let mut file: Option<std::sync::Arc<dyn File>> = None;
    let (mut offset, mut unsynced, mut files) = (SEGMENT_BYTES, 0usize, 0u32);
    for _ in 0..count {
        if offset + value.len() as u64 > SEGMENT_BYTES {
            if let Some(f) = &file {
                f.sync_data()?;
            }
            files += 1;
            let f = fs.create(&dir.join(format!("{files:08}.raw")))?;
            f.allocate(SEGMENT_BYTES)?;
            f.sync_data()?;
            fs.sync_dir(dir)?;
            file = Some(f);
            offset = 32;
            unsynced = 0;
        }
        let f = file.as_ref().expect("a file was just created");
        f.write_at(value, offset)?;
        offset += value.len() as u64;
        unsynced += value.len();
        if unsynced >= FLUSH_BYTES {
            f.sync_data()?;
            unsynced = 0;
        }
    }
    if let Some(f) = &file {
        f.sync_data()?;
    }
    Ok(began.elapsed())
}

/// Writes the 1 MiB data set (once per run) and the baseline.
pub fn ensure(ctx: &mut Ctx) -> Result<LargeWrite, Box<dyn Error>> {
    if let Some(done) = &ctx.large {
        return Ok(done.clone());
    }
    let count = ctx.sizes.large_values;
    progress(format!("  writing the 1 MiB data set ({count} values, periodic)"));
    let dir = ctx.root.join("large");
    fresh(&dir)?;
    let mut value = large_value();
    let store = Store::open(&dir, options(Durability::periodic_default()))?;
    let began = Instant::now();
    for i in 0..count as u64 {
        value[..8].copy_from_slice(&i.to_le_bytes());
        store.put(&key(KEY_BASE + i), &value)?;
    }
    let acknowledged = began.elapsed();
    store.sync()?;
    let durable = began.elapsed();
    let syncs = store.log().stats().snapshot().syncs;
    store.close()?;

    progress("  writing the same bytes to plain files (baseline)");
    let raw_dir = ctx.root.join("raw-write");
    fresh(&raw_dir)?;
    let raw = raw_write(&raw_dir, count, &value)?;
    fresh(&raw_dir)?;
    let done = LargeWrite {
        dir,
        value_bytes: (count * LARGE_VALUE_BYTES) as u64,
        acknowledged,
        durable,
        raw,
        syncs,
    };
    ctx.large = Some(done.clone());
    Ok(done)
}

/// Section 7: write throughput of 1 MiB values.
pub fn run(ctx: &mut Ctx) -> Result<Table, Box<dyn Error>> {
    let w = ensure(ctx)?;
    let bytes = w.value_bytes as f64;
    let (ack, raw) = (mb_per_sec(bytes, w.acknowledged), mb_per_sec(bytes, w.raw));
    let mut t = Table::default();
    t.row(
        Row::new("MB/s of values (acknowledged)", format!("{ack:.0} MB/s"))
            .baseline(format!("{raw:.0} MB/s"))
            .ratio(times(ack / raw))
            .note("(reference)"),
    );
    let durable = mb_per_sec(bytes, w.durable);
    t.row(Row::new("MB/s incl. final sync", format!("{durable:.0} MB/s")).ratio(times(durable / raw)));
    t.row(Row::new("time", dur(w.durable)).baseline(dur(w.raw)));
    t.row(
        Row::new("fdatasyncs", thousands(w.syncs as f64))
            .baseline(thousands((bytes / FLUSH_BYTES as f64).ceil())),
    );
    t.note(format!(
        "{} puts of 1 MiB values (16 B keys), one thread, durability periodic (1000 ms, 4 MiB); MB = 10^6 B",
        thousands(w.value_bytes as f64 / LARGE_VALUE_BYTES as f64)
    ));
    t.note("baseline: the same bytes written with write_at into 64 MiB preallocated files, fdatasync every 4 MiB");
    Ok(t)
}
