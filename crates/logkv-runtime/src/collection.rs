//! Collections — hashes and sets — as streams (docs/datamodel.md).
//!
//! The elements of collection key `k` of stream `S` are ordinary keys of a
//! derived stream, [`elements`]`(S, k, created)`: one record per field or
//! member, so a field op costs an index lookup whatever the size. `(S, k)`
//! itself holds the collection's metadata ([`Meta`]: kind, element count,
//! the element stream's id), so `DEL`, `EXISTS`, `EXPIRE`, `SCAN` and
//! the digest see one key per collection. The derived stream [`types`]`(S)`
//! holds `k → kind` exactly while `(S, k)` holds a collection: what tells a
//! metadata record from a string value that happens to look like one.
//!
//! The ops ([`CollOp`], protocol 7) are decided in apply from the state,
//! so concurrent `HSET`s never conflict and every node counts alike. A new
//! collection gets a fresh element stream (its creating version is part of
//! the id), so stale elements of an earlier collection under the same key
//! are never seen; deleting or overwriting a collection flushes its stream
//! (O(1), [`crate::codec::WriteOp::Flush`]'s machinery).

use std::borrow::Cow;

use crate::apply::{NewValue, OpAnswer, Pending, Slot, TxResult};
use crate::codec::{ParseError, MAX_KEY_BYTES};
use crate::envelope::Protocol;
use crate::signing::keccak256;
use crate::types::StreamId;
use crate::varint;

/// The kind of value a collection key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Field → value.
    Hash,
    /// Members.
    Set,
    /// Members with scores.
    ZSet,
    /// Elements in order.
    List,
}

impl Kind {
    /// The byte that names the kind in metadata and type records.
    pub fn byte(self) -> u8 {
        match self {
            Kind::Hash => 1,
            Kind::Set => 2,
            Kind::ZSet => 3,
            Kind::List => 4,
        }
    }

    /// The kind a byte names.
    pub fn of_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Hash),
            2 => Some(Kind::Set),
            3 => Some(Kind::ZSet),
            4 => Some(Kind::List),
            _ => None,
        }
    }

    /// Redis's name for it (`TYPE`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::List => "list",
        }
    }
}

/// The first bytes of every metadata record: readers look a key up in the
/// type stream only when its value starts with them.
pub const META_MAGIC: [u8; 4] = *b"\0LKC";

/// Most elements one collection may hold.
pub const MAX_ELEMENTS: u64 = u32::MAX as u64;

/// Longest field or member, in bytes: an element key is a tag byte and the
/// field, within the format's key limit.
pub const MAX_MEMBER_BYTES: usize = MAX_KEY_BYTES - 1;

/// The tag byte before a field or member in its element key (so an empty
/// field, which Redis allows, is a non-empty key).
pub const MEMBER_TAG: u8 = b'm';

/// What `(S, k)` holds for a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Its kind.
    pub kind: Kind,
    /// The stream that holds its elements: derived once, when the
    /// collection is created ([`elements`]), and kept here, so the
    /// metadata alone names the elements (a rename may move it to another
    /// key without touching them).
    pub elements: StreamId,
    /// How many elements it holds (never 0: an emptied collection is deleted).
    pub len: u64,
    /// A list's first position (its elements are at `head..head + len`);
    /// 0 for other kinds.
    pub head: i64,
}

impl Meta {
    /// Magic, kind, element stream (32), len (u64 BE), and for a list its
    /// head (i64 BE).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(53);
        out.extend_from_slice(&META_MAGIC);
        out.push(self.kind.byte());
        out.extend_from_slice(&self.elements.0);
        out.extend_from_slice(&self.len.to_be_bytes());
        if self.kind == Kind::List {
            out.extend_from_slice(&self.head.to_be_bytes());
        }
        out
    }

    /// Reads a metadata record back.
    pub fn decode(b: &[u8]) -> Option<Meta> {
        let rest = b.strip_prefix(&META_MAGIC)?;
        let kind = Kind::of_byte(*rest.first()?)?;
        if rest.len() != if kind == Kind::List { 49 } else { 41 } {
            return None;
        }
        let elements = StreamId::from_slice(&rest[1..33])?;
        let len = u64::from_be_bytes(rest[33..41].try_into().ok()?);
        let head = match rest.get(41..49) {
            Some(h) => i64::from_be_bytes(h.try_into().ok()?),
            None => 0,
        };
        Some(Meta { kind, elements, len, head })
    }

    /// The position of a list index (negative: from the end), if in range.
    pub fn position(&self, index: i64) -> Option<i64> {
        let len = i64::try_from(self.len).ok()?;
        let index = if index < 0 { index.checked_add(len)? } else { index };
        (0..len).contains(&index).then(|| self.head + index)
    }
}

