//! The report generator on a synthetic run record: every figure below is
//! made-up test data, chosen so that each target's outcome is known.

use std::collections::BTreeMap;
use std::path::Path;

use logkv_eval::engine::EngineKind::{self, *};
use logkv_eval::record::{
    DataSet, EngineInfo, FootprintRow, Latency, LossRow, PersistRow, RecoveryRow, RunRecord, ThroughputRow,
};
use logkv_eval::report::{summarize_targets, write_report, Outcome, RunRole, TargetRow};

const ENGINES: [EngineKind; 7] =
    [LogkvAlways, LogkvPeriodic, LogkvNone, Naive, RocksdbSync, RocksdbWal, FjallSync];
const SMALL: DataSet = DataSet { keys: 10_000, value_bytes: 100 };
const BIG: DataSet = DataSet { keys: 100_000, value_bytes: 100 };
const LARGE: DataSet = DataSet { keys: 1_000, value_bytes: 1 << 20 };
const MIB: u64 = 1 << 20;

/// Ops/s of the synthetic rows: figures the targets read are set exactly,
/// the rest follow a simple made-up rule.
fn ops(engine: EngineKind, data: DataSet, workload: &str, threads: u32) -> f64 {
    match (engine, data == BIG, workload, threads) {
        (LogkvAlways, true, "load-random", 32) => 90_000.0,
        (RocksdbSync, true, "load-random", 32) => 30_000.0,
        (FjallSync, true, "load-random", 32) => 120_000.0,
        (LogkvPeriodic, true, "load-random", 1) => 900_000.0,
        (LogkvNone, true, "load-random", 1) => 500_000.0,
        (RocksdbWal, true, "load-random", 1) => 300_000.0,
        (LogkvPeriodic, true, "read-random", 4) => 1_600_000.0,
        (RocksdbWal, true, "read-random", 4) => 1_000_000.0,
        (Naive, true, "read-random", 4) => 4_000_000.0,
        (LogkvPeriodic, false, "load-random", 1) if data == LARGE => 400.0,
        (RocksdbWal, false, "load-random", 1) if data == LARGE => 100.0,
        _ => {
            let base =
                if engine.promise() == logkv_eval::engine::Promise::Synced { 2_000.0 } else { 200_000.0 };
            base * f64::from(threads).sqrt() / (1.0 + data.value_bytes as f64 / 1000.0)
                * (1.0 + engine as u32 as f64 / 10.0)
        }
    }
}

fn latency(scale: f64) -> Latency {
    let points = [0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0];
    let curve: Vec<(f64, f64)> = points.iter().map(|&p| (p, scale * (1.0 + p / (100.5 - p)))).collect();
    let at = |p: f64| curve.iter().find(|c| c.0 == p).unwrap().1;
    Latency { p50: at(50.0), p99: at(99.0), p999: at(99.9), max: at(100.0), curve }
}

fn throughput_row(
    engine: EngineKind,
    data: DataSet,
    workload: &str,
    distribution: &str,
    threads: u32,
) -> ThroughputRow {
    let ops_per_sec = ops(engine, data, workload, threads);
    ThroughputRow {
        engine,
        data,
        workload: workload.into(),
        distribution: distribution.into(),
        threads,
        ops: (ops_per_sec * 2.0) as u64,
        secs: 2.0,
        ops_per_sec,
        latency: latency(1e6 * f64::from(threads) / ops_per_sec),
    }
}

