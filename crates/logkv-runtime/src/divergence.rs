//! Detecting replicas whose states diverged: nodes on one shared log that
//! applied the same positions must hold the same state digest
//! ([`crate::digest`]); one that does not was altered behind the log's
//! back (damage on disk, a hand edit, a bug).
//!
//! Every node reports its digest at each position that is a multiple of
//! `every` ([`DigestReport`], published through the log's
//! [`SharedLog::publish_digest`](crate::shared_log::SharedLog::publish_digest))
//! and compares the reports of the others with its own at the same position
//! ([`DivergenceCheck`]). Its own recent digests are kept in a ring and the
//! reports of peers ahead of it wait until it gets there, both bounded by
//! `kept` entries per node, so a peer behind or ahead is compared as soon
//! as both passed a position, and memory does not grow with time.
//!
//! Only nodes applying the same streams are compared: a node watching a
//! subset holds another state by design.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// What a node says of itself at a position: who and where it is, which
/// streams it applies, and its digest once it applied everything up to
/// and including `position`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestReport {
    /// The node's identity (its signing account).
    pub node: String,
    /// Where the node answers (its HTTP address), for the operator.
    pub address: String,
    /// The streams it applies: `all`, or their IDs comma-separated.
    pub watch: String,
    /// The log position.
    pub position: u64,
    /// The state digest there.
    #[serde(with = "hex_digest")]
    pub digest: [u8; 32],
}

/// Why bytes are not a [`DigestReport`].
#[derive(Debug, thiserror::Error)]
#[error("not a digest report: {0}")]
pub struct ReportError(String);

impl DigestReport {
    /// The report as it travels: JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a report serializes")
    }

    /// A report from what [`DigestReport::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<DigestReport, ReportError> {
        serde_json::from_slice(bytes).map_err(|e| ReportError(e.to_string()))
    }
}

/// A digest as `0x` and 64 hex digits.
mod hex_digest {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(digest: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(digest)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let digits = text.strip_prefix("0x").ok_or_else(|| D::Error::custom("a digest starts with 0x"))?;
        let mut out = [0; 32];
        hex::decode_to_slice(digits, &mut out).map_err(|e| D::Error::custom(format!("digest: {e}")))?;
        Ok(out)
    }
}

/// Who a node is, as its reports say: [`DigestReport`] without the
/// position and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// [`DigestReport::node`].
    pub node: String,
    /// [`DigestReport::address`].
    pub address: String,
    /// [`DigestReport::watch`].
    pub watch: String,
}

/// Two digests at one position that should be equal and are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The position.
    pub position: u64,
    /// This node's digest there.
    pub ours: [u8; 32],
    /// The peer's.
    pub theirs: [u8; 32],
}

/// What this node knows of one peer.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// Where the peer answers, from its last report.
    pub address: String,
    /// The newest position at which both digests were equal.
    pub agreed: Option<u64>,
    /// The newest position at which they differed.
    pub mismatch: Option<Mismatch>,
    /// Positions at which they differed, in all.
    pub mismatches: u64,
    /// The peer's reports past this node's newest digest, oldest first.
    ahead: VecDeque<(u64, [u8; 32])>,
}

impl Peer {
    /// Whether the newest comparison found the digests different.
    pub fn diverged(&self) -> bool {
        self.mismatch.as_ref().is_some_and(|m| Some(m.position) > self.agreed)
    }
}

/// A comparison's verdict that changes what the operator should know: a
/// peer that now differs from this node, or agrees with it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The peer's digest differs from ours at a position where, at the
    /// position compared before, it did not (or none was).
    Diverged {
        /// The peer's identity.
        peer: String,
        /// Where it answers.
        address: String,
        /// The position and both digests.
        mismatch: Mismatch,
    },
    /// The peer agrees with us again after having differed.
    Agrees {
        /// The peer's identity.
        peer: String,
        /// The position.
        position: u64,
    },
}

/// This node's digests at the positions it reports, and the comparison
/// with its peers' reports.
#[derive(Debug)]
pub struct DivergenceCheck {
    me: Reporter,
    every: u64,
    kept: usize,
    /// The next position to report.
    next: u64,
    /// The digest after the newest entry applied.
    last: [u8; 32],
    /// Reported positions and digests, oldest first, at most `kept`.
    own: VecDeque<(u64, [u8; 32])>,
    peers: BTreeMap<String, Peer>,
    mismatches: u64,
}

impl DivergenceCheck {
    /// A check for the node `me`, which has applied the log through
    /// `applied` and holds `digest` there, reporting every `every`
    /// positions (at least 1) and keeping `kept` digests per node (at
    /// least 1).
    pub fn new(me: Reporter, every: u64, kept: usize, applied: u64, digest: [u8; 32]) -> Self {
        let every = every.max(1);
        let mut check = DivergenceCheck {
            me,
            every,
            kept: kept.max(1),
            next: (applied / every + 1) * every,
            last: digest,
            own: VecDeque::new(),
            peers: BTreeMap::new(),
            mismatches: 0,
        };
        if applied > 0 && applied.is_multiple_of(every) {
            check.own.push_back((applied, digest));
        }
        check
    }

