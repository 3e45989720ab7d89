//! `INFO [section ...]`, `ROLE` and `CONFIG GET/SET/RESETSTAT`: the
//! server's figures and settings in Redis's shapes, from the node, the
//! metrics and the configuration; and the `maxmemory` check.
//!
//! Memory is the in-memory index's size (`used_memory`): the index is what
//! grows with the data (values stay in the log on disk), and unlike the
//! resident set it does not move with buffers, caches and the allocator.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use logkv_runtime::node::NodeError;

use super::view::View;
use super::{databases, glob, keyspace, REDIS_VERSION};
use crate::resp::command::Bytes;
use crate::resp::frame::Limits;
use crate::resp::reply::Reply;
use crate::shared::Shared;
use logkv_store::DurabilityMode;

/// The sections `INFO` knows, in Redis's order.
const SECTIONS: [&str; 8] =
    ["server", "clients", "memory", "persistence", "stats", "replication", "cluster", "keyspace"];

/// A node's role in Redis's terms. Every node of a shared log takes writes
/// (they are ordered by the log, not by a primary), so each is a master
/// with no replicas of its own.
pub const ROLE: &str = "master";

/// The error of a command refused by `maxmemory`.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// The only `maxmemory-policy`: logkv evicts nothing.
const POLICY: &str = "noeviction";

/// What the memory limit is measured on: the in-memory index's bytes.
fn used_memory(shared: &Shared) -> u64 {
    shared.node.store().index_bytes() as u64
}

/// Whether `maxmemory` is set and the index is over it.
pub fn over_maxmemory(shared: &Shared) -> bool {
    let limit = shared.resp.maxmemory.load(Relaxed);
    limit > 0 && used_memory(shared) > limit
}

/// The process's resident set in bytes (Linux), for `used_memory_rss`.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// One database's figures for `INFO keyspace`.
struct Database {
    index: u32,
    keys: i64,
    expires: i64,
}

/// The databases' figures (keys counted as `DBSIZE` counts them;
/// `expires` is the node's count of the stream's keys with an expiry, read
/// without a scan).
fn database_figures(shared: &Shared) -> Result<Vec<Database>, NodeError> {
    (0..shared.config.databases)
        .map(|index| {
            let stream = databases::stream_of(&shared.config.stream, index);
            let view = View::new(&shared.node, stream, None);
            let keys = match keyspace::dbsize(&view)? {
                Reply::Integer(n) => n,
                _ => 0,
            };
            let expires = i64::try_from(shared.node.expiring_keys(&stream)).unwrap_or(i64::MAX);
            Ok(Database { index, keys, expires })
        })
        .collect()
}

