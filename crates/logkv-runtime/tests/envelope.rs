//! Signed entries: what parses, what verifies, and that no bytes an attacker
//! can append make the parser panic or pass off altered content as signed.

use logkv_runtime::envelope::{Entry, EntryView, EnvelopeError, TxPart, MAGIC, MAX_TAGS, PROTOCOL_VERSION};
use logkv_runtime::signing::{keccak256, SignatureError, Signer};
use logkv_runtime::types::{StreamId, MAX_TXS_PER_ENTRY};
use proptest::prelude::*;

fn signer() -> Signer {
    Signer::from_secret_bytes([0x42; 32]).expect("a valid key")
}

fn sid(b: u8) -> StreamId {
    StreamId([b; 32])
}

fn sample() -> Entry {
    Entry {
        sender: signer().address(),
        nonce: 7,
        txs: vec![
            TxPart { codec: 0, tags: vec![sid(3), sid(1)], body: b"first body".to_vec() },
            TxPart { codec: 1, tags: vec![sid(2), sid(3), sid(3)], body: vec![] },
            TxPart { codec: 0x80, tags: vec![], body: vec![0xaa; 300] },
        ],
    }
}

fn encoded() -> Vec<u8> {
    sample().encode_signed(&signer()).expect("a valid entry encodes")
}

/// Offset of the entry's tag count: magic 4, version 2, sender 20, nonce 8.
const TAGS_AT: usize = 34;

#[test]
fn an_encoded_entry_parses_back_and_verifies() {
    let bytes = encoded();
    let view = EntryView::parse(&bytes).expect("parses");
    view.verify().expect("verifies");
    assert_eq!(view.protocol_version(), PROTOCOL_VERSION);
    assert_eq!(view.sender(), signer().address());
    assert_eq!(view.nonce(), 7);
    assert_eq!(view.tags().iter().collect::<Vec<_>>(), vec![sid(1), sid(2), sid(3)]);
    assert!(view.tags().contains(&sid(2)) && !view.tags().contains(&sid(4)));
    let txs = view.txs();
    assert_eq!(txs.len(), 3);
    assert_eq!(txs[0].tags.iter().collect::<Vec<_>>(), vec![sid(1), sid(3)], "tx tags are written sorted");
    assert_eq!(txs[1].tags.iter().collect::<Vec<_>>(), vec![sid(2), sid(3)], "and without duplicates");
    assert!(txs[2].tags.is_empty());
    assert_eq!((txs[0].codec, txs[1].codec, txs[2].codec), (0, 1, 0x80));
    assert_eq!(txs[0].body, b"first body");
    assert_eq!(view.as_bytes(), &bytes[..]);
    assert_eq!(&view.signature()[..], &bytes[bytes.len() - 65..]);
}

#[test]
fn body_offsets_point_at_the_bodies_inside_the_entry() {
    let bytes = encoded();
    let view = EntryView::parse(&bytes).expect("parses");
    for (tx, part) in view.txs().iter().zip(&sample().txs) {
        assert_eq!(&bytes[tx.body_offset..tx.body_offset + part.body.len()], &part.body[..]);
    }
    // magic 4 + version 2 + sender 20 + nonce 8 + tags (4 + 3 × 32) + tx count 4
    // + codec 1 + tags (4 + 2 × 32) + body_len 4.
    assert_eq!(view.txs()[0].body_offset, 34 + 100 + 4 + 1 + 68 + 4);
}

#[test]
fn layout_starts_with_magic_version_sender_and_nonce_big_endian() {
    let bytes = encoded();
    assert_eq!(&bytes[..4], b"LKVE");
    assert_eq!(&bytes[4..6], &[0, 1]);
    assert_eq!(&bytes[6..26], &signer().address().0);
    assert_eq!(&bytes[26..34], &[0, 0, 0, 0, 0, 0, 0, 7]);
    assert_eq!(&bytes[34..38], &[0, 0, 0, 3]);
}

#[test]
fn an_entry_with_no_transactions_is_well_formed() {
    let entry = Entry { sender: signer().address(), nonce: 0, txs: vec![] };
    let bytes = entry.encode_signed(&signer()).expect("encodes");
    assert_eq!(bytes.len(), 34 + 4 + 4 + 65);
    let view = EntryView::parse(&bytes).expect("parses");
    view.verify().expect("verifies");
    assert_eq!(view.to_entry(), entry);
}

#[test]
fn signing_for_another_sender_is_refused() {
    let mut entry = sample();
    entry.sender.0[0] ^= 1;
    assert!(matches!(entry.encode_signed(&signer()), Err(EnvelopeError::SenderMismatch { .. })));
}

