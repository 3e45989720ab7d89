//! [`JetStreamLog`]: one JetStream stream as logkv's shared log.
//!
//! Position = the stream sequence. Appends carry `Nats-Msg-Id` = the
//! keccak256 of the entry, so an append retried after a lost ack (a
//! leader election, a reconnection) is recognised by the stream's
//! duplicate window and returns the first copy's position instead of
//! storing a second one.
//!
//! The stream is created directly (not through the key-value helpers:
//! recent clients cannot parse a 2.9 server's account info). The client
//! runs on a small runtime of its own, so the log is usable from plain
//! threads (the node's committer and follower) and its futures from any
//! other runtime.

use std::time::{Duration, Instant};

use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType, Stream};
use async_nats::jetstream::{self, ErrorCode};
use async_nats::{HeaderMap, HeaderValue};
use bytes::Bytes;
use logkv_runtime::apply::Watched;
use logkv_runtime::shared_log::{Log, SharedLogError};
use logkv_runtime::signing::keccak256;
use parking_lot::Mutex;
use tokio::runtime::{Handle, Runtime};

use crate::config::NatsConfig;
use crate::follow::Follower;
use crate::subjects::Subjects;

/// The stream's duplicate window: longer than any append's retries.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Room left in `max_payload` for the message's headers.
const HEADER_ROOM: usize = 256;

/// Longest pause between two attempts of an append.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Why the log cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No server of the list answered.
    #[error("cannot connect to {servers}: {why}")]
    Connect {
        /// The servers tried.
        servers: String,
        /// Why.
        why: String,
    },
    /// The servers have no JetStream, or refused the stream.
    #[error("stream {stream}: {why}")]
    Stream {
        /// The stream.
        stream: String,
        /// Why.
        why: String,
    },
    /// The stream exists with settings logkv cannot use as asked.
    #[error("stream {stream} exists but {why}")]
    Mismatch {
        /// The stream.
        stream: String,
        /// What differs.
        why: String,
    },
    /// The client's runtime cannot start.
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
}

/// A JetStream stream used as the shared log.
pub struct JetStreamLog {
    runtime: Runtime,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: Stream,
    subjects: Subjects,
    config: NatsConfig,
    /// The follower behind [`Log::read`], with the position it reads next.
    reader: Mutex<Option<(u64, Follower)>>,
}

impl std::fmt::Debug for JetStreamLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamLog").field("config", &self.config).finish_non_exhaustive()
    }
}

impl JetStreamLog {
    /// Connects and opens the stream, creating it if it does not exist.
    /// Must not be called from inside an async runtime.
    pub fn open(config: &NatsConfig) -> Result<JetStreamLog, OpenError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("logkv-nats")
            .enable_all()
            .build()
            .map_err(OpenError::Runtime)?;
        let (client, js, stream) = runtime.block_on(connect(config))?;
        Ok(JetStreamLog {
            runtime,
            client,
            js,
            stream,
            subjects: Subjects::new(&config.stream),
            config: config.clone(),
            reader: Mutex::new(None),
        })
    }

    /// The stream's subjects.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// The client's runtime (to spawn appends that others await).
    pub fn handle(&self) -> &Handle {
        self.runtime.handle()
    }

    /// Bytes this process received from the servers: what selective
    /// transfer saves shows here.
    pub fn received_bytes(&self) -> u64 {
        self.client.statistics().in_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The largest entry the servers accept.
    pub fn max_entry_bytes(&self) -> usize {
        (self.client.server_info().max_payload).saturating_sub(HEADER_ROOM)
    }

    /// Appends one entry on its subject and returns its position once
    /// the stream acknowledged it (stored on a majority of its replicas).
    /// Retried until the configured deadline; a retry never stores the
    /// entry twice. Runs on any runtime.
    pub async fn append_one(&self, entry: Bytes) -> Result<u64, SharedLogError> {
        let max = self.max_entry_bytes();
        if entry.len() > max {
            let why = format!("an entry of {} bytes is over the servers' limit of {max}", entry.len());
            return Err(SharedLogError::Refused(why));
        }
        let subject = self.subjects.of_entry(&entry);
        let id = HeaderValue::from(hex::encode(keccak256(&entry)).as_str());
        let deadline = Instant::now() + self.config.append_deadline;
        let mut backoff = Duration::from_millis(20);
        loop {
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, id.clone());
            let attempt =
                async { self.js.publish_with_headers(subject.clone(), headers, entry.clone()).await?.await };
            match attempt.await {
                Ok(ack) => return Ok(ack.sequence),
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    return Err(SharedLogError::Refused(e.to_string()))
                }
                Err(e) if Instant::now() + backoff < deadline => {
                    tracing::warn!(error = %e, "append not acknowledged; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => return Err(SharedLogError::Unavailable(format!("append: {e}"))),
            }
        }
    }

    /// The newest position (the stream's last sequence). Runs on any
    /// runtime.
    pub async fn last_position(&self) -> Result<u64, SharedLogError> {
        last_sequence(&self.stream).await
    }

    /// Follows the stream from position `from` on, reading only what a
    /// node watching `watched` needs ([`Subjects::filters`]).
    pub fn follow(&self, from: u64, watched: &Watched) -> Follower {
        Follower::start(self.handle(), self.stream.clone(), &self.subjects, watched, from)
    }
}

