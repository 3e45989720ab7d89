//! Two independent nodes on the embedded store against the reference model.
//!
//! The random logs of `reference_model.rs` (random senders, grants and
//! every other access-control op, conflicting and stale transactions,
//! garbled bodies, forged signatures, replays and reused nonces, from the
//! shared `reference` module) are applied to two nodes that share nothing:
//! each has its own simulated file system, segment size and way in — one
//! takes entries from clients (`submit`, checking signatures itself), the
//! other follows a log (`apply_replicated`, told whether each signature
//! holds) and is closed and reopened part way. After every entry the two
//! report the same outcome, the same as the model's; at the end they have
//! the same digest as of every version, and the same results, values,
//! iteration and permissions as of every version as the model, which
//! shares no code with the runtime. Logs are spelled either way (protocol 1
//! with codec 1, or protocol 2 with codec 2), so values are read from inside
//! both kinds of entry.

mod reference;
mod support;

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use logkv_fs::SimFs;
use logkv_runtime::apply::Watched;
use logkv_runtime::digest::StateDigest;
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::node::{Node, NodeError, NodeOptions};
use logkv_runtime::quota::Quotas;
use logkv_runtime::types::{Address, StreamId};
use logkv_store::{Durability, LogConfig, RecoveryMode, ScanOptions, StoreOptions};
use proptest::prelude::*;
use reference::*;

const DIR: &str = "/node";

/// A node in its own simulated file system.
struct Replica {
    fs: SimFs,
    segment_size_bytes: u64,
    watched: Watched,
    quotas: Quotas,
}

impl Replica {
    fn open(&self) -> Result<Node, TestCaseError> {
        let log = LogConfig {
            segment_size_bytes: self.segment_size_bytes,
            // Durability is not what this compares; nothing is lost here.
            durability: Durability::None,
            recovery: RecoveryMode::Strict,
        };
        let store = StoreOptions { fs: Arc::new(self.fs.clone()), log, ..StoreOptions::default() };
        let options = NodeOptions {
            store,
            watched: self.watched.clone(),
            version_check_horizon: HORIZON,
            quotas: self.quotas,
        };
        ok(Node::open(Path::new(DIR), options))
    }
}

fn ok<T>(r: Result<T, NodeError>) -> Result<T, TestCaseError> {
    r.map_err(|e| TestCaseError::fail(e.to_string()))
}

fn results(outcome: &EntryOutcome) -> Result<Vec<Option<String>>, &'static str> {
    match outcome {
        EntryOutcome::Applied(r) => Ok(r.iter().map(|r| r.as_ref().map(ToString::to_string)).collect()),
        EntryOutcome::Malformed(_) => Err("malformed"),
        EntryOutcome::UpgradeNeeded(_) => Err("upgrade needed"),
    }
}

fn run_case(
    watch_all: bool,
    quotas: ModelQuotas,
    actions: &[Action],
    reopen_at: usize,
    encoding: Encoding,
) -> Result<(), TestCaseError> {
    let cast = Cast::new();
    let accounts = &cast.accounts;
    let some: BTreeSet<StreamId> = STREAMS[..2].iter().map(|s| StreamId(*s)).collect();
    let every: BTreeSet<StreamId> = STREAMS.iter().map(|s| StreamId(*s)).collect();
    let (watched_a, watched_b) = if watch_all {
        (Watched::All, Watched::Only(every))
    } else {
        (Watched::Only(some.clone()), Watched::Only(some))
    };
    let runtime_quotas = quotas.runtime();
    let a = Replica {
        fs: SimFs::new(),
        segment_size_bytes: 16 * 1024,
        watched: watched_a,
        quotas: runtime_quotas,
    };
    // Small segments: the second node rolls to new files often.
    let b = Replica {
        fs: SimFs::new(),
        segment_size_bytes: 2 * 1024,
        watched: watched_b,
        quotas: runtime_quotas,
    };
    let node_a = a.open()?;
    let mut node_b = b.open()?;
    let mut model = Model {
        watched: (!watch_all).then(|| STREAMS[..2].iter().copied().collect()),
        quotas,
        ..Model::default()
    };

    let mut entries = EntryLog::new(encoding);
    let mut versions: BTreeSet<u64> = BTreeSet::from([0, u64::MAX]);
    // The last version of each entry and the digest after it.
    let mut digests: Vec<(u64, StateDigest)> = Vec::new();
    let mut position = 0u64;
    let reopen_at = reopen_at % (actions.len() + 1);
    for (step, action) in actions.iter().enumerate() {
        if step == reopen_at {
            ok(node_b.close())?;
            node_b = b.open()?;
        }
        let Some((bytes, entry)) = entries.next(&cast, action, position + 1) else { continue };
        position += 1;
        let got_a = ok(node_a.submit(&bytes))?;
        let got_b = ok(node_b.apply_replicated(position, 0, &bytes, Some(entry.genuine)))?;
        prop_assert_eq!(got_a.position, position);
        prop_assert_eq!(&got_a.outcome, &got_b.outcome, "the nodes disagree at position {}", position);
        prop_assert_eq!(got_a.version, got_b.version);
        let digest = ok(node_a.digest_at(None))?;
        prop_assert_eq!(digest, ok(node_b.digest_at(None))?, "digests differ at position {}", position);
        digests.push((got_a.version, digest));
        let want = model.apply_entry(position, &entry);
        prop_assert_eq!(&results(&got_a.outcome), &want, "position {}: {:?}", position, entry);
        versions.extend((0..entry.txs.len() as u64).map(|i| (position << 16) | i));
    }
    for &(last, digest) in &digests {
        prop_assert_eq!(ok(node_a.digest_at(Some(last)))?, digest, "digest as of {}", last);
    }
    for &v in &versions {
        let (da, db) = (ok(node_a.digest_at(Some(v)))?, ok(node_b.digest_at(Some(v)))?);
        prop_assert_eq!(da, db, "digests as of {} differ", v);
    }
    for node in [&node_a, &node_b] {
        compare_with_model(node, &model, &versions, accounts)?;
    }
    Ok(())
}

