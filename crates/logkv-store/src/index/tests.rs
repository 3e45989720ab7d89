//! The index against a `BTreeMap` (writes, conditional updates and
//! removals, snapshots), and what it costs in memory.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn collect(ix: &Index, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    ix.range_page(start, end, reverse, usize::MAX, &mut out);
    out.into_iter().map(|(k, _)| k).collect()
}

#[test]
fn sequential_inserts_fill_chunks() {
    let mut ix = Index::default();
    for i in 0u32..100_000 {
        ix.upsert(&i.to_be_bytes(), i as u64);
    }
    assert_eq!(ix.len(), 100_000);
    assert_eq!(ix.get(&77_777u32.to_be_bytes()), Some(77_777));
    let per_key = ix.heap_bytes() as f64 / 100_000.0;
    assert!(per_key < 4.0 + 20.0, "{per_key} bytes per key");
}

#[test]
fn random_inserts_allocate_little_beyond_their_entries() {
    let mut ix = Index::default();
    let n = 200_000u64;
    for i in 0..n {
        // A bijection on u64 (SplitMix64's finaliser): distinct keys in
        // random order.
        let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ix.upsert(format!("{:016x}", z ^ (z >> 31)).as_bytes(), i);
    }
    // Splits leave chunks about three quarters full; that free space
    // would cost about 9 bytes per key if it were allocated.
    let per_key = ix.heap_bytes() as f64 / n as f64;
    assert!(per_key < (16 + ENTRY_OVERHEAD + 4) as f64, "{per_key} bytes per key");
}

#[test]
fn keys_sharing_long_prefixes_stay_ordered() {
    let mut ix = Index::default();
    let key = |i: u32| format!("user:profile:{i:08}").into_bytes();
    for i in (0..20_000u32).rev() {
        ix.upsert(&key(i), i.into());
    }
    for i in (0..20_000u32).step_by(997) {
        assert_eq!(ix.get(&key(i)), Some(i.into()));
    }
    let all = collect(&ix, Bound::Unbounded, Bound::Unbounded, false);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(all.len(), 20_000);
}

/// Checks what lookups rely on and what `heap_bytes` counts: no empty
/// chunk, each chunk's first-key prefix, and the chunks' bytes.
pub(super) fn sound(ix: &Index) -> Result<(), TestCaseError> {
    prop_assert!(ix.chunks.iter().all(|c| c.len() > 0));
    let firsts: Vec<u64> = ix.chunks.iter().map(|c| prefix(c.key(0))).collect();
    prop_assert_eq!(&ix.firsts, &firsts);
    prop_assert_eq!(ix.chunk_bytes, ix.chunks.iter().map(|c| c.heap_bytes()).sum::<usize>());
    Ok(())
}

/// Checks `ix` against `model`: lengths, every key, keys near present
/// ones (extended, cut short, last byte changed) and ranges from `lo`
/// to `hi` both ways.
pub(super) fn agrees(
    ix: &Index,
    model: &BTreeMap<Vec<u8>, u64>,
    lo: &[u8],
    hi: &[u8],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(ix.len(), model.len());
    for (k, v) in model {
        prop_assert_eq!(ix.get(k), Some(*v));
        let mut longer = k.clone();
        longer.push(0);
        let mut other = k.clone();
        *other.last_mut().expect("keys are not empty") ^= 0x81;
        for near in [longer, k[..k.len() - 1].to_vec(), other] {
            prop_assert_eq!(ix.get(&near), model.get(&near).copied(), "near {:?}", near);
        }
    }
    let bounds = [
        (Bound::Included(lo), Bound::Excluded(hi)),
        (Bound::Excluded(lo), Bound::Included(hi)),
        (Bound::Unbounded, Bound::Included(hi)),
        (Bound::Included(lo), Bound::Unbounded),
    ];
    for (s, e) in bounds {
        if lo > hi && !matches!(s, Bound::Unbounded) && !matches!(e, Bound::Unbounded) {
            continue;
        }
        let want: Vec<Vec<u8>> = model.range::<[u8], _>((s, e)).map(|(k, _)| k.clone()).collect();
        prop_assert_eq!(&collect(ix, s, e, false), &want);
        let rev: Vec<Vec<u8>> = want.iter().rev().cloned().collect();
        prop_assert_eq!(collect(ix, s, e, true), rev);
    }
    Ok(())
}

/// Keys that share long prefixes in some chunks and none in others, with
/// bytes at both ends of the range, long enough to fill many chunks.
pub(super) fn clustered_key() -> impl Strategy<Value = Vec<u8>> {
    let heads: Vec<&[u8]> = vec![b"", b"user:", b"user:profile:", &[0; 6], &[0xff; 6]];
    (
        prop::sample::select(heads),
        prop::collection::vec(prop::sample::select(&[0u8, 1, b'a', 0xff][..]), 1..24),
    )
        .prop_map(|(head, tail)| [head, &tail].concat())
}