    /// Takes in a batch the node applied: each entry's position and the
    /// digest after it, in order, and `through`, up to where every
    /// position is applied or not for this node. Records the digest at
    /// every reporting position passed (the digest after the last entry
    /// at or before it) and compares it with the peers' reports waiting
    /// for it. Returns the report of the newest position passed, if any,
    /// and what the comparisons found.
    pub fn applied(
        &mut self,
        entries: impl IntoIterator<Item = (u64, [u8; 32])>,
        through: u64,
    ) -> (Option<DigestReport>, Vec<Finding>) {
        let mut findings = Vec::new();
        let mut newest = None;
        for (position, digest) in entries {
            while self.next < position {
                newest = Some(self.record(self.next, self.last, &mut findings));
            }
            self.last = digest;
        }
        while self.next <= through {
            newest = Some(self.record(self.next, self.last, &mut findings));
        }
        let report = newest.map(|(position, digest)| self.report(position, digest));
        (report, findings)
    }

    /// Records `digest` at `position` (the next reporting position) and
    /// compares it with every peer's report of it.
    fn record(&mut self, position: u64, digest: [u8; 32], findings: &mut Vec<Finding>) -> (u64, [u8; 32]) {
        self.next = position + self.every;
        if self.own.len() == self.kept {
            self.own.pop_front();
        }
        self.own.push_back((position, digest));
        let mut waiting = Vec::new();
        for (name, peer) in &mut self.peers {
            while peer.ahead.front().is_some_and(|(p, _)| *p <= position) {
                let (p, theirs) = peer.ahead.pop_front().expect("a front");
                if p == position {
                    waiting.push((name.clone(), theirs));
                }
            }
        }
        for (name, theirs) in waiting {
            findings.extend(self.compare(&name, position, digest, theirs));
        }
        (position, digest)
    }

    /// Takes in a peer's report: compared at once if this node has passed
    /// its position and still holds its digest there, kept for later if
    /// this node is behind it, ignored if it is older than what this
    /// node holds, is this node's own, or is of a node applying other
    /// streams.
    pub fn peer(&mut self, report: DigestReport) -> Option<Finding> {
        if report.node == self.me.node || report.watch != self.me.watch {
            return None;
        }
        let peer = self.peers.entry(report.node.clone()).or_default();
        peer.address = report.address;
        let newest = self.own.back().map_or(0, |(p, _)| *p);
        if report.position > newest {
            if peer.ahead.back().is_some_and(|(p, _)| *p >= report.position) {
                return None;
            }
            if peer.ahead.len() == self.kept {
                peer.ahead.pop_front();
            }
            peer.ahead.push_back((report.position, report.digest));
            return None;
        }
        let ours = self.own.iter().find(|(p, _)| *p == report.position)?.1;
        self.compare(&report.node, report.position, ours, report.digest)
    }

    /// Compares our digest at `position` with a peer's.
    fn compare(&mut self, name: &str, position: u64, ours: [u8; 32], theirs: [u8; 32]) -> Option<Finding> {
        let peer = self.peers.get_mut(name).expect("a peer compared is known");
        let was_diverged = peer.diverged();
        if ours == theirs {
            peer.agreed = peer.agreed.max(Some(position));
            return (was_diverged && !peer.diverged())
                .then(|| Finding::Agrees { peer: name.into(), position });
        }
        let mismatch = Mismatch { position, ours, theirs };
        peer.mismatches += 1;
        self.mismatches += 1;
        if peer.mismatch.as_ref().is_none_or(|m| m.position < position) {
            peer.mismatch = Some(mismatch.clone());
        }
        let address = peer.address.clone();
        (!was_diverged && peer.diverged()).then(|| Finding::Diverged { peer: name.into(), address, mismatch })
    }

    fn report(&self, position: u64, digest: [u8; 32]) -> DigestReport {
        let Reporter { node, address, watch } = self.me.clone();
        DigestReport { node, address, watch, position, digest }
    }

    /// Who this node is in its reports.
    pub fn me(&self) -> &Reporter {
        &self.me
    }

    /// The reporting interval, in positions.
    pub fn every(&self) -> u64 {
        self.every
    }

    /// The newest position reported and the digest there.
    pub fn newest(&self) -> Option<(u64, [u8; 32])> {
        self.own.back().copied()
    }

    /// The peers heard from, by identity.
    pub fn peers(&self) -> &BTreeMap<String, Peer> {
        &self.peers
    }

