//! Hash and set commands (docs/datamodel.md). Writes become one
//! collection op each, decided by apply ([`plan`]); reads look the
//! collection's metadata up and then its elements, each an index lookup
//! (`HGET`, `SISMEMBER`, `HLEN`…) or a scan of its element stream
//! (`HGETALL`, `SMEMBERS`…). Random picks (`SPOP`, `SRANDMEMBER`,
//! `HRANDFIELD`) are made here, on the receiving node: `SPOP` logs the
//! removal of the members it picked, so apply stays deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, RandomState};
use std::ops::Bound;

use logkv_runtime::codec::native::Op;
use logkv_runtime::collection::{
    encode_args, format_score, member_key, member_of, of_score_key, parse_score, position_key, score_key,
    score_of, sortable, CollOp, Kind, Meta, MEMBER_TAG, SCORE_TAG, WRONGTYPE,
};
use logkv_runtime::node::NodeError;
use logkv_store::ScanOptions;

use super::glob;
use super::keyspace::Cursors;
use super::view::View;
use super::writes::{Answer, Planned};
use crate::resp::collection::{Aggregate, CollCommand, LexBound, ScoreBound, SetAlgebra, ZRangeBy};
use crate::resp::command::Bytes;
use crate::resp::reply::Reply;

/// A collection this small is scanned in one `HSCAN`/`SSCAN` call, as
/// Redis does for its compact encodings (cursor 0 at once).
const SCAN_ALL_UP_TO: u64 = 128;
/// `HSCAN`/`SSCAN`'s default `COUNT`.
const DEFAULT_SCAN_COUNT: u64 = 10;

/// A field and its value, or a member and its empty value.
type Element = (Vec<u8>, Vec<u8>);

/// Whether a command is a write that [`plan`] turns into ops without
/// reading first.
pub fn is_planned_write(c: &CollCommand) -> bool {
    use CollCommand::*;
    matches!(
        c,
        HSet { .. }
            | HSetNx { .. }
            | HDel { .. }
            | HIncrBy { .. }
            | HIncrByFloat { .. }
            | SAdd { .. }
            | SRem { .. }
            | SMove { .. }
            | ZAdd { .. }
            | ZRem { .. }
            | LPush { .. }
            | LPop { .. }
            | LSet { .. }
            | LTrim { .. }
            | LRem { .. }
            | LInsert { .. }
            | LMove { .. }
    )
}

/// The collection op of `key` with `args`.
fn op_of<A: AsRef<[u8]>>(key: Bytes, op: CollOp, args: &[A]) -> (Bytes, Op) {
    (key, Op::Collection { op, args: encode_args(args).into() })
}

/// The plan of a write that needs no read, or the command back.
pub fn plan(c: CollCommand) -> Result<Planned, CollCommand> {
    use CollCommand::*;
    let one = |op: (Bytes, Op), answer| Planned { ops: vec![op], answer };
    Ok(match c {
        HSet { key, pairs, legacy } => {
            one(op_of(key, CollOp::HashSet, &pairs), if legacy { Answer::Ok } else { Answer::Count })
        }
        HSetNx { key, field, value } => {
            one(op_of(key, CollOp::HashSetIfAbsent, &[field, value]), Answer::Count)
        }
        HDel { key, fields } => one(op_of(key, CollOp::HashDelete, &fields), Answer::Count),
        HIncrBy { key, field, delta } => one(
            op_of(key, CollOp::HashIncrement, &[field, Bytes::from(delta.to_string())]),
            Answer::Incremented,
        ),
        HIncrByFloat { key, field, delta } => {
            one(op_of(key, CollOp::HashIncrementFloat, &[field, delta]), Answer::Computed)
        }
        SAdd { key, members } => one(op_of(key, CollOp::SetAdd, &members), Answer::Count),
        SRem { key, members } => one(op_of(key, CollOp::SetRemove, &members), Answer::Removed),
        ZAdd { key, options, pairs, .. } => {
            let mut args = vec![Bytes::from(vec![options])];
            args.extend(pairs);
            let incr = options & logkv_runtime::collection::zadd::INCR != 0;
            one(op_of(key, CollOp::ZAdd, &args), if incr { Answer::Computed } else { Answer::Count })
        }
        ZRem { key, members } => one(op_of(key, CollOp::ZRemove, &members), Answer::Removed),
        LPush { key, left, only_existing, elements } => {
            let mut args = vec![Bytes::from_static(if left { b"L" } else { b"R" })];
            args.push(Bytes::from_static(if only_existing { b"X" } else { b"" }));
            args.extend(elements);
            one(op_of(key, CollOp::ListPush, &args), Answer::Count)
        }
        LPop { key, left, count } => {
            let side = Bytes::from_static(if left { b"L" } else { b"R" });
            let count = Bytes::from(count.map(|c| c.to_string()).unwrap_or_default());
            one(
                op_of(key, CollOp::ListPop, &[side, count.clone()]),
                Answer::ListPopped { single: count.is_empty() },
            )
        }
        LTrim { key, start, stop } => one(
            op_of(key, CollOp::ListTrim, &[Bytes::from(start.to_string()), Bytes::from(stop.to_string())]),
            Answer::Ok,
        ),
        LRem { key, count, element } => {
            one(op_of(key, CollOp::ListRemove, &[Bytes::from(count.to_string()), element]), Answer::Count)
        }
        LInsert { key, after, pivot, element } => {
            let side = Bytes::from_static(if after { b"A" } else { b"B" });
            one(op_of(key, CollOp::ListInsert, &[side, pivot, element]), Answer::Count)
        }
        LMove { source, destination, from_left, to_left, .. } => {
            let side = |left: bool| Bytes::from_static(if left { b"L" } else { b"R" });
            let args = [destination, side(from_left), side(to_left)];
            one(op_of(source, CollOp::ListMove, &args), Answer::Computed)
        }
        LSet { key, index, element } => {
            one(op_of(key, CollOp::ListSet, &[Bytes::from(index.to_string()), element]), Answer::Ok)
        }
        SMove { source, destination, member } => {
            one(op_of(source, CollOp::SetMove, &[destination, member]), Answer::Count)
        }
        other => return Err(other),
    })
}

