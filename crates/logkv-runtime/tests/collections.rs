//! Hashes and sets (protocol 7): store-backed nodes and the in-memory
//! state applying the same entries agree on every answer and on the
//! digest; a string write over a collection, or its deletion, removes it
//! with one flush whatever its size; a field op touches as many records on
//! a big collection as on a small one; everything survives a reopen; and a
//! random command sequence matches a plain model.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use logkv_fs::SimFs;
use logkv_runtime::apply::{OpAnswer, TxResult, Watched};
use logkv_runtime::codec::native::{self, Body, Op};
use logkv_runtime::collection::{self, encode_args, CollOp, Meta, WRONGTYPE};
use logkv_runtime::entry::{Applier, EntryOutcome};
use logkv_runtime::envelope::{Protocol, TxPart};
use logkv_runtime::mem_state::MemState;
use logkv_runtime::node::{Applied, Node, NodeOptions};
use logkv_store::{Durability, LogConfig, RecoveryMode, ScanOptions, StoreOptions};
use proptest::prelude::*;
use support::{nwrite, signed_as, signer, stream};

const T0: u64 = 4_102_444_800_000;

fn open(fs: &SimFs) -> Node {
    let log = LogConfig {
        segment_size_bytes: 1 << 20,
        durability: Durability::None,
        recovery: RecoveryMode::Strict,
    };
    let store = StoreOptions { fs: Arc::new(fs.clone()), log, ..StoreOptions::default() };
    Node::open(Path::new("/node"), NodeOptions { store, watched: Watched::All, ..NodeOptions::default() })
        .expect("open node")
}

fn tx(ops: Vec<(&[u8], Op)>) -> TxPart {
    let s = stream(1);
    let body = Body {
        version: u64::MAX,
        check_reads_only: true,
        writes: ops.into_iter().map(|(k, op)| nwrite(s, k, op)).collect(),
        ..Body::default()
    };
    native::compact_tx(&body, [s])
}

fn coll<A: AsRef<[u8]>>(op: CollOp, args: &[A]) -> Op {
    Op::Collection { op, args: encode_args(args).into() }
}

/// A node and the in-memory state applying the same entries.
struct Replica {
    fs: SimFs,
    node: Node,
    mem: MemState,
    applier: Applier,
    position: u64,
}

impl Replica {
    fn new() -> Self {
        let fs = SimFs::new();
        Replica {
            node: open(&fs),
            fs,
            mem: MemState::default(),
            applier: Applier::new(Watched::All),
            position: 0,
        }
    }

    fn apply_as(&mut self, protocol: Protocol, txs: Vec<TxPart>) -> Applied {
        self.position += 1;
        let time = T0 + self.position;
        let bytes = signed_as(protocol, &signer(1), self.position, txs);
        let applied = self.node.apply_replicated(self.position, time, &bytes, None).unwrap();
        let mem = self.applier.apply_entry(&mut self.mem, self.position, time, &bytes, None);
        assert_eq!(mem, applied.outcome);
        assert_eq!(self.node.digest_at(None).unwrap(), self.mem.digest(), "node and in-memory state agree");
        applied
    }

    /// One transaction of `ops`: its answers (it must commit).
    fn run(&mut self, ops: Vec<(&[u8], Op)>) -> Vec<OpAnswer> {
        let a = self.apply_as(Protocol::V7, vec![tx(ops)]);
        assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]));
        a.answers.into_iter().next().unwrap()
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let on_node = self.node.get(&stream(1), key, None).unwrap().map(|(v, _)| v);
        let in_mem = self.mem.get_at(&stream(1), key, u64::MAX).map(|(_, v)| v.to_vec());
        assert_eq!(on_node, in_mem);
        on_node
    }

    /// The fields (members, with empty values) of the collection at `key`,
    /// read through its metadata as a server reads them.
    fn elements(&self, key: &[u8]) -> Option<BTreeMap<Vec<u8>, Vec<u8>>> {
        let meta = Meta::decode(&self.get(key)?).expect("a collection");
        let es = meta.elements;
        let on_node: BTreeMap<_, _> = self
            .node
            .scan(&es, ScanOptions::default())
            .map(|kv| kv.unwrap())
            .map(|kv| (collection::member_of(&kv.key).unwrap().to_vec(), kv.value))
            .collect();
        let in_mem: BTreeMap<_, _> = self
            .mem
            .iter_at(&es, u64::MAX, None, false)
            .map(|(k, _, v)| (collection::member_of(k).unwrap().to_vec(), v.to_vec()))
            .collect();
        assert_eq!(on_node, in_mem);
        assert_eq!(meta.len, on_node.len() as u64, "the count is kept in step");
        Some(on_node)
    }

    fn reopen(&mut self) {
        let digest = self.node.digest_at(None).unwrap();
        let node = std::mem::replace(&mut self.node, open(&SimFs::new()));
        node.close().unwrap();
        self.node = open(&self.fs);
        assert_eq!(self.node.digest_at(None).unwrap(), digest);
    }
}

