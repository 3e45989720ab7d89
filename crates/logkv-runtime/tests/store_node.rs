//! The runtime on the embedded store (`node::Node`) against the in-memory
//! state (`MemState`): random logs applied to both must give the same
//! outcomes, results, values, iteration and permissions as of every
//! version, and the same digest after every entry — before and after the
//! node is closed and opened again. Plus: values are read from inside the
//! logged entry (one copy on disk), replay neither applies nor verifies,
//! a record that cannot be stored leaves nothing behind in memory, entries
//! from another log keep that log's positions as versions, and concurrent
//! submitters see each other's sequenced writes.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use logkv_fs::SimFs;
use logkv_runtime::apply::{TxResult, Watched};
use logkv_runtime::codec::{native, zerog, ControlOp};
use logkv_runtime::digest::StateDigest;
use logkv_runtime::entry::{Applier, EntryOutcome};
use logkv_runtime::envelope::TxPart;
use logkv_runtime::mem_state::MemState;
use logkv_runtime::node::{KeyValue, Node, NodeError, NodeOptions};
use logkv_runtime::types::{tx_version, Address};
use logkv_store::{Durability, LogConfig, RecoveryMode, StoreError, StoreOptions};
use proptest::prelude::*;
use support::{control, forged, native_tx, nwrite, puts, read, signed, signer, stream, zerog_tx, zwrite};

const DIR: &str = "/node";
const STREAMS: [u8; 3] = [1, 2, 3];
const KEYS: [&[u8]; 3] = [b"a", b"b", b"c"];
const OUTSIDER: Address = Address([0xee; 20]);

fn options(fs: &SimFs, watched: Watched) -> NodeOptions {
    let log = LogConfig {
        segment_size_bytes: 16 * 1024,
        durability: Durability::Always,
        recovery: RecoveryMode::Strict,
    };
    NodeOptions {
        store: StoreOptions { fs: Arc::new(fs.clone()), log, ..StoreOptions::default() },
        watched,
        ..NodeOptions::default()
    }
}

fn open(fs: &SimFs, watched: &Watched) -> Node {
    Node::open(Path::new(DIR), options(fs, watched.clone())).expect("open node")
}

/// A value of `n`: short ones, the empty one, integers, and a long one.
fn value(n: usize) -> Vec<u8> {
    match n % 5 {
        0 => b"x".to_vec(),
        1 => Vec::new(),
        2 => b"41".to_vec(),
        3 => (0..300u32).map(|i| (i * 7 + n as u32) as u8).collect(),
        _ => b"-7".to_vec(),
    }
}

#[derive(Debug, Clone)]
enum WriteGen {
    Put(usize),
    Delete,
    Incr(i64),
    Append(usize),
    IfAbsent(usize),
    IfPresent(usize),
}

#[derive(Debug, Clone)]
struct TxGen {
    native: bool,
    stale: Option<u8>,
    reads: Vec<(usize, usize)>,
    writes: Vec<(usize, usize, WriteGen)>,
    controls: Vec<(usize, usize, usize, usize)>,
}

#[derive(Debug, Clone)]
enum Action {
    Entry { sender: usize, forged: bool, truncated: bool, reuse_nonce: bool, txs: Vec<TxGen> },
    Replay(usize),
}

const OPS: [ControlOp; 10] = [
    ControlOp::GrantAdminRole,
    ControlOp::RenounceAdminRole,
    ControlOp::SetKeyToSpecial,
    ControlOp::SetKeyToNormal,
    ControlOp::GrantWriteRole,
    ControlOp::RevokeWriteRole,
    ControlOp::RenounceWriteRole,
    ControlOp::GrantSpecialWriteRole,
    ControlOp::RevokeSpecialWriteRole,
    ControlOp::RenounceSpecialWriteRole,
];