/// A complete synthetic record of configuration `config`.
fn synthetic(config: &str, started_unix: u64) -> RunRecord {
    let mut throughput = Vec::new();
    for &engine in &ENGINES {
        for data in [SMALL, BIG] {
            for threads in [1, 4, 32] {
                throughput.push(throughput_row(engine, data, "load-random", "uniform", threads));
            }
            for threads in [1, 4] {
                throughput.push(throughput_row(engine, data, "read-random", "uniform", threads));
                throughput.push(throughput_row(engine, data, "update-50", "zipfian", threads));
            }
        }
        throughput.push(throughput_row(engine, LARGE, "load-random", "uniform", 1));
    }
    let mut footprint = Vec::new();
    let mut recovery = Vec::new();
    for &engine in &ENGINES {
        for data in [SMALL, BIG, LARGE] {
            let rss = match (engine, data == BIG) {
                (Naive, true) => 50 * MIB,
                (LogkvAlways | LogkvPeriodic | LogkvNone, true) => 10 * MIB,
                _ => 8 * MIB + data.keys * 150,
            };
            footprint.push(FootprintRow {
                engine,
                data,
                peak_rss_bytes: rss + MIB,
                rss_bytes: rss,
                disk_bytes: data.user_bytes() * 12 / 10,
                live_bytes: data.user_bytes(),
                written_bytes: data.user_bytes() * 2,
                user_bytes_written: data.user_bytes(),
            });
            let per_10k = match engine {
                Naive => 0.2,
                LogkvNone => 0.25,
                _ => 0.05,
            };
            recovery.push(RecoveryRow {
                engine,
                data,
                disk_bytes: data.user_bytes() * 12 / 10,
                open_secs: per_10k * data.keys as f64 / 10_000.0,
                keys_found: data.keys,
            });
        }
    }
    let mut loss = Vec::new();
    for &engine in &ENGINES {
        for failure in ["kill-9", "power-loss"] {
            let lost = match (engine, failure) {
                (LogkvAlways | RocksdbSync | FjallSync, _) => 0,
                (Naive, _) => 5_000,
                (_, "kill-9") => 0,
                _ => 120,
            };
            loss.push(LossRow {
                engine,
                failure: failure.into(),
                trials: 10,
                acked: 20_000,
                lost,
                wrong: 0,
                max_lost: lost / 4,
                trials_with_loss: if lost > 0 { 7 } else { 0 },
            });
        }
    }
    let persist = ENGINES
        .iter()
        .map(|&engine| match engine {
            LogkvAlways | RocksdbSync | FjallSync => PersistRow {
                engine,
                samples: 1_000,
                p50_ms: 0.0,
                p99_ms: 0.0,
                max_ms: 0.0,
                note: "synced before ack".into(),
            },
            LogkvPeriodic | LogkvNone => PersistRow {
                engine,
                samples: 1_000,
                p50_ms: 480.0,
                p99_ms: 990.0,
                max_ms: 1_010.0,
                note: "1 s window".into(),
            },
            _ => PersistRow {
                engine,
                samples: 0,
                p50_ms: 0.0,
                p99_ms: 0.0,
                max_ms: 0.0,
                note: "synthetic: the engine does not report syncs".into(),
            },
        })
        .collect();
    RunRecord {
        config: config.into(),
        started_unix,
        elapsed_secs: 3_725.0,
        machine: vec![("cpus".into(), "2 (synthetic test data)".into()), ("kernel".into(), "test".into())],
        versions: BTreeMap::from([("logkv".into(), "0.0.0-test".into()), ("rustc".into(), "test".into())]),
        params: serde_json::json!({ "synthetic": true, "seed": 7 }),
        engines: ENGINES
            .iter()
            .map(|&engine| EngineInfo {
                engine,
                promise: engine.promise(),
                settings: format!("{engine} test settings"),
            })
            .collect(),
        throughput,
        footprint,
        recovery,
        loss,
        persist,
    }
}

/// The fsync bound's rows as the harness writes them: a data set of no
/// keys, 1 and 32 writers, made-up figures.
fn fsync_bound() -> Vec<ThroughputRow> {
    [(1, 3_200.0), (32, 100_000.0)]
        .into_iter()
        .map(|(threads, ops_per_sec)| {
            let mut row = throughput_row(
                LogkvAlways,
                DataSet { keys: 0, value_bytes: 100 },
                "fsync-bound",
                "-",
                threads,
            );
            row.ops_per_sec = ops_per_sec;
            row.latency = Latency { p50: 320.0, ..Latency::default() };
            row
        })
        .collect()
}

fn target<'a>(rows: &'a [TargetRow], id: &str) -> &'a TargetRow {
    rows.iter().find(|r| r.id == id).unwrap_or_else(|| panic!("no target {id} in {rows:#?}"))
}