/// `INFO`: the named sections (case-insensitive; `default`, `all` and
/// `everything` name all), or all without a name. Unknown names add
/// nothing, as in Redis.
pub fn info(shared: &Shared, sections: &[Bytes]) -> Result<Reply, NodeError> {
    let wanted: Vec<String> =
        sections.iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect();
    let all =
        wanted.is_empty() || wanted.iter().any(|w| matches!(w.as_str(), "default" | "all" | "everything"));
    let mut out = String::new();
    for section in SECTIONS {
        if !all && !wanted.iter().any(|w| w == section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        section_text(shared, section, &mut out)?;
    }
    Ok(Reply::Verbatim(out))
}

fn section_text(shared: &Shared, section: &str, out: &mut String) -> Result<(), NodeError> {
    let node = &shared.node;
    let config = &shared.config;
    let state = &shared.resp;
    let rows: Vec<(String, String)> = match section {
        "keyspace" => database_figures(shared)?
            .into_iter()
            .filter(|db| db.keys > 0)
            .map(|db| {
                (format!("db{}", db.index), format!("keys={},expires={},avg_ttl=0", db.keys, db.expires))
            })
            .collect(),
        _ => Vec::new(),
    };
    let (title, lines): (&str, Vec<(&str, String)>) = match section {
        "server" => {
            let uptime = state.started.elapsed().as_secs();
            let lines = vec![
                ("redis_version", REDIS_VERSION.to_string()),
                ("logkv_version", env!("CARGO_PKG_VERSION").to_string()),
                ("redis_mode", "standalone".into()),
                ("os", format!("{} {}", std::env::consts::OS, std::env::consts::ARCH)),
                ("arch_bits", usize::BITS.to_string()),
                ("process_id", std::process::id().to_string()),
                ("tcp_port", port(&config.resp_addr)),
                ("uptime_in_seconds", uptime.to_string()),
                ("uptime_in_days", (uptime / 86_400).to_string()),
            ];
            ("Server", lines)
        }
        "clients" => {
            let lines = vec![
                ("connected_clients", state.clients.len().to_string()),
                ("maxclients", config.max_connections.to_string()),
            ];
            ("Clients", lines)
        }
        "memory" => {
            let bytes = used_memory(shared);
            let rss = resident_bytes().unwrap_or(0);
            let limit = state.maxmemory.load(Relaxed);
            let lines = vec![
                ("used_memory", bytes.to_string()),
                ("used_memory_human", human(bytes)),
                ("used_memory_rss", rss.to_string()),
                ("used_memory_rss_human", human(rss)),
                ("maxmemory", limit.to_string()),
                ("maxmemory_human", human(limit)),
                ("maxmemory_policy", POLICY.into()),
                ("logkv_index_bytes", bytes.to_string()),
            ];
            ("Memory", lines)
        }
        "persistence" => {
            let log = node.store().log().stats().snapshot();
            let progress = node.replay_progress();
            let lines = vec![
                ("loading", u8::from(shared.not_serving().is_some()).to_string()),
                ("async_loading", "0".into()),
                ("aof_enabled", "1".into()),
                ("logkv_durability", config.store.durability.to_string()),
                ("logkv_applied_position", progress.applied_position.to_string()),
                ("logkv_applied_version", progress.applied_version.to_string()),
                ("logkv_log_bytes_written", log.bytes_written.to_string()),
                ("logkv_log_fsyncs", log.syncs.to_string()),
            ];
            ("Persistence", lines)
        }
        "stats" => {
            let lines = vec![
                ("total_connections_received", state.connections_received.load(Relaxed).to_string()),
                ("total_commands_processed", state.commands_processed.load(Relaxed).to_string()),
                ("rejected_connections", shared.metrics.rejected_connections.load(Relaxed).to_string()),
                ("logkv_entries_signed", node.entries_signed().to_string()),
                ("logkv_local_transactions", node.local_txs().to_string()),
                ("logkv_scan_cursors", state.cursors.len().to_string()),
            ];
            ("Stats", lines)
        }
        "replication" => {
            let lines = vec![
                ("role", ROLE.into()),
                ("connected_slaves", "0".into()),
                ("master_repl_offset", node.replay_progress().applied_position.to_string()),
            ];
            ("Replication", lines)
        }
        "cluster" => ("Cluster", vec![("cluster_enabled", "0".into())]),
        _ => ("Keyspace", rows.iter().map(|(db, line)| (db.as_str(), line.clone())).collect()),
    };
    let _ = write!(out, "# {title}\r\n");
    for (name, value) in lines {
        let _ = write!(out, "{name}:{value}\r\n");
    }
    Ok(())
}

fn port(addr: &str) -> String {
    addr.rsplit(':').next().unwrap_or("").to_string()
}

fn human(bytes: u64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.2}{}", units[unit])
    }
}

/// The settings `CONFIG GET` shows, with their values now.
fn settings(shared: &Shared) -> Vec<(&'static str, String)> {
    let c = &shared.config;
    vec![
        ("maxclients", c.max_connections.to_string()),
        ("timeout", shared.resp.idle_timeout_secs.load(Relaxed).to_string()),
        ("appendonly", "yes".into()),
        (
            "appendfsync",
            match c.store.durability {
                DurabilityMode::Always => "always",
                DurabilityMode::Periodic => "everysec",
                DurabilityMode::None => "no",
            }
            .into(),
        ),
        ("save", String::new()),
        ("databases", c.databases.to_string()),
        ("proto-max-bulk-len", Limits::default().max_bulk_bytes.to_string()),
        ("port", port(&c.resp_addr)),
        ("maxmemory", shared.resp.maxmemory.load(Relaxed).to_string()),
        ("maxmemory-policy", POLICY.into()),
        ("dir", c.store.data_dir.display().to_string()),
    ]
}

