//! The read methods (0G's `kv_*` and `kv_getHistory`), typed.
//!
//! Values come in pages of at most [`MAX_QUERY_LEN_BYTES`], the server's
//! limit; the calls that return a value read every page of it as of one
//! version, so a write landing meanwhile never mixes into one answer. A
//! scan reads all its keys as of one version too.

use logkv_runtime::node::{KeyValue, ReplayProgress};
use std::ops::Bound;
use std::time::Duration;

use futures_util::stream::{self, Stream};
use logkv_runtime::types::{Address, StreamId};
use logkv_store::{HistoryEntry, ScanOptions};
use serde_json::{json, Value};

use crate::answer::{as_array, as_bool, base64, bool_field, bytes_field, u64_field};
use crate::error::{Error, Result};
use crate::Client;

/// Largest page of a value one call may ask for: 0G's
/// `max_query_len_in_bytes`, which the server enforces.
pub const MAX_QUERY_LEN_BYTES: u64 = 262_144;

/// The longest `kv_waitForVersion` the server waits.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// One page of a value: `kv_getValue`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The version that wrote the value (a delete's for a deleted key, 0
    /// for a key never written).
    pub version: u64,
    /// The bytes asked for, clamped to the value's end.
    pub data: Vec<u8>,
    /// The whole value's size.
    pub size: u64,
}

/// A value and the version that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    pub version: u64,
}

/// A live key's version and value size, without its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueMeta {
    pub version: u64,
    pub size: u64,
}

/// A key found by one iteration call: its first page.
struct Found {
    key: Vec<u8>,
    first_page: Vec<u8>,
    size: u64,
    version: u64,
}

impl Client {
    /// Whether the server answers (`kv_getStatus`).
    pub async fn status(&self) -> Result<bool> {
        let method = "kv_getStatus";
        as_bool(method, &self.call(method, json!([])).await?)
    }

    /// The raw `kv_getValue`: `len` bytes of `key`'s value from `start`
    /// (`len` at most [`MAX_QUERY_LEN_BYTES`]) as of `at` (the newest if
    /// `None`). [`Client::get`] reads a whole value.
    pub async fn get_page(
        &self,
        stream: &StreamId,
        key: &[u8],
        start: u64,
        len: u64,
        at: Option<u64>,
    ) -> Result<Page> {
        let method = "kv_getValue";
        let page = self.call(method, json!([stream.to_string(), base64(key), start, len, at])).await?;
        Ok(Page {
            version: u64_field(method, &page, "version")?,
            data: bytes_field(method, &page, "data")?,
            size: u64_field(method, &page, "size")?,
        })
    }

    /// `key`'s whole value as of `at` (the newest if `None`) and the
    /// version that wrote it; `None` if it has none (never written, or
    /// deleted).
    pub async fn get(&self, stream: &StreamId, key: &[u8], at: Option<u64>) -> Result<Option<Versioned>> {
        let Some(meta) = self.meta(stream, key, at).await? else { return Ok(None) };
        let value =
            self.rest_of_value(stream, key, Vec::new(), meta.size, at.unwrap_or(meta.version)).await?;
        Ok(Some(Versioned { value, version: meta.version }))
    }

    /// The version and size of `key`'s live value as of `at`, if it has
    /// one, without reading its bytes.
    pub async fn meta(&self, stream: &StreamId, key: &[u8], at: Option<u64>) -> Result<Option<ValueMeta>> {
        let page = self.get_page(stream, key, 0, 0, at).await?;
        if page.version == 0 {
            return Ok(None);
        }
        let meta = ValueMeta { version: page.version, size: page.size };
        if page.size > 0 {
            return Ok(Some(meta));
        }
        // Size 0 is both an empty value and a delete; iteration skips
        // deleted keys, so the key is live if it finds the key itself.
        let found = self.step(stream, false, Some((key, true)), Some(page.version), 0).await?;
        Ok(found.is_some_and(|f| f.key == key).then_some(meta))
    }