/// The longest field or member a node with keys of at most
/// `max_key_bytes` holds (its element key has a tag byte more), checked
/// before a write is logged: an error reply if an op has a longer one.
pub fn check_members(ops: &[(Bytes, Op)], max_key_bytes: usize) -> Option<Reply> {
    let limit = max_key_bytes.saturating_sub(1);
    for (_, op) in ops {
        let Op::Collection { op, args } = op else { continue };
        if let Some(other) = logkv_runtime::collection::other_key(*op, args) {
            if !super::writes::key_fits(&other, max_key_bytes) {
                return Some(Reply::Error(format!(
                    "ERR key of {} bytes: logkv keys are 1 to {max_key_bytes} bytes",
                    other.len()
                )));
            }
        }
        let args = logkv_runtime::collection::decode_args(args).unwrap_or_default();
        let longest = op.members(&args).map(<[u8]>::len).max().unwrap_or(0);
        if longest > limit {
            return Some(Reply::Error(format!(
                "ERR field or member of {longest} bytes: logkv hash fields and set members are at most {limit} bytes"
            )));
        }
    }
    None
}

/// The collection of `kind` at `key`: `Ok(None)` if there is none, an
/// error reply if the key holds something else.
fn collection(view: &View<'_>, key: &[u8], kind: Kind) -> Result<Result<Option<Meta>, Reply>, NodeError> {
    Ok(match view.meta(key)? {
        Err(None) => Ok(None),
        Ok(meta) if meta.kind == kind => Ok(Some(meta)),
        _ => Err(Reply::Error(WRONGTYPE.into())),
    })
}

/// One field's value (a member's empty value).
fn element(view: &View<'_>, meta: &Meta, member: &[u8]) -> Result<Option<Vec<u8>>, NodeError> {
    let elements = meta.elements;
    Ok(view.node().get(&elements, &member_key(member), view.at())?.map(|(v, _)| v))
}

/// The fields (members) and values after `after`, in order, at most `limit`.
fn elements(
    view: &View<'_>,
    meta: &Meta,
    after: Option<&[u8]>,
    limit: Option<usize>,
) -> Result<Vec<Element>, NodeError> {
    // Members only: a sorted set's score index keys sort after them.
    let start = after.map_or(Bound::Included(member_key(b"")), |m| Bound::Excluded(member_key(m)));
    let end = Bound::Excluded(vec![MEMBER_TAG + 1]);
    let options = ScanOptions { start, end, limit, at: view.at(), ..ScanOptions::default() };
    let elements = meta.elements;
    view.node()
        .scan(&elements, options)
        .filter_map(|kv| match kv {
            Ok(kv) => member_of(&kv.key).map(|m| Ok((m.to_vec(), kv.value))),
            Err(e) => Some(Err(e)),
        })
        .collect()
}

