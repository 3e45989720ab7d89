//! The commands that need no data directory: signing keys and transaction
//! bodies (`logkv key …`, `logkv tx …`).

use std::io::{self, Read, Write};
use std::path::PathBuf;

use logkv_runtime::codec::json;
use logkv_runtime::{entry_json, keyfile};

use crate::cli::{KeyCommand, TxBodyCommand};
use crate::exit::{CliError, Outcome};

/// Runs `logkv key …`.
pub fn key(command: KeyCommand) -> Result<Outcome, CliError> {
    match command {
        KeyCommand::New { out } => {
            let address = keyfile::create(&out).map_err(CliError::Key)?;
            println!("{address}");
            Ok(Outcome::Ok)
        }
    }
}

/// Runs `logkv tx decode|encode`.
pub fn tx(command: TxBodyCommand) -> Result<Outcome, CliError> {
    let mut out = io::stdout().lock();
    match command {
        TxBodyCommand::Decode { hex, file, entry } => {
            let bytes = hex_or_file(hex, file)?;
            let text = if entry { entry_json::entry_to_json(&bytes) } else { json::encode_json(&bytes) };
            let text = text.map_err(|e| CliError::BadInput(e.to_string()))?;
            writeln!(out, "{text}").map_err(CliError::Output)?;
        }
        TxBodyCommand::Encode { file } => {
            let (from, text) = match file {
                Some(path) => (
                    path.display().to_string(),
                    std::fs::read_to_string(&path)
                        .map_err(|source| CliError::ReadValue { from: path.display().to_string(), source })?,
                ),
                None => {
                    let mut text = String::new();
                    io::stdin()
                        .read_to_string(&mut text)
                        .map_err(|source| CliError::ReadValue { from: "stdin".into(), source })?;
                    ("stdin".into(), text)
                }
            };
            // An entry's document is the one with transactions.
            let is_entry =
                serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|doc| doc.get("txs").is_some());
            let bytes = if is_entry { entry_json::entry_from_json(&text) } else { json::decode_json(&text) };
            let bytes = bytes.map_err(|e| CliError::BadInput(format!("{from}: {e}")))?;
            writeln!(out, "0x{}", ::hex::encode(bytes)).map_err(CliError::Output)?;
        }
    }
    Ok(Outcome::Ok)
}

/// Bytes given as hex on the command line (`0x` optional), else a file's
/// raw bytes; clap makes sure one of the two is given.
pub fn hex_or_file(hex: Option<String>, file: Option<PathBuf>) -> Result<Vec<u8>, CliError> {
    match (hex, file) {
        (Some(hex), _) => {
            let digits = hex.trim().trim_start_matches("0x");
            ::hex::decode(digits).map_err(|e| CliError::BadInput(format!("not hex: {e}")))
        }
        (None, Some(path)) => std::fs::read(&path)
            .map_err(|source| CliError::ReadValue { from: path.display().to_string(), source }),
        (None, None) => unreachable!("clap requires HEX or --file"),
    }
}
