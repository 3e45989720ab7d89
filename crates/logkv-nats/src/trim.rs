//! Trimming the stream: purging the positions below the oldest one any
//! node still needs, so the stream does not grow forever
//! (`docs/distributed.md`). A reader that needs a purged position gets
//! [`SharedLogError::Trimmed`] instead of a silent gap.

use async_nats::jetstream::stream::Stream;
use logkv_runtime::shared_log::SharedLogError;

/// The stream's first and last positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Every position below it was purged; the last + 1 when every one
    /// was, 1 when none ever was.
    pub first: u64,
    /// The newest position, 0 when nothing was ever appended.
    pub last: u64,
}

/// The stream's [`Bounds`] as its leader reports them now.
pub(crate) async fn bounds(stream: &Stream) -> Result<Bounds, SharedLogError> {
    let info =
        stream.get_info().await.map_err(|e| SharedLogError::Unavailable(format!("stream info: {e}")))?;
    Ok(Bounds { first: info.state.first_sequence.max(1), last: info.state.last_sequence })
}

/// Purges every message below `first_kept` and returns how many there
/// were. Nothing is sent for `first_kept` <= 1 (JetStream reads a purge
/// up to 0 as "purge everything"); past the tail + 1 is refused, since
/// JetStream would then number the next append `first_kept`, leaving a
/// hole in the positions.
pub(crate) async fn purge_below(stream: &Stream, first_kept: u64) -> Result<u64, SharedLogError> {
    let last = bounds(stream).await?.last;
    if first_kept > last.saturating_add(1) {
        return Err(SharedLogError::Refused(format!(
            "cannot trim below position {first_kept}: the stream's last position is {last}"
        )));
    }
    if first_kept <= 1 {
        return Ok(0);
    }
    let purged = stream
        .purge()
        .sequence(first_kept)
        .await
        .map_err(|e| SharedLogError::Unavailable(format!("purge below {first_kept}: {e}")))?;
    Ok(purged.purged)
}
