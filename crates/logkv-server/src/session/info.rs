//! `INFO [section ...]` and `CONFIG GET pattern ...`: the server's figures
//! and settings in Redis's shapes, from the node, the metrics and the
//! configuration.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use logkv_runtime::node::NodeError;

use super::view::View;
use super::{glob, keyspace, REDIS_VERSION};
use crate::resp::command::Bytes;
use crate::resp::frame::Limits;
use crate::resp::reply::Reply;
use crate::shared::Shared;
use logkv_store::DurabilityMode;

/// The sections `INFO` knows, in Redis's order.
const SECTIONS: [&str; 7] =
    ["server", "clients", "memory", "persistence", "stats", "replication", "keyspace"];

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
                ("connected_clients", shared.metrics.connections.load(Relaxed).to_string()),
                ("maxclients", config.max_connections.to_string()),
            ];
            ("Clients", lines)
        }
        "memory" => {
            let bytes = node.store().index_bytes() as u64;
            let lines = vec![
                ("used_memory", bytes.to_string()),
                ("used_memory_human", human(bytes)),
                ("maxmemory", "0".into()),
                ("maxmemory_policy", "noeviction".into()),
                ("logkv_index_bytes", bytes.to_string()),
            ];
            ("Memory", lines)
        }
        "persistence" => {
            let log = node.store().log().stats().snapshot();
            let progress = node.replay_progress();
            let lines = vec![
                ("loading", "0".into()),
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
        "replication" => ("Replication", vec![("role", "master".into()), ("connected_slaves", "0".into())]),
        _ => {
            let view = View::new(node, config.stream, None);
            let keys = match keyspace::dbsize(&view)? {
                Reply::Integer(n) => n,
                _ => 0,
            };
            let lines =
                if keys > 0 { vec![("db0", format!("keys={keys},expires=0,avg_ttl=0"))] } else { vec![] };
            ("Keyspace", lines)
        }
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

/// `CONFIG GET pattern ...`: the settings whose names match a pattern
/// (case-insensitive), each once, as a map.
pub fn config_get(shared: &Shared, patterns: &[Bytes]) -> Reply {
    let c = &shared.config;
    let table: [(&str, String); 10] = [
        ("maxclients", c.max_connections.to_string()),
        ("timeout", c.idle_timeout_secs.to_string()),
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
        ("databases", "1".into()),
        ("proto-max-bulk-len", Limits::default().max_bulk_bytes.to_string()),
        ("port", port(&c.resp_addr)),
        ("maxmemory", "0".into()),
        ("dir", c.store.data_dir.display().to_string()),
    ];
    let patterns: Vec<Vec<u8>> = patterns.iter().map(|p| p.to_ascii_lowercase()).collect();
    let pairs: Vec<(Reply, Reply)> = table
        .iter()
        .filter(|(name, _)| patterns.iter().any(|p| glob::matches(p, name.as_bytes())))
        .map(|(name, value)| (Reply::Bulk(name.as_bytes().to_vec()), Reply::Bulk(value.clone().into_bytes())))
        .collect();
    Reply::Map(pairs)
}
