//! Redis databases as streams: database 0 is the configured stream, so
//! data written before databases existed stays where it was; database
//! `n > 0` is a stream derived from it ([`stream_of`]). `SELECT` changes
//! the stream a connection reads and writes; `FLUSHALL` flushes every
//! database's stream in one entry; `MOVE` is one conditional transaction
//! over two streams. `FLUSHDB` is an ordinary planned write (`writes`).

use logkv_runtime::apply::TxResult;
use logkv_runtime::codec::native::{Body, BodyWrite, Op};
use logkv_runtime::codec::{NewExpiry, PutCond, Read, FLUSH_KEY};
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::signing::keccak256;
use logkv_runtime::types::StreamId;

use super::{writes, Session};
use crate::resp::command::{Bytes, Command};
use crate::resp::reply::Reply;

/// What the derivation of a database's stream hashes first, so no other
/// use of keccak-256 in logkv can produce the same stream.
pub const DOMAIN: &[u8] = b"logkv:resp-database";

/// How many times `MOVE` retries when a key it read changed before its
/// transaction applied.
const MOVE_ATTEMPTS: usize = 16;

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

    /// Why `COPY … DB n` cannot run here, if it cannot: a database out of
    /// range, or another one than the selected (a copy across streams is
    /// not served yet; within the selected database it is a plain `COPY`).
    pub(super) fn copy_refused(&self, command: &Command) -> Option<Reply> {
        let Command::Copy { db: Some(db), .. } = command else {
            return None;
        };
        match self.database(*db) {
            None => Some(Reply::Error("ERR DB index is out of range".into())),
            Some(db) if db == self.db => None,
            Some(_) => Some(Reply::Error(
                "ERR COPY to another database is not supported by logkv yet (MOVE is)".into(),
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
        let config = &self.shared.config;
        if let Some(refused) = writes::check_limits(
            &[(key.clone(), Op::Get)],
            config.store.max_key_bytes,
            config.store.max_value_bytes,
        ) {
            return refused;
        }
        let (source, target) = (self.stream, stream_of(&config.stream, db));
        let node = self.shared.node.clone();
        for _ in 0..MOVE_ATTEMPTS {
            let version = node.replay_progress().applied_version;
            let read = || -> Result<_, logkv_runtime::node::NodeError> {
                let Some((value, _)) = node.get(&source, &key, Some(version))? else {
                    return Ok(None);
                };
                if node.get(&target, &key, Some(version))?.is_some() {
                    return Ok(None);
                }
                Ok(Some((value, node.expires_at(&source, &key, Some(version))?)))
            };
            let (value, expiry) = match read() {
                Ok(Some(found)) => found,
                Ok(None) => return Reply::Integer(0),
                Err(e) => return writes::node_error(&e),
            };
            let value = Bytes::from(value);
            let put = match expiry {
                Some(at) => Op::PutExpiring { value, cond: PutCond::IfAbsent, expiry: NewExpiry::At(at) },
                None => Op::PutIfAbsent(value),
            };
            let body = Body {
                version,
                check_reads_only: true,
                reads: vec![
                    Read { stream: source, key: key.to_vec() },
                    Read { stream: target, key: key.to_vec() },
                ],
                writes: vec![
                    BodyWrite { stream: target, key: key.to_vec(), op: put },
                    BodyWrite { stream: source, key: key.to_vec(), op: Op::DeleteIfPresent },
                ],
                controls: Vec::new(),
            };
            match self.commit_one(body).await {
                Ok(TxResult::Commit) => return Reply::Integer(1),
                Ok(TxResult::VersionConfliction) => continue,
                Ok(other) => return writes::not_committed(Some(&other)),
                Err(reply) => return reply,
            }
        }
        Reply::Error(format!("ERR MOVE gave up: the key changed under it {MOVE_ATTEMPTS} times"))
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
