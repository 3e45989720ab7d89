//! logkv's network server: the Redis protocol (RESP2 and RESP3) and
//! JSON-RPC with the 0G `kv_*` methods over HTTP, on a runtime node.
//! [`resp`] and [`rpc`] are the protocol layers (bytes in, bytes out, no
//! sockets); [`session`] runs a RESP connection's commands on the node;
//! [`server`] is `logkv serve` itself.

pub mod access;
pub mod compacted;
pub mod config;
pub mod digest_exchange;
mod io_failures;
pub mod logging;
pub mod maintenance;
pub mod metrics;
pub mod repair;
pub mod replica;
pub mod resp;
pub mod rpc;
pub mod scrub;
pub mod server;
pub mod session;
pub mod shared;
pub mod shared_log;
pub mod tick;

pub use config::ServeConfig;
pub use server::{run, ServeError};
