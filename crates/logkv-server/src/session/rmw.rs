//! Commands whose new value depends on the current one in a way no op of
//! the log computes (`SETRANGE`, `SETBIT`, `BITFIELD`, `BITOP`,
//! `INCRBYFLOAT`, `PFADD`, `PFMERGE`, `RENAME`, `RENAMENX`, `COPY`,
//! `MSETNX`, `RESTORE`), as optimistic read-modify-writes.
//!
//! The session notes the newest applied version, reads the keys, decides
//! the new values and the reply here, and submits a transaction whose
//! read set is those keys at that version — the runtime's version check,
//! as `WATCH` uses. If another write (or an expiry) touched a key since,
//! apply refuses the transaction and the session reads again, at most
//! [`MAX_ATTEMPTS`] times, pausing a little longer each time. Apply stays
//! deterministic and the log holds only the existing ops (plain puts and
//! deletes, and a put that keeps the expiry), so no node needs to know
//! these commands.
//!
//! Every value these commands see comes through [`read`]: the one place
//! a type check goes once keys have types other than strings.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use bytes::Bytes;
use logkv_runtime::apply::TxResult;
use logkv_runtime::codec::native::Op;
use logkv_runtime::codec::{NewExpiry, PutCond};
use logkv_runtime::collection::{Kind, WRONGTYPE};
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::node::NodeError;

use super::hll::{Hll, NOT_HLL};
use super::view::{Held, View};
use super::{bits, dump, strings, writes, Session};
use crate::resp::command::Command;
use crate::resp::number::parse_i64;
use crate::resp::reply::Reply;
use crate::resp::string_args::BitFieldOp;
use crate::resp::CommandError;

/// How many times a command reads and tries again after concurrent
/// writes to its keys before it gives up with an error. Each conflict
/// means another write to the same keys committed, so the system as a
/// whole progresses; but writers of one key that land in one entry
/// commit one at a time, so a writer among `n` loses a round with odds of
/// about `(n-1)/n`. 64 rounds, spread apart by [`backoff`], make a
/// give-up rare even with dozens of writers on one key.
pub const MAX_ATTEMPTS: u32 = 64;

/// A random pause after the `attempt`th conflict, growing with it (up to
/// about a millisecond per attempt), so writers of one key spread over
/// several entries instead of meeting again in the next one.
pub(super) fn backoff(attempt: u32) -> Duration {
    let random = RandomState::new().hash_one(Instant::now());
    Duration::from_micros(random % (u64::from(attempt) * 1000))
}

/// Whether a command is run here.
pub fn is_rmw(command: &Command) -> bool {
    match command {
        Command::BitField { ops, .. } => ops.iter().any(BitFieldOp::writes),
        _ => matches!(
            command,
            Command::Rename { .. }
                | Command::Copy { .. }
                | Command::IncrByFloat { .. }
                | Command::SetRange { .. }
                | Command::MSetNx { .. }
                | Command::Restore { .. }
                | Command::SetBit { .. }
                | Command::BitOp { .. }
                | Command::PfAdd { .. }
                | Command::PfMerge { .. }
        ),
    }
}

/// The keys a command reads, in order: its transaction's read set.
pub(super) fn keys(command: &Command) -> Vec<Bytes> {
    match command {
        Command::Rename { from, nx: false, .. } => vec![from.clone()],
        Command::Rename { from, to, .. } | Command::Copy { from, to, .. } => vec![from.clone(), to.clone()],
        Command::IncrByFloat { key, .. }
        | Command::SetRange { key, .. }
        | Command::Restore { key, .. }
        | Command::SetBit { key, .. }
        | Command::BitField { key, .. }
        | Command::PfAdd { key, .. } => vec![key.clone()],
        Command::MSetNx { pairs } => pairs.iter().map(|(k, _)| k.clone()).collect(),
        Command::BitOp { keys, .. } => keys.clone(),
        Command::PfMerge { dest, sources } => std::iter::once(dest).chain(sources).cloned().collect(),
        _ => Vec::new(),
    }
}

/// What a command read: the value of each of its [`keys`], and the
/// expiry of the first (what `RENAME` and `COPY` carry over).
pub(super) struct Read {
    values: Vec<Option<Vec<u8>>>,
    expiry: Option<u64>,
    /// The first key read whose value is a collection's, and its kind.
    collection: Option<(usize, Kind)>,
}

pub(super) fn read(view: &View<'_>, command: &Command, keys: &[Bytes]) -> Result<Read, NodeError> {
    let mut collection = None;
    let mut values = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        values.push(match view.held(key)? {
            Held::Absent => None,
            Held::Str(v) => Some(v),
            Held::Coll(kind) => {
                collection.get_or_insert((i, kind));
                // Present, for the commands that only ask whether it is.
                Some(Vec::new())
            }
        });
    }
    let expiry = match (command, keys.first()) {
        (Command::Rename { .. } | Command::Copy { .. }, Some(key)) if values[0].is_some() => {
            view.node().expires_at(view.stream(), key, view.at())?
        }
        _ => None,
    };
    Ok(Read { values, expiry, collection })
}

