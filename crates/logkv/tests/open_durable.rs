//! Opening a data directory whose log lost records a checkpoint or the
//! compacted file covers (so they were durable), or whose sealed segments
//! are damaged where replay does not read them: a strict open refuses,
//! naming the file, the positions and the way out; `--recovery truncate`
//! opens and says loudly what it dropped; `logkv inspect` tells such a
//! truncation from a crash's torn tail.

mod server;

use std::path::{Path, PathBuf};

use server::{logkv, Server};

const SEGMENT: &str = "65536";

fn value(i: usize) -> String {
    format!("value-{i:03}-{}", "x".repeat(4000))
}

/// `logkv ARGS --data-dir DIR --segment-size-bytes 65536`.
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["--data-dir", dir.to_str().unwrap(), "--segment-size-bytes", SEGMENT];
    all.extend_from_slice(args);
    let out = logkv(&all);
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// 60 puts of about 4 KB over five 64 KiB segments, then a checkpoint.
fn checkpointed(temp: &Path) -> PathBuf {
    let dir = temp.join("data");
    for i in 1..=60 {
        let (code, _, err) = run(&dir, &["put", &format!("k{i}"), &value(i)]);
        assert_eq!(code, 0, "put k{i}: {err}");
    }
    let (code, _, err) = run(&dir, &["checkpoint"]);
    assert_eq!(code, 0, "checkpoint: {err}");
    assert!(dir.join("00000005.log").exists() && !dir.join("00000006.log").exists(), "five segments");
    dir
}

fn segment(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.log"))
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

/// A strict open (`get`, `serve`) refuses with exit 3 and a message naming
/// `file` and each of `says`.
fn refused(dir: &Path, file: &str, says: &[&str]) {
    let (code, out, err) = run(dir, &["get", "k1"]);
    assert_eq!(code, 3, "get: {err}");
    assert!(out.is_empty());
    for s in std::iter::once(&file).chain(says) {
        assert!(err.contains(s), "get: no {s:?} in {err}");
    }
    let failed = match Server::builder().data_dir(dir).args(["--segment-size-bytes", SEGMENT]).try_start() {
        Ok(_) => panic!("serve started on a damaged directory"),
        Err(failed) => failed,
    };
    assert_eq!(failed.status.and_then(|s| s.code()), Some(3), "serve: {failed}");
    assert!(failed.stderr.contains(file), "serve names the file: {}", failed.stderr);
}

#[test]
fn a_last_segment_truncated_below_the_checkpoint_is_refused_unless_truncating() {
    let temp = tempfile::tempdir().unwrap();
    let dir = checkpointed(temp.path());
    truncate(&segment(&dir, 5), 2000);

    let (code, out, _) = run(&dir, &["inspect"]);
    assert_eq!(code, 3, "inspect: {out}");
    assert!(out.contains("truncation below durable positions"), "inspect: {out}");
    refused(
        &dir,
        "00000005.log",
        &["positions ", "are covered by", "checkpoint-", "--recovery truncate", "backup"],
    );

    // Truncating opens, says what it dropped, and the dropped keys are gone.
    let (code, out, err) = run(&dir, &["--recovery", "truncate", "get", "k50"]);
    assert_eq!((code, out), (0, value(50)), "{err}");
    assert!(err.contains("were durable") && err.contains("are lost"), "loud: {err}");
    let (code, _, _) = run(&dir, &["get", "k60"]);
    assert_eq!(code, 1, "k60 was dropped, and the directory now opens strictly");
}

#[test]
fn a_middle_segment_truncated_under_a_checkpoint_is_refused_at_open() {
    let temp = tempfile::tempdir().unwrap();
    let dir = checkpointed(temp.path());
    truncate(&segment(&dir, 3), 3000);
    refused(&dir, "00000003.log", &["positions ", "checkpoint-", "--recovery truncate"]);
    let (code, out, _) = run(&dir, &["inspect"]);
    assert_eq!(code, 3, "inspect: {out}");

    let (code, out, err) = run(&dir, &["--recovery", "truncate", "get", "k1"]);
    assert_eq!((code, out), (0, value(1)), "{err}");
    assert!(err.contains("are lost"), "loud: {err}");
}

#[test]
fn a_zeroed_sealed_header_under_a_checkpoint_is_refused_at_open() {
    let temp = tempfile::tempdir().unwrap();
    let dir = checkpointed(temp.path());
    let path = segment(&dir, 3);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..32].fill(0);
    std::fs::write(&path, bytes).unwrap();
    refused(&dir, "00000003.log", &["segment header never written", "--recovery truncate"]);
}

#[test]
fn a_zeroed_sealed_header_without_a_checkpoint_is_refused_too() {
    let temp = tempfile::tempdir().unwrap();
    let dir = checkpointed(temp.path());
    for (_, path) in std::fs::read_dir(&dir).unwrap().map(|e| ((), e.unwrap().path())) {
        if path.extension().is_some_and(|e| e == "ckpt") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let path = segment(&dir, 2);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..32].fill(0);
    std::fs::write(&path, bytes).unwrap();
    refused(&dir, "00000002.log", &["segment header never written"]);
}

#[test]
fn a_missing_middle_segment_is_refused_at_open() {
    let temp = tempfile::tempdir().unwrap();
    let dir = checkpointed(temp.path());
    std::fs::remove_file(segment(&dir, 3)).unwrap();
    refused(&dir, "00000003.log", &["segment file missing from the middle of the log"]);
}

#[test]
fn a_segment_missing_right_after_the_compacted_file_is_refused_naming_the_lost_positions() {
    let temp = tempfile::tempdir().unwrap();
    let dir = checkpointed(temp.path());
    let (code, _, err) = run(&dir, &["compact"]);
    assert_eq!(code, 0, "compact: {err}");
    for i in 61..=90 {
        let (code, _, err) = run(&dir, &["put", &format!("k{i}"), &value(i)]);
        assert_eq!(code, 0, "put k{i}: {err}");
    }
    let oldest = (1..100).find(|&id| segment(&dir, id).exists()).expect("a segment after the compacted file");
    assert!(segment(&dir, oldest + 1).exists(), "the puts filled another segment");
    std::fs::remove_file(segment(&dir, oldest)).unwrap();
    let next = format!("{:08}.log", oldest + 1);
    refused(&dir, &next, &["are lost", "oldest segment starts at", "from a backup", "--from-export"]);
}

#[test]
fn a_torn_tail_after_the_checkpoint_still_opens_strictly() {
    let temp = tempfile::tempdir().unwrap();
    let dir = checkpointed(temp.path());
    for i in 61..=63 {
        let (code, _, err) = run(&dir, &["put", &format!("k{i}"), &value(i)]);
        assert_eq!(code, 0, "put k{i}: {err}");
    }
    // Cut the last record short, after the checkpoint's position: what a
    // crash mid-write leaves.
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let mut cut = bytes.clone();
    cut[end - 100..].fill(0);
    std::fs::write(&path, cut).unwrap();

    let (code, out, _) = run(&dir, &["inspect"]);
    assert_eq!(code, 0, "a torn tail is not corruption: {out}");
    assert!(out.contains("torn tail") && !out.contains("below durable"), "{out}");
    let (code, out, err) = run(&dir, &["get", "k62"]);
    assert_eq!((code, out), (0, value(62)), "{err}");
    assert!(!err.contains("are lost"), "{err}");
    let (code, _, _) = run(&dir, &["get", "k63"]);
    assert_eq!(code, 1, "the torn record is gone");
}
