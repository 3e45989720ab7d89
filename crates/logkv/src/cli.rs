//! The command line: global store options and one subcommand.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use logkv_log::format::{FRAME_OVERHEAD, MAX_SEGMENT_BYTES, SEGMENT_HEADER_LEN};
use logkv_runtime::types::StreamId;
use logkv_store::{Durability, Limits, LogConfig, RecoveryMode, StoreOptions};

/// The smallest segment the log accepts: a header and one empty frame.
const MIN_SEGMENT_BYTES: u64 = SEGMENT_HEADER_LEN + FRAME_OVERHEAD as u64;

/// logkv: a log-structured key-value store.
///
/// Keys and values are raw bytes. `scan` prints them escaped (see its help);
/// `get` prints a value exactly as stored.
///
/// Exit codes: 0 ok, 1 key not found, 2 usage or limit error, 3 corruption or
/// I/O error (including a data directory locked by another process).
#[derive(Debug, Parser)]
#[command(name = "logkv", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How to open the data directory; accepted before or after the subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "Store options")]
pub struct GlobalArgs {
    /// The data directory.
    #[arg(long, global = true, env = "LOGKV_DATA_DIR", default_value = "./logkv-data")]
    pub data_dir: PathBuf,
    /// When a write is acknowledged (see docs/durability.md).
    #[arg(long, global = true, value_enum, default_value_t = DurabilityArg::Always)]
    pub durability: DurabilityArg,
    /// `periodic`: longest time a write waits before it is synced.
    #[arg(long, global = true, default_value_t = 1000)]
    pub flush_interval_ms: u64,
    /// `periodic`: buffered bytes that trigger a sync before the interval ends.
    #[arg(long, global = true, default_value_t = 4 << 20)]
    pub flush_size_bytes: usize,
    /// Capacity of each new segment file.
    #[arg(
        long,
        global = true,
        default_value_t = LogConfig::default().segment_size_bytes,
        value_parser = clap::value_parser!(u64).range(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES),
    )]
    pub segment_size_bytes: u64,
    /// What opening does with damage that is not a torn tail.
    #[arg(long, global = true, value_enum, default_value_t = RecoveryArg::Strict)]
    pub recovery: RecoveryArg,
    /// Longest key accepted.
    #[arg(long, global = true, default_value_t = Limits::default().max_key_bytes)]
    pub max_key_bytes: usize,
    /// Largest value accepted.
    #[arg(long, global = true, default_value_t = Limits::default().max_value_bytes)]
    pub max_value_bytes: usize,
}

/// `--durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Acknowledge after fdatasync; nothing acknowledged is ever lost.
    Always,
    /// Acknowledge from the buffer; sync every interval or size threshold.
    Periodic,
    /// Acknowledge once written to the OS; never sync.
    None,
}

/// `--recovery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecoveryArg {
    /// Refuse to open on mid-log corruption, naming file and offset.
    Strict,
    /// Cut the log at the first damage, dropping everything after it.
    Truncate,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Store(StoreCommand),
    /// Verifies every checksum of every segment without changing anything and
    /// prints per-segment statistics; exit 3 on damage that is not a torn tail.
    Inspect,
    /// Signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Transaction bodies in the 0G format.
    #[command(subcommand)]
    Tx(TxCommand),
}

/// `logkv key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Writes a new secp256k1 key file (mode 0600, never overwritten) and
    /// prints its Ethereum-style address; the secret is never printed.
    New {
        /// Where to write the key.
        #[arg(long, default_value = "./logkv.key")]
        out: PathBuf,
    },
}

