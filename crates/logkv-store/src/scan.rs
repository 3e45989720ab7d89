//! Ordered scans at a fixed version.
//!
//! A scan reads the index a page at a time (holding its lock only while it
//! copies a page) and resolves every key at the version the scan started
//! at, so it sees one consistent state however long it runs.

use std::collections::VecDeque;
use std::ops::Bound;

use crate::error::{Result, StoreError};
use crate::store::{Store, Value};

/// Keys a scan takes from the index per lock.
const PAGE: usize = 256;

/// What to scan: a key range (or prefix), a direction, a limit and a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Lower bound.
    pub start: Bound<Vec<u8>>,
    /// Upper bound.
    pub end: Bound<Vec<u8>>,
    /// Largest key first.
    pub reverse: bool,
    /// Stop after this many results.
    pub limit: Option<usize>,
    /// Read as of this version (default: the current one).
    pub at: Option<u64>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self { start: Bound::Unbounded, end: Bound::Unbounded, reverse: false, limit: None, at: None }
    }
}

impl ScanOptions {
    /// Every key starting with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        let end = match prefix_end(prefix) {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        Self { start: Bound::Included(prefix.to_vec()), end, ..Self::default() }
    }

    /// Keys in `start..end` (inclusive start, exclusive end).
    pub fn range(start: &[u8], end: &[u8]) -> Self {
        Self { start: Bound::Included(start.to_vec()), end: Bound::Excluded(end.to_vec()), ..Self::default() }
    }

    /// Largest key first.
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }

    /// At most `n` results.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// As of `version`.
    pub fn at(mut self, version: u64) -> Self {
        self.at = Some(version);
        self
    }
}

/// The smallest key greater than every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// An iterator over `(key, value)` of live keys in order.
pub struct Scan<'s> {
    store: &'s Store,
    keyspace: u32,
    options: ScanOptions,
    at: u64,
    page: VecDeque<(Vec<u8>, u64)>,
    exhausted: bool,
    yielded: usize,
    /// An error to give before anything else (a version compacted away).
    refused: Option<StoreError>,
}

impl<'s> Scan<'s> {
    pub(crate) fn new(store: &'s Store, keyspace: u32, options: ScanOptions, version: u64) -> Self {
        let (at, refused) = match store.readable(version) {
            Ok(at) => (at, None),
            Err(e) => (0, Some(e)),
        };
        let exhausted = refused.is_some();
        Self { store, keyspace, options, at, page: VecDeque::new(), exhausted, yielded: 0, refused }
    }

    fn refill(&mut self) {
        let mut out = Vec::with_capacity(PAGE);
        let o = &self.options;
        self.store.index_page(self.keyspace, as_ref(&o.start), as_ref(&o.end), o.reverse, PAGE, &mut out);
        self.exhausted = out.len() < PAGE;
        if let Some((last, _)) = out.last() {
            // The next page starts after the last key taken.
            if self.options.reverse {
                self.options.end = Bound::Excluded(last.clone());
            } else {
                self.options.start = Bound::Excluded(last.clone());
            }
        }
        self.page.extend(out);
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<(Vec<u8>, Value)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.refused.take() {
            return Some(Err(e));
        }
        loop {
            if self.options.limit.is_some_and(|l| self.yielded >= l) {
                return None;
            }
            if self.page.is_empty() {
                if self.exhausted {
                    return None;
                }
                self.refill();
                continue;
            }
            let (key, meta) = self.page.pop_front()?;
            match self.store.resolve(self.keyspace, &key, meta, self.at) {
                Ok(Some(v)) => {
                    self.yielded += 1;
                    return Some(Ok((key, v)));
                }
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_carries_over_ff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
