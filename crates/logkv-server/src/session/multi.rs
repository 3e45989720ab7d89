//! `WATCH`, `MULTI`, `EXEC`, `DISCARD`, `UNWATCH` on the runtime's
//! optimistic transactions.
//!
//! `EXEC` turns a block that writes into ONE native transaction: every
//! queued write's ops and, for every queued read, a `Get` op per key, in
//! queue order. Its read set is the watched keys and its version the
//! newest visible version at the first `WATCH` (`check_reads_only`): the
//! runtime refuses it with `VersionConfliction` exactly when a watched key
//! got a new version after that — written by anyone, this connection
//! included — and `EXEC` answers the null array as Redis does. A `DEL` of
//! a missing key or a `SET NX` that did not set creates no version, so
//! neither disturbs a watcher, as in Redis. Every reply is built from what
//! apply answered for the command's ops, so each sees the queued writes
//! before it; `SCAN`, `KEYS` and `DBSIZE` read the state before the block
//! with the liveness the earlier ops' answers give. A block that does not
//! write is read here, at the newest version, after checking the watched
//! keys.
//!
//! Unlike Redis, a block is all or nothing: if a queued write fails when
//! applied (`INCR` of a non-integer), nothing of the block is written and
//! `EXEC` answers that error.

use std::ops::Range;

use logkv_runtime::apply::{expired, OpAnswer, TxResult};
use logkv_runtime::codec::native::Op;
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::node::{Applied, Node, NodeError};
use logkv_runtime::types::{version_position, StreamId};

use super::view::{self, Held, View};
use super::{rmw, writes, Session};
use crate::resp::command::{Bytes, Command};
use crate::resp::reply::Reply;
use crate::resp::CommandError;

/// Keys watched since a version, each in the stream of the database
/// selected when it was watched (as Redis watches a key of a database).
struct Watch {
    version: u64,
    /// The time reads judged expiry by at the first `WATCH`.
    read_time_ms: u64,
    keys: Vec<(StreamId, Bytes)>,
}

/// A `MULTI` block being queued.
#[derive(Default)]
struct Queue {
    commands: Vec<Result<Command, CommandError>>,
    /// A command was rejected while queueing: `EXEC` must refuse.
    aborted: bool,
}

/// A connection's transaction state.
#[derive(Default)]
pub struct State {
    watch: Option<Watch>,
    queue: Option<Queue>,
}

/// Whether a command runs at once inside `MULTI` rather than being queued.
pub fn runs_inside(command: &Result<Command, CommandError>) -> bool {
    matches!(
        command,
        Ok(Command::Exec
            | Command::Discard
            | Command::Multi
            | Command::Watch { .. }
            | Command::Quit
            | Command::Reset)
    )
}

impl State {
    /// Whether a `MULTI` block is open.
    pub fn in_multi(&self) -> bool {
        self.queue.is_some()
    }

    /// How many commands the open block holds (`None`: no block).
    pub fn queued(&self) -> Option<usize> {
        self.queue.as_ref().map(|q| q.commands.len())
    }

    /// Queues a command of the open block.
    pub fn queue(&mut self, command: Result<Command, CommandError>) {
        if let Some(q) = &mut self.queue {
            q.commands.push(command);
        }
    }

    /// Marks the open block (if any) as failed: a command was rejected.
    pub fn abort(&mut self) {
        if let Some(q) = &mut self.queue {
            q.aborted = true;
        }
    }

    /// `WATCH key ...`.
    pub fn watch(&mut self, node: &Node, stream: StreamId, keys: Vec<Bytes>) -> Reply {
        if self.in_multi() {
            return Reply::Error("ERR WATCH inside MULTI is not allowed".into());
        }
        let watch = self.watch.get_or_insert_with(|| Watch {
            version: node.replay_progress().applied_version,
            read_time_ms: node.read_time_ms(None),
            keys: Vec::new(),
        });
        for key in keys.into_iter().map(|k| (stream, k)) {
            if !watch.keys.contains(&key) {
                watch.keys.push(key);
            }
        }
        Reply::ok()
    }

