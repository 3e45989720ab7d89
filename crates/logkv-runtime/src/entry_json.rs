//! A signed entry as a JSON document, for people and tools (`logkv tx
//! decode --entry`, `logkv tx encode`), in either protocol. Each
//! transaction's body is shown as its codec's document (codecs 0, 1 and 2,
//! `crate::codec::json`) or, for other codecs and bodies that do not decode,
//! as raw hex, so that any well-formed entry goes to JSON and back to the
//! same bytes. The signature is carried, not made: encoding does not sign,
//! and does not check the signature (the document of a forged entry is a
//! forged entry).
//!
//! ```json
//! {"protocol": 2, "sender": "0x…", "nonce": "7",
//!  "txs": [{"codec": 2, "tags": ["0x11…"], "body": {"version": "18446744073709551615", …}},
//!          {"codec": 128, "tags": [], "raw": "0x7b7d"}],
//!  "signature": "0x…"}
//! ```

use serde::{Deserialize, Serialize};

use crate::codec::json::{body_bytes, body_doc, decimal, id, unsigned, JsonError};
use crate::envelope::{Entry, EntryView, Protocol, TxPart};
use crate::signing::SIGNATURE_LEN;
use crate::types::StreamId;

/// The JSON document of an entry (pretty-printed). Fails if the bytes are
/// not a well-formed entry; the signature is not checked.
pub fn entry_to_json(bytes: &[u8]) -> Result<String, JsonError> {
    let view = EntryView::parse(bytes)?;
    let txs = view
        .txs()
        .iter()
        .map(|tx| {
            let tags: Vec<StreamId> = tx.tags.iter().collect();
            let body = body_doc(tx.codec, tx.body, &tags);
            let raw = body.is_none().then(|| hex(tx.body));
            TxDoc { codec: tx.codec, tags: tags.iter().map(ToString::to_string).collect(), body, raw }
        })
        .collect();
    let doc = EntryDoc {
        protocol: view.protocol_version(),
        sender: view.sender().to_string(),
        nonce: decimal(view.nonce()),
        txs,
        signature: hex(view.signature()),
    };
    Ok(serde_json::to_string_pretty(&doc)?)
}

/// The entry a JSON document describes, with the document's signature. The
/// bytes must be a well-formed entry.
pub fn entry_from_json(json: &str) -> Result<Vec<u8>, JsonError> {
    let doc: EntryDoc = serde_json::from_str(json)?;
    let protocol = Protocol::from_version(doc.protocol).ok_or_else(|| JsonError::Number {
        at: "protocol".into(),
        expected: "1 or 2",
        got: doc.protocol.to_string(),
    })?;
    let txs = doc
        .txs
        .into_iter()
        .enumerate()
        .map(|(i, tx)| {
            let at = format!("txs[{i}]");
            // Sorted and deduplicated as the entry lists them: a codec 2
            // body's stream indexes point into this list.
            let mut tags = tx
                .tags
                .iter()
                .enumerate()
                .map(|(j, t)| id(t, format!("{at}.tags[{j}]")))
                .collect::<Result<Vec<StreamId>, _>>()?;
            tags.sort();
            tags.dedup();
            let body = match (tx.body, tx.raw) {
                (Some(body), None) => body_bytes(tx.codec, body, &tags, &at)?,
                (None, Some(raw)) => unhex(&raw, format!("{at}.raw"), "the body's bytes")?,
                _ => return Err(JsonError::Tx { at, detail: "give exactly one of body and raw".into() }),
            };
            Ok(TxPart { codec: tx.codec, tags, body })
        })
        .collect::<Result<_, JsonError>>()?;
    let entry =
        Entry { sender: id(&doc.sender, "sender".into())?, nonce: unsigned(&doc.nonce, "nonce")?, txs };
    let signature = unhex(&doc.signature, "signature".into(), "65 bytes")?;
    if signature.len() != SIGNATURE_LEN {
        return Err(JsonError::Hex { at: "signature".into(), expected: "65 bytes" });
    }
    let mut bytes = entry.encode_unsigned(protocol)?;
    bytes.extend_from_slice(&signature);
    EntryView::parse(&bytes)?;
    Ok(bytes)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDoc {
    protocol: u16,
    sender: String,
    nonce: serde_json::Value,
    txs: Vec<TxDoc>,
    signature: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TxDoc {
    codec: u8,
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    format!("0x{}", ::hex::encode(bytes))
}

fn unhex(text: &str, at: String, expected: &'static str) -> Result<Vec<u8>, JsonError> {
    let digits = text.strip_prefix("0x").ok_or_else(|| JsonError::Hex { at: at.clone(), expected })?;
    ::hex::decode(digits).map_err(|_| JsonError::Hex { at, expected })
}