/// Every member of the set at `key` (none if absent).
fn members(view: &View<'_>, key: &[u8]) -> Result<Result<BTreeSet<Vec<u8>>, Reply>, NodeError> {
    Ok(match collection(view, key, Kind::Set)? {
        Err(reply) => Err(reply),
        Ok(None) => Ok(BTreeSet::new()),
        Ok(Some(meta)) => Ok(elements(view, &meta, None, None)?.into_iter().map(|(m, _)| m).collect()),
    })
}

/// The combination of the sets at `keys`.
pub fn algebra(
    view: &View<'_>,
    op: SetAlgebra,
    keys: &[Bytes],
) -> Result<Result<BTreeSet<Vec<u8>>, Reply>, NodeError> {
    let mut out: Option<BTreeSet<Vec<u8>>> = None;
    for key in keys {
        let set = match members(view, key)? {
            Ok(set) => set,
            Err(reply) => return Ok(Err(reply)),
        };
        out = Some(match (out, op) {
            (None, _) => set,
            (Some(acc), SetAlgebra::Inter) => acc.intersection(&set).cloned().collect(),
            (Some(mut acc), SetAlgebra::Union) => {
                acc.extend(set);
                acc
            }
            (Some(acc), SetAlgebra::Diff) => acc.difference(&set).cloned().collect(),
        });
    }
    Ok(Ok(out.unwrap_or_default()))
}

fn bulks(items: impl IntoIterator<Item = Vec<u8>>) -> Vec<Reply> {
    items.into_iter().map(Reply::Bulk).collect()
}

/// A random number below `n` (`n` > 0), from the process's random hasher keys.
fn random_below(n: usize) -> usize {
    (RandomState::new().hash_one(std::time::Instant::now()) % n as u64) as usize
}

/// `count` distinct places below `n`, or — `repeat` — `count` places that
/// may repeat, in random order.
pub fn random_places(n: usize, count: usize, repeat: bool) -> Vec<usize> {
    if repeat {
        return (0..count).map(|_| random_below(n)).collect();
    }
    let mut all: Vec<usize> = (0..n).collect();
    let count = count.min(n);
    for i in 0..count {
        all.swap(i, i + random_below(n - i));
    }
    all.truncate(count);
    all
}

/// `count` random elements of the collection: distinct when `count` is
/// positive, possibly repeated when negative (`SRANDMEMBER`, `HRANDFIELD`).
fn random_elements(view: &View<'_>, meta: &Meta, count: i64) -> Result<Vec<Element>, NodeError> {
    let all = elements(view, meta, None, None)?;
    let places = random_places(all.len(), count.unsigned_abs() as usize, count < 0);
    Ok(places.into_iter().map(|i| all[i].clone()).collect())
}

/// Runs a hash or set read, or `None` if `c` is not one.
pub fn read(view: &View<'_>, c: &CollCommand, cursors: &Cursors) -> Option<Result<Reply, NodeError>> {
    read_inner(view, c, cursors).map(|r| r.map(|reply| reply.unwrap_or_else(|error| error)))
}

