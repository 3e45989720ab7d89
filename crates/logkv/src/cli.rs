//! The command line: global store options and one subcommand.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use logkv_runtime::codec::{Control, ControlOp};
use logkv_runtime::types::{Address, StreamId};
use logkv_server::config::StoreSettings;

/// logkv: a log-structured key-value store.
///
/// Keys and values are raw bytes. `scan` prints them escaped (see its help);
/// `get` prints a value exactly as stored.
///
/// With `--server URL` the key-value, `tx submit` and `acl` commands talk to
/// a running `logkv serve` instead of opening the data directory.
///
/// Exit codes: 0 ok, 1 key not found, 2 usage or limit error, 3 corruption or
/// I/O error (including a data directory locked by another process, an
/// unreachable server and a write that did not commit).
#[derive(Debug, Parser)]
#[command(name = "logkv", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The command line, with each setting's environment variable in its help.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    use logkv_server::config::document_env;
    document_env(Cli::command())
        .mut_subcommand("serve", document_env)
        .mut_subcommand("repair", document_env)
        .mut_subcommand("log", |log| log.mut_subcommand("trim", document_env))
        .mut_subcommand("checkpoint", |checkpoint| checkpoint.mut_subcommand("import", document_env))
}

/// How to open the data directory, and how to reach a server; accepted
/// before or after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The configuration file (keys: docs/server.md) [default:
    /// /etc/logkv/logkv.toml, if it exists].
    #[arg(long, global = true, env = "LOGKV_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data directory's settings: the file, then `LOGKV_*` variables,
    /// then these flags (resolved in `main`).
    #[command(flatten)]
    pub store: StoreSettings,
    /// Talk JSON-RPC to the `logkv serve` at this URL instead of opening
    /// the data directory (which a running server holds locked).
    #[arg(long, global = true, env = "LOGKV_SERVER", value_name = "URL", help_heading = "Client options")]
    pub server: Option<String>,
    /// Also trust the CA certificate(s) in this PEM file for an https://
    /// server (--server, --remote, --nodes), besides the system's.
    #[arg(
        long,
        global = true,
        env = "LOGKV_SERVER_CA",
        value_name = "FILE",
        help_heading = "Client options"
    )]
    pub server_ca: Option<PathBuf>,
    /// The bearer token to present to the server of --server: a user's
    /// token when the server has users (docs/server.md, "HTTP access").
    #[arg(
        long,
        global = true,
        env = "LOGKV_SERVER_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        help_heading = "Client options"
    )]
    pub server_token: Option<String>,
    /// The key file that signs writes and access-control changes. Without
    /// it, writes to the data directory are signed by the node's own key
    /// (`node.key` inside it) and writes to a server by `./logkv.key`.
    #[arg(
        long = "key",
        id = "key_file",
        global = true,
        env = "LOGKV_KEY",
        value_name = "FILE",
        help_heading = "Client options"
    )]
    pub key_file: Option<PathBuf>,
}

