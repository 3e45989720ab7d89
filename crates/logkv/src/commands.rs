//! The commands on one stream — put, get, del, scan and history — and
//! `tx submit`, run against a [`Target`]: the node in the data directory,
//! or, with `--server`, a running server over JSON-RPC.
//!
//! Writes are native transactions in entries signed by a key of the
//! client's: `--key FILE` if given; else, on the data directory, the node's
//! own key (`node.key` inside it, created with mode 0600 on the first write
//! and never printed), and against a server `./logkv.key`. Versions are
//! transaction versions, `(position << 16) | index`.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;

use futures_util::TryStreamExt;

use logkv_runtime::apply::Watched;
use logkv_runtime::codec::{native, MAX_VALUE_BYTES};
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::keyfile::{self, KeyfileError};
use logkv_runtime::node::{Applied, Node, NodeOptions};
use logkv_runtime::pipeline::{self, Pipeline, PipelineOptions};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use logkv_store::{HistoryEntry, RecoveryReport, ScanOptions};

use crate::cli::{GlobalArgs, StoreCommand, SubmitArgs, DEFAULT_KEY_FILE};
use crate::exit::{CliError, Outcome};
use crate::progress::Replay;
use crate::remote::Remote;

/// The node's signing key, inside the data directory.
pub const NODE_KEY_FILE: &str = "node.key";

/// Where a command's reads and writes go.
pub enum Target {
    /// The node in the data directory, opened (and locked) by this process,
    /// written through its commit pipeline.
    Local { pipeline: Pipeline, dir: PathBuf },
    /// A running server that holds the data directory.
    Remote(Remote),
}

/// What became of an entry's transactions: each one's version and result
/// string (`None` where the node skipped it: a stream it does not watch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub versions: Vec<u64>,
    pub results: Vec<Option<String>>,
}

impl From<logkv_client::Submitted> for Submitted {
    fn from(s: logkv_client::Submitted) -> Self {
        Submitted { versions: s.versions, results: s.results }
    }
}

impl Submitted {
    /// The first transaction that did not commit, as the error that says so.
    pub fn first_failure(&self) -> Option<CliError> {
        self.versions.iter().zip(&self.results).find(|(_, r)| r.as_deref() != Some("Commit")).map(|(v, r)| {
            CliError::NotCommitted { version: *v, result: r.clone().unwrap_or_else(|| "skipped".into()) }
        })
    }

    /// Writes `VERSION<TAB>RESULT` per transaction (`skipped` for none).
    pub fn print(&self, out: &mut impl Write) -> Result<(), CliError> {
        for (version, result) in self.versions.iter().zip(&self.results) {
            writeln!(out, "{version}\t{}", result.as_deref().unwrap_or("skipped"))
                .map_err(CliError::Output)?;
        }
        Ok(())
    }

    /// The transactions' versions and results from what the node applied,
    /// whose `version` is that of the last of `count` consecutive ones.
    fn from_applied(applied: Applied, count: usize) -> Result<Self, CliError> {
        match applied.outcome {
            EntryOutcome::Applied(results) => {
                let first = applied.version + 1 - count as u64;
                Ok(Submitted {
                    versions: (first..=applied.version).collect(),
                    results: results.into_iter().map(|r| r.map(|r| r.to_string())).collect(),
                })
            }
            EntryOutcome::Malformed(e) | EntryOutcome::UpgradeNeeded(e) => Err(CliError::NotCommitted {
                version: applied.version,
                result: format!("not a well-formed entry, nothing applied: {e}"),
            }),
        }
    }
}

impl Target {
    /// The server of `--server`, else the node in the data directory.
    pub fn open(global: &GlobalArgs) -> Result<Self, CliError> {
        match &global.server {
            Some(url) => Ok(Target::Remote(Remote::connect(
                url,
                global.server_ca.as_deref(),
                global.server_token.as_deref(),
            )?)),
            None => {
                let pipeline = Pipeline::start(Arc::new(open(global)?), None, PipelineOptions::default());
                Ok(Target::Local { pipeline, dir: global.store.data_dir.clone() })
            }
        }
    }

