//! Section 11, footprint per key, measured through `logkv serve` (a
//! release binary on loopback, driven over RESP by 50 connections that
//! each wait for their reply): what a node's memory and log cost per key
//! and per write, and what checking every value's checksum costs reads.
//!
//! Each figure stands next to the same server's figure before the writes
//! (or, for reads, the same build with checksums off, alternating runs).

use std::error::Error;
use std::path::Path;
use std::time::Duration;

use crate::ctx::{fresh, Ctx};
use crate::data::{key, value, KEY_BYTES, VALUE_BYTES};
use crate::report::{checksum_cost_row, per_sec, progress, rate, thousands, times, Row, Runs, Table, Target};
use crate::serve::{drive, log_data_bytes, Server};

/// Connections, as `redis-benchmark -c 50`.
const CLIENTS: usize = 50;
/// Settings that keep the long write runs short: memory figures do not
/// depend on when writes are synced.
const PERIODIC: &[&str] = &["--durability", "periodic"];
/// The log-bytes run syncs every group commit, as the default does.
const ALWAYS: &[&str] = &["--durability", "always"];
/// Entries a version check may reach back in the set-and-delete run: small,
/// so the compaction right after the run may drop nearly every tombstone
/// (the default, 1,048,576, keeps the newest million entries' deletes).
const SET_DEL_HORIZON: &str = "1000";

const MB: f64 = 1024.0 * 1024.0;

fn mb(bytes: f64) -> String {
    format!("{:.2} MB", bytes / MB)
}

/// SET `key(i % keys)` to `value(i)`, for `i` in `0..writes`.
fn sets(server: &Server, writes: u64, keys: u64) -> Result<Duration, Box<dyn Error>> {
    drive(server.resp, CLIENTS, writes, |i, call| call(&[b"SET", &key(i % keys), &value(i)]))
}

/// Index bytes and anonymous resident memory of the server now.
fn memory(server: &Server) -> Result<(f64, f64), Box<dyn Error>> {
    Ok((server.metric("logkv_index_bytes")?, server.status_bytes("RssAnon") as f64))
}

/// 1. One key written `writes` times: index and anonymous memory must not
///    grow with the writes, before or after a restart.
fn one_key(dir: &Path, writes: u64, t: &mut Table) -> Result<(), Box<dyn Error>> {
    let server = Server::start(dir, PERIODIC)?;
    sets(&server, 1_000, 1)?;
    let (index0, rss0) = memory(&server)?;
    progress(format!("  {} SETs of one key", thousands(writes as f64)));
    let took = sets(&server, writes, 1)?;
    let (index1, rss1) = memory(&server)?;
    let file1 = server.status_bytes("RssFile") as f64;
    let server = server.restart()?;
    let (index2, rss2) = memory(&server)?;
    server.stop()?;
    let n = thousands(writes as f64);
    t.row(
        Row::new(format!("{n} SETs of one key: index growth"), mb(index1 - index0))
            .baseline(mb(index0))
            .target("<= 2 MB", Target::AtMost(2.0 * MB), index1 - index0),
    );
    t.row(Row::new("  RssAnon growth", mb(rss1 - rss0)).baseline(mb(rss0)).target(
        "<= 30 MB",
        Target::AtMost(30.0 * MB),
        rss1 - rss0,
    ));
    t.row(Row::new("  RssAnon growth, after a restart", mb(rss2 - rss0)).baseline(mb(rss0)).target(
        "<= 30 MB",
        Target::AtMost(30.0 * MB),
        rss2 - rss0,
    ));
    t.row(Row::new("  index after the restart", mb(index2)).baseline(mb(index0)));
    t.row(Row::new("  mapped log pages (RssFile), reported apart", mb(file1)));
    t.row(Row::new("  SET rate", rate(per_sec(writes as f64, took))));
    Ok(())
}

/// 2. `pairs` SET+DEL pairs on distinct keys, then a compaction keeping
///    one version: the index must return to where it started.
fn set_del(dir: &Path, pairs: u64, t: &mut Table) -> Result<(), Box<dyn Error>> {
    let args = [PERIODIC, &["--retain-versions", "1", "--version-check-horizon", SET_DEL_HORIZON]].concat();
    let server = Server::start(dir, &args)?;
    sets(&server, 1_000, 1)?;
    let index0 = server.metric("logkv_index_bytes")?;
    progress(format!("  {} SET+DEL pairs", thousands(pairs as f64)));
    // Each pair on one connection, the DEL after the SET's reply: pairs
    // split over two connections could apply the DEL first.
    drive(server.resp, CLIENTS, pairs, |i, call| {
        // Key u64::MAX - n never meets the warm-up's key 0.
        let k = key(u64::MAX - i);
        call(&[b"SET", &k, &value(i)])?;
        call(&[b"DEL", &k])
    })?;
    let index1 = server.metric("logkv_index_bytes")?;
    let report = server.compact()?;
    let index2 = server.metric("logkv_index_bytes")?;
    server.stop()?;
    let n = thousands(pairs as f64);
    t.row(Row::new(format!("{n} SET+DEL pairs: index before compaction"), mb(index1)).baseline(mb(index0)));
    t.row(
        Row::new("  index after compaction, above the start", mb(index2 - index0))
            .baseline(mb(index0))
            .target("<= 2 MB", Target::AtMost(2.0 * MB), index2 - index0),
    );
    t.note(format!(
        "set+del: --retain-versions 1 --version-check-horizon {SET_DEL_HORIZON}; compaction said: {report}"
    ));
    Ok(())
}