proptest! {
    #[test]
    fn behaves_like_a_btreemap(
        ops in prop::collection::vec((prop::collection::vec(0u8..4, 1..12), any::<u64>()), 1..3000),
        lo in prop::collection::vec(0u8..4, 0..4),
        hi in prop::collection::vec(0u8..4, 0..4),
    ) {
        let mut ix = Index::default();
        let mut model = BTreeMap::new();
        for (k, v) in &ops {
            prop_assert_eq!(ix.upsert(k, *v), model.insert(k.clone(), *v));
        }
        prop_assert_eq!(ix.get(&[9, 9]), None);
        agrees(&ix, &model, &lo, &hi)?;
    }

    /// Probes are taken after each chunk's shared prefix, which shrinks
    /// as keys arrive at a chunk's ends and is recomputed at splits.
    #[test]
    fn clustered_keys_behave_like_a_btreemap(
        ops in prop::collection::vec((clustered_key(), any::<u64>(), any::<bool>()), 1..4000),
        lo in clustered_key(),
        hi in clustered_key(),
    ) {
        let mut ix = Index::default();
        let mut model = BTreeMap::new();
        for (k, v, replace_only) in &ops {
            if *replace_only {
                let old = model.get_mut(k).map(|m| std::mem::replace(m, *v));
                prop_assert_eq!(ix.replace(k, *v), old);
            } else {
                prop_assert_eq!(ix.upsert(k, *v), model.insert(k.clone(), *v));
            }
        }
        agrees(&ix, &model, &lo, &hi)?;
    }
}

#[derive(Debug)]
enum Op {
    Upsert(Vec<u8>, u64),
    Replace(Vec<u8>, u64),
    ReplaceIf(Vec<u8>, u64, u64),
    RemoveIf(Vec<u8>, u64),
}

/// Keys from few (so that operations often meet a present key), padded
/// by their first byte to 9..45 bytes (so that they fill several
/// chunks), and values from 0..4 (so that expected values match about
/// a quarter of the time).
fn op() -> impl Strategy<Value = Op> {
    let key = || {
        prop::collection::vec(0u8..4, 1..10).prop_map(|mut k| {
            k.resize(k.len() + 8 + 12 * usize::from(k[0]), b'.');
            k
        })
    };
    prop_oneof![
        6 => (key(), 0u64..4).prop_map(|(k, v)| Op::Upsert(k, v)),
        1 => (key(), 0u64..4).prop_map(|(k, v)| Op::Replace(k, v)),
        3 => (key(), 0u64..4, 0u64..4).prop_map(|(k, e, v)| Op::ReplaceIf(k, e, v)),
        3 => (key(), 0u64..4).prop_map(|(k, e)| Op::RemoveIf(k, e)),
    ]
}

/// What a snapshot shows, to compare with the model it was taken with.
fn contents(snap: &Snapshot) -> Vec<(Vec<u8>, u64)> {
    snap.iter().map(|(k, v)| (k.to_vec(), v)).collect()
}

fn assert_send_sync_static<T: Send + Sync + 'static>() {}

proptest! {
    /// Conditional updates and removals act only on the expected
    /// metadata, and snapshots keep what they saw through everything
    /// after them, down to the removal of every key (which empties
    /// every chunk).
    #[test]
    fn conditional_updates_and_snapshots_behave_like_a_btreemap(
        ops in prop::collection::vec(op(), 1..4000),
        // Snapshots are taken before these ops (a few: each costs a
        // copy of the model).
        snap_at in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        salt in any::<u64>(),
        lo in prop::collection::vec(0u8..4, 0..4),
        hi in prop::collection::vec(0u8..4, 0..4),
    ) {
        let mut ix = Index::default();
        let mut model = BTreeMap::new();
        let mut snaps = Vec::new();
        let snap_at: Vec<usize> = snap_at.iter().map(|i| i.index(ops.len())).collect();
        for (i, op) in ops.into_iter().enumerate() {
            for _ in snap_at.iter().filter(|&&at| at == i) {
                snaps.push((ix.snapshot(), model.clone()));
            }
            match op {
                Op::Upsert(k, v) => prop_assert_eq!(ix.upsert(&k, v), model.insert(k, v)),
                Op::Replace(k, v) => {
                    let old = model.get_mut(&k).map(|m| std::mem::replace(m, v));
                    prop_assert_eq!(ix.replace(&k, v), old);
                }
                Op::ReplaceIf(k, expected, v) => {
                    let hit = model.get(&k) == Some(&expected);
                    if hit {
                        model.insert(k.clone(), v);
                    }
                    prop_assert_eq!(ix.replace_if(&k, expected, v), hit);
                }
                Op::RemoveIf(k, expected) => {
                    let hit = model.get(&k) == Some(&expected);
                    if hit {
                        model.remove(&k);
                    }
                    prop_assert_eq!(ix.remove_if(&k, expected), hit);
                }
            }
        }
        sound(&ix)?;
        agrees(&ix, &model, &lo, &hi)?;
        // Remove every key in an order of `salt`'s choosing.
        let mut keys: Vec<(Vec<u8>, u64)> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
        keys.sort_by_key(|(k, _)| k.iter().fold(salt, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)));
        let half = keys.len() / 2;
        for (i, (k, v)) in keys.iter().enumerate() {
            prop_assert!(!ix.remove_if(k, v ^ 4));
            prop_assert!(ix.remove_if(k, *v));
            model.remove(k);
            if i == half {
                sound(&ix)?;
                agrees(&ix, &model, &lo, &hi)?;
            }
        }
        prop_assert_eq!(ix.len(), 0);
        prop_assert_eq!(ix.chunks.len(), 0);
        for (snap, then) in &snaps {
            prop_assert_eq!(snap.len(), then.len());
            let then: Vec<(Vec<u8>, u64)> = then.iter().map(|(k, v)| (k.clone(), *v)).collect();
            prop_assert_eq!(contents(snap), then);
        }
    }
}

