//! `WATCH`, `MULTI`, `EXEC`, `DISCARD`, `UNWATCH` on the runtime's
//! optimistic transactions.
//!
//! `EXEC` turns every queued write, in order, into ONE native transaction
//! whose read set is the watched keys and whose version is the newest
//! visible version at the first `WATCH` (`check_reads_only`): the runtime
//! refuses it with `VersionConfliction` exactly when a watched key got a
//! new version after that — written by anyone, this connection included —
//! and `EXEC` answers the null array as Redis does. A `DEL` of a missing
//! key or a `SET NX` that did not set creates no version, so neither
//! disturbs a watcher, as in Redis. The replies of the queued commands are
//! simulated on the state the transaction saw ([`Overlay`]), each seeing
//! the queued writes before it.
//!
//! Unlike Redis, a block is all or nothing: if a queued write fails when
//! applied (`INCR` of a non-integer), nothing of the block is written and
//! `EXEC` answers that error.

use logkv_runtime::apply::TxResult;
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::node::Node;
use logkv_runtime::types::version_position;

use super::overlay::Overlay;
use super::{writes, Session};
use crate::resp::command::{Bytes, Command};
use crate::resp::reply::Reply;
use crate::resp::CommandError;

/// Keys watched since a version.
struct Watch {
    version: u64,
    keys: Vec<Bytes>,
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
        Ok(Command::Exec | Command::Discard | Command::Multi | Command::Watch { .. } | Command::Quit)
    )
}

impl State {
    /// Whether a `MULTI` block is open.
    pub fn in_multi(&self) -> bool {
        self.queue.is_some()
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
    pub fn watch(&mut self, node: &Node, keys: Vec<Bytes>) -> Reply {
        if self.in_multi() {
            return Reply::Error("ERR WATCH inside MULTI is not allowed".into());
        }
        let watch = self.watch.get_or_insert_with(|| Watch {
            version: node.replay_progress().applied_version,
            keys: Vec::new(),
        });
        for key in keys {
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

impl Session {
    /// `EXEC`: the queued block as one transaction, or the null array if a
    /// watched key changed.
    pub(super) async fn exec(&mut self) -> Reply {
        let Some(queue) = self.multi.queue.take() else {
            return Reply::Error("ERR EXEC without MULTI".into());
        };
        let watch = self.multi.watch.take();
        if queue.aborted {
            return Reply::Error("EXECABORT Transaction discarded because of previous errors.".into());
        }
        let ops: Vec<_> = queue
            .commands
            .iter()
            .filter_map(|c| c.as_ref().ok().and_then(writes::plan))
            .flat_map(|plan| plan.ops)
            .collect();
        let node = self.shared.node.clone();
        let base = if ops.is_empty() {
            // Nothing to write: check the watched keys here, then read.
            let now = node.replay_progress().applied_version;
            if let Some(w) = &watch {
                // As apply would: past the version-check horizon, a delete
                // since the WATCH may be forgotten, so the block aborts.
                let horizon = self.shared.config.version_check_horizon;
                if version_position(w.version).saturating_add(horizon) < version_position(now) {
                    return Reply::NullArray;
                }
                for key in &w.keys {
                    match node.history(&self.stream, key) {
                        Ok(history) if history.first().is_some_and(|h| h.version > w.version) => {
                            return Reply::NullArray
                        }
                        Ok(_) => {}
                        Err(e) => return writes::node_error(&e),
                    }
                }
            }
            now
        } else {
            let config = &self.shared.config;
            if let Some(refused) = writes::check_limits(&ops, config.max_key_bytes, config.max_value_bytes) {
                return refused;
            }
            let (reads, version) = match watch {
                Some(w) => (w.keys, w.version),
                None => (Vec::new(), 0),
            };
            let tx = writes::transaction(self.stream, ops, reads, version);
            let applied = match self.shared.append(self.signer.clone(), vec![tx]).await {
                Ok(applied) => applied,
                Err(e) => return writes::node_error(&e),
            };
            let result = match &applied.outcome {
                EntryOutcome::Applied(results) => results.first().cloned().flatten(),
                _ => None,
            };
            match result {
                Some(TxResult::Commit) => applied.version - 1,
                // A WATCH older than the version-check horizon cannot be
                // checked: aborted like a conflict, so the client retries.
                Some(TxResult::VersionConfliction | TxResult::VersionTooOld) => return Reply::NullArray,
                other => return writes::not_committed(other.as_ref()),
            }
        };
        let mut view = Overlay::new(&node, self.stream, Some(base));
        let replies = queue
            .commands
            .iter()
            .map(|queued| match queued {
                Ok(command) => self.run_in(&mut view, command),
                Err(e) => Reply::from(e),
            })
            .collect();
        Reply::Array(replies)
    }
}