    /// `UNWATCH`.
    pub fn unwatch(&mut self) -> Reply {
        self.watch = None;
        Reply::ok()
    }

    /// `MULTI`.
    pub fn begin(&mut self) -> Reply {
        if self.in_multi() {
            return Reply::Error("ERR MULTI calls can not be nested".into());
        }
        self.queue = Some(Queue::default());
        Reply::ok()
    }

    /// `DISCARD`.
    pub fn discard(&mut self) -> Reply {
        if self.queue.take().is_none() {
            return Reply::Error("ERR DISCARD without MULTI".into());
        }
        self.watch = None;
        Reply::ok()
    }
}

/// A queued command as part of the block's transaction.
enum Queued {
    /// Rejected when it ran: its error.
    Refused(Reply),
    /// A write: its reply recipe and its ops.
    Write(writes::Answer, Range<usize>),
    /// A read: the command and, per key it reads, its `Get` op (`None` for
    /// a key no value can have: empty or over the key limit).
    Read(Command, Vec<Option<usize>>),
    /// Anything else, run after the transaction seeing the ops before
    /// `at` (keyspace commands) or nothing of it (session commands).
    Other(Command, usize),
    /// A read-modify-write: its reply, decided before the block was sent
    /// and true once it commits.
    Decided(Reply),
}

/// A block as ops of one transaction, with how to answer each command.
struct PlannedBlock {
    queued: Vec<Queued>,
    ops: Vec<(Bytes, Op)>,
    /// The keys its read-modify-writes read, for the read set.
    rmw_keys: Vec<Bytes>,
}

impl Session {
    /// `EXEC`: the queued block as one transaction, or the null array if a
    /// watched key changed.
    ///
    /// A read-modify-write in the block (`SETBIT`, `PFADD`...) reads the
    /// newest state and adds its keys to the transaction's read set, so
    /// the block commits only if they are unchanged; it cannot see the
    /// block's own earlier writes (they are not applied yet), so one that
    /// follows a write of its keys in the block is refused. Without a
    /// `WATCH`, a block refused for a change of those keys is planned and
    /// sent again, as a lone read-modify-write is; with one, it aborts
    /// with the null array like a watched key's change (the client's
    /// `WATCH` loop retries it).
    pub(super) async fn exec(&mut self) -> Reply {
        let Some(queue) = self.multi.queue.take() else {
            return Reply::Error("ERR EXEC without MULTI".into());
        };
        let watch = self.multi.watch.take();
        if queue.aborted {
            return Reply::Error("EXECABORT Transaction discarded because of previous errors.".into());
        }
        let node = self.shared.node.clone();
        let writes_or_rmw = |c: &Command| writes::is_write(c) || rmw::is_rmw(c);
        if !queue.commands.iter().any(|c| c.as_ref().is_ok_and(writes_or_rmw)) {
            return self.exec_reads(&node, queue.commands, watch);
        }
        let has_rmw = queue.commands.iter().any(|c| c.as_ref().is_ok_and(rmw::is_rmw));
        let attempts = if has_rmw && watch.is_none() { rmw::MAX_ATTEMPTS } else { 1 };
        let mut commands = queue.commands;
        for attempt in 1..=attempts {
            // As for a lone read-modify-write: the version before the reads.
            let version = node.replay_progress().applied_version;
            let batch = if attempt == attempts { std::mem::take(&mut commands) } else { commands.clone() };
            let block = match self.plan_block(&node, batch) {
                Ok(block) => block,
                Err(e) => return writes::node_error(&e),
            };
            // Keyspace commands (rare in a block) need the ops after they are sent.
            let lists_keys = block.queued.iter().any(|q| matches!(q, Queued::Other(c, _) if lists_keys(c)));
            let kept = if lists_keys { block.ops.clone() } else { Vec::new() };
            let (mut reads, read_version) = match &watch {
                Some(w) => (w.keys.clone(), w.version),
                None => (Vec::new(), version),
            };
            reads.extend(block.rmw_keys.into_iter().map(|k| (self.stream, k)));
            let tx = writes::transaction(self.stream, block.ops, reads, read_version);
            let applied = match self.shared.append(self.signer.clone(), vec![tx]).await {
                Ok(applied) => applied,
                Err(e) => return writes::node_error(&e),
            };
            let result = match &applied.outcome {
                EntryOutcome::Applied(results) => results.first().cloned().flatten(),
                _ => None,
            };
            match result {
                Some(TxResult::Commit) => return self.block_replies(&node, block.queued, &kept, &applied),
                Some(TxResult::VersionConfliction | TxResult::VersionTooOld) if attempt < attempts => {
                    tokio::time::sleep(rmw::backoff(attempt)).await
                }
                // A WATCH older than the version-check horizon cannot be
                // checked: aborted like a conflict, so the client retries.
                Some(TxResult::VersionConfliction | TxResult::VersionTooOld) if watch.is_some() => {
                    return Reply::NullArray
                }
                Some(TxResult::VersionConfliction | TxResult::VersionTooOld) => return rmw::gave_up("exec"),
                other => return writes::not_committed(other.as_ref()),
            }
        }
        rmw::gave_up("exec")
    }

