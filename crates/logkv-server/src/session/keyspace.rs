//! `SCAN`, `KEYS`, `DBSIZE` and `RANDOMKEY` over the live keys of the
//! connection's stream (with the keys a `MULTI` block's earlier ops made
//! live or dead).
//!
//! Keys are arbitrary bytes, so a `u64` cursor cannot hold the place of a
//! scan. A server-wide table maps each cursor handed out to the last key
//! examined; the next call continues after that key, in key order, at the
//! state of that moment. A key present from the first call to the last is
//! therefore returned (Redis's guarantee), exactly once. The table keeps
//! the newest [`MAX_CURSORS`] cursors; an older one answers `ERR invalid
//! cursor`, as does a number never handed out.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::ops::Bound;
use std::time::Instant;

use logkv_runtime::node::NodeError;
use logkv_store::ScanOptions;
use parking_lot::Mutex;

use super::glob;
use super::view::{Held, View};
use crate::resp::reply::Reply;

/// Cursors remembered server-wide; older ones expire.
pub const MAX_CURSORS: usize = 65_536;
/// `SCAN`'s default `COUNT`, as in Redis.
const DEFAULT_COUNT: u64 = 10;

/// The server's table of open scan cursors.
#[derive(Default)]
pub struct Cursors(Mutex<Table>);

#[derive(Default)]
struct Table {
    last: u64,
    keys: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
}

impl Cursors {
    /// A new cursor that continues after `key`.
    pub(crate) fn open(&self, key: Vec<u8>) -> u64 {
        let mut t = self.0.lock();
        t.last += 1;
        let cursor = t.last;
        t.keys.insert(cursor, key);
        t.order.push_back(cursor);
        while t.order.len() > MAX_CURSORS {
            let old = t.order.pop_front().expect("not empty");
            t.keys.remove(&old);
        }
        cursor
    }

    /// The key a cursor continues after.
    pub(crate) fn resume(&self, cursor: u64) -> Option<Vec<u8>> {
        self.0.lock().keys.get(&cursor).cloned()
    }

