//! logkv's evaluation harness: YCSB-style workloads on logkv (in each
//! durability mode), on a naive hash table made durable by periodic full
//! snapshots, and on peer engines (RocksDB, fjall, redb, sled, built only
//! with their features), measuring throughput, latency, memory, space,
//! write amplification, time to persist, recovery time and data lost on
//! failures; every run is a JSON record from which `report` draws the
//! tables and charts of `docs/evaluation/README.md`.

pub mod cell;
pub mod child;
pub mod cli;
pub mod config;
pub mod engine;
pub mod failure;
pub mod machine;
pub mod measure;
pub mod persist;
pub mod progress;
pub mod record;
pub mod report;
pub mod run;
pub mod suite;
pub mod workload;