/// The stream of the elements of the collection created at `created` under
/// `(stream, key)`.
pub fn elements(stream: &StreamId, key: &[u8], created: u64) -> StreamId {
    let mut seed = Vec::with_capacity(64 + key.len());
    seed.extend_from_slice(b"logkv/collection/");
    seed.extend_from_slice(&stream.0);
    seed.extend_from_slice(&created.to_be_bytes());
    seed.extend_from_slice(key);
    StreamId(keccak256(&seed))
}

/// The stream that maps each collection key of `stream` to its kind.
pub fn types(stream: &StreamId) -> StreamId {
    let mut seed = b"logkv/types/".to_vec();
    seed.extend_from_slice(&stream.0);
    StreamId(keccak256(&seed))
}

/// The element key of a field or member.
pub fn member_key(member: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + member.len());
    k.push(MEMBER_TAG);
    k.extend_from_slice(member);
    k
}

/// The field or member an element key holds.
pub fn member_of(element_key: &[u8]) -> Option<&[u8]> {
    element_key.strip_prefix(&[MEMBER_TAG])
}

/// The element key of a list position: a tag and 8 bytes that sort as
/// the positions do.
pub fn position_key(position: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(POSITION_TAG);
    k.extend_from_slice(&((position as u64) ^ (1 << 63)).to_be_bytes());
    k
}

/// The tag byte of a list's element keys.
pub const POSITION_TAG: u8 = b'p';

/// The tag byte of a sorted set's score index keys: tag, score (8 bytes
/// that sort as the scores do), member — the order `ZRANGE` reads.
pub const SCORE_TAG: u8 = b's';

/// A score as 8 bytes whose byte order is the scores' order (`-0` is `0`).
pub fn sortable(score: f64) -> [u8; 8] {
    let bits = if score == 0.0 { 0.0f64 } else { score }.to_bits();
    (if bits >> 63 == 1 { !bits } else { bits | 1 << 63 }).to_be_bytes()
}

/// The score [`sortable`] wrote.
pub fn unsortable(b: [u8; 8]) -> f64 {
    let bits = u64::from_be_bytes(b);
    f64::from_bits(if bits >> 63 == 1 { bits & !(1 << 63) } else { !bits })
}

/// The score index key of `member` at `score`.
pub fn score_key(score: f64, member: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + member.len());
    k.push(SCORE_TAG);
    k.extend_from_slice(&sortable(score));
    k.extend_from_slice(member);
    k
}

/// The score and member a score index key holds.
pub fn of_score_key(key: &[u8]) -> Option<(f64, &[u8])> {
    let rest = key.strip_prefix(&[SCORE_TAG])?;
    let score = unsortable(rest.get(..8)?.try_into().ok()?);
    Some((score, &rest[8..]))
}

/// A sorted set member's score, as its element value holds it (f64 bits, BE).
pub fn score_of(value: &[u8]) -> Option<f64> {
    Some(f64::from_bits(u64::from_be_bytes(value.try_into().ok()?)))
}

/// A score as Redis reads one: a float, `inf`/`+inf`/`-inf` allowed, NaN not.
pub fn parse_score(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| !f.is_nan())
}

/// `ZADD`'s options, as the bits of its first argument's one byte.
pub mod zadd {
    /// Only add new members.
    pub const NX: u8 = 1;
    /// Only update existing members.
    pub const XX: u8 = 2;
    /// Only update to a greater score.
    pub const GT: u8 = 4;
    /// Only update to a lower score.
    pub const LT: u8 = 8;
    /// Count changed members too.
    pub const CH: u8 = 16;
    /// Add the score to the member's (one pair): answer the new score.
    pub const INCR: u8 = 32;
}

/// A collection op: its native op byte is 0x10 plus its code; its value is
/// its arguments ([`encode_args`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollOp {
    /// `HSET`: field, value pairs. Answer: fields added.
    HashSet,
    /// `HSETNX`: field, value. Answer: 1 if set.
    HashSetIfAbsent,
    /// `HDEL`: fields. Answer: fields removed.
    HashDelete,
    /// `HINCRBY`: field, decimal delta. Answer: the new value.
    HashIncrement,
    /// `HINCRBYFLOAT`: field, decimal delta. Answer: the new value's bytes.
    HashIncrementFloat,
    /// `SADD`: members. Answer: members added.
    SetAdd,
    /// `SREM`, and `SPOP` with the members the receiving node picked.
    /// Answer: the members removed.
    SetRemove,
    /// `SMOVE`: destination key (of the same stream), member. Answer: 1 if
    /// the member moved.
    SetMove,
    /// `ZADD`, `ZINCRBY`: options byte ([`zadd`]), then score, member
    /// pairs. Answer: members added (and changed, with `CH`), or with
    /// `INCR` the new score (nil if the options held it back).
    ZAdd,
    /// `ZREM`, and `ZPOPMIN`/`ZPOPMAX`/`ZREMRANGEBY…` with the members the
    /// receiving node read. Answer: the members removed.
    ZRemove,
    /// `LPUSH`/`RPUSH`(`X`): side (`L` or `R`), `X` if only onto an
    /// existing list (else empty), then elements. Answer: the new length
    /// (0: not pushed, `X` on no list).
    ListPush,
    /// `LPOP`/`RPOP`: side, count (decimal; empty: one). Answer: the
    /// elements popped, or `Value(None)` if there was no list.
    ListPop,
    /// `LSET`: index (decimal), element. Answer: `Count(1)`.
    ListSet,
    /// `LTRIM`: start, stop (decimal). Answer: `Count` of elements removed.
    ListTrim,
    /// `LMOVE`, `RPOPLPUSH`: destination key (same stream), the side to
    /// pop (`L`/`R`), the side to push. Answer: the element moved, or
    /// `Value(None)` if there was no source list.
    ListMove,
    /// `LREM`: count (decimal), element. Answer: `Count` removed. O(N):
    /// the elements after the first removed one move up.
    ListRemove,
    /// `LINSERT`: `B` (before) or `A` (after), pivot, element. Answer: the
    /// new length, -1 without the pivot, 0 without a list. O(N).
    ListInsert,
}