#[test]
fn a_snapshot_read_on_another_thread_keeps_what_it_saw_while_writes_go_on() {
    assert_send_sync_static::<Snapshot>();
    let key = |i: u64| format!("{i:016x}").into_bytes();
    let mut ix = Index::default();
    for i in (0..50_000).map(|i| i * 2) {
        ix.upsert(&key(i), i);
    }
    let snap = ix.snapshot();
    let want: Vec<(Vec<u8>, u64)> = (0..50_000).map(|i| (key(i * 2), i * 2)).collect();
    let reader = std::thread::spawn(move || (snap.len(), contents(&snap)));
    for i in 0..50_000 {
        ix.upsert(&key(i * 2 + 1), 1); // (which splits chunks)
        assert!(ix.replace_if(&key(i * 2), i * 2, 7));
        if i % 3 == 0 {
            assert!(ix.remove_if(&key(i * 2), 7));
        }
    }
    assert_eq!(reader.join().unwrap(), (50_000, want));
    sound(&ix).unwrap();
}

#[test]
fn chunks_copied_from_a_snapshot_do_not_make_the_index_larger() {
    let mut ix = Index::default();
    for i in 0u32..100_000 {
        ix.upsert(&i.to_be_bytes(), 0);
    }
    let before = ix.heap_bytes();
    let snap = ix.snapshot();
    // Sequential writes left the chunks full; their copies are packed.
    for i in 0u32..100_000 {
        ix.replace(&i.to_be_bytes(), 1);
    }
    assert!(ix.heap_bytes() <= before, "{} > {before}", ix.heap_bytes());
    assert!(snap.iter().all(|(_, meta)| meta == 0));
    sound(&ix).unwrap();
}

#[test]
fn removed_keys_give_their_memory_back() {
    let key = |i: u64| format!("{i:016x}").into_bytes();
    let mut ix = Index::default();
    for i in 0..100_000 {
        ix.upsert(&key(i), i);
    }
    for i in (0..100_000).filter(|i| i % 10 != 0) {
        assert!(ix.remove_if(&key(i), i));
    }
    // A tenth of each chunk's keys remain; the chunks' fixed parts and
    // the removed bytes a chunk keeps until it packs itself cost about
    // as much again, where keeping every chunk's bytes would cost
    // ten times as much.
    let per_key = ix.heap_bytes() as f64 / ix.len() as f64;
    assert!(per_key < (2 * (16 + ENTRY_OVERHEAD)) as f64, "{per_key} bytes per key");
    sound(&ix).unwrap();
}

#[test]
fn removing_every_key_leaves_an_index_that_still_works() {
    let mut ix = Index::default();
    for i in 0u32..20_000 {
        ix.upsert(&i.to_be_bytes(), i.into());
    }
    for i in (0u32..20_000).rev() {
        assert!(!ix.remove_if(&i.to_be_bytes(), 1 << 40));
        assert!(ix.remove_if(&i.to_be_bytes(), i.into()));
    }
    assert_eq!((ix.len(), ix.get(&7u32.to_be_bytes())), (0, None));
    assert_eq!(ix.heap_bytes(), 8 * (ix.chunks.capacity() + ix.firsts.capacity()));
    assert!(!ix.replace_if(b"k", 0, 1) && !ix.remove_if(b"k", 0));
    assert_eq!(collect(&ix, Bound::Unbounded, Bound::Unbounded, false), Vec::<Vec<u8>>::new());
    ix.upsert(b"k", 1);
    assert_eq!(ix.get(b"k"), Some(1));
}