fn read_inner(
    view: &View<'_>,
    c: &CollCommand,
    cursors: &Cursors,
) -> Option<Result<Result<Reply, Reply>, NodeError>> {
    use CollCommand::*;
    let hash = |key: &[u8]| collection(view, key, Kind::Hash);
    let set = |key: &[u8]| collection(view, key, Kind::Set);
    let zset = |key: &[u8]| collection(view, key, Kind::ZSet);
    let list = |key: &[u8]| collection(view, key, Kind::List);
    let run = |f: &dyn Fn() -> Result<Result<Reply, Reply>, NodeError>| Some(f());
    macro_rules! meta {
        ($found:expr, $absent:expr) => {
            match $found? {
                Err(reply) => return Ok(Err(reply)),
                Ok(None) => return Ok(Ok($absent)),
                Ok(Some(meta)) => meta,
            }
        };
    }
    match c {
        HGet { key, field } => run(&|| {
            let meta = meta!(hash(key), Reply::Null);
            Ok(Ok(element(view, &meta, field)?.map_or(Reply::Null, Reply::Bulk)))
        }),
        HMGet { key, fields } => run(&|| {
            let meta = meta!(hash(key), Reply::Array(vec![Reply::Null; fields.len()]));
            let values: Result<Vec<_>, _> = fields
                .iter()
                .map(|f| element(view, &meta, f).map(|v| v.map_or(Reply::Null, Reply::Bulk)))
                .collect();
            Ok(Ok(Reply::Array(values?)))
        }),
        HGetAll { key } => run(&|| {
            let meta = meta!(hash(key), Reply::Map(Vec::new()));
            let all = elements(view, &meta, None, None)?;
            Ok(Ok(Reply::Map(all.into_iter().map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v))).collect())))
        }),
        HKeys { key } | HVals { key } => run(&|| {
            let meta = meta!(hash(key), Reply::Array(Vec::new()));
            let keys = matches!(c, HKeys { .. });
            let all = elements(view, &meta, None, None)?;
            Ok(Ok(Reply::Array(bulks(all.into_iter().map(|(f, v)| if keys { f } else { v })))))
        }),
        HLen { key } => run(&|| Ok(Ok(Reply::Integer(meta!(hash(key), Reply::Integer(0)).len as i64)))),
        SCard { key } => run(&|| Ok(Ok(Reply::Integer(meta!(set(key), Reply::Integer(0)).len as i64)))),
        HExists { key, field } => run(&|| {
            let meta = meta!(hash(key), Reply::Integer(0));
            Ok(Ok(Reply::Integer(i64::from(element(view, &meta, field)?.is_some()))))
        }),
        SIsMember { key, member } => run(&|| {
            let meta = meta!(set(key), Reply::Integer(0));
            Ok(Ok(Reply::Integer(i64::from(element(view, &meta, member)?.is_some()))))
        }),
        HStrLen { key, field } => run(&|| {
            let meta = meta!(hash(key), Reply::Integer(0));
            Ok(Ok(Reply::Integer(element(view, &meta, field)?.map_or(0, |v| v.len() as i64))))
        }),
        SMIsMember { key, members } => run(&|| {
            let meta = meta!(set(key), Reply::Array(vec![Reply::Integer(0); members.len()]));
            let found: Result<Vec<_>, _> = members
                .iter()
                .map(|m| element(view, &meta, m).map(|v| Reply::Integer(i64::from(v.is_some()))))
                .collect();
            Ok(Ok(Reply::Array(found?)))
        }),
        SMembers { key } => run(&|| Ok(members(view, key)?.map(|all| Reply::Set(bulks(all))))),
        SAlgebra { op, keys } => run(&|| Ok(algebra(view, *op, keys)?.map(|all| Reply::Set(bulks(all))))),
        SInterCard { keys, limit } => run(&|| {
            Ok(algebra(view, SetAlgebra::Inter, keys)?.map(|all| {
                let n = all.len() as u64;
                Reply::Integer(if *limit == 0 { n } else { n.min(*limit) } as i64)
            }))
        }),
        HRandField { zset: is_zset, key, count, with_values } => run(&|| {
            let absent = if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Null };
            let meta = meta!(collection(view, key, if *is_zset { Kind::ZSet } else { Kind::Hash }), absent);
            let picked = random_elements(view, &meta, count.unwrap_or(1))?;
            let value = |v: Vec<u8>| if *is_zset { score_text(&v) } else { v };
            Ok(Ok(match count {
                None => picked.into_iter().next().map_or(Reply::Null, |(f, _)| Reply::Bulk(f)),
                Some(_) if *with_values => {
                    Reply::Array(bulks(picked.into_iter().flat_map(|(f, v)| [f, value(v)])))
                }
                Some(_) => Reply::Array(bulks(picked.into_iter().map(|(f, _)| f))),
            }))
        }),
        SRandMember { key, count } => run(&|| {
            let absent = if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Null };
            let meta = meta!(set(key), absent);
            let picked = random_elements(view, &meta, count.unwrap_or(1))?;
            Ok(Ok(match count {
                None => picked.into_iter().next().map_or(Reply::Null, |(m, _)| Reply::Bulk(m)),
                Some(_) => Reply::Array(bulks(picked.into_iter().map(|(m, _)| m))),
            }))
        }),
        Scan { kind, key, cursor, pattern, count } => run(&|| {
            let kind = *kind;
            let done =
                |items: Vec<Reply>| Reply::Array(vec![Reply::Bulk(b"0".to_vec()), Reply::Array(items)]);
            let meta = meta!(collection(view, key, kind), done(Vec::new()));
            let after = match cursor {
                0 => None,
                c => match cursors.resume(*c) {
                    Some(member) => Some(member),
                    None => return Ok(Err(Reply::Error("ERR invalid cursor".into()))),
                },
            };
            let count = match (after.is_none() && meta.len <= SCAN_ALL_UP_TO, count) {
                (true, _) => None,
                (false, count) => Some(count.unwrap_or(DEFAULT_SCAN_COUNT) as usize),
            };
            let page = elements(view, &meta, after.as_deref(), count.map(|c| c + 1))?;
            let more = count.is_some_and(|c| page.len() > c);
            let page = &page[..count.map_or(page.len(), |c| page.len().min(c))];
            let pattern = pattern.as_deref().filter(|p| *p != b"*");
            let mut items = Vec::new();
            for (m, v) in page {
                if pattern.is_none_or(|p| glob::matches(p, m)) {
                    items.push(Reply::Bulk(m.clone()));
                    match kind {
                        Kind::Hash => items.push(Reply::Bulk(v.clone())),
                        Kind::ZSet => items.push(Reply::Bulk(score_text(v))),
                        _ => {}
                    }
                }
            }
            let next = match page.last() {
                Some((m, _)) if more => cursors.open(m.clone()),
                _ => 0,
            };
            Ok(Ok(Reply::Array(vec![Reply::Bulk(next.to_string().into_bytes()), Reply::Array(items)])))
        }),
        LLen { key } => run(&|| Ok(Ok(Reply::Integer(meta!(list(key), Reply::Integer(0)).len as i64)))),
        LIndex { key, index } => run(&|| {
            let meta = meta!(list(key), Reply::Null);
            let Some(at) = meta.position(*index) else { return Ok(Ok(Reply::Null)) };
            let elements = meta.elements;
            let found = view.node().get(&elements, &position_key(at), view.at())?;
            Ok(Ok(found.map_or(Reply::Null, |(v, _)| Reply::Bulk(v))))
        }),
        LPos { key, element, rank, count, max_len } => run(&|| {
            let absent = if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Null };
            let meta = meta!(list(key), absent);
            let options = ScanOptions {
                start: Bound::Included(position_key(meta.head)),
                end: Bound::Included(position_key(meta.head + meta.len as i64 - 1)),
                reverse: *rank < 0,
                limit: (*max_len > 0).then_some(*max_len as usize),
                at: view.at(),
            };
            let elements = meta.elements;
            let wanted = match count {
                Some(0) => usize::MAX,
                Some(n) => *n as usize,
                None => 1,
            };
            let mut found = Vec::new();
            let mut skip = rank.unsigned_abs() - 1;
            for kv in view.node().scan(&elements, options) {
                let kv = kv?;
                if kv.value != *element {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let position = i64::from_be_bytes(kv.key[1..9].try_into().expect("8 bytes")) ^ i64::MIN;
                found.push(Reply::Integer(position - meta.head));
                if found.len() == wanted {
                    break;
                }
            }
            Ok(Ok(match count {
                Some(_) => Reply::Array(found),
                None => found.pop().unwrap_or(Reply::Null),
            }))
        }),
        LRange { key, start, stop } => run(&|| {
            let meta = meta!(list(key), Reply::Array(Vec::new()));
            let len = meta.len as i64;
            let start = if *start < 0 { (start + len).max(0) } else { *start };
            let stop = if *stop < 0 { stop + len } else { (*stop).min(len - 1) };
            if start > stop || start >= len {
                return Ok(Ok(Reply::Array(Vec::new())));
            }
            let from = Bound::Included(position_key(meta.head + start));
            let to = Bound::Included(position_key(meta.head + stop));
            let options = ScanOptions { start: from, end: to, at: view.at(), ..ScanOptions::default() };
            let elements = meta.elements;
            let values: Result<Vec<_>, _> =
                view.node().scan(&elements, options).map(|kv| kv.map(|kv| Reply::Bulk(kv.value))).collect();
            Ok(Ok(Reply::Array(values?)))
        }),
        ZCard { key } => run(&|| Ok(Ok(Reply::Integer(meta!(zset(key), Reply::Integer(0)).len as i64)))),
        ZScore { key, member } => run(&|| {
            let meta = meta!(zset(key), Reply::Null);
            Ok(Ok(score(view, &meta, member)?
                .map_or(Reply::Null, |s| Reply::Bulk(format_score(s).into_bytes()))))
        }),
        ZMScore { key, members } => run(&|| {
            let meta = meta!(zset(key), Reply::Array(vec![Reply::Null; members.len()]));
            let scores: Result<Vec<_>, _> = members
                .iter()
                .map(|m| {
                    score(view, &meta, m)
                        .map(|s| s.map_or(Reply::Null, |s| Reply::Bulk(format_score(s).into_bytes())))
                })
                .collect();
            Ok(Ok(Reply::Array(scores?)))
        }),
        ZCount { key, min, max } => run(&|| {
            let meta = meta!(zset(key), Reply::Integer(0));
            Ok(Ok(Reply::Integer(by_score(view, &meta, *min, *max, false, None)?.len() as i64)))
        }),
        ZRange { range, .. } => run(&|| {
            let meta = meta!(zset(&range.key), Reply::Array(Vec::new()));
            let found = match &range.by {
                ZRangeBy::Rank(start, stop) => by_rank(view, &meta, *start, *stop, range.rev)?,
                ZRangeBy::Lex(min, max) => by_lex(view, &meta, min, max, range.rev, range.limit)?,
                ZRangeBy::Score(min, max) => by_score(view, &meta, *min, *max, range.rev, range.limit)?,
            };
            let with_scores = range.with_scores;
            Ok(Ok(Reply::Array(
                found
                    .into_iter()
                    .flat_map(|(s, m)| {
                        let score = with_scores.then(|| Reply::Bulk(format_score(s).into_bytes()));
                        std::iter::once(Reply::Bulk(m)).chain(score)
                    })
                    .collect(),
            )))
        }),
        ZLexCount { key, min, max } => run(&|| {
            let meta = meta!(zset(key), Reply::Integer(0));
            Ok(Ok(Reply::Integer(by_lex(view, &meta, min, max, false, None)?.len() as i64)))
        }),
        ZRank { key, member, rev } => run(&|| {
            let meta = meta!(zset(key), Reply::Null);
            let Some(s) = score(view, &meta, member)? else {
                return Ok(Ok(Reply::Null));
            };
            // The members before it in score order: O(rank).
            let below =
                score_range(view, &meta, Bound::Unbounded, Bound::Excluded(score_key(s, member)), false)
                    .count() as i64;
            Ok(Ok(Reply::Integer(if *rev { meta.len as i64 - 1 - below } else { below })))
        }),
        _ => None,
    }
}

