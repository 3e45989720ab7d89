//! The HTTP listener: counts its connections against `max_connections`
//! together with RESP's (one [`ConnectionGuard`] per connection, held as
//! long as the socket is open, WebSocket upgrades included), and serves
//! each with HTTP/1.1. A connection over the limit, or taken while the
//! process is out of file descriptors, gets `503 Service Unavailable` with
//! a short body and is closed; the router never sees it.
//!
//! A request's head must arrive within `request_timeout_secs` (and its
//! body too: see `http::json_rpc`), so a client trickling bytes is closed.

use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::accept::{Accepted, Acceptor};
use tokio_rustls::TlsAcceptor;

use super::ConnectionGuard;
use crate::access::Peer;
use crate::shared::Shared;
use axum::extract::ConnectInfo;

/// How long a refused connection may take to send its request head before
/// the 503 goes out anyway.
const REFUSE_READ: Duration = Duration::from_millis(500);

/// Accepts connections until shutdown.
/// With `tls`, each connection's handshake is completed first, on the
/// connection's own task.
pub async fn accept(mut acceptor: Acceptor, shared: Arc<Shared>, router: Router, tls: Option<TlsAcceptor>) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = acceptor.accept() => accepted,
        };
        let (stream, addr) = match accepted {
            Accepted::Refuse(mut refused) => {
                tokio::spawn(async move { refuse(refused.stream(), "out of file descriptors").await });
                continue;
            }
            Accepted::Serve(stream, addr) => (stream, addr),
        };
        let Some(guard) = ConnectionGuard::try_new(&shared) else {
            shared.metrics.rejected_connections.fetch_add(1, Relaxed);
            tokio::spawn(async move { refuse(&mut { stream }, "too many connections").await });
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Handlers see the connection they were asked on (crate::access).
        let peer = Peer { addr, tls: tls.is_some() };
        let router = router.clone().layer(axum::Extension(ConnectInfo(peer)));
        let (shared, tls) = (shared.clone(), tls.clone());
        shared.tasks.clone().spawn(async move {
            match tls {
                None => serve(Counted { io: stream, _guard: guard }, shared, router).await,
                Some(tls) => {
                    let limit = shared.config.request_timeout();
                    if let Some(stream) = super::tls::handshake(&tls, stream, limit).await {
                        serve(Counted { io: stream, _guard: guard }, shared, router).await;
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 on one connection, of any byte stream, until the client
/// closes it or the server stops (answering the request in progress).
async fn serve<I>(io: I, shared: Arc<Shared>, router: Router)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new());
    if let Some(limit) = shared.config.request_timeout() {
        builder.header_read_timeout(limit);
    }
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(router)).with_upgrades();
    let mut conn = pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        _ = shared.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "http connection ended");
    }
}

/// Answers 503 with `why` and closes. The request head is read first
/// (briefly): some clients read no answer before theirs is sent.
async fn refuse(stream: &mut TcpStream, why: &str) {
    let mut head = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSE_READ, stream.read(&mut head)).await;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{why}\n",
        why.len() + 1
    );
    super::accept::answer_and_close(stream, answer.as_bytes()).await;
}

/// An accepted connection, counted until it closes (a WebSocket takes it
/// over with its guard).
struct Counted<I> {
    io: I,
    _guard: ConnectionGuard,
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
