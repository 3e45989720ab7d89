//! logkv's shared log on NATS JetStream: many nodes append their entries
//! to one Raft-replicated stream and each tails it (`docs/distributed.md`).
//!
//! [`JetStreamLog`] is the runtime's [`logkv_runtime::shared_log::Log`]
//! on a stream; [`Follower`] tails it, reading only the subjects a node's
//! watched streams need ([`Subjects`]). [`JetStreamLog::trim_below`]
//! purges what no node needs any more; a reader that still needs it gets
//! [`Trimmed`].

mod config;
mod follow;
mod log;
mod subjects;
mod trim;

pub use config::{ConfigError, NatsConfig};
pub use follow::{Batch, FollowStats, Follower};
pub use log::{JetStreamLog, OpenError};
pub use subjects::Subjects;
pub use trim::Trimmed;
