//! `logkv serve`: builds the server's configuration from the file, the
//! environment and the flags, sets up logging, and runs the server.
//!
//! Precedence is flag > environment > file > default. The store options
//! are global flags with defaults, so whether one was really given is read
//! from clap's value source rather than from its value.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use logkv_runtime::types::StreamId;
use logkv_server::config::{parse_duration, DurabilityName, RecoveryName};
use logkv_server::ServeConfig;

use crate::cli::{DurabilityArg, GlobalArgs, RecoveryArg};
use crate::exit::{CliError, Outcome};

/// `logkv serve` flags; each can also come from the environment variable
/// named in its help or from the config file's key of the same name.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (keys: docs/server.md).
    #[arg(long, env = "LOGKV_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Redis protocol address [default: 127.0.0.1:7379].
    #[arg(long = "resp", env = "LOGKV_RESP_ADDR", value_name = "ADDR")]
    pub resp_addr: Option<String>,
    /// HTTP address: JSON-RPC, kv_watch, /metrics, /healthz, /readyz
    /// [default: 127.0.0.1:7380].
    #[arg(long = "http", env = "LOGKV_HTTP_ADDR", value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// The stream RESP commands use [default: 0x and 64 zeros].
    #[arg(long, env = "LOGKV_STREAM")]
    pub stream: Option<StreamId>,
    /// The node's signing key [default: DATA_DIR/node.key, created on
    /// first start with mode 0600].
    #[arg(long, env = "LOGKV_NODE_KEY", value_name = "FILE")]
    pub node_key: Option<PathBuf>,
    /// Users for AUTH and the keys their writes are signed with.
    #[arg(long, env = "LOGKV_USERS_FILE", value_name = "FILE")]
    pub users_file: Option<PathBuf>,
    /// Token that administrative JSON-RPC calls must present (without
    /// one, administrative calls are refused).
    #[arg(long, env = "LOGKV_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Connections served at once [default: 10000].
    #[arg(long, env = "LOGKV_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds before an idle RESP connection is closed; 0 = never
    /// [default: 300].
    #[arg(long, env = "LOGKV_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Largest HTTP request body in bytes [default: 4194304].
    #[arg(long, env = "LOGKV_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Bytes of writes queued or in flight in the commit pipeline; beyond
    /// that, writers wait and their sockets are not read [default: 67108864].
    #[arg(long, env = "LOGKV_WRITE_QUEUE_BYTES")]
    pub write_queue_bytes: Option<usize>,
    /// The log: `file` (this node's own, the default),
    /// nats://HOST:PORT[,HOST:PORT...], a JetStream stream shared by many
    /// nodes, or file:DIR, a file log of entries held by this process
    /// (docs/distributed.md).
    #[arg(long, env = "LOGKV_SHARED_LOG", value_name = "URL")]
    pub log: Option<String>,
    /// The JetStream stream's name [default: logkv].
    #[arg(long, env = "LOGKV_LOG_STREAM", value_name = "NAME")]
    pub log_stream: Option<String>,
    /// Replicas of the JetStream stream if this node creates it, 1 to 5
    /// [default: 1].
    #[arg(long, env = "LOGKV_REPLICAS")]
    pub replicas: Option<usize>,
    /// Streams this node applies, comma-separated (with a shared log): on
    /// JetStream it downloads only what they need [default: every stream].
    #[arg(long, env = "LOGKV_WATCH", value_name = "STREAM,...", value_delimiter = ',')]
    pub watch: Option<Vec<StreamId>>,
    /// Log positions back a transaction that checks versions may have
    /// read; older ones fail with VersionTooOld. A protocol parameter:
    /// every node of a log must use the same [default: 1048576].
    #[arg(
        long,
        env = "LOGKV_VERSION_CHECK_HORIZON",
        value_name = "POSITIONS",
        value_parser = clap::value_parser!(u64).range(1..),
    )]
    pub version_check_horizon: Option<u64>,
    /// Check every value's checksum when it is read [default: true]. Off
    /// only to measure what checking costs: a damaged value is then served.
    #[arg(long, env = "LOGKV_VERIFY_CHECKSUMS", value_name = "BOOL")]
    pub verify_checksums: Option<bool>,
    /// Retention, checkpoints and compaction (boxed: clap's enum of
    /// subcommands stays small).
    #[command(flatten)]
    pub maintenance: Box<MaintenanceArgs>,
}

/// `logkv serve`'s retention, checkpoint and compaction flags
/// (docs/compaction.md); the config file's keys of the same names.
#[derive(Debug, Args)]
#[command(next_help_heading = "Retention and maintenance")]
pub struct MaintenanceArgs {
    /// Newest versions of each key compaction keeps, at least 1
    /// [default: every version].
    #[arg(
        long,
        env = "LOGKV_RETAIN_VERSIONS",
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..),
    )]
    pub retain_versions: Option<u32>,
    /// Keep every version written within this long: 90s, 30m, 12h, 7d
    /// [default: no time window].
    #[arg(long, env = "LOGKV_RETAIN_DURATION", value_name = "DURATION", value_parser = parse_duration)]
    pub retain_duration: Option<Duration>,
    /// Log bytes between automatic checkpoints; 0 = only on demand
    /// [default: 268435456].
    #[arg(long, env = "LOGKV_CHECKPOINT_INTERVAL_BYTES", value_name = "BYTES")]
    pub checkpoint_interval_bytes: Option<u64>,
    /// Share of superseded log bytes (above 0, at most 1) that triggers a
    /// compaction when retention can drop something [default: 0.5].
    #[arg(long, env = "LOGKV_COMPACT_DEAD_RATIO", value_name = "RATIO")]
    pub compact_dead_ratio: Option<f64>,
    /// Logs smaller than this are not compacted automatically
    /// [default: 134217728].
    #[arg(long, env = "LOGKV_COMPACT_MIN_BYTES", value_name = "BYTES")]
    pub compact_min_bytes: Option<u64>,
    /// Most bytes per second a compaction writes; 0 = no limit
    /// [default: 67108864].
    #[arg(long, env = "LOGKV_COMPACT_BYTES_PER_SEC", value_name = "BYTES")]
    pub compact_bytes_per_sec: Option<u64>,
}

