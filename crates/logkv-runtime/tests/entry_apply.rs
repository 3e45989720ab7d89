//! Whole entries through the applier: signature, anti-replay, versions.

use logkv_runtime::apply::TxResult;
use logkv_runtime::codec::zerog::{self, Body, BodyWrite};
use logkv_runtime::codec::ZEROG;
use logkv_runtime::entry::{Applier, EntryOutcome};
use logkv_runtime::envelope::{Entry, TxPart, PROTOCOL_VERSION};
use logkv_runtime::mem_state::MemState;
use logkv_runtime::signing::Signer;
use logkv_runtime::types::{tx_version, StreamId};

fn signer(n: u8) -> Signer {
    Signer::from_secret_bytes([n; 32]).expect("valid key")
}

fn put(stream: StreamId, key: &[u8], value: &[u8]) -> TxPart {
    let body = Body {
        version: u64::MAX,
        writes: vec![BodyWrite { stream, key: key.to_vec(), value: value.to_vec() }],
        ..Body::default()
    };
    TxPart { codec: ZEROG, tags: body.tags(), body: zerog::encode(&body) }
}

fn entry(signer: &Signer, nonce: u64, txs: Vec<TxPart>) -> Vec<u8> {
    Entry { sender: signer.address(), nonce, txs }.encode_signed(signer).expect("encodes")
}

#[test]
fn first_writer_becomes_admin_and_values_get_per_transaction_versions() {
    let (alice, s) = (signer(1), StreamId([7; 32]));
    let mut state = MemState::default();
    let mut applier = Applier::new(Default::default());
    let bytes = entry(&alice, 1, vec![put(s, b"a", b"1"), put(s, b"b", b"2")]);
    assert_eq!(
        applier.apply_entry(&mut state, 5, 0, &bytes, None),
        EntryOutcome::Applied(vec![Some(TxResult::Commit), Some(TxResult::Commit)])
    );
    assert!(state.acl_at(tx_version(5, 0)).is_admin(&alice.address(), &s));
    assert_eq!(state.get_at(&s, b"b", u64::MAX), Some((tx_version(5, 1), &b"2"[..])));
    assert_eq!(state.result(tx_version(5, 1)), Some("Commit"));
}

#[test]
fn a_forged_signature_applies_nothing() {
    let (alice, mallory, s) = (signer(1), signer(2), StreamId([7; 32]));
    let mut bytes = entry(&alice, 1, vec![put(s, b"a", b"1")]);
    // Claim to be Alice but sign as Mallory: replace the signature.
    let forged = entry(&mallory, 1, vec![]);
    let sig_at = bytes.len() - 65;
    bytes[sig_at..].copy_from_slice(&forged[forged.len() - 65..]);
    let mut state = MemState::default();
    let before = state.digest();
    let outcome = Applier::new(Default::default()).apply_entry(&mut state, 1, 0, &bytes, None);
    assert_eq!(outcome, EntryOutcome::Applied(vec![Some(TxResult::BadSignature)]));
    assert_eq!(state.get_at(&s, b"a", u64::MAX), None);
    assert_ne!(state.digest(), before, "the result is recorded");
    assert!(state.acl_at(u64::MAX).is_new(&s));
}

#[test]
fn a_replayed_entry_changes_nothing() {
    let (alice, s) = (signer(1), StreamId([7; 32]));
    let mut state = MemState::default();
    let mut applier = Applier::new(Default::default());
    let bytes = entry(&alice, 9, vec![put(s, b"a", b"1")]);
    applier.apply_entry(&mut state, 1, 0, &bytes, None);
    let later = entry(&alice, 10, vec![put(s, b"a", b"2")]);
    applier.apply_entry(&mut state, 2, 0, &later, None);
    assert_eq!(
        applier.apply_entry(&mut state, 3, 0, &bytes, None),
        EntryOutcome::Applied(vec![Some(TxResult::Replayed)])
    );
    assert_eq!(state.get_at(&s, b"a", u64::MAX), Some((tx_version(2, 0), &b"2"[..])));
}

#[test]
fn a_newer_protocol_version_stops_apply() {
    let alice = signer(1);
    let mut bytes = entry(&alice, 1, vec![]);
    bytes[4..6].copy_from_slice(&(PROTOCOL_VERSION + 1).to_be_bytes());
    let outcome = Applier::new(Default::default()).apply_entry(&mut MemState::default(), 1, 0, &bytes, None);
    assert!(matches!(outcome, EntryOutcome::UpgradeNeeded(_)), "{outcome:?}");
}