    /// Closes the node (syncing it, so a failure to sync is reported too).
    pub fn close(self) -> Result<(), CliError> {
        match self {
            Target::Local { pipeline, .. } => {
                let node = pipeline.node().clone();
                pipeline.close();
                let node = Arc::into_inner(node).expect("the pipeline released the node");
                Ok(node.close()?)
            }
            Target::Remote(_) => Ok(()),
        }
    }

    /// The key that signs this command's entries: `key` if given, else the
    /// node's own key (created if missing) or, against a server,
    /// [`DEFAULT_KEY_FILE`].
    pub fn signer(&self, key: Option<&Path>) -> Result<Signer, CliError> {
        match (key, self) {
            (Some(path), _) => load_key(path),
            (None, Target::Local { dir, .. }) => node_key(dir),
            (None, Target::Remote(_)) => load_key(Path::new(DEFAULT_KEY_FILE)),
        }
    }

    /// Signs the planned `txs` into one entry with `signer` at its next
    /// nonce (protocol 2, as a node signs its own; against a server, the
    /// client signs), submits it and waits until it is applied and
    /// acknowledged.
    pub fn write(&self, signer: &Signer, txs: Vec<native::Body>) -> Result<Submitted, CliError> {
        match self {
            Target::Local { pipeline, .. } => {
                let count = txs.len();
                let applied =
                    pipeline.write_blocking(pipeline::Write::Local { signer: signer.clone(), txs })?;
                Submitted::from_applied(applied, count)
            }
            Target::Remote(remote) => Ok(remote.block_on(remote.client.write(signer, txs))?.into()),
        }
    }

    /// Submits an entry signed elsewhere and waits until it is applied.
    fn submit(&self, entry: &[u8]) -> Result<Submitted, CliError> {
        match self {
            Target::Local { pipeline, .. } => {
                let applied = pipeline.write_blocking(pipeline::Write::Signed(entry.to_vec()))?;
                let count = match &applied.outcome {
                    EntryOutcome::Applied(results) => results.len(),
                    _ => 0,
                };
                Submitted::from_applied(applied, count)
            }
            Target::Remote(remote) => Ok(remote.block_on(remote.client.submit(entry))?.into()),
        }
    }

    fn get(
        &self,
        stream: &StreamId,
        key: &[u8],
        at: Option<u64>,
    ) -> Result<Option<(Vec<u8>, u64)>, CliError> {
        match self {
            Target::Local { pipeline, .. } => Ok(pipeline.node().get(stream, key, at)?),
            Target::Remote(remote) => {
                Ok(remote.block_on(remote.client.get(stream, key, at))?.map(|v| (v.value, v.version)))
            }
        }
    }

    /// The version of `key`'s live value, if it has one.
    fn live_version(&self, stream: &StreamId, key: &[u8]) -> Result<Option<u64>, CliError> {
        match self {
            Target::Local { pipeline, .. } => {
                Ok(pipeline.node().get(stream, key, None)?.map(|(_, version)| version))
            }
            Target::Remote(remote) => {
                Ok(remote.block_on(remote.client.meta(stream, key, None))?.map(|meta| meta.version))
            }
        }
    }

    fn scan(
        &self,
        stream: &StreamId,
        options: ScanOptions,
        mut each: impl FnMut(Vec<u8>, Vec<u8>) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        match self {
            Target::Local { pipeline, .. } => {
                for item in pipeline.node().scan(stream, options) {
                    let kv = item?;
                    each(kv.key, kv.value)?;
                }
                Ok(())
            }
            Target::Remote(remote) => remote.block_on(async {
                let mut found = pin!(remote.client.scan(*stream, options));
                while let Some(kv) = found.try_next().await? {
                    each(kv.key, kv.value)?;
                }
                Ok(())
            }),
        }
    }

    fn history(&self, stream: &StreamId, key: &[u8]) -> Result<Vec<HistoryEntry>, CliError> {
        match self {
            Target::Local { pipeline, .. } => Ok(pipeline.node().history(stream, key)?),
            Target::Remote(remote) => Ok(remote.block_on(remote.client.history(stream, key, None))?),
        }
    }