/// 3. `keys * 10` SETs over `keys` keys: the index costs the key and at
///    most 32 bytes per live key.
fn overwrites(dir: &Path, keys: u64, t: &mut Table) -> Result<(), Box<dyn Error>> {
    let server = Server::start(dir, PERIODIC)?;
    progress(format!("  {} SETs over {} keys", thousands(keys as f64 * 10.0), thousands(keys as f64)));
    sets(&server, keys, keys)?;
    let once = server.metric("logkv_index_bytes")?;
    sets(&server, keys * 9, keys)?;
    let index = server.metric("logkv_index_bytes")?;
    server.stop()?;
    let per_key = index / keys as f64;
    let target = (KEY_BYTES + 32) as f64;
    t.row(
        Row::new(
            format!("{} SETs over {} keys: index/key", thousands(keys as f64 * 10.0), thousands(keys as f64)),
            format!("{per_key:.1} B"),
        )
        .baseline(format!("{:.1} B", once / keys as f64))
        .ratio(times(index / once))
        .target("<= 16 + 32 = 48 B", Target::AtMost(target), per_key),
    );
    t.note("overwrites: baseline = the same index after each key's first write");
    Ok(())
}

/// `writes` SETs of distinct keys on a fresh server started with `mode`:
/// log bytes per SET, as `logkv inspect` counts them once it stopped.
fn log_bytes_per_set(dir: &Path, mode: &[&str], writes: u64) -> Result<f64, Box<dyn Error>> {
    let server = Server::start(dir, mode)?;
    progress(format!("  {} SETs of distinct keys, {}", thousands(writes as f64), mode.join(" ")));
    sets(&server, writes, u64::MAX)?;
    server.stop()?;
    Ok(log_data_bytes(dir)? as f64 / writes as f64)
}

/// 4. and 5. `writes` SETs of distinct keys: log bytes per SET in `always`
///    (the default) and `periodic` mode; then random GETs on the first
///    with value checksums on and off, alternating.
fn log_and_reads(dirs: [&Path; 2], writes: u64, gets: u64, t: &mut Table) -> Result<(), Box<dyn Error>> {
    let payload = (KEY_BYTES + VALUE_BYTES) as f64;
    for (dir, mode) in dirs.into_iter().zip([ALWAYS, PERIODIC]) {
        let per_set = log_bytes_per_set(dir, mode, writes)?;
        t.row(
            Row::new(
                format!("log bytes per SET, {} (16 B key, 100 B value, 50 clients)", mode[1]),
                format!("{per_set:.0} B"),
            )
            .baseline(format!("{payload:.0} B"))
            .ratio(times(per_set / payload))
            .target("<= 200 B", Target::AtMost(200.0), per_set),
        );
    }
    let dir = dirs[0];
    let get = |s: &Server| {
        drive(s.resp, CLIENTS, gets, |i, call| call(&[b"GET", &key(crate::data::mix(i) % writes)]))
    };
    let (mut on, mut off) = (Runs::default(), Runs::default());
    for round in 0..3 {
        progress(format!("  random GETs, round {}: checksums on, then off", round + 1));
        for (verify, runs) in [("true", &mut on), ("false", &mut off)] {
            let server = Server::start(dir, &["--verify-checksums", verify])?;
            get(&server)?; // warm the page cache
            runs.push(get(&server)?);
            server.stop()?;
        }
    }
    t.row(checksum_cost_row("random GET/s, value checksums on", gets as f64, &on, &off));
    t.note(format!(
        "reads: {} GETs per run over {} keys, median of 3 runs each, on/off alternating; ranges on {} / off {}",
        thousands(gets as f64),
        thousands(writes as f64),
        on.rate_range(gets as f64),
        off.rate_range(gets as f64)
    ));
    Ok(())
}

/// Runs the section.
pub fn run(ctx: &mut Ctx) -> Result<Table, Box<dyn Error>> {
    let s = &ctx.sizes;
    let mut t = Table::default();
    let dir = |name: &str| -> std::io::Result<std::path::PathBuf> {
        let d = ctx.root.join(name);
        fresh(&d)?;
        Ok(d)
    };
    one_key(&dir("one-key")?, s.footprint_writes, &mut t)?;
    set_del(&dir("set-del")?, s.footprint_writes, &mut t)?;
    overwrites(&dir("overwrites")?, s.footprint_writes, &mut t)?;
    let (always, periodic) = (dir("distinct-always")?, dir("distinct-periodic")?);
    log_and_reads([&always, &periodic], s.footprint_writes / 5, s.footprint_writes / 2, &mut t)?;
    for d in ["one-key", "set-del", "overwrites", "distinct-always", "distinct-periodic"] {
        fresh(&ctx.root.join(d))?;
    }
    t.note(format!(
        "logkv serve (release) with {CLIENTS} RESP connections, each waiting for its reply; \
         memory from /proc/PID/status, index from /metrics, log bytes from logkv inspect"
    ));
    Ok(t)
}
