//! Reads of a node, each "as of" a version (default: the newest visible):
//! values, iteration that skips deleted keys, results, permissions from
//! the stored access-control facts, digests and holding streams.

use logkv_store::{HistoryEntry, ScanOptions, ValueLocation};

use super::{bad, KeyValue, Node, Result};
use crate::digest::StateDigest;
use crate::system::{result_key, stream_of_key, FactOf, DIGEST_KEY, STREAM_PREFIX, SYSTEM_KEYSPACE};
use crate::types::{Address, StreamId};

impl Node {
    fn keyspace(&self, stream: &StreamId) -> Option<u32> {
        self.streams.read().get(stream).copied()
    }

    /// The value of `key` in `stream` as of `version` (default: the newest
    /// visible), with the version that wrote it.
    pub fn get(&self, stream: &StreamId, key: &[u8], version: Option<u64>) -> Result<Option<(Vec<u8>, u64)>> {
        let Some(ks) = self.keyspace(stream) else {
            return Ok(None);
        };
        let v = self.store.get_at_in(ks, key, version.unwrap_or(u64::MAX))?;
        Ok(v.map(|v| (v.data, v.version)))
    }

    /// Where the bytes of a value live (the file and offset inside the
    /// logged entry that wrote it, unless the node computed it).
    pub fn locate_value(
        &self,
        stream: &StreamId,
        key: &[u8],
        version: Option<u64>,
    ) -> Result<Option<ValueLocation>> {
        let Some(ks) = self.keyspace(stream) else {
            return Ok(None);
        };
        Ok(self.store.locate_in(ks, key, version.unwrap_or(u64::MAX))?)
    }

    fn first_in_range(
        &self,
        stream: &StreamId,
        options: ScanOptions,
        version: Option<u64>,
    ) -> Result<Option<KeyValue>> {
        let Some(ks) = self.keyspace(stream) else {
            return Ok(None);
        };
        let options = options.limit(1).at(version.unwrap_or(u64::MAX));
        let found = self.store.scan_in(ks, options).next().transpose()?;
        Ok(found.map(|(key, v)| KeyValue { key, value: v.data, version: v.version }))
    }

    /// The smallest live key of `stream` as of `version`.
    pub fn first(&self, stream: &StreamId, version: Option<u64>) -> Result<Option<KeyValue>> {
        self.first_in_range(stream, ScanOptions::default(), version)
    }

    /// The largest live key of `stream` as of `version`.
    pub fn last(&self, stream: &StreamId, version: Option<u64>) -> Result<Option<KeyValue>> {
        self.first_in_range(stream, ScanOptions::default().reverse(), version)
    }

    /// The first live key after `key` (or at it, if `inclusive`) as of
    /// `version`. Deleted keys are skipped, the one at `key` included.
    pub fn next(
        &self,
        stream: &StreamId,
        key: &[u8],
        inclusive: bool,
        version: Option<u64>,
    ) -> Result<Option<KeyValue>> {
        let start = bound(key, inclusive);
        self.first_in_range(stream, ScanOptions { start, ..ScanOptions::default() }, version)
    }

    /// The last live key before `key` (or at it, if `inclusive`) as of `version`.
    pub fn prev(
        &self,
        stream: &StreamId,
        key: &[u8],
        inclusive: bool,
        version: Option<u64>,
    ) -> Result<Option<KeyValue>> {
        let end = bound(key, inclusive);
        self.first_in_range(stream, ScanOptions { end, ..ScanOptions::default() }.reverse(), version)
    }

