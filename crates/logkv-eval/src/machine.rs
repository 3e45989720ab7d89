//! What the figures were measured on, and where the data may live.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Magic numbers of `statfs(2)` for the file systems worth naming.
const FS_TYPES: &[(u64, &str)] = &[
    (0xEF53, "ext4"),
    (0x5846_5342, "xfs"),
    (0x9123_683E, "btrfs"),
    (0x0102_1994, "tmpfs"),
    (0x8584_58F6, "ramfs"),
    (0x794C_7630, "overlayfs"),
    (0x2FC1_2FC1, "zfs"),
    (0xF2F5_2010, "f2fs"),
    (0x6969, "nfs"),
    (0x0100_2100, "9p"),
];

/// The file system type holding `path` ("ext4", "tmpfs", or a hex magic).
pub fn fs_type(path: &Path) -> String {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: `statfs` is plain old data; zeroes are a valid value.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `s` a valid out-pointer.
    if unsafe { libc::statfs(c.as_ptr(), &mut s) } != 0 {
        return "unknown".into();
    }
    let magic = s.f_type as u64 & 0xFFFF_FFFF;
    FS_TYPES.iter().find(|(m, _)| *m == magic).map_or_else(|| format!("{magic:#x}"), |(_, n)| n.to_string())
}

/// Whether `path` lives in memory rather than on a disk.
pub fn in_memory(path: &Path) -> bool {
    matches!(fs_type(path).as_str(), "tmpfs" | "ramfs")
}

fn first_line_with(file: &str, prefix: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(prefix))?;
    Some(line.split_once(':').map_or(line, |(_, v)| v).trim().to_string())
}

/// A one-paragraph description of this machine and the data directory.
pub fn describe(data_dir: &Path) -> Vec<(String, String)> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = first_line_with("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into());
    let mem = first_line_with("/proc/meminfo", "MemTotal")
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or_else(|| "unknown".into(), |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string());
    vec![
        ("cpus".into(), cpus.to_string()),
        ("cpu model".into(), model),
        ("memory".into(), mem),
        ("kernel".into(), kernel),
        ("data dir".into(), data_dir.display().to_string()),
        ("data dir file system".into(), describe_fs(data_dir)),
    ]
}

/// The block device (e.g. "vda") holding `path`, from the longest matching mount.
fn device_of(path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let path = path.canonicalize().ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?))
        })
        .filter(|(dev, mnt)| dev.starts_with("/dev/") && path.starts_with(mnt))
        .max_by_key(|(_, mnt)| mnt.len())
        .map(|(dev, _)| dev.trim_start_matches("/dev/").to_string())
}

/// The file system type, plus for ext4 whether it has a journal, and the
/// device's write cache mode (a volatile cache makes every fdatasync a flush).
fn describe_fs(path: &Path) -> String {
    let mut out = fs_type(path);
    let Some(dev) = device_of(path) else {
        return out;
    };
    if out == "ext4" {
        let journal = std::fs::read_dir("/proc/fs/jbd2")
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with(&format!("{dev}-"))))
            .unwrap_or(false);
        out.push_str(if journal { " (with journal)" } else { " (no journal)" });
    }
    out.push_str(&format!(" on {dev}"));
    // A partition's queue settings live with its whole disk, one level up.
    let disk = std::fs::canonicalize(format!("/sys/class/block/{dev}"))
        .ok()
        .filter(|p| p.join("partition").exists())
        .and_then(|p| p.parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dev.clone());
    if let Ok(cache) = std::fs::read_to_string(format!("/sys/block/{disk}/queue/write_cache")) {
        out.push_str(&format!(", write cache: {}", cache.trim()));
    }
    out
}

/// Anonymous resident memory of this process, in bytes (`RssAnon`).
pub fn rss_anon_bytes() -> Option<u64> {
    let kb = first_line_with("/proc/self/status", "RssAnon")?;
    kb.trim_end_matches("kB").trim().parse::<u64>().ok().map(|k| k * 1024)
}

/// Returns freed heap memory to the system, so resident-memory deltas
/// measure what is live rather than what the allocator kept.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// CPU time and context switches of this process (all its threads) so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User plus system CPU time.
    pub cpu: std::time::Duration,
    /// Voluntary plus involuntary context switches.
    pub switches: u64,
}

impl std::ops::Sub for Usage {
    type Output = Usage;
    fn sub(self, rhs: Usage) -> Usage {
        Usage { cpu: self.cpu.saturating_sub(rhs.cpu), switches: self.switches.saturating_sub(rhs.switches) }
    }
}

/// What `getrusage(RUSAGE_SELF)` says now.
pub fn usage() -> Usage {
    // SAFETY: `rusage` is plain old data; zeroes are a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid out-pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return Usage::default();
    }
    let tv = |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Usage { cpu: tv(u.ru_utime) + tv(u.ru_stime), switches: (u.ru_nvcsw + u.ru_nivcsw) as u64 }
}