#[test]
fn more_transactions_than_a_version_can_number_are_refused() {
    let mut entry = sample();
    entry.txs = vec![TxPart { codec: 0, tags: vec![], body: vec![] }; MAX_TXS_PER_ENTRY + 1];
    assert_eq!(
        entry.encode_signed(&signer()),
        Err(EnvelopeError::TooManyTxs { count: MAX_TXS_PER_ENTRY + 1, limit: MAX_TXS_PER_ENTRY })
    );
    // The parser refuses the count before reading any transaction.
    let mut bytes = Entry { sender: signer().address(), nonce: 0, txs: vec![] }
        .encode_signed(&signer())
        .expect("encodes");
    bytes[38..42].copy_from_slice(&(MAX_TXS_PER_ENTRY as u32 + 1).to_be_bytes());
    assert_eq!(
        EntryView::parse(&bytes),
        Err(EnvelopeError::TooManyTxs { count: MAX_TXS_PER_ENTRY + 1, limit: MAX_TXS_PER_ENTRY })
    );
}

#[test]
fn exactly_the_maximum_number_of_transactions_is_accepted() {
    let mut entry = sample();
    entry.txs = vec![TxPart { codec: 0, tags: vec![], body: vec![] }; MAX_TXS_PER_ENTRY];
    let bytes = entry.encode_signed(&signer()).expect("encodes");
    assert_eq!(EntryView::parse(&bytes).expect("parses").txs().len(), MAX_TXS_PER_ENTRY);
}

#[test]
fn a_huge_declared_tag_count_is_refused_without_reading_it() {
    let mut bytes = encoded();
    bytes[TAGS_AT..TAGS_AT + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        EntryView::parse(&bytes),
        Err(EnvelopeError::TooManyTags { count: u32::MAX as usize, limit: MAX_TAGS })
    );
}

#[test]
fn wrong_magic_is_not_an_entry() {
    let mut bytes = encoded();
    bytes[0] = b'X';
    assert_eq!(EntryView::parse(&bytes), Err(EnvelopeError::BadMagic { found: *b"XKVE" }));
    assert_eq!(MAGIC, *b"LKVE");
}

#[test]
fn a_newer_protocol_version_asks_for_an_upgrade_before_reading_further() {
    // Only the magic and version are read: the rest of a newer entry may
    // mean anything.
    let newer = [&MAGIC[..], &(PROTOCOL_VERSION + 1).to_be_bytes()[..], b"whatever comes next"].concat();
    let err = EntryView::parse(&newer).expect_err("newer version refused");
    assert_eq!(
        err,
        EnvelopeError::UnsupportedVersion { found: PROTOCOL_VERSION + 1, supported: PROTOCOL_VERSION }
    );
    assert!(err.needs_upgrade());
    assert!(err.to_string().contains("upgrade"), "{err}");

    let older = [&MAGIC[..], &0u16.to_be_bytes()[..]].concat();
    let err = EntryView::parse(&older).expect_err("version 0 refused");
    assert!(matches!(err, EnvelopeError::UnsupportedVersion { found: 0, .. }));
    assert!(!err.needs_upgrade());
}

#[test]
fn bytes_after_the_signature_are_refused() {
    let mut bytes = encoded();
    bytes.push(0);
    assert_eq!(EntryView::parse(&bytes), Err(EnvelopeError::TrailingBytes { count: 1 }));
}

#[test]
fn every_truncation_is_refused() {
    let bytes = encoded();
    for len in 0..bytes.len() {
        assert!(
            matches!(EntryView::parse(&bytes[..len]), Err(EnvelopeError::Truncated { .. })),
            "cut at {len}: {:?}",
            EntryView::parse(&bytes[..len])
        );
    }
}

fn put_tags(b: &mut Vec<u8>, tags: &[StreamId]) {
    b.extend_from_slice(&(tags.len() as u32).to_be_bytes());
    tags.iter().for_each(|t| b.extend_from_slice(&t.0));
}

/// A signed entry with one empty transaction, built by hand so that its tag
/// lists can break the rules the encoder keeps.
fn raw_entry(entry_tags: &[StreamId], tx_tags: &[StreamId]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    b.extend_from_slice(&signer().address().0);
    b.extend_from_slice(&1u64.to_be_bytes());
    put_tags(&mut b, entry_tags);
    b.extend_from_slice(&1u32.to_be_bytes());
    b.push(0);
    put_tags(&mut b, tx_tags);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&signer().sign_digest(&keccak256(&b)));
    b
}

#[test]
fn entry_tags_must_be_exactly_the_union_of_transaction_tags() {
    let ok = raw_entry(&[sid(1), sid(2)], &[sid(1), sid(2)]);
    EntryView::parse(&ok).expect("matching tags").verify().expect("signed");
    // An entry tag no transaction has: a node would skip or fetch the entry for nothing.
    assert_eq!(EntryView::parse(&raw_entry(&[sid(1), sid(2)], &[sid(1)])), Err(EnvelopeError::TagsMismatch));
    // A transaction tag the entry hides: a node would skip a write it must apply.
    assert_eq!(EntryView::parse(&raw_entry(&[sid(1)], &[sid(1), sid(2)])), Err(EnvelopeError::TagsMismatch));
}