fn count(n: i64) -> OpAnswer {
    OpAnswer::Count(n)
}

#[test]
fn hash_ops_answer_as_redis_and_keep_their_count() {
    let mut r = Replica::new();
    let a = r.run(vec![
        (b"h", coll(CollOp::HashSet, &["a", "1", "b", "2"])),
        (b"h", coll(CollOp::HashSet, &["b", "3", "c", ""])),
        (b"h", coll(CollOp::HashSetIfAbsent, &["a", "x"])),
        (b"h", coll(CollOp::HashIncrement, &["n", "5"])),
        (b"h", coll(CollOp::HashIncrement, &["a", "-3"])),
        (b"h", coll(CollOp::HashIncrement, &["b", "x"])),
        (b"h", coll(CollOp::HashIncrementFloat, &["f", "10.5"])),
        (b"h", coll(CollOp::HashIncrementFloat, &["c", "1"])),
        (b"h", coll(CollOp::HashDelete, &["c", "zz", "f"])),
    ]);
    assert_eq!(
        a,
        [
            count(2),
            count(1),
            count(0),
            OpAnswer::Integer(5),
            OpAnswer::Integer(-2),
            OpAnswer::Refused("ERR value is not an integer or out of range"),
            OpAnswer::Value(Some(b"10.5".to_vec())),
            OpAnswer::Refused("ERR hash value is not a float"),
            count(2),
        ]
    );
    let want: BTreeMap<Vec<u8>, Vec<u8>> =
        [("a", "-2"), ("b", "3"), ("n", "5")].map(|(k, v)| (k.into(), v.into())).into_iter().collect();
    assert_eq!(r.elements(b"h"), Some(want));
    // Emptied: the key goes.
    assert_eq!(r.run(vec![(b"h", coll(CollOp::HashDelete, &["a", "b", "n"]))]), [count(3)]);
    assert_eq!(r.get(b"h"), None);
    r.reopen();
    assert_eq!(r.get(b"h"), None);
}

#[test]
fn kinds_refuse_each_other_and_a_string_write_replaces_a_collection() {
    let mut r = Replica::new();
    r.run(vec![(b"s", Op::Put(b"text".to_vec().into())), (b"set", coll(CollOp::SetAdd, &["x", "y", "x"]))]);
    let a = r.run(vec![
        (b"s", coll(CollOp::HashSet, &["f", "v"])),
        (b"set", coll(CollOp::HashSet, &["f", "v"])),
        (b"set", coll(CollOp::SetRemove, &["y", "nope"])),
    ]);
    assert_eq!(
        a,
        [OpAnswer::Refused(WRONGTYPE), OpAnswer::Refused(WRONGTYPE), OpAnswer::Members(vec![b"y".to_vec()])]
    );
    assert_eq!(r.get(b"s"), Some(b"text".to_vec()));
    // A string written over the set removes it: a set made again starts empty.
    r.run(vec![(b"set", Op::Put(b"plain".to_vec().into()))]);
    assert_eq!(r.get(b"set"), Some(b"plain".to_vec()));
    assert_eq!(r.run(vec![(b"set", coll(CollOp::SetAdd, &["z"]))]), [OpAnswer::Refused(WRONGTYPE)]);
    r.run(vec![(b"set", Op::DeleteIfPresent), (b"set", coll(CollOp::SetAdd, &["z"]))]);
    let z: BTreeMap<Vec<u8>, Vec<u8>> = [(b"z".to_vec(), Vec::new())].into_iter().collect();
    assert_eq!(r.elements(b"set"), Some(z));
    // An expiry change keeps the collection.
    r.run(vec![(
        b"set",
        Op::Expire { cond: logkv_runtime::codec::ExpireCond::Always, at: Some(T0 + 1_000_000) },
    )]);
    assert_eq!(r.run(vec![(b"set", coll(CollOp::SetAdd, &["z", "w"]))]), [count(1)]);
    r.reopen();
    assert_eq!(r.elements(b"set").map(|m| m.len()), Some(2));
}

