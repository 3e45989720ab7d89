//! `logkv serve`: opens the node, listens for RESP and HTTP, runs
//! checkpoints and compactions as they come due (crate::maintenance), and
//! shuts down gracefully on SIGINT or SIGTERM — stop accepting, let every
//! connection finish the requests it is running and the running
//! maintenance job end, then close the node (which syncs) and return.

mod accept;
mod changes;
pub(crate) mod fd_limit;
mod http;
mod http_listener;
mod resp_listener;
pub mod tls;
mod trim;
mod ws;

pub use changes::{Change, ChangeReader};

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use logkv_runtime::keyfile::{self, KeyfileError};
use logkv_runtime::node::{Node, NodeError};
use logkv_runtime::signing::Signer;
use tokio::net::TcpListener;

use self::accept::Acceptor;
use self::tls::Tls;
use crate::config::ServeConfig;
use crate::digest_exchange::DigestSettings;
use crate::replica::{self, Replica, ReplicaError};
use crate::session::ServerState;
use crate::shared::Shared;
use crate::shared_log::LogChoice;

/// Longest wait for in-flight requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting's value cannot work.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The TLS certificate, key or client CA cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The users file cannot be used.
    #[error(transparent)]
    Users(#[from] crate::session::auth::UsersError),
    /// The node's key file cannot be created or read.
    #[error("node key: {0}")]
    Key(#[from] KeyfileError),
    /// The node cannot be opened (a held lock, corruption, I/O).
    #[error("cannot open the node in {dir}: {source}")]
    Open {
        /// The data directory.
        dir: String,
        /// Why.
        source: NodeError,
    },
    /// A listener cannot be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// `resp` or `http`.
        what: &'static str,
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime or a signal handler cannot be set up.
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
    /// Closing the node failed (its final sync).
    #[error("closing the node: {0}")]
    Close(NodeError),
    /// The `log` setting is neither `file`, `file:DIR` nor a usable
    /// `nats://` or `tls://` list.
    #[error("log: {0} (use `file`, `file:DIR`, nats://HOST:PORT[,HOST:PORT...] or tls://...)")]
    Log(#[from] logkv_nats::ConfigError),
    /// The shared log cannot be opened.
    #[error(transparent)]
    OpenLog(#[from] crate::shared_log::OpenError),
    /// `watch` only applies to a node on a shared log.
    #[error("watch needs a shared log (--log nats://... or file:DIR): a node on its own file log applies every stream")]
    WatchWithoutSharedLog,
    /// The shared log cannot be followed.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

impl ServeError {
    /// Whether the configuration is at fault (exit status 2) rather than
    /// the machine or the data (3).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ServeError::Config(_)
                | ServeError::Users(_)
                | ServeError::Log(_)
                | ServeError::WatchWithoutSharedLog
        ) || matches!(self, ServeError::OpenLog(e) if e.is_usage())
    }
}

/// Makes room for `max_connections` under the open-file limit, or lowers
/// it to what fits, saying which in the log.
fn fit_open_files(config: &mut ServeConfig) {
    let asked = config.max_connections;
    match fd_limit::fit(asked) {
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit; max_connections stays {asked}")
        }
        Ok(f) => {
            if f.soft_after > f.soft_before {
                tracing::info!(from = f.soft_before, to = f.soft_after, "raised the open-file limit (soft)");
            }
            if f.max_connections < asked {
                tracing::warn!(
                    "lowered max_connections from {asked} to {}: the open-file limit is {} (hard {}) and {} descriptors are kept for the log and listeners; raise it (ulimit -n, or LimitNOFILE= in a service unit)",
                    f.max_connections,
                    f.soft_after,
                    f.hard,
                    fd_limit::RESERVED
                );
                config.max_connections = f.max_connections;
            }
        }
    }
}

/// Runs a node until SIGINT or SIGTERM.
pub fn run(mut config: ServeConfig) -> Result<(), ServeError> {
    // Configuration errors are reported before the log's replay, not after.
    config.validate()?;
    fit_open_files(&mut config);
    let resp = ServerState::load(&config)?;
    let tls = Tls::from_config(&config)?;
    let shared_log = config.shared_log()?;
    if shared_log.is_none() && !config.watch.is_empty() {
        return Err(ServeError::WatchWithoutSharedLog);
    }
    if shared_log.is_none() && replica::is_shared_log_copy(&config.store.data_dir) {
        let why =
            "it holds a copy of a shared log; start it with the --log it names or use another directory";
        return Err(ReplicaError::WrongDirectory {
            dir: config.store.data_dir.display().to_string(),
            why: why.into(),
        }
        .into());
    }
    let identity = node_identity(&config)?;
    let node = Arc::new(open_or_repair(&config, shared_log.as_ref())?);
    // The follower reports applied batches to the shared state, which is
    // built after it: it finds it here.
    let notify: Arc<OnceLock<Weak<Shared>>> = Arc::new(OnceLock::new());
    let replica = match &shared_log {
        None => None,
        Some(choice) => {
            let log = choice.open()?;
            let notify = notify.clone();
            let advanced = Box::new(move || {
                if let Some(shared) = notify.get().and_then(Weak::upgrade) {
                    shared.versions_advanced();
                }
            });
            let digests = DigestSettings {
                node: identity.address().to_string(),
                address: config.http_addr.clone(),
                every: config.digest_every,
                kept: config.digest_kept as usize,
            };
            let (watched, dir) = (config.watched(), &config.store.data_dir);
            Some(Replica::start(node.clone(), log, &watched, dir, digests, advanced)?)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("logkv-io")
        .build()
        .map_err(ServeError::Runtime)?;
    let shared = Arc::new(Shared::new(node, identity, config, resp, replica));
    let _ = notify.set(Arc::downgrade(&shared));
    runtime.block_on(serve(shared.clone(), tls))?;
    drop(runtime);
    let Shared { node, pipeline, replica, .. } =
        Arc::into_inner(shared).expect("every task ended with the runtime");
    pipeline.close();
    if let Some(replica) = replica {
        replica.stop();
        replica.log().close();
    }
    let node = Arc::into_inner(node).expect("no request holds the node after the runtime ended");
    node.close().map_err(ServeError::Close)?;
    tracing::info!("node closed; bye");
    Ok(())
}

/// The node's signing key, created (mode 0600) on first start.
fn node_identity(config: &ServeConfig) -> Result<Signer, ServeError> {
    let path = config.key_path();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| KeyfileError::Io { path: dir.to_path_buf(), source })?;
    }
    match keyfile::create(&path) {
        Ok(address) => tracing::info!(%address, path = %path.display(), "created the node key"),
        Err(KeyfileError::Exists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let signer = keyfile::load(&path)?;
    tracing::info!(address = %signer.address(), "node identity");
    Ok(signer)
}

/// Opens the node; on a shared log, damage that strict open refuses is
/// first repaired from the stream (`crate::repair`) where it can be, and
/// the open tried again. Where it cannot be, the open's error stands and
/// the log says how to rebuild the node.
fn open_or_repair(config: &ServeConfig, shared_log: Option<&LogChoice>) -> Result<Node, ServeError> {
    let damaged = |e: &ServeError| matches!(e, ServeError::Open { source: NodeError::Store(e), .. } if e.is_corruption());
    let (refused, choice) = match (open_node(config), shared_log) {
        (Err(refused), Some(choice)) if damaged(&refused) => (refused, choice),
        (opened, _) => return opened,
    };
    tracing::warn!(error = %refused, "the local log is damaged; repairing it from the shared log");
    let log = choice.open()?;
    let repaired = crate::repair::repair_from(config, &log);
    log.close();
    match repaired {
        Ok(_) => open_node(config),
        Err(why) => {
            tracing::error!(
                error = %why,
                "cannot repair the local log from the shared log; rebuild this node from another node's \
                 export: logkv repair --from-export FILE (docs/distributed.md, \"Repair\")"
            );
            Err(refused)
        }
    }
}

/// Opens the node, logging replay progress about once a second.
fn open_node(config: &ServeConfig) -> Result<Node, ServeError> {
    let started = Instant::now();
    let mut last = Instant::now();
    let options = config.node_options();
    let node = Node::open_with_progress(&config.store.data_dir, options, &mut |done, total| {
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            let pct = if total == 0 { 100.0 } else { done as f64 * 100.0 / total as f64 };
            tracing::info!(done, total, "replaying the log: {pct:.0}%");
        }
    })
    .map_err(|source| ServeError::Open { dir: config.store.data_dir.display().to_string(), source })?;
    let progress = node.replay_progress();
    let opened = node.store().open_report();
    for (path, why) in &opened.skipped_checkpoints {
        tracing::warn!(path = %path.display(), why, "checkpoint not used");
    }
    tracing::info!(
        dir = %config.store.data_dir.display(),
        applied_version = progress.applied_version,
        checkpoint = ?opened.checkpoint,
        compacted_through = opened.compacted_through,
        replayed_records = opened.replayed_records,
        took_ms = started.elapsed().as_millis() as u64,
        "node open"
    );
    Ok(node)
}

/// Says so when a listener other machines can reach takes requests from
/// anyone, or carries them unencrypted.
fn warn_if_exposed(what: &str, addr: std::net::SocketAddr, authenticated: bool, encrypted: bool) {
    if addr.ip().is_loopback() {
        return;
    }
    if !authenticated {
        tracing::warn!(
            listener = what,
            %addr,
            "listening beyond loopback without authentication: anyone who can connect can read and write; \
             set users_file (docs/server.md, \"Users\")"
        );
    }
    if !encrypted {
        tracing::warn!(
            listener = what,
            %addr,
            "listening beyond loopback without TLS: requests, values and credentials cross the network \
             unencrypted; set tls_cert and tls_key"
        );
    }
}

async fn serve(shared: Arc<Shared>, tls: Option<Tls>) -> Result<(), ServeError> {
    let bind = |what: &'static str, addr: String| async move {
        TcpListener::bind(&addr).await.map_err(|source| ServeError::Bind { what, addr, source })
    };
    let resp = Acceptor::new(bind("resp", shared.config.resp_addr.clone()).await?, "resp");
    let http = Acceptor::new(bind("http", shared.config.http_addr.clone()).await?, "http");
    let local = |l: &Acceptor| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(resp = %local(&resp), http = %local(&http), durability = ?shared.config.store.durability, "listening");
    for (what, listener) in [("resp", &resp), ("http", &http)] {
        if let Ok(addr) = listener.local_addr() {
            warn_if_exposed(what, addr, shared.config.users_file.is_some(), tls.is_some());
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServeError::Runtime)?;
    let (resp_tls, http_tls) = tls.map(|t| (t.resp, t.http)).unzip();
    let resp_task = tokio::spawn(resp_listener::accept(resp, shared.clone(), resp_tls));
    let http_task =
        tokio::spawn(http_listener::accept(http, shared.clone(), http::router(shared.clone()), http_tls));
    let maintenance = tokio::spawn(crate::maintenance::run(shared.clone()));
    let scrubber = tokio::spawn(crate::scrub::run(shared.clone()));
    let ticker = tokio::spawn(crate::tick::run(shared.clone()));
    shared.set_ready();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    shared.shutdown.cancel();
    let _ = resp_task.await;
    shared.tasks.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, async {
        shared.tasks.wait().await;
        let _ = http_task.await;
    })
    .await
    .is_err()
    {
        tracing::warn!("connections still busy after {DRAIN_TIMEOUT:?}; closing anyway");
    }
    // A checkpoint or compaction cannot be interrupted: it ends before
    // the node closes.
    let _ = maintenance.await;
    let _ = scrubber.await;
    let _ = ticker.await;
    Ok(())
}

/// One open connection, counted against `max_connections` while it lives.
pub(crate) struct ConnectionGuard(Arc<Shared>);

impl ConnectionGuard {
    /// Counts a new connection, or `None` when the limit is reached.
    pub(crate) fn try_new(shared: &Arc<Shared>) -> Option<ConnectionGuard> {
        let max = shared.config.max_connections as i64;
        let open = shared.metrics.connections.fetch_add(1, Relaxed);
        if open >= max {
            shared.metrics.connections.fetch_sub(1, Relaxed);
            return None;
        }
        Some(ConnectionGuard(shared.clone()))
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.metrics.connections.fetch_sub(1, Relaxed);
    }
}
