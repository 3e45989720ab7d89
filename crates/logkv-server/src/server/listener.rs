//! The HTTP listener: counts its connections against `max_connections`
//! together with RESP's (one [`ConnectionGuard`] per connection, held as
//! long as the socket is open, WebSocket upgrades included). A connection
//! over the limit gets `503 Service Unavailable` with a short body and is
//! closed; axum never sees it.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::ConnectionGuard;
use crate::shared::Shared;

/// The body of the answer to a connection over the limit.
const BUSY_BODY: &str = "too many connections\n";

/// How long a refused connection may take to send its request head before
/// the 503 goes out anyway.
const REFUSE_READ: Duration = Duration::from_millis(500);

/// A TCP listener whose connections count against `max_connections`.
pub struct CountingListener {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl CountingListener {
    /// Wraps a bound listener.
    pub fn new(listener: TcpListener, shared: Arc<Shared>) -> Self {
        CountingListener { listener, shared }
    }
}

impl axum::serve::Listener for CountingListener {
    type Io = Counted;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Counted, std::net::SocketAddr) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            match ConnectionGuard::try_new(&self.shared) {
                Some(guard) => {
                    let _ = stream.set_nodelay(true);
                    return (Counted { stream, _guard: guard }, peer);
                }
                None => {
                    self.shared.metrics.rejected_connections.fetch_add(1, Relaxed);
                    tokio::spawn(refuse(stream));
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

/// Answers 503 and closes. The request head is read first (briefly), so
/// closing does not reset the connection under a client still sending it
/// and the client gets to read the answer.
async fn refuse(mut stream: TcpStream) {
    let mut head = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSE_READ, stream.read(&mut head)).await;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BUSY_BODY}",
        BUSY_BODY.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, CountingListener>>
    for crate::access::Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, CountingListener>) -> Self {
        crate::access::Peer { addr: *stream.remote_addr(), tls: false }
    }
}

/// An accepted connection, counted until it closes.
pub struct Counted {
    stream: TcpStream,
    _guard: ConnectionGuard,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
