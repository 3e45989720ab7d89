//! Signed entries: what parses, what verifies, and that no bytes an attacker
//! can append make the parser panic or pass off altered content as signed —
//! in both protocols, and protocol 2's own spelling rules.

use logkv_runtime::envelope::{
    Entry, EntryView, EnvelopeError, Protocol, TxPart, MAGIC, MAX_TAGS, PROTOCOL_VERSION,
};
use logkv_runtime::signing::{keccak256, SignatureError, Signer};
use logkv_runtime::types::{StreamId, MAX_TXS_PER_ENTRY};
use logkv_runtime::varint::VarintError;
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

const PROTOCOLS: [Protocol; 7] =
    [Protocol::V1, Protocol::V2, Protocol::V3, Protocol::V4, Protocol::V5, Protocol::V6, Protocol::V7];

fn encoded_as(protocol: Protocol) -> Vec<u8> {
    sample().encode_signed_as(protocol, &signer()).expect("a valid entry encodes")
}

/// Offset of the entry's tag count: magic 4, version 2, sender 20, nonce 8.
const TAGS_AT: usize = 34;

#[test]
fn an_encoded_entry_parses_back_and_verifies() {
    for protocol in PROTOCOLS {
        parses_back_and_verifies(protocol);
    }
    assert_eq!(PROTOCOL_VERSION, 7);
}

fn parses_back_and_verifies(protocol: Protocol) {
    let bytes = encoded_as(protocol);
    let view = EntryView::parse(&bytes).expect("parses");
    view.verify().expect("verifies");
    assert_eq!(view.protocol(), protocol);
    assert_eq!(view.protocol_version(), protocol.version());
    assert_eq!(view.sender(), signer().address());
    assert_eq!(view.nonce(), 7);
    assert_eq!(view.tags().iter().collect::<Vec<_>>(), vec![sid(1), sid(2), sid(3)]);
    assert!(view.tags().contains(&sid(2)) && !view.tags().contains(&sid(4)));
    let txs = view.txs();
    assert_eq!(txs.len(), 3);
    assert_eq!(txs[0].tags.iter().collect::<Vec<_>>(), vec![sid(1), sid(3)], "tx tags are written sorted");
    assert_eq!(txs[1].tags.iter().collect::<Vec<_>>(), vec![sid(2), sid(3)], "and without duplicates");
    assert_eq!((txs[0].tags.len(), txs[0].tags.iter().len()), (2, 2));
    assert!(
        txs[0].tags.contains(&sid(3)) && !txs[0].tags.contains(&sid(2)) && !txs[0].tags.contains(&sid(4))
    );
    assert!(txs[2].tags.is_empty() && !txs[2].tags.contains(&sid(1)));
    assert_eq!((txs[0].codec, txs[1].codec, txs[2].codec), (0, 1, 0x80));
    assert_eq!(txs[0].body, b"first body");
    assert_eq!(view.as_bytes(), &bytes[..]);
    assert_eq!(&view.signature()[..], &bytes[bytes.len() - 65..]);
    for (tx, part) in view.txs().iter().zip(&sample().txs) {
        assert_eq!(&bytes[tx.body_offset..tx.body_offset + part.body.len()], &part.body[..]);
    }
    assert_eq!(view.to_entry().encode_signed_as(protocol, &signer()).expect("encodes"), bytes);
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
    assert_eq!(&bytes[4..6], &[0, 1], "protocol 1 unless asked otherwise");
    assert_eq!(&bytes[6..26], &signer().address().0);
    assert_eq!(&bytes[26..34], &[0, 0, 0, 0, 0, 0, 0, 7]);
    assert_eq!(&bytes[34..38], &[0, 0, 0, 3]);
}

#[test]
fn an_entry_with_no_transactions_is_well_formed() {
    let entry = Entry { sender: signer().address(), nonce: 0, txs: vec![] };
    for (protocol, counts) in [(Protocol::V1, 4 + 4), (Protocol::V2, 1 + 1)] {
        let bytes = entry.encode_signed_as(protocol, &signer()).expect("encodes");
        assert_eq!(bytes.len(), 34 + counts + 65);
        let view = EntryView::parse(&bytes).expect("parses");
        view.verify().expect("verifies");
        assert_eq!(view.to_entry(), entry);
    }
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
    let mut bytes = Entry { sender: signer().address(), nonce: 0, txs: Vec::<TxPart>::new() }
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

    // Any unknown level but 0 is newer, even past a gap.
    let far = [&MAGIC[..], &(PROTOCOL_VERSION + 7).to_be_bytes()[..], b"whatever comes next"].concat();
    assert!(EntryView::parse(&far).expect_err("a far newer level").needs_upgrade());

    let older = [&MAGIC[..], &0u16.to_be_bytes()[..]].concat();
    let err = EntryView::parse(&older).expect_err("version 0 refused");
    assert!(matches!(err, EnvelopeError::UnsupportedVersion { found: 0, .. }));
    assert!(!err.needs_upgrade());
}