/// `logkv tx …`.
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Prints a 0G-format body as JSON: version (a decimal string), reads,
    /// writes (base64 keys and values; an empty value deletes) and controls
    /// (op names, base64 keys, 0x accounts).
    Decode {
        /// The body as hex (`0x` optional).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        hex: Option<String>,
        /// Read the raw body bytes from this file instead.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Reads the JSON of `tx decode` (from --file or stdin) and prints the
    /// body as 0x-hex, byte-identical to the body it came from.
    Encode {
        /// Read the JSON from this file instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

/// The stream the key-value commands use unless `--stream` names another:
/// `0x` and 64 zeros.
pub const DEFAULT_STREAM: &str = "0x0000000000000000000000000000000000000000000000000000000000000000";

/// The commands that open the node in the data directory (and so take its
/// lock and replay its log). Each works on one stream; writes are
/// transactions signed by the node's own key (`node.key` in the data
/// directory, created on the first write) and print their transaction
/// version, `(position << 16) | index`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Sets KEY to VALUE (or the contents of --file, or stdin); prints the version.
    ///
    /// One native Put transaction: an empty value is a value, not a delete.
    Put {
        /// The stream (0x and 64 hex digits).
        #[arg(long, default_value = DEFAULT_STREAM)]
        stream: StreamId,
        key: OsString,
        #[arg(conflicts_with = "file")]
        value: Option<OsString>,
        /// Read the value from this file.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Writes KEY's value to stdout, byte for byte; exit 1 if there is none.
    Get {
        /// The stream (0x and 64 hex digits).
        #[arg(long, default_value = DEFAULT_STREAM)]
        stream: StreamId,
        key: OsString,
        /// Read as of this version.
        #[arg(long)]
        at: Option<u64>,
    },
    /// Deletes KEY; prints the version of the delete; exit 1 if KEY did not exist.
    ///
    /// KEY is read first (under the data directory's lock, so nothing can
    /// write in between); if it has a live value, one native Delete
    /// transaction is appended, else nothing is.
    Del {
        /// The stream (0x and 64 hex digits).
        #[arg(long, default_value = DEFAULT_STREAM)]
        stream: StreamId,
        key: OsString,
    },
    /// Prints `KEY<TAB>VALUE` lines in key order.
    ///
    /// Keys and values are escaped like Rust's `escape_ascii`: `\t`, `\n`,
    /// `\r`, `\\`, `\'` and `\"`, and `\xNN` for any other byte outside
    /// printable ASCII, so every line holds exactly one pair.
    Scan {
        /// The stream (0x and 64 hex digits).
        #[arg(long, default_value = DEFAULT_STREAM)]
        stream: StreamId,
        /// Only keys starting with this.
        #[arg(long, conflicts_with_all = ["start", "end"])]
        prefix: Option<OsString>,
        /// First key (inclusive).
        #[arg(long)]
        start: Option<OsString>,
        /// Key to stop before (exclusive).
        #[arg(long)]
        end: Option<OsString>,
        /// Largest key first.
        #[arg(long)]
        reverse: bool,
        /// At most this many pairs.
        #[arg(long)]
        limit: Option<usize>,
        /// Read as of this version.
        #[arg(long)]
        at: Option<u64>,
    },
    /// Prints KEY's versions, newest first: `VERSION<TAB>put N bytes` or `VERSION<TAB>delete`.
    History {
        /// The stream (0x and 64 hex digits).
        #[arg(long, default_value = DEFAULT_STREAM)]
        stream: StreamId,
        key: OsString,
    },
}

impl GlobalArgs {
    /// The store options these flags describe.
    pub fn store_options(&self) -> StoreOptions {
        let durability = match self.durability {
            DurabilityArg::Always => Durability::Always,
            DurabilityArg::Periodic => Durability::Periodic {
                flush_interval: Duration::from_millis(self.flush_interval_ms),
                flush_size_bytes: self.flush_size_bytes,
            },
            DurabilityArg::None => Durability::None,
        };
        let recovery = match self.recovery {
            RecoveryArg::Strict => RecoveryMode::Strict,
            RecoveryArg::Truncate => RecoveryMode::TruncateAtCorruption,
        };
        StoreOptions {
            log: LogConfig { segment_size_bytes: self.segment_size_bytes, durability, recovery },
            limits: Limits {
                max_key_bytes: self.max_key_bytes,
                max_value_bytes: self.max_value_bytes,
                ..Limits::default()
            },
            ..StoreOptions::default()
        }
    }
}