fn tx_gen() -> impl Strategy<Value = TxGen> {
    let write = prop_oneof![
        4 => (0..5usize).prop_map(WriteGen::Put),
        1 => Just(WriteGen::Delete),
        2 => (-2i64..=2).prop_map(WriteGen::Incr),
        1 => (0..5usize).prop_map(WriteGen::Append),
        1 => (0..5usize).prop_map(WriteGen::IfAbsent),
        1 => (0..5usize).prop_map(WriteGen::IfPresent),
    ];
    (
        any::<bool>(),
        prop::option::weighted(0.3, 0u8..3),
        prop::collection::vec((0..3usize, 0..3usize), 0..2),
        prop::collection::vec((0..3usize, 0..3usize, write), 0..4),
        prop::collection::vec((0..OPS.len(), 0..3usize, 0..3usize, 0..4usize), 0..3),
    )
        .prop_map(|(native, stale, reads, writes, controls)| TxGen {
            native,
            stale,
            reads,
            writes,
            controls,
        })
}

fn action_gen() -> impl Strategy<Value = Action> {
    prop_oneof![
        12 => (0..3usize, prop::bool::weighted(0.05), prop::bool::weighted(0.03), prop::bool::weighted(0.05),
               prop::collection::vec(tx_gen(), 1..4))
            .prop_map(|(sender, forged, truncated, reuse_nonce, txs)| Action::Entry { sender, forged, truncated, reuse_nonce, txs }),
        1 => any::<usize>().prop_map(Action::Replay),
    ]
}

fn build_tx(g: &TxGen, position: u64, accounts: &[Address]) -> TxPart {
    let version = g.stale.map_or(u64::MAX, |back| position.saturating_sub(back.into()) << 16);
    let reads = g.reads.iter().map(|&(s, k)| read(stream(STREAMS[s]), KEYS[k])).collect();
    let controls = g
        .controls
        .iter()
        .map(|&(op, s, k, a)| {
            let op = OPS[op];
            let key = op.has_key().then_some(KEYS[k]);
            control(op, stream(STREAMS[s]), key, op.has_account().then_some(accounts[a]))
        })
        .collect();
    if g.native {
        let writes = g
            .writes
            .iter()
            .map(|(s, k, w)| {
                let op = match w {
                    WriteGen::Put(v) => native::Op::Put(value(*v).into()),
                    WriteGen::Delete => native::Op::Delete,
                    WriteGen::Incr(n) => native::Op::Increment(*n),
                    WriteGen::Append(v) => native::Op::Append(value(*v).into()),
                    WriteGen::IfAbsent(v) => native::Op::PutIfAbsent(value(*v).into()),
                    WriteGen::IfPresent(v) => native::Op::PutIfPresent(value(*v).into()),
                };
                nwrite(stream(STREAMS[*s]), KEYS[*k], op)
            })
            .collect();
        native_tx(&native::Body { version, check_reads_only: false, reads, writes, controls })
    } else {
        let writes = g
            .writes
            .iter()
            .map(|(s, k, w)| {
                let v = match w {
                    WriteGen::Put(v)
                    | WriteGen::Append(v)
                    | WriteGen::IfAbsent(v)
                    | WriteGen::IfPresent(v) => value(*v),
                    WriteGen::Delete => Vec::new(),
                    WriteGen::Incr(n) => n.to_string().into_bytes(),
                };
                zwrite(stream(STREAMS[*s]), KEYS[*k], &v)
            })
            .collect();
        zerog_tx(&zerog::Body { version, reads, writes, controls })
    }
}

/// The in-memory reference: an applier and a state at positions 1, 2, ...
struct Reference {
    applier: Applier,
    state: MemState,
    /// After each entry: its last version and the digest.
    digests: Vec<(u64, StateDigest)>,
    versions: BTreeSet<u64>,
}

impl Reference {
    fn apply(&mut self, position: u64, bytes: &[u8]) -> EntryOutcome {
        let outcome = self.applier.apply_entry(&mut self.state, position, 0, bytes, None);
        let txs = match &outcome {
            EntryOutcome::Applied(r) => r.len() as u64,
            _ => 0,
        };
        self.versions.extend((0..txs.max(1)).map(|i| (position << 16) | i));
        self.digests.push((tx_version(position, txs.saturating_sub(1) as u16), self.state.digest()));
        outcome
    }
}

