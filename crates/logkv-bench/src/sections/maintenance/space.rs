//! Part 2: space amplification. The overwrite-heavy workload (N keys, then
//! 4N overwrites of uniformly chosen keys) with `retain_versions = 1`:
//! log bytes per live byte before and after `Store::compact`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use logkv_fs::StdFs;
use logkv_log::format::SEGMENT_HEADER_LEN;
use logkv_store::{Durability, MaintenanceOptions, Store};

use super::{check_newest, overwrite_heavy, retain_one, Failure, OVERWRITES};
use crate::ctx::{fresh, Ctx};
use crate::data::{KEY_BYTES, VALUE_BYTES};
use crate::report::{dur, progress, thousands, times, Row, Table, Target};

/// Most log bytes per live byte after compaction the target allows.
const TARGET_AMPLIFICATION: f64 = 1.5;

/// The bytes a log directory takes.
#[derive(Debug, Clone, Copy)]
struct LogSpace {
    /// Segments up to the end of their last record, plus compacted files.
    used: u64,
    /// Blocks allocated to segments and compacted files (`st_blocks`),
    /// preallocated segment space included.
    allocated: u64,
    /// Bytes of checkpoint files (counted apart: they hold no values).
    checkpoints: u64,
}

impl LogSpace {
    fn measure(dir: &Path) -> Result<Self, Failure> {
        let mut space = Self { used: 0, allocated: 0, checkpoints: 0 };
        for segment in logkv_log::inspect::inspect(&StdFs, dir)? {
            space.used += SEGMENT_HEADER_LEN + segment.data_bytes;
        }
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            match entry.path().extension().and_then(|e| e.to_str()) {
                Some("log") => space.allocated += meta.blocks() * 512,
                Some("head") => {
                    space.used += meta.len();
                    space.allocated += meta.blocks() * 512;
                }
                Some("ckpt") => space.checkpoints += meta.len(),
                _ => {}
            }
        }
        Ok(space)
    }
}

/// Runs part 2 into `t`.
pub(super) fn run(ctx: &Ctx, t: &mut Table) -> Result<(), Failure> {
    let n = ctx.sizes.upkeep_keys;
    let dir = ctx.root.join("maintenance-space");
    fresh(&dir)?;
    let store = Store::open(&dir, retain_one(Durability::periodic_default()))?;
    progress(format!("  space: {} keys, then {OVERWRITES}x as many overwrites", thousands(n as f64)));
    let newest = overwrite_heavy(&store, n, "puts")?;
    let coalesces = store.coalesces();
    store.sync()?;
    let live = store.len() * (KEY_BYTES + VALUE_BYTES) as u64;
    let before = LogSpace::measure(&dir)?;
    progress("  space: compacting");
    let report = store.compact(&mut |_, _| {})?;
    let after = LogSpace::measure(&dir)?;
    progress("  space: checking every key");
    check_newest(&store, &newest)?;
    store.close()?;
    fresh(&dir)?;

    let amp = |bytes: u64| bytes as f64 / live as f64;
    t.row(
        Row::new("log bytes / live bytes after compaction", times(amp(after.used)))
            .baseline(times(amp(before.used)))
            .target("<= 1.5x", Target::AtMost(TARGET_AMPLIFICATION), amp(after.used)),
    );
    t.row(
        Row::new("  counting allocated blocks (st_blocks)", times(amp(after.allocated)))
            .baseline(times(amp(before.allocated))),
    );
    t.row(
        Row::new("  log MB used / allocated", format!("{} / {}", mb(after.used), mb(after.allocated)))
            .baseline(format!("{} / {}", mb(before.used), mb(before.allocated))),
    );
    t.row(Row::new("  checkpoint MB (not counted)", mb(after.checkpoints)).baseline(mb(before.checkpoints)));
    let rate = MaintenanceOptions::default().compact_bytes_per_sec;
    t.row(Row::new(
        "  compaction: time / MB in / MB out",
        format!("{} / {} / {}", dur(report.elapsed), mb(report.input_bytes), mb(report.output_bytes)),
    ));
    t.row(Row::new(
        "  versions kept / keys whose history was cut",
        format!("{} / {}", thousands(report.versions_kept as f64), thousands(report.histories_cut as f64)),
    ));
    t.note(format!(
        "space: {} keys written, then {} overwrites of uniformly random keys (fixed seed), periodic, \
         retain_versions = 1; live bytes = live keys x (16 + 100) = {} MB; baseline = before compaction; \
         used = segment header + frames up to the last record, plus compacted files; allocated adds \
         the preallocated rest of the current segment; compaction at the default rate limit of {} MiB/s; \
         afterwards every key was read back and held its newest value{}",
        thousands(n as f64),
        thousands((OVERWRITES * n) as f64),
        mb(live),
        rate >> 20,
        if coalesces { "; writes coalesced in memory (periodic, one version kept)" } else { "" }
    ));
    Ok(())
}

/// Decimal megabytes, e.g. "1,234".
fn mb(bytes: u64) -> String {
    thousands(bytes as f64 / 1e6)
}