/// The key file `logkv key new` writes and writes to a server are signed
/// with unless `--key` names another.
pub const DEFAULT_KEY_FILE: &str = "./logkv.key";

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Store(StoreCommand),
    /// Prints a completion script for SHELL, generated from this command
    /// line: `logkv completions bash > /etc/bash_completion.d/logkv`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the manual page (roff), generated from this command line:
    /// `logkv man > logkv.1; man ./logkv.1`.
    Man {
        /// Write a page per command into DIR instead (logkv.1,
        /// logkv-serve.1, ...), for packaging.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Verifies every checksum of every segment without changing anything and
    /// prints per-segment statistics; exit 3 on damage that is not a torn tail.
    Inspect,
    /// Signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Transaction bodies in the 0G format, and submitting signed entries.
    #[command(subcommand)]
    Tx(TxCommand),
    /// Access control of a stream: one signed transaction per command,
    /// printing `VERSION<TAB>RESULT`; exit 3 if it did not commit.
    Acl(AclCommand),
    /// Runs a node: the Redis protocol and JSON-RPC over HTTP on the data
    /// directory (see docs/server.md). Settings come from the config file,
    /// then LOGKV_* environment variables, then flags (flags win); the
    /// store options apply too. Stops gracefully on SIGINT or SIGTERM.
    Serve(Box<crate::serve::ServeArgs>),
    /// Repairs a stopped shared-log node's damaged local log from the
    /// stream, byte for byte at the same offsets (docs/distributed.md,
    /// "Repair"); with --from-export, rebuilds the node's copy from another
    /// node's export where that cannot be done.
    ///
    /// Takes the settings `serve` takes (config file, LOGKV_* variables,
    /// flags), so give it the node's. Prints `repaired file=F offset=N
    /// bytes=N positions=A..=B stream_positions=A..=B` per stretch, `no
    /// damage`, or after a rebuild `rebuilt data_dir=DIR from_export=FILE
    /// damaged_dir=OLD follows log=L from_position=P`; exit 3 if the damage
    /// can be repaired neither way.
    Repair(Box<crate::repair::RepairArgs>),
    /// The shared log (a JetStream stream many nodes follow).
    #[command(subcommand)]
    Log(LogCommand),
    /// Writes a checkpoint, so the next start replays only the log after it
    /// (docs/compaction.md); with `export` and `import`, moves a node's
    /// state to a new data directory.
    ///
    /// Prints `checkpoint position=P version=V keys=N bytes=N elapsed_ms=T
    /// path=FILE`, after `opened from=log|compacted|checkpoint
    /// replayed_records=N` when it opened the data directory itself.
    Checkpoint(crate::maintenance_cmds::CheckpointArgs),
    /// Rewrites the log's sealed segments into one compacted file, dropping
    /// the versions retention does not keep (docs/compaction.md).
    ///
    /// A progress bar shows on a terminal. Prints `compacted
    /// through_log_position=P keys=N versions_kept=N histories_cut=N
    /// keys_dropped=N horizon=V input_bytes=N output_bytes=N elapsed_ms=T`;
    /// a checkpoint is written after it.
    Compact(crate::maintenance_cmds::CompactArgs),
    /// Builds a new data directory holding exactly the state as of a
    /// version or a time, and the history before it.
    ///
    /// Reads the data directory of a stopped node and writes --out, which
    /// must be absent or empty. Only the log is copied: the compacted file
    /// and the segments up to the last record at or before the point, so
    /// positions and versions stay what they were and the new directory
    /// takes writes after them; a point inside the compacted part gets a
    /// compacted file cut after that record, refused (exit 3, naming the
    /// oldest point it can reach) where retention dropped the state then.
    /// Prints `restored version=V position=P bytes=N out=DIR`.
    ///
    /// The node key (node.key) is not copied: a restored directory run
    /// next to the original must not sign as the same account, or the two
    /// would number different entries with the same nonces. It gets a key
    /// of its own on its first write, with none of the original's rights
    /// (grant them with `logkv acl`).
    ///
    /// The shared-log marker (shared-log.toml) is not copied either: the
    /// restored directory is a node of its own on its own file log (`logkv
    /// serve` without --log), not a copy of the stream, which would catch
    /// up at once. To start a node of a shared log from another node's
    /// state, use `logkv checkpoint export` and `logkv checkpoint import`.
    Restore(crate::backup_cmds::RestoreArgs),
    /// Writes a data directory of an older on-disk format (format 2) again
    /// in this logkv's format, into a new directory: a node's entries are
    /// applied again in order at their positions and log times (so values,
    /// versions, results and access control come out the same), a plain
    /// store's batches are written again. The old directory is only read;
    /// run it on a stopped node's directory.
    Migrate(crate::migrate::MigrateArgs),
    /// The evaluation harness: `run` measures logkv next to a naive hash
    /// table with snapshots (and peer engines, in a build with them);
    /// `report` writes docs/evaluation/README.md and its charts from the
    /// run records (see docs/evaluation/README.md). Only in a build with
    /// `--features bench`.
    #[cfg(feature = "bench")]
    #[command(subcommand)]
    Bench(logkv_eval::cli::Command),
}

/// `logkv log …`.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Purges the stream's entries below a position (docs/distributed.md);
    /// prints what was purged. With --nodes, only what every node's newest
    /// checkpoint covers; exit 3 if a node has none.
    Trim(crate::trim::TrimArgs),
}

/// `logkv key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Writes a new secp256k1 key file (mode 0600, never overwritten) and
    /// prints its Ethereum-style address; the secret is never printed.
    New {
        /// Where to write the key.
        #[arg(long, default_value = DEFAULT_KEY_FILE)]
        out: PathBuf,
    },
}

/// `logkv tx …`.
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    #[command(flatten)]
    Body(TxBodyCommand),
    /// Submits a signed entry (as built by any client) to the data
    /// directory's node or, with --server, to a server; prints
    /// `VERSION<TAB>RESULT` per transaction; exit 3 if any did not commit.
    Submit(SubmitArgs),
}