/// Every collection op, in code order.
pub const COLL_OPS: [CollOp; 17] = [
    CollOp::HashSet,
    CollOp::HashSetIfAbsent,
    CollOp::HashDelete,
    CollOp::HashIncrement,
    CollOp::HashIncrementFloat,
    CollOp::SetAdd,
    CollOp::SetRemove,
    CollOp::SetMove,
    CollOp::ZAdd,
    CollOp::ZRemove,
    CollOp::ListPush,
    CollOp::ListPop,
    CollOp::ListSet,
    CollOp::ListTrim,
    CollOp::ListMove,
    CollOp::ListRemove,
    CollOp::ListInsert,
];

/// The first native op byte of the collection ops.
pub const FIRST_OP_BYTE: u8 = 0x10;

impl CollOp {
    /// Its native op byte.
    pub fn byte(self) -> u8 {
        FIRST_OP_BYTE + COLL_OPS.iter().position(|o| *o == self).expect("listed") as u8
    }

    /// The op a native op byte names.
    pub fn of_byte(b: u8) -> Option<CollOp> {
        COLL_OPS.get(usize::from(b.checked_sub(FIRST_OP_BYTE)?)).copied()
    }

    /// Its name in JSON bodies.
    pub fn name(self) -> &'static str {
        match self {
            CollOp::HashSet => "HashSet",
            CollOp::HashSetIfAbsent => "HashSetIfAbsent",
            CollOp::HashDelete => "HashDelete",
            CollOp::HashIncrement => "HashIncrement",
            CollOp::HashIncrementFloat => "HashIncrementFloat",
            CollOp::SetAdd => "SetAdd",
            CollOp::SetRemove => "SetRemove",
            CollOp::SetMove => "SetMove",
            CollOp::ZAdd => "ZAdd",
            CollOp::ZRemove => "ZRemove",
            CollOp::ListPush => "ListPush",
            CollOp::ListPop => "ListPop",
            CollOp::ListSet => "ListSet",
            CollOp::ListTrim => "ListTrim",
            CollOp::ListMove => "ListMove",
            CollOp::ListRemove => "ListRemove",
            CollOp::ListInsert => "ListInsert",
        }
    }

    /// The op a JSON name names.
    pub fn of_name(name: &str) -> Option<CollOp> {
        COLL_OPS.iter().copied().find(|o| o.name() == name)
    }

    /// The feature level of every collection op.
    pub fn protocol(self) -> Protocol {
        Protocol::V7
    }

    /// The kind of collection it works on.
    pub fn kind(self) -> Kind {
        match self {
            CollOp::SetAdd | CollOp::SetRemove | CollOp::SetMove => Kind::Set,
            CollOp::ZAdd | CollOp::ZRemove => Kind::ZSet,
            CollOp::ListPush
            | CollOp::ListPop
            | CollOp::ListSet
            | CollOp::ListTrim
            | CollOp::ListMove
            | CollOp::ListRemove
            | CollOp::ListInsert => Kind::List,
            _ => Kind::Hash,
        }
    }

    /// The arguments that are fields or members (element keys), of
    /// arguments that fit the op.
    pub fn members<'a, A: AsRef<[u8]>>(self, args: &'a [A]) -> impl Iterator<Item = &'a [u8]> + 'a {
        args.iter()
            .enumerate()
            .filter(move |(i, _)| match self {
                CollOp::HashSet => i.is_multiple_of(2),
                CollOp::HashSetIfAbsent | CollOp::HashIncrement | CollOp::HashIncrementFloat => *i == 0,
                CollOp::HashDelete | CollOp::SetAdd | CollOp::SetRemove => true,
                CollOp::SetMove => *i == 1,
                CollOp::ZAdd => *i > 0 && i.is_multiple_of(2),
                CollOp::ZRemove => true,
                CollOp::ListPush
                | CollOp::ListPop
                | CollOp::ListSet
                | CollOp::ListTrim
                | CollOp::ListMove
                | CollOp::ListRemove
                | CollOp::ListInsert => false,
            })
            .map(|(_, a)| a.as_ref())
    }

    /// Whether `n` arguments fit the op.
    fn arity_ok(self, n: usize) -> bool {
        match self {
            CollOp::HashSet => n >= 2 && n.is_multiple_of(2),
            CollOp::HashSetIfAbsent
            | CollOp::HashIncrement
            | CollOp::HashIncrementFloat
            | CollOp::SetMove => n == 2,
            CollOp::HashDelete | CollOp::SetAdd | CollOp::SetRemove | CollOp::ZRemove => n >= 1,
            CollOp::ZAdd => n >= 3 && !n.is_multiple_of(2),
            CollOp::ListPush => n >= 3,
            CollOp::ListPop | CollOp::ListSet | CollOp::ListTrim | CollOp::ListRemove => n == 2,
            CollOp::ListMove | CollOp::ListInsert => n == 3,
        }
    }
}

