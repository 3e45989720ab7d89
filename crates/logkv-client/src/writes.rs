//! Writes: entries signed here, with the caller's key, then submitted.
//! The server only checks and logs them; it never holds the key.
//!
//! A write reserves its nonce at the server first (`kv_nextNonce`), so
//! clients sharing a key, or a client using the node's own key, never sign
//! two entries with the same nonce.

use logkv_runtime::codec::{native, Read as BodyRead};
use logkv_runtime::envelope::{Entry, EnvelopeError, Protocol};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::{Address, StreamId};
use serde_json::{json, Value};

use crate::answer::{as_array, u64_field};
use crate::error::{Error, Result};
use crate::Client;

/// What became of a submitted entry (`kv_submit`'s answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The entry's log position.
    pub position: u64,
    /// The newest version: its last transaction's.
    pub version: u64,
    /// Each transaction's version, `(position << 16) | index`.
    pub versions: Vec<u64>,
    /// Each transaction's result string (`"Commit"`, `"VersionConfliction"`,
    /// ...), `None` where the node skipped it (a stream it does not apply).
    /// A failed transaction is a result, not an error: the entry was logged.
    pub results: Vec<Option<String>>,
}

impl Submitted {
    /// Whether every transaction committed.
    pub fn committed(&self) -> bool {
        self.results.iter().all(|r| r.as_deref() == Some("Commit"))
    }
}

impl Client {
    /// Reserves the nonce `account` signs its next entry with
    /// (`kv_nextNonce`).
    pub async fn next_nonce(&self, account: &Address) -> Result<u64> {
        let method = "kv_nextNonce";
        let nonce = self.call(method, json!([account.to_string()])).await?;
        nonce.as_u64().ok_or_else(|| Error::bad_answer(method, format!("nonce {nonce}")))
    }

    /// Submits an entry signed elsewhere (`kv_submit`); answers once the
    /// server has applied it, durable per its durability mode.
    pub async fn submit(&self, entry: &[u8]) -> Result<Submitted> {
        let method = "kv_submit";
        let reply = self.call(method, json!([format!("0x{}", hex::encode(entry))])).await?;
        let bad = |detail: String| Error::bad_answer(method, detail);
        let versions = as_array(method, reply.get("versions").unwrap_or(&Value::Null))?
            .iter()
            .map(|v| v.as_u64().ok_or_else(|| bad(format!("version {v}"))))
            .collect::<Result<Vec<_>>>()?;
        let results = as_array(method, reply.get("results").unwrap_or(&Value::Null))?
            .iter()
            .map(|r| match r {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                other => Err(bad(format!("result {other}"))),
            })
            .collect::<Result<Vec<_>>>()?;
        if versions.len() != results.len() {
            return Err(bad(format!("{} versions for {} results", versions.len(), results.len())));
        }
        Ok(Submitted {
            position: u64_field(method, &reply, "position")?,
            version: u64_field(method, &reply, "version")?,
            versions,
            results,
        })
    }

    /// Signs the native transactions `txs` into one entry with `signer` at
    /// the next nonce the server reserves for it (protocol 2, as a node
    /// signs its own), submits it and answers once it is applied.
    pub async fn write(&self, signer: &Signer, txs: Vec<native::Body>) -> Result<Submitted> {
        let count = txs.len();
        let nonce = self.next_nonce(&signer.address()).await?;
        let entry = signed_entry(signer, nonce, &txs).map_err(Error::Signing)?;
        let submitted = self.submit(&entry).await?;
        if submitted.versions.len() != count {
            let detail = format!("{} results for {count} transactions", submitted.versions.len());
            return Err(Error::bad_answer("kv_submit", detail));
        }
        Ok(submitted)
    }

    /// Sets `key` of `stream` to `value` in one signed transaction. An
    /// empty value is a value, not a delete.
    pub async fn put(
        &self,
        signer: &Signer,
        stream: StreamId,
        key: &[u8],
        value: &[u8],
    ) -> Result<Submitted> {
        self.write(signer, vec![one_write(stream, key, native::Op::Put(value.to_vec().into()), None)]).await
    }

    /// Deletes `key` of `stream` in one signed transaction. With
    /// `read_at`, the transaction reads the key at that version first and
    /// does not commit (`VersionConfliction`) if anything wrote it since:
    /// the server holds no lock for the client between a read and a write.
    pub async fn delete(
        &self,
        signer: &Signer,
        stream: StreamId,
        key: &[u8],
        read_at: Option<u64>,
    ) -> Result<Submitted> {
        self.write(signer, vec![one_write(stream, key, native::Op::Delete, read_at)]).await
    }
}

/// One native transaction writing `op` to `key`; with `read_at`, checking
/// that nothing wrote the key after that version.
pub fn one_write(stream: StreamId, key: &[u8], op: native::Op, read_at: Option<u64>) -> native::Body {
    let (version, reads) = match read_at {
        Some(at) => (at, vec![BodyRead { stream, key: key.to_vec() }]),
        None => (u64::MAX, Vec::new()),
    };
    native::Body {
        version,
        check_reads_only: read_at.is_some(),
        reads,
        writes: vec![native::BodyWrite { stream, key: key.to_vec(), op }],
        controls: Vec::new(),
    }
}

/// `txs` as one entry of `signer`'s at `nonce`, signed.
fn signed_entry(signer: &Signer, nonce: u64, txs: &[native::Body]) -> Result<Vec<u8>, EnvelopeError> {
    let txs = txs.iter().map(|body| native::compact_tx(body, body.tags())).collect();
    Entry { sender: signer.address(), nonce, txs }.encode_signed_as(Protocol::V2, signer)
}