/// A sorted set member's element value as Redis prints its score.
fn score_text(value: &[u8]) -> Vec<u8> {
    score_of(value).map(format_score).unwrap_or_default().into_bytes()
}

/// A sorted set member's score.
fn score(view: &View<'_>, meta: &Meta, member: &[u8]) -> Result<Option<f64>, NodeError> {
    Ok(element(view, meta, member)?.and_then(|v| score_of(&v)))
}

/// The (score, member) pairs of a sorted set between two score index keys,
/// in score order (reversed on request).
fn score_range<'v>(
    view: &'v View<'_>,
    meta: &Meta,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    reverse: bool,
) -> impl Iterator<Item = Result<(f64, Vec<u8>), NodeError>> + 'v {
    let all_start = Bound::Included(vec![SCORE_TAG]);
    let all_end = Bound::Excluded(vec![SCORE_TAG + 1]);
    let start = if start == Bound::Unbounded { all_start } else { start };
    let end = if end == Bound::Unbounded { all_end } else { end };
    let options = ScanOptions { start, end, reverse, at: view.at(), ..ScanOptions::default() };
    let elements = meta.elements;
    view.node().scan(&elements, options).filter_map(|kv| match kv {
        Ok(kv) => of_score_key(&kv.key).map(|(s, m)| Ok((s, m.to_vec()))),
        Err(e) => Some(Err(e)),
    })
}

