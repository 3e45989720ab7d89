//! The commands that open the store: put, get, del, scan and history.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::ops::Bound;
use std::path::PathBuf;

use logkv_store::{ScanOptions, Store};

use crate::cli::{GlobalArgs, StoreCommand};
use crate::exit::{CliError, Outcome};
use crate::progress::Replay;

/// Opens the store, runs `command` on it and closes it, so that a failure
/// to sync at close is reported too.
pub fn run(global: &GlobalArgs, command: StoreCommand) -> Result<Outcome, CliError> {
    let store = open(global)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let outcome = match command {
        StoreCommand::Put { key, value, file } => {
            // The value is read after opening, so a slow stdin holds the lock
            // rather than racing another writer.
            let value = read_value(value, file, store.limits().max_value_bytes)?;
            let version = store.put(&key.into_encoded_bytes(), &value)?;
            writeln!(out, "{version}").map_err(CliError::Output)?;
            Outcome::Ok
        }
        StoreCommand::Get { key, at } => {
            let key = key.into_encoded_bytes();
            match store.get_at(&key, at.unwrap_or(u64::MAX))? {
                Some(v) => {
                    out.write_all(&v.data).map_err(CliError::Output)?;
                    Outcome::Ok
                }
                None => not_found(&key),
            }
        }
        StoreCommand::Del { key } => {
            let key = key.into_encoded_bytes();
            match store.delete(&key)? {
                Some(version) => {
                    writeln!(out, "{version}").map_err(CliError::Output)?;
                    Outcome::Ok
                }
                None => not_found(&key),
            }
        }
        StoreCommand::Scan { prefix, start, end, reverse, limit, at } => {
            let options = match prefix {
                Some(p) => ScanOptions::prefix(&p.into_encoded_bytes()),
                None => ScanOptions {
                    start: start.map_or(Bound::Unbounded, |k| Bound::Included(k.into_encoded_bytes())),
                    end: end.map_or(Bound::Unbounded, |k| Bound::Excluded(k.into_encoded_bytes())),
                    ..ScanOptions::default()
                },
            };
            let options = ScanOptions { reverse, limit, at, ..options };
            for item in store.scan(options) {
                let (key, value) = item?;
                writeln!(out, "{}\t{}", key.escape_ascii(), value.data.escape_ascii())
                    .map_err(CliError::Output)?;
            }
            Outcome::Ok
        }
        StoreCommand::History { key } => {
            for h in store.history(&key.into_encoded_bytes())? {
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
    store.close()?;
    Ok(outcome)
}

/// Opens the store with a replay progress bar and warns about a cut-off tail.
fn open(global: &GlobalArgs) -> Result<Store, CliError> {
    let mut replay = Replay::default();
    let store =
        Store::open_with_progress(&global.data_dir, global.store_options(), &mut |scanned, total| {
            replay.update(scanned, total)
        })?;
    drop(replay);
    if let Some(t) = &store.recovery_report().truncation {
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
    Ok(store)
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