#[test]
fn deleting_a_collection_writes_as_many_records_whatever_its_size() {
    let mut r = Replica::new();
    let members =
        |from: usize, n: usize| (from..from + n).map(|i| format!("member-{i:06}")).collect::<Vec<_>>();
    r.run(vec![(b"small", coll(CollOp::SetAdd, &members(0, 3)))]);
    for chunk in 0..20 {
        r.run(vec![(b"big", coll(CollOp::SetAdd, &members(chunk * 500, 500)))]);
    }
    assert_eq!(r.elements(b"big").map(|m| m.len()), Some(10_000));
    let index = |r: &Replica| r.node.store().index_entries();
    // A field op on either touches the same number of records.
    let mut touched = Vec::new();
    for key in [&b"small"[..], b"big"] {
        let before = index(&r);
        assert_eq!(r.run(vec![(key, coll(CollOp::SetAdd, &["new"]))]), [count(1)]);
        touched.push(index(&r) - before);
    }
    assert_eq!(touched[0], touched[1]);
    let mut deleted = Vec::new();
    for key in [&b"small"[..], b"big"] {
        let before = index(&r);
        assert_eq!(
            r.run(vec![(key, Op::DeleteIfPresent)]),
            [OpAnswer::Wrote { existed: true, changed: true }]
        );
        deleted.push(index(&r) as i64 - before as i64);
    }
    assert_eq!(deleted[0], deleted[1], "a delete is one flush, not one record per element");
    r.reopen();
    assert_eq!((r.get(b"small"), r.get(b"big")), (None, None));
}

/// One command of the model test.
#[derive(Debug, Clone)]
enum Cmd {
    HSet(u8, Vec<(u8, u8)>),
    HDel(u8, Vec<u8>),
    HIncr(u8, u8, i8),
    SAdd(u8, Vec<u8>),
    SRem(u8, Vec<u8>),
    SMove(u8, u8, u8),
    ZAdd(u8, Vec<(u8, i8)>),
    ZRem(u8, Vec<u8>),
    LPush(u8, bool, Vec<u8>),
    LPop(u8, bool, u8),
    LTrim(u8, i8, i8),
    LMove(u8, u8, bool, bool),
    LRem(u8, i8, u8),
    LInsert(u8, bool, u8, u8),
    Set(u8),
    Del(u8),
    Reopen,
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let key = 0u8..4;
    let small = || proptest::collection::vec(0u8..6, 1..4);
    prop_oneof![
        (key.clone(), proptest::collection::vec((0u8..6, 0u8..3), 1..4)).prop_map(|(k, p)| Cmd::HSet(k, p)),
        (key.clone(), small()).prop_map(|(k, f)| Cmd::HDel(k, f)),
        (key.clone(), 0u8..6, any::<i8>()).prop_map(|(k, f, d)| Cmd::HIncr(k, f, d)),
        (key.clone(), small()).prop_map(|(k, m)| Cmd::SAdd(k, m)),
        (key.clone(), small()).prop_map(|(k, m)| Cmd::SRem(k, m)),
        (key.clone(), key.clone(), 0u8..6).prop_map(|(s, d, m)| Cmd::SMove(s, d, m)),
        (key.clone(), proptest::collection::vec((0u8..6, -3i8..3), 1..4)).prop_map(|(k, p)| Cmd::ZAdd(k, p)),
        (key.clone(), small()).prop_map(|(k, m)| Cmd::ZRem(k, m)),
        (key.clone(), any::<bool>(), small()).prop_map(|(k, l, e)| Cmd::LPush(k, l, e)),
        (key.clone(), any::<bool>(), 0u8..4).prop_map(|(k, l, n)| Cmd::LPop(k, l, n)),
        (key.clone(), -4i8..4, -4i8..4).prop_map(|(k, a, b)| Cmd::LTrim(k, a, b)),
        (key.clone(), key.clone(), any::<bool>(), any::<bool>())
            .prop_map(|(s, d, f, t)| Cmd::LMove(s, d, f, t)),
        (key.clone(), -3i8..3, 0u8..6).prop_map(|(k, n, e)| Cmd::LRem(k, n, e)),
        (key.clone(), any::<bool>(), 0u8..6, 0u8..6).prop_map(|(k, a, p, e)| Cmd::LInsert(k, a, p, e)),
        key.clone().prop_map(Cmd::Set),
        key.prop_map(Cmd::Del),
        Just(Cmd::Reopen),
    ]
}

