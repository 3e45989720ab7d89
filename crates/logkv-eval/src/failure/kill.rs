//! `kill -9` trials: a child process writes and reports every write it got
//! an acknowledgement for; the parent kills it at a random moment, reopens
//! the engine itself and counts the acknowledged writes that are gone.
//!
//! The operating system survives a `kill -9`, so whatever the engine had
//! handed to the kernel (the page cache) survives too: an engine loses
//! acknowledged writes here only if it acknowledges writes it still holds
//! in its own memory (a write buffer, a map snapshotted now and then).

use std::ops::Range;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{kill_9, lines, open_engine, spawn, Acks, Outcome, Tally, WriterArgs};
use crate::engine::EngineKind;
use crate::progress::Progress;
use crate::record::LossRow;
use crate::workload;

/// How long the parent waits for the child's first acknowledgement (the
/// engine's open included) before giving up.
const FIRST_ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// How the `kill -9` trials run.
#[derive(Debug, Clone)]
pub struct KillOptions {
    /// Trials (children killed).
    pub trials: u32,
    /// Where each trial's data directory is made (and removed after).
    pub work_dir: PathBuf,
    /// Seed of the kill moments and of the writers' key choice.
    pub seed: u64,
    /// Keys overwritten at random.
    pub keys: u64,
    /// Bytes per value.
    pub value_bytes: usize,
    /// Writer threads in the child; each owns `keys / threads` of the keys.
    pub threads: u32,
    /// The kill lands this many milliseconds after the first
    /// acknowledgement, uniformly at random.
    pub kill_after_ms: Range<u64>,
    /// The naive engine's snapshot interval, when not its default.
    pub naive_snapshot: Option<Duration>,
}

impl KillOptions {
    /// `trials` trials in `work_dir` with the defaults: 10,000 keys of
    /// 100 bytes, 4 writer threads, killed 200-1500 ms after the first
    /// acknowledgement.
    pub fn new(trials: u32, work_dir: PathBuf) -> Self {
        Self {
            trials,
            work_dir,
            seed: 1,
            keys: 10_000,
            value_bytes: 100,
            threads: 4,
            kill_after_ms: 200..1500,
            naive_snapshot: None,
        }
    }
}

/// Kills a writer child of `kind` `opts.trials` times and sums what the
/// reopened engine lost. `progress` counts trials.
pub fn kill_trials(kind: EngineKind, opts: &KillOptions, progress: &Progress) -> Result<LossRow, String> {
    if !kind.available() {
        return Err(format!("{kind} was not built: rebuild logkv-eval with `--features peers`"));
    }
    if opts.kill_after_ms.is_empty() {
        return Err("kill_after_ms is an empty range".into());
    }
    let mut tally = Tally::new(kind, "kill-9");
    for trial in 0..opts.trials {
        let outcome =
            trial_once(kind, opts, trial).map_err(|e| format!("{kind} kill -9 trial {trial}: {e}"))?;
        tally.add(outcome);
        progress.inc(1);
    }
    Ok(tally.0)
}

fn trial_once(kind: EngineKind, opts: &KillOptions, trial: u32) -> Result<Outcome, String> {
    let mut rng = SmallRng::seed_from_u64(workload::mix(opts.seed ^ workload::mix(u64::from(trial))));
    let dir = opts.work_dir.join(format!("kill-{kind}-{}-{trial}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let args = WriterArgs {
        engine: kind,
        dir: dir.clone(),
        keys: opts.keys,
        value_bytes: opts.value_bytes,
        seed: rng.random(),
        threads: opts.threads,
        naive_snapshot_ms: opts.naive_snapshot.map(|d| d.as_millis() as u64),
        max_secs: 60 + FIRST_ACK_TIMEOUT.as_secs() + opts.kill_after_ms.end / 1000,
    };
    let mut child = spawn(&args)?;
    let out = child.stdout.take().ok_or("the child's stdout was not piped")?;
    let (first_tx, first_rx) = mpsc::sync_channel(1);
    let keys = opts.keys;
    let reader = std::thread::spawn(move || -> Result<Acks, String> {
        let mut acks = Acks::new(keys);
        lines(out, |line| {
            let Some(rest) = line.strip_prefix("ack ") else { return Ok(true) };
            let mut it = rest.split(' ').map(str::parse::<u64>);
            let (Some(Ok(i)), Some(Ok(w)), None) = (it.next(), it.next(), it.next()) else {
                return Err(format!("bad acknowledgement line {line:?}"));
            };
            acks.record(i, w)?;
            if acks.total == 1 {
                let _ = first_tx.try_send(());
            }
            Ok(true)
        })?;
        Ok(acks)
    });
    if first_rx.recv_timeout(FIRST_ACK_TIMEOUT).is_err() {
        let killed = kill_9(&mut child);
        let read = reader.join().map_err(|_| "the acknowledgement reader panicked")?;
        read?;
        killed?;
        return Err(format!("the writer acknowledged no write within {FIRST_ACK_TIMEOUT:?}"));
    }
    std::thread::sleep(Duration::from_millis(rng.random_range(opts.kill_after_ms.clone())));
    let killed = kill_9(&mut child);
    // The pipe keeps every line the child wrote before it died.
    let acks = reader.join().map_err(|_| "the acknowledgement reader panicked")??;
    killed?;
    let engine = open_engine(kind, &dir, opts.naive_snapshot)
        .map_err(|e| format!("reopening {} after kill -9: {e}", dir.display()))?;
    let outcome = acks.check(&*engine, opts.value_bytes)?;
    drop(engine);
    std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(outcome)
}
