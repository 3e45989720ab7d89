//! logkv's interfaces for remote clients: the Redis protocol (RESP2 and
//! RESP3) and JSON-RPC with the 0G `kv_*` methods, as protocol layers over
//! the runtime's node. The network server is built on these.

pub mod resp;
pub mod rpc;