    /// Positions at which a peer's digest differed from ours, over every
    /// peer.
    pub fn mismatches(&self) -> u64 {
        self.mismatches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(node: &str) -> Reporter {
        Reporter { node: node.into(), address: format!("{node}:80"), watch: "all".into() }
    }

    fn report(node: &str, position: u64, digest: u8) -> DigestReport {
        DigestReport {
            node: node.into(),
            address: format!("{node}:80"),
            watch: "all".into(),
            position,
            digest: [digest; 32],
        }
    }

    /// Entries at every position from `from` to `to`, the digest after
    /// each being its position's low byte.
    fn entries(from: u64, to: u64) -> Vec<(u64, [u8; 32])> {
        (from..=to).map(|p| (p, [p as u8; 32])).collect()
    }

    #[test]
    fn reports_the_digest_at_each_multiple_even_inside_a_batch() {
        let mut check = DivergenceCheck::new(me("a"), 10, 8, 0, [0; 32]);
        let (reported, findings) = check.applied(entries(1, 25), 25);
        assert!(findings.is_empty());
        assert_eq!(reported, Some(report("a", 20, 20)));
        assert_eq!(check.newest(), Some((20, [20; 32])));
        // Positions 26..=31 are not for this node: 30 holds 25's digest.
        let (reported, _) = check.applied(entries(32, 32), 32);
        assert_eq!(reported, Some(report("a", 30, 25)));
    }

    #[test]
    fn a_peer_behind_is_compared_at_once_and_one_ahead_when_we_get_there() {
        let mut check = DivergenceCheck::new(me("a"), 10, 8, 0, [0; 32]);
        check.applied(entries(1, 20), 20);
        assert_eq!(check.peer(report("b", 10, 10)), None);
        assert_eq!(check.peers()["b"].agreed, Some(10));
        assert_eq!(check.peer(report("c", 30, 99)), None, "c is ahead: nothing to compare yet");
        let (_, findings) = check.applied(entries(21, 30), 30);
        let mismatch = Mismatch { position: 30, ours: [30; 32], theirs: [99; 32] };
        assert_eq!(findings, vec![Finding::Diverged { peer: "c".into(), address: "c:80".into(), mismatch }]);
        assert!(check.peers()["c"].diverged() && !check.peers()["b"].diverged());
        assert_eq!(check.mismatches(), 1);
        // A later mismatch is counted, not found again; agreeing again is.
        check.applied(entries(31, 40), 40);
        assert_eq!(check.peer(report("c", 40, 1)), None);
        assert_eq!(check.mismatches(), 2);
        check.applied(entries(41, 50), 50);
        assert_eq!(check.peer(report("c", 50, 50)), Some(Finding::Agrees { peer: "c".into(), position: 50 }));
    }

    #[test]
    fn own_reports_other_watch_sets_and_forgotten_positions_are_not_compared() {
        let mut check = DivergenceCheck::new(me("a"), 10, 2, 0, [0; 32]);
        check.applied(entries(1, 40), 40);
        assert_eq!(check.peer(report("a", 40, 1)), None);
        let mut narrow = report("b", 40, 1);
        narrow.watch = "0x01".into();
        assert_eq!(check.peer(narrow), None);
        assert_eq!(check.peer(report("c", 20, 1)), None, "20 is out of the ring of 2");
        assert_eq!(check.mismatches(), 0);
        assert!(check.peers()["c"].agreed.is_none());
    }

    #[test]
    fn a_peer_far_ahead_keeps_only_its_newest_reports() {
        let mut check = DivergenceCheck::new(me("a"), 10, 2, 0, [0; 32]);
        for p in [10, 20, 30] {
            check.peer(report("b", p, p as u8));
        }
        check.applied(entries(1, 30), 30);
        assert_eq!(check.peers()["b"].agreed, Some(30));
        assert_eq!(check.mismatches(), 0);
    }

    #[test]
    fn a_restart_at_a_multiple_holds_that_position() {
        let check = DivergenceCheck::new(me("a"), 10, 4, 30, [7; 32]);
        assert_eq!(check.newest(), Some((30, [7; 32])));
        assert_eq!(DivergenceCheck::new(me("a"), 10, 4, 31, [7; 32]).newest(), None);
    }

    #[test]
    fn reports_round_trip_and_bad_ones_are_refused() {
        let r = report("0xab", 1000, 3);
        assert_eq!(DigestReport::decode(&r.encode()).unwrap(), r);
        let e = DigestReport::decode(br#"{"node":"x"}"#).unwrap_err();
        assert!(e.to_string().starts_with("not a digest report: missing field"), "{e}");
        let bad = String::from_utf8(r.encode()).unwrap().replace("0x0303", "0303");
        assert!(DigestReport::decode(bad.as_bytes()).is_err());
    }
}
