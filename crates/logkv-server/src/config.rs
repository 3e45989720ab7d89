//! logkv's configuration model: every setting is declared once, as a field
//! of [`StoreSettings`] (what opening a data directory needs, shared by
//! every command), [`NatsSettings`] (how the NATS connection is secured,
//! shared by the commands that open a shared log) or [`ServeConfig`] (what
//! `logkv serve` adds). The field's
//! name is its key in the TOML file, its doc comment the flag's help, its
//! `#[arg]` the flag, `LOGKV_` and the key in capitals its environment
//! variable, and [`Default`] its default.
//!
//! [`load`] layers the sources with figment: defaults < the TOML file <
//! environment variables < flags. Flags and variables are parsed by the
//! same clap parser, so a setting accepts the same text from both, and an
//! error names the setting and the source the bad value came from.
//! [`Loaded::describe`] is `logkv serve --print-config`: the effective
//! value of every setting and where it came from.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use logkv_log::format::{FRAME_OVERHEAD, MAX_SEGMENT_BYTES, SEGMENT_HEADER_LEN};
use logkv_runtime::apply::{Watched, DEFAULT_VERSION_CHECK_HORIZON};
use logkv_runtime::node::NodeOptions;
use logkv_runtime::quota::Quotas;
use logkv_runtime::types::StreamId;
use logkv_store::{
    Durability, DurabilityMode, Limits, LogConfig, MaintenanceOptions, RecoveryMode, Retention, StoreOptions,
};
use serde::{Deserialize, Serialize};

use logkv_nats::{Credentials, NatsConfig};

use crate::shared_log::LogChoice;

/// The configuration file read when neither `--config` nor `LOGKV_CONFIG`
/// names one, if it exists (the packaged service's file).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/logkv/logkv.toml";

/// Settings whose values `--print-config` hides.
const SECRETS: [&str; 3] = ["admin_token", "nats_password", "nats_token"];

/// Prefix of every setting's environment variable.
const ENV_PREFIX: &str = "LOGKV_";

/// The smallest segment the log accepts: a header and one empty frame.
const MIN_SEGMENT_BYTES: u64 = SEGMENT_HEADER_LEN + FRAME_OVERHEAD as u64;

/// How a data directory is opened: the settings every command that opens
/// one shares (flags accepted before or after the subcommand).
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
#[command(next_help_heading = "Store options")]
pub struct StoreSettings {
    /// The data directory (file log, index, node.key).
    #[arg(long, global = true, value_name = "DIR", default_value_os_t = StoreSettings::default().data_dir)]
    pub data_dir: PathBuf,
    /// When a write is acknowledged (docs/durability.md).
    #[arg(long, global = true, value_enum, default_value_t = StoreSettings::default().durability)]
    pub durability: DurabilityMode,
    /// `periodic`: longest time in milliseconds a write waits before it is
    /// synced.
    #[arg(long, global = true, value_name = "MS", default_value_t = StoreSettings::default().flush_interval_ms)]
    pub flush_interval_ms: u64,
    /// `periodic`: buffered bytes that trigger a sync before the interval
    /// ends.
    #[arg(long, global = true, value_name = "BYTES", default_value_t = StoreSettings::default().flush_size_bytes)]
    pub flush_size_bytes: usize,
    /// Capacity of each new segment file.
    #[arg(
        long,
        global = true,
        value_name = "BYTES",
        default_value_t = StoreSettings::default().segment_size_bytes,
        value_parser = clap::value_parser!(u64).range(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES),
    )]
    pub segment_size_bytes: u64,
    /// What opening does with damage that is not a torn tail: `strict`
    /// refuses to open, `truncate` cuts the log there.
    #[arg(long, global = true, value_enum, default_value_t = StoreSettings::default().recovery)]
    pub recovery: RecoveryMode,
    /// Longest key accepted.
    #[arg(long, global = true, value_name = "BYTES", default_value_t = StoreSettings::default().max_key_bytes)]
    pub max_key_bytes: usize,
    /// Largest value accepted.
    #[arg(long, global = true, value_name = "BYTES", default_value_t = StoreSettings::default().max_value_bytes)]
    pub max_value_bytes: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        let limits = Limits::default();
        StoreSettings {
            data_dir: PathBuf::from("./logkv-data"),
            durability: DurabilityMode::Always,
            flush_interval_ms: 1000,
            flush_size_bytes: 4 << 20,
            segment_size_bytes: LogConfig::default().segment_size_bytes,
            recovery: RecoveryMode::Strict,
            max_key_bytes: limits.max_key_bytes,
            max_value_bytes: limits.max_value_bytes,
        }
    }
}

impl StoreSettings {
    /// The durability these settings name, with the periodic settings.
    pub fn durability(&self) -> Durability {
        Durability::new(self.durability, Duration::from_millis(self.flush_interval_ms), self.flush_size_bytes)
    }

    /// The store options these settings describe (retention and
    /// maintenance at their defaults; [`ServeConfig`] adds its own).
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            log: LogConfig {
                segment_size_bytes: self.segment_size_bytes,
                durability: self.durability(),
                recovery: self.recovery,
            },
            limits: Limits {
                max_key_bytes: self.max_key_bytes,
                max_value_bytes: self.max_value_bytes,
                ..Limits::default()
            },
            ..StoreOptions::default()
        }
    }

    fn validate(&self) -> Result<(), Invalid> {
        let segment = self.segment_size_bytes;
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&segment) {
            return Err(Invalid::new(
                "segment_size_bytes",
                format!("{segment}: from {MIN_SEGMENT_BYTES} to {MAX_SEGMENT_BYTES}"),
            ));
        }
        Ok(())
    }
}

