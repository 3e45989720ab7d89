//! What `logkv serve` runs with: one struct read from a TOML file, then
//! overridden by environment variables and flags (the CLI applies those;
//! flags win). Every field has a default, so an empty file is a valid
//! configuration and `logkv serve` alone runs the embedded default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use logkv_runtime::apply::{Watched, DEFAULT_VERSION_CHECK_HORIZON};
use logkv_runtime::node::NodeOptions;

use crate::shared_log::LogChoice;
use logkv_runtime::types::StreamId;
use logkv_store::{Durability, Limits, LogConfig, MaintenanceOptions, RecoveryMode, Retention, StoreOptions};
use serde::Deserialize;

/// The server's configuration. Field names are the TOML keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// The node's data directory (file log, index, `node.key`).
    pub data_dir: PathBuf,
    /// Where the Redis protocol listens.
    pub resp_addr: String,
    /// Where HTTP (JSON-RPC, `kv_watch`, `/metrics`, `/healthz`, `/readyz`)
    /// listens.
    pub http_addr: String,
    /// `always`, `periodic` or `none` (docs/durability.md).
    pub durability: DurabilityName,
    /// `periodic`: longest time a write waits before it is synced.
    pub flush_interval_ms: u64,
    /// `periodic`: buffered bytes that trigger a sync before the interval.
    pub flush_size_bytes: usize,
    /// Capacity of each new segment file.
    pub segment_size_bytes: u64,
    /// What opening does with damage that is not a torn tail: `strict`
    /// refuses to open, `truncate` cuts the log there.
    pub recovery: RecoveryName,
    /// Longest key accepted.
    pub max_key_bytes: usize,
    /// Largest value accepted.
    pub max_value_bytes: usize,
    /// The stream RESP commands read and write (`0x` and 64 hex digits).
    #[serde(deserialize_with = "stream_id")]
    pub stream: StreamId,
    /// The node's signing key; `<data_dir>/node.key` when unset, created
    /// (mode 0600) on first start.
    pub key_file: Option<PathBuf>,
    /// Redis users for `AUTH` and the identities their writes are signed
    /// with (docs/server.md); without it every client writes as the node.
    pub users_file: Option<PathBuf>,
    /// Bearer token that administrative JSON-RPC calls must present; with
    /// none set, administrative calls are refused.
    pub admin_token: Option<String>,
    /// Connections (RESP and HTTP together) served at once; one more gets
    /// an error and is closed.
    pub max_connections: usize,
    /// Seconds a RESP connection may stay idle before it is closed; 0
    /// keeps idle connections forever (Redis's `timeout 0`).
    pub idle_timeout_secs: u64,
    /// Largest HTTP request body; a longer one is refused from its
    /// `Content-Length` or as soon as it grows past this, never buffered.
    pub max_request_bytes: usize,
    /// Bytes of writes the commit pipeline holds, queued or in flight;
    /// beyond that, writers wait and their connections are not read
    /// (backpressure).
    pub write_queue_bytes: usize,
    /// The log: `file` (the node's own file log, the embedded default),
    /// `nats://HOST:PORT[,HOST:PORT...]`, a JetStream stream shared with
    /// other nodes, or `file:DIR`, a file log of entries in DIR
    /// (docs/distributed.md).
    pub log: String,
    /// The JetStream stream's name (with `nats://`).
    pub log_stream: String,
    /// Replicas of the JetStream stream when this node creates it.
    pub replicas: usize,
    /// Streams this node applies (with `nats://`): empty = every stream;
    /// otherwise it downloads only what these need.
    #[serde(deserialize_with = "stream_ids")]
    pub watch: Vec<StreamId>,
    /// How many log positions back a transaction that checks versions may
    /// have read (docs/runtime.md): a protocol parameter, the same on every
    /// node of a log. Older ones fail with `VersionTooOld`, and compaction
    /// forgets deleted keys older than this.
    pub version_check_horizon: u64,
    /// Check every value's checksum when it is read (the default). Off
    /// serves bytes a flipped bit has changed: it exists to measure what
    /// checking costs, not for production.
    pub verify_checksums: bool,
    /// Newest versions of each key compaction keeps (at least 1); unset
    /// keeps every version, and compaction only rewrites (docs/compaction.md).
    pub retain_versions: Option<u32>,
    /// Every version written within this long stays readable (`"90s"`,
    /// `"30m"`, `"12h"`, `"7d"`); unset: no time window.
    #[serde(deserialize_with = "retain_duration")]
    pub retain_duration: Option<Duration>,
    /// Log bytes written between automatic checkpoints (0: only on demand).
    pub checkpoint_interval_bytes: u64,
    /// Share of superseded log bytes (above 0, at most 1) past which the
    /// log is compacted, when retention can drop something.
    pub compact_dead_ratio: f64,
    /// Logs smaller than this are not compacted automatically.
    pub compact_min_bytes: u64,
    /// Most bytes per second a compaction writes (0: no limit), so it
    /// leaves the disk to foreground writes.
    pub compact_bytes_per_sec: u64,
}

