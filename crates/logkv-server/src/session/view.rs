//! The data as a read command sees it: the connection's stream as of a
//! version and — for `SCAN`, `KEYS` and `DBSIZE` queued in a `MULTI`
//! block — which keys the block's earlier ops made live or dead.
//!
//! The replies of the reads (`GET`, `MGET`, `EXISTS`, `STRLEN`, `TYPE`)
//! are built from the values they read by [`read_reply`], whether the
//! values come from the store here or, inside a `MULTI` block that
//! writes, from the `Get` ops apply answered.

use std::collections::BTreeMap;

use logkv_runtime::node::{Node, NodeError};
use logkv_runtime::types::StreamId;

use crate::resp::command::{Bytes, Command, TtlQuery};
use crate::resp::reply::Reply;

/// The connection's stream as of a version, with keys made live (`true`)
/// or dead (`false`) on top.
pub struct View<'a> {
    node: &'a Node,
    stream: StreamId,
    at: Option<u64>,
    live: BTreeMap<Vec<u8>, bool>,
    /// A `FLUSHDB` earlier in the block: no key of the version is live.
    flushed: bool,
}

impl<'a> View<'a> {
    /// The state of `stream` as of `at` (`None`: the newest visible).
    pub fn new(node: &'a Node, stream: StreamId, at: Option<u64>) -> View<'a> {
        View { node, stream, at, live: BTreeMap::new(), flushed: false }
    }

    /// The node read.
    pub fn node(&self) -> &'a Node {
        self.node
    }

    /// The stream read.
    pub fn stream(&self) -> &StreamId {
        &self.stream
    }

    /// The version read as of.
    pub fn at(&self) -> Option<u64> {
        self.at
    }

    /// Keys whose liveness differs from the version's, by key.
    pub fn changes(&self) -> &BTreeMap<Vec<u8>, bool> {
        &self.live
    }

    /// Records that `key` is live (or not) from here on.
    pub fn set_live(&mut self, key: Vec<u8>, live: bool) {
        self.live.insert(key, live);
    }

    /// Records a flush of the stream: from here on only keys set live
    /// later are.
    pub fn set_flushed(&mut self) {
        self.flushed = true;
        self.live.clear();
    }

    /// Whether a flush came before: the version's keys are all gone.
    pub fn flushed(&self) -> bool {
        self.flushed
    }

    /// The value of `key` as of the version.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.node.get(&self.stream, key, self.at)?.map(|(v, _)| v))
    }

    /// `TTL` and its kin: -2 for no key, -1 for a key without expiry, else
    /// the time left (or the expiry's Unix time), seconds rounded as
    /// Redis rounds them. Time left is judged as reads judge expiry
    /// ([`Node::read_time_ms`]).
    pub fn ttl(&self, key: &[u8], query: TtlQuery) -> Result<Reply, NodeError> {
        if self.live.get(key) == Some(&false) || self.get(key)?.is_none() {
            return Ok(Reply::Integer(-2));
        }
        let Some(at) = self.node.expires_at(&self.stream, key, self.at)? else {
            return Ok(Reply::Integer(-1));
        };
        let ms = if query.absolute { at } else { at.saturating_sub(self.node.read_time_ms(self.at)) };
        let ms = i64::try_from(ms).unwrap_or(i64::MAX);
        Ok(Reply::Integer(if query.millis { ms } else { ms.saturating_add(500) / 1000 }))
    }

    /// Runs a read command against the version, or `None` if `command` is
    /// not one.
    pub fn read(&self, command: &Command) -> Option<Result<Reply, NodeError>> {
        let keys = read_keys(command)?;
        let values: Result<Vec<_>, _> = keys.iter().map(|k| self.get(k)).collect();
        Some(values.map(|v| read_reply(command, v)))
    }
}

/// The keys a read command reads, in order, or `None` for other commands.
pub fn read_keys(command: &Command) -> Option<Vec<&Bytes>> {
    Some(match command {
        Command::Get { key } | Command::StrLen { key } | Command::Type { key } => vec![key],
        Command::MGet { keys } | Command::Exists { keys } => keys.iter().collect(),
        _ => return None,
    })
}

/// The reply of a read command from the values of its [`read_keys`].
pub fn read_reply(command: &Command, values: Vec<Option<Vec<u8>>>) -> Reply {
    // The values move into the reply: a GET's value is not copied again.
    let first = || values.first().and_then(Option::as_ref);
    match command {
        Command::Get { .. } => values.into_iter().next().flatten().map_or(Reply::Null, Reply::Bulk),
        Command::StrLen { .. } => Reply::Integer(first().map_or(0, |v| v.len() as i64)),
        Command::Type { .. } => Reply::Simple(if first().is_some() { "string" } else { "none" }.into()),
        Command::MGet { .. } => {
            Reply::Array(values.into_iter().map(|v| v.map_or(Reply::Null, Reply::Bulk)).collect())
        }
        Command::Exists { .. } => Reply::Integer(values.iter().filter(|v| v.is_some()).count() as i64),
        other => Reply::Error(format!("ERR '{}' is not a read", other.name())),
    }
}