/// `ZRANGE start stop`: ranks as Redis clamps them.
fn by_rank(
    view: &View<'_>,
    meta: &Meta,
    start: i64,
    stop: i64,
    rev: bool,
) -> Result<Vec<(f64, Vec<u8>)>, NodeError> {
    let len = meta.len as i64;
    let start = if start < 0 { (start + len).max(0) } else { start };
    let stop = if stop < 0 { stop + len } else { stop.min(len - 1) };
    if start > stop || start >= len {
        return Ok(Vec::new());
    }
    score_range(view, meta, Bound::Unbounded, Bound::Unbounded, rev)
        .skip(start as usize)
        .take((stop - start + 1) as usize)
        .collect()
}

/// Members with scores between `min` and `max`, in score order (reversed
/// on request), after `LIMIT offset count`.
fn by_score(
    view: &View<'_>,
    meta: &Meta,
    min: ScoreBound,
    max: ScoreBound,
    rev: bool,
    limit: Option<(i64, i64)>,
) -> Result<Vec<(f64, Vec<u8>)>, NodeError> {
    if min.score > max.score {
        return Ok(Vec::new());
    }
    let start = Bound::Included(score_key(min.score, b""));
    let past = u64::from_be_bytes(sortable(max.score)).checked_add(1);
    let end = match past {
        Some(p) => Bound::Excluded([&[SCORE_TAG][..], &p.to_be_bytes()].concat()),
        None => Bound::Unbounded,
    };
    let inside = |s: f64| {
        (if min.exclusive { s > min.score } else { s >= min.score })
            && (if max.exclusive { s < max.score } else { s <= max.score })
    };
    let (offset, count) = match limit {
        Some((offset, _)) if offset < 0 => return Ok(Vec::new()),
        Some((offset, count)) => (offset as usize, usize::try_from(count).unwrap_or(usize::MAX)),
        None => (0, usize::MAX),
    };
    score_range(view, meta, start, end, rev)
        .filter(|r| r.as_ref().map_or(true, |(s, _)| inside(*s)))
        .skip(offset)
        .take(count)
        .collect()
}