/// The durability mode's name, as configuration spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityName {
    /// Acknowledge after fdatasync.
    Always,
    /// Acknowledge from the buffer; sync by time and size.
    Periodic,
    /// Acknowledge once written to the OS; never sync.
    None,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let limits = Limits::default();
        let maintenance = MaintenanceOptions::default();
        ServeConfig {
            data_dir: PathBuf::from("./logkv-data"),
            resp_addr: "127.0.0.1:7379".into(),
            http_addr: "127.0.0.1:7380".into(),
            durability: DurabilityName::Always,
            flush_interval_ms: 1000,
            flush_size_bytes: 4 << 20,
            segment_size_bytes: LogConfig::default().segment_size_bytes,
            recovery: RecoveryName::Strict,
            max_key_bytes: limits.max_key_bytes,
            max_value_bytes: limits.max_value_bytes,
            stream: StreamId([0; 32]),
            key_file: None,
            users_file: None,
            admin_token: None,
            max_connections: 10_000,
            idle_timeout_secs: 300,
            max_request_bytes: 4 << 20,
            write_queue_bytes: logkv_runtime::pipeline::DEFAULT_QUEUE_BYTES,
            log: "file".into(),
            log_stream: "logkv".into(),
            replicas: 1,
            watch: Vec::new(),
            version_check_horizon: DEFAULT_VERSION_CHECK_HORIZON,
            verify_checksums: true,
            retain_versions: None,
            retain_duration: None,
            checkpoint_interval_bytes: maintenance.checkpoint_interval_bytes,
            compact_dead_ratio: maintenance.compact_dead_ratio,
            compact_min_bytes: maintenance.compact_min_bytes,
            compact_bytes_per_sec: maintenance.compact_bytes_per_sec,
        }
    }
}

fn stream_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StreamId, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

fn retain_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map(Some).map_err(serde::de::Error::custom)
}

/// A retention window as configuration spells it: a number and a unit,
/// `90s`, `30m`, `12h`, `7d` (humantime's syntax, so `1h 30m` too); zero
/// is refused, since a window must hold the newest writes.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration ({e}); write e.g. 90s, 30m, 12h or 7d"))?;
    if d.is_zero() {
        return Err(format!("{text:?} is no time at all; leave retain_duration unset for no time window"));
    }
    Ok(d)
}

fn stream_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<StreamId>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    texts.iter().map(|t| t.parse().map_err(serde::de::Error::custom)).collect()
}

/// The recovery mode's name, as configuration spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecoveryName {
    /// Refuse to open on mid-log corruption, naming file and offset.
    Strict,
    /// Cut the log at the first damaged frame.
    Truncate,
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`ServeConfig`].
    #[error("bad config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A setting whose value cannot work, whichever source gave it.
    #[error("bad setting {key}: {why}")]
    Invalid {
        /// The TOML key (the flag and variable are named after it).
        key: &'static str,
        /// What is wrong, with the value.
        why: String,
    },
}

