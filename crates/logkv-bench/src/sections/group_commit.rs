//! A textbook group commit over a raw file, the baseline of the `always`
//! section: writers append a record to a shared buffer under a mutex; the
//! first writer that finds no flush under way writes the whole buffer and
//! `fdatasync`s it for everyone, the others wait on a condition variable.
//! No index, no framing, no gathering heuristic: what this machine gives
//! a plain implementation with one thread per writer.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use logkv_fs::{File, FileSystem, StdFs};

use crate::data::SMALL_PUT_FRAME_BYTES;

/// Capacity of the file (fallocated like a segment, but large enough for any run).
const FILE_BYTES: u64 = 1 << 30;

struct State {
    buf: Vec<u8>,
    appended: u64,
    durable: u64,
    flushing: bool,
    offset: u64,
    failed: bool,
}

struct Shared {
    state: Mutex<State>,
    acked: Condvar,
    file: Arc<dyn File>,
    syncs: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn put(&self, record: &[u8]) -> io::Result<()> {
        let mut st = self.state.lock().expect("no writer panics while holding the lock");
        st.buf.extend_from_slice(record);
        st.appended += 1;
        let mine = st.appended;
        loop {
            if st.failed {
                return Err(io::Error::other("an earlier flush failed"));
            }
            if st.durable >= mine {
                return Ok(());
            }
            if st.flushing {
                st = self.acked.wait(st).expect("no writer panics while holding the lock");
                continue;
            }
            st.flushing = true;
            let buf = std::mem::take(&mut st.buf);
            let (upto, offset) = (st.appended, st.offset);
            st.offset += buf.len() as u64;
            drop(st);
            let done = self.file.write_at(&buf, offset).and_then(|()| self.file.sync_data());
            self.syncs.fetch_add(1, Ordering::Relaxed);
            st = self.state.lock().expect("no writer panics while holding the lock");
            st.flushing = false;
            match done {
                Ok(()) => st.durable = upto,
                Err(_) => st.failed = true,
            }
            if st.buf.is_empty() {
                // Give the buffer's capacity back for the next group.
                let mut buf = buf;
                buf.clear();
                st.buf = buf;
            }
            self.acked.notify_all();
        }
    }
}

/// What a run of the baseline did.
pub struct Outcome {
    /// Records acknowledged.
    pub puts: u64,
    /// `fdatasync` calls.
    pub syncs: u64,
    /// Wall time of the run.
    pub took: Duration,
}

/// `n` threads append put-sized records with group commit for `run`.
pub fn run(dir: &Path, n: usize, run: Duration) -> io::Result<Outcome> {
    let fs = StdFs;
    let path = dir.join("group-commit.raw");
    let _ = fs.remove_file(&path);
    let file = fs.create(&path)?;
    file.allocate(FILE_BYTES)?;
    file.sync_data()?;
    fs.sync_dir(dir)?;
    let shared = Shared {
        state: Mutex::new(State {
            buf: Vec::new(),
            appended: 0,
            durable: 0,
            flushing: false,
            offset: 0,
            failed: false,
        }),
        acked: Condvar::new(),
        file,
        syncs: Default::default(),
    };
    let stop = AtomicBool::new(false);
    let start = Barrier::new(n + 1);
    let record = [0xA5u8; SMALL_PUT_FRAME_BYTES];
    let (counts, took) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (shared, stop, start, record) = (&shared, &stop, &start, &record);
                s.spawn(move || -> io::Result<u64> {
                    let mut puts = 0;
                    start.wait();
                    // Stop before the file fills up, whatever the speed.
                    let max_puts = FILE_BYTES / SMALL_PUT_FRAME_BYTES as u64 / n as u64 - 1;
                    while !stop.load(Ordering::Relaxed) && puts < max_puts {
                        shared.put(record)?;
                        puts += 1;
                    }
                    Ok(puts)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        std::thread::sleep(run);
        stop.store(true, Ordering::Relaxed);
        let counts: Vec<io::Result<u64>> =
            handles.into_iter().map(|h| h.join().expect("writer thread panicked")).collect();
        (counts, began.elapsed())
    });
    let mut puts = 0;
    for c in counts {
        puts += c?;
    }
    let syncs = shared.syncs.load(Ordering::Relaxed);
    drop(shared);
    fs.remove_file(&path)?;
    Ok(Outcome { puts, syncs, took })
}