/// What a key holds in the model.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str,
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    ZSet(BTreeMap<Vec<u8>, i64>),
    List(std::collections::VecDeque<Vec<u8>>),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_commands_match_a_model(cmds in proptest::collection::vec(cmd(), 1..40)) {
        let mut r = Replica::new();
        let mut model: BTreeMap<Vec<u8>, Value> = BTreeMap::new();
        let name = |b: u8| vec![b'k', b'0' + b];
        let field = |b: u8| vec![b'f', b'0' + b];
        for c in cmds {
            let (key, op, want) = match c {
                Cmd::Reopen => {
                    r.reopen();
                    continue;
                }
                Cmd::Set(k) => {
                    model.insert(name(k), Value::Str);
                    (name(k), Op::Put(b"str".to_vec().into()), None)
                }
                Cmd::Del(k) => {
                    let existed = model.remove(&name(k)).is_some();
                    (name(k), Op::DeleteIfPresent, Some(OpAnswer::Wrote { existed, changed: existed }))
                }
                Cmd::HSet(k, pairs) => {
                    let args: Vec<Vec<u8>> = pairs.iter().flat_map(|(f, v)| [field(*f), vec![*v]]).collect();
                    let want = match model.entry(name(k)).or_insert_with(|| Value::Hash(BTreeMap::new())) {
                        Value::Hash(h) => count(pairs.iter().filter(|(f, v)| h.insert(field(*f), vec![*v]).is_none()).count() as i64),
                        _ => OpAnswer::Refused(WRONGTYPE),
                    };
                    (name(k), coll(CollOp::HashSet, &args), Some(want))
                }
                Cmd::HDel(k, fs) => {
                    let want = match model.get_mut(&name(k)) {
                        None => count(0),
                        Some(Value::Hash(h)) => count(fs.iter().collect::<BTreeSet<_>>().into_iter().filter(|f| h.remove(&field(**f)).is_some()).count() as i64),
                        Some(_) => OpAnswer::Refused(WRONGTYPE),
                    };
                    let args: Vec<Vec<u8>> = fs.iter().map(|f| field(*f)).collect();
                    (name(k), coll(CollOp::HashDelete, &args), Some(want))
                }
                Cmd::HIncr(k, f, d) => {
                    let want = match model.entry(name(k)).or_insert_with(|| Value::Hash(BTreeMap::new())) {
                        Value::Hash(h) => {
                            let old = h.get(&field(f)).map(|v| std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()));
                            match old {
                                Some(None) => OpAnswer::Refused("ERR hash value is not an integer"),
                                old => {
                                    let new = old.flatten().unwrap_or(0) + i64::from(d);
                                    h.insert(field(f), new.to_string().into_bytes());
                                    OpAnswer::Integer(new)
                                }
                            }
                        }
                        _ => OpAnswer::Refused(WRONGTYPE),
                    };
                    (name(k), coll(CollOp::HashIncrement, &[field(f), d.to_string().into_bytes()]), Some(want))
                }
                Cmd::SAdd(k, ms) => {
                    let want = match model.entry(name(k)).or_insert_with(|| Value::Set(BTreeSet::new())) {
                        Value::Set(s) => count(ms.iter().filter(|m| s.insert(field(**m))).count() as i64),
                        _ => OpAnswer::Refused(WRONGTYPE),
                    };
                    let args: Vec<Vec<u8>> = ms.iter().map(|m| field(*m)).collect();
                    (name(k), coll(CollOp::SetAdd, &args), Some(want))
                }
                Cmd::SMove(src, dst, m) => {
                    let is_set = |v: Option<&Value>| matches!(v, None | Some(Value::Set(_)));
                    let want = if !is_set(model.get(&name(src))) || !is_set(model.get(&name(dst))) {
                        OpAnswer::Refused(WRONGTYPE)
                    } else if src == dst {
                        count(i64::from(matches!(model.get(&name(src)), Some(Value::Set(s)) if s.contains(&field(m)))))
                    } else {
                        let moved = match model.get_mut(&name(src)) {
                            Some(Value::Set(s)) => s.remove(&field(m)),
                            _ => false,
                        };
                        match moved {
                            true => {
                                match model.entry(name(dst)).or_insert_with(|| Value::Set(BTreeSet::new())) {
                                    Value::Set(d) => d.insert(field(m)),
                                    _ => unreachable!("checked to be a set"),
                                };
                                count(1)
                            }
                            false => count(0),
                        }
                    };
                    (name(src), coll(CollOp::SetMove, &[name(dst), field(m)]), Some(want))
                }
                Cmd::ZAdd(k, pairs) => {
                    let want = match model.entry(name(k)).or_insert_with(|| Value::ZSet(BTreeMap::new())) {
                        Value::ZSet(z) => count(pairs.iter().filter(|(m, s)| z.insert(field(*m), i64::from(*s)).is_none()).count() as i64),
                        _ => OpAnswer::Refused(WRONGTYPE),
                    };
                    let mut args: Vec<Vec<u8>> = vec![vec![0]];
                    args.extend(pairs.iter().flat_map(|(m, s)| [s.to_string().into_bytes(), field(*m)]));
                    (name(k), coll(CollOp::ZAdd, &args), Some(want))
                }
                Cmd::ZRem(k, ms) => {
                    let want = match model.get_mut(&name(k)) {
                        None => OpAnswer::Scored(Vec::new()),
                        Some(Value::ZSet(z)) => OpAnswer::Scored(
                            ms.iter().filter_map(|m| Some((field(*m), z.remove(&field(*m))?.to_string().into_bytes()))).collect(),
                        ),
                        Some(_) => OpAnswer::Refused(WRONGTYPE),
                    };
                    let args: Vec<Vec<u8>> = ms.iter().map(|m| field(*m)).collect();
                    (name(k), coll(CollOp::ZRemove, &args), Some(want))
                }
                Cmd::LPush(k, left, es) => {
                    let want = match model.entry(name(k)).or_insert_with(|| Value::List(Default::default())) {
                        Value::List(l) => {
                            for e in &es {
                                if left { l.push_front(field(*e)) } else { l.push_back(field(*e)) }
                            }
                            count(l.len() as i64)
                        }
                        _ => OpAnswer::Refused(WRONGTYPE),
                    };
                    let mut args: Vec<Vec<u8>> = vec![if left { b"L".to_vec() } else { b"R".to_vec() }, Vec::new()];
                    args.extend(es.iter().map(|e| field(*e)));
                    (name(k), coll(CollOp::ListPush, &args), Some(want))
                }
                Cmd::LPop(k, left, n) => {
                    let want = match model.get_mut(&name(k)) {
                        None => OpAnswer::Value(None),
                        Some(Value::List(l)) => OpAnswer::Members(
                            (0..n).filter_map(|_| if left { l.pop_front() } else { l.pop_back() }).collect(),
                        ),
                        Some(_) => OpAnswer::Refused(WRONGTYPE),
                    };
                    let side = if left { b"L".to_vec() } else { b"R".to_vec() };
                    (name(k), coll(CollOp::ListPop, &[side, n.to_string().into_bytes()]), Some(want))
                }
                Cmd::LTrim(k, start, stop) => {
                    let want = match model.get_mut(&name(k)) {
                        None => count(0),
                        Some(Value::List(l)) => {
                            let len = l.len() as i64;
                            let start = if start < 0 { (i64::from(start) + len).max(0) } else { i64::from(start) };
                            let stop = if stop < 0 { i64::from(stop) + len } else { i64::from(stop).min(len - 1) };
                            let kept: std::collections::VecDeque<Vec<u8>> = if start > stop || start >= len {
                                Default::default()
                            } else {
                                l.iter().skip(start as usize).take((stop - start + 1) as usize).cloned().collect()
                            };
                            let removed = l.len() - kept.len();
                            *l = kept;
                            count(removed as i64)
                        }
                        Some(_) => OpAnswer::Refused(WRONGTYPE),
                    };
                    let args = [start.to_string(), stop.to_string()];
                    (name(k), coll(CollOp::ListTrim, &args), Some(want))
                }
                Cmd::LRem(k, n, e) => {
                    let want = match model.get_mut(&name(k)) {
                        None => count(0),
                        Some(Value::List(l)) => {
                            let limit = if n == 0 { usize::MAX } else { n.unsigned_abs() as usize };
                            let mut hits: Vec<usize> = (0..l.len()).filter(|i| l[*i] == field(e)).collect();
                            if n < 0 {
                                hits.reverse();
                            }
                            hits.truncate(limit);
                            let kept = l.iter().enumerate().filter(|(i, _)| !hits.contains(i)).map(|(_, v)| v.clone());
                            *l = kept.collect();
                            count(hits.len() as i64)
                        }
                        Some(_) => OpAnswer::Refused(WRONGTYPE),
                    };
                    (name(k), coll(CollOp::ListRemove, &[n.to_string().into_bytes(), field(e)]), Some(want))
                }
                Cmd::LInsert(k, after, pivot, e) => {
                    let want = match model.get_mut(&name(k)) {
                        None => count(0),
                        Some(Value::List(l)) => match l.iter().position(|v| *v == field(pivot)) {
                            None => count(-1),
                            Some(at) => {
                                l.insert(if after { at + 1 } else { at }, field(e));
                                count(l.len() as i64)
                            }
                        },
                        Some(_) => OpAnswer::Refused(WRONGTYPE),
                    };
                    let side = if after { b"A".to_vec() } else { b"B".to_vec() };
                    (name(k), coll(CollOp::ListInsert, &[side, field(pivot), field(e)]), Some(want))
                }
                Cmd::LMove(src, dst, from_left, to_left) => {
                    let kind_ok = |v: Option<&Value>| matches!(v, None | Some(Value::List(_)));
                    let want = match model.get(&name(src)) {
                        None => OpAnswer::Value(None),
                        Some(Value::List(_)) if kind_ok(model.get(&name(dst))) => {
                            let Some(Value::List(l)) = model.get_mut(&name(src)) else { unreachable!() };
                            let e = if from_left { l.pop_front() } else { l.pop_back() }.unwrap();
                            let Value::List(d) = model.entry(name(dst)).or_insert_with(|| Value::List(Default::default())) else {
                                unreachable!()
                            };
                            if to_left { d.push_front(e.clone()) } else { d.push_back(e.clone()) }
                            OpAnswer::Value(Some(e))
                        }
                        Some(_) => OpAnswer::Refused(WRONGTYPE),
                    };
                    let side = |left: bool| if left { b"L".to_vec() } else { b"R".to_vec() };
                    (name(src), coll(CollOp::ListMove, &[name(dst), side(from_left), side(to_left)]), Some(want))
                }
                Cmd::SRem(k, ms) => {
                    let want = match model.get_mut(&name(k)) {
                        None => OpAnswer::Members(Vec::new()),
                        Some(Value::Set(s)) => OpAnswer::Members(ms.iter().filter(|m| s.remove(&field(**m))).map(|m| field(*m)).collect()),
                        Some(_) => OpAnswer::Refused(WRONGTYPE),
                    };
                    let args: Vec<Vec<u8>> = ms.iter().map(|m| field(*m)).collect();
                    (name(k), coll(CollOp::SetRemove, &args), Some(want))
                }
            };
            // A collection the command emptied (or a refused op that made one) is gone.
            model.retain(|_, v| match v {
                Value::Hash(h) => !h.is_empty(),
                Value::Set(s) => !s.is_empty(),
                Value::ZSet(z) => !z.is_empty(),
                Value::List(l) => !l.is_empty(),
                Value::Str => true,
            });
            let got = r.run(vec![(&key, op)]);
            if let Some(want) = want {
                prop_assert_eq!(&got[0], &want);
            }
            for (k, v) in &model {
                match v {
                    Value::Str => prop_assert_eq!(r.get(k), Some(b"str".to_vec())),
                    Value::Hash(h) => prop_assert_eq!(r.elements(k), Some(h.clone())),
                    Value::Set(s) => prop_assert_eq!(
                        r.elements(k).map(|m| m.into_keys().collect::<BTreeSet<_>>()),
                        Some(s.clone())
                    ),
                    Value::ZSet(z) => {
                        let mut want: Vec<(i64, Vec<u8>)> = z.iter().map(|(m, s)| (*s, m.clone())).collect();
                        want.sort();
                        let want: Vec<(String, Vec<u8>)> = want.into_iter().map(|(s, m)| (s.to_string(), m)).collect();
                        prop_assert_eq!(zset(&r, k), want);
                    }
                    Value::List(l) => prop_assert_eq!(list(&r, k), l.iter().cloned().collect::<Vec<_>>()),
                }
            }
            for b in 0..4 {
                if !model.contains_key(&name(b)) {
                    prop_assert_eq!(r.get(&name(b)), None);
                }
            }
        }
    }
}

