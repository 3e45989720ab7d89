//! What the operating system says a process used: memory from
//! `/proc/self/status`, bytes written to storage from `/proc/self/io`, and
//! space a directory takes on disk.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> u64 {
    status_bytes_of("/proc/self/status", field)
}

/// A `kB` field of a `/proc/PID/status` file, in bytes (0 if absent).
pub fn status_bytes_of(path: &str, field: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(path) else { return 0 };
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Resident set size now.
pub fn rss() -> u64 {
    status_bytes("VmRSS")
}

/// Peak resident set size of this process so far.
pub fn peak_rss() -> u64 {
    status_bytes("VmHWM")
}

/// Bytes this process caused to be written to storage (`write_bytes` of
/// `/proc/self/io`: counted when a page is dirtied, so a write buffered by
/// the OS counts as soon as it is made).
pub fn written_bytes() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/io") else { return 0 };
    text.lines().find_map(|l| l.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Space `path` takes on disk: allocated blocks (`st_blocks * 512`) of every
/// file under it, so a preallocated file counts in full and a sparse one
/// does not. A missing path takes 0 bytes.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else { return 0 };
        entries.filter_map(|e| e.ok()).map(|e| disk_usage(&e.path())).sum()
    } else {
        meta.blocks() * 512
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read() {
        // The peak read after the current size is at least that size.
        let now = rss();
        assert!(now > 0 && peak_rss() >= now);
    }

    #[test]
    fn disk_usage_counts_allocated_blocks_recursively() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(disk_usage(&dir.path().join("missing")), 0);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 10_000]).unwrap();
        std::fs::write(dir.path().join("sub/b"), vec![1u8; 20_000]).unwrap();
        let sparse = std::fs::File::create(dir.path().join("sparse")).unwrap();
        sparse.set_len(1 << 30).unwrap();
        let used = disk_usage(dir.path());
        assert!((30_000..1 << 20).contains(&used), "{used}");
    }
}
