//! `docs/semantics.md`, scenario by scenario: signed entries through the applier
//! on an in-memory state, checked against the result strings 0G prints,
//! the values and permissions "as of" each version, and the state digest.

mod support;

use std::collections::BTreeSet;

use logkv_runtime::apply::{TxResult, Watched};
use logkv_runtime::codec::native::{self, Op};
use logkv_runtime::codec::zerog::{self, Body};
use logkv_runtime::codec::ControlOp::*;
use logkv_runtime::codec::ZEROG;
use logkv_runtime::digest::{Fact, StateDigest};
use logkv_runtime::entry::{Applier, EntryOutcome};
use logkv_runtime::envelope::TxPart;
use logkv_runtime::signing::Signer;
use logkv_runtime::types::{tx_version, Address, StreamId};
use support::{
    control, controls, forged, native_tx, nwrite, puts, read, result_strings, signed, signer, zerog_tx,
    zwrite, Node,
};

const S: StreamId = StreamId([7; 32]);
const T: StreamId = StreamId([8; 32]);
const PARSE_ERROR: &str = "DataParseError: Invalid stream data";
const COMMIT: &str = "Commit";

/// `0x` and lowercase hex, written here rather than taken from the runtime.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold("0x".to_string(), |s, b| s + &format!("{b:02x}"))
}

fn addr(s: &Signer) -> Address {
    s.address()
}

fn latest(node: &Node, stream: StreamId, key: &[u8]) -> Option<Vec<u8>> {
    node.state.get_at(&stream, key, u64::MAX).map(|(_, v)| v.to_vec())
}

fn keys_at(
    node: &Node,
    stream: StreamId,
    version: u64,
    start: Option<(&[u8], bool)>,
    rev: bool,
) -> Vec<Vec<u8>> {
    node.state.iter_at(&stream, version, start, rev).map(|(k, _, _)| k.to_vec()).collect()
}

/// `before` plus the given results: what the digest must be when a failed
/// transaction changed nothing but its result.
fn with_results(mut before: StateDigest, results: &[(u64, &str)]) -> StateDigest {
    for &(version, text) in results {
        before.add(Fact::Result { version, text });
    }
    before
}

fn write_denied(stream: StreamId, key: &str) -> String {
    format!("WritePermissionDenied: stream: {}, key: {key}", hex(&stream.0))
}

fn control_denied(op: &str, stream: StreamId, key: &str, account: Address) -> String {
    format!(
        "AccessControlPermissionDenied: operation: {op}, stream: {}, key: {key}, account: {}",
        hex(&stream.0),
        hex(&account.0)
    )
}

fn body_tx(version: u64, reads: Vec<logkv_runtime::codec::Read>, writes: Vec<zerog::BodyWrite>) -> TxPart {
    zerog_tx(&Body { version, reads, writes, controls: vec![] })
}

/// A node where alice (signer 1) owns S, having written `seed=0`.
fn owned_by_alice() -> (Node, Signer) {
    let alice = signer(1);
    let mut node = Node::default();
    assert_eq!(node.run(&alice, puts(vec![zwrite(S, b"seed", b"0")])), COMMIT);
    (node, alice)
}

// ---------------------------------------------------------------- values

#[test]
fn the_first_writer_of_a_new_stream_becomes_its_admin() {
    let (alice, bob) = (signer(1), signer(2));
    let mut node = Node::default();
    assert!(node.state.acl_at(u64::MAX).is_new(&S));
    assert!(
        node.state.acl_at(u64::MAX).has_write_permission(&addr(&bob), &S, b"a"),
        "anyone may write a new stream"
    );
    assert_eq!(node.run(&alice, puts(vec![zwrite(S, b"a", b"1")])), COMMIT);
    let v = node.version(0);
    let acl = node.state.acl_at(v);
    assert!(!acl.is_new(&S));
    assert!(acl.is_admin(&addr(&alice), &S));
    assert!(!acl.is_admin(&addr(&bob), &S));
    assert!(!acl.is_writer_of_stream(&addr(&alice), &S), "admin, not writer");
    assert!(node.state.acl_at(v - 1).is_new(&S), "new until its first transaction");
    assert_eq!(node.run(&bob, puts(vec![zwrite(S, b"a", b"2")])), "SenderNoWritePermission");
    assert_eq!(latest(&node, S, b"a"), Some(b"1".to_vec()));
}

#[test]
fn an_overwritten_key_still_reads_its_old_value_as_of_the_old_version() {
    let (mut node, alice) = owned_by_alice();
    node.run(&alice, puts(vec![zwrite(S, b"a", b"1")]));
    let v1 = node.version(0);
    node.run(&alice, puts(vec![zwrite(S, b"a", b"2")]));
    let v2 = node.version(0);
    assert_eq!(node.state.get_at(&S, b"a", v1 - 1), None);
    assert_eq!(node.state.get_at(&S, b"a", v1), Some((v1, &b"1"[..])));
    assert_eq!(node.state.get_at(&S, b"a", v2 - 1), Some((v1, &b"1"[..])));
    assert_eq!(node.state.get_at(&S, b"a", v2), Some((v2, &b"2"[..])));
    assert_eq!(node.state.get_at(&S, b"a", u64::MAX), Some((v2, &b"2"[..])));
    assert_eq!(node.state.version_at(&S, b"a", v1 - 1), 0, "a key never written has version 0");
    assert_eq!(node.state.version_at(&S, b"a", u64::MAX), v2);
    assert_eq!(node.state.result(v2), Some(COMMIT));
}

#[test]
fn transactions_of_one_entry_get_consecutive_versions_and_see_each_other() {
    let (mut node, alice) = owned_by_alice();
    let second =
        body_tx(tx_version(node.position() + 1, 0), vec![read(S, b"a")], vec![zwrite(S, b"b", b"2")]);
    let results = node.try_run(&alice, vec![puts(vec![zwrite(S, b"a", b"1")]), second]);
    assert_eq!(results, vec![Some(COMMIT.to_string()), Some(COMMIT.to_string())]);
    assert_eq!(node.state.get_at(&S, b"a", u64::MAX), Some((node.version(0), &b"1"[..])));
    assert_eq!(node.state.get_at(&S, b"b", u64::MAX), Some((node.version(1), &b"2"[..])));
    assert_eq!(node.state.get_at(&S, b"b", node.version(0)), None);
}

#[test]
fn a_read_of_a_key_written_after_the_transaction_version_is_a_version_confliction() {
    let (mut node, alice) = owned_by_alice();
    node.run(&alice, puts(vec![zwrite(S, b"a", b"1")]));
    let v1 = node.version(0);
    node.run(&alice, puts(vec![zwrite(S, b"a", b"2")]));
    let v2 = node.version(0);
    let before = node.state.digest();
    assert_eq!(
        node.run(&alice, body_tx(v1, vec![read(S, b"a")], vec![zwrite(S, b"b", b"x")])),
        "VersionConfliction"
    );
    assert_eq!(node.state.digest(), with_results(before, &[(node.version(0), "VersionConfliction")]));
    assert_eq!(latest(&node, S, b"b"), None);
    assert_eq!(node.run(&alice, body_tx(v2, vec![read(S, b"a")], vec![zwrite(S, b"b", b"x")])), COMMIT);
    assert_eq!(node.run(&alice, body_tx(0, vec![read(S, b"never")], vec![zwrite(S, b"c", b"x")])), COMMIT);
}

