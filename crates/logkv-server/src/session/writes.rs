//! Write commands as native transactions, and their replies.
//!
//! A write command becomes one transaction of deterministic ops (put,
//! delete-if-present, increment, append, put-if-absent/present, get, put
//! with an expiry, expire, flush) that
//! the runtime applies in log order, so read-modify-write commands are
//! atomic under any number of clients without retries. The reply is built
//! from what apply answered for each op ([`OpAnswer`]): the runtime is the
//! one place op semantics live.

use logkv_runtime::apply::{OpAnswer, TxResult};
use logkv_runtime::codec::native::{self, BodyWrite, Op};
use logkv_runtime::codec::{ExpireCond, NewExpiry, PutCond, FLUSH_KEY};
use logkv_runtime::node::NodeError;
use logkv_runtime::types::StreamId;

use super::collections;
use crate::compacted;
use crate::resp::command::{Bytes, Command, SetCondition, SetExpiry};
use crate::resp::reply::Reply;

/// How a write's reply is built from its ops' answers.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// `+OK`.
    Ok,
    /// `SET` with `NX`/`XX`: `+OK` if the value was set, else nil.
    SetIf,
    /// `GETSET`, `SET … GET`: the old value (the first op is a get).
    OldValue,
    /// `SETNX`: 1 if set, 0 if not.
    SetNx,
    /// `DEL`: how many of the keys existed.
    Deleted,
    /// `APPEND`: the new length.
    Length,
    /// `INCRBY` and friends: the new value.
    Incremented,
    /// `EXPIRE` and kin, `PERSIST`: 1 if the expiry changed, else 0.
    Changed,
    /// `HSET`, `HSETNX`, `HDEL`, `SADD`: the count apply answered.
    Count,
    /// `SREM`: how many members apply removed.
    Removed,
    /// `HINCRBYFLOAT`: the value apply computed.
    Computed,
    /// `SPOP`: the members removed (`single`: the one, or nil).
    Popped { single: bool },
    /// `S…STORE`: the size of the set stored (0 if none was).
    Stored,
    /// `ZPOPMIN`/`ZPOPMAX`: the members removed, each with its score.
    ZPopped,
    /// `LPOP`/`RPOP`: the element (`single`), or the elements; nil for no list.
    ListPopped { single: bool },
}

/// A write command as ops and the recipe for its reply.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The ops, in order.
    pub ops: Vec<(Bytes, Op)>,
    /// How to answer.
    pub answer: Answer,
}

/// The plan of a write command (its keys and values moved into the ops),
/// or the command back if it does not write. A relative expiry becomes an
/// absolute time here, from `now_ms`: the receiving node's time (the later
/// of its clock and its newest log time), so the log holds one time that
/// every node judges alike.
pub fn plan(command: Command, now_ms: u64) -> Result<Planned, Command> {
    let one = |key: Bytes, op: Op, answer: Answer| Planned { ops: vec![(key, op)], answer };
    Ok(match command {
        Command::Set { key, value, condition, get, expiry } => {
            let op = match (expiry, condition) {
                (SetExpiry::Never, SetCondition::Always) => Op::Put(value),
                (SetExpiry::Never, SetCondition::IfAbsent) => Op::PutIfAbsent(value),
                (SetExpiry::Never, SetCondition::IfPresent) => Op::PutIfPresent(value),
                (expiry, condition) => {
                    let cond = match condition {
                        SetCondition::Always => PutCond::Always,
                        SetCondition::IfAbsent => PutCond::IfAbsent,
                        SetCondition::IfPresent => PutCond::IfPresent,
                    };
                    let expiry = match expiry {
                        SetExpiry::At(deadline) => NewExpiry::At(deadline.at(now_ms)),
                        SetExpiry::Keep => NewExpiry::Keep,
                        SetExpiry::Never => NewExpiry::Never,
                    };
                    Op::PutExpiring { value, cond, expiry }
                }
            };
            match (get, condition) {
                (true, _) => {
                    Planned { ops: vec![(key.clone(), Op::Get), (key, op)], answer: Answer::OldValue }
                }
                (false, SetCondition::Always) => one(key, op, Answer::Ok),
                (false, _) => one(key, op, Answer::SetIf),
            }
        }
        Command::SetNx { key, value } => one(key, Op::PutIfAbsent(value), Answer::SetNx),
        Command::GetSet { key, value } => {
            Planned { ops: vec![(key.clone(), Op::Get), (key, Op::Put(value))], answer: Answer::OldValue }
        }
        Command::Append { key, value } => one(key, Op::Append(value), Answer::Length),
        Command::IncrBy { key, delta } => one(key, Op::Increment(delta), Answer::Incremented),
        Command::Del { keys } => Planned {
            ops: keys.into_iter().map(|k| (k, Op::DeleteIfPresent)).collect(),
            answer: Answer::Deleted,
        },
        Command::MSet { pairs } => {
            Planned { ops: pairs.into_iter().map(|(k, v)| (k, Op::Put(v))).collect(), answer: Answer::Ok }
        }
        Command::GetEx { key, expiry } => {
            let expire = Op::Expire { cond: ExpireCond::Always, at: expiry.map(|d| d.at(now_ms)) };
            Planned { ops: vec![(key.clone(), Op::Get), (key, expire)], answer: Answer::OldValue }
        }
        Command::GetDel { key } => Planned {
            ops: vec![(key.clone(), Op::Get), (key, Op::DeleteIfPresent)],
            answer: Answer::OldValue,
        },
        Command::Expire { key, deadline, condition } => {
            one(key, Op::Expire { cond: condition, at: Some(deadline.at(now_ms)) }, Answer::Changed)
        }
        Command::Persist { key } => {
            one(key, Op::Expire { cond: ExpireCond::Always, at: None }, Answer::Changed)
        }
        Command::FlushDb => one(Bytes::from_static(FLUSH_KEY), Op::Flush, Answer::Ok),
        Command::Coll(c) => collections::plan(c).map_err(Command::Coll)?,
        other => return Err(other),
    })
}