/// `logkv tx submit`'s entry.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The entry as hex (`0x` optional).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub hex: Option<String>,
    /// Read the raw entry bytes from this file instead.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// The `tx` commands that only convert bodies, touching no node.
#[derive(Debug, Subcommand)]
pub enum TxBodyCommand {
    /// Prints a 0G-format body as JSON: version (a decimal string), reads,
    /// writes (base64 keys and values; an empty value deletes) and controls
    /// (op names, base64 keys, 0x accounts). With --entry, a whole signed
    /// entry of either protocol, with its 0G and native bodies (codecs 0, 1
    /// and 2) as JSON and any other body as hex.
    Decode {
        /// The body (or entry) as hex (`0x` optional).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        hex: Option<String>,
        /// Read the raw bytes from this file instead.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The bytes are a signed entry, not a 0G body.
        #[arg(long)]
        entry: bool,
    },
    /// Reads the JSON of `tx decode` (from --file or stdin) and prints the
    /// body, or the entry (a document with `txs`), as 0x-hex, byte-identical
    /// to what it came from.
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

/// `logkv acl …`: the stream and the op.
#[derive(Debug, Args)]
pub struct AclCommand {
    /// The stream (0x and 64 hex digits).
    #[arg(long, global = true, default_value = DEFAULT_STREAM)]
    pub stream: StreamId,
    #[command(subcommand)]
    pub op: AclOp,
}

/// Every access-control op of the 0G model (docs/semantics.md). Accounts are
/// `0x` and 40 hex digits; renounce ops act on the signer. The signer
/// needs the right the op asks for: admin for grant-admin, set-special,
/// set-normal and revoke ops; admin or writer for grant-writer; admin or
/// special writer of the key for grant-special-writer.
#[derive(Debug, Subcommand)]
pub enum AclOp {
    /// Makes ACCOUNT an admin of the stream (no op revokes an admin).
    GrantAdmin {
        /// The account (0x and 40 hex digits).
        account: Address,
    },
    /// The signer stops being an admin of the stream.
    RenounceAdmin,
    /// Makes ACCOUNT a writer of the stream's normal keys.
    GrantWriter {
        /// The account (0x and 40 hex digits).
        account: Address,
    },
    /// ACCOUNT stops being a writer of the stream.
    RevokeWriter {
        /// The account (0x and 40 hex digits).
        account: Address,
    },
    /// The signer stops being a writer of the stream.
    RenounceWriter,
    /// Only special writers of KEY (and admins) may write it from now on.
    SetSpecial {
        /// The key.
        key: OsString,
    },
    /// KEY is written by the stream's writers again.
    SetNormal {
        /// The key.
        key: OsString,
    },
    /// Makes ACCOUNT a special writer of KEY.
    GrantSpecialWriter {
        /// The key.
        key: OsString,
        /// The account (0x and 40 hex digits).
        account: Address,
    },
    /// ACCOUNT stops being a special writer of KEY.
    RevokeSpecialWriter {
        /// The key.
        key: OsString,
        /// The account (0x and 40 hex digits).
        account: Address,
    },
    /// The signer stops being a special writer of KEY.
    RenounceSpecialWriter {
        /// The key.
        key: OsString,
    },
}

impl AclOp {
    /// The op as a control of a transaction body on `stream`.
    pub fn control(self, stream: StreamId) -> Control {
        let (op, key, account) = match self {
            AclOp::GrantAdmin { account } => (ControlOp::GrantAdminRole, None, Some(account)),
            AclOp::RenounceAdmin => (ControlOp::RenounceAdminRole, None, None),
            AclOp::GrantWriter { account } => (ControlOp::GrantWriteRole, None, Some(account)),
            AclOp::RevokeWriter { account } => (ControlOp::RevokeWriteRole, None, Some(account)),
            AclOp::RenounceWriter => (ControlOp::RenounceWriteRole, None, None),
            AclOp::SetSpecial { key } => (ControlOp::SetKeyToSpecial, Some(key), None),
            AclOp::SetNormal { key } => (ControlOp::SetKeyToNormal, Some(key), None),
            AclOp::GrantSpecialWriter { key, account } => {
                (ControlOp::GrantSpecialWriteRole, Some(key), Some(account))
            }
            AclOp::RevokeSpecialWriter { key, account } => {
                (ControlOp::RevokeSpecialWriteRole, Some(key), Some(account))
            }
            AclOp::RenounceSpecialWriter { key } => (ControlOp::RenounceSpecialWriteRole, Some(key), None),
        };
        Control { op, stream, key: key.map(OsString::into_encoded_bytes), account }
    }
}
