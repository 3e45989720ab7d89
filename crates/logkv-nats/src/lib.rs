//! logkv's shared log on NATS JetStream: many nodes append their entries
//! to one Raft-replicated stream and each tails it (`docs/distributed.md`).
//!
//! [`JetStreamLog`] is the runtime's
//! [`logkv_runtime::shared_log::SharedLog`] on a stream; [`Follower`]
//! tails it, reading only the subjects a node's watched streams need
//! ([`Subjects`]), and hands each entry over with the stream's timestamp
//! as its log time. Nodes compare their state digests over a plain
//! subject beside the stream ([`Reports`]). Trimming purges what no node needs any more; a reader
//! that still needs it gets `SharedLogError::Trimmed`.

mod config;
mod credentials;
mod digests;
mod follow;
mod log;
mod subjects;
mod trim;

pub use config::{ConfigError, NatsConfig};
pub use credentials::{Credentials, CredentialsError, Tls};
pub use digests::Reports;
pub use follow::{FollowStats, Follower};
pub use log::{JetStreamLog, OpenError};
pub use subjects::Subjects;
