//! logkv's local store: put, get, delete, atomic batches and ordered scans on
//! the embedded file log. Values live in the log only; an in-memory index
//! maps each key to its newest version record; every record points to the
//! previous version of its key, so history is read from disk.

mod batch;
mod error;
mod index;
mod limits;
mod record;
mod scan;
mod store;

pub use batch::{Op, WriteBatch};
pub use error::{Result, StoreError};
pub use limits::{Limits, FORMAT_MAX_BATCH_OPS, FORMAT_MAX_KEY_BYTES, FORMAT_MAX_VALUE_BYTES};
pub use logkv_log::{Durability, LogConfig, RecoveryMode, RecoveryReport, Truncation};
pub use scan::{Scan, ScanOptions};
pub use store::{HistoryEntry, Store, StoreOptions, Value, LOCK_FILE};
