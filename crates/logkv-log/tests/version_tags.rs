//! Version tags: each record carries a caller-chosen, never decreasing tag,
//! and the log publishes the tag of the newest acknowledged record exactly
//! where it publishes positions (after the covering flush in `always` and
//! `none`, at append in `periodic`), and restores it on open.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use logkv_fs::{DynFs, SimFs};
use logkv_log::{Durability, FileLog, LogConfig, LogError, RecordType, RecoveryMode, ReplayStart};

const DIR: &str = "/log";

fn open(fs: &SimFs, durability: Durability) -> Result<(FileLog, Vec<u64>), LogError> {
    let fs: DynFs = Arc::new(fs.clone());
    let config = LogConfig { segment_size_bytes: 4096, durability, recovery: RecoveryMode::Strict };
    let mut tags = Vec::new();
    let mut visit = |r: logkv_log::RecordRef<'_>| -> Result<u64, LogError> {
        let tag = u64::from_le_bytes(r.payload[..8].try_into().expect("8-byte payloads"));
        tags.push(tag);
        Ok(tag)
    };
    let (log, _) =
        FileLog::open(fs, Path::new(DIR), config, ReplayStart::default(), 0, &mut visit, &mut |_, _| {})?;
    Ok((log, tags))
}

/// Appends a record whose payload is its tag; returns the position.
fn append(log: &FileLog, tag: u64) -> Result<u64, LogError> {
    log.append::<LogError>(RecordType::Applied, 8, None, |_, _, buf| {
        buf.copy_from_slice(&tag.to_le_bytes());
        Ok(tag)
    })
}

#[test]
fn always_publishes_the_tag_after_the_sync_that_covers_it() {
    let fs = SimFs::new();
    let (log, _) = open(&fs, Durability::Always).unwrap();
    let p = append(&log, 7 << 16).unwrap();
    assert_eq!((log.sequenced_version(), log.visible_version()), (7 << 16, 0));
    log.commit(p).unwrap();
    assert_eq!(log.visible_version(), 7 << 16);
    let p = append(&log, (7 << 16) | 3).unwrap();
    assert_eq!(log.visible_version(), 7 << 16, "not yet synced");
    log.commit(p).unwrap();
    assert_eq!((log.visible_version(), log.visible_position()), ((7 << 16) | 3, 2));
}

#[test]
fn periodic_publishes_the_tag_at_append() {
    let fs = SimFs::new();
    let periodic =
        Durability::Periodic { flush_interval: Duration::from_secs(3600), flush_size_bytes: 1 << 20 };
    let (log, _) = open(&fs, periodic).unwrap();
    append(&log, 42).unwrap();
    assert_eq!(log.visible_version(), 42);
}

#[test]
fn a_decreasing_tag_is_refused_and_nothing_is_appended() {
    let fs = SimFs::new();
    let (log, _) = open(&fs, Durability::Always).unwrap();
    let p = append(&log, 100).unwrap();
    log.commit(p).unwrap();
    assert_eq!(append(&log, 100).unwrap(), 2, "an equal tag is fine");
    let err = append(&log, 99).unwrap_err();
    assert!(matches!(err, LogError::VersionOrder { position: 3, version: 99, previous: 100 }), "{err}");
    assert_eq!(log.next_position(), 3);
    assert_eq!(log.sequenced_version(), 100);
}

#[test]
fn reopening_restores_the_last_tag_and_refuses_tags_that_decrease_on_disk() {
    let fs = SimFs::new();
    let (log, _) = open(&fs, Durability::Always).unwrap();
    for tag in [5, 9, 1 << 20] {
        let p = append(&log, tag).unwrap();
        log.commit(p).unwrap();
    }
    log.close().unwrap();
    let (log, tags) = open(&fs, Durability::Always).unwrap();
    assert_eq!(tags, [5, 9, 1 << 20]);
    assert_eq!((log.visible_version(), log.sequenced_version()), (1 << 20, 1 << 20));
    log.close().unwrap();

    // A visitor that reports a smaller tag than the record before it.
    let fs2: DynFs = Arc::new(fs.clone());
    let mut n = 0u64;
    let mut visit = |_: logkv_log::RecordRef<'_>| -> Result<u64, LogError> {
        n += 1;
        Ok(10 - n)
    };
    let err = FileLog::open(
        fs2,
        Path::new(DIR),
        LogConfig::default(),
        ReplayStart::default(),
        0,
        &mut visit,
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(matches!(err, LogError::VersionOrder { position: 2, .. }), "{err}");
}
