//! Redis databases as streams: database 0 is the configured stream, so
//! data written before databases existed stays where it was; database
//! `n > 0` is a stream derived from it ([`stream_of`]). `SELECT` changes
//! the stream a connection reads and writes; `FLUSHALL` flushes every
//! database's stream in one entry; `MOVE` and `COPY … DB n` are one
//! conditional transaction over two streams. `FLUSHDB` is an ordinary
//! planned write (`writes`).

use logkv_runtime::apply::TxResult;
use logkv_runtime::codec::native::{Body, BodyWrite, Op};
use logkv_runtime::codec::{NewExpiry, PutCond, Read, FLUSH_KEY};
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::signing::keccak256;
use logkv_runtime::types::StreamId;

use super::view::{Held, View};
use super::{writes, Session};
use crate::resp::command::{Bytes, Command};
use crate::resp::reply::Reply;
use crate::resp::CommandError;

/// What the derivation of a database's stream hashes first, so no other
/// use of keccak-256 in logkv can produce the same stream.
pub const DOMAIN: &[u8] = b"logkv:resp-database";

/// How many times `MOVE` and `COPY … DB n` read again when a key they read
/// changed before their transaction applied.
const ACROSS_ATTEMPTS: usize = 16;

/// A put of a copied value with its expiry, under `cond`.
fn put(value: Bytes, cond: PutCond, expiry: Option<u64>) -> Op {
    match (expiry, cond) {
        (Some(at), cond) => Op::PutExpiring { value, cond, expiry: NewExpiry::At(at) },
        (None, PutCond::IfAbsent) => Op::PutIfAbsent(value),
        (None, _) => Op::Put(value),
    }
}

/// The stream of database `db` of a server whose configured stream is
/// `base`: `base` itself for database 0, else
/// `keccak256(DOMAIN ‖ base ‖ db as u32 big-endian)`. Deterministic, so
/// every server configured with the same stream finds the same databases.
pub fn stream_of(base: &StreamId, db: u32) -> StreamId {
    if db == 0 {
        return *base;
    }
    let mut input = Vec::with_capacity(DOMAIN.len() + 32 + 4);
    input.extend_from_slice(DOMAIN);
    input.extend_from_slice(&base.0);
    input.extend_from_slice(&db.to_be_bytes());
    StreamId(keccak256(&input))
}

/// Why `SWAPDB` is refused, in its error reply.
pub const SWAPDB_REFUSED: &str = "ERR SWAPDB is not supported: each database is a stream of the log, \
     and swapping two would rewrite every key of both";

impl Session {
    /// The database `db` names, if the server has it.
    pub(super) fn database(&self, db: i64) -> Option<u32> {
        u32::try_from(db).ok().filter(|db| *db < self.shared.config.databases)
    }

    /// `SELECT db`: later commands of the connection use its stream.
    pub(super) fn select(&mut self, db: i64) -> Reply {
        let Some(db) = self.database(db) else {
            return Reply::Error("ERR DB index is out of range".into());
        };
        self.db = db;
        self.stream = stream_of(&self.shared.config.stream, db);
        self.client.set_db(db);
        Reply::ok()
    }

    /// Where a `COPY … DB n` goes: `None` for a plain `COPY` (no `DB`, or
    /// the selected database and two names), the refusal of one that
    /// cannot run, else the other database.
    fn copy_db(&self, command: &Command) -> Option<Result<u32, Reply>> {
        let Command::Copy { from, to, db: Some(db), .. } = command else {
            return None;
        };
        match self.database(*db) {
            None => Some(Err(Reply::Error("ERR DB index is out of range".into()))),
            Some(db) if db == self.db => (from == to).then(|| Err(Reply::from(&CommandError::SameObject))),
            Some(db) => Some(Ok(db)),
        }
    }

    /// `COPY src dst [REPLACE] DB n` into another database than the
    /// selected one (or its refusal); `None` for a plain `COPY`.
    pub(super) async fn copy_across(&mut self, command: &Command) -> Option<Reply> {
        let db = match self.copy_db(command)? {
            Ok(db) => db,
            Err(refused) => return Some(refused),
        };
        let Command::Copy { from, to, replace, .. } = command else {
            unreachable!("copy_db answers only for COPY")
        };
        let target = stream_of(&self.shared.config.stream, db);
        let replace = *replace;
        let plan = |value: Bytes, expiry: Option<u64>, exists: bool| {
            let cond = if replace { PutCond::Always } else { PutCond::IfAbsent };
            let op = put(value, cond, expiry);
            (replace || !exists).then(|| vec![BodyWrite { stream: target, key: to.to_vec(), op }])
        };
        Some(self.across(from, (target, to), plan).await)
    }

    /// Why a `COPY … DB n` queued in a `MULTI` block cannot run there, if
    /// it cannot: one into another database is a transaction of its own.
    pub(super) fn copy_refused_in_block(&self, command: &Command) -> Option<Reply> {
        match self.copy_db(command)? {
            Err(refused) => Some(refused),
            Ok(_) => Some(Reply::Error(
                "ERR COPY to another database inside MULTI is not supported: it is a transaction of its own"
                    .into(),
            )),
        }
    }

    /// `FLUSHALL`: one transaction flushing every database's stream.
    pub(super) async fn flush_all(&mut self) -> Reply {
        let base = self.shared.config.stream;
        let writes = (0..self.shared.config.databases)
            .map(|db| BodyWrite { stream: stream_of(&base, db), key: FLUSH_KEY.to_vec(), op: Op::Flush })
            .collect();
        let body = Body { version: u64::MAX, writes, ..Body::default() };
        match self.commit_one(body).await {
            Ok(TxResult::Commit) => Reply::ok(),
            Ok(other) => writes::not_committed(Some(&other)),
            Err(reply) => reply,
        }
    }