/// How the shared log's NATS connection is secured: TLS and at most one
/// kind of credentials (docs/distributed.md, "TLS and credentials"). Read
/// by `logkv serve` and by the commands that open the log themselves
/// (`log trim`, `checkpoint import`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args, Serialize, Deserialize)]
#[serde(default)]
#[command(next_help_heading = "NATS connection")]
pub struct NatsSettings {
    /// CA certificates (PEM) that sign the NATS servers' certificates,
    /// trusted instead of the system's; TLS is then required.
    #[arg(long, value_name = "FILE")]
    pub nats_tls_ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for NATS servers that verify their
    /// clients, with nats_tls_key; TLS is then required.
    #[arg(long, value_name = "FILE")]
    pub nats_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of nats_tls_cert.
    #[arg(long, value_name = "FILE")]
    pub nats_tls_key: Option<PathBuf>,
    /// NATS user, with nats_password.
    #[arg(long, value_name = "USER")]
    pub nats_user: Option<String>,
    /// The password of nats_user; never printed. A flag is visible to
    /// other local users: prefer the file or the variable.
    #[arg(long, value_name = "PASSWORD")]
    pub nats_password: Option<String>,
    /// NATS token; never printed. A flag is visible to other local users:
    /// prefer the file or the variable.
    #[arg(long, value_name = "TOKEN")]
    pub nats_token: Option<String>,
    /// File holding an nkey seed (`SU...`) that signs the NATS server's
    /// challenge.
    #[arg(long, value_name = "FILE")]
    pub nats_nkey_seed_file: Option<PathBuf>,
    /// NATS creds file (a user JWT and its nkey seed), for servers in
    /// operator mode.
    #[arg(long, value_name = "FILE")]
    pub nats_creds_file: Option<PathBuf>,
}

impl NatsSettings {
    /// `config` (from the log URL) with this TLS and these credentials.
    pub fn secure(&self, mut config: NatsConfig) -> NatsConfig {
        let client = self.nats_tls_cert.clone().zip(self.nats_tls_key.clone());
        config.tls.required |= self.nats_tls_ca.is_some() || client.is_some();
        config.tls.ca = self.nats_tls_ca.clone();
        config.tls.client = client;
        config.credentials = self.credentials();
        config
    }

    /// The credentials set ([`NatsSettings::validate`] allows one kind).
    fn credentials(&self) -> Credentials {
        if let (Some(user), Some(password)) = (&self.nats_user, &self.nats_password) {
            Credentials::UserPassword { user: user.clone(), password: password.clone() }
        } else if let Some(token) = &self.nats_token {
            Credentials::Token(token.clone())
        } else if let Some(path) = &self.nats_nkey_seed_file {
            Credentials::NkeySeedFile(path.clone())
        } else if let Some(path) = &self.nats_creds_file {
            Credentials::CredsFile(path.clone())
        } else {
            Credentials::None
        }
    }

    fn validate(&self) -> Result<(), Invalid> {
        let pairs = [
            ("nats_tls_cert", self.nats_tls_cert.is_some(), "nats_tls_key", self.nats_tls_key.is_some()),
            ("nats_user", self.nats_user.is_some(), "nats_password", self.nats_password.is_some()),
        ];
        for (a, has_a, b, has_b) in pairs {
            if has_a != has_b {
                let (set, missing) = if has_a { (a, b) } else { (b, a) };
                return Err(Invalid::new(set, format!("it needs {missing} too")));
            }
        }
        for (key, value) in [
            ("nats_user", &self.nats_user),
            ("nats_password", &self.nats_password),
            ("nats_token", &self.nats_token),
        ] {
            if value.as_deref() == Some("") {
                return Err(Invalid::new(key, "empty; leave it unset instead".into()));
            }
        }
        let kinds = [
            ("nats_user", self.nats_user.is_some()),
            ("nats_token", self.nats_token.is_some()),
            ("nats_nkey_seed_file", self.nats_nkey_seed_file.is_some()),
            ("nats_creds_file", self.nats_creds_file.is_some()),
        ];
        let mut set = kinds.iter().filter(|(_, set)| *set).map(|(key, _)| *key);
        if let (Some(first), Some(second)) = (set.next(), set.next()) {
            return Err(Invalid::new(
                second,
                format!("{first} is set too: give one kind of NATS credentials"),
            ));
        }
        Ok(())
    }
}

/// How `logkv serve` logs: human-readable lines or one JSON object per
/// line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colored on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Smallest `max_response_bytes`: room for a value page and an error.
const MIN_RESPONSE_BYTES: usize = 4096;

/// Smallest `ws_queue_bytes`: room for a few notifications.
const MIN_WS_QUEUE_BYTES: usize = 64 << 10;
/// Largest `ws_queue_bytes` (what one wait for room can count).
const MAX_WS_QUEUE_BYTES: usize = u32::MAX as usize;