impl ServeConfig {
    /// Reads a TOML file; keys it leaves out keep their defaults, unknown
    /// keys are an error (a typo must not be silently ignored).
    pub fn from_file(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })
    }

    /// Checks the values no type rules out, once file, environment and
    /// flags are merged, before anything is opened.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.retain_versions == Some(0) {
            return Err(ConfigError::Invalid {
                key: "retain_versions",
                why: "0: at least 1 (the newest version always stays); leave it unset to keep every version"
                    .into(),
            });
        }
        if self.version_check_horizon == 0 {
            return Err(ConfigError::Invalid {
                key: "version_check_horizon",
                why: "0: at least 1 (0 would refuse every transaction that checks versions)".into(),
            });
        }
        let ratio = self.compact_dead_ratio;
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Err(ConfigError::Invalid {
                key: "compact_dead_ratio",
                why: format!("{ratio}: a share of the log's bytes, above 0 and at most 1"),
            });
        }
        Ok(())
    }

    /// The node's key file.
    pub fn key_path(&self) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| self.data_dir.join("node.key"))
    }

    /// The store options this configuration asks for.
    pub fn store_options(&self) -> StoreOptions {
        let durability = match self.durability {
            DurabilityName::Always => Durability::Always,
            DurabilityName::Periodic => Durability::Periodic {
                flush_interval: Duration::from_millis(self.flush_interval_ms),
                flush_size_bytes: self.flush_size_bytes,
            },
            DurabilityName::None => Durability::None,
        };
        StoreOptions {
            log: LogConfig {
                segment_size_bytes: self.segment_size_bytes,
                durability,
                recovery: match self.recovery {
                    RecoveryName::Strict => RecoveryMode::Strict,
                    RecoveryName::Truncate => RecoveryMode::TruncateAtCorruption,
                },
            },
            limits: Limits {
                max_key_bytes: self.max_key_bytes,
                max_value_bytes: self.max_value_bytes,
                ..Limits::default()
            },
            retention: Retention {
                versions: self.retain_versions,
                duration: self.retain_duration,
                tombstone_horizon: Some(self.version_check_horizon),
            },
            maintenance: MaintenanceOptions {
                checkpoint_interval_bytes: self.checkpoint_interval_bytes,
                compact_dead_ratio: self.compact_dead_ratio,
                compact_min_bytes: self.compact_min_bytes,
                compact_bytes_per_sec: self.compact_bytes_per_sec,
            },
            verify_checksums: self.verify_checksums,
            ..StoreOptions::default()
        }
    }

    /// The node options this configuration asks for.
    pub fn node_options(&self) -> NodeOptions {
        NodeOptions {
            store: self.store_options(),
            watched: self.watched(),
            version_check_horizon: self.version_check_horizon,
        }
    }

    /// The shared log to follow: `None` for the node's own file log.
    pub fn shared_log(&self) -> Result<Option<LogChoice>, logkv_nats::ConfigError> {
        LogChoice::parse(&self.log, &self.log_stream, self.replicas)
    }

    /// The streams this node applies.
    pub fn watched(&self) -> Watched {
        if self.watch.is_empty() {
            Watched::All
        } else {
            Watched::Only(self.watch.iter().copied().collect())
        }
    }

    /// How long a RESP connection may stay idle.
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_secs > 0).then(|| Duration::from_secs(self.idle_timeout_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default_and_unknown_keys_are_refused() {
        let c: ServeConfig = toml::from_str("").unwrap();
        assert_eq!(c.resp_addr, "127.0.0.1:7379");
        assert_eq!(c.durability, DurabilityName::Always);
        let c: ServeConfig = toml::from_str("durability = \"periodic\"\nflush_interval_ms = 5").unwrap();
        assert_eq!(c.durability, DurabilityName::Periodic);
        let e = toml::from_str::<ServeConfig>("resp_adr = \"x\"").unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
        let e = toml::from_str::<ServeConfig>("stream = \"0x12\"").unwrap_err().to_string();
        assert!(e.contains("stream"), "{e}");
    }

    #[test]
    fn retention_and_maintenance_keys_reach_the_store_options() {
        let c: ServeConfig = toml::from_str(
            "retain_versions = 3\nretain_duration = \"7d\"\ncheckpoint_interval_bytes = 0\n\
             compact_dead_ratio = 0.25\ncompact_min_bytes = 1024\ncompact_bytes_per_sec = 0",
        )
        .unwrap();
        c.validate().unwrap();
        let o = c.store_options();
        assert_eq!(o.retention.versions, Some(3));
        assert_eq!(o.retention.duration, Some(Duration::from_secs(7 * 86_400)));
        let m = o.maintenance;
        assert_eq!((m.checkpoint_interval_bytes, m.compact_min_bytes, m.compact_bytes_per_sec), (0, 1024, 0));
        assert_eq!(m.compact_dead_ratio, 0.25);
        let defaults = ServeConfig::default().store_options();
        assert_eq!(defaults.maintenance, MaintenanceOptions::default());
        assert!(!defaults.retention.drops_history());
    }

    #[test]
    fn the_version_check_horizon_reaches_the_node_options() {
        assert_eq!(
            ServeConfig::default().node_options().version_check_horizon,
            DEFAULT_VERSION_CHECK_HORIZON
        );
        let c: ServeConfig = toml::from_str("version_check_horizon = 4096").unwrap();
        c.validate().unwrap();
        assert_eq!(c.node_options().version_check_horizon, 4096);
    }

    #[test]
    fn durations_take_a_unit_and_bad_values_name_their_key() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        for bad in ["90", "7 days ago", "", "0s", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
        let e = toml::from_str::<ServeConfig>("retain_duration = \"soon\"").unwrap_err().to_string();
        assert!(e.contains("retain_duration") && e.contains("not a duration"), "{e}");
        let invalid =
            |text: &str| toml::from_str::<ServeConfig>(text).unwrap().validate().unwrap_err().to_string();
        assert!(invalid("retain_versions = 0").contains("bad setting retain_versions: 0"));
        assert!(invalid("version_check_horizon = 0").contains("bad setting version_check_horizon: 0"));
        for ratio in ["0.0", "1.5", "-0.1", "nan"] {
            let e = invalid(&format!("compact_dead_ratio = {ratio}"));
            assert!(e.contains("bad setting compact_dead_ratio"), "{e}");
        }
        let e = toml::from_str::<ServeConfig>("retain_versions = -1").unwrap_err().to_string();
        assert!(e.contains("retain_versions"), "{e}");
    }
}
