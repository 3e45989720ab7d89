//! Write commands as native transactions, and their replies.
//!
//! A write command becomes one transaction of deterministic ops (put,
//! delete-if-present, increment, append, put-if-absent/present) that the
//! runtime applies in log order, so read-modify-write commands are atomic
//! under any number of clients without retries. The reply is computed
//! afterwards from the state just before the transaction — the key as of
//! the transaction's version minus one — which is exactly what the
//! transaction saw.

use logkv_runtime::apply::TxResult;
use logkv_runtime::codec::native::{self, BodyWrite, Op};
use logkv_runtime::envelope::TxPart;
use logkv_runtime::node::NodeError;
use logkv_runtime::types::StreamId;

use crate::compacted;
use crate::resp::command::{Bytes, Command, SetCondition};
use crate::resp::reply::Reply;

/// What the reply of a write is made of (computed by [`super::overlay`]
/// from the values each op saw).
#[derive(Debug, Clone)]
pub enum Answer {
    /// `+OK`.
    Ok,
    /// `SET` with `NX`/`XX`: `+OK` if the value was set, else nil.
    SetIf(SetCondition),
    /// `GETSET`, `SET … GET`: the old value.
    OldValue,
    /// `SETNX`: 1 if set, 0 if not.
    SetNx,
    /// `DEL`: how many of the keys existed.
    Deleted,
    /// `APPEND`: the new length.
    Length,
    /// `INCRBY` and friends: the new value.
    Incremented,
}

/// A write command as ops and the recipe for its reply.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The ops, in order.
    pub ops: Vec<(Bytes, Op)>,
    /// How to answer.
    pub answer: Answer,
}

/// The plan of a write command, or `None` for commands that do not write.
pub fn plan(command: &Command) -> Option<Planned> {
    let one = |key: &Bytes, op: Op, answer: Answer| Planned { ops: vec![(key.clone(), op)], answer };
    Some(match command {
        Command::Set { key, value, condition, get } => {
            let op = match condition {
                SetCondition::Always => Op::Put(value.clone()),
                SetCondition::IfAbsent => Op::PutIfAbsent(value.clone()),
                SetCondition::IfPresent => Op::PutIfPresent(value.clone()),
            };
            let answer = match (get, condition) {
                (true, _) => Answer::OldValue,
                (false, SetCondition::Always) => Answer::Ok,
                (false, c) => Answer::SetIf(*c),
            };
            one(key, op, answer)
        }
        Command::SetNx { key, value } => one(key, Op::PutIfAbsent(value.clone()), Answer::SetNx),
        Command::GetSet { key, value } => one(key, Op::Put(value.clone()), Answer::OldValue),
        Command::Append { key, value } => one(key, Op::Append(value.clone()), Answer::Length),
        Command::IncrBy { key, delta } => one(key, Op::Increment(*delta), Answer::Incremented),
        Command::Del { keys } => Planned {
            ops: keys.iter().map(|k| (k.clone(), Op::DeleteIfPresent)).collect(),
            answer: Answer::Deleted,
        },
        Command::MSet { pairs } => Planned {
            ops: pairs.iter().map(|(k, v)| (k.clone(), Op::Put(v.clone()))).collect(),
            answer: Answer::Ok,
        },
        _ => return None,
    })
}

/// Ops as one native transaction on `stream` (codec 2, compact). `reads`
/// and `read_version` make it conditional on those keys being unchanged
/// since that version (`WATCH`); with no reads the version check is off.
pub fn transaction(stream: StreamId, ops: Vec<(Bytes, Op)>, reads: Vec<Bytes>, read_version: u64) -> TxPart {
    let body = native::Body {
        version: if reads.is_empty() { u64::MAX } else { read_version },
        check_reads_only: true,
        reads: reads.into_iter().map(|key| logkv_runtime::codec::Read { stream, key }).collect(),
        writes: ops.into_iter().map(|(key, op)| BodyWrite { stream, key, op }).collect(),
        controls: Vec::new(),
    };
    native::compact_tx(&body, [stream])
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
pub fn check_limits(ops: &[(Bytes, Op)], max_key_bytes: usize, max_value_bytes: usize) -> Option<Reply> {
    for (key, op) in ops {
        if key.is_empty() || key.len() > max_key_bytes {
            return Some(Reply::Error(format!(
                "ERR key of {} bytes: logkv keys are 1 to {max_key_bytes} bytes",
                key.len()
            )));
        }
        let value = match op {
            Op::Put(v) | Op::Append(v) | Op::PutIfAbsent(v) | Op::PutIfPresent(v) => v.len(),
            Op::Delete | Op::DeleteIfPresent | Op::Increment(_) => 0,
        };
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
