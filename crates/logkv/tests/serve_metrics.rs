//! The `/metrics` exposition of a real `logkv serve`, after RESP and
//! JSON-RPC traffic, passes `promtool check metrics` (Prometheus's own
//! parser and linter; Debian's `prometheus` package, which scripts/test.sh
//! installs: the test fails without it) and holds what the linter does not
//! check: `# HELP` and `# TYPE` for every family, no series twice, no gauge
//! named like a histogram's series, no counter that repeats a histogram's
//! `_count` or `_sum`, the `process_*` metrics with plausible values and
//! `logkv_build_info` with this build's version and commit.

mod rpc_support;
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use logkv_runtime::codec::native::Op;
use logkv_runtime::types::StreamId;
use rpc_support::{signer, Rpc};
use serde_json::json;
use server::{promtool_check, Server};

/// One sample line: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// An exposition read line by line: the `# HELP` and `# TYPE` of each
/// family and the samples. promtool has checked the syntax; this reads
/// what the checks below need and panics on anything else.
#[derive(Debug, Default)]
struct Exposition {
    help: BTreeSet<String>,
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut e = Exposition::default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(e.help.insert(name.to_string()), "two HELP lines for {name}");
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line {line:?}"));
                assert!(
                    e.types.insert(name.to_string(), kind.to_string()).is_none(),
                    "two TYPE lines for {name}"
                );
            } else {
                assert!(!line.starts_with('#'), "unexpected comment {line:?}");
                e.samples.push(sample(line));
            }
        }
        e
    }

    /// The family a sample belongs to: its name, or the histogram whose
    /// `_bucket`, `_sum` or `_count` it is.
    fn family<'a>(&self, name: &'a str) -> &'a str {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if self.types.get(base).map(String::as_str) == Some("histogram") {
                    return base;
                }
            }
        }
        name
    }

    /// The value of the one unlabelled sample `name`.
    fn value(&self, name: &str) -> f64 {
        let found: Vec<&Sample> = self.samples.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found[0].value
    }
}

/// `name{label="value",...} value` or `name value`.
fn sample(line: &str) -> Sample {
    let bad = || -> ! { panic!("bad sample line {line:?}") };
    let name_end = line.find(['{', ' ']).unwrap_or_else(|| bad());
    let name = line[..name_end].to_string();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(mut inner) = rest.strip_prefix('{') {
        while !inner.starts_with('}') {
            let (key, after) = inner.split_once("=\"").unwrap_or_else(|| bad());
            let mut value = String::new();
            let mut chars = after.char_indices();
            let close = loop {
                match chars.next().unwrap_or_else(|| bad()) {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().unwrap_or_else(|| bad()).1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            assert!(labels.insert(key.to_string(), value).is_none(), "label {key} twice in {line:?}");
            inner = after[close + 1..].strip_prefix(',').unwrap_or(&after[close + 1..]);
        }
        rest = &inner[1..];
    }
    let value = rest.trim().parse().unwrap_or_else(|_| bad());
    Sample { name, labels, value }
}

#[test]
fn metrics_pass_promtool_and_name_every_family_once() {
    let server = Server::builder().start();
    let rpc = Rpc::new(&server);
    rpc.submit(&signer(1), vec![(StreamId([1; 32]), b"k", Op::Put(b"v".to_vec().into()))]);
    rpc.error("no_such_method", json!([]));
    assert_eq!(rpc.redis(&["SET", "a", "b"]), "+OK\r\n");
    assert_eq!(rpc.redis(&["GET", "a"]), "$1\r\nb\r\n");
    let (status, text) = rpc.get("/metrics");
    assert_eq!(status, 200);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();

    promtool_check(&text);
    let e = Exposition::parse(&text);
    let mut series = BTreeSet::new();
    for s in &e.samples {
        let family = e.family(&s.name);
        assert!(e.help.contains(family), "{} has no HELP", s.name);
        assert!(e.types.contains_key(family), "{} has no TYPE", s.name);
        assert!(series.insert((&s.name, &s.labels)), "{} {:?} appears twice", s.name, s.labels);
    }
    for (name, kind) in &e.types {
        assert!(e.help.contains(name), "{name} has a TYPE but no HELP");
        if kind != "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                assert!(!name.ends_with(suffix), "the {kind} {name} is named like a histogram's series");
            }
        }
        if kind == "histogram" {
            // What a histogram counts and sums is its `_count` and `_sum`,
            // not counters of their own.
            let stem = name.trim_end_matches("_seconds").trim_end_matches("_duration");
            for twin in [format!("{name}_total"), format!("{stem}s_total"), format!("{stem}_seconds_total")] {
                assert!(!e.types.contains_key(&twin), "{twin} repeats the histogram {name}");
            }
        }
    }
    // The traffic above shows in families of both protocols.
    assert!(e
        .samples
        .iter()
        .any(|s| s.name == "logkv_rpc_call_seconds_count" && s.labels["method"] == "kv_submit"));
    assert!(e
        .samples
        .iter()
        .any(|s| s.name == "logkv_resp_command_seconds_count" && s.labels["command"] == "get"));

    for (name, kind) in [
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        assert_eq!(e.types.get(name).map(String::as_str), Some(kind), "{name}");
    }
    let rss = e.value("process_resident_memory_bytes");
    assert!(rss > 0.0 && e.value("process_virtual_memory_bytes") >= rss);
    // At least the two listeners and the log's segment.
    let open = e.value("process_open_fds");
    assert!(open >= 3.0 && open <= e.value("process_max_fds"), "{open} open fds");
    let started = e.value("process_start_time_seconds");
    // /proc counts from a boot time in whole seconds: a second of slack.
    assert!(started <= now + 1.0 && started > now - 3600.0, "started at {started}, now is {now}");

    let info: Vec<&Sample> = e.samples.iter().filter(|s| s.name == "logkv_build_info").collect();
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0].value, 1.0);
    assert_eq!(info[0].labels["version"], env!("CARGO_PKG_VERSION"));
    let commit = &info[0].labels["commit"];
    let head = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok();
    match head.filter(|h| h.status.success()) {
        // Unless the build was told another commit, it is the checkout's.
        Some(head) if std::env::var_os("LOGKV_BUILD_COMMIT").is_none() => {
            assert_eq!(commit, String::from_utf8_lossy(&head.stdout).trim())
        }
        _ => assert!(!commit.is_empty()),
    }
    server.stop_cleanly();
}
