//! Signature verification of many entries on all cores: the part of
//! applying entries from a shared log that does not depend on order. Apply
//! itself stays sequential; it is given each verdict as `verified`.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::envelope::EntryView;

/// Below this many entries per thread, spawning threads costs more than
/// it saves (one recovery is some tens of microseconds).
const MIN_PER_THREAD: usize = 4;

/// The verdict on one entry: `Some(true)` signed by its sender,
/// `Some(false)` well-formed but not signed by its sender, `None` not a
/// well-formed entry (apply judges it itself: malformed or of a newer
/// protocol).
pub fn verify_one(bytes: &[u8]) -> Option<bool> {
    EntryView::parse(bytes).ok().map(|v| v.verify().is_ok())
}

/// The threads [`verify_entries`] uses: `available_parallelism`.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// [`verify_one`] of every entry, on all cores; the verdicts come back in
/// the entries' order.
pub fn verify_entries<B: AsRef<[u8]> + Sync>(entries: &[B]) -> Vec<Option<bool>> {
    par_map(entries, threads(), |b| verify_one(b.as_ref()))
}

/// `f` of every item, on up to `threads` threads (contiguous chunks, one
/// scoped thread each), results in the items' order.
pub fn par_map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.clamp(1, items.len().div_ceil(MIN_PER_THREAD).max(1));
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            items.chunks(chunk).map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("a verifying thread panicked")).collect()
    })
}

/// `check` of every item on all cores, chunk by chunk, while the calling
/// thread hands each chunk and its results to `consume`, in order, as
/// soon as they are ready; stops at the first error `consume` returns
/// (the chunks after it are not consumed).
pub fn pipeline<T: Sync, R: Send, E>(
    items: &[T],
    chunk: usize,
    check: impl Fn(&T) -> R + Sync,
    mut consume: impl FnMut(&[T], Vec<R>) -> Result<(), E>,
) -> Result<(), E> {
    let chunk = chunk.max(1);
    let chunks = items.len().div_ceil(chunk);
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Vec<R>)>();
    std::thread::scope(|s| {
        for _ in 0..threads().min(chunks) {
            let (tx, next, check) = (tx.clone(), &next, &check);
            s.spawn(move || loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    break;
                }
                let results =
                    items[c * chunk..((c + 1) * chunk).min(items.len())].iter().map(check).collect();
                if tx.send((c, results)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut ready = BTreeMap::new();
        let mut want = 0;
        for (c, results) in rx.iter() {
            ready.insert(c, results);
            while let Some(results) = ready.remove(&want) {
                let at = want * chunk;
                if let Err(e) = consume(&items[at..(at + chunk).min(items.len())], results) {
                    next.store(chunks, Ordering::Relaxed);
                    return Err(e);
                }
                want += 1;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_map_keeps_order_for_any_thread_count() {
        let items: Vec<u32> = (0..1000).collect();
        for threads in [1, 2, 3, 7, 64, 5000] {
            let out = par_map(&items, threads, |x| x * 2);
            assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>(), "{threads} threads");
        }
        assert!(par_map(&[] as &[u32], 4, |x| *x).is_empty());
    }

    #[test]
    fn pipeline_consumes_every_chunk_in_order_and_stops_at_an_error() {
        let items: Vec<u32> = (0..1000).collect();
        for chunk in [1, 7, 256, 5000] {
            let mut seen = Vec::new();
            let r: Result<(), ()> = pipeline(
                &items,
                chunk,
                |x| x * 2,
                |c, rs| {
                    assert_eq!(c.iter().map(|x| x * 2).collect::<Vec<_>>(), rs);
                    seen.extend_from_slice(c);
                    Ok(())
                },
            );
            assert_eq!((r, seen), (Ok(()), items.clone()), "chunk {chunk}");
        }
        let mut consumed = 0;
        let r = pipeline(
            &items,
            10,
            |x| *x,
            |c, _| {
                consumed += c.len();
                if consumed >= 300 {
                    Err("stop")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!((r, consumed), (Err("stop"), 300));
    }
}