/// `CONFIG GET pattern ...`: the settings whose names match a pattern
/// (case-insensitive), each once, as a map.
pub fn config_get(shared: &Shared, patterns: &[Bytes]) -> Reply {
    let patterns: Vec<Vec<u8>> = patterns.iter().map(|p| p.to_ascii_lowercase()).collect();
    let pairs: Vec<(Reply, Reply)> = settings(shared)
        .into_iter()
        .filter(|(name, _)| patterns.iter().any(|p| glob::matches(p, name.as_bytes())))
        .map(|(name, value)| (Reply::Bulk(name.as_bytes().to_vec()), Reply::Bulk(value.into_bytes())))
        .collect();
    Reply::Map(pairs)
}

/// A memory size as Redis reads one: digits, then optionally `b`, `k`
/// (1000), `kb` (1024), `m`, `mb`, `g` or `gb`, in any case.
fn memory_value(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?.to_ascii_lowercase();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let unit: u64 = match &text[digits..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    text[..digits].parse::<u64>().ok()?.checked_mul(unit)
}

/// `CONFIG SET name value ...`: all pairs are checked before any applies.
/// `maxmemory` and `timeout` change at runtime; `maxmemory-policy`
/// accepts only `noeviction`; the other settings `CONFIG GET` shows are
/// refused by name (they are set in the configuration, read at start).
pub fn config_set(shared: &Shared, pairs: &[(Bytes, Bytes)]) -> Reply {
    let failed = |name: &str, why: &str| {
        Reply::Error(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"))
    };
    let known = settings(shared);
    let mut seen: Vec<String> = Vec::new();
    let mut maxmemory = None;
    let mut timeout = None;
    for (name, value) in pairs {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if !known.iter().any(|(k, _)| *k == name) {
            return Reply::Error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        }
        if seen.contains(&name) {
            return failed(&name, "duplicate parameter");
        }
        match name.as_str() {
            "maxmemory" => match memory_value(value) {
                Some(bytes) => maxmemory = Some(bytes),
                None => return failed(&name, "argument must be a memory value"),
            },
            "timeout" => match std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok()) {
                Some(secs) => timeout = Some(secs),
                None => return failed(&name, "argument couldn't be parsed into an integer"),
            },
            "maxmemory-policy" if value.eq_ignore_ascii_case(POLICY.as_bytes()) => {}
            "maxmemory-policy" => {
                return failed(&name, "logkv evicts nothing: the only policy is 'noeviction'");
            }
            _ => return failed(&name, "logkv cannot change it while running (set it in the configuration)"),
        }
        seen.push(name);
    }
    if let Some(bytes) = maxmemory {
        shared.resp.maxmemory.store(bytes, Relaxed);
    }
    if let Some(secs) = timeout {
        shared.resp.idle_timeout_secs.store(secs, Relaxed);
    }
    Reply::ok()
}

/// `CONFIG RESETSTAT`: zeroes `INFO`'s own counters (the Prometheus
/// metrics, which only grow, are left alone).
pub fn reset_stats(shared: &Shared) -> Reply {
    shared.resp.connections_received.store(0, Relaxed);
    shared.resp.commands_processed.store(0, Relaxed);
    Reply::ok()
}

/// `ROLE`: a master (see [`ROLE`]) at its applied log position, with no
/// replicas.
pub fn role(shared: &Shared) -> Reply {
    let offset = shared.node.replay_progress().applied_position;
    Reply::Array(vec![
        Reply::Bulk(ROLE.as_bytes().to_vec()),
        Reply::Integer(i64::try_from(offset).unwrap_or(i64::MAX)),
        Reply::Array(Vec::new()),
    ])
}

#[cfg(test)]
mod tests {
    use super::memory_value;

    #[test]
    fn memory_values_read_as_redis_reads_them() {
        assert_eq!(memory_value(b"0"), Some(0));
        assert_eq!(memory_value(b"100"), Some(100));
        assert_eq!(memory_value(b"2kb"), Some(2048));
        assert_eq!(memory_value(b"2K"), Some(2000));
        assert_eq!(memory_value(b"10MB"), Some(10 << 20));
        assert_eq!(memory_value(b"1gb"), Some(1 << 30));
        assert_eq!(memory_value(b"abc"), None);
        assert_eq!(memory_value(b"-1"), None);
        assert_eq!(memory_value(b"5tb"), None);
        assert_eq!(memory_value(b""), None);
    }
}
