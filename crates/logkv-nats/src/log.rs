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
//! runs on a small runtime of its own (its consumers and merge tasks live
//! there), so the log's futures run on any other runtime.

use std::time::{Duration, Instant};

use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType, Stream};
use async_nats::jetstream::{self, ErrorCode};
use async_nats::{ConnectErrorKind, HeaderMap, HeaderValue};
use bytes::Bytes;
use logkv_runtime::apply::Watched;
use logkv_runtime::divergence::DigestReport;
use logkv_runtime::shared_log::{SharedLog, SharedLogError};
use logkv_runtime::signing::keccak256;
use parking_lot::Mutex;
use tokio::runtime::{Handle, Runtime};

use crate::config::NatsConfig;
use crate::credentials::{self, CredentialsError};
use crate::digests::Reports;
use crate::follow::Follower;
use crate::subjects::Subjects;
use crate::trim;

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
        /// Whether the request failed in a way that can pass (no answer in
        /// time, no responder): a cluster still electing its leaders.
        transient: bool,
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
    /// A TLS or credentials file cannot be used.
    #[error("NATS {0}")]
    Credentials(#[from] CredentialsError),
    /// The servers refused the credentials presented (wrong or missing).
    #[error("{servers} refused the connection ({why}); presented {presented}")]
    Refused {
        /// The servers tried.
        servers: String,
        /// What they said.
        why: String,
        /// What was presented (never a secret).
        presented: String,
    },
    /// The TLS handshake failed: a server certificate the CA does not
    /// sign, a client certificate refused or missing, no TLS on a server.
    #[error("TLS with {servers} failed: {why}")]
    Tls {
        /// The servers tried.
        servers: String,
        /// Why.
        why: String,
    },
}

impl OpenError {
    /// Whether the configuration is at fault (TLS, credentials) rather
    /// than the servers or the stream.
    pub fn is_usage(&self) -> bool {
        matches!(self, OpenError::Credentials(_) | OpenError::Refused { .. } | OpenError::Tls { .. })
    }
}

/// A JetStream stream used as the shared log.
pub struct JetStreamLog {
    /// `Some` until [`JetStreamLog::close`] or drop.
    runtime: Mutex<Option<Runtime>>,
    handle: Handle,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: Stream,
    subjects: Subjects,
    config: NatsConfig,
    /// When the stream was created: tells a stream from a later one of the
    /// same name.
    created: String,
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
        JetStreamLog::open_as(config, Opening::Node)
    }

    /// Connects and opens the stream, which must exist, whatever its
    /// replica count (`config.replicas` is not used): for administering
    /// it, not for a node. Must not be called from inside an async runtime.
    pub fn open_existing(config: &NatsConfig) -> Result<JetStreamLog, OpenError> {
        JetStreamLog::open_as(config, Opening::Existing)
    }

    fn open_as(config: &NatsConfig, opening: Opening) -> Result<JetStreamLog, OpenError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("logkv-nats")
            .enable_all()
            .build()
            .map_err(OpenError::Runtime)?;
        let (client, js, stream) = runtime.block_on(connect_within_deadline(config, opening))?;
        let created = stream.cached_info().created.to_string();
        Ok(JetStreamLog {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            client,
            js,
            stream,
            subjects: Subjects::new(&config.stream),
            config: config.clone(),
            created,
        })
    }

    /// What the log was opened with.
    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// The stream's subjects.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// The client's runtime, where the consumers run; it also drives the
    /// log's futures for a plain thread (`handle().block_on(..)`).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Stops the client and every task on its runtime (appends still
    /// retrying, followers), waiting up to a few seconds for them to be
    /// dropped, so what they hold is released. Must not be called from
    /// inside an async runtime; the log is unusable afterwards.
    pub fn close(&self) {
        if let Some(runtime) = self.runtime.lock().take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
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
    async fn append_one(&self, entry: Bytes) -> Result<u64, SharedLogError> {
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
}

impl Drop for JetStreamLog {
    /// Stops the client's runtime without waiting: the last reference may
    /// be dropped by a task on that very runtime.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.lock().take() {
            runtime.shutdown_background();
        }
    }
}

impl SharedLog for JetStreamLog {
    type Follower = Follower;
    type Reports = Reports;

    /// Publishes every entry before waiting for the first ack, so a batch
    /// costs about one round trip.
    async fn append(&self, entries: &[Bytes]) -> Result<Vec<u64>, SharedLogError> {
        futures::future::try_join_all(entries.iter().map(|e| self.append_one(e.clone()))).await
    }

    /// Reads only what a node watching `watched` needs
    /// ([`Subjects::filters`]).
    fn follow(&self, from: u64, watched: &Watched) -> Follower {
        Follower::start(self.handle(), &self.client, self.stream.clone(), &self.subjects, watched, from)
    }

    /// The stream's first sequence: every position below it was purged.
    async fn first_position(&self) -> Result<u64, SharedLogError> {
        Ok(trim::bounds(&self.stream).await?.first)
    }

    async fn tail(&self) -> Result<u64, SharedLogError> {
        Ok(trim::bounds(&self.stream).await?.last)
    }

    /// Purges through the stream's Raft group; positions never change.
    async fn trim_below(&self, first_kept: u64) -> Result<u64, SharedLogError> {
        trim::purge_below(&self.stream, first_kept).await
    }

    /// The stream's name and creation time, not the servers: the same
    /// stream reached through other URLs is the same log, and a stream
    /// deleted and created again under the same name is another.
    fn identity(&self) -> String {
        format!("nats:{}@{}", self.config.stream, self.created)
    }