    /// The first live key after `key` (`inclusive`: `key` itself counts)
    /// as of `at`, with its whole value (`kv_getNext`).
    pub async fn next(
        &self,
        stream: &StreamId,
        key: &[u8],
        inclusive: bool,
        at: Option<u64>,
    ) -> Result<Option<KeyValue>> {
        self.iterate(stream, false, Some((key, inclusive)), at).await
    }

    /// The last live key before `key` (`inclusive`: `key` itself counts)
    /// as of `at`, with its whole value (`kv_getPrev`).
    pub async fn prev(
        &self,
        stream: &StreamId,
        key: &[u8],
        inclusive: bool,
        at: Option<u64>,
    ) -> Result<Option<KeyValue>> {
        self.iterate(stream, true, Some((key, inclusive)), at).await
    }

    /// The stream's first live key as of `at`, with its whole value
    /// (`kv_getFirst`).
    pub async fn first(&self, stream: &StreamId, at: Option<u64>) -> Result<Option<KeyValue>> {
        self.iterate(stream, false, None, at).await
    }

    /// The stream's last live key as of `at`, with its whole value
    /// (`kv_getLast`).
    pub async fn last(&self, stream: &StreamId, at: Option<u64>) -> Result<Option<KeyValue>> {
        self.iterate(stream, true, None, at).await
    }