    /// The live keys of `stream` that `options` selects (range or prefix,
    /// direction, limit, `at` version; default: the newest visible), in
    /// key order (reversed if asked). Deleted keys are skipped.
    pub fn scan(
        &self,
        stream: &StreamId,
        options: ScanOptions,
    ) -> impl Iterator<Item = Result<KeyValue>> + '_ {
        let found = self.keyspace(stream).map(|ks| self.store.scan_in(ks, options));
        found.into_iter().flatten().map(|item| {
            let (key, v) = item?;
            Ok(KeyValue { key, value: v.data, version: v.version })
        })
    }

    /// Every visible version of `key` in `stream`, newest first: puts and
    /// deletes, with the value's length.
    pub fn history(&self, stream: &StreamId, key: &[u8]) -> Result<Vec<HistoryEntry>> {
        match self.keyspace(stream) {
            None => Ok(Vec::new()),
            Some(ks) => Ok(self.store.history_in(ks, key)?),
        }
    }

    /// The stored value of an access-control fact as of `version`, if it held.
    fn fact(&self, fact: &FactOf, version: Option<u64>) -> Result<bool> {
        let v = self.store.get_at_in(SYSTEM_KEYSPACE, &fact.key(), version.unwrap_or(u64::MAX))?;
        Ok(v.is_some_and(|v| fact.matches(&v.data)))
    }

    /// Whether `stream` had no access-control history as of `version`.
    pub fn is_new_stream(&self, stream: &StreamId, version: Option<u64>) -> Result<bool> {
        Ok(!self.fact(&FactOf::Claimed(*stream), version)?)
    }

    /// Whether `account` was an admin of `stream` as of `version`.
    pub fn is_admin(&self, account: &Address, stream: &StreamId, version: Option<u64>) -> Result<bool> {
        self.fact(&FactOf::Admin(*stream, *account), version)
    }

    /// Whether `account` was a writer of `stream` as of `version`.
    pub fn is_writer_of_stream(
        &self,
        account: &Address,
        stream: &StreamId,
        version: Option<u64>,
    ) -> Result<bool> {
        self.fact(&FactOf::Writer(*stream, *account), version)
    }

    /// Whether `account` was a special writer of `key` as of `version`.
    pub fn is_writer_of_key(
        &self,
        account: &Address,
        stream: &StreamId,
        key: &[u8],
        version: Option<u64>,
    ) -> Result<bool> {
        self.fact(&FactOf::SpecialWriter(*stream, key.to_vec(), *account), version)
    }

    /// Whether `key` was special as of `version`.
    pub fn is_special_key(&self, stream: &StreamId, key: &[u8], version: Option<u64>) -> Result<bool> {
        self.fact(&FactOf::SpecialKey(*stream, key.to_vec()), version)
    }

    /// Whether `account` could write `key` as of `version`: the stream was
    /// new or the account an admin; else a special key needed a special
    /// writer of it, a normal key a stream writer.
    pub fn has_write_permission(
        &self,
        account: &Address,
        stream: &StreamId,
        key: &[u8],
        version: Option<u64>,
    ) -> Result<bool> {
        // One version for every fact read, even if a newer one becomes visible meanwhile.
        let version = Some(version.unwrap_or_else(|| self.store.version()));
        if self.is_new_stream(stream, version)? || self.is_admin(account, stream, version)? {
            return Ok(true);
        }
        if self.is_special_key(stream, key, version)? {
            self.is_writer_of_key(account, stream, key, version)
        } else {
            self.is_writer_of_stream(account, stream, version)
        }
    }

    /// The result of the transaction at `version`, if one was recorded
    /// (and is visible).
    pub fn result(&self, version: u64) -> Result<Option<String>> {
        let key = result_key(version);
        let v = self.store.get_at_in(SYSTEM_KEYSPACE, &key, u64::MAX)?;
        v.map(|v| String::from_utf8(v.data).map_err(|_| bad(&key, "result is not UTF-8"))).transpose()
    }

    /// The state digest as of `version` (after the newest entry at or
    /// below it).
    pub fn digest_at(&self, version: Option<u64>) -> Result<StateDigest> {
        match self.store.get_at_in(SYSTEM_KEYSPACE, DIGEST_KEY, version.unwrap_or(u64::MAX))? {
            None => Ok(StateDigest::default()),
            Some(v) => Ok(StateDigest::from_bytes(
                v.data[..].try_into().map_err(|_| bad(DIGEST_KEY, "not 32 bytes"))?,
            )),
        }
    }

    /// Streams with data or access-control history, sorted.
    pub fn holding_stream_ids(&self) -> Result<Vec<StreamId>> {
        let mut out = Vec::new();
        for kv in self.store.scan_in(SYSTEM_KEYSPACE, ScanOptions::prefix(&[STREAM_PREFIX])) {
            let (key, _) = kv?;
            out.push(stream_of_key(&key).ok_or_else(|| bad(&key, "not a stream key"))?);
        }
        Ok(out)
    }
}

fn bound(key: &[u8], inclusive: bool) -> std::ops::Bound<Vec<u8>> {
    if inclusive {
        std::ops::Bound::Included(key.to_vec())
    } else {
        std::ops::Bound::Excluded(key.to_vec())
    }
}
