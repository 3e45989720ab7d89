//! The Redis protocol listener: accepts connections up to the limit and
//! runs each one's read–execute–write loop.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use tokio_rustls::TlsAcceptor;

use super::accept::{Accepted, Acceptor};
use crate::resp::frame::{Parser, Request};
use crate::resp::reply::{encode, Protocol, Reply};
use crate::session::clients::Peer;
use crate::session::{After, Session};
use crate::shared::Shared;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// Accepts connections until shutdown.
/// With `tls`, each connection's handshake is completed first, on the
/// connection's own task.
pub async fn accept(mut acceptor: Acceptor, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    let mut next_id = 1u64;
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = acceptor.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Accepted::Serve(stream, peer) => (stream, peer),
            Accepted::Refuse(mut refused) => {
                tokio::spawn(async move { refuse(refused.stream(), "server out of file descriptors").await });
                continue;
            }
        };
        let Some(guard) = super::ConnectionGuard::try_new(&shared) else {
            shared.metrics.rejected_connections.fetch_add(1, Relaxed);
            tokio::spawn(async move { refuse(&mut { stream }, "max number of clients reached").await });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = next_id;
        next_id += 1;
        tracing::debug!(%peer, id, "resp connection");
        let peer = Peer {
            addr: peer.to_string(),
            laddr: stream.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            fd: Some(stream.as_raw_fd()),
        };
        let (shared, tls) = (shared.clone(), tls.clone());
        shared.tasks.clone().spawn(async move {
            let _guard = guard;
            let served = match tls {
                None => serve(stream, shared, id, peer).await,
                Some(tls) => match super::tls::handshake(&tls, stream, shared.config.request_timeout()).await
                {
                    Some(stream) => serve(stream, shared, id, peer).await,
                    None => Ok(()),
                },
            };
            if let Err(e) = served {
                tracing::debug!(id, error = %e, "resp connection ended");
            }
        });
    }
}

/// Answers `-ERR why` and closes.
async fn refuse(stream: &mut TcpStream, why: &str) {
    super::accept::answer_and_close(stream, format!("-ERR {why}\r\n").as_bytes()).await;
}

/// Serves one connection, of any byte stream: reads, runs every complete
/// request in the buffer as one pipeline, writes the replies, and repeats.
/// A protocol error is answered and closes the connection, as in Redis.
/// A request must arrive whole within `request_timeout_secs` of the time
/// spent waiting for its bytes (time the server itself spends not reading,
/// held back by the commit pipeline, does not count): a client trickling
/// it is answered an error and closed. `CLIENT KILL` closes it once the
/// replies being written are out.
async fn serve<S>(mut stream: S, shared: Arc<Shared>, id: u64, peer: Peer) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = Default::default();
    let mut parser = Parser::new(limits);
    let mut session = Session::new(shared.clone(), id, peer);
    let killed = session.killed();
    // Requests are split off the front of this buffer, their arguments
    // slices of it (docs/pipeline.md, "Hand-offs and copies").
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let request_timeout = shared.config.request_timeout();
    // Time spent waiting for the bytes of the request at the front of
    // `input`, while one is partly there.
    let mut waited = Duration::ZERO;
    loop {
        let mut requests: Vec<Request> = Vec::new();
        let mut fatal = None;
        loop {
            match parser.take(&mut input) {
                Ok(Some(request)) => {
                    waited = Duration::ZERO;
                    if !request.args.is_empty() {
                        requests.push(request);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    fatal = Some(e);
                    break;
                }
            }
        }
        if !requests.is_empty() {
            let after = session.run(requests, &mut output).await;
            stream.write_all(&output).await?;
            output.clear();
            if after == After::Close || killed.is_cancelled() {
                return Ok(());
            }
        }
        if let Some(e) = fatal {
            shared.metrics.protocol_errors.fetch_add(1, Relaxed);
            encode(&Reply::Error(e.to_string()), Protocol::Resp2, &mut output);
            stream.write_all(&output).await?;
            return Ok(());
        }
        input.reserve(READ_CHUNK);
        // A request partly read must be completed in what is left of the
        // request timeout; and no read may wait past the idle timeout
        // (read each time: CONFIG SET timeout changes it).
        let idle = shared.resp.idle_timeout();
        let request_left = request_timeout.filter(|_| !input.is_empty()).map(|t| t.saturating_sub(waited));
        let limit = match (idle, request_left) {
            (Some(idle), Some(left)) => Some(idle.min(left)),
            (idle, left) => idle.or(left),
        };
        let started = Instant::now();
        let read = async {
            match limit {
                Some(limit) => tokio::time::timeout(limit, stream.read_buf(&mut input)).await.ok(),
                None => Some(stream.read_buf(&mut input).await),
            }
        };
        let n = tokio::select! {
            _ = shared.shutdown.cancelled() => return Ok(()),
            _ = killed.cancelled() => return Ok(()),
            n = read => n,
        };
        let took = started.elapsed();
        if !input.is_empty() {
            waited += took;
        }
        match n {
            None if request_left.is_none_or(|left| took < left) => {
                shared.metrics.idle_closed.fetch_add(1, Relaxed);
                let secs = idle.map_or(0, |d| d.as_secs());
                let message = format!("-ERR idle for {secs}s: connection closed\r\n");
                stream.write_all(message.as_bytes()).await?;
                return Ok(());
            }
            None => {
                shared.metrics.request_timeouts.fetch_add(1, Relaxed);
                let message = format!(
                    "-ERR request not complete within request_timeout_secs ({}s): connection closed\r\n",
                    shared.config.request_timeout_secs
                );
                stream.write_all(message.as_bytes()).await?;
                return Ok(());
            }
            Some(n) => {
                if n? == 0 {
                    return Ok(());
                }
            }
        }
    }
}
