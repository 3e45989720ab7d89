//! Quotas on the state anyone who may publish to a log can grow: the
//! anti-replay windows (one per sender and stream), the streams a node
//! holds and their access-control state. Without them a stranger with
//! fresh keys grows a node's memory without limit (the store's index is
//! bounded by `max_index_bytes`; what apply keeps in memory is not).
//!
//! A quota decides whether a transaction applies, so it must depend on the
//! log alone: counts come from the state that the log's earlier entries
//! built, never from the clock or the node's memory, and [`Quotas`] is a
//! protocol parameter, the same on every node of a log. A refused
//! transaction records [`TxResult::QuotaExceeded`](crate::apply::TxResult)
//! and changes nothing, on every node alike. Counts never go down (windows
//! and claims are never forgotten), so a refused transaction stays refused.

use std::fmt;

/// Access-control bytes one role or special key counts, besides its key:
/// about what it costs in memory and in the index (a set entry and the
/// fact's system key).
pub const ACL_FACT_BYTES: u64 = 128;

/// The quotas a node applies. Every node of one log must use the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Anti-replay windows the node holds, over all senders and streams:
    /// bounds the senders too, each of which has at least one window.
    pub windows: u64,
    /// Anti-replay windows one sender holds: the streams it may use, and
    /// so the streams it may claim.
    pub windows_per_sender: u64,
    /// Streams the node holds (claimed streams).
    pub streams: u64,
    /// Bytes of access-control state over all streams: each role (admin,
    /// writer, special writer) and special key counts [`ACL_FACT_BYTES`]
    /// plus the length of its key.
    pub acl_bytes: u64,
}

/// Anti-replay windows a node holds by default: 262,144, about 350 bytes
/// each in memory and index (90 MiB at most).
pub const DEFAULT_MAX_WINDOWS: u64 = 1 << 18;
/// Anti-replay windows one sender holds by default: as many as there may
/// be streams, so a node's own key, which signs its clients' writes to
/// every stream, never meets it.
pub const DEFAULT_MAX_WINDOWS_PER_SENDER: u64 = DEFAULT_MAX_STREAMS;
/// Streams a node holds by default: 16,384, about 2.3 KiB each in memory
/// and index (the stream's own index; 37 MiB at most).
pub const DEFAULT_MAX_STREAMS: u64 = 1 << 14;
/// Access-control bytes a node holds by default (32 MiB: 262,144 roles
/// with short keys).
pub const DEFAULT_MAX_ACL_BYTES: u64 = 32 << 20;

impl Default for Quotas {
    fn default() -> Self {
        Self {
            windows: DEFAULT_MAX_WINDOWS,
            windows_per_sender: DEFAULT_MAX_WINDOWS_PER_SENDER,
            streams: DEFAULT_MAX_STREAMS,
            acl_bytes: DEFAULT_MAX_ACL_BYTES,
        }
    }
}

impl Quotas {
    /// No quota: for judging entries again that were judged without them.
    pub const UNLIMITED: Quotas =
        Quotas { windows: u64::MAX, windows_per_sender: u64::MAX, streams: u64::MAX, acl_bytes: u64::MAX };
}

/// What a node holds of each node-wide quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Anti-replay windows ([`Quotas::windows`]).
    pub windows: u64,
    /// Claimed streams ([`Quotas::streams`]).
    pub streams: u64,
    /// Access-control bytes ([`Quotas::acl_bytes`]).
    pub acl_bytes: u64,
}

/// The quota a transaction would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// [`Quotas::windows`].
    Windows,
    /// [`Quotas::windows_per_sender`].
    SenderWindows,
    /// [`Quotas::streams`].
    Streams,
    /// [`Quotas::acl_bytes`].
    AclBytes,
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quota::Windows => "anti-replay windows",
            Quota::SenderWindows => "anti-replay windows of the sender",
            Quota::Streams => "streams",
            Quota::AclBytes => "access-control bytes",
        })
    }
}

/// Whether `held + more` stays within `limit`; growing nothing always does
/// (so state already past a quota may still shrink or stay).
fn fits(held: u64, more: u64, limit: u64) -> bool {
    more == 0 || held.saturating_add(more) <= limit
}

impl Quotas {
    /// Whether `new` more windows fit, the node holding `held` and the
    /// sender `held_by_sender`. The node-wide quota is checked first.
    pub fn admit_windows(&self, held: u64, held_by_sender: u64, new: u64) -> Result<(), Quota> {
        if !fits(held, new, self.windows) {
            return Err(Quota::Windows);
        }
        if !fits(held_by_sender, new, self.windows_per_sender) {
            return Err(Quota::SenderWindows);
        }
        Ok(())
    }

    /// Whether a transaction that claims `new_streams` streams, the node
    /// holding `streams`, and changes the access-control bytes by
    /// `acl_delta` from `acl_bytes` fits. Streams are checked first.
    pub fn admit_claims(
        &self,
        streams: u64,
        new_streams: u64,
        acl_bytes: u64,
        acl_delta: i64,
    ) -> Result<(), Quota> {
        if !fits(streams, new_streams, self.streams) {
            return Err(Quota::Streams);
        }
        if !fits(acl_bytes, acl_delta.max(0) as u64, self.acl_bytes) {
            return Err(Quota::AclBytes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_past_a_quota_is_refused_and_staying_is_not() {
        let q = Quotas { windows: 10, windows_per_sender: 3, streams: 2, acl_bytes: 100 };
        assert_eq!(q.admit_windows(9, 0, 1), Ok(()));
        assert_eq!(q.admit_windows(9, 0, 2), Err(Quota::Windows));
        assert_eq!(q.admit_windows(5, 3, 1), Err(Quota::SenderWindows));
        assert_eq!(q.admit_windows(50, 50, 0), Ok(()), "no new window");
        assert_eq!(q.admit_claims(2, 1, 0, 0), Err(Quota::Streams));
        assert_eq!(q.admit_claims(1, 1, 0, 100), Ok(()));
        assert_eq!(q.admit_claims(1, 0, 1, 100), Err(Quota::AclBytes));
        assert_eq!(q.admit_claims(5, 0, 500, -64), Ok(()), "shrinking");
        assert_eq!(q.admit_windows(u64::MAX, 0, 1), Err(Quota::Windows));
    }
}