#[test]
fn targets_are_judged_from_the_figures() {
    let rows = summarize_targets(&synthetic("full", 1));
    let outcome = |id: &str| target(&rows, id).outcome;
    assert_eq!(outcome("a1"), Outcome::NotMeasured, "no fsync-bound row: {}", target(&rows, "a1"));
    assert!(target(&rows, "a1").measured.contains("not measured"));
    assert_eq!(outcome("a2"), Outcome::Pass, "90k / 30k = 3x ≥ 1x");
    assert_eq!(outcome("a3"), Outcome::Miss, "90k / 120k = 0.75x < 1x");
    assert_eq!(target(&rows, "a3").margin, "25% short of the goal");
    assert_eq!(outcome("b1"), Outcome::Pass, "900k / 300k = 3x ≥ 2x");
    assert_eq!(target(&rows, "b1").margin, "50% above the goal");
    assert!(target(&rows, "b1").measured.contains("= 3.00x"), "{}", target(&rows, "b1").measured);
    assert_eq!(outcome("b2"), Outcome::Miss, "500k / 300k = 1.67x < 2x");
    assert_eq!(outcome("c1"), Outcome::Pass, "1.6M / 1M at 4 threads ≥ 1.5x");
    assert_eq!(outcome("c2"), Outcome::Miss, "1.6M / 4M = 0.4x < 0.5x");
    assert_eq!(outcome("d"), Outcome::Pass, "400 / 100 = 4x ≥ 3x");
    for id in ["e1", "e2", "e3"] {
        assert_eq!(outcome(id), Outcome::Pass, "10 MiB / 50 MiB = 0.2x ≤ 0.3x");
    }
    assert_eq!(outcome("f1"), Outcome::Pass, "logkv-always reopens in 0.5 s against naive's 2 s");
    assert_eq!(outcome("f3"), Outcome::Miss, "logkv-none's synthetic 2.5 s is slower than naive's 2 s");
    assert_eq!(outcome("g1"), Outcome::Pass);
    assert_eq!(outcome("g2"), Outcome::Pass);

    let mut with_bound = synthetic("full", 1);
    with_bound.throughput.extend(fsync_bound());
    with_bound
        .loss
        .iter_mut()
        .filter(|l| l.engine == LogkvAlways && l.failure == "power-loss")
        .for_each(|l| l.lost = 3);
    let rows = summarize_targets(&with_bound);
    assert_eq!(
        target(&rows, "a1").outcome,
        Outcome::Pass,
        "90k of a 100k bound is 90% ≥ 80%: {}",
        target(&rows, "a1")
    );
    assert_eq!(target(&rows, "g2").outcome, Outcome::Miss, "3 lost to power loss");

    let empty = summarize_targets(&RunRecord::default());
    assert!(empty.iter().all(|r| r.outcome == Outcome::NotMeasured), "{empty:#?}");
    assert!(empty.iter().all(|r| r.measured.contains("not measured in this run")), "{empty:#?}");
}

fn is_svg(path: &Path) -> bool {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.trim_start();
    (start.starts_with("<svg") || start.starts_with("<?xml"))
        && text.contains("<text")
        && text.trim_end().ends_with("</svg>")
}