/// Arguments as one value: each a varint length and its bytes.
pub fn encode_args<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::with_capacity(args.iter().map(|a| a.as_ref().len() + 2).sum());
    for a in args {
        varint::put(&mut out, a.as_ref().len() as u64);
        out.extend_from_slice(a.as_ref());
    }
    out
}

/// The arguments [`encode_args`] wrote.
pub fn decode_args(mut b: &[u8]) -> Result<Vec<&[u8]>, ParseError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (len, used) =
            varint::read(b).map_err(|e| ParseError::invalid(format!("collection args: {e}")))?;
        let end = usize::try_from(len).ok().and_then(|l| used.checked_add(l)).filter(|e| *e <= b.len());
        let end =
            end.ok_or_else(|| ParseError::invalid("collection args: an argument runs past the value"))?;
        out.push(&b[used..end]);
        b = &b[end..];
    }
    Ok(out)
}

/// Redis's error for a command on a key of another kind.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// What `(stream, key)` holds as a transaction sees it: `Ok(None)` nothing
/// live, `Ok(Some)` a collection, `Err(())` a string.
fn held(p: &Pending<'_>, stream: &StreamId, key: &[u8]) -> Result<Option<Meta>, ()> {
    if !p.before(stream, key).is_live() {
        return Ok(None);
    }
    if !p.before(&types(stream), key).is_live() {
        return Err(());
    }
    p.before(stream, key).bytes().and_then(|b| Meta::decode(&b)).map(Some).ok_or(())
}

/// Whether `(stream, key)` holds a live collection.
pub(crate) fn is_collection(p: &Pending<'_>, stream: &StreamId, key: &[u8]) -> bool {
    matches!(held(p, stream, key), Ok(Some(_)))
}

/// The metadata of a collection `(stream, key)` holds, live or expired:
/// what an overwrite of the key must clean up.
pub(crate) fn stale(p: &Pending<'_>, stream: &StreamId, key: &[u8]) -> Option<Meta> {
    if !p.held(&types(stream), key) {
        return None;
    }
    p.held_bytes(stream, key).and_then(|b| Meta::decode(&b))
}

/// Removes what a collection left when its key is overwritten or deleted:
/// its type record and (one flush) its elements.
pub(crate) fn clean_up(p: &mut Pending<'_>, stream: &StreamId, key: &[u8], meta: &Meta) {
    p.set(types(stream), key.to_vec(), Slot::lasting(NewValue::Deleted));
    p.flush(meta.elements);
}

/// Applies one collection op to `(stream, key)`: its answer. An argument
/// list the op cannot take is a parse error (no server sends one); a key of
/// another kind, or a value the op cannot compute with, is an answer that
/// changes nothing, as a failed command inside Redis's `MULTI`.
pub(crate) fn evaluate(
    op: CollOp,
    stream: &StreamId,
    key: &[u8],
    args: &[u8],
    p: &mut Pending<'_>,
) -> Result<OpAnswer, TxResult> {
    let args = decode_args(args).map_err(TxResult::DataParseError)?;
    if !op.arity_ok(args.len()) {
        let why = format!("{} takes no {} arguments", op.name(), args.len());
        return Err(TxResult::DataParseError(ParseError::invalid(why)));
    }
    if op.members(&args).any(|a| a.len() > MAX_MEMBER_BYTES) {
        let why = format!("{}: a field or member is longer than {MAX_MEMBER_BYTES} bytes", op.name());
        return Err(TxResult::DataParseError(ParseError::invalid(why)));
    }
    if op == CollOp::SetMove {
        return Ok(set_move(p, stream, key, args[0], args[1]));
    }
    if op == CollOp::ListMove {
        return Ok(list_move(p, stream, key, args[0], args[1], args[2]));
    }
    Ok(change(op, stream, key, &args, p))
}