/// The live pairs a scan of `s` finds as of `v`, from `start` if given
/// (a key and whether it is included), forward or in reverse.
fn scan(
    node: &Node,
    s: &StreamId,
    v: u64,
    start: Option<(&[u8], bool)>,
    rev: bool,
) -> Result<Vec<(K, u64, Vec<u8>)>, TestCaseError> {
    let mut options = ScanOptions::default().at(v);
    if let Some((k, incl)) = start {
        let bound = if incl { Bound::Included(k.to_vec()) } else { Bound::Excluded(k.to_vec()) };
        if rev {
            options.end = bound;
        } else {
            options.start = bound;
        }
    }
    if rev {
        options = options.reverse();
    }
    node.scan(s, options).map(|kv| ok(kv).map(|kv| (kv.key, kv.version, kv.value))).collect()
}

/// Results, values, iteration and permissions as of every version.
fn compare_with_model(
    node: &Node,
    model: &Model,
    versions: &BTreeSet<u64>,
    accounts: &[A],
) -> Result<(), TestCaseError> {
    for &v in versions {
        prop_assert_eq!(ok(node.result(v))?, model.results.get(&v).cloned(), "result at {}", v);
        let macl = model.acl_at(v);
        for s in &STREAMS {
            let sid = StreamId(*s);
            prop_assert_eq!(
                ok(node.is_new_stream(&sid, Some(v)))?,
                macl.is_new(s),
                "is_new {} at {}",
                hex(s),
                v
            );
            for rev in [false, true] {
                prop_assert_eq!(
                    scan(node, &sid, v, None, rev)?,
                    model.iter(s, v, None, rev),
                    "scan at {}",
                    v
                );
            }
            for k in KEYS {
                let got = ok(node.get(&sid, k, Some(v)))?.map(|(val, ver)| (ver, val));
                prop_assert_eq!(got, model.get_at(s, k, v), "get {}/{:?} at {}", hex(s), k, v);
                prop_assert_eq!(ok(node.is_special_key(&sid, k, Some(v)))?, macl.special(s, k));
                for (incl, rev) in [(false, false), (true, false), (false, true), (true, true)] {
                    prop_assert_eq!(
                        scan(node, &sid, v, Some((k, incl)), rev)?,
                        model.iter(s, v, Some((k, incl)), rev),
                        "scan {} from {:?} (inclusive {}, reverse {}) at {}",
                        hex(s),
                        k,
                        incl,
                        rev,
                        v
                    );
                }
            }
            for a in accounts {
                let addr = Address(*a);
                prop_assert_eq!(ok(node.is_admin(&addr, &sid, Some(v)))?, macl.admin(a, s), "admin at {}", v);
                prop_assert_eq!(ok(node.is_writer_of_stream(&addr, &sid, Some(v)))?, macl.writer(a, s));
                for k in KEYS {
                    prop_assert_eq!(
                        ok(node.is_writer_of_key(&addr, &sid, k, Some(v)))?,
                        macl.special_writer(a, s, k)
                    );
                    prop_assert_eq!(
                        ok(node.has_write_permission(&addr, &sid, k, Some(v)))?,
                        macl.may_write(a, s, k)
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn two_store_nodes_agree_at_every_version_and_match_the_reference_model(
        (watch_all, quotas, actions) in case_gen(),
        reopen_at in any::<usize>(),
        compact in any::<bool>(),
    ) {
        let encoding = if compact { Encoding::Compact } else { Encoding::Fixed };
        run_case(watch_all, quotas, &actions, reopen_at, encoding)?;
    }
}