/// Runs `logkv serve`.
pub fn run(global: &GlobalArgs, args: ServeArgs, matches: &ArgMatches) -> Result<Outcome, CliError> {
    init_logging();
    let config = configure(global, args, matches)?;
    logkv_server::run(config).map_err(CliError::Serve)?;
    Ok(Outcome::Ok)
}

/// Structured logs on stderr; `LOGKV_LOG` filters them (`info` by default,
/// e.g. `LOGKV_LOG=debug` or `LOGKV_LOG=logkv_server=debug`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGKV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}

/// The configuration: file (or defaults), then every flag or variable given.
fn configure(global: &GlobalArgs, args: ServeArgs, matches: &ArgMatches) -> Result<ServeConfig, CliError> {
    let mut c = match &args.config {
        Some(path) => ServeConfig::from_file(path).map_err(|e| CliError::BadInput(e.to_string()))?,
        None => ServeConfig::default(),
    };
    let given = |id: &str| {
        let source =
            matches.subcommand_matches("serve").and_then(|m| m.value_source(id)).or(matches.value_source(id));
        matches!(source, Some(ValueSource::CommandLine | ValueSource::EnvVariable))
    };
    if given("data_dir") {
        c.data_dir = global.data_dir.clone();
    }
    if given("durability") {
        c.durability = match global.durability {
            DurabilityArg::Always => DurabilityName::Always,
            DurabilityArg::Periodic => DurabilityName::Periodic,
            DurabilityArg::None => DurabilityName::None,
        };
    }
    if given("flush_interval_ms") {
        c.flush_interval_ms = global.flush_interval_ms;
    }
    if given("flush_size_bytes") {
        c.flush_size_bytes = global.flush_size_bytes;
    }
    if given("segment_size_bytes") {
        c.segment_size_bytes = global.segment_size_bytes;
    }
    if given("recovery") {
        c.recovery = match global.recovery {
            RecoveryArg::Strict => RecoveryName::Strict,
            RecoveryArg::Truncate => RecoveryName::Truncate,
        };
    }
    if given("max_key_bytes") {
        c.max_key_bytes = global.max_key_bytes;
    }
    if given("max_value_bytes") {
        c.max_value_bytes = global.max_value_bytes;
    }
    let ServeArgs {
        config: _,
        resp_addr,
        http_addr,
        stream,
        node_key,
        users_file,
        admin_token,
        max_connections,
        idle_timeout_secs,
        max_request_bytes,
        write_queue_bytes,
        log,
        log_stream,
        replicas,
        watch,
        version_check_horizon,
        verify_checksums,
        maintenance,
    } = args;
    let MaintenanceArgs {
        retain_versions,
        retain_duration,
        checkpoint_interval_bytes,
        compact_dead_ratio,
        compact_min_bytes,
        compact_bytes_per_sec,
    } = *maintenance;
    c.resp_addr = resp_addr.unwrap_or(c.resp_addr);
    c.http_addr = http_addr.unwrap_or(c.http_addr);
    c.stream = stream.unwrap_or(c.stream);
    c.key_file = node_key.or(c.key_file);
    c.users_file = users_file.or(c.users_file);
    c.admin_token = admin_token.or(c.admin_token);
    c.max_connections = max_connections.unwrap_or(c.max_connections);
    c.idle_timeout_secs = idle_timeout_secs.unwrap_or(c.idle_timeout_secs);
    c.max_request_bytes = max_request_bytes.unwrap_or(c.max_request_bytes);
    c.write_queue_bytes = write_queue_bytes.unwrap_or(c.write_queue_bytes);
    c.log = log.unwrap_or(c.log);
    c.log_stream = log_stream.unwrap_or(c.log_stream);
    c.replicas = replicas.unwrap_or(c.replicas);
    c.watch = watch.unwrap_or(c.watch);
    c.version_check_horizon = version_check_horizon.unwrap_or(c.version_check_horizon);
    c.verify_checksums = verify_checksums.unwrap_or(c.verify_checksums);
    c.retain_versions = retain_versions.or(c.retain_versions);
    c.retain_duration = retain_duration.or(c.retain_duration);
    c.checkpoint_interval_bytes = checkpoint_interval_bytes.unwrap_or(c.checkpoint_interval_bytes);
    c.compact_dead_ratio = compact_dead_ratio.unwrap_or(c.compact_dead_ratio);
    c.compact_min_bytes = compact_min_bytes.unwrap_or(c.compact_min_bytes);
    c.compact_bytes_per_sec = compact_bytes_per_sec.unwrap_or(c.compact_bytes_per_sec);
    Ok(c)
}
