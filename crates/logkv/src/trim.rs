//! `logkv log trim`: purges a shared log's JetStream stream below a
//! position, so it does not grow forever (docs/distributed.md).
//!
//! Trimming is safe below the oldest position any node still needs: with
//! `--nodes`, each node is asked how far its newest checkpoint reaches
//! (`admin_nodeInfo`'s `sharedLog.checkpointThrough`) and the stream is
//! trimmed below the smallest of those + 1. A node without a checkpoint
//! needs the whole stream, so then nothing is trimmed. `--below` trims
//! where it is told: a node behind that point can no longer catch up from
//! the stream and must be started from another node's checkpoint.

use std::fmt;
use std::io::Write;

use clap::{ArgGroup, Args};
use logkv_nats::{ConfigError, JetStreamLog, NatsConfig, OpenError};
use logkv_runtime::shared_log::SharedLogError;
use serde_json::Value;

use crate::exit::{CliError, Outcome};
use crate::remote::{Remote, RemoteError};

/// `logkv log trim` flags.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("point").required(true).args(["below", "nodes"])))]
pub struct TrimArgs {
    /// The servers: nats://HOST:PORT[,HOST:PORT...].
    #[arg(long, env = "LOGKV_SHARED_LOG", value_name = "URL")]
    pub log: String,
    /// The JetStream stream's name.
    #[arg(long, env = "LOGKV_LOG_STREAM", value_name = "NAME", default_value = "logkv")]
    pub log_stream: String,
    /// Purge every position below SEQ (SEQ becomes the first kept). Nodes
    /// that have not applied up to SEQ - 1 can no longer catch up from the
    /// stream.
    #[arg(long, value_name = "SEQ")]
    pub below: Option<u64>,
    /// Ask these nodes (their JSON-RPC URLs) how far their newest
    /// checkpoints reach and purge only what all of them have covered;
    /// name every node of the stream.
    #[arg(long, value_name = "URL,...", value_delimiter = ',')]
    pub nodes: Option<Vec<String>>,
    /// The nodes' admin token (`admin_nodeInfo` is an administrative call).
    #[arg(long, env = "LOGKV_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

/// Why the stream was not trimmed.
#[derive(Debug)]
pub enum TrimError {
    /// `--log` or `--log-stream` cannot be used.
    Config(ConfigError),
    /// The stream cannot be reached or does not exist.
    Open(OpenError),
    /// Reading or purging the stream failed.
    Log(SharedLogError),
    /// A node of `--nodes` did not answer as expected.
    Node { url: String, error: RemoteError },
    /// A node does not follow this stream.
    OtherLog { url: String, follows: String },
    /// A node has no checkpoint: it needs the whole stream.
    NoCheckpoint { url: String },
}

impl fmt::Display for TrimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrimError::Config(e) => e.fmt(f),
            TrimError::Open(e) => e.fmt(f),
            TrimError::Log(e) => e.fmt(f),
            TrimError::Node { url, error } => write!(f, "node {url}: {error}"),
            TrimError::OtherLog { url, follows } => {
                write!(f, "node {url} does not follow this stream (it follows {follows}); nothing trimmed")
            }
            TrimError::NoCheckpoint { url } => write!(
                f,
                "node {url} has no checkpoint (no sharedLog.checkpointThrough), so it needs the whole stream; \
                 nothing trimmed"
            ),
        }
    }
}

impl TrimError {
    /// Whether the fault is in the command (bad flags), not in the
    /// servers, the nodes or the stream.
    pub fn is_usage(&self) -> bool {
        matches!(self, TrimError::Config(_) | TrimError::Log(SharedLogError::Refused(_)))
            || matches!(self, TrimError::Node { error, .. } if error.is_usage())
    }
}

/// Runs `logkv log trim`.
pub fn run(args: TrimArgs) -> Result<Outcome, CliError> {
    let mut out = std::io::stdout().lock();
    // The replica count is the stream's own: an existing stream is opened
    // whatever it is.
    let config = NatsConfig::new(&args.log, &args.log_stream, 1).map_err(TrimError::Config)?;
    let below = match args.below {
        Some(below) => below,
        None => {
            let mut oldest = None::<u64>;
            for url in args.nodes.iter().flatten() {
                let through = checkpoint_through(url, &args.log_stream, args.admin_token.as_deref())?;
                writeln!(out, "node {url}: checkpoint through position {through}")
                    .map_err(CliError::Output)?;
                oldest = Some(oldest.map_or(through, |o| o.min(through)));
            }
            oldest.expect("clap requires --below or --nodes with a value").saturating_add(1)
        }
    };
    let log = JetStreamLog::open_existing(&config).map_err(TrimError::Open)?;
    let purged = log.trim_below(below).map_err(TrimError::Log)?;
    let first = log.handle().block_on(log.first_position()).map_err(TrimError::Log)?;
    log.close();
    writeln!(
        out,
        "purged {purged} entries below position {below} of stream {}; it now starts at position {first}",
        args.log_stream
    )
    .map_err(CliError::Output)?;
    Ok(Outcome::Ok)
}

/// The position node `url`'s newest checkpoint reaches on `stream`.
fn checkpoint_through(url: &str, stream: &str, token: Option<&str>) -> Result<u64, TrimError> {
    let node_error = |error| TrimError::Node { url: url.to_string(), error };
    let info = Remote::new(url).with_admin_token(token).node_info().map_err(node_error)?;
    let shared_log = &info["sharedLog"];
    let follows = shared_log["stream"].as_str();
    if follows != Some(stream) {
        let follows = follows.map_or("no shared log".to_string(), |s| format!("stream {s}"));
        return Err(TrimError::OtherLog { url: url.to_string(), follows });
    }
    match &shared_log["checkpointThrough"] {
        Value::Null => Err(TrimError::NoCheckpoint { url: url.to_string() }),
        through => through.as_u64().ok_or_else(|| {
            let detail = format!("sharedLog.checkpointThrough is {through}, not a position");
            node_error(RemoteError::BadResponse { method: "admin_nodeInfo", detail })
        }),
    }
}
