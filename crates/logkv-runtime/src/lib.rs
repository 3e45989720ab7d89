//! logkv's runtime on a shared log (the 0G Storage KV model): streams,
//! transaction bodies in pluggable codecs, signed entries, access control and
//! deterministic apply. `docs/semantics.md` states the model;
//! `docs/format.md` documents the bytes. [`node::Node`] runs the runtime
//! on the embedded store, its state kept in its file log; it follows any
//! [`shared_log::SharedLog`] with [`node::Node::follow`]. Every writer
//! reaches it through the one commit [`pipeline`].

pub mod acl;
pub mod annex;
pub mod apply;
pub mod codec;
pub mod collection;
pub mod digest;
pub mod divergence;
pub mod entry;
pub mod entry_json;
pub mod envelope;
#[cfg(unix)]
pub mod keyfile;
pub mod mem_state;
pub mod node;
pub mod nonce;
pub mod pipeline;
pub mod quota;
#[cfg(unix)]
pub mod repair;
pub mod shared_log;
pub mod signing;
mod store_state;
pub mod sweep;
pub mod system;
pub mod types;
pub mod varint;