#[test]
fn a_write_to_a_key_written_after_the_transaction_version_is_a_version_confliction() {
    let (mut node, alice) = owned_by_alice();
    node.run(&alice, puts(vec![zwrite(S, b"a", b"1")]));
    let v1 = node.version(0);
    node.run(&alice, puts(vec![zwrite(S, b"a", b"2")]));
    let v2 = node.version(0);
    let before = node.state.digest();
    assert_eq!(node.run(&alice, body_tx(v1, vec![], vec![zwrite(S, b"a", b"3")])), "VersionConfliction");
    assert_eq!(node.state.digest(), with_results(before, &[(node.version(0), "VersionConfliction")]));
    assert_eq!(latest(&node, S, b"a"), Some(b"2".to_vec()));
    assert_eq!(node.run(&alice, body_tx(v2, vec![], vec![zwrite(S, b"a", b"3")])), COMMIT);
    assert_eq!(latest(&node, S, b"a"), Some(b"3".to_vec()));
}

#[test]
fn a_delete_counts_as_a_write_for_version_checks() {
    let (mut node, alice) = owned_by_alice();
    node.run(&alice, puts(vec![zwrite(S, b"a", b"1")]));
    let v1 = node.version(0);
    node.run(&alice, puts(vec![zwrite(S, b"a", b"")]));
    assert_eq!(
        node.run(&alice, body_tx(v1, vec![read(S, b"a")], vec![zwrite(S, b"b", b"x")])),
        "VersionConfliction"
    );
    assert_eq!(node.run(&alice, body_tx(v1, vec![], vec![zwrite(S, b"a", b"x")])), "VersionConfliction");
}

#[test]
fn version_u64_max_disables_version_checks() {
    let (mut node, alice) = owned_by_alice();
    node.run(&alice, puts(vec![zwrite(S, b"a", b"1")]));
    node.run(&alice, puts(vec![zwrite(S, b"a", b"2")]));
    assert_eq!(node.run(&alice, body_tx(u64::MAX, vec![read(S, b"a")], vec![zwrite(S, b"a", b"3")])), COMMIT);
    assert_eq!(latest(&node, S, b"a"), Some(b"3".to_vec()));
}

#[test]
fn a_transaction_that_read_further_back_than_the_horizon_is_version_too_old() {
    let alice = signer(1);
    let mut node = Node::watching(Watched::Only(BTreeSet::from([S])));
    node.applier = Applier::new(Watched::Only(BTreeSet::from([S]))).with_version_check_horizon(2);
    node.run(&alice, puts(vec![zwrite(S, b"a", b"1")]));
    let at_1 = node.version(0);
    node.run(&alice, puts(vec![zwrite(S, b"b", b"1")]));
    node.run(&alice, puts(vec![zwrite(S, b"c", b"1")]));
    let at_3 = node.version(0);
    // Position 4 checks a read made at position 1: 1 + 2 < 4. Refused
    // before the read set is looked at, whose stream is not even watched.
    let before = node.state.digest();
    let stale = body_tx(at_1, vec![read(T, b"a")], vec![zwrite(S, b"a", b"2")]);
    assert_eq!(node.run(&alice, stale), "VersionTooOld");
    assert_eq!(node.state.digest(), with_results(before, &[(node.version(0), "VersionTooOld")]));
    assert_eq!(latest(&node, S, b"a"), Some(b"1".to_vec()));
    // Position 5 may check position 3 (3 + 2 = 5), and u64::MAX checks nothing.
    assert_eq!(node.run(&alice, body_tx(at_3, vec![read(S, b"a")], vec![zwrite(S, b"a", b"2")])), COMMIT);
    assert_eq!(node.run(&alice, body_tx(u64::MAX, vec![], vec![zwrite(S, b"a", b"3")])), COMMIT);
    // A native WATCH-style transaction (reads only checked) obeys it too.
    let watch = native::Body {
        version: at_1,
        check_reads_only: true,
        reads: vec![],
        writes: vec![nwrite(S, b"a", Op::Put(b"4".to_vec().into()))],
        controls: vec![],
    };
    assert_eq!(node.run(&alice, native_tx(&watch)), "VersionTooOld");
}

#[test]
fn the_last_write_of_a_key_in_one_transaction_wins() {
    let (mut node, alice) = owned_by_alice();
    let tx = puts(vec![
        zwrite(S, b"a", b"1"),
        zwrite(S, b"b", b"2"),
        zwrite(S, b"a", b"3"),
        zwrite(S, b"c", b"4"),
    ]);
    assert_eq!(node.run(&alice, tx), COMMIT);
    let v = node.version(0);
    assert_eq!(node.state.get_at(&S, b"a", u64::MAX), Some((v, &b"3"[..])));
    assert_eq!(node.state.get_at(&S, b"b", u64::MAX), Some((v, &b"2"[..])));
    assert_eq!(node.run(&alice, puts(vec![zwrite(S, b"c", b"5"), zwrite(S, b"c", b"")])), COMMIT);
    assert_eq!(latest(&node, S, b"c"), None, "a delete after a put in one transaction deletes");
    assert_eq!(node.state.version_at(&S, b"c", u64::MAX), node.version(0));
}

// ---------------------------------------------------------------- parsing

/// A body that writes, reads and grants, so a partial apply would show.
fn full_body(stream: StreamId, grantee: Address) -> Body {
    Body {
        version: u64::MAX,
        reads: vec![read(stream, b"r")],
        writes: vec![zwrite(stream, b"a", b"new"), zwrite(stream, b"b", b"")],
        controls: vec![control(GrantWriteRole, stream, None, Some(grantee))],
    }
}

#[test]
fn a_truncated_or_garbled_body_is_a_parse_error_and_applies_nothing_but_its_result() {
    let (mut node, alice) = owned_by_alice();
    let bob = signer(2);
    node.run(&alice, puts(vec![zwrite(S, b"a", b"old"), zwrite(S, b"b", b"keep")]));
    let body = full_body(S, addr(&bob));
    let good = zerog::encode(&body);
    let mut garbled: Vec<Vec<u8>> = (0..good.len()).map(|cut| good[..cut].to_vec()).collect();
    garbled.push([good.as_slice(), &[0]].concat()); // a trailing byte
    let mut bad_op = good.clone();
    bad_op[good.len() - 53] = 0x99; // the control's op byte (op 1 | stream 32 | account 20)
    garbled.push(bad_op);
    let mut empty_key = good.clone();
    empty_key[8 + 4 + 32..8 + 4 + 35].copy_from_slice(&[0, 0, 0]); // the read's key length
    garbled.push(empty_key);
    for bytes in garbled {
        let before = node.state.digest();
        let tx = TxPart { codec: ZEROG, tags: vec![S], body: bytes.clone() };
        assert_eq!(node.run(&alice, tx), PARSE_ERROR, "body {}", hex(&bytes));
        assert_eq!(node.state.digest(), with_results(before, &[(node.version(0), PARSE_ERROR)]));
        assert_eq!(latest(&node, S, b"a"), Some(b"old".to_vec()));
        assert_eq!(latest(&node, S, b"b"), Some(b"keep".to_vec()));
        assert!(!node.state.acl_at(u64::MAX).is_writer_of_stream(&addr(&bob), &S));
    }
    assert_eq!(node.run(&alice, zerog_tx(&body)), COMMIT, "the intact body applies");
    assert!(node.state.acl_at(u64::MAX).is_writer_of_stream(&addr(&bob), &S));
}

