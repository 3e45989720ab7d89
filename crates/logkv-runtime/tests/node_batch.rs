//! The node's own entries: their hashes sparing a second verification
//! (only for the exact bytes), protocol 2 with values served from inside
//! the entry, and parallel verification of entries from another log.
//! (Local writes batched into shared entries: `pipeline.rs`.)

mod support;

use std::path::Path;
use std::sync::Arc;

use logkv_fs::{FileSystem, SimFs};
use logkv_runtime::apply::{TxResult, Watched};
use logkv_runtime::codec::native::{self, Body, Op};
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::envelope::{EntryView, Protocol};
use logkv_runtime::node::verify::{verify_entries, verify_one};
use logkv_runtime::node::{Node, NodeOptions};
use logkv_runtime::shared_log::LogEntry;
use logkv_runtime::types::tx_version;
use logkv_store::{Durability, LogConfig, RecoveryMode, StoreOptions};
use support::{forged, nwrite, puts, signed, signed_as, signer, stream, zwrite};

fn open_in(fs: Arc<dyn FileSystem>, dir: &Path, durability: Durability) -> Node {
    let log = LogConfig { segment_size_bytes: 1 << 20, durability, recovery: RecoveryMode::Strict };
    let store = StoreOptions { fs, log, ..StoreOptions::default() };
    Node::open(dir, NodeOptions { store, watched: Watched::All, ..NodeOptions::default() })
        .expect("open node")
}

fn open(fs: &SimFs, durability: Durability) -> Node {
    open_in(Arc::new(fs.clone()), Path::new("/node"), durability)
}

#[test]
fn own_entries_coming_back_are_not_verified_again_but_a_tampered_copy_is() {
    let fs = SimFs::new();
    let node = open(&fs, Durability::Always);
    let (me, s) = (signer(4), stream(7));
    let txs = vec![puts(vec![zwrite(s, b"k", b"value")])];
    node.append_entry(&me, txs.clone()).unwrap();
    // RFC 6979 signatures are deterministic: these are the bytes it wrote
    // (in protocol 2, as a node signs its own entries).
    let own = signed_as(Protocol::V2, &me, 1, txs);
    let a = node.apply_replicated(10, 0, &own, None).unwrap();
    assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Replayed)]), "its nonce was used");
    assert_eq!((node.signatures_verified(), node.verifications_skipped()), (0, 1));

    // One byte of the value changed, same sender: verified, and forged.
    let mut tampered = own.clone();
    let at = tampered.windows(5).position(|w| w == b"value").unwrap();
    tampered[at] = b'V';
    let a = node.apply_replicated(11, 0, &tampered, None).unwrap();
    assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::BadSignature)]));
    assert_eq!((node.signatures_verified(), node.verifications_skipped()), (1, 1));
    let a = node.apply_replicated(12, 0, &tampered, None).unwrap();
    assert_eq!(
        a.outcome,
        EntryOutcome::Applied(vec![Some(TxResult::BadSignature)]),
        "forged is not remembered"
    );
    assert_eq!((node.signatures_verified(), node.verifications_skipped()), (2, 1));

    // An entry it verified itself is remembered too.
    let other = signed(&signer(5), 1, vec![puts(vec![zwrite(stream(8), b"k", b"v")])]);
    node.apply_replicated(13, 0, &other, None).unwrap();
    node.apply_replicated(20, 0, &other, None).unwrap();
    assert_eq!((node.signatures_verified(), node.verifications_skipped()), (3, 2));
    // The batch path skips it as well, and verifies the tampered copy.
    node.apply_replicated_batch(&[entry(21, &own), entry(22, &tampered)]).unwrap();
    assert_eq!((node.signatures_verified(), node.verifications_skipped()), (4, 3));
}

#[test]
fn the_node_signs_protocol_2_and_serves_compact_values_from_inside_its_entries() {
    let fs = SimFs::new();
    let node = open(&fs, Durability::Always);
    let (me, s) = (signer(4), stream(7));
    let set = |key: &[u8], value: &[u8]| {
        let body = Body {
            version: u64::MAX,
            writes: vec![nwrite(s, key, Op::Put(value.to_vec().into()))],
            ..Body::default()
        };
        native::compact_tx(&body, [s])
    };
    let (bytes, _) = node.sign_entry(&me, vec![set(b"x", b"signed only")], Protocol::V2).unwrap();
    assert_eq!(EntryView::parse(&bytes).unwrap().protocol(), Protocol::V2);

    let a = node.append_entry(&me, vec![set(b"a", b"first"), set(b"b", &[7; 300])]).unwrap();
    assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit), Some(TxResult::Commit)]));
    assert_eq!(node.get(&s, b"a", None).unwrap(), Some((b"first".to_vec(), tx_version(a.position, 0))));
    assert_eq!(node.get(&s, b"b", None).unwrap(), Some((vec![7; 300], tx_version(a.position, 1))));
    drop(node);
    let node = open(&fs, Durability::Always);
    assert_eq!(node.get(&s, b"b", None).unwrap(), Some((vec![7; 300], tx_version(a.position, 1))));
}

#[test]
fn parallel_verification_equals_sequential_on_a_mixed_batch() {
    let forger = signer(9);
    let mut entries: Vec<Vec<u8>> = Vec::new();
    // More than two pipeline chunks, so apply_replicated_batch verifies while it applies.
    for i in 0..700u64 {
        let who = signer(1 + (i % 5) as u8);
        let e =
            signed(&who, i + 1, vec![puts(vec![zwrite(stream(1 + (i % 3) as u8), b"k", &i.to_be_bytes())])]);
        entries.push(match i % 7 {
            0 => forged(&e, &forger),
            3 => e[..e.len() - 3].to_vec(),
            5 => {
                let mut t = e.clone();
                t[40] ^= 1;
                t
            }
            _ => e,
        });
    }
    let sequential: Vec<Option<bool>> = entries.iter().map(|e| verify_one(e)).collect();
    assert_eq!(verify_entries(&entries), sequential);
    assert!(
        sequential.contains(&Some(false)) && sequential.contains(&None) && sequential.contains(&Some(true))
    );

    // A node applying the batch records what one applying them one by one does.
    let (fs_a, fs_b) = (SimFs::new(), SimFs::new());
    let (a, b) = (open(&fs_a, Durability::None), open(&fs_b, Durability::None));
    let batch: Vec<LogEntry> = entries.iter().enumerate().map(|(i, e)| entry(i as u64 + 1, e)).collect();
    let together = a.apply_replicated_batch(&batch).unwrap();
    let one_by_one: Vec<_> =
        batch.iter().map(|e| b.apply_replicated(e.position, e.time_ms, &e.bytes, None).unwrap()).collect();
    assert_eq!(together, one_by_one);
    assert_eq!(a.signatures_verified(), b.signatures_verified());
    assert_eq!(a.digest_at(None).unwrap(), b.digest_at(None).unwrap());
}

/// An entry at `position` whose log time is its position.
fn entry(position: u64, bytes: &[u8]) -> LogEntry {
    LogEntry { position, time_ms: position, bytes: bytes.to_vec().into() }
}