/// Applies `actions` from `start` to both, checking each outcome and digest.
fn run(
    node: &Node,
    reference: &mut Reference,
    actions: &[Action],
    log: &mut Vec<Vec<u8>>,
    nonces: &mut [u64],
) -> Result<(), TestCaseError> {
    let signers: Vec<_> = (1..=3).map(signer).collect();
    let accounts: Vec<Address> = signers.iter().map(|s| s.address()).chain([OUTSIDER]).collect();
    for action in actions {
        let position = log.len() as u64 + 1;
        let bytes = match action {
            Action::Replay(_) if log.is_empty() => continue,
            Action::Replay(i) => log[i % log.len()].clone(),
            Action::Entry { sender, forged: forge, truncated, reuse_nonce, txs } => {
                let nonce =
                    if *reuse_nonce && nonces[*sender] > 0 { nonces[*sender] } else { nonces[*sender] + 1 };
                nonces[*sender] = nonce;
                let parts = txs.iter().map(|g| build_tx(g, position, &accounts)).collect();
                let mut bytes = signed(&signers[*sender], nonce, parts);
                if *forge {
                    bytes = forged(&bytes, &signer(9));
                }
                if *truncated {
                    bytes.pop();
                }
                bytes
            }
        };
        log.push(bytes.clone());
        let want = reference.apply(position, &bytes);
        let got = node.submit(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got.position, position);
        prop_assert_eq!(&got.outcome, &want, "outcome at position {}", position);
        let digest = node.digest_at(None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(digest, reference.state.digest(), "digest after position {}", position);
    }
    Ok(())
}

fn ok<T>(r: Result<T, NodeError>) -> Result<T, TestCaseError> {
    r.map_err(|e| TestCaseError::fail(e.to_string()))
}

/// Results, values, iteration, permissions and digests as of every version.
fn compare_everything(node: &Node, reference: &Reference) -> Result<(), TestCaseError> {
    let mem = &reference.state;
    let accounts: Vec<Address> = (1..=3).map(|n| signer(n).address()).chain([OUTSIDER]).collect();
    let mut holding = ok(node.holding_stream_ids())?;
    holding.sort();
    prop_assert_eq!(holding, mem.streams());
    for &(last, digest) in &reference.digests {
        prop_assert_eq!(ok(node.digest_at(Some(last)))?, digest, "digest as of {}", last);
    }
    let versions = reference.versions.iter().copied().chain([0, u64::MAX]);
    for v in versions {
        prop_assert_eq!(ok(node.result(v))?, mem.result(v).map(str::to_string), "result at {}", v);
        let acl = mem.acl_at(v);
        for &s in &STREAMS {
            let s = stream(s);
            let kv = |found: Option<(&[u8], u64, &[u8])>| {
                found.map(|(k, ver, val)| KeyValue { key: k.to_vec(), value: val.to_vec(), version: ver })
            };
            prop_assert_eq!(ok(node.first(&s, Some(v)))?, kv(mem.iter_at(&s, v, None, false).next()));
            prop_assert_eq!(ok(node.last(&s, Some(v)))?, kv(mem.iter_at(&s, v, None, true).next()));
            prop_assert_eq!(ok(node.is_new_stream(&s, Some(v)))?, acl.is_new(&s));
            for k in KEYS {
                let got = ok(node.get(&s, k, Some(v)))?;
                prop_assert_eq!(
                    got,
                    mem.get_at(&s, k, v).map(|(ver, val)| (val.to_vec(), ver)),
                    "get {:?} at {}",
                    k,
                    v
                );
                for incl in [false, true] {
                    let next = ok(node.next(&s, k, incl, Some(v)))?;
                    prop_assert_eq!(
                        next,
                        kv(mem.iter_at(&s, v, Some((k, incl)), false).next()),
                        "next {:?} {}",
                        k,
                        incl
                    );
                    let prev = ok(node.prev(&s, k, incl, Some(v)))?;
                    prop_assert_eq!(
                        prev,
                        kv(mem.iter_at(&s, v, Some((k, incl)), true).next()),
                        "prev {:?} {}",
                        k,
                        incl
                    );
                }
                prop_assert_eq!(ok(node.is_special_key(&s, k, Some(v)))?, acl.is_special_key(&s, k));
            }
            for a in &accounts {
                prop_assert_eq!(ok(node.is_admin(a, &s, Some(v)))?, acl.is_admin(a, &s), "admin at {}", v);
                prop_assert_eq!(
                    ok(node.is_writer_of_stream(a, &s, Some(v)))?,
                    acl.is_writer_of_stream(a, &s)
                );
                for k in KEYS {
                    prop_assert_eq!(
                        ok(node.is_writer_of_key(a, &s, k, Some(v)))?,
                        acl.is_writer_of_key(a, &s, k)
                    );
                    prop_assert_eq!(
                        ok(node.has_write_permission(a, &s, k, Some(v)))?,
                        acl.has_write_permission(a, &s, k)
                    );
                }
            }
        }
    }
    Ok(())
}

fn watched(all: bool) -> Watched {
    if all {
        Watched::All
    } else {
        Watched::Only(STREAMS[..2].iter().map(|&s| stream(s)).collect())
    }
}

fn check_case(all: bool, actions: &[Action], split: usize) -> Result<(), TestCaseError> {
    let fs = SimFs::new();
    let watched = watched(all);
    let mut reference = Reference {
        applier: Applier::new(watched.clone()),
        state: MemState::default(),
        digests: Vec::new(),
        versions: BTreeSet::new(),
    };
    let (mut log, mut nonces) = (Vec::new(), vec![0u64; 3]);
    let split = split % (actions.len() + 1);
    let node = open(&fs, &watched);
    run(&node, &mut reference, &actions[..split], &mut log, &mut nonces)?;
    // Close in the middle: the second half must see the rebuilt in-memory
    // state (access control, anti-replay windows, stream keyspaces, digest).
    node.close().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let node = open(&fs, &watched);
    prop_assert_eq!(
        (node.signatures_verified(), node.entries_applied()),
        (0, 0),
        "replay verifies and applies nothing"
    );
    run(&node, &mut reference, &actions[split..], &mut log, &mut nonces)?;
    compare_everything(&node, &reference)?;
    let progress = node.replay_progress();
    prop_assert_eq!(progress.applied_position, log.len() as u64);
    node.close().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let node = open(&fs, &watched);
    prop_assert_eq!(ok(node.digest_at(None))?, reference.state.digest());
    prop_assert_eq!(node.replay_progress(), progress);
    compare_everything(&node, &reference)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_node_on_the_store_agrees_with_mem_state_before_and_after_reopening(
        all in prop::bool::weighted(0.75),
        actions in prop::collection::vec(action_gen(), 1..20),
        split in any::<usize>(),
    ) {
        check_case(all, &actions, split)?;
    }
}

#[test]
fn values_written_by_an_entry_are_read_from_the_logged_entry_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let open = || Node::open(dir.path(), NodeOptions::default()).unwrap();
    let node = open();
    let (alice, s) = (signer(1), stream(7));
    let big: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let entry = signed(&alice, 1, vec![puts(vec![zwrite(s, b"big", &big)])]);
    assert_eq!(node.submit(&entry).unwrap().outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]));
    let counter = native_tx(&native::Body {
        version: u64::MAX,
        writes: vec![nwrite(s, b"n", native::Op::Increment(5))],
        ..native::Body::default()
    });
    let second = signed(&alice, 2, vec![counter]);
    node.submit(&second).unwrap();
    let check = |node: &Node| {
        let at = node.locate_value(&s, b"big", None).unwrap().expect("located");
        let file = std::fs::read(&at.file).unwrap();
        let entry_at = find(&file, &entry).expect("the entry is in the segment, unchanged");
        let inside = entry_at..entry_at + entry.len();
        assert!(inside.contains(&(at.offset as usize)), "the value is read from inside the entry");
        assert_eq!(&file[at.offset as usize..][..at.len], &big[..]);
        let copies: usize = segments(dir.path()).iter().map(|f| count(f, &big)).sum();
        assert_eq!(copies, 1, "the value is on disk once");
        // A computed value has no bytes in the entry: it is stored in its op.
        let n = node.locate_value(&s, b"n", None).unwrap().unwrap();
        let second_at = find(&file, &second).unwrap();
        assert!(!(second_at..second_at + second.len()).contains(&(n.offset as usize)));
        assert_eq!(&file[n.offset as usize..][..n.len], b"5");
        assert_eq!(node.get(&s, b"big", None).unwrap().unwrap().0, big);
    };
    check(&node);
    node.close().unwrap();
    check(&open());
}

