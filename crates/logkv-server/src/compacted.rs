//! A read older than the history retention keeps (the store's
//! `Compacted`): both protocols answer it in the same words — JSON-RPC
//! with code -32021, RESP with `-ERR compacted: ...` — and never with
//! another version's value.

use logkv_runtime::node::NodeError;
use logkv_store::StoreError;

/// The version asked for and the oldest one readable, if `e` is a read
/// older than retention keeps.
pub fn of(e: &NodeError) -> Option<(u64, u64)> {
    match e {
        NodeError::Store(StoreError::Compacted { version, oldest }) => Some((*version, *oldest)),
        _ => None,
    }
}

/// The error text, starting with `compacted:` so clients can tell it apart.
pub fn message(version: u64, oldest: u64) -> String {
    format!("compacted: version {version} is older than the history kept, which starts at version {oldest}")
}