#[test]
fn a_garbled_first_transaction_leaves_the_stream_new() {
    let (alice, bob) = (signer(1), signer(2));
    let mut node = Node::default();
    let good = zerog::encode(&full_body(T, addr(&bob)));
    let tx = TxPart { codec: ZEROG, tags: vec![T], body: good[..good.len() - 1].to_vec() };
    assert_eq!(node.run(&alice, tx), PARSE_ERROR);
    assert!(node.state.acl_at(u64::MAX).is_new(&T));
}

#[test]
fn a_list_longer_than_65536_is_a_list_too_long_parse_error() {
    let (mut node, alice) = owned_by_alice();
    let body = [u64::MAX.to_be_bytes().as_slice(), &65_537u32.to_be_bytes()].concat();
    let tx = TxPart { codec: ZEROG, tags: vec![S], body };
    assert_eq!(node.run(&alice, tx), "DataParseError: Stream read/write/access_control list too long");
}

#[test]
fn the_sender_check_comes_before_the_body_is_parsed() {
    let (mut node, _alice) = owned_by_alice();
    let tx = TxPart { codec: ZEROG, tags: vec![S], body: vec![1, 2, 3] };
    assert_eq!(node.run(&signer(3), tx), "SenderNoWritePermission");
}

#[test]
fn an_unknown_codec_is_a_parse_error_found_after_the_sender_check() {
    let (mut node, alice) = owned_by_alice();
    let body =
        zerog::encode(&Body { version: u64::MAX, writes: vec![zwrite(S, b"a", b"1")], ..Body::default() });
    let unknown = TxPart { codec: 0x7f, tags: vec![S], body };
    assert_eq!(node.run(&signer(3), unknown.clone()), "SenderNoWritePermission");
    assert_eq!(node.run(&alice, unknown), PARSE_ERROR);
    assert_eq!(latest(&node, S, b"a"), None);
}

#[test]
fn a_read_set_conflict_wins_over_a_malformed_write_set() {
    let (mut node, alice) = owned_by_alice();
    let v0 = node.version(0);
    node.run(&alice, puts(vec![zwrite(S, b"seed", b"1")]));
    let good = zerog::encode(&Body {
        version: v0,
        reads: vec![read(S, b"seed")],
        writes: vec![zwrite(S, b"a", b"value")],
        ..Body::default()
    });
    let tx = TxPart { codec: ZEROG, tags: vec![S], body: good[..good.len() - 6].to_vec() };
    assert_eq!(node.run(&alice, tx), "VersionConfliction");
}

#[test]
fn tags_that_miss_a_written_stream_are_a_tags_mismatch() {
    let (mut node, alice) = owned_by_alice();
    node.run(&alice, puts(vec![zwrite(T, b"x", b"1")]));
    let body = Body {
        version: u64::MAX,
        writes: vec![zwrite(S, b"a", b"1"), zwrite(T, b"a", b"1")],
        ..Body::default()
    };
    let tx = TxPart { codec: ZEROG, tags: vec![S], body: zerog::encode(&body) };
    assert_eq!(node.run(&alice, tx), "TagsMismatch");
    assert_eq!(latest(&node, S, b"a"), None);
}

// ---------------------------------------------------------------- deletes and iteration

#[test]
fn a_0g_empty_write_deletes_the_key_from_reads_and_iteration_while_older_versions_keep_it() {
    let (mut node, alice) = owned_by_alice();
    node.run(&alice, puts(vec![zwrite(S, b"a", b"1"), zwrite(S, b"b", b"2"), zwrite(S, b"c", b"3")]));
    let v1 = node.version(0);
    node.run(&alice, puts(vec![zwrite(S, b"b", b"")]));
    let v2 = node.version(0);
    assert_eq!(node.state.get_at(&S, b"b", u64::MAX), None);
    assert_eq!(node.state.get_at(&S, b"b", v1), Some((v1, &b"2"[..])));
    assert_eq!(node.state.version_at(&S, b"b", u64::MAX), v2, "a delete has a version");
    let abc: Vec<Vec<u8>> = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"seed".to_vec()];
    assert_eq!(keys_at(&node, S, v1, None, false), abc);
    assert_eq!(
        keys_at(&node, S, u64::MAX, None, false),
        vec![b"a".to_vec(), b"c".to_vec(), b"seed".to_vec()]
    );
    assert_eq!(keys_at(&node, S, u64::MAX, None, true), vec![b"seed".to_vec(), b"c".to_vec(), b"a".to_vec()]);
}

#[test]
fn iteration_runs_forward_and_in_reverse_as_of_past_versions() {
    let alice = signer(1);
    let mut node = Node::default();
    node.run(&alice, puts(vec![zwrite(S, b"a", b"1"), zwrite(S, b"c", b"3"), zwrite(T, b"b", b"other")]));
    let v1 = node.version(0);
    node.run(&alice, puts(vec![zwrite(S, b"b", b"2"), zwrite(S, b"a", b"10")]));
    let v2 = node.version(0);
    node.run(&alice, puts(vec![zwrite(S, b"c", b""), zwrite(S, b"d", b"4")]));
    let v3 = node.version(0);
    let all = |v, start, rev| -> Vec<(Vec<u8>, u64, Vec<u8>)> {
        node.state.iter_at(&S, v, start, rev).map(|(k, ver, val)| (k.to_vec(), ver, val.to_vec())).collect()
    };
    let kv = |k: &[u8], v: u64, val: &[u8]| (k.to_vec(), v, val.to_vec());
    assert_eq!(all(v1 - 1, None, false), vec![]);
    assert_eq!(all(v1, None, false), vec![kv(b"a", v1, b"1"), kv(b"c", v1, b"3")]);
    assert_eq!(all(v2, None, false), vec![kv(b"a", v2, b"10"), kv(b"b", v2, b"2"), kv(b"c", v1, b"3")]);
    assert_eq!(all(v2, None, true), vec![kv(b"c", v1, b"3"), kv(b"b", v2, b"2"), kv(b"a", v2, b"10")]);
    assert_eq!(all(v3, None, true), vec![kv(b"d", v3, b"4"), kv(b"b", v2, b"2"), kv(b"a", v2, b"10")]);
    assert_eq!(all(v2, Some((b"b", true)), false), vec![kv(b"b", v2, b"2"), kv(b"c", v1, b"3")]);
    assert_eq!(all(v2, Some((b"b", false)), false), vec![kv(b"c", v1, b"3")]);
    assert_eq!(all(v2, Some((b"b", false)), true), vec![kv(b"a", v2, b"10")]);
    assert_eq!(all(v2, Some((b"bb", true)), true), vec![kv(b"b", v2, b"2"), kv(b"a", v2, b"10")]);
    assert_eq!(all(v1, Some((b"b", true)), false), vec![kv(b"c", v1, b"3")], "b did not exist at v1");
    assert_eq!(keys_at(&node, T, u64::MAX, None, false), vec![b"b".to_vec()], "streams do not mix");
}

