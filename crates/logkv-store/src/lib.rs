//! logkv's local store: put, get, delete, atomic batches and ordered scans on
//! the embedded file log. Values live in the log only; an in-memory index
//! per keyspace maps each key to its newest version record; every record
//! points to the previous version of its key, so history is read from disk.
//! Besides batches, the store appends *applied entries*: a signed entry
//! verbatim plus the version records a node derived from it, whose values
//! point into the entry (see [`applied`]).

pub mod applied;
mod backup;
mod batch;
mod by_position;
mod chain;
mod checkpoint;
mod coalesce;
mod compact;
mod error;
mod floors;
mod head;
mod index;
mod keyspaces;
pub mod legacy;
mod limits;
mod maintenance;
mod open;
pub mod record;
mod restore_point;
mod retention;
mod rows;
mod scan;
mod scrub;
mod store;
mod throttle;
mod write;

pub use applied::{AppliedOp, AppliedValue};
pub use backup::{inspect_checkpoints, inspect_compacted, ExportReport, RestoreReport};
pub use batch::{Op, WriteBatch};
pub use by_position::AppliedRecord;
pub use checkpoint::{parse_name as checkpoint_position, CheckpointInfo};
pub use compact::CompactionReport;
pub use error::{Result, StoreError};
pub use head::{parse_name as compacted_file_id, HeadInfo};
pub use limits::{Limits, FORMAT_MAX_BATCH_OPS, FORMAT_MAX_KEY_BYTES, FORMAT_MAX_VALUE_BYTES};
pub use logkv_log::{Durability, DurabilityMode, LogConfig, RecoveryMode, RecoveryReport, Truncation};
pub use maintenance::{CheckpointReport, MaintenanceDone, MaintenanceOptions};
pub use open::OpenReport;
pub use retention::Retention;
pub use scan::{Scan, ScanOptions};
pub use scrub::{Damage, ScrubReport};
pub use store::{
    HistoryEntry, Newest, NewestMeta, Store, StoreOptions, Value, ValueLocation, DEFAULT_KEYSPACE, LOCK_FILE,
};
pub use throttle::Throttle;