/// Whether a command writes (without taking it apart).
pub fn is_write(command: &Command) -> bool {
    matches!(
        command,
        Command::Set { .. }
            | Command::SetNx { .. }
            | Command::GetSet { .. }
            | Command::Append { .. }
            | Command::IncrBy { .. }
            | Command::Del { .. }
            | Command::MSet { .. }
            | Command::GetEx { .. }
            | Command::GetDel { .. }
            | Command::Expire { .. }
            | Command::Persist { .. }
            | Command::FlushDb
    ) || matches!(command, Command::Coll(c) if collections::is_planned_write(c))
}

/// The reply of a committed write from its ops' answers, in op order.
pub fn reply(answer: Answer, answers: &[OpAnswer]) -> Reply {
    // An op refused on the key's kind (or a value it cannot compute with)
    // answers the command's error.
    if let Some(OpAnswer::Refused(error)) = answers.iter().find(|a| matches!(a, OpAnswer::Refused(_))) {
        return Reply::Error((*error).into());
    }
    let members = || match answers.first() {
        Some(OpAnswer::Members(m)) => m.clone(),
        Some(OpAnswer::Scored(m)) => m.iter().map(|(m, _)| m.clone()).collect(),
        _ => Vec::new(),
    };
    let wrote = |a: Option<&OpAnswer>| match a {
        Some(OpAnswer::Wrote { existed, changed }) => (*existed, *changed),
        _ => (false, false),
    };
    match answer {
        Answer::Ok => Reply::ok(),
        Answer::SetIf => match wrote(answers.first()) {
            (_, true) => Reply::ok(),
            (_, false) => Reply::Null,
        },
        Answer::SetNx | Answer::Changed => Reply::Integer(i64::from(wrote(answers.first()).1)),
        Answer::Count | Answer::Stored => {
            Reply::Integer(answers.iter().map(|a| if let OpAnswer::Count(n) = a { *n } else { 0 }).sum())
        }
        Answer::Removed => Reply::Integer(members().len() as i64),
        Answer::ListPopped { single } => match (answers.first(), single) {
            (Some(OpAnswer::Members(m)), true) => m.first().cloned().map_or(Reply::Null, Reply::Bulk),
            (Some(OpAnswer::Members(m)), false) => Reply::Array(m.iter().cloned().map(Reply::Bulk).collect()),
            (_, true) => Reply::Null,
            (_, false) => Reply::NullArray,
        },
        Answer::ZPopped => match answers.first() {
            Some(OpAnswer::Scored(m)) => Reply::Array(
                m.iter().flat_map(|(m, s)| [Reply::Bulk(m.clone()), Reply::Bulk(s.clone())]).collect(),
            ),
            _ => Reply::Array(Vec::new()),
        },
        Answer::Popped { single: true } => members().into_iter().next().map_or(Reply::Null, Reply::Bulk),
        Answer::Popped { single: false } => Reply::Set(members().into_iter().map(Reply::Bulk).collect()),
        Answer::OldValue | Answer::Computed => match answers.first() {
            Some(OpAnswer::Value(Some(v))) => Reply::Bulk(v.clone()),
            _ => Reply::Null,
        },
        Answer::Deleted => Reply::Integer(answers.iter().filter(|a| wrote(Some(a)).0).count() as i64),
        Answer::Length => match answers.first() {
            Some(OpAnswer::Length(n)) => Reply::Integer(*n as i64),
            _ => Reply::Integer(0),
        },
        Answer::Incremented => match answers.first() {
            Some(OpAnswer::Integer(n)) => Reply::Integer(*n),
            _ => Reply::Error("ERR value is not an integer or out of range".into()),
        },
    }
}