#[test]
fn inclusive_next_from_a_deleted_key_moves_on_to_the_next_live_key() {
    let (mut node, alice) = owned_by_alice();
    node.run(&alice, puts(vec![zwrite(S, b"a", b"1"), zwrite(S, b"b", b"2"), zwrite(S, b"c", b"3")]));
    let v1 = node.version(0);
    node.run(&alice, puts(vec![zwrite(S, b"b", b"")]));
    let next = node.state.iter_at(&S, u64::MAX, Some((b"b", true)), false).next().map(|(k, _, _)| k.to_vec());
    assert_eq!(next, Some(b"c".to_vec()));
    let prev = node.state.iter_at(&S, u64::MAX, Some((b"b", true)), true).next().map(|(k, _, _)| k.to_vec());
    assert_eq!(prev, Some(b"a".to_vec()));
    assert_eq!(keys_at(&node, S, u64::MAX, Some((b"b", true)), false), vec![b"c".to_vec(), b"seed".to_vec()]);
    let then = node.state.iter_at(&S, v1, Some((b"b", true)), false).next().map(|(k, _, _)| k.to_vec());
    assert_eq!(then, Some(b"b".to_vec()), "live before the delete");
}

#[test]
fn iterating_from_a_key_longer_than_any_stored_key_neither_panics_nor_skips() {
    let (mut node, alice) = owned_by_alice();
    node.run(&alice, puts(vec![zwrite(S, b"a", b"1"), zwrite(S, &[0xff; 3], b"2")]));
    let past_all = vec![0xff; logkv_runtime::codec::MAX_KEY_BYTES + 2];
    for incl in [false, true] {
        assert_eq!(keys_at(&node, S, u64::MAX, Some((&past_all, incl)), false), Vec::<Vec<u8>>::new());
        let all_reversed = vec![vec![0xff; 3], b"seed".to_vec(), b"a".to_vec()];
        assert_eq!(keys_at(&node, S, u64::MAX, Some((&past_all, incl)), true), all_reversed);
    }
}

// ---------------------------------------------------------------- access control

#[test]
fn a_special_key_is_written_only_by_its_special_writers_until_they_renounce() {
    let (mut node, alice) = owned_by_alice();
    let (bob, carol) = (signer(2), signer(3));
    let setup = controls(vec![
        control(SetKeyToSpecial, S, Some(b"k1"), None),
        control(SetKeyToSpecial, S, Some(b"k2"), None),
        control(GrantWriteRole, S, None, Some(addr(&bob))),
        control(GrantSpecialWriteRole, S, Some(b"k1"), Some(addr(&carol))),
        control(GrantSpecialWriteRole, S, Some(b"k2"), Some(addr(&carol))),
    ]);
    assert_eq!(node.run(&alice, setup), COMMIT);
    let acl = node.state.acl_at(u64::MAX);
    assert!(acl.is_special_key(&S, b"k1") && !acl.is_special_key(&S, b"other"));
    assert!(acl.is_writer_of_key(&addr(&carol), &S, b"k1") && !acl.is_writer_of_stream(&addr(&carol), &S));
    assert!(acl.has_write_permission(&addr(&carol), &S, b"k1"));
    assert!(!acl.has_write_permission(&addr(&carol), &S, b"other"));
    assert!(!acl.has_write_permission(&addr(&bob), &S, b"k1"), "a stream writer cannot write a special key");
    assert!(acl.has_write_permission(&addr(&bob), &S, b"other"));
    assert!(acl.has_write_permission(&addr(&alice), &S, b"k1"), "an admin writes anything");

    assert_eq!(node.run(&bob, puts(vec![zwrite(S, b"k1", b"b")])), write_denied(S, "k1"));
    assert_eq!(node.run(&bob, puts(vec![zwrite(S, b"other", b"b")])), COMMIT);
    assert_eq!(node.run(&carol, puts(vec![zwrite(S, b"k1", b"c")])), COMMIT);
    assert_eq!(node.run(&carol, puts(vec![zwrite(S, b"other", b"c")])), write_denied(S, "other"));
    assert_eq!(node.run(&alice, puts(vec![zwrite(S, b"k2", b"a")])), COMMIT);

    assert_eq!(
        node.run(&carol, controls(vec![control(RenounceSpecialWriteRole, S, Some(b"k1"), None)])),
        COMMIT
    );
    assert!(!node.state.acl_at(u64::MAX).is_writer_of_key(&addr(&carol), &S, b"k1"));
    assert_eq!(node.run(&carol, puts(vec![zwrite(S, b"k1", b"c2")])), write_denied(S, "k1"));
    assert_eq!(node.run(&carol, puts(vec![zwrite(S, b"k2", b"c2")])), COMMIT, "still a special writer of k2");
    assert_eq!(
        node.run(&carol, controls(vec![control(RenounceSpecialWriteRole, S, Some(b"k2"), None)])),
        COMMIT
    );
    assert_eq!(node.run(&carol, puts(vec![zwrite(S, b"k2", b"c3")])), "SenderNoWritePermission");
    assert_eq!(latest(&node, S, b"k1"), Some(b"c".to_vec()));
    assert_eq!(latest(&node, S, b"k2"), Some(b"c2".to_vec()));
}

#[test]
fn a_special_writer_of_a_normal_key_cannot_write_it() {
    let (mut node, alice) = owned_by_alice();
    let carol = signer(3);
    node.run(&alice, controls(vec![control(GrantSpecialWriteRole, S, Some(b"k"), Some(addr(&carol)))]));
    assert!(node.state.acl_at(u64::MAX).is_writer_of_key(&addr(&carol), &S, b"k"));
    assert_eq!(node.run(&carol, puts(vec![zwrite(S, b"k", b"c")])), write_denied(S, "k"));
    node.run(&alice, controls(vec![control(SetKeyToSpecial, S, Some(b"k"), None)]));
    assert_eq!(node.run(&carol, puts(vec![zwrite(S, b"k", b"c")])), COMMIT, "once the key is special");
}

#[test]
fn result_strings_print_keys_as_0g_does() {
    let (mut node, alice) = owned_by_alice();
    let bob = signer(2);
    let long = "ключ-".repeat(10); // 50 characters, 90 bytes
    let binary = [0xff, 0x00, 0x41];
    let setup = controls(vec![
        control(SetKeyToSpecial, S, Some(long.as_bytes()), None),
        control(SetKeyToSpecial, S, Some(&binary), None),
        control(GrantWriteRole, S, None, Some(addr(&bob))),
    ]);
    assert_eq!(node.run(&alice, setup), COMMIT);
    let first_32: String = long.chars().take(32).collect();
    assert_eq!(node.run(&bob, puts(vec![zwrite(S, long.as_bytes(), b"x")])), write_denied(S, &first_32));
    assert_eq!(node.run(&bob, puts(vec![zwrite(S, &binary, b"x")])), write_denied(S, "UNKNOWN"));
}

