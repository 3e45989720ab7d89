//! The benchmark sections, one module each.

pub mod always;
pub mod footprint;
pub mod fsync;
pub mod group_commit;
pub mod large;
pub mod maintenance;
pub mod memory;
pub mod nats;
pub mod periodic;
pub mod reads;
pub mod replay;
pub mod runtime;