/// Whether `key` is live after `op` answered `answer` (`None`: the op
/// left it as it was), for what `SCAN`, `KEYS` and `DBSIZE` queued later
/// in a `MULTI` block see.
pub fn live_after(op: &Op, answer: &OpAnswer) -> Option<bool> {
    match (op, answer) {
        // A flush is not one key's (`View::set_flushed` records it); a
        // collection op may make or empty its key, which its answer does not tell.
        (Op::Get | Op::Flush | Op::Collection { .. }, _) => None,
        (Op::Delete | Op::DeleteIfPresent, OpAnswer::Wrote { existed, changed }) => {
            Some(*existed && !changed)
        }
        // An expiry change leaves the key live (one already past deletes
        // it, which this does not tell: a block listing keys after such
        // an `EXPIRE` still sees the key).
        (Op::Expire { .. }, OpAnswer::Wrote { existed, .. }) => Some(*existed),
        (_, OpAnswer::Wrote { existed, changed }) => Some(*existed || *changed),
        _ => Some(true),
    }
}

/// Ops as one planned native transaction on `stream`. `reads` (keys of
/// any stream) and `read_version` make it conditional on those keys being
/// unchanged since that version (`WATCH`); with no reads the version check
/// is off.
pub fn transaction(
    stream: StreamId,
    ops: Vec<(Bytes, Op)>,
    reads: Vec<(StreamId, Bytes)>,
    read_version: u64,
) -> native::Body {
    native::Body {
        version: if reads.is_empty() { u64::MAX } else { read_version },
        check_reads_only: true,
        reads: reads
            .into_iter()
            .map(|(stream, key)| logkv_runtime::codec::Read { stream, key: key.to_vec() })
            .collect(),
        writes: ops.into_iter().map(|(key, op)| BodyWrite { stream, key: key.to_vec(), op }).collect(),
        controls: Vec::new(),
    }
}

/// The error reply for a transaction the runtime did not commit.
pub fn not_committed(result: Option<&TxResult>) -> Reply {
    match result {
        Some(TxResult::OperationFailed(message)) => Reply::Error(format!("ERR {message}")),
        Some(r @ (TxResult::WritePermissionDenied { .. } | TxResult::SenderNoWritePermission)) => {
            Reply::Error(format!("NOPERM this identity may not write here ({r})"))
        }
        Some(r) => Reply::Error(format!("ERR transaction not committed: {r}")),
        None => Reply::Error("ERR transaction skipped: this node does not apply the stream".into()),
    }
}

/// The error reply for a node failure; a read older than retention keeps
/// is `ERR compacted: ...`.
pub fn node_error(e: &NodeError) -> Reply {
    match compacted::of(e) {
        Some((version, oldest)) => Reply::Error(format!("ERR {}", compacted::message(version, oldest))),
        None => Reply::Error(format!("ERR {e}")),
    }
}

/// The error reply for a write whose keys or values this node refuses to
/// store, checked before the write joins a shared entry (a refused record
/// would fail every caller of the entry).
/// Whether a key is one logkv can hold (1 to `max_key_bytes` bytes); no
/// value can live under any other.
pub fn key_fits(key: &[u8], max_key_bytes: usize) -> bool {
    !key.is_empty() && key.len() <= max_key_bytes
}

pub fn check_limits(ops: &[(Bytes, Op)], max_key_bytes: usize, max_value_bytes: usize) -> Option<Reply> {
    if let Some(refused) = collections::check_members(ops, max_key_bytes) {
        return Some(refused);
    }
    for (key, op) in ops {
        if !key_fits(key, max_key_bytes) {
            return Some(Reply::Error(format!(
                "ERR key of {} bytes: logkv keys are 1 to {max_key_bytes} bytes",
                key.len()
            )));
        }
        let value = op.value().map_or(0, <[u8]>::len);
        if value > max_value_bytes {
            return Some(Reply::Error(format!(
                "ERR value of {value} bytes: logkv values are at most {max_value_bytes} bytes"
            )));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use logkv_store::StoreError;

    use super::*;
    use crate::resp::reply::{encode, Protocol};

    #[test]
    fn a_read_older_than_retention_is_err_compacted_on_the_wire() {
        let e = NodeError::Store(StoreError::Compacted { version: 65_536, oldest: 196_608 });
        let mut wire = Vec::new();
        encode(&node_error(&e), Protocol::Resp2, &mut wire);
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            "-ERR compacted: version 65536 is older than the history kept, which starts at version 196608\r\n"
        );
        let other = NodeError::Store(StoreError::EmptyKey);
        assert_eq!(node_error(&other), Reply::Error("ERR keys must not be empty".into()));
    }
}
