//! The data as a read command sees it: the connection's stream as of a
//! version and — for `SCAN`, `KEYS` and `DBSIZE` queued in a `MULTI`
//! block — which keys the block's earlier ops made live or dead.
//!
//! The replies of the reads (`GET`, `MGET`, `EXISTS`, `STRLEN`, `TYPE`)
//! are built from the values they read by [`read_reply`], whether the
//! values come from the store here or, inside a `MULTI` block that
//! writes, from the `Get` ops apply answered.

use std::collections::BTreeMap;

use logkv_runtime::collection::{self, Kind, Meta, META_MAGIC};
use logkv_runtime::node::{Node, NodeError};
use logkv_runtime::types::StreamId;

use crate::resp::command::{Bytes, Command, TtlQuery};
use crate::resp::reply::Reply;

/// What a key holds, as reads tell the kinds apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Nothing (absent, deleted or expired).
    Absent,
    /// A string.
    Str(Vec<u8>),
    /// A collection of this kind.
    Coll(Kind),
}

impl Held {
    /// The string, if it is one.
    fn string(&self) -> Option<&Vec<u8>> {
        match self {
            Held::Str(v) => Some(v),
            _ => None,
        }
    }
}

/// The connection's stream as of a version, with keys made live (`true`)
/// or dead (`false`) on top.
pub struct View<'a> {
    node: &'a Node,
    stream: StreamId,
    at: Option<u64>,
    live: BTreeMap<Vec<u8>, bool>,
}

impl<'a> View<'a> {
    /// The state of `stream` as of `at` (`None`: the newest visible).
    pub fn new(node: &'a Node, stream: StreamId, at: Option<u64>) -> View<'a> {
        View { node, stream, at, live: BTreeMap::new() }
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

    /// The value of `key` as of the version.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.node.get(&self.stream, key, self.at)?.map(|(v, _)| v))
    }

    /// What `key` holds as of the version: a value that starts as a
    /// collection's metadata is one only if the type stream says so.
    pub fn held(&self, key: &[u8]) -> Result<Held, NodeError> {
        Ok(match self.meta(key)? {
            Err(None) => Held::Absent,
            Err(Some(v)) => Held::Str(v),
            Ok(meta) => Held::Coll(meta.kind),
        })
    }

    /// The collection metadata `key` holds, or else its string value
    /// (`None`: nothing).
    pub fn meta(&self, key: &[u8]) -> Result<Result<Meta, Option<Vec<u8>>>, NodeError> {
        let Some(v) = self.get(key)? else {
            return Ok(Err(None));
        };
        if !v.starts_with(&META_MAGIC)
            || self.node.get(&collection::types(&self.stream), key, self.at)?.is_none()
        {
            return Ok(Err(Some(v)));
        }
        Ok(Meta::decode(&v).ok_or(Some(v)))
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
        let values: Result<Vec<_>, _> = keys.iter().map(|k| self.held(k)).collect();
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
pub fn read_reply(command: &Command, values: Vec<Held>) -> Reply {
    let wrongtype = || Reply::Error(collection::WRONGTYPE.into());
    // The values move into the reply: a GET's value is not copied again.
    let first = values.first().cloned().unwrap_or(Held::Absent);
    let string = |held: Held| match held {
        Held::Str(v) => Reply::Bulk(v),
        _ => Reply::Null,
    };
    match command {
        Command::Get { .. } | Command::StrLen { .. } if matches!(first, Held::Coll(_)) => wrongtype(),
        Command::Get { .. } => string(first),
        Command::StrLen { .. } => Reply::Integer(first.string().map_or(0, |v| v.len() as i64)),
        Command::Type { .. } => Reply::Simple(
            match first {
                Held::Absent => "none",
                Held::Str(_) => "string",
                Held::Coll(kind) => kind.name(),
            }
            .into(),
        ),
        Command::MGet { .. } => Reply::Array(values.into_iter().map(string).collect()),
        Command::Exists { .. } => {
            Reply::Integer(values.iter().filter(|v| **v != Held::Absent).count() as i64)
        }
        other => Reply::Error(format!("ERR '{}' is not a read", other.name())),
    }
}
