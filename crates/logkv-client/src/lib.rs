//! An async client of `logkv serve`, on tokio: typed calls for the
//! server's JSON-RPC methods (docs/jsonrpc.md), writes signed here with the
//! caller's key, `kv_watch` as a [`Stream`](futures_util::Stream), and
//! TLS through rustls for `https://` servers (a private CA's certificate
//! can be added with [`ClientBuilder::ca_cert`]).
//!
//! - Reads ([`Client::get`], [`Client::next`], [`Client::scan`], ...)
//!   page through values of any size, every page read as of one version.
//! - Writes ([`Client::put`], [`Client::delete`], [`Client::write`]) build
//!   native transactions, sign them into an entry with a
//!   [`Signer`](signing::Signer) at a nonce the server reserves, and
//!   answer once the server has applied the entry. The server never sees
//!   the key.
//! - [`Client::wait_for_version`] waits until a version is visible;
//!   [`Client::watch`] streams a stream's changes from a version on.
//! - The `admin_*` methods need [`ClientBuilder::token`].
//!
//! Every failure is one [`Error`]: a bad URL, a server that cannot be
//! reached, a TLS failure, a timeout, an HTTP status, the server's
//! JSON-RPC error (code, message, data), or an answer that is not what the
//! method promises.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use logkv_client::{keyfile, Client, StreamId};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // An https server whose certificate a private CA signed.
//! let client = Client::builder("https://kv.internal:7380").ca_cert("ca.pem").build()?;
//! let stream: StreamId = "0x0000000000000000000000000000000000000000000000000000000000000000".parse()?;
//!
//! // Watch the stream from the start: its history, then live writes.
//! let mut changes = client.watch(&stream, 0).await?;
//!
//! // A put, signed with a key made by `logkv key new`.
//! let signer = keyfile::load("logkv.key")?;
//! let written = client.put(&signer, stream, b"greeting", b"hello").await?;
//! assert!(written.committed(), "{:?}", written.results);
//!
//! // Read it back, as of the write's version.
//! let got = client.get(&stream, b"greeting", Some(written.version)).await?;
//! assert_eq!(got.map(|v| v.value), Some(b"hello".to_vec()));
//!
//! while let Some(change) = changes.next().await {
//!     let change = change?;
//!     println!("{} {:?} -> {:?}", change.version, change.key, change.value);
//!     if change.version == written.version {
//!         break;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod admin;
mod answer;
mod client;
mod error;
mod reads;
mod tls;
mod watch;
mod writes;

pub use client::{Client, ClientBuilder, DEFAULT_TIMEOUT};
pub use error::{Error, Result};
pub use logkv_runtime::node::{KeyValue, ReplayProgress};
pub use reads::{Page, ValueMeta, Versioned, MAX_QUERY_LEN_BYTES};
pub use watch::{Change, Watch};
pub use writes::{one_write, Submitted};

/// What the calls take and return, from logkv's own crates, so a client
/// needs no other dependency on them.
pub use logkv_runtime::codec::native;
pub use logkv_runtime::types::{Address, StreamId};
pub use logkv_runtime::{keyfile, signing};
pub use logkv_store::{CheckpointReport, CompactionReport, ExportReport, HistoryEntry, ScanOptions};
