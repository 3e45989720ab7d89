//! Applying whole entries in log order: the signature, the protocol version,
//! the expiry sweep (from protocol 5 on, [`crate::sweep`]), anti-replay,
//! then each transaction through [`apply_tx`].
//!
//! Anti-replay is kept per sender *and stream*: a transaction is `Replayed`
//! when the entry's nonce was already used by this sender on one of its
//! tagged streams. A window per sender alone would make a node that watches
//! fewer streams disagree with a wider one on streams never written together
//! (an entry it skipped would not have used the nonce there). All
//! transactions of an entry are checked against the windows as they were
//! before the entry, then the entry's nonce is recorded.
//!
//! The windows are the state a stranger grows most cheaply (a fresh key and
//! a stream cost nothing), so their [`Quotas`] are checked here: a
//! transaction whose new windows would not fit is `QuotaExceeded` and
//! records none.

use std::collections::BTreeMap;

use crate::apply::{
    apply_tx, OpAnswer, StateView, TxEffects, TxInput, TxResult, Watched, DEFAULT_VERSION_CHECK_HORIZON,
};
use crate::codec::native::{Native, NativeCompact};
use crate::codec::{zerog::ZeroG, Codec, Decoded, ParseError};
use crate::envelope::{EntryView, EnvelopeError, Protocol};
use crate::nonce::NonceWindow;
use crate::quota::{Quota, Quotas};
use crate::sweep;
use crate::types::{tx_version, Address, StreamId};

/// Stands in for a codec this node does not know: every body is a parse
/// error, reported in its place in the check order (after the sender check,
/// which does not read the body).
struct UnknownCodec(u8);

impl Codec for UnknownCodec {
    fn id(&self) -> u8 {
        self.0
    }

    fn name(&self) -> &'static str {
        "unknown"
    }

    fn decode(&self, _body: &[u8], _tags: &[StreamId]) -> Result<Decoded, ParseError> {
        Err(ParseError::invalid(format!("unknown codec {}", self.0)))
    }
}

/// A state apply can read and commit to.
pub trait State: StateView {
    /// Records the result of the transaction at `version` and, if it
    /// committed, its effects; `body` is the body the effects refer into,
    /// which starts `body_offset` bytes into the entry (so a state that
    /// keeps the entry can point at a value inside it instead of copying it).
    fn commit(&mut self, version: u64, body: &[u8], body_offset: usize, effects: &TxEffects);
    /// Told before the transactions of the entry at `position` apply: its
    /// log time, for a state that answers [`StateView::log_time_of`] itself.
    fn begin_entry(&mut self, _position: u64, _log_time_ms: u64) {}
    /// The streams whose expiry queue holds a key (before the entry).
    fn expiring_streams(&self) -> Vec<StreamId>;
    /// Up to `limit` keys of `stream` whose value expired before `now`,
    /// earliest expiry first (equal ones by keccak256 of the key), as the
    /// newest sequenced state holds them: what the sweep deletes.
    fn due_expiries(&mut self, stream: &StreamId, now: u64, limit: usize) -> Vec<Vec<u8>>;
    /// Deletes an expired key at `version` (the sweep): its value, its
    /// expiry and its place in the queue, as a `Delete` would.
    fn delete_expired(&mut self, version: u64, stream: &StreamId, key: &[u8]);
}

/// What happened to an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// The transactions were applied (or skipped: `None` where a tag is not
    /// watched), in order, each at `tx_version(position, index)`.
    Applied(Vec<Option<TxResult>>),
    /// Not a well-formed entry: nothing applies and no result is recorded
    /// (every node judges the same bytes the same way).
    Malformed(EnvelopeError),
    /// Written by a newer protocol: apply must stop here until logkv is
    /// upgraded. Every node stops at the same position, so none diverges.
    UpgradeNeeded(EnvelopeError),
}

/// Applies entries: the codecs it knows, the streams it watches, the
/// version-check horizon, the quotas and the anti-replay windows.
pub struct Applier {
    codecs: BTreeMap<u8, Box<dyn Codec>>,
    watched: Watched,
    horizon: u64,
    quotas: Quotas,
    nonces: BTreeMap<(Address, StreamId), NonceWindow>,
}

impl Applier {
    /// An applier with the 0G and both native codecs, the default
    /// version-check horizon and the default quotas.
    pub fn new(watched: Watched) -> Self {
        let mut a = Self {
            codecs: BTreeMap::new(),
            watched,
            horizon: DEFAULT_VERSION_CHECK_HORIZON,
            quotas: Quotas::default(),
            nonces: BTreeMap::new(),
        };
        a.register(Box::new(ZeroG));
        a.register(Box::new(Native));
        a.register(Box::new(NativeCompact));
        a
    }

    /// The applier with another version-check horizon (log positions; see
    /// [`apply_tx`]), a protocol parameter: every node of a log must use
    /// the same.
    pub fn with_version_check_horizon(mut self, horizon: u64) -> Self {
        self.horizon = horizon;
        self
    }

    /// The applier with other quotas, a protocol parameter like the
    /// horizon: every node of a log must use the same.
    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// Windows held, over all senders and streams.
    pub fn window_count(&self) -> u64 {
        self.nonces.len() as u64
    }

    /// Windows `sender` holds, over all streams.
    fn windows_of(&self, sender: Address) -> u64 {
        let (first, last) = (StreamId([0; 32]), StreamId([0xff; 32]));
        self.nonces.range((sender, first)..=(sender, last)).count() as u64
    }

    /// Adds (or replaces) a codec, selected by its [`Codec::id`].
    pub fn register(&mut self, codec: Box<dyn Codec>) {
        self.codecs.insert(codec.id(), codec);
    }

