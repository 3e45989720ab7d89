//! What the operating system says a process used: memory from
//! `/proc/self/status`, bytes written to storage from `/proc/self/io`, and
//! space a directory takes on disk.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else { return 0 };
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

/// Space the files under `dir` take on disk (allocated blocks, so a
/// preallocated file counts in full and a sparse one does not).
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_usage(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_read() {
        assert!(rss() > 0 && peak_rss() >= rss());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f"), vec![1u8; 100_000]).unwrap();
        assert!(disk_usage(dir.path()) >= 100_000);
    }
}