/// The answer of a command whose keys hold a collection where it needs a
/// string: `WRONGTYPE`, or for `RENAME`/`COPY` of one a refusal (moving a
/// collection's elements is not built yet). A collection it only checks
/// for existence (`MSETNX`, `RESTORE`) or overwrites (a destination) is
/// fine: apply removes what a string write replaces.
fn collection_refusal(command: &Command, (index, kind): (usize, Kind)) -> Option<Decision> {
    match command {
        Command::MSetNx { .. } | Command::Restore { .. } => None,
        Command::Rename { .. } | Command::Copy { .. } if index > 0 => None,
        Command::BitOp { .. } if index == 0 => None,
        Command::Rename { .. } | Command::Copy { .. } => Some(Decision::answer(Reply::Error(format!(
            "ERR {} of a {} is not supported yet",
            command.name().to_uppercase(),
            kind.name()
        )))),
        _ => Some(Decision::error(WRONGTYPE)),
    }
}

/// The ops to commit (none: answer without writing) and the reply once
/// they commit.
pub(super) struct Decision {
    pub(super) ops: Vec<(Bytes, Op)>,
    pub(super) reply: Reply,
}

impl Decision {
    fn answer(reply: Reply) -> Decision {
        Decision { ops: Vec::new(), reply }
    }

    fn error(message: &str) -> Decision {
        Decision::answer(Reply::Error(message.into()))
    }
}

/// A new value that keeps the key's expiry, as Redis's in-place changes do.
fn keep_ttl(value: Vec<u8>) -> Op {
    Op::PutExpiring { value: value.into(), cond: PutCond::Always, expiry: NewExpiry::Keep }
}

/// A value with the expiry `at` (none: none).
fn with_expiry(value: Vec<u8>, at: Option<u64>) -> Op {
    match at {
        Some(at) => Op::PutExpiring { value: value.into(), cond: PutCond::Always, expiry: NewExpiry::At(at) },
        None => Op::Put(value.into()),
    }
}

/// The decision of a command on what it read; `max_value` is the node's
/// value limit, `now_ms` its read time (for `RESTORE`'s relative TTL).
pub(super) fn decide(command: &Command, read: Read, max_value: usize, now_ms: u64) -> Decision {
    if let Some(refusal) = read.collection.and_then(|c| collection_refusal(command, c)) {
        return refusal;
    }
    let Read { mut values, expiry, .. } = read;
    let first = values.first_mut().and_then(Option::take);
    match command {
        Command::Rename { from, to, nx } => {
            let Some(value) = first else {
                return Decision::error("ERR no such key");
            };
            let done = if *nx { Reply::Integer(1) } else { Reply::ok() };
            if from == to || (*nx && values[1].is_some()) {
                return Decision::answer(if *nx { Reply::Integer(0) } else { done });
            }
            let ops = vec![(to.clone(), with_expiry(value, expiry)), (from.clone(), Op::DeleteIfPresent)];
            Decision { ops, reply: done }
        }
        Command::Copy { to, replace, .. } => match first {
            Some(value) if *replace || values[1].is_none() => {
                Decision { ops: vec![(to.clone(), with_expiry(value, expiry))], reply: Reply::Integer(1) }
            }
            _ => Decision::answer(Reply::Integer(0)),
        },
        Command::IncrByFloat { key, delta } => match strings::add_float(first.as_deref(), delta.0) {
            Ok(text) => {
                Decision { reply: Reply::Bulk(text.clone()), ops: vec![(key.clone(), keep_ttl(text))] }
            }
            Err(e) => Decision::error(e.message()),
        },
        Command::SetRange { key, offset, value } => {
            if value.is_empty() {
                return Decision::answer(Reply::Integer(first.map_or(0, |v| v.len() as i64)));
            }
            let end = offset.saturating_add(value.len() as u64);
            if end > max_value as u64 {
                return Decision::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
            }
            let new = strings::overwrite(first.unwrap_or_default(), *offset as usize, value);
            Decision { reply: Reply::Integer(new.len() as i64), ops: vec![(key.clone(), keep_ttl(new))] }
        }
        Command::MSetNx { pairs } => {
            if first.is_some() || values.iter().any(Option::is_some) {
                return Decision::answer(Reply::Integer(0));
            }
            let ops = pairs.iter().map(|(k, v)| (k.clone(), Op::Put(v.clone()))).collect();
            Decision { ops, reply: Reply::Integer(1) }
        }
        Command::Restore { key, ttl, payload, replace, absolute } => {
            if !replace && first.is_some() {
                return Decision::error("BUSYKEY Target key name already exists.");
            }
            let Some(ttl) = parse_i64(ttl) else {
                return Decision::answer(Reply::from(&CommandError::NotInteger));
            };
            if ttl < 0 {
                return Decision::error("ERR Invalid TTL value, must be >= 0");
            }
            let value = match dump::restore(payload) {
                Ok(value) => value.to_vec(),
                Err(e) => return Decision::error(e.message()),
            };
            let at =
                (ttl > 0).then(|| if *absolute { ttl as u64 } else { now_ms.saturating_add(ttl as u64) });
            Decision { ops: vec![(key.clone(), with_expiry(value, at))], reply: Reply::ok() }
        }
        Command::SetBit { key, offset, bit } => {
            if offset >> 3 >= max_value as u64 {
                return Decision::answer(Reply::from(&CommandError::BitOffset));
            }
            let mut value = first.unwrap_or_default();
            let old = bits::set_bit(&mut value, *offset, *bit);
            Decision { ops: vec![(key.clone(), keep_ttl(value))], reply: Reply::Integer(i64::from(old)) }
        }
        Command::BitField { key, ops, .. } => {
            if bits::bitfield_reach(ops) > max_value as u64 {
                return Decision::answer(Reply::from(&CommandError::BitOffset));
            }
            let mut value = first.unwrap_or_default();
            let answers = bits::bitfield(&mut value, ops);
            let reply =
                Reply::Array(answers.into_iter().map(|a| a.map_or(Reply::Null, Reply::Integer)).collect());
            Decision { ops: vec![(key.clone(), keep_ttl(value))], reply }
        }
        Command::BitOp { op, dest, .. } => {
            values[0] = first;
            let result = bits::combine(*op, &values);
            let reply = Reply::Integer(result.len() as i64);
            let write = if result.is_empty() { Op::DeleteIfPresent } else { Op::Put(result.into()) };
            Decision { ops: vec![(dest.clone(), write)], reply }
        }
        Command::PfAdd { key, elements } => {
            let (mut hll, created) = match first.as_deref().map(Hll::decode) {
                None => (Hll::default(), true),
                Some(Some(hll)) => (hll, false),
                Some(None) => return Decision::error(NOT_HLL),
            };
            let changed = elements.iter().fold(false, |changed, e| hll.add(e) | changed);
            if !(created || changed) {
                return Decision::answer(Reply::Integer(0));
            }
            Decision { ops: vec![(key.clone(), keep_ttl(hll.encode()))], reply: Reply::Integer(1) }
        }
        Command::PfMerge { dest, .. } => {
            values[0] = first;
            let mut merged = Hll::default();
            for value in values.iter().flatten() {
                match Hll::decode(value) {
                    Some(hll) => merged.merge(&hll),
                    None => return Decision::error(NOT_HLL),
                }
            }
            Decision { ops: vec![(dest.clone(), keep_ttl(merged.encode()))], reply: Reply::ok() }
        }
        other => Decision::error(&format!("ERR '{}' is not a read-modify-write", other.name())),
    }
}

