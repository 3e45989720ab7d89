//! The scrubber of a running node: passes of `Store::scrub` on the
//! blocking pool, one after another with `scrub_interval_secs` between
//! them, reading at most `scrub_bytes_per_sec` (a token bucket), stopped
//! at shutdown between two reads.
//!
//! What it finds is kept in [`ScrubStatus`]: each damage is logged at
//! error level once, when first found, and stays listed while passes
//! keep finding it (a repaired or compacted-away file drops out at the
//! end of the next pass). The node is *degraded* while anything is
//! listed, and not ready (`/readyz` 503) while a listed damage makes
//! reads fail: the index points into it, so some key's current value
//! cannot be read. On a node of a shared log, damage in sealed segments
//! is repaired from the stream after each pass, and checked again at once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use logkv_log::Segment;
use logkv_runtime::repair::{repair_records, DamagedRange};
use logkv_store::{Damage, Throttle};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::metrics::Sample;
use crate::repair::StreamEntries;
use crate::shared::Shared;

/// Longest sleep between two looks at the shutdown signal.
const SLEEP_SLICE: Duration = Duration::from_millis(100);

/// What the scrubber found and did, for `/metrics`, `admin_nodeInfo`,
/// `/readyz` and repair.
#[derive(Debug, Default)]
pub struct ScrubStatus {
    findings: Mutex<Findings>,
    bytes: AtomicU64,
    passes: AtomicU64,
    last_pass_end_ms: AtomicU64,
}

/// Damage by file and first damaged byte.
#[derive(Debug, Default)]
struct Findings {
    listed: BTreeMap<(PathBuf, u64), Damage>,
    /// Keys of what the running pass found so far.
    this_pass: Vec<(PathBuf, u64)>,
}

impl ScrubStatus {
    /// The damage listed now (the seam repair uses): what the last
    /// complete pass found, and what the running one found since.
    pub fn damage(&self) -> Vec<Damage> {
        self.findings.lock().listed.values().cloned().collect()
    }

    /// Whether any damage is listed.
    pub fn degraded(&self) -> bool {
        !self.findings.lock().listed.is_empty()
    }

    /// Whether a listed damage makes reads of current values fail.
    pub fn reads_fail(&self) -> bool {
        self.findings.lock().listed.values().any(|d| d.reads_fail)
    }

    fn found(&self, damage: Damage) {
        let key = (damage.file.clone(), damage.offsets.start);
        let mut findings = self.findings.lock();
        findings.this_pass.push(key.clone());
        if !findings.listed.contains_key(&key) {
            tracing::error!(
                file = %damage.file.display(),
                offset = damage.offsets.start,
                end = damage.offsets.end,
                positions = ?damage.positions,
                reads_fail = damage.reads_fail,
                "scrub found damage: {}",
                damage.detail
            );
        }
        findings.listed.insert(key, damage);
    }

    fn pass_started(&self) {
        self.findings.lock().this_pass.clear();
    }

