//! Failures: how many acknowledged writes an engine loses when its process
//! is killed with `kill -9` ([`kill_trials`]) or when the power fails
//! ([`power_trials`], on the fault-injecting file system). Recovery time
//! after `kill -9` is measured on each cell's own data ([`crate::cell`]).
//!
//! Every write names its key and a write number (see
//! [`crate::workload::value`]), and the writer reports each write it got an
//! acknowledgement for. After the failure the engine is reopened and every
//! key is read back:
//!
//! - the value must be a whole value of that key and of the expected size,
//!   otherwise the key counts as *wrong*;
//! - every acknowledged write of the key with a write number above the one
//!   found (all of them when the key is missing) counts as *lost*. A value
//!   from a later write that was never acknowledged is fine: the engine may
//!   have completed it just before the failure.
//!
//! Each key is written by one writer thread only, so the acknowledged writes
//! of a key are ordered and "newer" is well defined.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::engine::{self, Engine, EngineKind, Naive};
use crate::record::LossRow;
use crate::workload;

pub mod kill;
pub mod power;
mod writer;

pub use kill::{kill_trials, KillOptions};
pub use power::power_trials;
pub use writer::{writer_main, WriterArgs};

/// Starts a `writer` child with `args`, its stdout piped to this process.
fn spawn(args: &WriterArgs) -> Result<Child, String> {
    crate::child::command("writer")
        .map_err(|e| format!("finding the harness binary: {e}"))?
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting the writer child: {e}"))
}

/// Sends `SIGKILL` to `child` (what `Child::kill` does on Unix) and reaps
/// it; an error if it had ended by itself first.
fn kill_9(child: &mut Child) -> Result<(), String> {
    use std::os::unix::process::ExitStatusExt;
    if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
        return Err(format!("the child ended before it was killed: {status}"));
    }
    child.kill().map_err(|e| format!("kill -9: {e}"))?;
    let status = child.wait().map_err(|e| e.to_string())?;
    match status.signal() {
        Some(libc::SIGKILL) => Ok(()),
        _ => Err(format!("the child ended before it was killed: {status}")),
    }
}

/// Reads `out` line by line until end of file, handing each complete line
/// (without its newline) to `each`, which returns whether to go on.
fn lines(out: impl Read, mut each: impl FnMut(&str) -> Result<bool, String>) -> Result<(), String> {
    let mut out = BufReader::new(out);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = out.read_until(b'\n', &mut line).map_err(|e| format!("reading the child's output: {e}"))?;
        // A line without its newline was cut short: the child was killed.
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(());
        }
        let text = std::str::from_utf8(&line[..n - 1]).unwrap_or("");
        if !each(text)? {
            return Ok(());
        }
    }
}

/// Opens `kind` in `dir`, with the naive engine's snapshot interval
/// replaced when `naive_snapshot` is given.
fn open_engine(
    kind: EngineKind,
    dir: &Path,
    naive_snapshot: Option<Duration>,
) -> engine::Result<Box<dyn Engine>> {
    match (kind, naive_snapshot) {
        (EngineKind::Naive, Some(interval)) => Ok(Box::new(Naive::open_std(dir, interval)?)),
        _ => kind.open(dir),
    }
}

/// The writes acknowledged before a failure, by key.
#[derive(Debug, Default)]
struct Acks {
    /// Write numbers per key index, in the order they were acknowledged.
    per_key: Vec<Vec<u64>>,
    total: u64,
}

/// What reopening after one failure found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    acked: u64,
    lost: u64,
    wrong: u64,
}

impl Acks {
    fn new(keys: u64) -> Self {
        Self { per_key: vec![Vec::new(); keys as usize], total: 0 }
    }

    /// Records that write `write` of key `i` was acknowledged; writes of one
    /// key must be recorded in the order they were made.
    fn record(&mut self, i: u64, write: u64) -> Result<(), String> {
        let acks =
            self.per_key.get_mut(i as usize).ok_or_else(|| format!("acknowledged key {i} out of range"))?;
        if acks.last().is_some_and(|&last| last >= write) {
            return Err(format!("key {i}: write {write} acknowledged after write {}", acks[acks.len() - 1]));
        }
        acks.push(write);
        self.total += 1;
        Ok(())
    }

