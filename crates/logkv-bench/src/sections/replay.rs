//! Section 5, replay: how fast `Store::open` rebuilds the index from the
//! log (full recovery), for the small-value and the 1 MiB data sets. The
//! baseline is the log layer alone scanning the same files (framing and
//! CRC checks, no parsing, no index), so the difference is the store's work.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logkv_fs::StdFs;
use logkv_log::{Durability, FileLog, LogConfig, LogError, RecoveryReport, ReplayStart};
use logkv_store::Store;

use crate::ctx::{options, Ctx};
use crate::data::{put_frame_bytes, LARGE_VALUE_BYTES, SMALL_PUT_FRAME_BYTES};
use crate::report::{dur, mb_per_sec, per_sec, progress, rate, thousands, times, Row, Runs, Table, Target};
use crate::sections::large;

/// Records per second replay should reach on the small-value data set.
const TARGET_RECORDS_PER_SEC: f64 = 1.5e6;
/// MB per second replay should reach on the 1 MiB data set.
const TARGET_LARGE_MB_PER_SEC: f64 = 1000.0;

type Res<T> = Result<T, Box<dyn Error>>;

/// Opens the store in `dir` and closes it; returns the time `open` took.
fn open_store(dir: &Path) -> Res<(Duration, RecoveryReport)> {
    let began = Instant::now();
    let store = Store::open(dir, options(Durability::None))?;
    let took = began.elapsed();
    let report = store.recovery_report().clone();
    store.close()?;
    Ok((took, report))
}

/// Opens the log alone in `dir`, visiting every record without looking at it.
fn scan_log(dir: &Path) -> Res<Duration> {
    let config = LogConfig { durability: Durability::None, ..LogConfig::default() };
    let began = Instant::now();
    let (log, _) = FileLog::open(
        Arc::new(StdFs),
        dir,
        config,
        ReplayStart::default(),
        0,
        &mut |r| Ok::<u64, LogError>(r.position),
        &mut |_, _| {},
    )?;
    let took = began.elapsed();
    log.close()?;
    Ok(took)
}

struct Replay {
    first: Duration,
    opens: Runs,
    scans: Runs,
    report: RecoveryReport,
}

/// A first open (reads every byte into the page cache), then the median of
/// `runs` timed opens and of `runs` log-only scans.
fn replay(dir: &Path, runs: usize) -> Res<Replay> {
    let (first, report) = open_store(dir)?;
    let (mut opens, mut scans) = (Runs::default(), Runs::default());
    for _ in 0..runs {
        opens.push(open_store(dir)?.0);
        scans.push(scan_log(dir)?);
    }
    Ok(Replay { first, opens, scans, report })
}

/// Runs the section (needs `periodic` to have loaded the store).
pub fn run(ctx: &mut Ctx) -> Res<Table> {
    ctx.close_loaded()?;
    let runs = ctx.sizes.runs;
    let mut t = Table::default();

    progress("  replaying the small-value store");
    let r = replay(&ctx.keys_dir(), runs)?;
    let records = r.report.records as f64;
    let data = records * SMALL_PUT_FRAME_BYTES as f64;
    let (open, scan) = (r.opens.median(), r.scans.median());
    let (rps, scan_rps) = (per_sec(records, open), per_sec(records, scan));
    t.row(
        Row::new("records/s, 100 B values", rate(rps))
            .baseline(rate(scan_rps))
            .ratio(times(rps / scan_rps))
            .target(">= 1,500,000/s", Target::AtLeast(TARGET_RECORDS_PER_SEC), rps),
    );
    if runs > 1 {
        t.row(
            Row::new("  range over runs", r.opens.rate_range(records)).baseline(r.scans.rate_range(records)),
        );
    }
    let (mbs, scan_mbs) = (mb_per_sec(data, open), mb_per_sec(data, scan));
    t.row(Row::new("  MB/s of log", format!("{mbs:.0} MB/s")).baseline(format!("{scan_mbs:.0} MB/s")));
    t.row(Row::new("  open time (median)", dur(open)).baseline(dur(scan)));
    t.row(Row::new("  first open after writing", dur(r.first)));
    t.note(format!(
        "100 B values: {} records, {:.1} MB of frames, {:.1} MB of segment files scanned (incl. preallocated zeros)",
        thousands(records),
        data / 1e6,
        r.report.bytes_scanned as f64 / 1e6
    ));

    let w = large::ensure(ctx)?;
    progress("  replaying the 1 MiB store");
    let r = replay(&w.dir, runs)?;
    let records = r.report.records as f64;
    let data = records * put_frame_bytes(LARGE_VALUE_BYTES) as f64;
    let (open, scan) = (r.opens.median(), r.scans.median());
    let (mbs, scan_mbs) = (mb_per_sec(data, open), mb_per_sec(data, scan));
    t.row(
        Row::new("MB/s of log, 1 MiB values", format!("{mbs:.0} MB/s"))
            .baseline(format!("{scan_mbs:.0} MB/s"))
            .ratio(times(mbs / scan_mbs))
            .target(">= 1,000 MB/s", Target::AtLeast(TARGET_LARGE_MB_PER_SEC), mbs),
    );
    t.row(Row::new("  open time (median)", dur(open)).baseline(dur(scan)));
    t.row(Row::new("  first open after writing", dur(r.first)));
    t.note(format!(
        "1 MiB values: {} records, {:.1} MB of frames, {:.1} MB scanned",
        thousands(records),
        data / 1e6,
        r.report.bytes_scanned as f64 / 1e6
    ));
    t.note(format!(
        "page-cached: every figure is the median of {runs} opens that follow a first open which read every byte, \
         so this measures the engine, not the disk"
    ));
    t.note("baseline: the log layer alone (FileLog::open with a visitor that does nothing): framing + CRC, no index");
    t.note("MB = 10^6 B of log frames; each open is followed by a close, which is not timed");
    Ok(t)
}