    /// The block's commands as ops, in queue order: writes as planned,
    /// reads as `Get` ops, read-modify-writes decided on the newest state.
    fn plan_block(
        &self,
        node: &Node,
        commands: Vec<Result<Command, CommandError>>,
    ) -> Result<PlannedBlock, NodeError> {
        let config = &self.shared.config;
        let (max_key, max_value) = (config.store.max_key_bytes, config.store.max_value_bytes);
        let mut ops: Vec<(Bytes, Op)> = Vec::new();
        let mut rmw_keys = Vec::new();
        let now = node.read_time_ms(None);
        let mut queued = Vec::with_capacity(commands.len());
        for command in commands {
            let command = match command {
                Ok(c) => c,
                Err(e) => {
                    queued.push(Queued::Refused(Reply::from(&e)));
                    continue;
                }
            };
            let start = ops.len();
            if let Some(refused) = self.copy_refused_in_block(&command) {
                queued.push(Queued::Refused(refused));
                continue;
            }
            if rmw::is_rmw(&command) {
                let keys = rmw::keys(&command);
                // A flush earlier in the block wrote every key.
                let written = ops
                    .iter()
                    .any(|(k, op)| *op == Op::Flush || (!matches!(op, Op::Get) && keys.contains(k)));
                if written {
                    queued.push(Queued::Refused(Reply::Error(format!(
                        "ERR logkv does not run '{}' inside MULTI after a write of its keys yet",
                        command.name()
                    ))));
                    continue;
                }
                let read = rmw::read(&View::new(node, self.stream, None), &command, &keys)?;
                let decision = rmw::decide(&command, read, max_value, now);
                match writes::check_limits(&decision.ops, max_key, max_value) {
                    Some(refused) => queued.push(Queued::Refused(refused)),
                    None => {
                        ops.extend(decision.ops);
                        rmw_keys.extend(keys);
                        queued.push(Queued::Decided(decision.reply));
                    }
                }
                continue;
            }
            queued.push(match writes::plan(command, now) {
                // A write over the limits fails alone, as a command that
                // fails inside a Redis EXEC does; the others still run.
                Ok(plan) => match writes::check_limits(&plan.ops, max_key, max_value) {
                    Some(refused) => Queued::Refused(refused),
                    None => {
                        ops.extend(plan.ops);
                        Queued::Write(plan.answer, start..ops.len())
                    }
                },
                Err(command) => match view::read_keys(&command) {
                    Some(keys) => {
                        let slots = keys
                            .into_iter()
                            .map(|k| {
                                writes::key_fits(k, max_key).then(|| {
                                    ops.push((k.clone(), Op::Get));
                                    ops.len() - 1
                                })
                            })
                            .collect();
                        Queued::Read(command, slots)
                    }
                    None => Queued::Other(command, start),
                },
            });
        }
        Ok(PlannedBlock { queued, ops, rmw_keys })
    }

