//! The open-file limit a server needs. Every client connection holds a
//! descriptor, and so do the log's segments, the listeners and the NATS
//! connection; a server that runs out accepts a connection and cannot serve
//! it. At start the soft limit is raised toward the hard one, and where
//! even that cannot hold `max_connections` the limit on connections is
//! lowered to what fits, with a warning (what Redis does with `maxclients`).

/// Descriptors kept for everything but client connections: segment files,
/// listeners, the NATS connection, checkpoints and compaction's files.
pub const RESERVED: u64 = 64;

/// What [`fit`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fitted {
    /// The connection limit that fits: `max_connections`, or lower.
    pub max_connections: usize,
    /// The soft open-file limit before and after.
    pub soft_before: u64,
    pub soft_after: u64,
    /// The hard open-file limit.
    pub hard: u64,
}

/// The soft and hard `RLIMIT_NOFILE` of this process.
pub fn limits() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Raises the soft `RLIMIT_NOFILE` toward the hard limit until it covers
/// `max_connections` plus [`RESERVED`], and returns the connection limit
/// that fits under what it got (at least 1).
pub fn fit(max_connections: usize) -> std::io::Result<Fitted> {
    let (soft_before, hard) = limits()?;
    let wanted = (max_connections as u64).saturating_add(RESERVED);
    let mut soft_after = soft_before;
    if soft_before < wanted {
        let raised = libc::rlimit { rlim_cur: wanted.min(hard), rlim_max: hard };
        // SAFETY: setrlimit reads the struct it is given and nothing else.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            soft_after = raised.rlim_cur;
        }
    }
    let fits = usize::try_from(soft_after.saturating_sub(RESERVED)).unwrap_or(usize::MAX).max(1);
    Ok(Fitted { max_connections: max_connections.min(fits), soft_before, soft_after, hard })
}
