//! A simulation of data commands on the store as of one version, overlaid
//! with the writes simulated so far: the replies of writes (the state a
//! committed transaction saw is the state as of its version minus one),
//! and of the reads and writes queued in a `MULTI` block, each seeing the
//! ones before it.
//!
//! The ops evaluate exactly as the runtime's `apply` does (same
//! conditions, same integer rules, same error texts), so a simulation of a
//! committed transaction reproduces what it did.

use std::collections::BTreeMap;

use logkv_runtime::apply::parse_i64;
use logkv_runtime::codec::native::Op;
use logkv_runtime::node::{Node, NodeError};
use logkv_runtime::types::StreamId;

use super::writes::{self, Answer};
use crate::resp::command::{Bytes, Command, SetCondition};
use crate::resp::reply::Reply;

/// The store as of a version plus simulated changes.
pub struct Overlay<'a> {
    node: &'a Node,
    stream: StreamId,
    at: Option<u64>,
    /// Keys changed by simulated writes: `None` = deleted.
    changes: BTreeMap<Bytes, Option<Bytes>>,
}

impl<'a> Overlay<'a> {
    /// The state of `stream` as of `at` (`None`: the newest visible).
    pub fn new(node: &'a Node, stream: StreamId, at: Option<u64>) -> Overlay<'a> {
        Overlay { node, stream, at, changes: BTreeMap::new() }
    }

    /// The node read.
    pub fn node(&self) -> &'a Node {
        self.node
    }

    /// The stream read.
    pub fn stream(&self) -> &StreamId {
        &self.stream
    }

    /// The version the base state is read as of.
    pub fn at(&self) -> Option<u64> {
        self.at
    }

    /// The simulated changes, by key.
    pub fn changes(&self) -> &BTreeMap<Bytes, Option<Bytes>> {
        &self.changes
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>, NodeError> {
        match self.changes.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.node.get(&self.stream, key, self.at)?.map(|(v, _)| v)),
        }
    }

    /// Applies one op as the runtime does; `Err(why)` if it cannot be
    /// carried out (the runtime's `OperationFailed` text), changing nothing.
    pub fn apply(&mut self, key: &[u8], op: &Op) -> Result<Result<(), &'static str>, NodeError> {
        let before = self.get(key)?;
        let after = match (op, before) {
            (Op::Put(v), _) => Some(v.clone()),
            (Op::Delete, _) => None,
            (Op::PutIfAbsent(v), None) => Some(v.clone()),
            (Op::PutIfPresent(v), Some(_)) => Some(v.clone()),
            (Op::DeleteIfPresent, Some(_)) => None,
            (Op::PutIfAbsent(_) | Op::PutIfPresent(_) | Op::DeleteIfPresent, _) => return Ok(Ok(())),
            (Op::Append(v), before) => {
                let mut bytes = before.unwrap_or_default();
                bytes.extend_from_slice(v);
                Some(bytes)
            }
            (Op::Increment(by), before) => {
                let old = match before {
                    None => 0,
                    Some(b) => match parse_i64(&b) {
                        Some(n) => n,
                        None => return Ok(Err("value is not an integer or out of range")),
                    },
                };
                match old.checked_add(*by) {
                    Some(new) => Some(new.to_string().into_bytes()),
                    None => return Ok(Err("increment or decrement would overflow")),
                }
            }
        };
        self.changes.insert(key.to_vec(), after);
        Ok(Ok(()))
    }

    /// Runs a data command (a read or a write) and returns its reply, or
    /// `None` for commands that are neither. A write whose op fails
    /// changes nothing and answers the runtime's error.
    pub fn run(&mut self, command: &Command) -> Result<Option<Reply>, NodeError> {
        if let Some(plan) = writes::plan(command) {
            return self.write(&plan.ops, &plan.answer).map(Some);
        }
        let reply = match command {
            Command::Get { key } => self.get(key)?.map_or(Reply::Null, Reply::Bulk),
            Command::MGet { keys } => {
                let mut values = Vec::with_capacity(keys.len());
                for key in keys {
                    values.push(self.get(key)?.map_or(Reply::Null, Reply::Bulk));
                }
                Reply::Array(values)
            }
            Command::Exists { keys } => {
                let mut n = 0;
                for key in keys {
                    n += i64::from(self.get(key)?.is_some());
                }
                Reply::Integer(n)
            }
            Command::StrLen { key } => Reply::Integer(self.get(key)?.map_or(0, |v| v.len() as i64)),
            Command::Type { key } => {
                Reply::Simple(if self.get(key)?.is_some() { "string" } else { "none" }.into())
            }
            _ => return Ok(None),
        };
        Ok(Some(reply))
    }

    /// Applies `ops` in order, all or none, and answers as `answer` says.
    pub fn write(&mut self, ops: &[(Bytes, Op)], answer: &Answer) -> Result<Reply, NodeError> {
        let mut befores = Vec::with_capacity(ops.len());
        let mut undo: Vec<(Bytes, Option<Option<Bytes>>)> = Vec::with_capacity(ops.len());
        for (key, op) in ops {
            befores.push(self.get(key)?);
            undo.push((key.clone(), self.changes.get(key).cloned()));
            if let Err(why) = self.apply(key, op)? {
                for (key, previous) in undo.into_iter().rev() {
                    match previous {
                        Some(v) => self.changes.insert(key, v),
                        None => self.changes.remove(&key),
                    };
                }
                return Ok(Reply::Error(format!("ERR {why}")));
            }
        }
        let first = befores.first().cloned().flatten();
        let after = |s: &Self| match ops.first() {
            Some((key, _)) => s.get(key),
            None => Ok(None),
        };
        Ok(match answer {
            Answer::Ok => Reply::ok(),
            Answer::SetIf(SetCondition::IfAbsent) if first.is_some() => Reply::Null,
            Answer::SetIf(SetCondition::IfPresent) if first.is_none() => Reply::Null,
            Answer::SetIf(_) => Reply::ok(),
            Answer::SetNx => Reply::Integer(i64::from(first.is_none())),
            Answer::OldValue => first.map_or(Reply::Null, Reply::Bulk),
            Answer::Length => Reply::Integer(after(self)?.map_or(0, |v| v.len() as i64)),
            Answer::Incremented => match after(self)?.as_deref().and_then(parse_i64) {
                Some(n) => Reply::Integer(n),
                None => Reply::Error("ERR value is not an integer or out of range".into()),
            },
            Answer::Deleted => Reply::Integer(befores.iter().filter(|b| b.is_some()).count() as i64),
        })
    }
}