    /// A plain NATS message on [`Subjects::digests`]: nothing stored, so
    /// nothing to trim; a node that was away hears the next reports.
    async fn publish_digest(&self, report: &DigestReport) -> Result<(), SharedLogError> {
        let publish = self.client.publish(self.subjects.digests(), report.encode().into());
        publish.await.map_err(|e| SharedLogError::Unavailable(format!("publish a digest report: {e}")))
    }

    /// Subscribes to [`Subjects::digests`], the subscription known to
    /// the server before this returns.
    async fn digest_reports(&self) -> Result<Reports, SharedLogError> {
        let failed = |e: &dyn std::fmt::Display| SharedLogError::Unavailable(format!("digest reports: {e}"));
        let subscriber = self.client.subscribe(self.subjects.digests()).await.map_err(|e| failed(&e))?;
        self.client.flush().await.map_err(|e| failed(&e))?;
        Ok(Reports::new(subscriber))
    }
}

/// Who opens the stream, deciding what is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// A node: the stream is created if missing and must have the
    /// configured replicas.
    Node,
    /// An administrator: the stream must exist, with any replicas.
    Existing,
}

/// [`connect`], tried again while its requests fail in a way that can
/// pass, for as long as an append would be: nodes started with their
/// cluster find it still electing leaders, and JetStream requests time
/// out meanwhile.
async fn connect_within_deadline(
    config: &NatsConfig,
    opening: Opening,
) -> Result<(async_nats::Client, jetstream::Context, Stream), OpenError> {
    let started = std::time::Instant::now();
    let mut backoff = Duration::from_millis(50);
    loop {
        match connect(config, opening).await {
            Err(OpenError::Stream { why, transient: true, .. })
                if started.elapsed() < config.append_deadline =>
            {
                tracing::info!(stream = %config.stream, %why, "the stream does not answer yet; trying again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            done => return done,
        }
    }
}

/// Connects and opens (or, for a node, creates) the stream.
async fn connect(
    config: &NatsConfig,
    opening: Opening,
) -> Result<(async_nats::Client, jetstream::Context, Stream), OpenError> {
    let servers = config.servers.join(",");
    let options = async_nats::ConnectOptions::new()
        .name("logkv")
        .connection_timeout(Duration::from_secs(5))
        .event_callback(|event| async move { tracing::info!(%event, "nats connection") });
    let client = credentials::secure(options, &config.tls, &config.credentials)?
        .connect(config.servers.as_slice())
        .await
        .map_err(|e| {
            let why = e.to_string();
            match e.kind() {
                ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                    OpenError::Refused {
                        servers: servers.clone(),
                        why,
                        presented: config.credentials.to_string(),
                    }
                }
                _ if e.kind() == ConnectErrorKind::Tls || from_tls(&e) => {
                    OpenError::Tls { servers: servers.clone(), why }
                }
                _ => OpenError::Connect { servers: servers.clone(), why },
            }
        })?;
    let js = jetstream::new(client.clone());
    let name = config.stream.clone();
    let stream_error = |why: String| OpenError::Stream { stream: name.clone(), why, transient: false };
    let unanswered = |why: String| OpenError::Stream { stream: name.clone(), why, transient: true };
    let mismatch = |why: String| OpenError::Mismatch { stream: name.clone(), why };
    let wanted = Config {
        name: config.stream.clone(),
        subjects: vec![Subjects::new(&config.stream).all()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::New,
        num_replicas: config.replicas,
        // Above the retries however long they are configured: a stream
        // created with a shorter window would fail the check below.
        duplicate_window: DUPLICATE_WINDOW.max(config.append_deadline + MAX_BACKOFF),
        ..Default::default()
    };
    // Creating may race another node creating it: then open it.
    let mut stream = match js.get_stream(&config.stream).await {
        Ok(s) => s,
        Err(e) if is_not_found(&e) && opening == Opening::Existing => {
            return Err(stream_error("no such stream on these servers".into()))
        }
        Err(e) if is_not_found(&e) => match js.create_stream(wanted.clone()).await {
            Ok(s) => {
                tracing::info!(stream = %name, replicas = config.replicas, "created the stream");
                s
            }
            Err(e) if matches!(e.kind(), CreateStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NAME_EXIST) => {
                js.get_stream(&config.stream).await.map_err(|e| unanswered(e.to_string()))?
            }
            Err(e)
                if matches!(
                    e.kind(),
                    CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable
                ) =>
            {
                return Err(unanswered(format!("cannot create it: {e}")))
            }
            Err(e) => return Err(stream_error(format!("cannot create it: {e}"))),
        },
        Err(e) if matches!(e.kind(), GetStreamErrorKind::Request) => return Err(unanswered(e.to_string())),
        Err(e) => return Err(stream_error(e.to_string())),
    };
    let info = stream.info().await.map_err(|e| unanswered(e.to_string()))?;
    let have = &info.config;
    if have.subjects != wanted.subjects {
        return Err(mismatch(format!("captures {:?}, not {:?}", have.subjects, wanted.subjects)));
    }
    if opening == Opening::Node && have.num_replicas != config.replicas {
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

/// Whether `e` comes from TLS: the client reports a failed handshake (a
/// certificate not trusted, an alert from a server that refused the
/// client's) as an I/O error around rustls'.
fn from_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(e) = source {
        let inner = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        if e.is::<async_nats::rustls::Error>() || inner.is_some_and(|i| i.is::<async_nats::rustls::Error>()) {
            return true;
        }
        source = e.source();
    }
    false
}

fn is_not_found(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND)
}