/// The other key an op writes, besides its own (`SMOVE`'s destination),
/// from its encoded arguments: apply checks it as it checks the op's key.
pub fn other_key(op: CollOp, args: &[u8]) -> Option<Vec<u8>> {
    matches!(op, CollOp::SetMove | CollOp::ListMove)
        .then(|| decode_args(args).ok()?.first().map(|k| k.to_vec()))?
}

/// `SMOVE`: the member leaves `source` and joins `destination` (both sets
/// or absent, else nothing changes).
fn set_move(
    p: &mut Pending<'_>,
    stream: &StreamId,
    source: &[u8],
    destination: &[u8],
    member: &[u8],
) -> OpAnswer {
    let is_set = |p: &Pending<'_>, key: &[u8]| match held(p, stream, key) {
        Ok(None) => true,
        Ok(Some(meta)) => meta.kind == Kind::Set,
        Err(()) => false,
    };
    if !is_set(p, source) || !is_set(p, destination) {
        return OpAnswer::Refused(WRONGTYPE);
    }
    if source == destination {
        let meta = held(p, stream, source).ok().flatten();
        let present = meta.is_some_and(|m| p.before(&m.elements, &member_key(member)).is_live());
        return OpAnswer::Count(i64::from(present));
    }
    match change(CollOp::SetRemove, stream, source, &[member], p) {
        OpAnswer::Members(removed) if !removed.is_empty() => {
            change(CollOp::SetAdd, stream, destination, &[member], p);
            OpAnswer::Count(1)
        }
        _ => OpAnswer::Count(0),
    }
}

/// `LMOVE`: one element popped from `source`'s `from` end and pushed at
/// `destination`'s `to` end (the same list rotates).
fn list_move(
    p: &mut Pending<'_>,
    stream: &StreamId,
    source: &[u8],
    destination: &[u8],
    from: &[u8],
    to: &[u8],
) -> OpAnswer {
    let kind = |p: &Pending<'_>, key: &[u8]| held(p, stream, key).map(|m| m.map(|m| m.kind));
    match kind(p, source) {
        Ok(None) => return OpAnswer::Value(None),
        Ok(Some(Kind::List)) => {}
        _ => return OpAnswer::Refused(WRONGTYPE),
    }
    if !matches!(kind(p, destination), Ok(None | Some(Kind::List))) {
        return OpAnswer::Refused(WRONGTYPE);
    }
    let OpAnswer::Members(popped) = change(CollOp::ListPop, stream, source, &[from, b""], p) else {
        return OpAnswer::Value(None);
    };
    let Some(element) = popped.into_iter().next() else { return OpAnswer::Value(None) };
    change(CollOp::ListPush, stream, destination, &[to, b"", &element], p);
    OpAnswer::Value(Some(element))
}