    /// Forgets what the finished pass no longer found.
    fn pass_ended(&self) {
        let mut findings = self.findings.lock();
        let Findings { listed, this_pass } = &mut *findings;
        listed.retain(|key, _| this_pass.contains(key));
        self.passes.fetch_add(1, Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.last_pass_end_ms.store(now.as_millis() as u64, Relaxed);
    }

    /// The series `/metrics` shows.
    pub fn samples(&self) -> Vec<Sample> {
        let (damage, files) = {
            let findings = self.findings.lock();
            let mut files: Vec<_> = findings.listed.keys().map(|(file, _)| file).collect();
            files.dedup();
            (findings.listed.len(), files.len())
        };
        vec![
            ("logkv_scrub_damage", "gauge", "damaged byte ranges the scrubber lists", damage as f64),
            ("logkv_scrub_damaged_files", "gauge", "files the scrubber found damage in", files as f64),
            (
                "logkv_scrub_reads_failing",
                "gauge",
                "1 while listed damage holds a key's current version (reads of it fail)",
                self.reads_fail() as u8 as f64,
            ),
            (
                "logkv_scrub_bytes_total",
                "counter",
                "bytes the scrubber read",
                self.bytes.load(Relaxed) as f64,
            ),
            (
                "logkv_scrub_passes_total",
                "counter",
                "scrub passes completed",
                self.passes.load(Relaxed) as f64,
            ),
            (
                "logkv_scrub_last_pass_end_timestamp_seconds",
                "gauge",
                "when the last complete scrub pass ended (Unix time; 0: none yet)",
                self.last_pass_end_ms.load(Relaxed) as f64 / 1000.0,
            ),
        ]
    }

    /// The `scrub` object of `admin_nodeInfo`.
    pub fn json(&self) -> Value {
        let damage: Vec<Value> = self
            .damage()
            .iter()
            .map(|d| {
                json!({
                    "file": d.file.display().to_string(),
                    "offsets": [d.offsets.start, d.offsets.end],
                    "positions": d.positions.as_ref().map(|p| [*p.start(), *p.end()]),
                    "detail": d.detail,
                    "readsFail": d.reads_fail,
                })
            })
            .collect();
        let last = self.last_pass_end_ms.load(Relaxed);
        json!({
            "passes": self.passes.load(Relaxed),
            "bytes": self.bytes.load(Relaxed),
            "lastPassEndMs": (last > 0).then_some(last),
            "readsFail": self.reads_fail(),
            "damage": damage,
        })
    }
}

/// Runs passes until shutdown (nothing at all if `scrub_bytes_per_sec` is 0).
pub async fn run(shared: Arc<Shared>) {
    if shared.config.scrub_bytes_per_sec == 0 {
        return;
    }
    let interval = Duration::from_secs(shared.config.scrub_interval_secs);
    loop {
        let pass_shared = shared.clone();
        let repaired = tokio::task::spawn_blocking(move || {
            pass(&pass_shared);
            repair(&pass_shared)
        })
        .await
        .unwrap_or(false);
        if repaired {
            // Check the repaired bytes at once rather than an interval later.
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shared.shutdown.cancelled() => return,
        }
    }
}

/// One pass, paced by a token bucket, stopped at shutdown.
fn pass(shared: &Shared) {
    let status = &shared.metrics.scrub;
    let shutdown = &shared.shutdown;
    let mut throttle = Throttle::new(shared.config.scrub_bytes_per_sec);
    let mut pace = |bytes: u64| {
        let until = Instant::now() + throttle.take(bytes, Instant::now());
        while let Some(left) = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            if shutdown.is_cancelled() {
                return false;
            }
            std::thread::sleep(left.min(SLEEP_SLICE));
        }
        status.bytes.fetch_add(bytes, Relaxed);
        !shutdown.is_cancelled()
    };
    status.pass_started();
    match shared.node.store().scrub(&mut pace, &mut |damage| status.found(damage)) {
        Ok(report) if report.complete => {
            status.pass_ended();
            tracing::debug!(files = report.files, bytes = report.bytes, "scrub pass done");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "scrub pass failed"),
    }
}

/// On a node of a shared log, writes the damaged records of sealed
/// segments that the scrubber lists again from the stream, byte for byte
/// (docs/distributed.md, "Repair"). Returns whether anything was repaired.
/// What cannot be reproduced stays listed, and the operator is told how
/// to rebuild the node.
fn repair(shared: &Shared) -> bool {
    let Some(replica) = &shared.replica else { return false };
    let dir = &shared.config.store.data_dir;
    let damaged: Vec<DamagedRange> = shared
        .metrics
        .scrub
        .damage()
        .into_iter()
        .filter(|d| d.file.parent() == Some(dir.as_path()))
        .filter_map(|d| {
            let segment = Segment::parse_name(d.file.file_name()?.to_str()?)?;
            Some(DamagedRange { segment, offset: d.offsets.start, detail: d.detail })
        })
        .collect();
    let source = StreamEntries::new(replica.log(), shared.config.watched());
    let options = shared.config.node_options();
    let mut repaired = false;
    for range in &damaged {
        match repair_records(&options, dir, std::slice::from_ref(range), &source) {
            Ok(report) => {
                crate::repair::log_repaired(&report);
                repaired = true;
            }
            Err(e) => tracing::error!(
                error = %e,
                "cannot repair the damage from the shared log; rebuild this node from another node's \
                 export: logkv repair --from-export FILE (docs/distributed.md, \"Repair\")"
            ),
        }
    }
    repaired
}