fn segments(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn reopening_neither_verifies_nor_applies_and_keeps_access_control_and_replay_windows() {
    let fs = SimFs::new();
    let node = open(&fs, &Watched::All);
    let (alice, bob, s) = (signer(1), signer(2), stream(7));
    let first = signed(&alice, 1, vec![puts(vec![zwrite(s, b"k", b"v")])]);
    node.submit(&first).unwrap();
    node.submit(&signed(
        &alice,
        2,
        vec![support::controls(vec![control(ControlOp::GrantWriteRole, s, None, Some(bob.address()))])],
    ))
    .unwrap();
    assert_eq!((node.signatures_verified(), node.entries_applied()), (2, 2));
    let digest = node.digest_at(None).unwrap();
    node.close().unwrap();

    let node = open(&fs, &Watched::All);
    assert_eq!((node.signatures_verified(), node.entries_applied()), (0, 0));
    assert_eq!(node.digest_at(None).unwrap(), digest);
    assert!(node.is_writer_of_stream(&bob.address(), &s, None).unwrap());
    assert!(
        !node.is_writer_of_stream(&bob.address(), &s, Some(tx_version(1, 0))).unwrap(),
        "as of before the grant"
    );
    let results = |a: logkv_runtime::node::Applied| match a.outcome {
        EntryOutcome::Applied(r) => r,
        other => panic!("{other:?}"),
    };
    // The replay window survived: the same entry again is a replay.
    assert_eq!(results(node.submit(&first).unwrap()), [Some(TxResult::Replayed)]);
    // Access control survived: bob writes, carol may not.
    let carol = signer(3);
    assert_eq!(
        results(node.submit(&signed(&bob, 1, vec![puts(vec![zwrite(s, b"k", b"b")])])).unwrap()),
        [Some(TxResult::Commit)]
    );
    assert_eq!(
        results(node.submit(&signed(&carol, 1, vec![puts(vec![zwrite(s, b"k", b"c")])])).unwrap()),
        [Some(TxResult::SenderNoWritePermission)]
    );
    assert_eq!(node.get(&s, b"k", None).unwrap(), Some((b"b".to_vec(), tx_version(4, 0))));
}

#[test]
fn local_entries_take_the_next_nonce_across_reopening() {
    let fs = SimFs::new();
    let node = open(&fs, &Watched::All);
    let (me, s) = (signer(4), stream(7));
    for i in 0..2u8 {
        let a = node.append_entry(&me, vec![puts(vec![zwrite(s, b"k", &[i])])]).unwrap();
        assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]));
    }
    assert_eq!(node.signatures_verified(), 0, "the node signed them itself");
    node.close().unwrap();
    let node = open(&fs, &Watched::All);
    let a = node.append_entry(&me, vec![puts(vec![zwrite(s, b"k", b"z")])]).unwrap();
    assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]), "nonce 3, not a replay");
    assert_eq!(node.get(&s, b"k", None).unwrap(), Some((b"z".to_vec(), tx_version(3, 0))));
}