    /// The streams this applier watches.
    pub fn watched(&self) -> &Watched {
        &self.watched
    }

    /// The anti-replay window of `sender` on `stream`, if it used a nonce there.
    pub fn nonce_window(&self, sender: &Address, stream: &StreamId) -> Option<NonceWindow> {
        self.nonces.get(&(*sender, *stream)).copied()
    }

    /// Every anti-replay window, by sender and stream (for checkpoints).
    pub fn nonce_windows(&self) -> impl Iterator<Item = (Address, StreamId, &NonceWindow)> + '_ {
        self.nonces.iter().map(|((a, s), w)| (*a, *s, w))
    }

    /// Sets (or, with `None`, forgets) the window of `sender` on `stream`:
    /// to restore windows from a checkpoint, or to undo an entry whose
    /// effects could not be stored.
    pub fn set_nonce_window(&mut self, sender: Address, stream: StreamId, window: Option<NonceWindow>) {
        match window {
            Some(w) => self.nonces.insert((sender, stream), w),
            None => self.nonces.remove(&(sender, stream)),
        };
    }

    /// Applies the entry at `position`, appended at `log_time_ms` (the
    /// log's time of the entry, which every node reads alike). `verified`
    /// says the caller already checked the signature (for example in
    /// parallel, or because these exact bytes are what this node verified
    /// and wrote); `None` checks it here.
    pub fn apply_entry(
        &mut self,
        state: &mut dyn State,
        position: u64,
        log_time_ms: u64,
        bytes: &[u8],
        verified: Option<bool>,
    ) -> EntryOutcome {
        self.apply_entry_answered(state, position, log_time_ms, bytes, verified).0
    }

    /// [`Applier::apply_entry`], also returning each transaction's op
    /// answers (empty for a transaction that did not commit or was
    /// skipped), for the writer waiting on the entry.
    pub fn apply_entry_answered(
        &mut self,
        state: &mut dyn State,
        position: u64,
        log_time_ms: u64,
        bytes: &[u8],
        verified: Option<bool>,
    ) -> (EntryOutcome, Vec<Vec<OpAnswer>>) {
        let entry = match EntryView::parse(bytes) {
            Ok(e) => e,
            Err(e) if e.needs_upgrade() => return (EntryOutcome::UpgradeNeeded(e), Vec::new()),
            Err(e) => return (EntryOutcome::Malformed(e), Vec::new()),
        };
        state.begin_entry(position, log_time_ms);
        if entry.protocol() >= Protocol::V5 {
            sweep::sweep(state, tx_version(position, 0), log_time_ms);
        }
        let genuine = verified.unwrap_or_else(|| entry.verify().is_ok());
        let sender = entry.sender();
        let watched: Vec<bool> = entry
            .txs()
            .iter()
            .map(|tx| !tx.tags.is_empty() && tx.tags.iter().all(|t| self.watched.contains(&t)))
            .collect();
        // Replay check against the windows as they were before this entry.
        let replayed: Vec<bool> = entry
            .txs()
            .iter()
            .map(|tx| {
                tx.tags.iter().any(|t| {
                    let mut w = self.nonces.get(&(sender, t)).cloned().unwrap_or_default();
                    w.check_and_record(entry.nonce()).is_err()
                })
            })
            .collect();
        // Then the nonce is recorded on the tags of each applied transaction
        // whose new windows fit the quotas, in order (earlier ones count).
        let mut refused: Vec<Option<Quota>> = vec![None; entry.txs().len()];
        if genuine {
            let mut of_sender = None;
            for (i, tx) in entry.txs().iter().enumerate().filter(|(i, _)| watched[*i]) {
                let new = tx.tags.iter().filter(|t| !self.nonces.contains_key(&(sender, *t))).count() as u64;
                if new > 0 {
                    let held = *of_sender.get_or_insert_with(|| self.windows_of(sender));
                    if let Err(quota) = self.quotas.admit_windows(self.window_count(), held, new) {
                        refused[i] = Some(quota);
                        continue;
                    }
                    of_sender = Some(held + new);
                }
                for t in tx.tags.iter() {
                    let _ = self.nonces.entry((sender, t)).or_default().check_and_record(entry.nonce());
                }
            }
        }
        let mut results = Vec::with_capacity(entry.txs().len());
        let mut answers = Vec::with_capacity(entry.txs().len());
        for (index, tx) in entry.txs().iter().enumerate() {
            if !watched[index] {
                results.push(None);
                answers.push(Vec::new());
                continue;
            }
            let version = tx_version(position, index as u16);
            let mut effects = if !genuine {
                TxEffects::failed(TxResult::BadSignature)
            } else if replayed[index] {
                TxEffects::failed(TxResult::Replayed)
            } else if let Some(quota) = refused[index] {
                TxEffects::failed(TxResult::QuotaExceeded(quota))
            } else {
                let unknown = UnknownCodec(tx.codec);
                let codec = self.codecs.get(&tx.codec).map_or(&unknown as &dyn Codec, |c| c.as_ref());
                let tags: Vec<StreamId> = tx.tags.iter().collect();
                let protocol = entry.protocol();
                let input =
                    TxInput { version, log_time_ms, sender, protocol, tags: &tags, codec, body: tx.body };
                apply_tx(state, &self.watched, self.horizon, &self.quotas, input)
                    .expect("watched transactions are never skipped")
            };
            state.commit(version, tx.body, tx.body_offset, &effects);
            answers.push(std::mem::take(&mut effects.answers));
            results.push(Some(effects.result));
        }
        (EntryOutcome::Applied(results), answers)
    }
}