/// What `logkv serve` runs with: the store settings and the server's own.
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct ServeConfig {
    /// How the data directory is opened (the global flags).
    /// (Read from the same sources as the rest; serialized on its own so
    /// that errors keep the key and source figment reports.)
    #[arg(skip)]
    #[serde(skip)]
    pub store: StoreSettings,
    /// Redis protocol address.
    #[arg(long = "resp", value_name = "ADDR", default_value_t = ServeConfig::default().resp_addr)]
    pub resp_addr: String,
    /// HTTP address: JSON-RPC, kv_watch, /metrics, /healthz, /readyz.
    #[arg(long = "http", value_name = "ADDR", default_value_t = ServeConfig::default().http_addr)]
    pub http_addr: String,
    /// The stream RESP commands read and write (0x and 64 hex digits).
    #[arg(long, value_name = "STREAM", default_value_t = ServeConfig::default().stream)]
    #[serde(with = "text")]
    pub stream: StreamId,
    /// The node's signing key [default: DATA_DIR/node.key, created on
    /// first start with mode 0600].
    #[arg(long, value_name = "FILE")]
    pub node_key: Option<PathBuf>,
    /// Redis users for AUTH and the keys their writes are signed with
    /// (docs/server.md); without it every client writes as the node.
    #[arg(long, value_name = "FILE")]
    pub users_file: Option<PathBuf>,
    /// Bearer token that administrative JSON-RPC calls must present;
    /// without one, administrative calls are refused.
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// PEM certificate chain: with `tls_key`, RESP and HTTP speak TLS on
    /// their ports (docs/server.md, "TLS").
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): clients must present a certificate one of
    /// them signed (mutual TLS).
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub tls_client_ca: Option<PathBuf>,
    /// With a users file: whether JSON-RPC reads and kv_watch are open to
    /// callers who present no user (writes and admin calls never are).
    #[arg(long, value_name = "BOOL", default_value_t = ServeConfig::default().public_read, action = clap::ArgAction::Set)]
    pub public_read: bool,
    /// Host names HTTP requests may be addressed to besides IP addresses
    /// and `localhost` (a guard against DNS rebinding), comma-separated.
    #[arg(long, value_name = "HOST,...", value_delimiter = ',')]
    pub http_allowed_hosts: Vec<String>,
    /// Web origins (`https://app.example`) whose pages may call JSON-RPC
    /// and kv_watch, comma-separated; a request from any other origin is
    /// refused.
    #[arg(long, value_name = "ORIGIN,...", value_delimiter = ',')]
    pub http_allowed_origins: Vec<String>,
    /// The directory admin_export writes into; without it admin_export is
    /// refused.
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Connections (RESP and HTTP together) served at once; one more gets
    /// an error and is closed. Lowered at start to what the open-file
    /// limit holds.
    #[arg(long, value_name = "N", default_value_t = ServeConfig::default().max_connections)]
    pub max_connections: usize,
    /// Seconds a RESP connection may stay idle before it is closed; 0
    /// keeps idle connections forever.
    #[arg(long, value_name = "SECS", default_value_t = ServeConfig::default().idle_timeout_secs)]
    pub idle_timeout_secs: u64,
    /// Seconds a request may take to arrive whole once its first byte is
    /// in (a RESP request; an HTTP request's head, and its body); a client
    /// still sending then is closed. 0 waits forever.
    #[arg(long, value_name = "SECS", default_value_t = ServeConfig::default().request_timeout_secs)]
    pub request_timeout_secs: u64,
    /// Largest HTTP request body; a longer one is refused from its
    /// Content-Length or as soon as it grows past this, never buffered.
    #[arg(long, value_name = "BYTES", default_value_t = ServeConfig::default().max_request_bytes)]
    pub max_request_bytes: usize,
    /// Largest JSON-RPC response, a batch's included: a result past it is
    /// answered with error -32013, and a batch stops running its calls
    /// once its response is full (each is answered with that error).
    #[arg(long, value_name = "BYTES", default_value_t = ServeConfig::default().max_response_bytes)]
    pub max_response_bytes: usize,
    /// Bytes a WebSocket connection may hold for its client: answers and
    /// kv_watch notifications queued or being written, the history being
    /// sent included; a live subscription that finds no room is closed.
    #[arg(long, value_name = "BYTES", default_value_t = ServeConfig::default().ws_queue_bytes)]
    pub ws_queue_bytes: usize,
    /// Bytes of writes the commit pipeline holds, queued or in flight;
    /// beyond that, writers wait and their sockets are not read.
    #[arg(long, value_name = "BYTES", default_value_t = ServeConfig::default().write_queue_bytes)]
    pub write_queue_bytes: usize,
    /// Redis's `maxmemory`, in bytes of the in-memory index (`INFO`'s
    /// `used_memory`): once over it, RESP commands that add data are
    /// refused with `-OOM` (policy `noeviction`); 0 means no limit.
    /// `CONFIG SET maxmemory` changes it while the server runs.
    #[arg(long, value_name = "BYTES", default_value_t = ServeConfig::default().maxmemory)]
    pub maxmemory: u64,
    /// Redis databases (`SELECT 0` to `databases - 1`), 1 to 65,536:
    /// database 0 is `stream`, each other one a stream derived from it
    /// (docs/resp.md, "Databases").
    #[arg(long, value_name = "N", default_value_t = ServeConfig::default().databases)]
    pub databases: u32,
    /// The log: `file` (this node's own), nats://HOST:PORT[,HOST:PORT...]
    /// (tls://... to require TLS), a JetStream stream shared with other
    /// nodes, or file:DIR, a file log of entries held by this process
    /// (docs/distributed.md).
    #[arg(long, value_name = "URL", default_value_t = ServeConfig::default().log)]
    pub log: String,
    /// The JetStream stream's name.
    #[arg(long, value_name = "NAME", default_value_t = ServeConfig::default().log_stream)]
    pub log_stream: String,
    /// Replicas of the JetStream stream when this node creates it, 1 to 5.
    #[arg(long, value_name = "N", default_value_t = ServeConfig::default().replicas)]
    pub replicas: usize,
    /// Streams this node applies, comma-separated (with a shared log): it
    /// downloads only what they need [default: every stream].
    #[arg(long, value_name = "STREAM,...", value_delimiter = ',')]
    #[serde(with = "text_list")]
    pub watch: Vec<StreamId>,
    /// With a shared log: log positions between two digest reports this
    /// node publishes and compares with its peers' (docs/distributed.md,
    /// "Inconsistency detection").
    #[arg(
        long,
        value_name = "POSITIONS",
        default_value_t = ServeConfig::default().digest_every,
        value_parser = clap::value_parser!(u64).range(1..),
    )]
    pub digest_every: u64,
    /// Digests kept per node for comparing: this node's newest, and each
    /// peer's that this node has not reached yet.
    #[arg(
        long,
        value_name = "N",
        default_value_t = ServeConfig::default().digest_kept,
        value_parser = clap::value_parser!(u32).range(1..),
    )]
    pub digest_kept: u32,
    /// Log positions back a transaction that checks versions may have
    /// read; older ones fail with VersionTooOld, and compaction forgets
    /// deleted keys older than this. A protocol parameter: every node of a
    /// log must use the same.
    #[arg(
        long,
        value_name = "POSITIONS",
        default_value_t = ServeConfig::default().version_check_horizon,
        value_parser = clap::value_parser!(u64).range(1..),
    )]
    pub version_check_horizon: u64,
    /// Anti-replay windows (one per sender and stream) this node holds;
    /// a transaction that needs more is QuotaExceeded. A protocol
    /// parameter like the quotas below: every node of a log must use the same.
    #[arg(
        long,
        value_name = "N",
        default_value_t = ServeConfig::default().max_windows,
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "Quotas"
    )]
    pub max_windows: u64,
    /// Anti-replay windows one sender holds: the streams it may use.
    #[arg(
        long,
        value_name = "N",
        default_value_t = ServeConfig::default().max_windows_per_sender,
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "Quotas"
    )]
    pub max_windows_per_sender: u64,
    /// Streams this node holds; a transaction that claims one more is QuotaExceeded.
    #[arg(
        long,
        value_name = "N",
        default_value_t = ServeConfig::default().max_streams,
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "Quotas"
    )]
    pub max_streams: u64,
    /// Bytes of access-control state (roles and special keys, 128 each
    /// plus the key) this node holds.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = ServeConfig::default().max_acl_bytes,
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "Quotas"
    )]
    pub max_acl_bytes: u64,
    /// Check every value's checksum when it is read. Off only to measure
    /// what checking costs: a damaged value is then served.
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = ServeConfig::default().verify_checksums,
        action = clap::ArgAction::Set,
    )]
    pub verify_checksums: bool,
    /// Newest versions of each key compaction keeps, at least 1
    /// [default: every version] (docs/compaction.md).
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..),
        help_heading = "Retention and maintenance"
    )]
    pub retain_versions: Option<u32>,
    /// Keep every version written within this long: 90s, 30m, 12h, 7d
    /// [default: no time window].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Retention and maintenance")]
    #[serde(with = "duration")]
    pub retain_duration: Option<Duration>,
    /// Log bytes between automatic checkpoints; 0 = only on demand.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = ServeConfig::default().checkpoint_interval_bytes,
        help_heading = "Retention and maintenance"
    )]
    pub checkpoint_interval_bytes: u64,
    /// Share of superseded log bytes (above 0, at most 1) that triggers a
    /// compaction when retention can drop something.
    #[arg(
        long,
        value_name = "RATIO",
        default_value_t = ServeConfig::default().compact_dead_ratio,
        help_heading = "Retention and maintenance"
    )]
    pub compact_dead_ratio: f64,
    /// Logs smaller than this are not compacted automatically.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = ServeConfig::default().compact_min_bytes,
        help_heading = "Retention and maintenance"
    )]
    pub compact_min_bytes: u64,
    /// Most bytes per second a compaction writes; 0 = no limit.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = ServeConfig::default().compact_bytes_per_sec,
        help_heading = "Retention and maintenance"
    )]
    pub compact_bytes_per_sec: u64,
    /// Most bytes per second the scrubber reads back to re-verify sealed
    /// segments, the compacted file and checkpoints; 0 = no scrubbing.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = ServeConfig::default().scrub_bytes_per_sec,
        help_heading = "Retention and maintenance"
    )]
    pub scrub_bytes_per_sec: u64,
    /// Seconds between the end of one scrub pass and the start of the next.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = ServeConfig::default().scrub_interval_secs,
        help_heading = "Retention and maintenance"
    )]
    pub scrub_interval_secs: u64,
    /// Milliseconds the log may stay idle, while some key has an expiry,
    /// before this node appends an empty entry so log time advances and
    /// expired keys are deleted (docs/expiry.md, "Ticks"); 0 never does.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = ServeConfig::default().expiry_tick_ms,
        help_heading = "Retention and maintenance"
    )]
    pub expiry_tick_ms: u64,
    /// Log lines as human-readable text or as JSON objects, one per line.
    #[arg(long, value_enum, default_value_t = ServeConfig::default().log_format, help_heading = "Logging")]
    pub log_format: LogFormat,
    /// Which log lines are written, in RUST_LOG's syntax: a level (`info`,
    /// `debug`) or per-module directives (`info,logkv_server=debug`).
    #[arg(long, value_name = "FILTER", default_value_t = ServeConfig::default().log_filter, help_heading = "Logging")]
    pub log_filter: String,
    /// TLS and credentials towards the NATS servers (last: its flags
    /// have a heading of their own).
    /// (Read from the same sources as the rest; serialized on its own like
    /// `store`.)
    #[command(flatten)]
    #[serde(skip)]
    pub nats: NatsSettings,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let maintenance = MaintenanceOptions::default();
        let quotas = Quotas::default();
        ServeConfig {
            store: StoreSettings::default(),
            resp_addr: "127.0.0.1:7379".into(),
            http_addr: "127.0.0.1:7380".into(),
            stream: StreamId([0; 32]),
            node_key: None,
            users_file: None,
            admin_token: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            public_read: false,
            http_allowed_hosts: Vec::new(),
            http_allowed_origins: Vec::new(),
            backup_dir: None,
            max_connections: 10_000,
            idle_timeout_secs: 300,
            request_timeout_secs: 30,
            max_request_bytes: 4 << 20,
            max_response_bytes: 16 << 20,
            ws_queue_bytes: 2 << 20,
            write_queue_bytes: logkv_runtime::pipeline::DEFAULT_QUEUE_BYTES,
            maxmemory: 0,
            databases: 16,
            log: "file".into(),
            log_stream: "logkv".into(),
            replicas: 1,
            watch: Vec::new(),
            digest_every: 1000,
            digest_kept: 64,
            version_check_horizon: DEFAULT_VERSION_CHECK_HORIZON,
            max_windows: quotas.windows,
            max_windows_per_sender: quotas.windows_per_sender,
            max_streams: quotas.streams,
            max_acl_bytes: quotas.acl_bytes,
            verify_checksums: true,
            retain_versions: None,
            retain_duration: None,
            checkpoint_interval_bytes: maintenance.checkpoint_interval_bytes,
            compact_dead_ratio: maintenance.compact_dead_ratio,
            compact_min_bytes: maintenance.compact_min_bytes,
            compact_bytes_per_sec: maintenance.compact_bytes_per_sec,
            scrub_bytes_per_sec: 8 << 20,
            scrub_interval_secs: 3600,
            expiry_tick_ms: 1000,
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            nats: NatsSettings::default(),
        }
    }
}