#[test]
fn collection_ops_exist_only_from_protocol_7() {
    let mut r = Replica::new();
    let a = r.apply_as(Protocol::V6, vec![tx(vec![(b"h", coll(CollOp::SetAdd, &["x"]))])]);
    assert_eq!(
        support::result_strings(&a.outcome),
        [Some("DataParseError: Invalid stream data".to_string())]
    );
    assert_eq!(r.get(b"h"), None);
}

/// The scale check: on a hash of 100,000 fields, each field op adds as
/// many index entries as on a hash of ten (records counted, not time).
#[test]
fn field_ops_on_a_hundred_thousand_fields_touch_what_they_touch_on_ten() {
    let mut r = Replica::new();
    let pairs = |from: usize, n: usize| {
        (from..from + n).flat_map(|i| [format!("field-{i:06}"), format!("{i}")]).collect::<Vec<_>>()
    };
    r.run(vec![(b"small", coll(CollOp::HashSet, &pairs(0, 10)))]);
    for chunk in 0..50 {
        r.run(vec![(b"big", coll(CollOp::HashSet, &pairs(chunk * 2_000, 2_000)))]);
    }
    let ops: Vec<Op> = vec![
        coll(CollOp::HashSet, &["new", "v"]),
        coll(CollOp::HashSet, &["field-000003", "changed"]),
        coll(CollOp::HashIncrement, &["field-000004", "1"]),
        coll(CollOp::HashDelete, &["field-000005"]),
        coll(CollOp::SetAdd, &["x"]),
    ];
    for op in ops {
        let mut touched = Vec::new();
        for key in [&b"small"[..], b"big"] {
            let before = r.node.store().index_entries();
            r.run(vec![(key, op.clone())]);
            touched.push(r.node.store().index_entries() - before);
        }
        assert_eq!(touched[0], touched[1], "{op:?}");
    }
    let big = r.get(b"big").and_then(|m| Meta::decode(&m)).unwrap();
    assert_eq!(big.len, 100_000);
}