    /// The live keys of `options`' range in its order, up to its limit,
    /// with their whole values, all read as of one version (`options.at`,
    /// or the newest when the scan starts). Each key costs a call or more:
    /// the server has no range method, so this walks `kv_getNext`.
    pub fn scan(
        &self,
        stream: StreamId,
        options: ScanOptions,
    ) -> impl Stream<Item = Result<KeyValue>> + Send + 'static {
        let scan = Scan { client: self.clone(), stream, at: options.at, options, last: None, count: 0 };
        stream::try_unfold(scan, |mut scan| async move {
            let kv = scan.next().await?;
            Ok(kv.map(|kv| (kv, scan)))
        })
    }

    /// `key`'s versions as of `at` (every one if `None`), newest first
    /// (`kv_getHistory`).
    pub async fn history(&self, stream: &StreamId, key: &[u8], at: Option<u64>) -> Result<Vec<HistoryEntry>> {
        let method = "kv_getHistory";
        let list = self.call(method, json!([stream.to_string(), base64(key), at])).await?;
        as_array(method, &list)?
            .iter()
            .map(|item| {
                let size = u64_field(method, item, "size")?;
                Ok(HistoryEntry {
                    version: u64_field(method, item, "version")?,
                    deleted: bool_field(method, item, "deleted")?,
                    value_len: u32::try_from(size).map_err(|_| {
                        Error::bad_answer(method, format!("size {size} is larger than any value"))
                    })?,
                })
            })
            .collect()
    }

    /// The result string of the transaction at `version` (`"Commit"`,
    /// `"VersionConfliction"`, ...), or `None` if the node has not applied
    /// one there (`kv_getTransactionResult`).
    pub async fn transaction_result(&self, version: u64) -> Result<Option<String>> {
        let method = "kv_getTransactionResult";
        match self.call(method, json!([version])).await? {
            Value::Null => Ok(None),
            Value::String(result) => Ok(Some(result)),
            other => Err(Error::bad_answer(method, format!("expected a string or null, got {other}"))),
        }
    }

    /// The streams the node holds data of (`kv_getHoldingStreamIds`).
    pub async fn holding_stream_ids(&self) -> Result<Vec<StreamId>> {
        let method = "kv_getHoldingStreamIds";
        let ids = self.call(method, json!([])).await?;
        as_array(method, &ids)?
            .iter()
            .map(|id| {
                id.as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| Error::bad_answer(method, format!("{id} is not a stream id")))
            })
            .collect()
    }

    /// How far the node has applied its log (`kv_getReplayProgress`).
    pub async fn replay_progress(&self) -> Result<ReplayProgress> {
        let method = "kv_getReplayProgress";
        let progress = self.call(method, json!([])).await?;
        Ok(ReplayProgress {
            applied_position: u64_field(method, &progress, "appliedPosition")?,
            applied_version: u64_field(method, &progress, "appliedVersion")?,
        })
    }

    /// Waits until the node's readers see `version` (e.g. one written
    /// through another node of a shared log), at most `wait` (the server
    /// cuts it to 30 s; `None`: that longest wait); the version then
    /// visible. Running out of time is an [`Error::Rpc`] with code -32020
    /// (`kv_waitForVersion`).
    pub async fn wait_for_version(&self, version: u64, wait: Option<Duration>) -> Result<u64> {
        let method = "kv_waitForVersion";
        let wait = wait.map_or(MAX_WAIT, |w| w.min(MAX_WAIT));
        let params = json!([version, wait.as_millis() as u64]);
        // The call itself may take the wait and then a normal call's time.
        let answer = self.call_within(method, params, Some(wait + self.inner.timeout)).await?;
        u64_field(method, &answer, "appliedVersion")
    }

    /// Whether `account` may write `key` of `stream` as of `at`
    /// (`kv_hasWritePermission`).
    pub async fn has_write_permission(
        &self,
        account: &Address,
        stream: &StreamId,
        key: &[u8],
        at: Option<u64>,
    ) -> Result<bool> {
        let params = json!([account.to_string(), stream.to_string(), base64(key), at]);
        self.boolean("kv_hasWritePermission", params).await
    }

    /// Whether `account` is an admin of `stream` as of `at` (`kv_isAdmin`).
    pub async fn is_admin(&self, account: &Address, stream: &StreamId, at: Option<u64>) -> Result<bool> {
        self.boolean("kv_isAdmin", json!([account.to_string(), stream.to_string(), at])).await
    }

    /// Whether `key` of `stream` is special (written only by its special
    /// writers) as of `at` (`kv_isSpecialKey`).
    pub async fn is_special_key(&self, stream: &StreamId, key: &[u8], at: Option<u64>) -> Result<bool> {
        self.boolean("kv_isSpecialKey", json!([stream.to_string(), base64(key), at])).await
    }

    /// Whether `account` is a special writer of `key` as of `at`
    /// (`kv_isWriterOfKey`).
    pub async fn is_writer_of_key(
        &self,
        account: &Address,
        stream: &StreamId,
        key: &[u8],
        at: Option<u64>,
    ) -> Result<bool> {
        let params = json!([account.to_string(), stream.to_string(), base64(key), at]);
        self.boolean("kv_isWriterOfKey", params).await
    }

    /// Whether `account` is a writer of `stream` as of `at`
    /// (`kv_isWriterOfStream`).
    pub async fn is_writer_of_stream(
        &self,
        account: &Address,
        stream: &StreamId,
        at: Option<u64>,
    ) -> Result<bool> {
        self.boolean("kv_isWriterOfStream", json!([account.to_string(), stream.to_string(), at])).await
    }

    async fn boolean(&self, method: &str, params: Value) -> Result<bool> {
        as_bool(method, &self.call(method, params).await?)
    }

    /// The first (`reverse`: last) live key, or the next one after (before)
    /// `from` (`true`: `from` itself included), as of `at`, with the first
    /// `len` bytes of its value.
    async fn step(
        &self,
        stream: &StreamId,
        reverse: bool,
        from: Option<(&[u8], bool)>,
        at: Option<u64>,
        len: u64,
    ) -> Result<Option<Found>> {
        let stream = stream.to_string();
        let (method, params) = match (from, reverse) {
            (None, false) => ("kv_getFirst", json!([stream, 0, len, at])),
            (None, true) => ("kv_getLast", json!([stream, 0, len, at])),
            (Some((key, inclusive)), reverse) => (
                if reverse { "kv_getPrev" } else { "kv_getNext" },
                json!([stream, base64(key), 0, len, inclusive, at]),
            ),
        };
        let found = self.call(method, params).await?;
        if found.is_null() {
            return Ok(None);
        }
        Ok(Some(Found {
            key: bytes_field(method, &found, "key")?,
            first_page: bytes_field(method, &found, "data")?,
            size: u64_field(method, &found, "size")?,
            version: u64_field(method, &found, "version")?,
        }))
    }

    /// [`Client::step`] with the found key's whole value.
    async fn iterate(
        &self,
        stream: &StreamId,
        reverse: bool,
        from: Option<(&[u8], bool)>,
        at: Option<u64>,
    ) -> Result<Option<KeyValue>> {
        match self.step(stream, reverse, from, at, MAX_QUERY_LEN_BYTES).await? {
            Some(found) => Ok(Some(self.whole(stream, found, at).await?)),
            None => Ok(None),
        }
    }

    /// A found key with the rest of its value, read as of `at` (or of the
    /// version that wrote it, which holds the same value).
    async fn whole(&self, stream: &StreamId, found: Found, at: Option<u64>) -> Result<KeyValue> {
        let at = at.unwrap_or(found.version);
        let value = self.rest_of_value(stream, &found.key, found.first_page, found.size, at).await?;
        Ok(KeyValue { key: found.key, value, version: found.version })
    }

    /// Appends the bytes of `key`'s value from `data.len()` up to `size`,
    /// page by page, read as of `at`.
    async fn rest_of_value(
        &self,
        stream: &StreamId,
        key: &[u8],
        mut data: Vec<u8>,
        size: u64,
        at: u64,
    ) -> Result<Vec<u8>> {
        while (data.len() as u64) < size {
            let page = self.get_page(stream, key, data.len() as u64, MAX_QUERY_LEN_BYTES, Some(at)).await?;
            if page.data.is_empty() {
                let detail = format!("an empty page at byte {} of a {size}-byte value", data.len());
                return Err(Error::bad_answer("kv_getValue", detail));
            }
            data.extend_from_slice(&page.data);
        }
        Ok(data)
    }
}

