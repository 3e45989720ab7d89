//! Part 1: restart time. A store of N keys is overwritten pass after pass
//! (every key once per pass, in the data set's order), so the log grows by
//! N records while the index stays N keys. After each pass, `Store::open`
//! is timed with a checkpoint taken just before close (nothing to replay
//! after it) and with no checkpoint at all (the full replay it saves).

use std::path::Path;
use std::time::{Duration, Instant};

use logkv_store::{Durability, Store};

use super::{tenths, Failure};
use crate::ctx::{fresh, options, Ctx};
use crate::data::{key, value, SMALL_PUT_FRAME_BYTES};
use crate::report::{dur, progress, thousands, times, Row, Runs, Table, Target};

/// Longest open from a checkpoint the target allows.
const TARGET_OPEN: Duration = Duration::from_secs(1);

/// What an open must have done for its time to mean what it says.
#[derive(Clone, Copy)]
enum Expect {
    /// Loaded the checkpoint and replayed nothing.
    Checkpoint,
    /// Replayed this many records from the start of the log.
    FullReplay(u64),
}

fn open(dir: &Path) -> Result<Store, Failure> {
    Ok(Store::open(dir, options(Durability::periodic_default()))?)
}

/// Opens `dir` once untimed (so its files are in the page cache), then
/// `runs` timed opens, each closed but the last, which is returned.
fn time_opens(dir: &Path, runs: usize, expect: Expect) -> Result<(Runs, Store), Failure> {
    open(dir)?.close()?;
    let mut times = Runs::default();
    let mut last = None;
    for _ in 0..runs {
        if let Some(s) = last.take() {
            Store::close(s)?;
        }
        let began = Instant::now();
        let store = open(dir)?;
        times.push(began.elapsed());
        let r = store.open_report();
        let as_expected = match expect {
            Expect::Checkpoint => r.checkpoint.is_some() && r.replayed_records == 0,
            Expect::FullReplay(n) => {
                r.checkpoint.is_none() && r.compacted_through == 0 && r.replayed_records == n
            }
        };
        if !as_expected {
            return Err(format!("open of {} did not do what was timed: {r:?}", dir.display()).into());
        }
        last = Some(store);
    }
    Ok((times, last.expect("at least one run")))
}

/// Removes every checkpoint, so the next open replays the whole log; a
/// compacted file would shorten that replay, and none may exist.
fn remove_checkpoints(dir: &Path) -> Result<(), Failure> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("ckpt") => std::fs::remove_file(&path)?,
            Some("head") => return Err(format!("{} exists: the log was compacted", path.display()).into()),
            _ => {}
        }
    }
    Ok(())
}

/// Runs part 1 into `t`.
pub(super) fn run(ctx: &Ctx, t: &mut Table) -> Result<(), Failure> {
    let n = ctx.sizes.restart_keys as u64;
    let runs = ctx.sizes.runs;
    let passes = ctx.sizes.restart_passes as u64;
    let dir = ctx.root.join("maintenance-restart");
    fresh(&dir)?;
    let mut store = open(&dir)?;
    let mut from_checkpoint = Vec::new();
    for pass in 1..=passes {
        let records = pass * n;
        progress(format!("  restart: writing pass {pass} of {passes} ({} puts)", thousands(n as f64)));
        for i in 0..n {
            store.put(&key(i), &value(records - n + i))?;
            tenths("puts", (i + 1) as usize, n as usize);
        }
        store.close()?;
        remove_checkpoints(&dir)?;
        progress(format!("  restart: {} records, full replays", thousands(records as f64)));
        let (full, reopened) = time_opens(&dir, runs, Expect::FullReplay(records))?;
        let checkpoint = reopened.checkpoint()?;
        reopened.close()?;
        progress("  restart: opens from the checkpoint");
        let (quick, reopened) = time_opens(&dir, runs, Expect::Checkpoint)?;
        store = reopened;

        let log_gb = (records * SMALL_PUT_FRAME_BYTES as u64) as f64 / 1e9;
        t.row(
            Row::new(format!("open from a checkpoint, log {pass}x ({log_gb:.2} GB)"), dur(quick.median()))
                .baseline(dur(full.median()))
                .ratio(times(quick.median().as_secs_f64() / full.median().as_secs_f64()))
                .target("<= 1 s", Target::AtMost(TARGET_OPEN.as_secs_f64()), quick.median().as_secs_f64()),
        );
        t.row(Row::new(
            "  checkpoint: size / write time",
            format!("{:.0} MB / {}", checkpoint.bytes as f64 / 1e6, dur(checkpoint.elapsed)),
        ));
        from_checkpoint.push(quick.median());
    }
    store.close()?;
    fresh(&dir)?;
    if let [first, .., last] = from_checkpoint[..] {
        t.row(
            Row::new(
                format!("  open from a checkpoint, log {passes}x vs 1x"),
                times(last.as_secs_f64() / first.as_secs_f64()),
            )
            .note("flat: 1.00x"),
        );
    }
    t.note(format!(
        "restart: {} keys (16 B keys, 100 B values, periodic), overwritten in full {} times; after each pass \
         the store is closed and opened once untimed (page cache), then timed: median of {runs} opens; \
         baseline: the same log with every checkpoint removed (full replay, no compacted file)",
        thousands(n as f64),
        passes - 1
    ));
    Ok(())
}