#[test]
fn entries_from_another_log_keep_its_positions_as_versions() {
    let fs = SimFs::new();
    let node = open(&fs, &Watched::All);
    let (alice, s) = (signer(1), stream(7));
    let a = node
        .apply_replicated(10, 0, &signed(&alice, 1, vec![puts(vec![zwrite(s, b"k", b"1")])]), None)
        .unwrap();
    assert_eq!((a.position, a.version), (1, tx_version(10, 0)));
    let b = node
        .apply_replicated(20, 0, &signed(&alice, 2, vec![puts(vec![zwrite(s, b"k", b"2")])]), None)
        .unwrap();
    assert_eq!((b.position, b.version), (2, tx_version(20, 0)));
    assert_eq!(
        node.get(&s, b"k", Some(tx_version(19, 9))).unwrap(),
        Some((b"1".to_vec(), tx_version(10, 0)))
    );
    assert_eq!(node.result(tx_version(20, 0)).unwrap().as_deref(), Some("Commit"));
    assert_eq!(node.replay_progress().applied_position, 20);
}

#[test]
fn a_record_that_cannot_be_stored_leaves_nothing_behind_in_memory() {
    let fs = SimFs::new();
    let node = open(&fs, &Watched::All);
    let (alice, bob, s, t) = (signer(1), signer(2), stream(7), stream(8));
    node.apply_replicated(10, 0, &signed(&alice, 1, vec![puts(vec![zwrite(s, b"k", b"1")])]), None).unwrap();
    let digest = node.digest_at(None).unwrap();
    // Bob claims stream t and takes nonce 1; at position 5 the versions
    // would go back in time, so the store refuses the record.
    let claim = signed(&bob, 1, vec![puts(vec![zwrite(t, b"x", b"y")])]);
    let err = node.apply_replicated(5, 0, &claim, None).unwrap_err();
    assert!(matches!(err, NodeError::Store(StoreError::OutOfOrder(_))), "{err}");
    assert_eq!(node.digest_at(None).unwrap(), digest);
    assert_eq!(node.holding_stream_ids().unwrap(), [s]);
    // Applied properly later, it is not a replay and claims t for bob.
    let mut reference = MemState::default();
    let mut applier = Applier::new(Watched::All);
    applier.apply_entry(
        &mut reference,
        10,
        0,
        &signed(&alice, 1, vec![puts(vec![zwrite(s, b"k", b"1")])]),
        None,
    );
    let want = applier.apply_entry(&mut reference, 30, 0, &claim, None);
    let got = node.apply_replicated(30, 0, &claim, None).unwrap();
    assert_eq!(got.outcome, want);
    assert_eq!(got.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]));
    assert_eq!(node.digest_at(None).unwrap(), reference.digest());
    assert!(node.is_admin(&bob.address(), &t, None).unwrap());
    // The stream keyspace numbering did not skip: t got the next one.
    node.close().unwrap();
    let node = open(&fs, &Watched::All);
    assert_eq!(node.holding_stream_ids().unwrap(), [s, t]);
    assert_eq!(node.get(&t, b"x", None).unwrap(), Some((b"y".to_vec(), tx_version(30, 0))));
}