/// A sorted set's two element kinds stay in step: every member has its
/// score and one score index key, whatever ZADD's options did.
fn zset(r: &Replica, key: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Some(meta) = r.get(key).and_then(|m| Meta::decode(&m)) else { return Vec::new() };
    let es = meta.elements;
    let keys: Vec<(Vec<u8>, Vec<u8>)> =
        r.node.scan(&es, ScanOptions::default()).map(|kv| kv.unwrap()).map(|kv| (kv.key, kv.value)).collect();
    let by_score: Vec<(String, Vec<u8>)> = keys
        .iter()
        .filter_map(|(k, _)| collection::of_score_key(k))
        .map(|(s, m)| (collection::format_score(s), m.to_vec()))
        .collect();
    let mut by_member: Vec<(String, Vec<u8>)> = keys
        .iter()
        .filter_map(|(k, v)| {
            Some((collection::format_score(collection::score_of(v)?), collection::member_of(k)?.to_vec()))
        })
        .collect();
    let mut sorted = by_score.clone();
    sorted.sort_by(|a, b| a.1.cmp(&b.1));
    by_member.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(sorted, by_member, "the score index matches the scores");
    assert_eq!(meta.len as usize, by_member.len());
    by_score
}

#[test]
fn sorted_set_ops_keep_scores_and_their_index_in_step() {
    use logkv_runtime::collection::zadd;
    let mut r = Replica::new();
    let opts = |bits: u8| vec![bits];
    let za = |bits: u8, pairs: &[&str]| {
        let mut args: Vec<Vec<u8>> = vec![opts(bits)];
        args.extend(pairs.iter().map(|s| s.as_bytes().to_vec()));
        coll(CollOp::ZAdd, &args)
    };
    let a = r.run(vec![
        (b"z", za(0, &["3", "c", "1", "a", "2", "b"])),
        (b"z", za(zadd::CH, &["5", "a", "-inf", "lo"])),
        (b"z", za(zadd::NX, &["9", "a", "4", "d"])),
        (b"z", za(zadd::XX | zadd::CH, &["0", "b", "7", "nomember"])),
        (b"z", za(zadd::GT, &["1", "a"])),
        (b"z", za(zadd::INCR, &["2.5", "a"])),
        (b"z", za(zadd::INCR | zadd::NX, &["1", "a"])),
        (b"z", za(0, &["x", "a"])),
        (b"z", coll(CollOp::ZRemove, &["c", "nomember"])),
    ]);
    assert_eq!(
        a,
        [
            count(3),
            count(2),
            count(1),
            count(1),
            count(0),
            OpAnswer::Value(Some(b"7.5".to_vec())),
            OpAnswer::Value(None),
            OpAnswer::Refused("ERR value is not a valid float"),
            OpAnswer::Scored(vec![(b"c".to_vec(), b"3".to_vec())]),
        ]
    );
    let order = |r: &Replica| {
        zset(r, b"z")
            .into_iter()
            .map(|(s, m)| format!("{}={s}", String::from_utf8(m).unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(order(&r), ["lo=-inf", "b=0", "d=4", "a=7.5"]);
    assert_eq!(
        r.run(vec![(b"set", coll(CollOp::SetAdd, &["m"])), (b"set", za(0, &["1", "m"]))])[1],
        OpAnswer::Refused(WRONGTYPE)
    );
    r.reopen();
    assert_eq!(order(&r), ["lo=-inf", "b=0", "d=4", "a=7.5"]);
    r.run(vec![(b"z", coll(CollOp::ZRemove, &["lo", "b", "d", "a"]))]);
    assert_eq!(r.get(b"z"), None);
}

/// A list's elements in order, read through its metadata.
fn list(r: &Replica, key: &[u8]) -> Vec<Vec<u8>> {
    let Some(meta) = r.get(key).and_then(|m| Meta::decode(&m)) else { return Vec::new() };
    let es = meta.elements;
    let values: Vec<Vec<u8>> = r.node.scan(&es, ScanOptions::default()).map(|kv| kv.unwrap().value).collect();
    assert_eq!(values.len() as u64, meta.len);
    for (i, v) in values.iter().enumerate() {
        let at = meta.position(i as i64).unwrap();
        assert_eq!(
            r.node.get(&es, &collection::position_key(at), None).unwrap().map(|(v, _)| v).as_ref(),
            Some(v)
        );
    }
    values
}

#[test]
fn list_pushes_and_pops_at_both_ends_and_sets_by_index() {
    let mut r = Replica::new();
    let push = |side: &str, x: &str, es: &[&str]| {
        let mut args = vec![side.to_string(), x.to_string()];
        args.extend(es.iter().map(|e| e.to_string()));
        coll(CollOp::ListPush, &args)
    };
    let pop = |side: &str, n: &str| coll(CollOp::ListPop, &[side, n]);
    let a = r.run(vec![
        (b"l", push("R", "X", &["never"])),
        (b"l", push("L", "", &["a", "b", "c"])),
        (b"l", push("R", "", &["d", "e"])),
        (b"l", coll(CollOp::ListSet, &["-1", "E"])),
        (b"l", coll(CollOp::ListSet, &["9", "x"])),
        (b"l", pop("L", "")),
        (b"l", pop("R", "2")),
        (b"none", pop("L", "")),
    ]);
    let members = |v: &[&str]| OpAnswer::Members(v.iter().map(|s| s.as_bytes().to_vec()).collect());
    assert_eq!(
        a,
        [
            count(0),
            count(3),
            count(5),
            count(1),
            OpAnswer::Refused("ERR index out of range"),
            members(&["c"]),
            members(&["E", "d"]),
            OpAnswer::Value(None),
        ]
    );
    assert_eq!(list(&r, b"l"), [b"b".to_vec(), b"a".to_vec()]);
    r.reopen();
    assert_eq!(r.run(vec![(b"l", pop("R", "5"))]), [members(&["a", "b"])]);
    assert_eq!(r.get(b"l"), None, "an emptied list is gone");
}

/// After a flush of the stream, a key that held a collection is a plain
/// key again, even written with bytes that look like a collection's
/// metadata.
#[test]
fn a_flush_leaves_no_key_reading_as_a_collection() {
    let mut r = Replica::new();
    r.run(vec![(b"h", coll(CollOp::HashSet, &["f", "v"]))]);
    let lookalike = r.get(b"h").unwrap();
    r.run(vec![(logkv_runtime::codec::FLUSH_KEY, Op::Flush)]);
    let a = r.run(vec![
        (b"h", Op::Put(lookalike.clone().into())),
        (b"h", Op::Get),
        (b"h", coll(CollOp::HashSet, &["f", "v"])),
    ]);
    assert_eq!(
        a,
        [
            OpAnswer::Wrote { existed: false, changed: true },
            OpAnswer::Value(Some(lookalike)),
            OpAnswer::Refused(WRONGTYPE)
        ]
    );
}