/// Applies an op whose arguments are checked to `(stream, key)`.
fn change(op: CollOp, stream: &StreamId, key: &[u8], args: &[&[u8]], p: &mut Pending<'_>) -> OpAnswer {
    let found = match held(p, stream, key) {
        Err(()) => return OpAnswer::Refused(WRONGTYPE),
        Ok(Some(meta)) if meta.kind != op.kind() => return OpAnswer::Refused(WRONGTYPE),
        Ok(found) => found,
    };
    let mut meta = found.unwrap_or(Meta {
        kind: op.kind(),
        elements: elements(stream, key, p.version()),
        len: 0,
        head: 0,
    });
    if meta.len.saturating_add(args.len() as u64) > MAX_ELEMENTS {
        return OpAnswer::Refused(TOO_MANY);
    }
    let elements = meta.elements;
    // Each element write: what it does to the count (+1, 0, -1).
    let put = |p: &mut Pending<'_>, member: &[u8], value: Option<Vec<u8>>| {
        let ek = member_key(member);
        let was = p.before(&elements, &ek).is_live();
        let now = value.is_some();
        if was || now {
            let value = value.map_or(NewValue::Deleted, NewValue::Computed);
            p.set(elements, ek, Slot::lasting(value));
        }
        i64::from(now) - i64::from(was)
    };
    let mut delta = 0;
    let mut changed = false;
    let mut count = |d: i64| {
        delta += d;
        changed = true;
        d
    };
    let answer = match op {
        CollOp::HashSet => {
            OpAnswer::Count(args.chunks(2).map(|pair| count(put(p, pair[0], Some(pair[1].to_vec())))).sum())
        }
        CollOp::HashSetIfAbsent => {
            let absent = !p.before(&elements, &member_key(args[0])).is_live();
            if absent {
                count(put(p, args[0], Some(args[1].to_vec())));
            }
            OpAnswer::Count(i64::from(absent))
        }
        CollOp::SetAdd => {
            let mut added = 0;
            for m in args {
                if !p.before(&elements, &member_key(m)).is_live() {
                    added += count(put(p, m, Some(Vec::new())));
                }
            }
            OpAnswer::Count(added)
        }
        CollOp::HashDelete => {
            let mut removed = 0;
            for f in args {
                if p.before(&elements, &member_key(f)).is_live() {
                    removed -= count(put(p, f, None));
                }
            }
            OpAnswer::Count(removed)
        }
        CollOp::SetRemove => {
            let mut removed = Vec::new();
            for m in args {
                if p.before(&elements, &member_key(m)).is_live() {
                    count(put(p, m, None));
                    removed.push(m.to_vec());
                }
            }
            OpAnswer::Members(removed)
        }
        CollOp::SetMove => unreachable!("a move is two changes (set_move)"),
        CollOp::ZAdd => {
            let options = args[0].first().copied().unwrap_or(0);
            let has = |bit: u8| options & bit != 0;
            let mut added = 0;
            let mut updated = 0;
            let mut incremented = None;
            for pair in args[1..].chunks(2) {
                let Some(score) = parse_score(pair[0]) else {
                    return OpAnswer::Refused("ERR value is not a valid float");
                };
                let mk = member_key(pair[1]);
                let old = p.before(&elements, &mk).bytes().and_then(|b| score_of(&b));
                let new = match (has(zadd::INCR), old) {
                    (true, Some(old)) => old + score,
                    _ => score,
                };
                if new.is_nan() {
                    return OpAnswer::Refused("ERR resulting score is not a number (NaN)");
                }
                let held_back = match old {
                    None => has(zadd::XX),
                    Some(old) => {
                        has(zadd::NX) || (has(zadd::GT) && new <= old) || (has(zadd::LT) && new >= old)
                    }
                };
                if held_back {
                    continue;
                }
                incremented = Some(new);
                if old == Some(new) {
                    continue;
                }
                if let Some(old) = old {
                    p.set(elements, score_key(old, pair[1]), Slot::lasting(NewValue::Deleted));
                    updated += 1;
                } else {
                    added += 1;
                }
                count(put(p, pair[1], Some(new.to_bits().to_be_bytes().to_vec())));
                p.set(elements, score_key(new, pair[1]), Slot::lasting(NewValue::Computed(Vec::new())));
            }
            match (has(zadd::INCR), has(zadd::CH)) {
                (true, _) => OpAnswer::Value(incremented.map(|s| format_score(s).into_bytes())),
                (false, true) => OpAnswer::Count(added + updated),
                (false, false) => OpAnswer::Count(added),
            }
        }
        CollOp::ListPush => {
            if found.is_none() && args[1] == b"X" {
                return OpAnswer::Count(0);
            }
            let left = args[0] == b"L";
            let mut len = meta.len as i64;
            for e in &args[2..] {
                let at = if left {
                    meta.head -= 1;
                    meta.head
                } else {
                    meta.head + len
                };
                p.set(elements, position_key(at), Slot::lasting(NewValue::Computed(e.to_vec())));
                len += count(1);
            }
            OpAnswer::Count(len)
        }
        CollOp::ListPop => {
            if found.is_none() {
                return OpAnswer::Value(None);
            }
            let n = match args[1] {
                b"" => 1,
                c => match crate::apply::parse_i64(c).and_then(|n| u64::try_from(n).ok()) {
                    Some(n) => n.min(meta.len),
                    None => return OpAnswer::Refused("ERR value is out of range, must be positive"),
                },
            };
            let mut popped = Vec::new();
            let mut len = meta.len as i64;
            for _ in 0..n {
                let at = if args[0] == b"L" { meta.head } else { meta.head + len - 1 };
                len -= 1;
                let k = position_key(at);
                popped.push(p.before(&elements, &k).bytes().map(Cow::into_owned).unwrap_or_default());
                p.set(elements, k, Slot::lasting(NewValue::Deleted));
                if args[0] == b"L" {
                    meta.head += 1;
                }
                count(-1);
            }
            OpAnswer::Members(popped)
        }
        CollOp::ListTrim => {
            let Some(found) = found else { return OpAnswer::Count(0) };
            let (Some(start), Some(stop)) =
                (crate::apply::parse_i64(args[0]), crate::apply::parse_i64(args[1]))
            else {
                return OpAnswer::Refused("ERR value is not an integer or out of range");
            };
            let len = found.len as i64;
            let start = if start < 0 { (start.saturating_add(len)).max(0) } else { start };
            let stop = if stop < 0 { stop.saturating_add(len) } else { stop.min(len - 1) };
            let (keep_from, keep_to) =
                if start > stop || start >= len { (len, len - 1) } else { (start, stop) };
            let mut removed = 0;
            for i in (0..keep_from).chain(keep_to + 1..len) {
                p.set(elements, position_key(found.head + i), Slot::lasting(NewValue::Deleted));
                removed += 1;
                count(-1);
            }
            meta.head = found.head + keep_from.min(len);
            OpAnswer::Count(removed)
        }
        CollOp::ListMove => unreachable!("a move is two changes (list_move)"),
        CollOp::ListRemove | CollOp::ListInsert => {
            let Some(found) = found else { return OpAnswer::Count(0) };
            let read = |p: &Pending<'_>, i: i64| {
                p.before(&elements, &position_key(found.head + i))
                    .bytes()
                    .map(Cow::into_owned)
                    .unwrap_or_default()
            };
            let all: Vec<Vec<u8>> = (0..found.len as i64).map(|i| read(p, i)).collect();
            let new: Vec<Vec<u8>> = if op == CollOp::ListRemove {
                let Some(n) = crate::apply::parse_i64(args[0]) else {
                    return OpAnswer::Refused("ERR value is not an integer or out of range");
                };
                let limit = if n == 0 { usize::MAX } else { n.unsigned_abs() as usize };
                let mut hits: Vec<usize> =
                    all.iter().enumerate().filter(|(_, e)| *e == args[1]).map(|(i, _)| i).collect();
                if n < 0 {
                    hits.reverse();
                }
                hits.truncate(limit);
                if hits.is_empty() {
                    return OpAnswer::Count(0);
                }
                all.iter().enumerate().filter(|(i, _)| !hits.contains(i)).map(|(_, e)| e.clone()).collect()
            } else {
                let Some(at) = all.iter().position(|e| e == args[1]) else { return OpAnswer::Count(-1) };
                let at = if args[0] == b"A" { at + 1 } else { at };
                let mut new = all.clone();
                new.insert(at, args[2].to_vec());
                new
            };
            // Rewrite from the first changed place on; positions past the
            // new end are deleted.
            let first = all.iter().zip(&new).position(|(a, b)| a != b).unwrap_or(all.len().min(new.len()));
            for i in first..all.len().max(new.len()) {
                let value = new.get(i).map_or(NewValue::Deleted, |e| NewValue::Computed(e.clone()));
                p.set(elements, position_key(found.head + i as i64), Slot::lasting(value));
            }
            count(new.len() as i64 - all.len() as i64);
            if op == CollOp::ListRemove {
                OpAnswer::Count((all.len() - new.len()) as i64)
            } else {
                OpAnswer::Count(new.len() as i64)
            }
        }
        CollOp::ListSet => {
            let Some(meta) = found else { return OpAnswer::Refused("ERR no such key") };
            let index = crate::apply::parse_i64(args[0]);
            let Some(at) = index.and_then(|i| meta.position(i)) else {
                return OpAnswer::Refused(if index.is_none() {
                    "ERR value is not an integer or out of range"
                } else {
                    "ERR index out of range"
                });
            };
            p.set(elements, position_key(at), Slot::lasting(NewValue::Computed(args[1].to_vec())));
            count(0);
            OpAnswer::Count(1)
        }
        CollOp::ZRemove => {
            let mut removed = Vec::new();
            for m in args {
                let old = p.before(&elements, &member_key(m)).bytes().and_then(|b| score_of(&b));
                if let Some(old) = old {
                    count(put(p, m, None));
                    p.set(elements, score_key(old, m), Slot::lasting(NewValue::Deleted));
                    removed.push((m.to_vec(), format_score(old).into_bytes()));
                }
            }
            OpAnswer::Scored(removed)
        }
        CollOp::HashIncrement | CollOp::HashIncrementFloat => {
            let old = p.before(&elements, &member_key(args[0])).bytes().map(Cow::into_owned);
            let new = match op {
                CollOp::HashIncrement => increment(old.as_deref(), args[1]),
                _ => increment_float(old.as_deref(), args[1]),
            };
            match new {
                Err(why) => return OpAnswer::Refused(why),
                Ok((new, answer)) => {
                    count(put(p, args[0], Some(new)));
                    answer
                }
            }
        }
    };
    if changed {
        meta.len = meta.len.checked_add_signed(delta).expect("a count never goes below zero");
        write_meta(p, stream, key, found.is_some(), meta);
    }
    answer
}

