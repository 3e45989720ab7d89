//! Counters and latency histograms of the server, and their rendering in
//! the Prometheus text format for `GET /metrics`. Node and log figures
//! (applied position, index bytes, fsyncs, the last checkpoint, superseded
//! bytes) and the process's own ([`process`]) are read at render time, so
//! nothing on the hot path updates them twice.
//!
//! Every family has `# HELP` and `# TYPE`; a figure is exported once (the
//! number and total time of fsyncs are the `_count` and `_sum` of their
//! histogram, not series of their own); gauges holding the last
//! checkpoint's or compaction's figures say `last` in their names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use logkv_runtime::divergence::{DivergenceCheck, Peer};
use logkv_runtime::node::Node;
use logkv_store::CompactionReport;
use parking_lot::{Mutex, RwLock};

use crate::replica::Replica;
use crate::scrub::ScrubStatus;
use crate::shared_log::ServerLog;

pub mod process;

/// One unlabelled series: name, type, help text and value.
pub type Sample = (&'static str, &'static str, &'static str, f64);

/// The version this server was built from, and the commit (see build.rs).
const VERSION: &str = env!("CARGO_PKG_VERSION");
const COMMIT: &str = env!("LOGKV_BUILD_COMMIT");

/// Upper bounds of the latency buckets, in seconds.
const BOUNDS: [f64; 17] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Some(i) = BOUNDS.iter().position(|&b| seconds <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(took.as_nanos() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, bucket) in BOUNDS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_nanos.load(Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Requests and errors of one command or method.
#[derive(Debug, Default)]
pub struct Series {
    errors: AtomicU64,
    latency: Histogram,
}

/// One series per name (RESP command or JSON-RPC method), created on first
/// use. Names come from the server's own tables, never from a client, so
/// the set stays small.
#[derive(Debug, Default)]
struct Family(RwLock<BTreeMap<&'static str, Arc<Series>>>);

impl Family {
    fn get(&self, name: &'static str) -> Arc<Series> {
        if let Some(s) = self.0.read().get(name) {
            return s.clone();
        }
        self.0.write().entry(name).or_default().clone()
    }

    /// Renders the latency histogram and error counter of `what` (e.g.
    /// "RESP commands"), one series per `label`.
    fn render(&self, out: &mut String, metric: &str, label: &str, what: &str) {
        let family = self.0.read();
        header(out, &format!("{metric}_seconds"), "histogram", &format!("latency of {what} by {label}"));
        for (name, s) in family.iter() {
            s.latency.render(out, &format!("{metric}_seconds"), &format!("{label}=\"{name}\""));
        }
        header(
            out,
            &format!("{metric}_errors_total"),
            "counter",
            &format!("{what} answered with an error, by {label}"),
        );
        for (name, s) in family.iter() {
            let _ = writeln!(out, "{metric}_errors_total{{{label}=\"{name}\"}} {}", s.errors.load(Relaxed));
        }
    }
}

/// Everything `/metrics` reports about the server itself.
#[derive(Debug, Default)]
pub struct Metrics {
    resp: Family,
    rpc: Family,
    /// Open connections.
    pub connections: AtomicI64,
    /// Connections refused because `max_connections` were open.
    pub rejected_connections: AtomicU64,
    /// Connections closed for idling past `idle_timeout_secs`.
    pub idle_closed: AtomicU64,
    /// Connections closed because a request (a RESP request, an HTTP body)
    /// did not arrive whole within `request_timeout_secs`.
    pub request_timeouts: AtomicU64,
    /// RESP connections closed on a protocol error.
    pub protocol_errors: AtomicU64,
    /// Checkpoints this process wrote (each compaction ends with one).
    pub checkpoints: AtomicU64,
    /// Compactions this process ran.
    pub compactions: AtomicU64,
    /// What the newest of them did (the store keeps no record of it).
    pub last_compaction: Mutex<Option<CompactionReport>>,
    /// What the scrubber found and read.
    pub scrub: ScrubStatus,
}

impl Metrics {
    /// Records a RESP command that took `took`.
    pub fn resp(&self, command: &'static str, took: Duration, failed: bool) {
        Self::record(&self.resp, command, took, failed);
    }

    /// Records a JSON-RPC call that took `took`.
    pub fn rpc(&self, method: &'static str, took: Duration, failed: bool) {
        Self::record(&self.rpc, method, took, failed);
    }

    fn record(family: &Family, name: &'static str, took: Duration, failed: bool) {
        let s = family.get(name);
        s.latency.observe(took);
        if failed {
            s.errors.fetch_add(1, Relaxed);
        }
    }

    /// Counts a checkpoint written.
    pub fn checkpointed(&self) {
        self.checkpoints.fetch_add(1, Relaxed);
    }

    /// Counts a compaction (and the checkpoint that ends it).
    pub fn compacted(&self, report: &CompactionReport) {
        self.compactions.fetch_add(1, Relaxed);
        self.checkpoints.fetch_add(1, Relaxed);
        *self.last_compaction.lock() = Some(report.clone());
    }

    /// The Prometheus text exposition of these metrics, of `node` and of
    /// the shared log it follows, if any.
    pub fn render(&self, node: &Node, replica: Option<&Replica<ServerLog>>) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "logkv_build_info",
            "gauge",
            "1, labelled with the version and commit logkv was built from",
        );
        let _ = writeln!(
            out,
            "logkv_build_info{{version=\"{}\",commit=\"{}\"}} 1",
            label_value(VERSION),
            label_value(COMMIT)
        );
        self.resp.render(&mut out, "logkv_resp_command", "command", "RESP commands");
        self.rpc.render(&mut out, "logkv_rpc_call", "method", "JSON-RPC calls");
        let progress = node.replay_progress();
        let log = node.store().log().stats().snapshot();
        let segment_bytes: u64 = node.store().log().segments().iter().map(|(_, capacity)| capacity).sum();
        let gauges: [Sample; 14] = [
            ("logkv_connections", "gauge", "open client connections", self.connections.load(Relaxed) as f64),
            (
                "logkv_connections_rejected_total",
                "counter",
                "connections refused at max_connections",
                self.rejected_connections.load(Relaxed) as f64,
            ),
            (
                "logkv_connections_idle_closed_total",
                "counter",
                "connections closed after idling",
                self.idle_closed.load(Relaxed) as f64,
            ),
            (
                "logkv_requests_timed_out_total",
                "counter",
                "connections closed because a request did not arrive whole within request_timeout_secs",
                self.request_timeouts.load(Relaxed) as f64,
            ),
            (
                "logkv_resp_protocol_errors_total",
                "counter",
                "RESP connections closed on a protocol error",
                self.protocol_errors.load(Relaxed) as f64,
            ),
            (
                "logkv_applied_position",
                "gauge",
                "log position of the newest applied entry",
                progress.applied_position as f64,
            ),
            ("logkv_applied_version", "gauge", "newest version readers see", progress.applied_version as f64),
            (
                "logkv_index_bytes",
                "gauge",
                "bytes held by the in-memory index",
                node.store().index_bytes() as f64,
            ),
            (
                "logkv_index_entries",
                "gauge",
                "keys in the in-memory index, of every keyspace (live, deleted not yet compacted away, system)",
                node.store().index_entries() as f64,
            ),
            (
                "logkv_log_bytes_written_total",
                "counter",
                "bytes written to segment files",
                log.bytes_written as f64,
            ),
            ("logkv_log_segment_bytes", "gauge", "bytes of the log's segment files", segment_bytes as f64),
            (
                "logkv_checksum_failures_total",
                "counter",
                "reads refused because a version record failed its checksum",
                node.store().checksum_failures() as f64,
            ),
            (
                "logkv_entries_signed_total",
                "counter",
                "entries the node signed (one per group of local writes)",
                node.entries_signed() as f64,
            ),
            (
                "logkv_local_transactions_total",
                "counter",
                "transactions of the node's own clients",
                node.local_txs() as f64,
            ),
        ];
        let shared_log: Vec<Sample> = replica
            .map(|r| {
                vec![
                    (
                        "logkv_shared_log_through",
                        "gauge",
                        "shared-log position up to which everything is applied or not for this node",
                        r.through() as f64,
                    ),
                    (
                        "logkv_shared_log_received_bytes_total",
                        "counter",
                        "bytes received from the NATS servers",
                        r.log().received_bytes() as f64,
                    ),
                    (
                        "logkv_shared_log_misrouted_total",
                        "counter",
                        "shared-log messages dropped for being on the wrong subject",
                        r.log().misrouted() as f64,
                    ),
                    (
                        "logkv_shared_log_caught_up",
                        "gauge",
                        "1 once caught up with the shared log",
                        r.caught_up() as u8 as f64,
                    ),
                ]
            })
            .unwrap_or_default();
        let process = process::Process::read().map(|p| p.samples()).unwrap_or_default();
        let samples = gauges
            .into_iter()
            .chain(shared_log)
            .chain(self.maintenance(node))
            .chain(self.scrub.samples())
            .chain(process);
        for (name, kind, help, value) in samples {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        if let Some(r) = replica {
            divergence(&mut out, &r.digests().check());
        }
        let fsync_bounds: Vec<f64> = (0..log.sync_micros.len()).map(|i| (1u64 << i) as f64 / 1e6).collect();
        pow2_histogram(
            &mut out,
            ("logkv_log_fsync_duration_seconds", "fdatasync calls by duration"),
            &fsync_bounds,
            &log.sync_micros,
            log.sync_nanos as f64 / 1e9,
        );
        let bounds: Vec<f64> = (0..log.group_records.len()).map(|i| (1u64 << i) as f64).collect();
        pow2_histogram(
            &mut out,
            ("logkv_group_commit_records", "records made durable by one sync (group commit size)"),
            &bounds,
            &log.group_records,
            log.group_records_sum as f64,
        );
        pow2_histogram(
            &mut out,
            ("logkv_group_commit_bytes", "bytes made durable by one sync"),
            &bounds,
            &log.group_bytes,
            log.group_bytes_sum as f64,
        );
        out
    }

    /// Checkpoint and compaction figures: the newest checkpoint, the last
    /// compaction this process ran, and how much of the log is
    /// superseded (what the next compaction may reclaim).
    fn maintenance(&self, node: &Node) -> Vec<Sample> {
        let store = node.store();
        let checkpoint = store.last_checkpoint();
        let compaction = self.last_compaction.lock().clone();
        let mut out = vec![
            (
                "logkv_checkpoint_last_position",
                "gauge",
                "log position the newest checkpoint (written or loaded at open) includes; 0: none",
                checkpoint.as_ref().map_or(0.0, |c| c.position as f64),
            ),
            (
                "logkv_checkpoint_last_bytes",
                "gauge",
                "size of the newest checkpoint",
                checkpoint.as_ref().map_or(0.0, |c| c.bytes as f64),
            ),
            (
                "logkv_checkpoint_last_duration_seconds",
                "gauge",
                "time the newest checkpoint took",
                checkpoint.as_ref().map_or(0.0, |c| c.elapsed.as_secs_f64()),
            ),
            (
                "logkv_checkpoints_total",
                "counter",
                "checkpoints written (each compaction ends with one)",
                self.checkpoints.load(Relaxed) as f64,
            ),
            ("logkv_compactions_total", "counter", "compactions run", self.compactions.load(Relaxed) as f64),
            (
                "logkv_compaction_last_input_bytes",
                "gauge",
                "bytes of the files the last compaction replaced",
                compaction.as_ref().map_or(0.0, |c| c.input_bytes as f64),
            ),
            (
                "logkv_compaction_last_output_bytes",
                "gauge",
                "bytes of the compacted file the last compaction wrote",
                compaction.as_ref().map_or(0.0, |c| c.output_bytes as f64),
            ),
            (
                "logkv_compaction_last_duration_seconds",
                "gauge",
                "time the last compaction took",
                compaction.as_ref().map_or(0.0, |c| c.elapsed.as_secs_f64()),
            ),
            (
                "logkv_horizon_version",
                "gauge",
                "reads as of a version below this are answered compacted for every key",
                store.horizon() as f64,
            ),
        ];
        let (superseded, total) = store.dead_bytes();
        out.push((
            "logkv_log_superseded_bytes",
            "gauge",
            "log bytes superseded by newer versions since the last compaction",
            superseded as f64,
        ));
        out.push((
            "logkv_log_total_bytes",
            "gauge",
            "bytes of the log: the compacted file and every segment at capacity",
            total as f64,
        ));
        out
    }
}

/// A histogram from non-cumulative `counts` under the upper `bounds`
/// (the last bucket also holds everything larger, so it is `+Inf`).
/// The comparison of this node's state digests with its peers': the
/// mismatches counted, and per peer whether the newest comparison found
/// another state and the newest position both agreed on.
fn divergence(out: &mut String, check: &DivergenceCheck) {
    let name = "logkv_replica_digest_mismatches_total";
    header(out, name, "counter", "positions at which a peer's state digest differed from this node's");
    let _ = writeln!(out, "{name} {}", check.mismatches());
    if check.peers().is_empty() {
        return;
    }
    let labels = |peer: &str, p: &Peer| {
        format!("peer=\"{}\",peer_address=\"{}\"", label_value(peer), label_value(&p.address))
    };
    let name = "logkv_replica_digest_diverged";
    header(out, name, "gauge", "1 if the newest comparison with this peer found another state digest");
    for (peer, p) in check.peers() {
        let _ = writeln!(out, "{name}{{{}}} {}", labels(peer, p), p.diverged() as u8);
    }
    let name = "logkv_replica_digest_agreed_position";
    header(
        out,
        name,
        "gauge",
        "newest log position at which this peer's state digest equalled this node's; 0: none",
    );
    for (peer, p) in check.peers() {
        let _ = writeln!(out, "{name}{{{}}} {}", labels(peer, p), p.agreed.unwrap_or(0));
    }
}

fn pow2_histogram(out: &mut String, (name, help): (&str, &str), bounds: &[f64], counts: &[u64], sum: f64) {
    header(out, name, "histogram", help);
    let mut cumulative = 0;
    let last = counts.len().saturating_sub(1);
    for (bound, count) in bounds.iter().zip(counts).take(last) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    cumulative += counts.get(last).copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {cumulative}\n{name}_sum {sum}\n{name}_count {cumulative}"
    );
}

/// The `# HELP` and `# TYPE` lines that open a family (`help` is ours,
/// never a client's, and holds no backslash or newline to escape).
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// `value` escaped for a label value in the text format.
fn label_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