/// Settings whose values are written as text: parsed with `FromStr`,
/// written with `Display`.
mod text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A list of [`text`] values.
mod text_list {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(values: &[T], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let texts = Vec::<String>::deserialize(d)?;
        texts.iter().map(|t| t.parse().map_err(serde::de::Error::custom)).collect()
    }
}

/// A retention window as text (`"7d"`); unset is no window.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.collect_str(&humantime::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => super::parse_duration(&text).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
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

/// A setting whose value cannot work, before its source is known.
struct Invalid {
    key: &'static str,
    why: String,
}

impl Invalid {
    fn new(key: &'static str, why: String) -> Self {
        Invalid { key, why }
    }
}

/// A configuration that cannot be used.
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
    /// The file is not TOML.
    #[error("bad config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// The file has a key no setting has (a typo must not be ignored).
    #[error("bad config file {path}: unknown setting {key:?}; the settings are listed in docs/server.md")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A setting's value cannot work.
    #[error("bad setting {key} (from {origin}): {why}")]
    Invalid {
        /// The setting's key.
        key: String,
        /// Where the value came from: the file, a variable or a flag.
        origin: String,
        /// What is wrong, with the value.
        why: String,
    },
}

/// Where the configuration file is.
#[derive(Debug, Clone)]
pub enum ConfigFile {
    /// Named by `--config` or `LOGKV_CONFIG`: it must exist.
    Given(PathBuf),
    /// [`DEFAULT_CONFIG_PATH`], read only if it exists.
    Default,
    /// No file at all (tests, and commands that must not depend on the
    /// machine's file).
    None,
}

