//! What `logkv serve` runs with: one struct read from a TOML file, then
//! overridden by environment variables and flags (the CLI applies those;
//! flags win). Every field has a default, so an empty file is a valid
//! configuration and `logkv serve` alone runs the embedded default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use logkv_nats::NatsConfig;
use logkv_runtime::apply::Watched;
use logkv_runtime::types::StreamId;
use logkv_store::{Durability, Limits, LogConfig, RecoveryMode, StoreOptions};
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
    /// The log: `file` (the node's own file log, the embedded default) or
    /// `nats://HOST:PORT[,HOST:PORT...]`, a JetStream stream shared with
    /// other nodes (docs/distributed.md).
    pub log: String,
    /// The JetStream stream's name (with `nats://`).
    pub log_stream: String,
    /// Replicas of the JetStream stream when this node creates it.
    pub replicas: usize,
    /// Streams this node applies (with `nats://`): empty = every stream;
    /// otherwise it downloads only what these need.
    #[serde(deserialize_with = "stream_ids")]
    pub watch: Vec<StreamId>,
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
            log: "file".into(),
            log_stream: "logkv".into(),
            replicas: 1,
            watch: Vec::new(),
        }
    }
}

fn stream_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StreamId, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
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
            ..StoreOptions::default()
        }
    }

    /// The shared log to follow: `None` for the node's own file log.
    pub fn shared_log(&self) -> Result<Option<NatsConfig>, logkv_nats::ConfigError> {
        if self.log == "file" {
            return Ok(None);
        }
        NatsConfig::new(&self.log, &self.log_stream, self.replicas).map(Some)
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
}