    /// Checks `key` against the node's limits; a server checks its own.
    fn check_key(&self, key: &[u8]) -> Result<(), CliError> {
        match self {
            Target::Local { pipeline, .. } => Ok(pipeline.node().store().limits().check_key(key)?),
            Target::Remote(_) => Ok(()),
        }
    }

    /// The largest value this client reads from a file or stdin: the node's
    /// limit, or the protocol's for a server (which applies its own).
    fn max_value_bytes(&self) -> usize {
        match self {
            Target::Local { pipeline, .. } => pipeline.node().store().limits().max_value_bytes,
            Target::Remote(_) => MAX_VALUE_BYTES,
        }
    }
}

/// Opens the target, runs `command` on it and closes it.
pub fn run(global: &GlobalArgs, command: StoreCommand) -> Result<Outcome, CliError> {
    let target = Target::open(global)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let outcome = match command {
        StoreCommand::Put { stream, key, value, file } => {
            let key = key.into_encoded_bytes();
            target.check_key(&key)?;
            let signer = target.signer(global.key_file.as_deref())?;
            // The value is read after opening, so a slow stdin holds the lock
            // rather than racing another writer.
            let value = read_value(value, file, target.max_value_bytes())?;
            let version = write(&target, &signer, stream, key, native::Op::Put(value.into()), None)?;
            writeln!(out, "{version}").map_err(CliError::Output)?;
            Outcome::Ok
        }
        StoreCommand::Get { stream, key, at } => {
            let key = key.into_encoded_bytes();
            match target.get(&stream, &key, at)? {
                Some((value, _)) => {
                    out.write_all(&value).map_err(CliError::Output)?;
                    Outcome::Ok
                }
                None => not_found(&key),
            }
        }
        StoreCommand::Del { stream, key } => {
            let key = key.into_encoded_bytes();
            target.check_key(&key)?;
            let signer = target.signer(global.key_file.as_deref())?;
            match target.live_version(&stream, &key)? {
                None => not_found(&key),
                Some(read) => {
                    let version = write(&target, &signer, stream, key, native::Op::Delete, Some(read))?;
                    writeln!(out, "{version}").map_err(CliError::Output)?;
                    Outcome::Ok
                }
            }
        }
        StoreCommand::Scan { stream, prefix, start, end, reverse, limit, at } => {
            let options = match prefix {
                Some(p) => ScanOptions::prefix(&p.into_encoded_bytes()),
                None => ScanOptions {
                    start: start.map_or(Bound::Unbounded, |k| Bound::Included(k.into_encoded_bytes())),
                    end: end.map_or(Bound::Unbounded, |k| Bound::Excluded(k.into_encoded_bytes())),
                    ..ScanOptions::default()
                },
            };
            let options = ScanOptions { reverse, limit, at, ..options };
            target.scan(&stream, options, |key, value| {
                writeln!(out, "{}\t{}", key.escape_ascii(), value.escape_ascii()).map_err(CliError::Output)
            })?;
            Outcome::Ok
        }
        StoreCommand::History { stream, key } => {
            for h in target.history(&stream, &key.into_encoded_bytes())? {
                if h.deleted {
                    writeln!(out, "{}\tdelete", h.version)
                } else {
                    writeln!(out, "{}\tput {} bytes", h.version, h.value_len)
                }
                .map_err(CliError::Output)?;
            }
            Outcome::Ok
        }
    };
    out.flush().map_err(CliError::Output)?;
    target.close()?;
    Ok(outcome)
}

/// `logkv tx submit`: submits a signed entry as it is; prints each
/// transaction's version and result; fails if any did not commit.
pub fn submit(global: &GlobalArgs, args: SubmitArgs) -> Result<Outcome, CliError> {
    let entry = crate::runtime_cmds::hex_or_file(args.hex, args.file)?;
    let target = Target::open(global)?;
    let submitted = target.submit(&entry)?;
    target.close()?;
    report(&submitted)
}

/// Prints `VERSION<TAB>RESULT` per transaction; the first that did not
/// commit is the command's error.
pub fn report(submitted: &Submitted) -> Result<Outcome, CliError> {
    let mut out = io::stdout().lock();
    submitted.print(&mut out)?;
    out.flush().map_err(CliError::Output)?;
    submitted.first_failure().map_or(Ok(Outcome::Ok), Err)
}

