//! The failure harness finds what it should: nothing lost where the engine
//! promises it (logkv `always` under `kill -9` and power loss), losses where
//! it does not (a naive engine that never snapshots, logkv `none` and the
//! naive engine under power loss), and a cell killed with `kill -9` recovers
//! every key it acknowledged.

use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use logkv_eval::cell::{self, CellSpec};
use logkv_eval::engine::EngineKind;
use logkv_eval::failure::{self, KillOptions};
use logkv_eval::progress::Progress;
use logkv_eval::record::{DataSet, LossRow};

/// Children run the harness binary, not this test binary.
fn harness() {
    static SET: Once = Once::new();
    SET.call_once(|| logkv_eval::child::set_exe(env!("CARGO_BIN_EXE_logkv-eval")));
}

fn kill(kind: EngineKind, naive_snapshot: Option<Duration>, work: &Path) -> LossRow {
    harness();
    let mut opts = KillOptions::new(3, work.to_path_buf());
    opts.kill_after_ms = 100..400;
    opts.naive_snapshot = naive_snapshot;
    let row = failure::kill_trials(kind, &opts, &Progress::new("kill", 3)).unwrap();
    eprintln!("{row:?}");
    assert_eq!(row.trials, 3);
    assert!(row.acked > 0, "no write was acknowledged: {row:?}");
    row
}

fn power(kind: EngineKind) -> LossRow {
    let row = failure::power_trials(kind, 3, 7, &Progress::new("power", 3)).unwrap();
    eprintln!("{row:?}");
    assert_eq!((row.trials, &*row.failure), (3, "power-loss"));
    assert!(row.acked > 0, "no write was acknowledged: {row:?}");
    assert_eq!(row.wrong, 0, "{row:?}");
    row
}

#[test]
fn kill_9_loses_nothing_logkv_always_acknowledged() {
    let work = tempfile::tempdir().unwrap();
    let row = kill(EngineKind::LogkvAlways, None, work.path());
    assert_eq!(
        (row.failure.as_str(), row.lost, row.wrong, row.trials_with_loss),
        ("kill-9", 0, 0, 0),
        "{row:?}"
    );
}

#[test]
fn kill_9_of_a_naive_engine_that_never_snapshots_loses_every_acknowledged_write() {
    // Proves the harness sees losses: with no snapshot before the kill, the
    // reopened engine is empty and every acknowledged write must be counted.
    let work = tempfile::tempdir().unwrap();
    let row = kill(EngineKind::Naive, Some(Duration::from_secs(3600)), work.path());
    assert_eq!(
        (row.lost, row.max_lost > 0, row.trials_with_loss, row.wrong),
        (row.acked, true, 3, 0),
        "{row:?}"
    );
}

#[test]
fn power_loss_loses_nothing_logkv_always_acknowledged() {
    let row = power(EngineKind::LogkvAlways);
    assert_eq!((row.lost, row.trials_with_loss), (0, 0), "{row:?}");
}

#[test]
fn power_loss_loses_writes_logkv_none_never_synced() {
    let row = power(EngineKind::LogkvNone);
    assert!(row.lost > 0 && row.trials_with_loss > 0, "{row:?}");
}

#[test]
fn power_loss_loses_the_naive_engines_writes_since_its_last_snapshot() {
    let row = power(EngineKind::Naive);
    assert!(row.lost > 0 && row.trials_with_loss > 0, "{row:?}");
}

#[test]
fn power_loss_is_not_simulated_for_engines_off_logkvs_file_system() {
    let err = failure::power_trials(EngineKind::Sled, 1, 0, &Progress::new("power", 1)).unwrap_err();
    assert!(err.contains("cannot be simulated"), "{err}");
}

#[test]
fn a_cell_killed_with_kill_9_reopens_with_every_key() {
    harness();
    let work = tempfile::tempdir().unwrap();
    let data = DataSet { keys: 20_000, value_bytes: 100 };
    let spec = CellSpec {
        engine: EngineKind::LogkvAlways,
        data,
        dir: work.path().join("cell"),
        phases: Vec::new(),
        phase_secs: 0.0,
        persist_secs: None,
        seed: 1,
    };
    let result = cell::run_and_kill(&spec).unwrap();
    assert!(result.footprint.written_bytes >= data.user_bytes(), "{:?}", result.footprint);
    let row = cell::recover(&spec).unwrap();
    eprintln!("{row:?}");
    assert!(row.open_secs > 0.0, "{row:?}");
    assert_eq!(row.keys_found, 20_000, "{row:?}");
    assert!(row.disk_bytes >= data.user_bytes(), "{row:?}");
}
