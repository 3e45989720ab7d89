//! Section 1, the fsync bound: how long one `fdatasync` of a small append
//! takes on a file laid out like a logkv segment, and so how many
//! acknowledged writes per second group commit can reach at best.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use logkv_fs::{FileSystem, StdFs};

use crate::ctx::Ctx;
use crate::data::SMALL_PUT_FRAME_BYTES;
use crate::report::{dur, rate, thousands, times, Row, Table};

/// Capacity of a logkv segment (the default `segment_size_bytes`).
const SEGMENT_BYTES: u64 = 64 << 20;
/// Bytes zero-filled (at least) for the pre-zeroed comparison file.
const PREZEROED_BYTES: usize = 4 << 20;
/// File system block size: a sync after an append that enters a new block
/// also makes that block's extent conversion durable.
const BLOCK_BYTES: u64 = 4096;
/// Untimed syncs before the timed ones.
const WARMUP_SYNCS: usize = 10;

/// Latencies of one file's appends.
struct Latencies {
    sync: Histogram<u64>,
    write_and_sync: Histogram<u64>,
    /// Syncs after an append that entered a block never written before.
    new_block: Histogram<u64>,
    /// Syncs after an append that stayed inside an already written block.
    written_block: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("constant bounds are valid")
}

fn q(h: &Histogram<u64>, quantile: f64) -> Duration {
    Duration::from_nanos(h.value_at_quantile(quantile))
}

/// Appends `syncs` put-sized records to a new file at `path`, each followed
/// by `fdatasync`. The file is created the way a segment is (`create`,
/// `allocate`, header, sync, directory sync) or, if `prezero`, filled with
/// written zeros first so appends overwrite blocks that already exist.
fn measure(dir: &Path, name: &str, syncs: usize, prezero: bool) -> io::Result<Latencies> {
    let fs = StdFs;
    let path = dir.join(name);
    let file = fs.create(&path)?;
    if prezero {
        let zeros = vec![0u8; 1 << 20];
        let needed = (WARMUP_SYNCS + syncs) * SMALL_PUT_FRAME_BYTES + 64;
        for i in 0..PREZEROED_BYTES.max(needed).div_ceil(zeros.len()) {
            file.write_at(&zeros, (i * zeros.len()) as u64)?;
        }
    } else {
        file.allocate(SEGMENT_BYTES)?;
    }
    let mut header = [0u8; 32];
    header[..8].copy_from_slice(b"BENCHSEG");
    file.write_at(&header, 0)?;
    file.sync_data()?;
    fs.sync_dir(dir)?;
    let record = vec![0xA5u8; SMALL_PUT_FRAME_BYTES];
    let mut offset = header.len() as u64;
    let mut lat = Latencies {
        sync: histogram(),
        write_and_sync: histogram(),
        new_block: histogram(),
        written_block: histogram(),
    };
    for i in 0..WARMUP_SYNCS + syncs {
        let started = Instant::now();
        file.write_at(&record, offset)?;
        let synced = Instant::now();
        file.sync_data()?;
        let done = Instant::now();
        let enters_block = (offset + record.len() as u64 - 1) / BLOCK_BYTES != (offset - 1) / BLOCK_BYTES;
        offset += record.len() as u64;
        if i >= WARMUP_SYNCS {
            let ns = (done - synced).as_nanos() as u64;
            lat.sync.saturating_record(ns);
            let by_block = if enters_block { &mut lat.new_block } else { &mut lat.written_block };
            by_block.saturating_record(ns);
            lat.write_and_sync.saturating_record((done - started).as_nanos() as u64);
        }
    }
    drop(file);
    fs.remove_file(&path)?;
    Ok(lat)
}

/// The median `fdatasync` of `syncs` small appends to a new segment-like file.
pub fn probe(dir: &Path, syncs: usize) -> io::Result<Duration> {
    Ok(q(&measure(dir, "fsync-probe.log", syncs, false)?.sync, 0.5))
}

/// Runs the section.
pub fn run(ctx: &mut Ctx) -> io::Result<Table> {
    let syncs = ctx.sizes.syncs;
    let seg = measure(&ctx.root, "fsync-segment.log", syncs, false)?;
    let zeroed = measure(&ctx.root, "fsync-prezeroed.log", syncs, true)?;
    let median = q(&seg.sync, 0.5);

    let mut t = Table::default();
    let vs = |a: Duration, b: Duration| times(a.as_secs_f64() / b.as_secs_f64());
    for (label, quantile) in [("median", 0.5), ("p99", 0.99)] {
        let (a, b) = (q(&seg.sync, quantile), q(&zeroed.sync, quantile));
        t.row(Row::new(format!("fdatasync {label}"), dur(a)).baseline(dur(b)).ratio(vs(a, b)));
    }
    t.row(Row::new("fdatasync max", dur(q(&seg.sync, 1.0))).baseline(dur(q(&zeroed.sync, 1.0))));
    let mean = |h: &Histogram<u64>| Duration::from_nanos(h.mean() as u64);
    let (a, b) = (mean(&seg.sync), mean(&zeroed.sync));
    t.row(Row::new("fdatasync mean", dur(a)).baseline(dur(b)).ratio(vs(a, b)));
    let (a, b) = (q(&seg.new_block, 0.5), q(&zeroed.new_block, 0.5));
    t.row(
        Row::new(format!("  median, append entering a new block ({})", seg.new_block.len()), dur(a))
            .baseline(dur(b))
            .ratio(vs(a, b)),
    );
    let (a, b) = (q(&seg.written_block, 0.5), q(&zeroed.written_block, 0.5));
    t.row(
        Row::new(format!("  median, append inside a written block ({})", seg.written_block.len()), dur(a))
            .baseline(dur(b))
            .ratio(vs(a, b)),
    );
    let (a, b) = (q(&seg.write_and_sync, 0.5), q(&zeroed.write_and_sync, 0.5));
    t.row(Row::new("write + fdatasync median", dur(a)).baseline(dur(b)).ratio(vs(a, b)));
    for n in [1u32, 4, 32] {
        let bound = f64::from(n) / median.as_secs_f64();
        let zeroed_bound = f64::from(n) / q(&zeroed.sync, 0.5).as_secs_f64();
        t.row(
            Row::new(format!("bound, {n} writer(s) = {n} / median"), rate(bound))
                .baseline(rate(zeroed_bound)),
        );
    }
    t.note(format!(
        "{} timed appends of {} B (one put frame: 18 frame + 4 batch + 27 op + 16 key + 100 value), \
         each followed by fdatasync, after {WARMUP_SYNCS} untimed ones",
        thousands(syncs as f64),
        SMALL_PUT_FRAME_BYTES
    ));
    t.note(format!(
        "logkv: a file made like a segment (create, allocate {} MiB, header, sync); \
         baseline: a file written with zeros first, so appends overwrite existing blocks",
        SEGMENT_BYTES >> 20,
    ));
    t.note(
        "an append entering a new block converts an unwritten (fallocated) extent: a metadata change \
         that fdatasync must also make durable (a journal commit, or without a journal a synchronous \
         write of the extent block)",
    );
    Ok(t)
}