/// Members between two lex bounds, in member order (reversed on
/// request), after `LIMIT offset count`: a scan of the member keys.
fn by_lex(
    view: &View<'_>,
    meta: &Meta,
    min: &LexBound,
    max: &LexBound,
    rev: bool,
    limit: Option<(i64, i64)>,
) -> Result<Vec<(f64, Vec<u8>)>, NodeError> {
    let start = match min {
        LexBound::Min => Bound::Included(member_key(b"")),
        LexBound::Inclusive(m) => Bound::Included(member_key(m)),
        LexBound::Exclusive(m) => Bound::Excluded(member_key(m)),
        LexBound::Max => return Ok(Vec::new()),
    };
    let end = match max {
        LexBound::Max => Bound::Excluded(vec![MEMBER_TAG + 1]),
        LexBound::Inclusive(m) => Bound::Included(member_key(m)),
        LexBound::Exclusive(m) => Bound::Excluded(member_key(m)),
        LexBound::Min => return Ok(Vec::new()),
    };
    if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) = (&start, &end)
    {
        if a > b || (a == b && !matches!((&start, &end), (Bound::Included(_), Bound::Included(_)))) {
            return Ok(Vec::new());
        }
    }
    let (offset, count) = match limit {
        Some((offset, _)) if offset < 0 => return Ok(Vec::new()),
        Some((offset, count)) => (offset as usize, usize::try_from(count).unwrap_or(usize::MAX)),
        None => (0, usize::MAX),
    };
    let options = ScanOptions { start, end, reverse: rev, at: view.at(), ..ScanOptions::default() };
    let elements = meta.elements;
    view.node()
        .scan(&elements, options)
        .filter_map(|kv| match kv {
            Ok(kv) => Some(Ok((score_of(&kv.value)?, member_of(&kv.key)?.to_vec()))),
            Err(e) => Some(Err(e)),
        })
        .skip(offset)
        .take(count)
        .collect()
}

/// What `ZREMRANGEBYSCORE`/`ZREMRANGEBYRANK` log: the removal of the
/// members read here in the range (a member whose score changes meanwhile
/// is removed all the same), or the reply without a write.
pub fn plan_zremrange(
    view: &View<'_>,
    key: Bytes,
    by: ZRangeBy,
) -> Result<Result<Planned, Reply>, NodeError> {
    let meta = match collection(view, &key, Kind::ZSet)? {
        Err(reply) => return Ok(Err(reply)),
        Ok(None) => return Ok(Err(Reply::Integer(0))),
        Ok(Some(meta)) => meta,
    };
    let found = match by {
        ZRangeBy::Rank(start, stop) => by_rank(view, &meta, start, stop, false)?,
        ZRangeBy::Score(min, max) => by_score(view, &meta, min, max, false, None)?,
        ZRangeBy::Lex(min, max) => by_lex(view, &meta, &min, &max, false, None)?,
    };
    if found.is_empty() {
        return Ok(Err(Reply::Integer(0)));
    }
    let members: Vec<Vec<u8>> = found.into_iter().map(|(_, m)| m).collect();
    Ok(Ok(Planned { ops: vec![op_of(key, CollOp::ZRemove, &members)], answer: Answer::Removed }))
}

/// What `ZPOPMIN`/`ZPOPMAX` log: the removal of the lowest (highest)
/// members read here, or the reply without a write.
pub fn plan_zpop(
    view: &View<'_>,
    key: Bytes,
    max: bool,
    count: Option<u64>,
) -> Result<Result<Planned, Reply>, NodeError> {
    let meta = match collection(view, &key, Kind::ZSet)? {
        Err(reply) => return Ok(Err(reply)),
        Ok(None) => return Ok(Err(Reply::Array(Vec::new()))),
        Ok(Some(meta)) => meta,
    };
    let n = count.unwrap_or(1).min(meta.len) as usize;
    if n == 0 {
        return Ok(Err(Reply::Array(Vec::new())));
    }
    let picked: Result<Vec<_>, _> = score_range(view, &meta, Bound::Unbounded, Bound::Unbounded, max)
        .take(n)
        .map(|r| r.map(|(_, m)| m))
        .collect();
    Ok(Ok(Planned { ops: vec![op_of(key, CollOp::ZRemove, &picked?)], answer: Answer::ZPopped }))
}