/// Where a [`Client::scan`] is.
struct Scan {
    client: Client,
    stream: StreamId,
    options: ScanOptions,
    /// The version every key is read as of, once known.
    at: Option<u64>,
    /// The key returned last.
    last: Option<Vec<u8>>,
    count: usize,
}

impl Scan {
    async fn next(&mut self) -> Result<Option<KeyValue>> {
        let options = &self.options;
        if options.limit.is_some_and(|limit| self.count >= limit) {
            return Ok(None);
        }
        let at = match self.at {
            Some(at) => at,
            None => *self.at.insert(self.client.replay_progress().await?.applied_version),
        };
        let (from, to) =
            if options.reverse { (&options.end, &options.start) } else { (&options.start, &options.end) };
        let from = match (&self.last, from) {
            (Some(last), _) => Some((last.as_slice(), false)),
            (None, Bound::Included(k)) if !k.is_empty() => Some((k.as_slice(), true)),
            (None, Bound::Excluded(k)) if !k.is_empty() => Some((k.as_slice(), false)),
            // An empty key is below every key: nothing is before it.
            (None, Bound::Excluded(_)) if options.reverse => return Ok(None),
            (None, _) => None,
        };
        let client = &self.client;
        let Some(found) =
            client.step(&self.stream, options.reverse, from, Some(at), MAX_QUERY_LEN_BYTES).await?
        else {
            return Ok(None);
        };
        let within = match to {
            Bound::Unbounded => true,
            Bound::Included(k) if options.reverse => found.key >= *k,
            Bound::Excluded(k) if options.reverse => found.key > *k,
            Bound::Included(k) => found.key <= *k,
            Bound::Excluded(k) => found.key < *k,
        };
        if !within {
            return Ok(None);
        }
        let kv = client.whole(&self.stream, found, Some(at)).await?;
        self.last = Some(kv.key.clone());
        self.count += 1;
        Ok(Some(kv))
    }
}
