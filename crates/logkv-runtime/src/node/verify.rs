//! Signature verification of many entries on all cores: the part of
//! applying entries from a shared log that does not depend on order. Apply
//! itself stays sequential; it is given each verdict as `verified`.

use std::num::NonZeroUsize;

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
}