/// A loaded configuration, and where each value came from.
pub struct Loaded {
    /// The effective configuration.
    pub config: ServeConfig,
    figment: Figment,
}

/// One source of settings: a dictionary and the metadata that names it.
struct Layer {
    metadata: Metadata,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Every setting's key, flag and environment variable, from the clap
/// definitions (the one place they are declared).
fn setting_names() -> BTreeMap<String, (String, String)> {
    let command = ServeConfig::augment_args(StoreSettings::augment_args(Command::new("logkv")));
    command
        .get_arguments()
        .map(|arg| {
            let key = arg.get_id().as_str().to_string();
            let flag = format!("--{}", arg.get_long().unwrap_or(&key));
            let env = format!("{ENV_PREFIX}{}", key.to_uppercase());
            (key, (flag, env))
        })
        .collect()
}

/// The environment variable of the setting `key`.
pub fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_uppercase())
}

/// Adds each setting's environment variable to its flag's help, so
/// `--help`, completions and the man page show it (clap's own `env` would
/// also read the variable, which [`load`] does instead to tell a bad
/// variable from a bad flag). A flag that clap reads a variable for
/// already shows it.
pub fn document_env(command: Command) -> Command {
    let names = setting_names();
    command.mut_args(|arg| match names.get(arg.get_id().as_str()) {
        Some((_, env)) if arg.get_env().is_none() => {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            arg.help(format!("{help} [env: {env}]"))
        }
        _ => arg,
    })
}

/// Settings as a dictionary keyed by setting.
fn dict_of<T: Serialize>(settings: &T) -> Dict {
    match Value::serialize(settings) {
        Ok(Value::Dict(_, dict)) => dict,
        _ => unreachable!("settings serialize to a dictionary"),
    }
}

/// The values of `T`'s settings whose source in `matches` is the command
/// line, as a dictionary.
fn given<T: FromArgMatches + Serialize>(matches: &ArgMatches) -> Result<Dict, clap::Error> {
    let mut dict = dict_of(&T::from_arg_matches(matches)?);
    dict.retain(|key, _| {
        matches.try_contains_id(key).is_ok()
            && matches!(matches.value_source(key), Some(ValueSource::CommandLine))
    });
    Ok(dict)
}

/// Every setting's flag, on one command.
fn all_settings() -> Command {
    ServeConfig::augment_args(StoreSettings::augment_args(Command::new("environment")))
}

/// The keys of `T`'s settings.
fn keys_of<T: Args>() -> Vec<String> {
    T::augment_args(Command::new("keys")).get_arguments().map(|a| a.get_id().to_string()).collect()
}

/// Whether the command of `matches` takes `T`'s flags.
fn declares<T: Args>(matches: &ArgMatches) -> bool {
    keys_of::<T>().iter().all(|key| matches.try_contains_id(key).is_ok())
}

/// The settings `LOGKV_*` variables set (the store's; the NATS connection's
/// if `nats`; every one if `serve`), each parsed by its flag's own parser.
/// An error names the variable.
fn from_env(serve: bool, nats: bool) -> Result<Dict, ConfigError> {
    let mut read_keys = keys_of::<StoreSettings>();
    if nats {
        read_keys.extend(keys_of::<NatsSettings>());
    }
    let command = all_settings();
    let mut dict = Dict::new();
    for (key, (flag, env)) in setting_names() {
        let Some(value) = std::env::var_os(&env) else { continue };
        if !serve && !read_keys.contains(&key) {
            continue;
        }
        let invalid = |e: clap::Error| ConfigError::Invalid {
            key: key.clone(),
            origin: format!("environment variable {env}"),
            why: without_flag(&clap_reason(&e)),
        };
        let matches = command
            .clone()
            .try_get_matches_from([OsString::from("environment"), flag.clone().into(), value])
            .map_err(invalid)?;
        dict.extend(given::<StoreSettings>(&matches).map_err(invalid)?);
        dict.extend(given::<ServeConfig>(&matches).map_err(invalid)?);
        dict.extend(given::<NatsSettings>(&matches).map_err(invalid)?);
    }
    Ok(dict)
}

/// The reason clap gives, without its usage lines.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or("").trim_start_matches("error: ").to_string()
}

/// clap's reason without the flag it names (`invalid value 'x' for
/// '--flag <N>': ...`), for a value that came from a variable.
fn without_flag(reason: &str) -> String {
    match reason.split_once(" for '--") {
        Some((head, tail)) => match tail.split_once('\'') {
            Some((_, rest)) => format!("{head}{rest}"),
            None => reason.to_string(),
        },
        None => reason.to_string(),
    }
}

/// The file's settings; every key must be a setting's.
fn from_file(path: &Path) -> Result<Dict, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let dict: Dict = toml::from_str(&text)
        .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
    let names = setting_names();
    if let Some(key) = dict.keys().find(|k| !names.contains_key(*k)) {
        return Err(ConfigError::UnknownKey { path: path.to_path_buf(), key: key.clone() });
    }
    Ok(dict)
}

