//! Which subject an entry is published on, and which subjects a node
//! reads: the server-side filter behind selective transfer.
//!
//! An entry whose transactions all tag one stream goes to
//! `NAME.s.<stream hex>`; every other entry (several streams, none, or
//! bytes that are not an entry) goes to `NAME.m`. A node watching every
//! stream reads `NAME.>`; a node watching a set reads one subject per
//! watched stream plus `NAME.m`, one consumer each — JetStream 2.9 honours
//! a single filter per consumer (`filter_subjects` is silently ignored
//! there), so the union is merged on the node ([`crate::follow`]).
//!
//! The subject is derived from the bytes, so every node can check it: an
//! entry on any other subject is skipped by every node alike (a publisher
//! that bypasses logkv cannot show a narrow node less than a wide one).

use logkv_runtime::apply::Watched;
use logkv_runtime::envelope::EntryView;
use logkv_runtime::types::StreamId;

/// The subjects of one JetStream stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    name: String,
}

impl Subjects {
    /// The subjects of the stream `name` (already validated as a stream
    /// name: no dots, wildcards or spaces).
    pub fn new(name: &str) -> Self {
        Self { name: name.to_string() }
    }

    /// What the stream captures: every subject below its name.
    pub fn all(&self) -> String {
        format!("{}.>", self.name)
    }

    /// The subject of entries of one stream.
    pub fn single(&self, stream: &StreamId) -> String {
        format!("{}.s.{}", self.name, hex::encode(stream.0))
    }

    /// The subject of every entry that is not of exactly one stream.
    pub fn mixed(&self) -> String {
        format!("{}.m", self.name)
    }

    /// The subject nodes publish their digest reports on: a single token,
    /// so outside what the stream captures (`NAME.>`): a report is no
    /// entry and takes no position.
    pub fn digests(&self) -> String {
        format!("{}-digests", self.name)
    }

    /// The subject `entry` belongs on.
    pub fn of_entry(&self, entry: &[u8]) -> String {
        match EntryView::parse(entry) {
            Ok(view) if view.tags().len() == 1 => self.single(&view.tags().iter().next().expect("one tag")),
            _ => self.mixed(),
        }
    }

    /// The filters a node watching `watched` reads, one consumer each.
    pub fn filters(&self, watched: &Watched) -> Vec<String> {
        match watched {
            Watched::All => vec![self.all()],
            Watched::Only(streams) => streams.iter().map(|s| self.single(s)).chain([self.mixed()]).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logkv_runtime::envelope::{Entry, TxPart};
    use logkv_runtime::signing::Signer;

    #[test]
    fn entries_of_one_stream_get_its_subject_and_others_the_mixed_one() {
        let subjects = Subjects::new("kv");
        let (a, b) = (StreamId([1; 32]), StreamId([2; 32]));
        let signer = Signer::from_secret_bytes([7; 32]).unwrap();
        let entry =
            |nonce, txs| Entry { sender: signer.address(), nonce, txs }.encode_signed(&signer).unwrap();
        let one = entry(1, vec![tx(&[a])]);
        let two = entry(2, vec![tx(&[a]), tx(&[b])]);
        assert_eq!(subjects.of_entry(&one), format!("kv.s.{}", "01".repeat(32)));
        assert_eq!(subjects.of_entry(&two), "kv.m");
        assert_eq!(subjects.of_entry(b"garbage"), "kv.m");
        assert_eq!(subjects.filters(&Watched::All), vec!["kv.>".to_string()]);
        assert_eq!(subjects.digests(), "kv-digests");
        let only = Watched::Only([b].into_iter().collect());
        assert_eq!(subjects.filters(&only), vec![format!("kv.s.{}", "02".repeat(32)), "kv.m".into()]);
    }

    fn tx(tags: &[StreamId]) -> TxPart {
        TxPart { codec: 1, tags: tags.to_vec(), body: vec![1, 2, 3] }
    }
}