#[test]
fn bytes_after_the_signature_are_refused() {
    for protocol in PROTOCOLS {
        let mut bytes = encoded_as(protocol);
        bytes.push(0);
        assert_eq!(EntryView::parse(&bytes), Err(EnvelopeError::TrailingBytes { count: 1 }));
    }
}

#[test]
fn every_truncation_is_refused() {
    for bytes in PROTOCOLS.map(encoded_as) {
        for len in 0..bytes.len() {
            assert!(
                matches!(EntryView::parse(&bytes[..len]), Err(EnvelopeError::Truncated { .. })),
                "cut at {len}: {:?}",
                EntryView::parse(&bytes[..len])
            );
        }
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
    b.extend_from_slice(&Protocol::V1.version().to_be_bytes());
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
    for bytes in PROTOCOLS.map(encoded_as) {
        no_single_byte_change_verifies(&bytes);
    }
}

fn no_single_byte_change_verifies(bytes: &[u8]) {
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut altered = bytes.to_vec();
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
    for bytes in PROTOCOLS.map(encoded_as) {
        let offset = EntryView::parse(&bytes).expect("parses").txs()[2].body_offset;
        for at in offset..offset + 300 {
            let mut altered = bytes.clone();
            altered[at] ^= 0x10;
            let view = EntryView::parse(&altered).expect("a body byte does not change the framing");
            assert!(matches!(view.verify(), Err(EnvelopeError::BadSignature(_))), "byte {at}");
        }
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
    fn random_bytes_behind_a_valid_header_never_panic(
        v2 in any::<bool>(), tail in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
        let bytes = [&encoded_as(protocol)[..TAGS_AT], &tail[..]].concat();
        if let Ok(view) = EntryView::parse(&bytes) {
            let _ = view.verify();
            // What parses is canonical: re-encoding gives the same bytes before the signature.
            let again = view.to_entry().encode_signed_as(protocol, &signer()).expect("encodes");
            prop_assert_eq!(&again[..again.len() - 65], &bytes[..bytes.len() - 65]);
        }
    }

    #[test]
    fn any_entry_round_trips_with_sorted_unique_tags(
        v2 in any::<bool>(), nonce in any::<u64>(), txs in prop::collection::vec(tx_part(), 0..5),
    ) {
        let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
        let entry = Entry { sender: signer().address(), nonce, txs };
        let bytes = entry.encode_signed_as(protocol, &signer()).expect("encodes");
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
        prop_assert_eq!(view.tags().iter().collect::<Vec<_>>(), union.clone());
        for (tx, part) in view.txs().iter().zip(&expected.txs) {
            prop_assert_eq!(tx.tags.iter().collect::<Vec<_>>(), part.tags.clone());
            prop_assert!(part.tags.iter().all(|t| tx.tags.contains(t)));
            prop_assert!(union.iter().filter(|t| !part.tags.contains(t)).all(|t| !tx.tags.contains(t)));
        }
        // Re-encoding the parsed entry gives the same bytes: one meaning, one encoding.
        prop_assert_eq!(view.to_entry().encode_signed_as(protocol, &signer()).expect("encodes"), bytes);
    }

    #[test]
    fn random_flips_of_random_entries_never_verify(
        v2 in any::<bool>(),
        txs in prop::collection::vec(tx_part(), 0..4),
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
        let bytes = Entry { sender: signer().address(), nonce: 1, txs }
            .encode_signed_as(protocol, &signer())
            .expect("encodes");
        let mut altered = bytes.clone();
        altered[at.index(bytes.len())] ^= mask;
        prop_assert!(EntryView::parse(&altered).and_then(|v| v.verify()).is_err());
    }
}

// ============================================================ protocol 2

/// `n` as a varint.
fn varint(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    logkv_runtime::varint::put(&mut out, n);
    out
}

#[test]
fn protocol_2_spells_counts_as_varints_and_tx_tags_as_indexes() {
    let bytes = encoded_as(Protocol::V2);
    let mut expected = [&MAGIC[..], &[0, 2], &signer().address().0, &7u64.to_be_bytes()].concat();
    expected.push(3);
    [1, 2, 3].iter().for_each(|&b| expected.extend_from_slice(&sid(b).0));
    expected.push(3);
    expected.extend_from_slice(&[0, 2, 0, 2, 10]); // codec 0, tags {1, 3} = indexes 0, 2, body_len 10
    expected.extend_from_slice(b"first body");
    expected.extend_from_slice(&[1, 2, 1, 2, 0]); // codec 1, tags {2, 3} = indexes 1, 2, empty body
    expected.extend_from_slice(&[0x80, 0, 0xac, 0x02]); // codec 0x80, no tags, body_len 300
    expected.extend_from_slice(&[0xaa; 300]);
    assert_eq!(&bytes[..bytes.len() - 65], &expected[..]);
    assert_eq!(EntryView::parse(&bytes).expect("parses").txs()[2].body_offset, expected.len() - 300);
}

#[test]
fn both_protocols_carry_the_same_entry() {
    let v1 = encoded_as(Protocol::V1);
    let v2 = encoded_as(Protocol::V2);
    let (a, b) = (EntryView::parse(&v1).expect("v1"), EntryView::parse(&v2).expect("v2"));
    assert_eq!(a.to_entry(), b.to_entry());
    assert_eq!(a.tags(), b.tags());
    assert!(a.txs().iter().zip(b.txs()).all(|(x, y)| x.tags == y.tags && x.body == y.body));
    assert!(v2.len() < v1.len());
}

/// A protocol 2 entry whose fields after the nonce are `tail` (then signed),
/// so that it can break the rules the encoder keeps.
fn raw_v2(tail: &[u8]) -> Vec<u8> {
    let mut b = [&MAGIC[..], &[0, 2], &signer().address().0, &1u64.to_be_bytes(), tail].concat();
    b.extend_from_slice(&signer().sign_digest(&keccak256(&b)));
    b
}

/// Entry tags `ids`, then one transaction of codec 0 with `tx_tags` (raw
/// bytes: count and indexes) and an empty body.
fn v2_tail(ids: &[u8], tx_tags: &[u8]) -> Vec<u8> {
    let mut t = varint(ids.len() as u64);
    ids.iter().for_each(|&b| t.extend_from_slice(&sid(b).0));
    t.extend_from_slice(&[1, 0]);
    t.extend_from_slice(tx_tags);
    t.push(0);
    t
}

#[test]
fn protocol_2_tag_indexes_must_ascend_strictly_and_stay_in_range() {
    let ok = raw_v2(&v2_tail(&[1, 2], &[2, 0, 1]));
    let view = EntryView::parse(&ok).expect("indexes 0, 1");
    view.verify().expect("signed");
    assert_eq!(view.txs()[0].tags.iter().collect::<Vec<_>>(), vec![sid(1), sid(2)]);
    let parse = |ids: &[u8], tx_tags: &[u8]| EntryView::parse(&raw_v2(&v2_tail(ids, tx_tags))).map(|_| ());
    assert_eq!(parse(&[1, 2], &[2, 0, 1]), Ok(()));
    assert_eq!(parse(&[1, 2], &[2, 1, 0]), Err(EnvelopeError::UnsortedTags { tx: Some(0) }));
    assert_eq!(parse(&[1, 2], &[2, 0, 0]), Err(EnvelopeError::UnsortedTags { tx: Some(0) }));
    assert_eq!(
        parse(&[1, 2], &[2, 0, 2]),
        Err(EnvelopeError::TagIndexOutOfRange { tx: 0, index: 2, count: 2 })
    );
    assert_eq!(
        parse(&[], &[1, 0x80, 0x80, 0x04]),
        Err(EnvelopeError::TagIndexOutOfRange { tx: 0, index: 1 << 16, count: 0 })
    );
    // The union rule: an entry tag no transaction names.
    assert_eq!(parse(&[1, 2], &[1, 0]), Err(EnvelopeError::TagsMismatch));
    // The entry's own list is written out, sorted and unique.
    assert_eq!(parse(&[2, 1], &[2, 0, 1]), Err(EnvelopeError::UnsortedTags { tx: None }));
    assert_eq!(parse(&[1, 1], &[2, 0, 1]), Err(EnvelopeError::UnsortedTags { tx: None }));
}

#[test]
fn protocol_2_refuses_varints_that_are_not_minimal() {
    let ok = v2_tail(&[1], &[1, 0]);
    EntryView::parse(&raw_v2(&ok)).expect("minimal");
    // Entry tag count, tx count, tx tag count, tag index, body length:
    // each padded to two bytes (`n | 0x80, 0`), which reads as the same number.
    let varints = [0, 33, 35, 36, 37];
    let what = ["tag count", "transaction count", "tag count", "tag index", "body length"];
    for (at, what) in varints.into_iter().zip(what) {
        let padded = [&ok[..at], &[ok[at] | 0x80, 0], &ok[at + 1..]].concat();
        let err = EntryView::parse(&raw_v2(&padded)).expect_err("padded varint");
        assert!(
            matches!(err, EnvelopeError::BadVarint { what: w, source: VarintError::NotMinimal, .. } if w == what),
            "{what}: {err:?}"
        );
    }
    let eleven = [&[0xff; 10][..], &[0x01]].concat();
    assert!(matches!(
        EntryView::parse(&raw_v2(&eleven)),
        Err(EnvelopeError::BadVarint { source: VarintError::Overflow, .. })
    ));
}

#[test]
fn protocol_2_counts_above_the_limits_are_refused_before_reading_on() {
    assert_eq!(
        EntryView::parse(&raw_v2(&varint(MAX_TAGS as u64 + 1))),
        Err(EnvelopeError::TooManyTags { count: MAX_TAGS + 1, limit: MAX_TAGS })
    );
    let txs = [&[0][..], &varint(MAX_TXS_PER_ENTRY as u64 + 1)].concat();
    assert_eq!(
        EntryView::parse(&raw_v2(&txs)),
        Err(EnvelopeError::TooManyTxs { count: MAX_TXS_PER_ENTRY + 1, limit: MAX_TXS_PER_ENTRY })
    );
    let tx_tags = [&v2_tail(&[1], &[])[..35], &varint(MAX_TAGS as u64 + 1)].concat();
    assert_eq!(
        EntryView::parse(&raw_v2(&tx_tags)),
        Err(EnvelopeError::TooManyTags { count: MAX_TAGS + 1, limit: MAX_TAGS })
    );
    let huge_body = [&v2_tail(&[1], &[1, 0])[..37], &varint(u64::MAX)].concat();
    assert!(matches!(
        EntryView::parse(&raw_v2(&huge_body)),
        Err(EnvelopeError::Truncated { what: "body", .. })
    ));
}

#[test]
fn a_set_in_a_protocol_2_entry_costs_129_bytes_instead_of_218() {
    use logkv_runtime::codec::native::{self, Body, BodyWrite, Op};
    let stream = sid(7);
    let set = |key: u8| Body {
        version: u64::MAX,
        check_reads_only: true,
        reads: vec![],
        writes: vec![BodyWrite { stream, key: vec![key; 16], op: Op::Put(vec![b'v'; 100].into()) }],
        controls: vec![],
    };
    let fixed = |key| TxPart {
        codec: logkv_runtime::codec::NATIVE,
        tags: vec![stream],
        body: native::encode(&set(key)),
    };
    let compact = |key| native::compact_tx(&set(key), [stream]);
    // What one more SET adds to an entry of the same stream (the entry's
    // header, tag list and signature are shared by the group commit).
    let per_set = |protocol: Protocol, tx: &dyn Fn(u8) -> TxPart| {
        let size = |n: u8| {
            let txs = (0..n).map(tx).collect();
            Entry { sender: signer().address(), nonce: 1, txs }
                .encode_signed_as(protocol, &signer())
                .unwrap()
                .len()
        };
        size(51) - size(50)
    };
    let before = per_set(Protocol::V1, &fixed);
    let after = per_set(Protocol::V2, &compact);
    println!("one SET (16-byte key, 100-byte value): {before} B in protocol 1 / codec 1, {after} B in protocol 2 / codec 2");
    // Protocol 1: codec 1, tag count 4, tag 32, body length 4; body 177.
    assert_eq!(before, 41 + 177);
    // Protocol 2: codec 1, tag count 1, tag index 1, body length 1; body 125.
    assert_eq!(after, 4 + 125);
}
