//! Surviving a failed `fdatasync` across a restart.
//!
//! After a failed sync, Linux may keep the pages it could not write in its
//! cache, marked clean. A process that restarts without a reboot then reads
//! bytes that are not on disk, and no later sync writes them again, so a
//! write acknowledged after the restart could sit behind a hole. A failed
//! sync therefore leaves a marker file (best effort: the disk is failing);
//! the next open rewrites every byte it recovered, syncs it, and only then
//! removes the marker and accepts writes.

use std::path::Path;

use logkv_fs::FileSystem;

use crate::error::{LogError, Result};
use crate::segment::Segment;

/// The marker's file name in the log directory.
pub const MARKER: &str = "SYNC_FAILED";

/// Leaves the marker, saying why. Errors are ignored: this runs because the
/// disk already failed, and the log turns read-only either way.
pub(crate) fn record(fs: &dyn FileSystem, dir: &Path, why: &str) {
    let path = dir.join(MARKER);
    let _ = fs.remove_file(&path);
    if let Ok(file) = fs.create(&path) {
        let _ = file.write_at(why.as_bytes(), 0);
        let _ = file.sync_data();
        let _ = fs.sync_dir(dir);
    }
}

/// If the marker is there, rewrites and syncs the recovered bytes of every
/// segment (up to `tail_offset` in the last), then removes the marker.
/// Returns how many segments were rewritten.
pub(crate) fn repair(
    fs: &dyn FileSystem,
    dir: &Path,
    segments: &[Segment],
    tail_offset: u64,
) -> Result<usize> {
    let path = dir.join(MARKER);
    if !fs.exists(&path) {
        return Ok(0);
    }
    for (i, seg) in segments.iter().enumerate() {
        let end = if i + 1 == segments.len() { tail_offset } else { seg.capacity };
        let bytes = seg.contents()?;
        let io = |e| LogError::io(&seg.path, e);
        seg.file.write_at(&bytes[..end as usize], 0).map_err(io)?;
        seg.file.sync_data().map_err(io)?;
    }
    fs.remove_file(&path).map_err(|e| LogError::io(&path, e))?;
    fs.sync_dir(dir).map_err(|e| LogError::io(dir, e))?;
    Ok(segments.len())
}
