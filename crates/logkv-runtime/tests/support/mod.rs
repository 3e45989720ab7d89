//! Shared by the runtime's apply tests: signers, stream IDs, entries built
//! from 0G and native bodies, and a node (applier + in-memory state) that
//! numbers positions and nonces by itself.
// Each test binary uses only part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;

use logkv_runtime::apply::Watched;
use logkv_runtime::codec::{native, zerog, Control, ControlOp, Read, NATIVE, ZEROG};
use logkv_runtime::entry::{Applier, EntryOutcome};
use logkv_runtime::envelope::{Entry, Protocol, TxPart};
use logkv_runtime::mem_state::MemState;
use logkv_runtime::signing::{keccak256, Signer, SIGNATURE_LEN};
use logkv_runtime::types::{tx_version, Address, StreamId};

/// The signer with secret key `[n; 32]`.
pub fn signer(n: u8) -> Signer {
    Signer::from_secret_bytes([n; 32]).expect("[n; 32] with 0 < n < 0xff is a valid secp256k1 secret")
}

/// The stream `[n; 32]`.
pub fn stream(n: u8) -> StreamId {
    StreamId([n; 32])
}

/// A read of `key` in `stream`.
pub fn read(stream: StreamId, key: &[u8]) -> Read {
    Read { stream, key: key.to_vec() }
}

/// A 0G write (an empty value deletes).
pub fn zwrite(stream: StreamId, key: &[u8], value: &[u8]) -> zerog::BodyWrite {
    zerog::BodyWrite { stream, key: key.to_vec(), value: value.to_vec() }
}

/// A native write.
pub fn nwrite(stream: StreamId, key: &[u8], op: native::Op) -> native::BodyWrite {
    native::BodyWrite { stream, key: key.to_vec(), op }
}

/// An access-control op; `key` and `account` only where the op has them.
pub fn control(op: ControlOp, stream: StreamId, key: Option<&[u8]>, account: Option<Address>) -> Control {
    Control { op, stream, key: key.map(<[u8]>::to_vec), account }
}

/// A 0G transaction tagged with the streams its body writes or controls.
pub fn zerog_tx(body: &zerog::Body) -> TxPart {
    TxPart { codec: ZEROG, tags: body.tags(), body: zerog::encode(body) }
}

/// A native transaction tagged with the streams its body writes or controls.
pub fn native_tx(body: &native::Body) -> TxPart {
    TxPart { codec: NATIVE, tags: body.tags(), body: native::encode(body) }
}

/// A 0G transaction of writes only, with no version check.
pub fn puts(writes: Vec<zerog::BodyWrite>) -> TxPart {
    zerog_tx(&zerog::Body { version: u64::MAX, writes, ..zerog::Body::default() })
}

/// A 0G transaction of controls only.
pub fn controls(controls: Vec<Control>) -> TxPart {
    zerog_tx(&zerog::Body { version: u64::MAX, controls, ..zerog::Body::default() })
}

/// An entry signed by its sender (protocol 1, as external clients write).
pub fn signed(signer: &Signer, nonce: u64, txs: Vec<TxPart>) -> Vec<u8> {
    signed_as(Protocol::V1, signer, nonce, txs)
}

/// An entry in `protocol` signed by its sender.
pub fn signed_as(protocol: Protocol, signer: &Signer, nonce: u64, txs: Vec<TxPart>) -> Vec<u8> {
    let entry = Entry { sender: signer.address(), nonce, txs };
    entry.encode_signed_as(protocol, signer).expect("a small entry encodes")
}

/// The same bytes with the signature replaced by `forger`'s over the same
/// digest: well-formed, but it recovers to the forger, not the sender.
pub fn forged(entry: &[u8], forger: &Signer) -> Vec<u8> {
    let (unsigned, _) = entry.split_at(entry.len() - SIGNATURE_LEN);
    let mut out = unsigned.to_vec();
    out.extend_from_slice(&forger.sign_digest(&keccak256(unsigned)));
    out
}

/// Result strings of an applied entry (`None` for skipped transactions).
pub fn result_strings(outcome: &EntryOutcome) -> Vec<Option<String>> {
    match outcome {
        EntryOutcome::Applied(results) => {
            results.iter().map(|r| r.as_ref().map(ToString::to_string)).collect()
        }
        other => panic!("expected the entry to apply, got {other:?}"),
    }
}

/// An applier and its state, applying entries at positions 1, 2, 3, ...
/// with a fresh nonce per sender each time.
pub struct Node {
    /// The state.
    pub state: MemState,
    /// The applier.
    pub applier: Applier,
    position: u64,
    nonces: BTreeMap<Address, u64>,
}

impl Default for Node {
    fn default() -> Self {
        Self::watching(Watched::All)
    }
}

impl Node {
    /// A node applying the streams in `watched`.
    pub fn watching(watched: Watched) -> Self {
        Self {
            state: MemState::default(),
            applier: Applier::new(watched),
            position: 0,
            nonces: BTreeMap::new(),
        }
    }

    /// Applies raw entry bytes at the next position.
    pub fn apply(&mut self, bytes: &[u8]) -> EntryOutcome {
        self.position += 1;
        self.applier.apply_entry(&mut self.state, self.position, 0, bytes, None)
    }

    /// The next nonce of `signer` (1, 2, 3, ...).
    pub fn next_nonce(&mut self, signer: &Signer) -> u64 {
        let n = self.nonces.entry(signer.address()).or_default();
        *n += 1;
        *n
    }

    /// Signs `txs` as `signer` with its next nonce and applies them; the
    /// result string of each transaction (`None` when skipped).
    pub fn try_run(&mut self, signer: &Signer, txs: Vec<TxPart>) -> Vec<Option<String>> {
        let nonce = self.next_nonce(signer);
        let bytes = signed(signer, nonce, txs);
        result_strings(&self.apply(&bytes))
    }

    /// As [`Node::try_run`] for a single transaction that is not skipped.
    pub fn run(&mut self, signer: &Signer, tx: TxPart) -> String {
        let mut results = self.try_run(signer, vec![tx]);
        assert_eq!(results.len(), 1);
        results.pop().flatten().expect("the transaction was not skipped")
    }

    /// The position of the last entry applied.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The version of transaction `index` of the last entry applied.
    pub fn version(&self, index: u16) -> u64 {
        tx_version(self.position, index)
    }
}