/// Writes `key` in `stream` with one native transaction signed by `signer`;
/// its version, or why the runtime did not commit it. With `read_at`, the
/// transaction reads the key at that version first, so it does not commit
/// if anything wrote the key since (a server holds no lock for the client
/// between its read and its write).
fn write(
    target: &Target,
    signer: &Signer,
    stream: StreamId,
    key: Vec<u8>,
    op: native::Op,
    read_at: Option<u64>,
) -> Result<u64, CliError> {
    let submitted = target.write(signer, vec![logkv_client::one_write(stream, &key, op, read_at)])?;
    match submitted.first_failure() {
        Some(e) => Err(e),
        // One transaction written, so one version.
        None => Ok(submitted.versions[0]),
    }
}

/// Loads a signing key; a missing file is an error that says how to get one.
pub fn load_key(path: &Path) -> Result<Signer, CliError> {
    match keyfile::load(path) {
        Err(KeyfileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Err(CliError::NoKey { path: path.to_path_buf() })
        }
        loaded => loaded.map_err(CliError::Key),
    }
}

/// The node's signing key, created (mode 0600) if the data directory has
/// none yet. Called with the data directory locked.
fn node_key(dir: &Path) -> Result<Signer, CliError> {
    let path = dir.join(NODE_KEY_FILE);
    match keyfile::create(&path) {
        Ok(_) | Err(KeyfileError::Exists { .. }) => {}
        Err(e) => return Err(CliError::Key(e)),
    }
    keyfile::load(&path).map_err(CliError::Key)
}

/// Opens the node (watching every stream) and warns about a cut-off tail.
fn open(global: &GlobalArgs) -> Result<Node, CliError> {
    let options =
        NodeOptions { store: global.store.store_options(), watched: Watched::All, ..NodeOptions::default() };
    let mut replay = Replay::default();
    let node = Node::open_with_progress(&global.store.data_dir, options, &mut |done, total| {
        replay.update(done, total)
    })?;
    drop(replay);
    warn_recovery(node.store().recovery_report());
    Ok(node)
}

/// Warns on stderr when opening cut off a torn or damaged tail, and loudly
/// when what it cut was durable (`--recovery truncate` only).
pub fn warn_recovery(report: &RecoveryReport) {
    if let Some((first, last)) = report.lost_durable {
        eprintln!(
            "logkv: warning: positions {first}..={last} were durable (a checkpoint or compacted file \
             covered them) and are lost: the log no longer holds them"
        );
    }
    if let Some(t) = &report.truncation {
        let removed = match t.removed_segments.len() {
            0 => String::new(),
            n => format!(", removed {n} later segment file(s)"),
        };
        eprintln!(
            "logkv: warning: recovery cut {} at offset {}, dropping {} bytes ({}){removed}",
            t.file.display(),
            t.offset,
            t.dropped_bytes,
            t.reason
        );
    }
}

/// The value given on the command line, else the file's or stdin's bytes,
/// reading at most one byte past the limit.
fn read_value(value: Option<OsString>, file: Option<PathBuf>, limit: usize) -> Result<Vec<u8>, CliError> {
    if let Some(v) = value {
        return Ok(v.into_encoded_bytes());
    }
    let (from, reader): (String, Box<dyn Read>) = match file {
        Some(path) => {
            let from = path.display().to_string();
            match File::open(&path) {
                Ok(f) => (from, Box::new(f)),
                Err(source) => return Err(CliError::ReadValue { from, source }),
            }
        }
        None => ("stdin".to_string(), Box::new(io::stdin().lock())),
    };
    let mut value = Vec::new();
    if let Err(source) = reader.take(limit as u64 + 1).read_to_end(&mut value) {
        return Err(CliError::ReadValue { from, source });
    }
    if value.len() > limit {
        return Err(CliError::ValueTooLarge { from, limit });
    }
    Ok(value)
}

fn not_found(key: &[u8]) -> Outcome {
    eprintln!("logkv: key not found: {}", key.escape_ascii());
    Outcome::NotFound
}