    /// Reads every key back from the reopened `engine` (see the module docs).
    fn check(&self, engine: &dyn Engine, value_bytes: usize) -> Result<Outcome, String> {
        let mut out = Outcome { acked: self.total, ..Outcome::default() };
        for (i, acks) in self.per_key.iter().enumerate() {
            let i = i as u64;
            let found =
                engine.get(&workload::key(i)).map_err(|e| format!("reading key {i} after reopening: {e}"))?;
            let newest = match found {
                None => 0,
                Some(v) => match workload::value_tag(&v) {
                    Some((key, write)) if key == i && v.len() == value_bytes => write,
                    _ => {
                        out.wrong += 1;
                        continue;
                    }
                },
            };
            out.lost += (acks.len() - acks.partition_point(|&w| w <= newest)) as u64;
        }
        Ok(out)
    }
}

/// Sums trials into a [`LossRow`].
#[derive(Debug)]
struct Tally(LossRow);

impl Tally {
    fn new(engine: EngineKind, failure: &str) -> Self {
        Tally(LossRow {
            engine,
            failure: failure.to_string(),
            trials: 0,
            acked: 0,
            lost: 0,
            wrong: 0,
            max_lost: 0,
            trials_with_loss: 0,
        })
    }

    fn add(&mut self, o: Outcome) {
        let row = &mut self.0;
        row.trials += 1;
        row.acked += o.acked;
        row.lost += o.lost;
        row.wrong += o.wrong;
        row.max_lost = row.max_lost.max(o.lost);
        if o.lost > 0 || o.wrong > 0 {
            row.trials_with_loss += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use logkv_fs::SimFs;

    use super::*;

    fn naive() -> Naive {
        Naive::open(Arc::new(SimFs::new()), Path::new("/n"), Duration::from_secs(3600)).unwrap()
    }

    #[test]
    fn lost_counts_acknowledged_writes_newer_than_the_value_found() {
        let e = naive();
        let mut acks = Acks::new(5);
        for (i, w) in [(0, 1), (0, 5), (0, 9), (1, 2), (2, 3), (3, 4), (3, 7)] {
            acks.record(i, w).unwrap();
        }
        // key 0: write 5 survived, 9 lost; key 1: missing, 2 lost; key 2: a
        // later unacknowledged write, fine; key 3: the newest, fine; key 4:
        // never acknowledged, an unacknowledged write survived, fine.
        e.put(&workload::key(0), &workload::value(0, 5, 40)).unwrap();
        e.put(&workload::key(2), &workload::value(2, 8, 40)).unwrap();
        e.put(&workload::key(3), &workload::value(3, 7, 40)).unwrap();
        e.put(&workload::key(4), &workload::value(4, 6, 40)).unwrap();
        assert_eq!(acks.check(&e, 40).unwrap(), Outcome { acked: 7, lost: 2, wrong: 0 });
    }

    #[test]
    fn damaged_short_or_foreign_values_are_wrong() {
        let e = naive();
        let mut acks = Acks::new(4);
        for i in 0..4 {
            acks.record(i, i + 1).unwrap();
        }
        let mut damaged = workload::value(0, 1, 40);
        damaged[30] ^= 1;
        e.put(&workload::key(0), &damaged).unwrap();
        e.put(&workload::key(1), &workload::value(1, 2, 39)).unwrap();
        e.put(&workload::key(2), &workload::value(3, 3, 40)).unwrap();
        e.put(&workload::key(3), &workload::value(3, 4, 40)).unwrap();
        assert_eq!(acks.check(&e, 40).unwrap(), Outcome { acked: 4, lost: 0, wrong: 3 });
    }

    #[test]
    fn acknowledgements_out_of_order_or_range_are_refused() {
        let mut acks = Acks::new(2);
        acks.record(1, 5).unwrap();
        assert!(acks.record(1, 5).is_err());
        assert!(acks.record(1, 3).is_err());
        assert!(acks.record(2, 9).is_err());
    }
}
