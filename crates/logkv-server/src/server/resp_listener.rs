//! The Redis protocol listener: accepts connections up to the limit and
//! runs each one's read–execute–write loop.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::resp::frame::{Parser, Request};
use crate::resp::reply::{encode, Protocol, Reply};
use crate::session::{After, Session};
use crate::shared::Shared;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// Accepts connections until shutdown.
pub async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id = 1u64;
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (mut stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                tracing::warn!(error = %e, "resp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(guard) = super::ConnectionGuard::try_new(&shared) else {
            shared.metrics.rejected_connections.fetch_add(1, Relaxed);
            let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = next_id;
        next_id += 1;
        tracing::debug!(%peer, id, "resp connection");
        let shared = shared.clone();
        shared.tasks.clone().spawn(async move {
            let _guard = guard;
            if let Err(e) = serve(stream, shared, id).await {
                tracing::debug!(id, error = %e, "resp connection ended");
            }
        });
    }
}

/// Serves one connection: reads, runs every complete request in the
/// buffer as one pipeline, writes the replies, and repeats. A protocol
/// error is answered and closes the connection, as in Redis.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>, id: u64) -> std::io::Result<()> {
    let limits = Default::default();
    let mut parser = Parser::new(limits);
    let mut session = Session::new(shared.clone(), id);
    // Requests are split off the front of this buffer, their arguments
    // slices of it (docs/pipeline.md, "Hand-offs and copies").
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let idle = shared.config.idle_timeout();
    loop {
        let mut requests: Vec<Request> = Vec::new();
        let mut fatal = None;
        loop {
            match parser.take(&mut input) {
                Ok(Some(request)) => {
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
            if after == After::Close {
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
        let read = async {
            match idle {
                Some(limit) => tokio::time::timeout(limit, stream.read_buf(&mut input)).await.ok(),
                None => Some(stream.read_buf(&mut input).await),
            }
        };
        let n = tokio::select! {
            _ = shared.shutdown.cancelled() => return Ok(()),
            n = read => n,
        };
        match n {
            None => {
                shared.metrics.idle_closed.fetch_add(1, Relaxed);
                let message =
                    format!("-ERR idle for {}s: connection closed\r\n", shared.config.idle_timeout_secs);
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
