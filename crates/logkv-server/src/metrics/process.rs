//! The `process_*` metrics every Prometheus client library exports, with
//! the same names and types, so dashboards and alerts written for any
//! process work on `logkv serve`. Read from `/proc` at render time (Linux);
//! where there is no `/proc` they are left out.

use std::io;

use super::Sample;
use crate::server::fd_limit;

/// The figures of this process, as one read of `/proc` found them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Process {
    /// User plus system CPU time.
    pub cpu_seconds: f64,
    /// Resident set size.
    pub resident_bytes: f64,
    /// Virtual memory size.
    pub virtual_bytes: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// The soft open-file limit.
    pub max_fds: f64,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

impl Process {
    /// Reads this process's figures.
    pub fn read() -> io::Result<Process> {
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        // `pid (comm) state ...`: comm may hold spaces and parentheses, so
        // the fields are counted from the last `)`, where field 3 begins.
        let after_comm =
            stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| malformed("/proc/self/stat"))?;
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let field = |n: usize| -> io::Result<f64> {
            fields
                .get(n - 3)
                .and_then(|f| f.parse::<u64>().ok())
                .map(|v| v as f64)
                .ok_or_else(|| malformed("/proc/self/stat"))
        };
        let ticks = sysconf(libc::_SC_CLK_TCK)?;
        let page = sysconf(libc::_SC_PAGESIZE)?;
        // The listing includes the descriptor that reads it.
        let open_fds = std::fs::read_dir("/proc/self/fd")?.count().saturating_sub(1);
        let (soft_limit, _) = fd_limit::limits()?;
        Ok(Process {
            cpu_seconds: (field(14)? + field(15)?) / ticks,
            resident_bytes: field(24)? * page,
            virtual_bytes: field(23)?,
            open_fds: open_fds as f64,
            max_fds: soft_limit as f64,
            start_time_seconds: boot_time()? + field(22)? / ticks,
        })
    }

    /// The samples to render.
    pub fn samples(&self) -> [Sample; 6] {
        [
            (
                "process_cpu_seconds_total",
                "counter",
                "user and system CPU time spent, in seconds",
                self.cpu_seconds,
            ),
            ("process_resident_memory_bytes", "gauge", "resident memory size", self.resident_bytes),
            ("process_virtual_memory_bytes", "gauge", "virtual memory size", self.virtual_bytes),
            ("process_open_fds", "gauge", "open file descriptors", self.open_fds),
            ("process_max_fds", "gauge", "the soft limit on open file descriptors", self.max_fds),
            (
                "process_start_time_seconds",
                "gauge",
                "when the process started, in seconds since the Unix epoch",
                self.start_time_seconds,
            ),
        ]
    }
}

/// When the machine booted, in seconds since the Unix epoch (`btime` of
/// `/proc/stat`): a process's start time is counted from it.
fn boot_time() -> io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|v| v as f64)
        .ok_or_else(|| malformed("/proc/stat"))
}

fn sysconf(name: libc::c_int) -> io::Result<f64> {
    // SAFETY: sysconf reads a configuration value and touches no memory of ours.
    match unsafe { libc::sysconf(name) } {
        v if v > 0 => Ok(v as f64),
        _ => Err(io::Error::last_os_error()),
    }
}

fn malformed(file: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{file} is not in the expected format"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plausible_figures_of_this_process() {
        let p = Process::read().expect("read /proc");
        assert!(p.resident_bytes > 0.0 && p.virtual_bytes >= p.resident_bytes, "{p:?}");
        assert!(p.open_fds >= 3.0 && p.open_fds <= p.max_fds, "{p:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(p.start_time_seconds <= now + 1.0 && p.start_time_seconds > now - 3600.0, "{p:?}");
        // Reading /proc takes CPU time, so reading again must see it grow.
        let spin = std::time::Instant::now();
        while Process::read().unwrap().cpu_seconds <= p.cpu_seconds {
            assert!(spin.elapsed().as_secs() < 60, "CPU time never grew from {p:?}");
        }
    }
}