#[test]
fn a_writer_who_renounces_can_no_longer_write() {
    let (mut node, alice) = owned_by_alice();
    let bob = signer(2);
    node.run(&alice, controls(vec![control(GrantWriteRole, S, None, Some(addr(&bob)))]));
    assert_eq!(node.run(&bob, puts(vec![zwrite(S, b"a", b"1")])), COMMIT);
    let written = node.version(0);
    assert_eq!(node.run(&bob, controls(vec![control(RenounceWriteRole, S, None, None)])), COMMIT);
    let renounced = node.version(0);
    assert!(node.state.acl_at(written).is_writer_of_stream(&addr(&bob), &S));
    assert!(!node.state.acl_at(renounced).is_writer_of_stream(&addr(&bob), &S));
    assert_eq!(node.run(&bob, puts(vec![zwrite(S, b"a", b"2")])), "SenderNoWritePermission");
}

#[test]
fn a_grant_by_a_sender_who_is_neither_admin_nor_writer_is_denied_with_0g_string() {
    let (mut node, alice) = owned_by_alice();
    let (carol, dave) = (signer(3), signer(4));
    // Carol's only right: special writer of the special key k (so she passes the sender check).
    node.run(
        &alice,
        controls(vec![
            control(SetKeyToSpecial, S, Some(b"k"), None),
            control(GrantSpecialWriteRole, S, Some(b"k"), Some(addr(&carol))),
        ]),
    );
    let before = node.state.digest();
    let body = Body {
        version: u64::MAX,
        writes: vec![zwrite(S, b"k", b"carol")],
        controls: vec![control(GrantWriteRole, S, None, Some(addr(&dave)))],
        ..Body::default()
    };
    let want = format!(
        "AccessControlPermissionDenied: operation: GRANT_WRITER_ROLE, stream: 0x{}, key: NONE, account: 0x{}",
        "07".repeat(32),
        dave.address().0.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    assert_eq!(node.run(&carol, zerog_tx(&body)), want);
    assert_eq!(node.state.digest(), with_results(before, &[(node.version(0), want.as_str())]));
    assert_eq!(latest(&node, S, b"k"), None, "the write of the failed transaction is not applied");
    assert!(!node.state.acl_at(u64::MAX).is_writer_of_stream(&addr(&dave), &S));
}

#[test]
fn a_stream_writer_may_grant_the_writer_role_and_a_special_writer_its_own_key() {
    let (mut node, alice) = owned_by_alice();
    let (bob, carol, dave) = (signer(2), signer(3), signer(4));
    node.run(
        &alice,
        controls(vec![
            control(GrantWriteRole, S, None, Some(addr(&bob))),
            control(SetKeyToSpecial, S, Some(b"k"), None),
            control(GrantSpecialWriteRole, S, Some(b"k"), Some(addr(&carol))),
        ]),
    );
    assert_eq!(node.run(&bob, controls(vec![control(GrantWriteRole, S, None, Some(addr(&dave)))])), COMMIT);
    assert_eq!(node.run(&dave, puts(vec![zwrite(S, b"a", b"dave")])), COMMIT);
    let grant_k = control(GrantSpecialWriteRole, S, Some(b"k"), Some(addr(&dave)));
    assert_eq!(node.run(&carol, controls(vec![grant_k])), COMMIT);
    assert_eq!(node.run(&dave, puts(vec![zwrite(S, b"k", b"dave")])), COMMIT);
    let grant_j = control(GrantSpecialWriteRole, S, Some(b"j"), Some(addr(&dave)));
    assert_eq!(
        node.run(&carol, controls(vec![grant_j.clone()])),
        control_denied("GRANT_SPECIAL_WRITER_ROLE", S, "j", addr(&dave))
    );
    assert_eq!(
        node.run(&bob, controls(vec![grant_j])),
        control_denied("GRANT_SPECIAL_WRITER_ROLE", S, "j", addr(&dave)),
        "a stream writer is not a special writer"
    );
}

#[test]
fn setting_a_key_back_to_normal_lets_stream_writers_write_it_again() {
    let (mut node, alice) = owned_by_alice();
    let bob = signer(2);
    node.run(&alice, controls(vec![control(GrantWriteRole, S, None, Some(addr(&bob)))]));
    assert_eq!(node.run(&alice, controls(vec![control(SetKeyToSpecial, S, Some(b"k"), None)])), COMMIT);
    let special = node.version(0);
    assert_eq!(node.run(&bob, puts(vec![zwrite(S, b"k", b"1")])), write_denied(S, "k"));
    assert_eq!(node.run(&alice, controls(vec![control(SetKeyToNormal, S, Some(b"k"), None)])), COMMIT);
    let normal = node.version(0);
    assert_eq!(node.run(&bob, puts(vec![zwrite(S, b"k", b"1")])), COMMIT);
    assert!(node.state.acl_at(special).is_special_key(&S, b"k"));
    assert!(!node.state.acl_at(normal).is_special_key(&S, b"k"));
    assert!(!node.state.acl_at(special - 1).is_special_key(&S, b"k"));
}

#[test]
fn revoking_or_setting_keys_by_a_non_admin_is_denied() {
    let (mut node, alice) = owned_by_alice();
    let (bob, carol) = (signer(2), signer(3));
    node.run(
        &alice,
        controls(vec![
            control(GrantWriteRole, S, None, Some(addr(&bob))),
            control(GrantWriteRole, S, None, Some(addr(&carol))),
        ]),
    );
    let revoke = controls(vec![control(RevokeWriteRole, S, None, Some(addr(&carol)))]);
    assert_eq!(node.run(&bob, revoke), control_denied("REVOKE_WRITER_ROLE", S, "NONE", addr(&carol)));
    assert!(node.state.acl_at(u64::MAX).is_writer_of_stream(&addr(&carol), &S));
    let special = controls(vec![control(SetKeyToSpecial, S, Some(b"k"), None)]);
    assert_eq!(node.run(&bob, special), control_denied("SET_KEY_TO_SPECIAL", S, "k", Address([0; 20])));
    let revoke_special = controls(vec![control(RevokeSpecialWriteRole, S, Some(b"k"), Some(addr(&carol)))]);
    assert_eq!(
        node.run(&bob, revoke_special),
        control_denied("REVOKE_SPECIAL_WRITER_ROLE", S, "k", addr(&carol))
    );
    let grant_admin = controls(vec![control(GrantAdminRole, S, None, Some(addr(&carol)))]);
    assert_eq!(node.run(&bob, grant_admin), control_denied("GRANT_ADMIN_ROLE", S, "NONE", addr(&carol)));
    assert_eq!(
        node.run(&alice, controls(vec![control(RevokeWriteRole, S, None, Some(addr(&carol)))])),
        COMMIT
    );
    assert!(!node.state.acl_at(u64::MAX).is_writer_of_stream(&addr(&carol), &S));
}

#[test]
fn the_first_failing_write_or_control_in_body_order_decides_the_result() {
    let (mut node, alice) = owned_by_alice();
    let bob = signer(2);
    node.run(
        &alice,
        controls(vec![
            control(GrantWriteRole, S, None, Some(addr(&bob))),
            control(SetKeyToSpecial, S, Some(b"k1"), None),
            control(SetKeyToSpecial, S, Some(b"k2"), None),
        ]),
    );
    let w = |a: &[u8], b: &[u8]| puts(vec![zwrite(S, a, b"x"), zwrite(S, b"ok", b"x"), zwrite(S, b, b"x")]);
    assert_eq!(node.run(&bob, w(b"k2", b"k1")), write_denied(S, "k2"));
    assert_eq!(node.run(&bob, w(b"k1", b"k2")), write_denied(S, "k1"));
    // A key written twice is checked at the place of its last write (docs/runtime.md).
    let twice = puts(vec![zwrite(S, b"k1", b"x"), zwrite(S, b"k2", b"x"), zwrite(S, b"k1", b"y")]);
    assert_eq!(node.run(&bob, twice), write_denied(S, "k2"));
    let special = control(SetKeyToSpecial, S, Some(b"z"), None);
    let revoke = control(RevokeWriteRole, S, None, Some(addr(&alice)));
    let zero = Address([0; 20]);
    assert_eq!(
        node.run(&bob, controls(vec![special.clone(), revoke.clone()])),
        control_denied("SET_KEY_TO_SPECIAL", S, "z", zero)
    );
    assert_eq!(
        node.run(&bob, controls(vec![revoke.clone(), special.clone()])),
        control_denied("REVOKE_WRITER_ROLE", S, "NONE", addr(&alice))
    );
    // Merged controls are checked at the place of their first appearance (docs/runtime.md).
    assert_eq!(
        node.run(&bob, controls(vec![revoke.clone(), special, revoke])),
        control_denied("REVOKE_WRITER_ROLE", S, "NONE", addr(&alice))
    );
}

#[test]
fn grant_then_revoke_in_one_transaction_merges_into_the_revoke_and_revoke_then_grant_into_the_grant() {
    let (mut node, alice) = owned_by_alice();
    let (bob, carol) = (signer(2), signer(3));
    node.run(&alice, controls(vec![control(GrantWriteRole, S, None, Some(addr(&bob)))]));
    let grant_revoke = controls(vec![
        control(GrantWriteRole, S, None, Some(addr(&bob))),
        control(RevokeWriteRole, S, None, Some(addr(&bob))),
    ]);
    assert_eq!(node.run(&alice, grant_revoke), COMMIT);
    assert!(!node.state.acl_at(u64::MAX).is_writer_of_stream(&addr(&bob), &S));
    let revoke_grant = controls(vec![
        control(RevokeWriteRole, S, None, Some(addr(&carol))),
        control(GrantWriteRole, S, None, Some(addr(&carol))),
    ]);
    assert_eq!(node.run(&alice, revoke_grant), COMMIT);
    assert!(node.state.acl_at(u64::MAX).is_writer_of_stream(&addr(&carol), &S));
    let special_normal = controls(vec![
        control(SetKeyToSpecial, S, Some(b"k"), None),
        control(SetKeyToNormal, S, Some(b"k"), None),
    ]);
    assert_eq!(node.run(&alice, special_normal), COMMIT);
    assert!(!node.state.acl_at(u64::MAX).is_special_key(&S, b"k"));
}

#[test]
fn merged_ops_are_checked_in_their_last_form() {
    let (mut node, alice) = owned_by_alice();
    let (bob, dave) = (signer(2), signer(4));
    node.run(&alice, controls(vec![control(GrantWriteRole, S, None, Some(addr(&bob)))]));
    // Alone, bob's revoke would be denied; merged into a grant, a writer may do it.
    let revoke_grant = controls(vec![
        control(RevokeWriteRole, S, None, Some(addr(&dave))),
        control(GrantWriteRole, S, None, Some(addr(&dave))),
    ]);
    assert_eq!(node.run(&bob, revoke_grant), COMMIT);
    assert!(node.state.acl_at(u64::MAX).is_writer_of_stream(&addr(&dave), &S));
}

#[test]
fn renouncing_admin_in_the_first_transaction_leaves_a_claimed_stream_without_admin() {
    let (alice, bob) = (signer(1), signer(2));
    let mut node = Node::default();
    let body = Body {
        version: u64::MAX,
        writes: vec![zwrite(T, b"a", b"1")],
        controls: vec![control(RenounceAdminRole, T, None, None)],
        ..Body::default()
    };
    assert_eq!(node.run(&alice, zerog_tx(&body)), COMMIT);
    let acl = node.state.acl_at(u64::MAX);
    assert!(!acl.is_new(&T), "claimed");
    assert!(!acl.is_admin(&addr(&alice), &T));
    assert_eq!(latest(&node, T, b"a"), Some(b"1".to_vec()));
    assert_eq!(node.run(&alice, puts(vec![zwrite(T, b"b", b"2")])), "SenderNoWritePermission");
    assert_eq!(node.run(&bob, puts(vec![zwrite(T, b"b", b"2")])), "SenderNoWritePermission");
}

#[test]
fn an_explicit_grant_admin_naming_the_sender_is_ignored() {
    let alice = signer(1);
    let mut node = Node::default();
    let tx = controls(vec![
        control(RenounceAdminRole, T, None, None),
        control(GrantAdminRole, T, None, Some(addr(&alice))),
    ]);
    assert_eq!(node.run(&alice, tx), COMMIT);
    assert!(!node.state.acl_at(u64::MAX).is_admin(&addr(&alice), &T));
    assert!(!node.state.acl_at(u64::MAX).is_new(&T));
}

#[test]
fn a_granted_admin_may_administer_and_renounce_but_no_op_revokes_an_admin() {
    let (mut node, alice) = owned_by_alice();
    let bob = signer(2);
    assert_eq!(node.run(&alice, controls(vec![control(GrantAdminRole, S, None, Some(addr(&bob)))])), COMMIT);
    assert!(node.state.acl_at(u64::MAX).is_admin(&addr(&bob), &S));
    assert_eq!(node.run(&bob, controls(vec![control(SetKeyToSpecial, S, Some(b"k"), None)])), COMMIT);
    // A revoke of the writer role does not touch the admin role.
    assert_eq!(node.run(&bob, controls(vec![control(RevokeWriteRole, S, None, Some(addr(&alice)))])), COMMIT);
    assert!(node.state.acl_at(u64::MAX).is_admin(&addr(&alice), &S));
    assert_eq!(node.run(&bob, controls(vec![control(RenounceAdminRole, S, None, None)])), COMMIT);
    assert!(!node.state.acl_at(u64::MAX).is_admin(&addr(&bob), &S));
    assert!(node.state.acl_at(u64::MAX).is_admin(&addr(&alice), &S));
}

#[test]
fn a_failed_first_transaction_leaves_the_stream_unclaimed_for_another_sender() {
    let (mut node, alice) = owned_by_alice();
    let bob = signer(2);
    let stale = body_tx(0, vec![read(S, b"seed")], vec![zwrite(T, b"a", b"alice")]);
    assert_eq!(node.run(&alice, stale), "VersionConfliction");
    assert!(node.state.acl_at(u64::MAX).is_new(&T));
    assert_eq!(node.run(&bob, puts(vec![zwrite(T, b"a", b"bob")])), COMMIT);
    let acl = node.state.acl_at(u64::MAX);
    assert!(acl.is_admin(&addr(&bob), &T) && !acl.is_admin(&addr(&alice), &T));
}

#[test]
fn permission_queries_answer_as_of_an_older_version() {
    let (mut node, alice) = owned_by_alice();
    let claimed = node.version(0);
    let bob = signer(2);
    node.run(&alice, controls(vec![control(GrantWriteRole, S, None, Some(addr(&bob)))]));
    let granted = node.version(0);
    node.run(&alice, puts(vec![zwrite(S, b"unrelated", b"1")]));
    node.run(&alice, controls(vec![control(RevokeWriteRole, S, None, Some(addr(&bob)))]));
    let revoked = node.version(0);
    let writer = |v: u64| node.state.acl_at(v).is_writer_of_stream(&addr(&bob), &S);
    let may_write = |v: u64| node.state.acl_at(v).has_write_permission(&addr(&bob), &S, b"x");
    assert!(!writer(granted - 1) && writer(granted) && writer(revoked - 1) && !writer(revoked));
    assert!(may_write(claimed - 1), "before the first transaction the stream was new");
    assert!(!may_write(claimed) && may_write(granted) && !may_write(revoked));
    assert!(node.state.acl_at(claimed).is_admin(&addr(&alice), &S));
}

// ---------------------------------------------------------------- entries

#[test]
fn a_forged_signature_applies_nothing_and_does_not_use_up_the_nonce() {
    let (alice, mallory) = (signer(1), signer(2));
    let mut node = Node::default();
    let genuine =
        signed(&alice, 1, vec![puts(vec![zwrite(S, b"a", b"1")]), puts(vec![zwrite(S, b"b", b"2")])]);
    let before = node.state.digest();
    let outcome = node.apply(&forged(&genuine, &mallory));
    assert_eq!(
        outcome,
        EntryOutcome::Applied(vec![Some(TxResult::BadSignature), Some(TxResult::BadSignature)])
    );
    assert_eq!(
        node.state.digest(),
        with_results(before, &[(node.version(0), "BadSignature"), (node.version(1), "BadSignature")])
    );
    assert_eq!(latest(&node, S, b"a"), None);
    assert!(node.state.acl_at(u64::MAX).is_new(&S));
    let outcome = node.apply(&genuine);
    assert_eq!(result_strings(&outcome), vec![Some(COMMIT.to_string()), Some(COMMIT.to_string())]);
}

#[test]
fn a_replayed_entry_or_reused_nonce_is_replayed_and_changes_nothing_but_its_result() {
    let alice = signer(1);
    let mut node = Node::default();
    let first = signed(&alice, 1, vec![puts(vec![zwrite(S, b"a", b"1")])]);
    assert_eq!(result_strings(&node.apply(&first)), vec![Some(COMMIT.to_string())]);
    node.apply(&signed(&alice, 2, vec![puts(vec![zwrite(S, b"a", b"2")])]));
    for bytes in [first, signed(&alice, 1, vec![puts(vec![zwrite(S, b"a", b"3")])])] {
        let before = node.state.digest();
        assert_eq!(node.apply(&bytes), EntryOutcome::Applied(vec![Some(TxResult::Replayed)]));
        assert_eq!(node.state.digest(), with_results(before, &[(node.version(0), "Replayed")]));
        assert_eq!(latest(&node, S, b"a"), Some(b"2".to_vec()));
    }
}

#[test]
fn an_entry_of_a_newer_protocol_version_needs_an_upgrade_and_records_nothing() {
    let (mut node, alice) = owned_by_alice();
    let mut bytes = signed(&alice, 10, vec![puts(vec![zwrite(S, b"a", b"1")])]);
    bytes[4..6].copy_from_slice(&(logkv_runtime::envelope::PROTOCOL_VERSION + 1).to_be_bytes());
    let before = node.state.digest();
    assert!(matches!(node.apply(&bytes), EntryOutcome::UpgradeNeeded(_)));
    assert_eq!(node.state.digest(), before);
    assert_eq!(node.state.result(node.version(0)), None);
    assert_eq!(latest(&node, S, b"a"), None);
}

#[test]
fn a_malformed_entry_records_nothing() {
    let (mut node, alice) = owned_by_alice();
    let bytes = signed(&alice, 10, vec![puts(vec![zwrite(S, b"a", b"1")])]);
    let before = node.state.digest();
    assert!(matches!(node.apply(&bytes[..bytes.len() - 1]), EntryOutcome::Malformed(_)));
    assert_eq!(node.state.digest(), before);
    assert_eq!(node.state.result(node.version(0)), None);
    assert_eq!(
        result_strings(&node.apply(&bytes)),
        vec![Some(COMMIT.to_string())],
        "its nonce is not used up"
    );
}

#[test]
fn a_transaction_touching_an_unwatched_stream_is_skipped_without_a_result() {
    let alice = signer(1);
    let only_s = || Watched::Only(BTreeSet::from([S]));
    let on_s = puts(vec![zwrite(S, b"a", b"1")]);
    let on_s_and_t = puts(vec![zwrite(S, b"b", b"2"), zwrite(T, b"b", b"2")]);
    let on_t = puts(vec![zwrite(T, b"c", b"3")]);
    let mut node = Node::watching(only_s());
    let results = node.try_run(&alice, vec![on_s.clone(), on_s_and_t, on_t]);
    assert_eq!(results, vec![Some(COMMIT.to_string()), None, None]);
    assert_eq!(node.state.result(node.version(1)), None);
    assert_eq!(node.state.result(node.version(2)), None);
    assert_eq!(latest(&node, S, b"b"), None);
    assert!(node.state.acl_at(u64::MAX).is_new(&T));
    // The state is exactly that of the watched transaction alone.
    let mut alone = Node::watching(only_s());
    alone.try_run(&alice, vec![on_s]);
    assert_eq!(node.state.digest(), alone.state.digest());
    // A watched transaction reading an unwatched stream is a tags mismatch.
    let reads_t = body_tx(u64::MAX, vec![read(T, b"c")], vec![zwrite(S, b"d", b"4")]);
    assert_eq!(node.run(&alice, reads_t), "TagsMismatch");
}

// ---------------------------------------------------------------- native codec

fn native(
    version: u64,
    check_reads_only: bool,
    reads: Vec<logkv_runtime::codec::Read>,
    writes: Vec<native::BodyWrite>,
) -> TxPart {
    native_tx(&native::Body { version, check_reads_only, reads, writes, controls: vec![] })
}

fn ops(writes: Vec<native::BodyWrite>) -> TxPart {
    native(u64::MAX, false, vec![], writes)
}

#[test]
fn native_increments_sum_in_log_order() {
    let (mut node, alice) = owned_by_alice();
    assert_eq!(node.run(&alice, ops(vec![nwrite(S, b"n", Op::Increment(5))])), COMMIT);
    assert_eq!(latest(&node, S, b"n"), Some(b"5".to_vec()));
    let tx = ops(vec![nwrite(S, b"n", Op::Increment(3)), nwrite(S, b"n", Op::Increment(-10))]);
    assert_eq!(node.run(&alice, tx), COMMIT);
    assert_eq!(latest(&node, S, b"n"), Some(b"-2".to_vec()));
    assert_eq!(node.state.version_at(&S, b"n", u64::MAX), node.version(0));
}

#[test]
fn native_append_appends_to_the_current_value() {
    let (mut node, alice) = owned_by_alice();
    assert_eq!(node.run(&alice, ops(vec![nwrite(S, b"s", Op::Append(b"ab".to_vec().into()))])), COMMIT);
    assert_eq!(node.run(&alice, ops(vec![nwrite(S, b"s", Op::Append(b"cd".to_vec().into()))])), COMMIT);
    assert_eq!(latest(&node, S, b"s"), Some(b"abcd".to_vec()));
    let tx = ops(vec![
        nwrite(S, b"s", Op::Put(b"xy".to_vec().into())),
        nwrite(S, b"s", Op::Append(b"!".to_vec().into())),
    ]);
    assert_eq!(node.run(&alice, tx), COMMIT);
    assert_eq!(latest(&node, S, b"s"), Some(b"xy!".to_vec()));
}

#[test]
fn native_put_if_absent_and_put_if_present_follow_the_live_value() {
    let (mut node, alice) = owned_by_alice();
    assert_eq!(node.run(&alice, ops(vec![nwrite(S, b"p", Op::PutIfPresent(b"no".to_vec().into()))])), COMMIT);
    assert_eq!(latest(&node, S, b"p"), None);
    assert_eq!(node.state.version_at(&S, b"p", u64::MAX), 0, "an op that changes nothing writes nothing");
    assert_eq!(node.run(&alice, ops(vec![nwrite(S, b"p", Op::PutIfAbsent(b"1".to_vec().into()))])), COMMIT);
    let set = node.version(0);
    assert_eq!(node.run(&alice, ops(vec![nwrite(S, b"p", Op::PutIfAbsent(b"2".to_vec().into()))])), COMMIT);
    assert_eq!(node.state.get_at(&S, b"p", u64::MAX), Some((set, &b"1"[..])));
    assert_eq!(node.run(&alice, ops(vec![nwrite(S, b"p", Op::PutIfPresent(b"3".to_vec().into()))])), COMMIT);
    assert_eq!(latest(&node, S, b"p"), Some(b"3".to_vec()));
    node.run(&alice, ops(vec![nwrite(S, b"p", Op::Delete)]));
    assert_eq!(node.run(&alice, ops(vec![nwrite(S, b"p", Op::PutIfAbsent(b"4".to_vec().into()))])), COMMIT);
    assert_eq!(latest(&node, S, b"p"), Some(b"4".to_vec()), "a deleted key is absent");
}

#[test]
fn native_increment_of_a_non_integer_fails_and_applies_nothing() {
    let (mut node, alice) = owned_by_alice();
    let bob = signer(2);
    node.run(
        &alice,
        ops(vec![
            nwrite(S, b"s", Op::Put(b"abc".to_vec().into())),
            nwrite(S, b"max", Op::Put(i64::MAX.to_string().into_bytes().into())),
        ]),
    );
    let before = node.state.digest();
    let body = native::Body {
        version: u64::MAX,
        writes: vec![nwrite(S, b"other", Op::Put(b"z".to_vec().into())), nwrite(S, b"s", Op::Increment(1))],
        controls: vec![control(GrantWriteRole, S, None, Some(addr(&bob)))],
        ..native::Body::default()
    };
    let failed = "OperationFailed: value is not an integer or out of range";
    assert_eq!(node.run(&alice, native_tx(&body)), failed);
    assert_eq!(node.state.digest(), with_results(before, &[(node.version(0), failed)]));
    assert_eq!(latest(&node, S, b"other"), None);
    assert_eq!(latest(&node, S, b"s"), Some(b"abc".to_vec()));
    assert!(!node.state.acl_at(u64::MAX).is_writer_of_stream(&addr(&bob), &S));
    assert_eq!(
        node.run(&alice, ops(vec![nwrite(S, b"max", Op::Increment(1))])),
        "OperationFailed: increment or decrement would overflow"
    );
}

#[test]
fn a_native_empty_value_is_a_value_and_delete_is_explicit() {
    let (mut node, alice) = owned_by_alice();
    assert_eq!(node.run(&alice, ops(vec![nwrite(S, b"e", Op::Put(vec![].into()))])), COMMIT);
    assert_eq!(latest(&node, S, b"e"), Some(vec![]));
    assert!(keys_at(&node, S, u64::MAX, None, false).contains(&b"e".to_vec()));
    assert_eq!(node.run(&alice, ops(vec![nwrite(S, b"e", Op::Delete)])), COMMIT);
    assert_eq!(latest(&node, S, b"e"), None);
    assert!(!keys_at(&node, S, u64::MAX, None, false).contains(&b"e".to_vec()));
}

#[test]
fn check_reads_only_ignores_write_set_conflicts_but_not_read_set_ones() {
    let (mut node, alice) = owned_by_alice();
    node.run(&alice, ops(vec![nwrite(S, b"a", Op::Put(b"1".to_vec().into()))]));
    let v1 = node.version(0);
    node.run(&alice, ops(vec![nwrite(S, b"a", Op::Put(b"2".to_vec().into()))]));
    let put3 = || vec![nwrite(S, b"a", Op::Put(b"3".to_vec().into()))];
    assert_eq!(node.run(&alice, native(v1, false, vec![], put3())), "VersionConfliction");
    assert_eq!(node.run(&alice, native(v1, true, vec![read(S, b"a")], put3())), "VersionConfliction");
    assert_eq!(latest(&node, S, b"a"), Some(b"2".to_vec()));
    assert_eq!(node.run(&alice, native(v1, true, vec![read(S, b"seed")], put3())), COMMIT);
    assert_eq!(latest(&node, S, b"a"), Some(b"3".to_vec()));
}

// ---------------------------------------------------------------- digests

#[test]
fn two_logs_reaching_the_same_state_with_the_same_results_have_equal_digests() {
    let (alice, bob, carol) = (signer(1), signer(2), signer(3));
    let grant = |who: &Signer| control(GrantWriteRole, S, None, Some(addr(who)));
    let tx = |key: &[u8], value: &[u8], g: &Signer| {
        zerog_tx(&Body {
            version: u64::MAX,
            writes: vec![zwrite(S, key, value)],
            controls: vec![grant(g)],
            ..Body::default()
        })
    };
    // Same values, permissions and results per version; different histories.
    let mut one = Node::default();
    one.try_run(&alice, vec![tx(b"a", b"1", &bob), tx(b"b", b"2", &carol)]);
    one.try_run(&alice, vec![puts(vec![zwrite(S, b"a", b"9")]), puts(vec![zwrite(S, b"a", b"1")])]);
    let mut two = Node::default();
    two.try_run(&alice, vec![tx(b"b", b"2", &carol), tx(b"a", b"1", &bob)]);
    two.try_run(&alice, vec![puts(vec![zwrite(S, b"c", b"7")]), puts(vec![zwrite(S, b"c", b"")])]);
    assert_ne!(one.state.version_at(&S, b"a", u64::MAX), two.state.version_at(&S, b"a", u64::MAX));
    for v in [tx_version(1, 0), tx_version(1, 1), tx_version(2, 0), tx_version(2, 1)] {
        assert_eq!(one.state.result(v), two.state.result(v));
    }
    assert_eq!(one.state.digest(), two.state.digest());
}

#[test]
fn equal_values_and_permissions_with_different_results_have_different_digests() {
    let (alice, bob) = (signer(1), signer(2));
    let mut one = Node::default();
    one.run(&alice, puts(vec![zwrite(S, b"a", b"1")]));
    let mut two = Node::default();
    two.run(&alice, puts(vec![zwrite(S, b"a", b"1")]));
    assert_eq!(one.state.digest(), two.state.digest());
    assert_eq!(two.run(&bob, puts(vec![zwrite(S, b"a", b"2")])), "SenderNoWritePermission");
    assert_ne!(one.state.digest(), two.state.digest(), "results are part of the state");
}