/// Loads the configuration: defaults, then `file`, then `LOGKV_*`
/// variables, then the flags given in `matches` (the subcommand's; the
/// global store flags are there too). `serve` reads every setting; without
/// it only the store's, and the NATS connection's if the command takes
/// their flags; [`Loaded::config`]'s other settings come from the file or
/// their defaults.
pub fn load(file: &ConfigFile, matches: &ArgMatches, serve: bool) -> Result<Loaded, ConfigError> {
    let names = setting_names();
    let defaults = ServeConfig::default().to_dict();
    let mut figment = Figment::new().merge(Layer { metadata: Metadata::named("default"), dict: defaults });
    let path = match file {
        ConfigFile::Given(path) => Some(path.clone()),
        ConfigFile::Default => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
        ConfigFile::None => None,
    };
    if let Some(path) = &path {
        let metadata = Metadata::from(format!("config file {}", path.display()), path.as_path());
        figment = figment.merge(Layer { metadata, dict: from_file(path)? });
    }
    let env_names = names.clone();
    let env = Metadata::named("environment variable")
        .interpolater(move |_, keys| env_names.get(keys[0]).map(|(_, env)| env.clone()).unwrap_or_default());
    let nats = declares::<NatsSettings>(matches);
    figment = figment.merge(Layer { metadata: env, dict: from_env(serve, nats)? });
    let flag_names = names;
    let flags = Metadata::named("flag").interpolater(move |_, keys| {
        flag_names.get(keys[0]).map(|(flag, _)| flag.clone()).unwrap_or_default()
    });
    let from_flags = |e: clap::Error| ConfigError::Invalid {
        key: "?".into(),
        origin: "flags".into(),
        why: clap_reason(&e),
    };
    let mut given_flags = given::<StoreSettings>(matches).map_err(from_flags)?;
    if serve {
        given_flags.extend(given::<ServeConfig>(matches).map_err(from_flags)?);
    }
    if nats {
        given_flags.extend(given::<NatsSettings>(matches).map_err(from_flags)?);
    }
    figment = figment.merge(Layer { metadata: flags, dict: given_flags });
    let mut config: ServeConfig = figment.extract().map_err(|e| figment_error(&figment, e))?;
    config.store = figment.extract().map_err(|e| figment_error(&figment, e))?;
    config.nats = figment.extract().map_err(|e| figment_error(&figment, e))?;
    let loaded = Loaded { config, figment };
    loaded.validate()?;
    Ok(loaded)
}

/// A figment error as a [`ConfigError`] naming the setting and its source.
fn figment_error(figment: &Figment, e: figment::Error) -> ConfigError {
    let key = e.path.first().cloned().unwrap_or_else(|| "?".into());
    let source = e
        .metadata
        .as_ref()
        .map(|m| describe_source(m, &key))
        .or_else(|| figment.find_metadata(&key).map(|m| describe_source(m, &key)))
        .unwrap_or_else(|| "?".into());
    ConfigError::Invalid { key, origin: source, why: e.kind.to_string() }
}

/// "config file F", "environment variable V", "flag --f" or "default".
fn describe_source(metadata: &Metadata, key: &str) -> String {
    match metadata.name.as_ref() {
        "environment variable" | "flag" => {
            format!("{} {}", metadata.name, metadata.interpolate(&Profile::Default, &[key]))
        }
        name => name.to_string(),
    }
}

impl Loaded {
    /// Where the value of `key` came from.
    pub fn source_of(&self, key: &str) -> String {
        self.figment.find_metadata(key).map(|m| describe_source(m, key)).unwrap_or_else(|| "default".into())
    }

    /// Every setting, `key = value  # source`, in key order: what
    /// `--print-config` prints. Secrets (`SECRETS`) are not shown.
    pub fn describe(&self) -> String {
        let dict = self.config.to_dict();
        let mut out = String::new();
        for key in setting_names().keys() {
            let value = match dict.get(key).and_then(toml_value) {
                Some(_) if SECRETS.contains(&key.as_str()) => Some("\"(hidden)\"".into()),
                value => value,
            };
            let source = self.source_of(key);
            match value {
                Some(value) => out.push_str(&format!("{key} = {value}  # {source}\n")),
                None => out.push_str(&format!("# {key} is unset  # {source}\n")),
            }
        }
        out
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.config.check().map_err(|Invalid { key, why }| ConfigError::Invalid {
            key: key.to_string(),
            origin: self.source_of(key),
            why,
        })
    }
}

/// A value as TOML writes it; `None` for an unset one.
fn toml_value(value: &Value) -> Option<String> {
    match value {
        Value::Empty(..) => None,
        value => toml::Value::try_from(value).ok().map(|v| v.to_string()),
    }
}

impl ServeConfig {
    /// Every setting, the store's included, as a dictionary.
    fn to_dict(&self) -> Dict {
        let mut dict = dict_of(self);
        dict.extend(dict_of(&self.store));
        dict.extend(dict_of(&self.nats));
        dict
    }

