//! Time to persist: how long after a write returns it is on stable storage.
//!
//! One writer puts at a steady pace; after each put it asks the engine for
//! the newest ticket on stable storage, and a watcher thread keeps asking
//! until every acknowledged write is covered. A write synced before it
//! returned counts 0. Engines that cannot say what is synced get a note
//! instead of a figure.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

use crate::engine::{Engine, EngineKind, Result};
use crate::record::{DataSet, PersistRow};
use crate::workload;

/// Time between two writes of the steady writer.
const PACE: Duration = Duration::from_millis(1);
/// How often the watcher asks the engine.
const POLL: Duration = Duration::from_micros(100);
/// How long the watcher waits for the last writes before giving up on them.
const GIVE_UP: Duration = Duration::from_secs(30);

/// Measures time to persist for `secs` of steady writes to keys of `data`.
pub fn measure(engine: &dyn Engine, kind: EngineKind, data: DataSet, secs: f64) -> Result<PersistRow> {
    if engine.persisted_through().is_none() {
        return Ok(PersistRow {
            engine: kind,
            samples: 0,
            p50_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            note: note(kind).into(),
        });
    }
    let pending: Mutex<VecDeque<(u64, Instant)>> = Mutex::new(VecDeque::new());
    let hist = Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid"),
    );
    let writing = AtomicBool::new(true);
    let mut unpersisted = 0;
    std::thread::scope(|s| -> Result<()> {
        let watcher = s.spawn(|| {
            let mut stop_at = None;
            loop {
                let through = engine.persisted_through().unwrap_or(0);
                let now = Instant::now();
                let mut q = pending.lock();
                while q.front().is_some_and(|&(t, _)| t <= through) {
                    let (_, at) = q.pop_front().expect("front exists");
                    hist.lock().saturating_record((now - at).as_micros() as u64);
                }
                if !writing.load(Ordering::Acquire) {
                    let deadline = *stop_at.get_or_insert(now + GIVE_UP);
                    if q.is_empty() || now >= deadline {
                        return q.len();
                    }
                }
                drop(q);
                std::thread::sleep(POLL);
            }
        });
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let mut write = 0u64;
        let result = (|| -> Result<()> {
            while Instant::now() < end {
                let i = write % data.keys.max(1);
                let ticket =
                    engine.put(&workload::key(i), &workload::value(i, write, data.value_bytes as usize))?;
                let returned = Instant::now();
                if engine.persisted_through().unwrap_or(0) >= ticket {
                    hist.lock().saturating_record(0);
                } else {
                    pending.lock().push_back((ticket, returned));
                }
                write += 1;
                std::thread::sleep(PACE);
            }
            Ok(())
        })();
        writing.store(false, Ordering::Release);
        unpersisted = watcher.join().map_err(|_| "the watcher panicked")?;
        result
    })?;
    let h = hist.into_inner();
    let ms = |us: u64| us as f64 / 1000.0;
    let mut note = String::from(note(kind));
    if unpersisted > 0 {
        note = format!(
            "{note}; {unpersisted} writes were still not persisted {}s after the last",
            GIVE_UP.as_secs()
        );
    }
    Ok(PersistRow {
        engine: kind,
        samples: h.len(),
        p50_ms: ms(h.value_at_quantile(0.5)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
        note,
    })
}

/// What bounds an engine's time to persist, in words.
fn note(kind: EngineKind) -> &'static str {
    match kind {
        EngineKind::LogkvAlways
        | EngineKind::RocksdbSync
        | EngineKind::FjallSync
        | EngineKind::RedbImmediate => "synced before the write returns",
        EngineKind::LogkvPeriodic => "synced by the flusher within its 1 s window (sooner at 4 MiB)",
        EngineKind::Naive => "persisted by the next full snapshot to finish",
        EngineKind::LogkvNone | EngineKind::RocksdbWal => {
            "never synced by the engine: the kernel writes dirty pages back after vm.dirty_expire_centisecs \
             (30 s by default); not observable, so not measured"
        }
        EngineKind::FjallBuffered => "synced by the adapter's thread 1 s after the previous sync ended",
        EngineKind::Sled => "synced by sled's background flush (every 500 ms); the API does not report it",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_writes_take_no_time_and_windows_show() {
        let data = DataSet { keys: 100, value_bytes: 100 };
        let dir = tempfile::tempdir().unwrap();
        let e = EngineKind::LogkvAlways.open(dir.path()).unwrap();
        let row = measure(e.as_ref(), EngineKind::LogkvAlways, data, 0.05).unwrap();
        assert!(row.samples > 0 && row.max_ms == 0.0, "{row:?}");
        let dir = tempfile::tempdir().unwrap();
        let e = EngineKind::LogkvPeriodic.open(dir.path()).unwrap();
        let row = measure(e.as_ref(), EngineKind::LogkvPeriodic, data, 0.05).unwrap();
        // Nothing is synced before the flusher's window ends.
        assert!(row.samples > 0 && row.p50_ms > 1.0, "{row:?}");
        let dir = tempfile::tempdir().unwrap();
        let e = EngineKind::LogkvNone.open(dir.path()).unwrap();
        assert_eq!(measure(e.as_ref(), EngineKind::LogkvNone, data, 0.05).unwrap().samples, 0);
    }
}