#[test]
fn concurrent_submitters_see_each_others_sequenced_writes() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::open(dir.path(), NodeOptions::default()).unwrap());
    let s = stream(7);
    // Claim the stream and let every sender write it.
    let admin = signer(1);
    let senders: Vec<_> = (2..6).map(signer).collect();
    let grants =
        senders.iter().map(|w| control(ControlOp::GrantWriteRole, s, None, Some(w.address()))).collect();
    node.submit(&signed(&admin, 1, vec![support::controls(grants)])).unwrap();
    const PER_THREAD: u64 = 25;
    let entries: Vec<Vec<Vec<u8>>> = senders
        .iter()
        .map(|w| {
            (1..=PER_THREAD)
                .map(|nonce| {
                    let body = native::Body {
                        version: u64::MAX,
                        writes: vec![nwrite(s, b"count", native::Op::Increment(1))],
                        ..native::Body::default()
                    };
                    signed(w, nonce, vec![native_tx(&body)])
                })
                .collect()
        })
        .collect();
    let mut applied: Vec<(u64, Vec<u8>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .iter()
            .map(|mine| {
                let node = node.clone();
                scope.spawn(move || {
                    mine.iter().map(|e| (node.submit(e).unwrap().position, e.clone())).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let total = senders.len() as u64 * PER_THREAD;
    let (value, _) = node.get(&s, b"count", None).unwrap().unwrap();
    assert_eq!(value, total.to_string().into_bytes(), "no increment lost between group commits");
    // In log order, the in-memory state reaches the same digest.
    applied.sort();
    let mut reference = MemState::default();
    let mut applier = Applier::new(Watched::All);
    applier.apply_entry(
        &mut reference,
        1,
        0,
        &signed(
            &admin,
            1,
            vec![support::controls(
                senders
                    .iter()
                    .map(|w| control(ControlOp::GrantWriteRole, s, None, Some(w.address())))
                    .collect(),
            )],
        ),
        None,
    );
    for (position, bytes) in &applied {
        applier.apply_entry(&mut reference, *position, 0, bytes, None);
    }
    assert_eq!(node.digest_at(None).unwrap(), reference.digest());
}