#[test]
fn unsorted_or_duplicate_tags_are_refused() {
    assert_eq!(
        EntryView::parse(&raw_entry(&[sid(2), sid(1)], &[sid(1), sid(2)])),
        Err(EnvelopeError::UnsortedTags { tx: None })
    );
    assert_eq!(
        EntryView::parse(&raw_entry(&[sid(1), sid(2)], &[sid(1), sid(2), sid(2)])),
        Err(EnvelopeError::UnsortedTags { tx: Some(0) })
    );
}

#[test]
fn an_entry_signed_by_someone_else_is_a_bad_signature() {
    let mallory = Signer::from_secret_bytes([0x66; 32]).expect("a valid key");
    let mut entry = sample();
    entry.sender = mallory.address();
    let mut bytes = entry.encode_signed(&mallory).expect("encodes");
    // Claim the entry came from our signer instead.
    bytes[6..26].copy_from_slice(&signer().address().0);
    let err = EntryView::parse(&bytes).expect("well formed").verify().expect_err("forged sender");
    assert!(matches!(err, EnvelopeError::BadSignature(SignatureError::WrongSigner { .. })), "{err}");
}

#[test]
fn no_single_byte_change_yields_an_entry_that_verifies() {
    let bytes = encoded();
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut altered = bytes.clone();
            altered[at] ^= mask;
            let outcome = EntryView::parse(&altered).and_then(|v| v.verify());
            assert!(outcome.is_err(), "byte {at} ^ {mask:#x} still verifies");
        }
    }
}

#[test]
fn no_change_to_the_signature_byte_v_verifies_not_even_the_equivalent_0_or_1() {
    let bytes = encoded();
    let last = bytes.len() - 1;
    for v in (0..=255u8).filter(|&v| v != bytes[last]) {
        let mut altered = bytes.clone();
        altered[last] = v;
        let err = EntryView::parse(&altered)
            .expect("v does not change the framing")
            .verify()
            .expect_err("altered v");
        assert!(matches!(err, EnvelopeError::BadSignature(_)), "v = {v}: {err}");
    }
}

#[test]
fn a_changed_body_byte_parses_but_fails_verification() {
    let bytes = encoded();
    let offset = EntryView::parse(&bytes).expect("parses").txs()[2].body_offset;
    for at in offset..offset + 300 {
        let mut altered = bytes.clone();
        altered[at] ^= 0x10;
        let view = EntryView::parse(&altered).expect("a body byte does not change the framing");
        assert!(matches!(view.verify(), Err(EnvelopeError::BadSignature(_))), "byte {at}");
    }
}

fn tx_part() -> impl Strategy<Value = TxPart> {
    (any::<u8>(), prop::collection::vec(0u8..6, 0..4), prop::collection::vec(any::<u8>(), 0..40))
        .prop_map(|(codec, tags, body)| TxPart { codec, tags: tags.into_iter().map(sid).collect(), body })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(view) = EntryView::parse(&bytes) {
            let _ = view.verify();
        }
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(tail in prop::collection::vec(any::<u8>(), 0..400)) {
        let bytes = [&encoded()[..TAGS_AT], &tail[..]].concat();
        if let Ok(view) = EntryView::parse(&bytes) {
            let _ = view.verify();
        }
    }

    #[test]
    fn any_entry_round_trips_with_sorted_unique_tags(nonce in any::<u64>(), txs in prop::collection::vec(tx_part(), 0..5)) {
        let entry = Entry { sender: signer().address(), nonce, txs };
        let bytes = entry.encode_signed(&signer()).expect("encodes");
        let view = EntryView::parse(&bytes).expect("parses");
        prop_assert!(view.verify().is_ok());
        let mut expected = entry.clone();
        for tx in &mut expected.txs {
            tx.tags.sort();
            tx.tags.dedup();
        }
        prop_assert_eq!(view.to_entry(), expected.clone());
        let mut union: Vec<StreamId> = expected.txs.iter().flat_map(|t| t.tags.clone()).collect();
        union.sort();
        union.dedup();
        prop_assert_eq!(view.tags().iter().collect::<Vec<_>>(), union);
        // Re-encoding the parsed entry gives the same bytes: one meaning, one encoding.
        prop_assert_eq!(view.to_entry().encode_signed(&signer()).expect("encodes"), bytes);
    }

    #[test]
    fn random_flips_of_random_entries_never_verify(
        txs in prop::collection::vec(tx_part(), 0..4),
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let bytes = Entry { sender: signer().address(), nonce: 1, txs }.encode_signed(&signer()).expect("encodes");
        let mut altered = bytes.clone();
        altered[at.index(bytes.len())] ^= mask;
        prop_assert!(EntryView::parse(&altered).and_then(|v| v.verify()).is_err());
    }
}