impl Session {
    /// Runs a read-modify-write command: read, decide, commit if nothing
    /// it read changed since, else read again.
    pub(super) async fn read_modify_write(&mut self, command: Command) -> Reply {
        let node = self.shared.node.clone();
        let (max_key, max_value) =
            (self.shared.config.store.max_key_bytes, self.shared.config.store.max_value_bytes);
        let keys = keys(&command);
        for attempt in 1..=MAX_ATTEMPTS {
            // The version first: a write after it and before the reads is
            // seen by the reads and also refuses the commit, so the
            // command reads again rather than trusting a mixed view.
            let version = node.replay_progress().applied_version;
            let read = match read(&View::new(&node, self.stream, None), &command, &keys) {
                Ok(read) => read,
                Err(e) => return writes::node_error(&e),
            };
            let decision = decide(&command, read, max_value, node.read_time_ms(None));
            if decision.ops.is_empty() {
                return decision.reply;
            }
            if let Some(refused) = writes::check_limits(&decision.ops, max_key, max_value) {
                return refused;
            }
            let reads = keys.iter().map(|k| (self.stream, k.clone())).collect();
            let tx = writes::transaction(self.stream, decision.ops, reads, version);
            let applied = match self.shared.append(self.signer.clone(), vec![tx]).await {
                Ok(applied) => applied,
                Err(e) => return writes::node_error(&e),
            };
            let result = match &applied.outcome {
                EntryOutcome::Applied(results) => results.first().cloned().flatten(),
                _ => None,
            };
            match result {
                Some(TxResult::Commit) => return decision.reply,
                Some(TxResult::VersionConfliction | TxResult::VersionTooOld) => {
                    tokio::time::sleep(backoff(attempt)).await
                }
                other => return writes::not_committed(other.as_ref()),
            }
        }
        gave_up(command.name())
    }
}

/// The error of a command (or `EXEC`) whose keys changed under it at every
/// attempt.
pub(super) fn gave_up(name: &str) -> Reply {
    Reply::Error(format!(
        "ERR {name} gave up after {MAX_ATTEMPTS} attempts: its keys kept changing under concurrent writes"
    ))
}