    /// `MOVE key db`: copies the key's value and expiry to database `db`
    /// if it has no such key there, and deletes it here, atomically: 1 if
    /// moved, else 0. The value is read here and the transaction is
    /// conditional on both keys being unchanged since (read set), so a
    /// write in between makes it retry rather than move a stale value.
    pub(super) async fn move_key(&mut self, key: Bytes, db: i64) -> Reply {
        let Some(db) = self.database(db) else {
            return Reply::Error("ERR DB index is out of range".into());
        };
        if db == self.db {
            return Reply::Error("ERR source and destination objects are the same".into());
        }
        let (source, target) = (self.stream, stream_of(&self.shared.config.stream, db));
        let plan = |value: Bytes, expiry: Option<u64>, exists: bool| {
            (!exists).then(|| {
                vec![
                    BodyWrite {
                        stream: target,
                        key: key.to_vec(),
                        op: put(value, PutCond::IfAbsent, expiry),
                    },
                    BodyWrite { stream: source, key: key.to_vec(), op: Op::DeleteIfPresent },
                ]
            })
        };
        self.across(&key, (target, &key), plan).await
    }

    /// `MOVE` and `COPY … DB n`: reads `from` in the selected database
    /// (value and expiry) and whether `to` exists in `target`, at the
    /// newest version, and commits what `plan` makes of them (`None`:
    /// nothing to do, answered 0) as one transaction conditional on both
    /// keys being unchanged since (read set); a write in between makes it
    /// read again, so a stale value is never copied. 1 once committed.
    async fn across(
        &self,
        from: &Bytes,
        (target, to): (StreamId, &Bytes),
        plan: impl Fn(Bytes, Option<u64>, bool) -> Option<Vec<BodyWrite>>,
    ) -> Reply {
        let config = &self.shared.config;
        let keys = [(from.clone(), Op::Get), (to.clone(), Op::Get)];
        if let Some(refused) =
            writes::check_limits(&keys, config.store.max_key_bytes, config.store.max_value_bytes)
        {
            return refused;
        }
        let (source, node) = (self.stream, self.shared.node.clone());
        for _ in 0..ACROSS_ATTEMPTS {
            let version = node.replay_progress().applied_version;
            // Moving a collection's elements across databases is not built
            // yet (checked at the version the read set pins).
            match View::new(&node, source, Some(version)).held(from) {
                Ok(Held::Coll(kind)) => {
                    return Reply::Error(format!(
                        "ERR MOVE or COPY of a {} to another database is not supported yet",
                        kind.name()
                    ))
                }
                Ok(_) => {}
                Err(e) => return writes::node_error(&e),
            }
            let read = || -> Result<_, logkv_runtime::node::NodeError> {
                let Some((value, _)) = node.get(&source, from, Some(version))? else {
                    return Ok(None);
                };
                let exists = node.get(&target, to, Some(version))?.is_some();
                Ok(Some((Bytes::from(value), node.expires_at(&source, from, Some(version))?, exists)))
            };
            let writes = match read() {
                Ok(Some((value, expiry, exists))) => match plan(value, expiry, exists) {
                    Some(writes) => writes,
                    None => return Reply::Integer(0),
                },
                Ok(None) => return Reply::Integer(0),
                Err(e) => return writes::node_error(&e),
            };
            let reads =
                vec![Read { stream: source, key: from.to_vec() }, Read { stream: target, key: to.to_vec() }];
            let body = Body { version, check_reads_only: true, reads, writes, controls: Vec::new() };
            match self.commit_one(body).await {
                Ok(TxResult::Commit) => return Reply::Integer(1),
                Ok(TxResult::VersionConfliction) => continue,
                Ok(other) => return writes::not_committed(Some(&other)),
                Err(reply) => return reply,
            }
        }
        Reply::Error(format!("ERR gave up: the keys changed under the command {ACROSS_ATTEMPTS} times"))
    }

    /// Commits one transaction of the connection's signer: its result, or
    /// the error reply when it was not applied.
    async fn commit_one(&self, body: Body) -> Result<TxResult, Reply> {
        let applied =
            self.shared.append(self.signer.clone(), vec![body]).await.map_err(|e| writes::node_error(&e))?;
        match applied.outcome {
            EntryOutcome::Applied(results) => match results.into_iter().next().flatten() {
                Some(result) => Ok(result),
                None => Err(writes::not_committed(None)),
            },
            other => Err(Reply::Error(format!("ERR entry not applied: {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_0_is_the_base_stream_and_the_others_are_distinct() {
        let base = StreamId([7; 32]);
        assert_eq!(stream_of(&base, 0), base);
        let derived: std::collections::BTreeSet<StreamId> = (1..64).map(|db| stream_of(&base, db)).collect();
        assert_eq!(derived.len(), 63);
        assert!(!derived.contains(&base));
        assert_ne!(stream_of(&StreamId([8; 32]), 1), stream_of(&base, 1), "each base has its own");
    }

    /// The derivation is part of what a data directory means: these bytes
    /// must not change, or database 1 of existing data would move.
    #[test]
    fn derived_streams_are_pinned() {
        let base: StreamId =
            "0x1111111111111111111111111111111111111111111111111111111111111111".parse().unwrap();
        assert_eq!(
            stream_of(&base, 1).to_string(),
            "0x020a0f355104fde97dfee7862f26975b4b2cf7966f3faa5e66782a7dcfed63ef"
        );
    }
}
