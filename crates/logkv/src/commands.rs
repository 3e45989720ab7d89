//! The commands that open the node in the data directory: put, get, del,
//! scan and history, each on one stream.
//!
//! Writes are native transactions signed by the node's own key (`node.key`
//! in the data directory, created with mode 0600 on the first write and
//! never printed), appended through the node like any client's; versions
//! are transaction versions, `(position << 16) | index`.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};

use logkv_runtime::apply::{TxResult, Watched};
use logkv_runtime::codec::{native, NATIVE};
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::envelope::TxPart;
use logkv_runtime::keyfile::{self, KeyfileError};
use logkv_runtime::node::{Node, NodeOptions};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use logkv_store::ScanOptions;

use crate::cli::{GlobalArgs, StoreCommand};
use crate::exit::{CliError, Outcome};
use crate::progress::Replay;

/// The node's signing key, inside the data directory.
pub const NODE_KEY_FILE: &str = "node.key";

/// Opens the node, runs `command` on it and closes it, so that a failure
/// to sync at close is reported too.
pub fn run(global: &GlobalArgs, command: StoreCommand) -> Result<Outcome, CliError> {
    let node = open(global)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let outcome = match command {
        StoreCommand::Put { stream, key, value, file } => {
            let key = key.into_encoded_bytes();
            node.store().limits().check_key(&key)?;
            // The value is read after opening, so a slow stdin holds the lock
            // rather than racing another writer.
            let value = read_value(value, file, node.store().limits().max_value_bytes)?;
            let version = write(&node, &global.data_dir, stream, key, native::Op::Put(value))?;
            writeln!(out, "{version}").map_err(CliError::Output)?;
            Outcome::Ok
        }
        StoreCommand::Get { stream, key, at } => {
            let key = key.into_encoded_bytes();
            match node.get(&stream, &key, at)? {
                Some((value, _)) => {
                    out.write_all(&value).map_err(CliError::Output)?;
                    Outcome::Ok
                }
                None => not_found(&key),
            }
        }
        StoreCommand::Del { stream, key } => {
            let key = key.into_encoded_bytes();
            node.store().limits().check_key(&key)?;
            // Read, then write: this process holds the data directory's
            // lock, so no other write comes in between.
            if node.get(&stream, &key, None)?.is_none() {
                not_found(&key)
            } else {
                let version = write(&node, &global.data_dir, stream, key, native::Op::Delete)?;
                writeln!(out, "{version}").map_err(CliError::Output)?;
                Outcome::Ok
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
            for item in node.scan(&stream, options) {
                let kv = item?;
                writeln!(out, "{}\t{}", kv.key.escape_ascii(), kv.value.escape_ascii())
                    .map_err(CliError::Output)?;
            }
            Outcome::Ok
        }
        StoreCommand::History { stream, key } => {
            for h in node.history(&stream, &key.into_encoded_bytes())? {
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
    node.close()?;
    Ok(outcome)
}

/// Signs one native transaction writing `key` in `stream` with the node's
/// key, appends it and waits for its acknowledgement; its version, or why
/// the runtime did not commit it.
fn write(node: &Node, dir: &Path, stream: StreamId, key: Vec<u8>, op: native::Op) -> Result<u64, CliError> {
    let signer = node_key(dir)?;
    let body = native::Body {
        version: u64::MAX,
        check_reads_only: false,
        reads: Vec::new(),
        writes: vec![native::BodyWrite { stream, key, op }],
        controls: Vec::new(),
    };
    let tx = TxPart { codec: NATIVE, tags: body.tags(), body: native::encode(&body) };
    let applied = node.append_local(&signer, vec![tx])?;
    match applied.outcome {
        EntryOutcome::Applied(results) if results == [Some(TxResult::Commit)] => Ok(applied.version),
        EntryOutcome::Applied(results) => Err(CliError::NotCommitted {
            version: applied.version,
            result: match results.first() {
                Some(Some(r)) => r.to_string(),
                _ => "skipped".to_string(),
            },
        }),
        other => Err(CliError::NotCommitted { version: applied.version, result: format!("{other:?}") }),
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
    let options = NodeOptions { store: global.store_options(), watched: Watched::All };
    let mut replay = Replay::default();
    let node =
        Node::open_with_progress(&global.data_dir, options, &mut |done, total| replay.update(done, total))?;
    drop(replay);
    if let Some(t) = &node.store().recovery_report().truncation {
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
    Ok(node)
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