    /// Checks the values no type rules out, once every source is merged,
    /// before anything is opened ([`load`] does, naming each value's
    /// source).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().map_err(|Invalid { key, why }| ConfigError::Invalid {
            key: key.into(),
            origin: "the configuration".into(),
            why,
        })
    }

    fn check(&self) -> Result<(), Invalid> {
        self.store.validate()?;
        self.nats.validate()?;
        if self.retain_versions == Some(0) {
            return Err(Invalid::new(
                "retain_versions",
                "0: at least 1 (the newest version always stays); leave it unset to keep every version"
                    .into(),
            ));
        }
        if self.version_check_horizon == 0 {
            return Err(Invalid::new(
                "version_check_horizon",
                "0: at least 1 (0 would refuse every transaction that checks versions)".into(),
            ));
        }
        if !(1..=logkv_runtime::codec::MAX_LIST_LEN as u32).contains(&self.databases) {
            let why =
                format!("{}: 1 to 65536 (FLUSHALL flushes them all in one transaction)", self.databases);
            return Err(Invalid::new("databases", why));
        }
        if self.digest_every == 0 {
            return Err(Invalid::new("digest_every", "0: at least 1 position between digest reports".into()));
        }
        if self.digest_kept == 0 {
            return Err(Invalid::new("digest_kept", "0: at least 1 digest kept per node".into()));
        }
        let quotas = [
            ("max_windows", self.max_windows),
            ("max_windows_per_sender", self.max_windows_per_sender),
            ("max_streams", self.max_streams),
            ("max_acl_bytes", self.max_acl_bytes),
        ];
        if let Some((name, _)) = quotas.into_iter().find(|(_, n)| *n == 0) {
            return Err(Invalid::new(name, "0: at least 1 (0 would refuse every sender or stream)".into()));
        }
        if self.max_response_bytes < MIN_RESPONSE_BYTES {
            return Err(Invalid::new(
                "max_response_bytes",
                format!("{}: at least {MIN_RESPONSE_BYTES} bytes", self.max_response_bytes),
            ));
        }
        if !(MIN_WS_QUEUE_BYTES..=MAX_WS_QUEUE_BYTES).contains(&self.ws_queue_bytes) {
            return Err(Invalid::new(
                "ws_queue_bytes",
                format!("{}: from {MIN_WS_QUEUE_BYTES} to {MAX_WS_QUEUE_BYTES} bytes", self.ws_queue_bytes),
            ));
        }
        let ratio = self.compact_dead_ratio;
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Err(Invalid::new(
                "compact_dead_ratio",
                format!("{ratio}: a share of the log's bytes, above 0 and at most 1"),
            ));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(Invalid::new("tls_key", "unset: tls_cert needs its key".into())),
            (None, Some(_)) => {
                return Err(Invalid::new("tls_cert", "unset: tls_key needs its certificate".into()))
            }
            (None, None) if self.tls_client_ca.is_some() => {
                return Err(Invalid::new("tls_client_ca", "set without tls_cert and tls_key".into()))
            }
            _ => {}
        }
        if let Some(token) = &self.admin_token {
            if !crate::access::is_token(token.as_bytes()) {
                return Err(Invalid::new(
                    "admin_token",
                    "not a bearer token: letters, digits and - . _ ~ + / only, then any = padding".into(),
                ));
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log_filter) {
            return Err(Invalid::new("log_filter", format!("{:?}: {e}", self.log_filter)));
        }
        Ok(())
    }

    /// The node's key file.
    pub fn key_path(&self) -> PathBuf {
        self.node_key.clone().unwrap_or_else(|| self.store.data_dir.join("node.key"))
    }

    /// The store options this configuration asks for.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
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
            ..self.store.store_options()
        }
    }

    /// The node options this configuration asks for.
    pub fn node_options(&self) -> NodeOptions {
        NodeOptions {
            store: self.store_options(),
            watched: self.watched(),
            version_check_horizon: self.version_check_horizon,
            quotas: Quotas {
                windows: self.max_windows,
                windows_per_sender: self.max_windows_per_sender,
                streams: self.max_streams,
                acl_bytes: self.max_acl_bytes,
            },
        }
    }

    /// The shared log to follow: `None` for the node's own file log.
    pub fn shared_log(&self) -> Result<Option<LogChoice>, logkv_nats::ConfigError> {
        LogChoice::parse(&self.log, &self.log_stream, self.replicas, &self.nats)
    }

    /// The streams this node applies.
    pub fn watched(&self) -> Watched {
        if self.watch.is_empty() {
            Watched::All
        } else {
            Watched::Only(self.watch.iter().copied().collect())
        }
    }

    /// How long a request may take to arrive whole.
    pub fn request_timeout(&self) -> Option<Duration> {
        (self.request_timeout_secs > 0).then(|| Duration::from_secs(self.request_timeout_secs))
    }

    /// How long a RESP connection may stay idle.
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_secs > 0).then(|| Duration::from_secs(self.idle_timeout_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `file` (TOML text) under the flags `argv` (after the program
    /// name), as `logkv serve` would.
    fn load_with(file: &str, argv: &[&str]) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logkv.toml");
        std::fs::write(&path, file).unwrap();
        let matches =
            all_settings().try_get_matches_from(std::iter::once("logkv").chain(argv.iter().copied()));
        load(&ConfigFile::Given(path), &matches.unwrap(), true)
    }

    fn error(file: &str, argv: &[&str]) -> String {
        load_with(file, argv).err().expect("the configuration is refused").to_string()
    }

    #[test]
    fn an_empty_file_is_the_default_and_unknown_keys_are_refused() {
        let loaded = load_with("", &[]).unwrap();
        assert_eq!(loaded.config, ServeConfig::default());
        assert_eq!(loaded.source_of("resp_addr"), "default");
        let e = error("resp_adr = \"x\"", &[]);
        assert!(e.contains("unknown setting \"resp_adr\""), "{e}");
        let e = error("stream = \"0x12\"", &[]);
        assert!(e.contains("bad setting stream (from config file") && e.contains("logkv.toml"), "{e}");
        let e = error("durability = \"sometimes\"", &[]);
        assert!(e.contains("bad setting durability (from config file"), "{e}");
        let e = error("max_connections = \"many\"", &[]);
        assert!(e.contains("bad setting max_connections") && e.contains("expected usize"), "{e}");
        let e = error("max_connections = ", &[]);
        assert!(e.starts_with("bad config file"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file_and_each_value_names_its_source() {
        let file =
            "durability = \"periodic\"\nflush_interval_ms = 5\nmax_connections = 77\nrecovery = \"truncate\"";
        let loaded = load_with(file, &["--max-connections", "99", "--durability", "none"]).unwrap();
        let c = &loaded.config;
        assert_eq!(c.max_connections, 99);
        assert_eq!(c.store.durability, DurabilityMode::None);
        assert_eq!(c.store.flush_interval_ms, 5);
        assert_eq!(c.store.recovery, RecoveryMode::TruncateAtCorruption);
        assert_eq!(loaded.source_of("max_connections"), "flag --max-connections");
        assert_eq!(loaded.source_of("durability"), "flag --durability");
        assert!(loaded.source_of("flush_interval_ms").starts_with("config file "));
        assert_eq!(loaded.source_of("resp_addr"), "default");
        let printed = loaded.describe();
        assert!(printed.contains("max_connections = 99  # flag --max-connections\n"), "{printed}");
        assert!(printed.contains("durability = \"none\"  # flag --durability\n"), "{printed}");
        assert!(printed.contains("# retain_versions is unset  # default\n"), "{printed}");
    }

    #[test]
    fn the_admin_token_is_never_printed() {
        let loaded = load_with("admin_token = \"s3cret\"", &[]).unwrap();
        assert_eq!(loaded.config.admin_token.as_deref(), Some("s3cret"));
        assert!(!loaded.describe().contains("s3cret"));
    }

    #[test]
    fn nats_credentials_are_one_kind_complete_and_never_printed() {
        let file = "nats_user = \"alice\"\nnats_password = \"pw-s3cret\"\nnats_tls_ca = \"/ca.pem\"";
        let loaded = load_with(file, &["--log", "nats://127.0.0.1:4222"]).unwrap();
        let printed = loaded.describe();
        assert!(!printed.contains("pw-s3cret") && printed.contains("nats_user = \"alice\""), "{printed}");
        let Some(LogChoice::Nats(c)) = loaded.config.shared_log().unwrap() else { panic!("a stream") };
        assert!(c.tls.required, "a CA file requires TLS");
        assert_eq!(c.tls.ca.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(c.credentials.to_string(), "user \"alice\" and its password");
        let e = error("nats_user = \"alice\"", &[]);
        assert!(
            e.contains("bad setting nats_user (from config file") && e.contains("needs nats_password"),
            "{e}"
        );
        let e = error("nats_tls_key = \"/k.pem\"", &[]);
        assert!(e.contains("bad setting nats_tls_key") && e.contains("needs nats_tls_cert"), "{e}");
        let e = error("nats_token = \"t\"", &["--nats-creds-file", "/u.creds"]);
        assert!(e.contains("bad setting nats_creds_file (from flag --nats-creds-file)"), "{e}");
        assert!(e.contains("nats_token is set too: give one kind"), "{e}");
        assert!(error("nats_token = \"\"", &[]).contains("bad setting nats_token"));
    }

    #[test]
    fn commands_that_take_the_nats_flags_load_them_without_the_server_settings() {
        let command = NatsSettings::augment_args(StoreSettings::augment_args(Command::new("trim")));
        let argv = ["trim", "--nats-token", "tok", "--data-dir", "/d"];
        let loaded = load(&ConfigFile::None, &command.try_get_matches_from(argv).unwrap(), false).unwrap();
        assert_eq!(loaded.config.nats.nats_token.as_deref(), Some("tok"));
        assert_eq!(loaded.config.store.data_dir, Path::new("/d"));
        assert_eq!(loaded.source_of("nats_token"), "flag --nats-token");
        let plain = StoreSettings::augment_args(Command::new("put")).try_get_matches_from(["put"]).unwrap();
        assert_eq!(load(&ConfigFile::None, &plain, false).unwrap().config.nats, NatsSettings::default());
    }

    #[test]
    fn retention_and_maintenance_keys_reach_the_store_options() {
        let loaded = load_with(
            "retain_versions = 3\nretain_duration = \"7d\"\ncheckpoint_interval_bytes = 0\n\
             compact_dead_ratio = 0.25\ncompact_min_bytes = 1024\ncompact_bytes_per_sec = 0\n\
             version_check_horizon = 4096\ndurability = \"periodic\"\nflush_size_bytes = 4096",
            &[],
        )
        .unwrap();
        let o = loaded.config.store_options();
        assert_eq!(o.retention.versions, Some(3));
        assert_eq!(o.retention.duration, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(o.retention.tombstone_horizon, Some(4096));
        let m = o.maintenance;
        assert_eq!((m.checkpoint_interval_bytes, m.compact_min_bytes, m.compact_bytes_per_sec), (0, 1024, 0));
        assert_eq!(m.compact_dead_ratio, 0.25);
        assert_eq!(
            o.log.durability,
            Durability::Periodic { flush_interval: Duration::from_millis(1000), flush_size_bytes: 4096 }
        );
        assert_eq!(loaded.config.node_options().version_check_horizon, 4096);
        let defaults = ServeConfig::default().store_options();
        assert_eq!(defaults.maintenance, MaintenanceOptions::default());
        assert!(!defaults.retention.drops_history());
    }

    #[test]
    fn quotas_reach_the_node_options_and_zero_is_refused() {
        let loaded = load_with("max_windows = 100\nmax_streams = 7", &["--max-acl-bytes", "4096"]).unwrap();
        let want = Quotas { windows: 100, streams: 7, acl_bytes: 4096, ..Quotas::default() };
        assert_eq!(loaded.config.node_options().quotas, want);
        assert_eq!(ServeConfig::default().node_options().quotas, Quotas::default());
        let e = error("max_windows_per_sender = 0", &[]);
        assert!(e.contains("bad setting max_windows_per_sender (from config file"), "{e}");
    }

    #[test]
    fn durations_take_a_unit_and_bad_values_name_their_key_and_source() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        for bad in ["90", "7 days ago", "", "0s", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
        let e = error("retain_duration = \"soon\"", &[]);
        assert!(
            e.contains("bad setting retain_duration (from config file") && e.contains("not a duration"),
            "{e}"
        );
        let e = error("retain_versions = 0", &[]);
        assert!(e.contains("bad setting retain_versions (from config file") && e.contains(": 0:"), "{e}");
        let e = error("version_check_horizon = 0", &[]);
        assert!(e.contains("bad setting version_check_horizon (from config file"), "{e}");
        for ratio in ["0.0", "1.5", "-0.1", "nan"] {
            let e = error(&format!("compact_dead_ratio = {ratio}"), &[]);
            assert!(e.contains("bad setting compact_dead_ratio (from config file"), "{e}");
        }
        let e = error("", &["--compact-dead-ratio", "2"]);
        assert!(e.contains("bad setting compact_dead_ratio (from flag --compact-dead-ratio)"), "{e}");
        let e = error("segment_size_bytes = 1", &[]);
        assert!(e.contains("bad setting segment_size_bytes (from config file"), "{e}");
        let e = error("log_filter = \"info,[\"", &[]);
        assert!(e.contains("bad setting log_filter"), "{e}");
        assert!(error("retain_versions = -1", &[]).contains("retain_versions"));
    }

    #[test]
    fn every_setting_has_a_flag_and_a_variable_and_round_trips_through_the_file() {
        let names = setting_names();
        assert!(names.len() >= 30, "{names:?}");
        for (key, (flag, env)) in &names {
            assert!(flag.starts_with("--"), "{key}: {flag}");
            assert_eq!(env, &format!("LOGKV_{}", key.to_uppercase()));
        }
        // What --print-config prints is a configuration file giving the
        // same configuration.
        let loaded = load_with("retain_versions = 2\nwatch = [\"0x0101010101010101010101010101010101010101010101010101010101010101\"]\nretain_duration = \"1h 30m\"", &[]).unwrap();
        let again = load_with(&loaded.describe(), &[]).unwrap();
        assert_eq!(again.config, loaded.config);
    }
}
