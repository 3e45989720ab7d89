//! Anti-replay: which nonces a sender has used. A re-appended copy of an
//! entry (same sender, same nonce) must never apply twice, yet senders with
//! several writers in flight need not append in nonce order.
//!
//! Per sender, a [`NonceWindow`] remembers the highest nonce applied and
//! which of the [`NONCE_WINDOW`] nonces ending at it were used (like IPsec's
//! anti-replay window). A nonce above the highest slides the window up; one
//! inside it is accepted once; one below it is refused, since the window has
//! forgotten whether it was used. The window size is a protocol constant:
//! nodes with different sizes would disagree on what applies.

/// How many nonces, ending at the highest one applied, the window remembers.
pub const NONCE_WINDOW: u64 = 1024;

const WORDS: usize = (NONCE_WINDOW / 64) as usize;

/// A nonce that was used already, or is too old to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Replayed {
    /// The nonce was applied before.
    #[error("nonce {nonce} was already used")]
    Duplicate {
        /// The nonce.
        nonce: u64,
    },
    /// The nonce is at least [`NONCE_WINDOW`] below the highest one applied.
    #[error(
        "nonce {nonce} is below the replay window (highest nonce used {highest}, window {NONCE_WINDOW})"
    )]
    BelowWindow {
        /// The nonce.
        nonce: u64,
        /// The highest nonce applied.
        highest: u64,
    },
}

/// Stored window state that no sequence of [`NonceWindow::check_and_record`]
/// calls can produce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NonceStateError {
    /// The bytes are not an encoded window (see [`NonceWindow::encode`]).
    #[error("nonce window state is malformed: {0}")]
    Malformed(&'static str),
    /// The highest nonce is not marked used, or nonces below 0 are.
    #[error("inconsistent nonce window state (highest {highest})")]
    Inconsistent {
        /// The highest nonce in the state.
        highest: u64,
    },
}

/// One sender's used nonces. A new window has used none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NonceWindow {
    /// The highest nonce applied (0 also when none was).
    highest: u64,
    /// Bit `i` (word `i / 64`, bit `i % 64`) is set when nonce
    /// `highest - i` was applied.
    seen: [u64; WORDS],
}

impl NonceWindow {
    /// A window with no nonce used.
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest nonce applied so far (0 when none was).
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Records `nonce` as used, or says why it cannot be used. A refused
    /// nonce changes nothing.
    pub fn check_and_record(&mut self, nonce: u64) -> Result<(), Replayed> {
        if nonce > self.highest {
            self.slide(nonce - self.highest);
            self.highest = nonce;
            self.seen[0] |= 1;
            return Ok(());
        }
        let age = self.highest - nonce;
        if age >= NONCE_WINDOW {
            return Err(Replayed::BelowWindow { nonce, highest: self.highest });
        }
        let (word, bit) = ((age / 64) as usize, age % 64);
        if self.seen[word] & (1 << bit) != 0 {
            return Err(Replayed::Duplicate { nonce });
        }
        self.seen[word] |= 1 << bit;
        Ok(())
    }

    /// Moves every bit `by` places towards older nonces.
    fn slide(&mut self, by: u64) {
        if by >= NONCE_WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let (words, bits) = ((by / 64) as usize, by % 64);
        for i in (0..WORDS).rev() {
            let hi = if i >= words { self.seen[i - words] << bits } else { 0 };
            let lo = if bits > 0 && i > words { self.seen[i - words - 1] >> (64 - bits) } else { 0 };
            self.seen[i] = hi | lo;
        }
    }

    /// The state as bytes, stored as a node's record each time it changes:
    /// `highest` as a varint, then the bitmap from the newest nonce down as
    /// varint run lengths, alternating used and unused and starting with
    /// used (a first run may be 0); unused nonces after the last run are
    /// left out. A sender numbering its entries in order (a node signing
    /// its own) has one run: 3 to 12 bytes where the bitmap alone is 128,
    /// which matters because this record is written with every entry.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12);
        crate::varint::put(&mut out, self.highest);
        let (mut run, mut used, mut age) = (0u64, true, 0);
        while age < NONCE_WINDOW {
            if self.is_used(age) == used {
                run += 1;
                age += 1;
            } else {
                crate::varint::put(&mut out, run);
                (run, used) = (0, !used);
            }
        }
        if used {
            crate::varint::put(&mut out, run);
        }
        out
    }

    fn is_used(&self, age: u64) -> bool {
        self.seen[(age / 64) as usize] & (1 << (age % 64)) != 0
    }

    /// Reads what [`NonceWindow::encode`] wrote, refusing bytes it cannot
    /// write and states no history of nonces could reach.
    pub fn decode(bytes: &[u8]) -> Result<Self, NonceStateError> {
        let mut at = 0;
        let mut number = || -> Result<Option<u64>, NonceStateError> {
            if at == bytes.len() {
                return Ok(None);
            }
            let (n, used) =
                crate::varint::read(&bytes[at..]).map_err(|_| NonceStateError::Malformed("bad varint"))?;
            at += used;
            Ok(Some(n))
        };
        let highest = number()?.ok_or(NonceStateError::Malformed("empty"))?;
        let mut window = Self { highest, seen: [0; WORDS] };
        let (mut age, mut used, mut last) = (0u64, true, None);
        while let Some(run) = number()? {
            if run > NONCE_WINDOW - age || (run == 0 && age > 0) {
                return Err(NonceStateError::Malformed("runs do not fit the window"));
            }
            if used {
                (age..age + run).for_each(|a| window.seen[(a / 64) as usize] |= 1 << (a % 64));
            }
            (age, last, used) = (age + run, Some(used), !used);
        }
        if last == Some(false) {
            return Err(NonceStateError::Malformed("ends with unused nonces"));
        }
        let highest_unmarked = highest > 0 && window.seen[0] & 1 == 0;
        let below_zero_marked = (highest.saturating_add(1)..NONCE_WINDOW)
            .any(|age| window.seen[(age / 64) as usize] & (1 << (age % 64)) != 0);
        if highest_unmarked || below_zero_marked {
            return Err(NonceStateError::Inconsistent { highest });
        }
        Ok(window)
    }
}