/// What `SPOP` logs: the removal of members picked here, or the reply
/// without a write (no set, or another kind at the key).
pub fn plan_pop(
    view: &View<'_>,
    key: Bytes,
    count: Option<u64>,
) -> Result<Result<Planned, Reply>, NodeError> {
    let empty = if count.is_some() { Reply::Set(Vec::new()) } else { Reply::Null };
    let meta = match collection(view, &key, Kind::Set)? {
        Err(reply) => return Ok(Err(reply)),
        Ok(None) => return Ok(Err(empty)),
        Ok(Some(meta)) => meta,
    };
    let n = count.unwrap_or(1).min(meta.len) as i64;
    if n == 0 {
        return Ok(Err(empty));
    }
    let picked: Vec<Vec<u8>> = random_elements(view, &meta, n)?.into_iter().map(|(m, _)| m).collect();
    let answer = Answer::Popped { single: count.is_none() };
    Ok(Ok(Planned { ops: vec![op_of(key, CollOp::SetRemove, &picked)], answer }))
}

/// What `ZUNIONSTORE`/`ZINTERSTORE` log: the destination replaced by the
/// result computed here from the newest state, as `plan_store`'s. Sets
/// count as sorted sets whose scores are all 1.
pub fn plan_zstore(
    view: &View<'_>,
    union: bool,
    destination: Bytes,
    keys: &[Bytes],
    weights: &[Bytes],
    aggregate: Aggregate,
) -> Result<Result<Planned, Reply>, NodeError> {
    let mut result: Option<BTreeMap<Vec<u8>, f64>> = None;
    for (i, key) in keys.iter().enumerate() {
        let weight = weights.get(i).and_then(|w| parse_score(w)).unwrap_or(1.0);
        let scored: Vec<(f64, Vec<u8>)> = match view.meta(key)? {
            Err(None) => Vec::new(),
            Ok(meta) if meta.kind == Kind::ZSet => by_rank(view, &meta, 0, -1, false)?,
            Ok(meta) if meta.kind == Kind::Set => {
                elements(view, &meta, None, None)?.into_iter().map(|(m, _)| (1.0, m)).collect()
            }
            _ => return Ok(Err(Reply::Error(WRONGTYPE.into()))),
        };
        let weighted = scored.into_iter().map(|(s, m)| {
            let s = s * weight;
            (m, if s.is_nan() { 0.0 } else { s })
        });
        let combine = |a: f64, b: f64| {
            let c = match aggregate {
                Aggregate::Sum => a + b,
                Aggregate::Min => a.min(b),
                Aggregate::Max => a.max(b),
            };
            if c.is_nan() {
                0.0
            } else {
                c
            }
        };
        result = Some(match result {
            None => weighted.collect(),
            Some(mut acc) if union => {
                for (m, s) in weighted {
                    let merged = acc.get(&m).map_or(s, |a| combine(*a, s));
                    acc.insert(m, merged);
                }
                acc
            }
            Some(acc) => {
                let this: BTreeMap<Vec<u8>, f64> = weighted.collect();
                acc.into_iter().filter_map(|(m, a)| Some((m.clone(), combine(a, *this.get(&m)?)))).collect()
            }
        });
    }
    let result = result.unwrap_or_default();
    let mut ops = vec![(destination.clone(), Op::DeleteIfPresent)];
    if !result.is_empty() {
        let mut args = vec![vec![0u8]];
        for (m, s) in result {
            args.push(s.to_string().into_bytes());
            args.push(m);
        }
        ops.push(op_of(destination, CollOp::ZAdd, &args));
    }
    Ok(Ok(Planned { ops, answer: Answer::Stored }))
}

/// What `SINTERSTORE`, `SUNIONSTORE` and `SDIFFSTORE` log: the destination
/// replaced by the result computed here (from the newest state: the
/// sources are read, not locked, so a write to them racing the command
/// may or may not be in the result).
pub fn plan_store(
    view: &View<'_>,
    op: SetAlgebra,
    destination: Bytes,
    keys: &[Bytes],
) -> Result<Result<Planned, Reply>, NodeError> {
    let result = match algebra(view, op, keys)? {
        Ok(result) => result,
        Err(reply) => return Ok(Err(reply)),
    };
    let mut ops = vec![(destination.clone(), Op::DeleteIfPresent)];
    if !result.is_empty() {
        let result: Vec<Vec<u8>> = result.into_iter().collect();
        ops.push(op_of(destination, CollOp::SetAdd, &result));
    }
    Ok(Ok(Planned { ops, answer: Answer::Stored }))
}