#[test]
fn writes_the_page_and_every_chart() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::create_dir_all(out.join("charts")).unwrap();
    std::fs::write(out.join("charts/stale.svg"), "<svg></svg>").unwrap();
    std::fs::write(out.join("charts/keep.txt"), "not a chart").unwrap();
    std::fs::write(out.join("conclusions.md"), "# Conclusions\n\nSynthetic conclusion line.\n").unwrap();
    synthetic("full", 1_700_000_000).save(&runs.join("2023-11-14-full.json")).unwrap();
    let mut shown = synthetic("full", 1_800_000_000);
    shown.throughput.extend(fsync_bound());
    shown.save(&runs.join("2027-01-15-full.json")).unwrap();
    synthetic("smoke", 1_900_000_000).save(&runs.join("2030-03-17-smoke.json")).unwrap();
    std::fs::write(runs.join("broken.json"), "{ not a record").unwrap();

    let summary = write_report(&runs, &out).unwrap();
    assert_eq!(summary.config, "full");
    assert!(
        summary.shown.ends_with("2027-01-15-full.json"),
        "the newest full run is shown, not the newer smoke run"
    );
    let roles: Vec<(&str, &RunRole)> = summary.runs.iter().map(|r| (r.file.as_str(), &r.role)).collect();
    assert_eq!(
        roles,
        [
            ("2023-11-14-full.json", &RunRole::Superseded { by: "2027-01-15-full.json".into() }),
            ("2027-01-15-full.json", &RunRole::Shown),
            ("2030-03-17-smoke.json", &RunRole::NewestOfConfig),
        ]
    );
    assert_eq!(summary.skipped.len(), 1);

    let charts = [
        "throughput-10k-100B.svg",
        "throughput-100k-100B.svg",
        "throughput-1k-1MiB.svg",
        "latency.svg",
        "memory.svg",
        "recovery.svg",
        "loss.svg",
        "persist.svg",
    ];
    for chart in charts {
        let path = out.join("charts").join(chart);
        assert!(is_svg(&path), "{} is not an SVG with text", path.display());
        assert!(summary.charts.contains(&path), "{chart} missing from the summary");
    }
    assert_eq!(summary.charts.len(), charts.len());
    assert!(!out.join("charts/stale.svg").exists(), "a chart no longer drawn is removed");
    assert!(out.join("charts/keep.txt").exists(), "only SVG files are removed");
    let latency = std::fs::read_to_string(out.join("charts/latency.svg")).unwrap();
    assert!(latency.contains("logkv-always (synced before ack)"), "legends name engine and promise");
    assert!(latency.contains("99.9%") && latency.contains("max"));

    let readme = std::fs::read_to_string(&summary.readme).unwrap();
    for expected in [
        "# logkv evaluation",
        "## How to rerun",
        "cargo run --release -p logkv-eval --features peers -- run --config full",
        "cargo run --release -p logkv-eval -- run --config smoke",
        "cargo run --release -p logkv --features bench -- bench report",
        "cargo run -p logkv-eval -- report",
        "| `runs/2027-01-15-full.json` | `full` |",
        "**shown on this page**",
        "newest `smoke` run, not shown",
        "superseded by `2027-01-15-full.json`",
        "Skipped `runs/broken.json`",
        "| cpus | 2 (synthetic test data) |",
        "| logkv | 0.0.0-test |",
        "| `logkv-always` | synced before ack | logkv-always test settings |",
        "## Throughput",
        "### 100k x 100 B",
        "| workload | key choice | threads | `logkv-always` |",
        "The **fsync bound** is not an engine's run",
        "median `fdatasync` 320 µs",
        "1 writer 3.20 k/s, 32 writers 100 k/s",
        "| load-random | uniform | 1 |",
        "![Throughput against client threads: 100k x 100 B](charts/throughput-100k-100B.svg)",
        "## Latency",
        "(charts/latency.svg)",
        "## Memory and space",
        "| 100k x 100 B | `naive` | 50.0 MiB |",
        "(charts/memory.svg)",
        "## Recovery",
        "(charts/recovery.svg)",
        "## Data lost",
        "| `naive` | synced within a window | kill-9 | 10 | 20,000 | 5,000 | 0 | 1,250 | 7 |",
        "(charts/loss.svg)",
        "## Time to persist",
        "- `naive` (synced within a window): synthetic: the engine does not report syncs",
        "(charts/persist.svg)",
        "## Targets",
        "| b1 | Buffered writes, load-random, 100 B, 1 thread: logkv-periodic against rocksdb-wal | ≥ 2x |",
        "= 3.00x (100k x 100 B, 1 thread)",
        "| **pass** | 50% above the goal |",
        "| **MISS** |",
        "logkv-always 90.0 k/s / bound 100 k/s = 90% of the bound (100k x 100 B, 32 threads)",
        "## Conclusions",
        "Synthetic conclusion line.",
    ] {
        assert!(readme.contains(expected), "README lacks {expected:?}:\n{readme}");
    }
    assert_eq!(readme.matches("Conclusions\n").count(), 1, "the conclusions' own heading is not repeated");
    let latency_row =
        readme.lines().find(|l| l.starts_with("| read-random | uniform | 4 | `logkv-periodic` |"));
    assert!(latency_row.is_some(), "latency shows the highest thread count all engines ran:\n{readme}");
}

#[test]
fn missing_conclusions_and_sections_are_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let mut record = synthetic("smoke", 5);
    record.persist.clear();
    record.recovery.clear();
    record.save(&runs.join("smoke.json")).unwrap();
    let summary = write_report(&runs, &dir.path().join("out")).unwrap();
    assert_eq!(summary.runs[0].role, RunRole::Shown, "without a full run the newest run is shown");
    let readme = std::fs::read_to_string(&summary.readme).unwrap();
    assert!(readme.contains("Conclusions are missing"), "{readme}");
    assert!(readme.contains("_recovery: not measured in this run._"), "{readme}");
    assert!(!dir.path().join("out/charts/recovery.svg").exists());
    assert!(!dir.path().join("out/charts/persist.svg").exists());
}

#[test]
fn no_record_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_report(dir.path(), &dir.path().join("out")).unwrap_err();
    assert!(err.contains("no run record"), "{err}");
    assert!(!dir.path().join("out/README.md").exists());
}