/// Redis's error for a collection at its size limit.
const TOO_MANY: &str = "ERR collection is full: logkv collections hold at most 4294967295 elements";

/// Writes `(stream, key)`'s metadata after a change: the new count (kept
/// expiry), or — emptied — the key's removal with its type record and
/// elements. A new collection also gets its type record, and what an
/// expired collection under the key left is flushed.
fn write_meta(p: &mut Pending<'_>, stream: &StreamId, key: &[u8], existed: bool, meta: Meta) {
    if meta.len == 0 {
        if existed {
            p.set(*stream, key.to_vec(), Slot::lasting(NewValue::Deleted));
            clean_up(p, stream, key, &meta);
        }
        return;
    }
    let expires_at = if existed { p.before(stream, key).kept_expiry() } else { None };
    if !existed {
        if let Some(old) = stale(p, stream, key) {
            p.flush(old.elements);
        }
        p.set(types(stream), key.to_vec(), Slot::lasting(NewValue::Computed(vec![meta.kind.byte()])));
    }
    p.set(*stream, key.to_vec(), Slot { value: NewValue::Computed(meta.encode()), expires_at });
}

/// `HINCRBY`: the field's new value and the answer.
fn increment(old: Option<&[u8]>, by: &[u8]) -> Result<(Vec<u8>, OpAnswer), &'static str> {
    let by = crate::apply::parse_i64(by).ok_or("ERR value is not an integer or out of range")?;
    let old = match old {
        None => 0,
        Some(b) => crate::apply::parse_i64(b).ok_or("ERR hash value is not an integer")?,
    };
    let new = old.checked_add(by).ok_or("ERR increment or decrement would overflow")?;
    Ok((new.to_string().into_bytes(), OpAnswer::Integer(new)))
}