impl Log for JetStreamLog {
    /// Publishes every entry before waiting for the first ack, so a batch
    /// costs about one round trip.
    fn append(&self, entries: &[Vec<u8>]) -> Result<Vec<u64>, SharedLogError> {
        self.runtime.block_on(async {
            let appends = entries.iter().map(|e| self.append_one(Bytes::copy_from_slice(e)));
            futures::future::try_join_all(appends).await
        })
    }

    /// Reads through a follower kept between calls, so consecutive reads
    /// cost no new consumer.
    fn read(&self, from: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, SharedLogError> {
        let from = from.max(1);
        let tail = self.tail()?;
        if from > tail || max == 0 {
            return Ok(Vec::new());
        }
        let mut reader = self.reader.lock();
        if reader.as_ref().is_none_or(|(next, _)| *next != from) {
            *reader = Some((from, self.follow(from, &Watched::All)));
        }
        let (next, follower) = reader.as_mut().expect("set above");
        let want = usize::try_from(tail - from + 1).map_or(max, |n| n.min(max));
        let mut out = Vec::with_capacity(want);
        while out.len() < want {
            let batch = follower.next_batch(want - out.len(), Duration::from_secs(30))?;
            match batch {
                Some(b) => out.extend(b.entries.into_iter().map(|(p, e)| (p, e.to_vec()))),
                None => {
                    *reader = None;
                    return Err(SharedLogError::Unavailable(format!("no entry from {from} within 30 s")));
                }
            }
        }
        *next = out.last().map_or(from, |(p, _)| p + 1);
        Ok(out)
    }

    fn tail(&self) -> Result<u64, SharedLogError> {
        self.runtime.block_on(self.last_position())
    }
}

/// The stream's last sequence.
pub(crate) async fn last_sequence(stream: &Stream) -> Result<u64, SharedLogError> {
    let info =
        stream.get_info().await.map_err(|e| SharedLogError::Unavailable(format!("stream info: {e}")))?;
    Ok(info.state.last_sequence)
}

/// Connects and opens (or creates) the stream.
async fn connect(config: &NatsConfig) -> Result<(async_nats::Client, jetstream::Context, Stream), OpenError> {
    let servers = config.servers.join(",");
    let client = async_nats::ConnectOptions::new()
        .name("logkv")
        .connection_timeout(Duration::from_secs(5))
        .event_callback(|event| async move { tracing::info!(%event, "nats connection") })
        .connect(config.servers.as_slice())
        .await
        .map_err(|e| OpenError::Connect { servers: servers.clone(), why: e.to_string() })?;
    let js = jetstream::new(client.clone());
    let name = config.stream.clone();
    let stream_error = |why: String| OpenError::Stream { stream: name.clone(), why };
    let mismatch = |why: String| OpenError::Mismatch { stream: name.clone(), why };
    let wanted = Config {
        name: config.stream.clone(),
        subjects: vec![Subjects::new(&config.stream).all()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::New,
        num_replicas: config.replicas,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    // Creating may race another node creating it: then open it.
    let mut stream = match js.get_stream(&config.stream).await {
        Ok(s) => s,
        Err(e) if is_not_found(&e) => match js.create_stream(wanted.clone()).await {
            Ok(s) => {
                tracing::info!(stream = %name, replicas = config.replicas, "created the stream");
                s
            }
            Err(e) if matches!(e.kind(), CreateStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NAME_EXIST) => {
                js.get_stream(&config.stream).await.map_err(|e| stream_error(e.to_string()))?
            }
            Err(e) => return Err(stream_error(format!("cannot create it: {e}"))),
        },
        Err(e) => return Err(stream_error(e.to_string())),
    };
    let info = stream.info().await.map_err(|e| stream_error(e.to_string()))?;
    let have = &info.config;
    if have.subjects != wanted.subjects {
        return Err(mismatch(format!("captures {:?}, not {:?}", have.subjects, wanted.subjects)));
    }
    if have.num_replicas != config.replicas {
        return Err(mismatch(format!("has {} replicas, not {}", have.num_replicas, config.replicas)));
    }
    if have.duplicate_window < config.append_deadline {
        return Err(mismatch(format!(
            "its duplicate window ({:?}) is shorter than an append's retries ({:?})",
            have.duplicate_window, config.append_deadline
        )));
    }
    if have.retention != RetentionPolicy::Limits || have.max_age != Duration::ZERO {
        return Err(mismatch("it may drop entries by age or interest; logkv needs every entry kept".into()));
    }
    Ok((client, js, stream))
}

fn is_not_found(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND)
}