    /// How many cursors are remembered.
    pub fn len(&self) -> usize {
        self.0.lock().keys.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Visits the live keys after `after` (all if `None`) in order until
/// `visit` returns false.
fn each_key(
    view: &View<'_>,
    after: Option<&[u8]>,
    mut visit: impl FnMut(&[u8]) -> bool,
) -> Result<(), NodeError> {
    let start = after.map_or(Bound::Unbounded, |k| Bound::Excluded(k.to_vec()));
    let options = ScanOptions { start: start.clone(), at: view.at(), ..ScanOptions::default() };
    let base = (!view.flushed()).then(|| view.node().scan(view.stream(), options));
    let mut base = base.into_iter().flatten().peekable();
    let mut changed = view.changes().range::<Vec<u8>, _>((start, Bound::Unbounded)).peekable();
    loop {
        let base_key = match base.peek() {
            Some(Ok(kv)) => Some(kv.key.as_slice()),
            Some(Err(_)) => return Err(base.next().expect("peeked").expect_err("an error")),
            None => None,
        };
        let change = changed.peek().map(|(k, live)| (k.as_slice(), **live));
        let (key, live, take_base, take_change) = match (base_key, change) {
            (None, None) => return Ok(()),
            (Some(b), None) => (b.to_vec(), true, true, false),
            (None, Some((c, live))) => (c.to_vec(), live, false, true),
            (Some(b), Some((c, live))) => match b.cmp(c) {
                std::cmp::Ordering::Less => (b.to_vec(), true, true, false),
                std::cmp::Ordering::Equal => (c.to_vec(), live, true, true),
                std::cmp::Ordering::Greater => (c.to_vec(), live, false, true),
            },
        };
        if take_base {
            base.next();
        }
        if take_change {
            changed.next();
        }
        if live && !visit(&key) {
            return Ok(());
        }
    }
}

/// `DBSIZE`: the number of live keys.
pub fn dbsize(view: &View<'_>) -> Result<Reply, NodeError> {
    let mut n = 0i64;
    each_key(view, None, |_| {
        n += 1;
        true
    })?;
    Ok(Reply::Integer(n))
}

/// `KEYS pattern`: every live key matching, in key order.
pub fn keys(view: &View<'_>, pattern: &[u8]) -> Result<Reply, NodeError> {
    let all = pattern == b"*";
    let mut found = Vec::new();
    each_key(view, None, |k| {
        if all || glob::matches(pattern, k) {
            found.push(Reply::Bulk(k.to_vec()));
        }
        true
    })?;
    Ok(Reply::Array(found))
}

/// `SCAN cursor [MATCH p] [COUNT n]`: examines up to `count` keys after
/// the cursor's place and returns those matching, with the next cursor
/// (`0` when the scan is complete).
pub fn scan(
    view: &View<'_>,
    cursors: &Cursors,
    cursor: u64,
    pattern: Option<&[u8]>,
    count: Option<u64>,
    kind: Option<&[u8]>,
) -> Result<Reply, NodeError> {
    let after = match cursor {
        0 => None,
        c => match cursors.resume(c) {
            Some(key) => Some(key),
            None => return Ok(Reply::Error("ERR invalid cursor".into())),
        },
    };
    let count = count.unwrap_or(DEFAULT_COUNT);
    let pattern = pattern.filter(|p| *p != b"*");
    let mut examined = 0u64;
    let mut last: Option<Vec<u8>> = None;
    let mut found = Vec::new();
    let mut more = false;
    let mut failed = None;
    // `TYPE`: the kind each key holds, looked up only for keys that match.
    let mut of_kind = |k: &[u8]| {
        let Some(kind) = kind else { return true };
        let name = match view.held(k) {
            Ok(Held::Absent) => return false,
            Ok(Held::Str(_)) => "string",
            Ok(Held::Coll(c)) => c.name(),
            Err(e) => {
                failed.get_or_insert(e);
                return false;
            }
        };
        kind.eq_ignore_ascii_case(name.as_bytes())
    };
    each_key(view, after.as_deref(), |k| {
        if examined == count {
            more = true;
            return false;
        }
        examined += 1;
        if pattern.is_none_or(|p| glob::matches(p, k)) && of_kind(k) {
            found.push(Reply::Bulk(k.to_vec()));
        }
        last = Some(k.to_vec());
        true
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let next = match (more, last) {
        (true, Some(key)) => cursors.open(key),
        _ => 0,
    };
    Ok(Reply::Array(vec![Reply::Bulk(next.to_string().into_bytes()), Reply::Array(found)]))
}

/// `RANDOMKEY`: a live key picked on this node, or nil. A read: the pick
/// is the receiving node's and nothing is logged. It draws a random key
/// between the first and the last key and answers the first live key
/// after it (wrapping to the first): a few index lookups rather than a
/// walk of the keyspace, at the price of a pick that favours keys after
/// large gaps in key order.
pub fn random_key(view: &View<'_>) -> Result<Reply, NodeError> {
    let mut first = None;
    each_key(view, None, |k| {
        first = Some(k.to_vec());
        false
    })?;
    let Some(first) = first else {
        return Ok(Reply::Null);
    };
    let newest = ScanOptions { reverse: true, limit: Some(1), at: view.at(), ..ScanOptions::default() };
    let last = match view.node().scan(view.stream(), newest).next().transpose()? {
        Some(kv) => kv.key,
        None => first.clone(),
    };
    let point = between(&first, &last, RandomState::new().hash_one(Instant::now()));
    let mut found = None;
    each_key(view, Some(&point), |k| {
        found = Some(k.to_vec());
        false
    })?;
    Ok(Reply::Bulk(found.unwrap_or(first)))
}

/// A key from `random` between `first` and `last` (in key order): their
/// common prefix, a byte between theirs where they differ, then random
/// bytes.
fn between(first: &[u8], last: &[u8], random: u64) -> Vec<u8> {
    let common = first.iter().zip(last).take_while(|(a, b)| a == b).count();
    let low = first.get(common).copied().unwrap_or(0);
    let high = last.get(common).copied().unwrap_or(u8::MAX).max(low);
    let mut key = first[..common].to_vec();
    key.push(low + (random % (u64::from(high - low) + 1)) as u8);
    key.extend_from_slice(&random.rotate_left(17).to_be_bytes());
    key
}
