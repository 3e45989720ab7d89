//! The data as a read command sees it: the connection's stream as of a
//! version and — for `SCAN`, `KEYS` and `DBSIZE` queued in a `MULTI`
//! block — which keys the block's earlier ops made live or dead.
//!
//! The replies of the reads (`GET`, `MGET`, `EXISTS`, `STRLEN`, `TYPE`,
//! `GETRANGE`, `TOUCH`, `DUMP`, `GETBIT`, `BITCOUNT`, `BITPOS`,
//! `BITFIELD_RO`, `PFCOUNT`) are built from the values they read by
//! [`read_reply`], whether the values come from the store here or,
//! inside a `MULTI` block that writes, from the `Get` ops apply answered.

use std::collections::BTreeMap;

use logkv_runtime::collection::{self, Kind, Meta, META_MAGIC};
use logkv_runtime::node::{Node, NodeError};
use logkv_runtime::types::StreamId;

use super::hll::{Hll, NOT_HLL};
use super::{bits, dump, strings};
use crate::resp::command::{Bytes, Command, TtlQuery};
use crate::resp::reply::Reply;
use crate::resp::string_args::{BitFieldOp, ObjectQuery};

/// Redis's answer to `OBJECT FREQ` without an LFU eviction policy (logkv
/// evicts nothing, so never has one).
const NO_LFU: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

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

    /// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key`: nil for a missing key.
    /// `IDLETIME` is the seconds since the key was last written (logkv
    /// records no reads), by the log time of that write; `FREQ` is refused
    /// as Redis refuses it without an LFU policy; `REFCOUNT` is 1 (logkv
    /// shares no values).
    pub fn object(&self, key: &[u8], query: ObjectQuery) -> Result<Reply, NodeError> {
        if self.live.get(key) == Some(&false) {
            return Ok(Reply::Null);
        }
        let Some((value, version)) = self.node.get(&self.stream, key, self.at)? else {
            return Ok(Reply::Null);
        };
        let held = self.held(key)?;
        Ok(match query {
            ObjectQuery::Encoding => Reply::Bulk(match &held {
                // One record per element: Redis's names for its large forms.
                Held::Coll(kind) => collection_encoding(*kind).as_bytes().to_vec(),
                _ => strings::encoding(&value).as_bytes().to_vec(),
            }),
            ObjectQuery::Freq => Reply::Error(NO_LFU.into()),
            ObjectQuery::RefCount => Reply::Integer(1),
            ObjectQuery::IdleTime => {
                let idle =
                    self.node.read_time_ms(self.at).saturating_sub(self.node.read_time_ms(Some(version)));
                Reply::Integer((idle / 1000) as i64)
            }
        })
    }

    /// Runs a read command against the version, or `None` if `command` is
    /// not one.
    pub fn read(&self, command: &Command) -> Option<Result<Reply, NodeError>> {
        let keys = read_keys(command)?;
        let values: Result<Vec<_>, _> = keys.iter().map(|k| self.held(k)).collect();
        Some(values.map(|v| read_reply(command, v)))
    }
}

/// What `OBJECT ENCODING` says of a collection: the name Redis gives the
/// form it uses for large ones, whose costs logkv's element records share.
fn collection_encoding(kind: Kind) -> &'static str {
    match kind {
        Kind::Hash | Kind::Set => "hashtable",
        Kind::ZSet => "skiplist",
        Kind::List => "quicklist",
    }
}

/// The keys a read command reads, in order, or `None` for other commands.
pub fn read_keys(command: &Command) -> Option<Vec<&Bytes>> {
    Some(match command {
        Command::Get { key }
        | Command::StrLen { key }
        | Command::Type { key }
        | Command::GetRange { key, .. }
        | Command::Dump { key }
        | Command::GetBit { key, .. }
        | Command::BitCount { key, .. }
        | Command::BitPos { key, .. } => vec![key],
        Command::BitField { key, ops, .. } if !ops.iter().any(BitFieldOp::writes) => vec![key],
        Command::MGet { keys }
        | Command::Exists { keys }
        | Command::Touch { keys }
        | Command::PfCount { keys } => keys.iter().collect(),
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
        // Commands of strings on a collection (MGET answers nil for it, as Redis).
        Command::Get { .. }
        | Command::StrLen { .. }
        | Command::GetRange { .. }
        | Command::GetBit { .. }
        | Command::BitCount { .. }
        | Command::BitPos { .. }
        | Command::BitField { .. }
            if matches!(first, Held::Coll(_)) =>
        {
            wrongtype()
        }
        Command::PfCount { .. } if values.iter().any(|v| matches!(v, Held::Coll(_))) => wrongtype(),
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
        Command::Exists { .. } | Command::Touch { .. } => {
            Reply::Integer(values.iter().filter(|v| **v != Held::Absent).count() as i64)
        }
        Command::GetRange { start, end, .. } => {
            Reply::Bulk(first.string().map_or(&[][..], |v| strings::range(v, *start, *end)).to_vec())
        }
        Command::Dump { .. } => match &first {
            Held::Absent => Reply::Null,
            Held::Str(v) => Reply::Bulk(dump::dump(v)),
            Held::Coll(kind) => Reply::Error(format!("ERR DUMP of a {} is not supported yet", kind.name())),
        },
        Command::GetBit { offset, .. } => {
            Reply::Integer(first.string().is_some_and(|v| bits::get_bit(v, *offset)).into())
        }
        Command::BitCount { range, .. } => match (first.string(), range) {
            (None, _) => Reply::Integer(0),
            (Some(_), Err(e)) => Reply::from(e),
            (Some(v), Ok(range)) => Reply::Integer(bits::count(v, *range)),
        },
        Command::BitPos { bit, range, .. } => match (first.string(), range) {
            (None, _) => Reply::Integer(if *bit { -1 } else { 0 }),
            (Some(_), Err(e)) => Reply::from(e),
            (Some(v), Ok(range)) => Reply::Integer(bits::position(v, *bit, *range)),
        },
        Command::BitField { ops, .. } => {
            let mut value = first.string().cloned().unwrap_or_default();
            let answers = bits::bitfield(&mut value, ops);
            Reply::Array(answers.into_iter().map(|a| a.map_or(Reply::Null, Reply::Integer)).collect())
        }
        Command::PfCount { .. } => {
            let mut merged = Hll::default();
            for value in values.iter().filter_map(Held::string) {
                match Hll::decode(value) {
                    Some(hll) => merged.merge(&hll),
                    None => return Reply::Error(NOT_HLL.into()),
                }
            }
            Reply::Integer(merged.count() as i64)
        }
        other => Reply::Error(format!("ERR '{}' is not a read", other.name())),
    }
}