/// `HINCRBYFLOAT`: the field's new value and the answer (the value).
fn increment_float(old: Option<&[u8]>, by: &[u8]) -> Result<(Vec<u8>, OpAnswer), &'static str> {
    let by = parse_f64(by).ok_or("ERR value is not a valid float")?;
    let old = match old {
        None => 0.0,
        Some(b) => parse_f64(b).ok_or("ERR hash value is not a float")?,
    };
    let new = old + by;
    if !new.is_finite() {
        return Err("ERR increment would produce NaN or Infinity");
    }
    let bytes = format_f64(new).into_bytes();
    Ok((bytes.clone(), OpAnswer::Value(Some(bytes))))
}

/// A score as Redis 7.0 writes one (`%.17g`; `inf`, `-inf`).
pub fn format_score(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // %.17g: 17 significant digits, scientific when the exponent is below
    // -4 or at least 17, trailing zeros removed.
    let sci = format!("{f:.16e}");
    let (mantissa, exp) = sci.split_once('e').expect("an exponent");
    let exp: i32 = exp.parse().expect("a number");
    if !(-4..17).contains(&exp) {
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let decimals = (16 - exp).max(0) as usize;
    let fixed = format!("{f:.decimals$}");
    if fixed.contains('.') {
        fixed.trim_end_matches('0').trim_end_matches('.').into()
    } else {
        fixed
    }
}

/// A finite decimal float as Redis reads one (no spaces, no NaN or infinity).
pub fn parse_f64(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A float as Redis writes an incremented one: fixed notation, 17
/// decimals, trailing zeros (and a bare point) removed.
pub fn format_f64(f: f64) -> String {
    let s = format!("{f:.17}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_and_meta_round_trip() {
        let args: Vec<&[u8]> = vec![b"", b"field", &[0xff; 300]];
        assert_eq!(decode_args(&encode_args(&args)).unwrap(), args);
        assert!(decode_args(&[5, b'a']).is_err());
        let meta =
            Meta { kind: Kind::Set, elements: elements(&StreamId([1; 32]), b"k", 7 << 16), len: 3, head: 0 };
        assert_eq!(Meta::decode(&meta.encode()), Some(meta));
        let meta = Meta { kind: Kind::List, elements: StreamId([2; 32]), len: 3, head: -2 };
        assert_eq!(meta.position(-1), Some(0));
        assert_eq!(meta.position(3), None);
        assert!(position_key(-1) < position_key(0) && position_key(0) < position_key(i64::MAX));
        assert_eq!(Meta::decode(&meta.encode()), Some(meta));
        assert_eq!(Meta::decode(b"\0LKC"), None);
        for op in COLL_OPS {
            assert_eq!(CollOp::of_byte(op.byte()), Some(op));
            assert_eq!(CollOp::of_name(op.name()), Some(op));
        }
        assert_eq!(CollOp::of_byte(0x0f), None);
    }

    #[test]
    fn floats_print_as_redis_prints_increments() {
        assert_eq!(format_f64(10.5), "10.5");
        assert_eq!(format_f64(5000.0), "5000");
        assert_eq!(format_f64(-0.25), "-0.25");
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"inf"), None);
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        for (f, s) in [
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (1e20, "1e+20"),
            (-3.0, "-3"),
            (1e-5, "1.0000000000000001e-05"),
        ] {
            assert_eq!(format_score(f), s);
        }
    }

    #[test]
    fn scores_sort_as_their_bytes() {
        let scores = [f64::NEG_INFINITY, -1e300, -2.5, -0.0, 0.0, 1e-300, 3.0, f64::INFINITY];
        for w in scores.windows(2) {
            assert!(sortable(w[0]) <= sortable(w[1]), "{w:?}");
            assert_eq!(unsortable(sortable(w[1])), w[1]);
        }
    }
}