    /// The replies of a committed block, from apply's answers.
    fn block_replies(
        &mut self,
        node: &Node,
        block: Vec<Queued>,
        kept: &[(Bytes, Op)],
        applied: &Applied,
    ) -> Reply {
        let answers: &[OpAnswer] = applied.answers.first().map_or(&[], Vec::as_slice);
        let mut before = View::new(node, self.stream, Some(applied.version - 1));
        let after = View::new(node, self.stream, Some(applied.version));
        let mut seen = 0;
        let replies = block
            .into_iter()
            .map(|queued| match queued {
                Queued::Refused(reply) | Queued::Decided(reply) => reply,
                Queued::Write(answer, range) => writes::reply(answer, &answers[range]),
                Queued::Read(command, slots) => {
                    let keys = view::read_keys(&command).unwrap_or_default();
                    let values = slots
                        .into_iter()
                        .zip(keys)
                        .map(|(slot, key)| match slot.map(|i| &answers[i]) {
                            Some(OpAnswer::Value(Some(v))) => Held::Str(v.clone()),
                            // A collection (apply refused to read it as a
                            // string): its kind, from the state the block left.
                            Some(OpAnswer::Refused(_)) => match after.held(key) {
                                Ok(Held::Coll(kind)) => Held::Coll(kind),
                                _ => Held::Absent,
                            },
                            _ => Held::Absent,
                        })
                        .collect();
                    view::read_reply(&command, values)
                }
                Queued::Other(command, at) => {
                    for ((key, op), answer) in kept.iter().zip(answers).take(at).skip(seen) {
                        if *op == Op::Flush {
                            before.set_flushed();
                        } else if let Some(live) = writes::live_after(op, answer) {
                            before.set_live(key.to_vec(), live);
                        }
                    }
                    seen = seen.max(at);
                    self.run_in(&before, &command)
                }
            })
            .collect();
        Reply::Array(replies)
    }

    /// `EXEC` of a block that writes nothing: the watched keys are checked
    /// here (as apply would), then every command reads the newest state.
    fn exec_reads(
        &mut self,
        node: &Node,
        commands: Vec<Result<Command, CommandError>>,
        watch: Option<Watch>,
    ) -> Reply {
        let now = node.replay_progress().applied_version;
        if let Some(w) = &watch {
            // As apply would: past the version-check horizon, a delete
            // since the WATCH may be forgotten, so the block aborts.
            let horizon = self.shared.config.version_check_horizon;
            if version_position(w.version).saturating_add(horizon) < version_position(now) {
                return Reply::NullArray;
            }
            for (stream, key) in &w.keys {
                // A flush since the WATCH wrote every key of the stream.
                match node.flush_version(stream, None) {
                    Ok(flushed) if flushed > w.version => return Reply::NullArray,
                    Ok(_) => {}
                    Err(e) => return writes::node_error(&e),
                }
                match node.history(stream, key) {
                    Ok(history) if history.first().is_some_and(|h| h.version > w.version) => {
                        return Reply::NullArray
                    }
                    Ok(_) => {}
                    Err(e) => return writes::node_error(&e),
                }
                // An expiry since the WATCH counts as a write: expired now,
                // not yet when the client watched. (Judged by the times
                // reads use, not by log times: no entry is written here,
                // so an idle log must not abort every retry.)
                match node.expires_at(stream, key, None) {
                    Ok(at) if expired(at, node.read_time_ms(None)) && !expired(at, w.read_time_ms) => {
                        return Reply::NullArray
                    }
                    Ok(_) => {}
                    Err(e) => return writes::node_error(&e),
                }
            }
        }
        let view = View::new(node, self.stream, Some(now));
        let replies = commands
            .iter()
            .map(|queued| match queued {
                Ok(command) => self.run_in(&view, command),
                Err(e) => Reply::from(e),
            })
            .collect();
        Reply::Array(replies)
    }
}

/// Whether a command lists keys (and so must see the block's earlier ops).
fn lists_keys(command: &Command) -> bool {
    matches!(
        command,
        Command::Scan { .. }
            | Command::Keys { .. }
            | Command::DbSize
            | Command::RandomKey
            | Command::Object { .. }
    )
}
