//! YCSB-style workloads: keys, values, key choice and the operation mix.
//!
//! Keys are 16 bytes: the 16 hex digits of the key's index, so key order is
//! index order (sequential loads append in key order, and a scan from key
//! `i` reads `i, i+1, ...`). Values start with the key's index and a write
//! number, so a value read back can be checked against the write that made
//! it; the rest is a fixed pseudo-random pattern, incompressible enough
//! that no engine wins by compressing it.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Bytes of every key.
pub const KEY_BYTES: usize = 16;
/// Bytes at the start of a value that name its key and write.
pub const VALUE_TAG_BYTES: usize = 16;

/// The key with index `i`.
pub fn key(i: u64) -> [u8; KEY_BYTES] {
    let mut k = [0u8; KEY_BYTES];
    let digits = b"0123456789abcdef";
    for (n, b) in k.iter_mut().enumerate() {
        *b = digits[((i >> (60 - 4 * n)) & 0xf) as usize];
    }
    k
}

/// The index of a key made by [`key`].
pub fn key_index(k: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(k).ok()?;
    (s.len() == KEY_BYTES).then(|| u64::from_str_radix(s, 16).ok())?
}

/// A `len`-byte value for write number `write` of key `i` (`len` at least
/// [`VALUE_TAG_BYTES`]).
pub fn value(i: u64, write: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len.max(VALUE_TAG_BYTES));
    v.extend_from_slice(&i.to_le_bytes());
    v.extend_from_slice(&write.to_le_bytes());
    let mut x = mix(i ^ write.rotate_left(32)) | 1;
    while v.len() < len {
        // xorshift64: cheap, and different for every key and write.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (len - v.len()).min(8);
        v.extend_from_slice(&x.to_le_bytes()[..take]);
    }
    v
}

/// The (key index, write number) a value made by [`value`] carries, if its
/// whole content is what that write made.
pub fn value_tag(v: &[u8]) -> Option<(u64, u64)> {
    if v.len() < VALUE_TAG_BYTES {
        return None;
    }
    let i = u64::from_le_bytes(v[..8].try_into().ok()?);
    let write = u64::from_le_bytes(v[8..16].try_into().ok()?);
    (value(i, write, v.len()) == v).then_some((i, write))
}

/// SplitMix64's finaliser: a bijection on `u64` that scatters neighbours.
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A fixed permutation of `0..n` for loads in random key order:
/// `i -> (a * i + c) mod n` with `a` coprime to `n`.
#[derive(Debug, Clone, Copy)]
pub struct Shuffle {
    n: u64,
    a: u64,
    c: u64,
}

impl Shuffle {
    /// The permutation of `0..n` for `seed`.
    pub fn new(n: u64, seed: u64) -> Self {
        let n = n.max(1);
        let mut a = (mix(seed) % n) | 1;
        while gcd(a, n) != 1 {
            a += 2;
        }
        Self { n, a: a % n, c: mix(seed ^ 1) % n }
    }

    /// The `i`-th index of the permutation.
    pub fn at(&self, i: u64) -> u64 {
        ((self.a as u128 * (i % self.n) as u128 + self.c as u128) % self.n as u128) as u64
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// How a workload picks keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// YCSB's scrambled Zipfian, constant 0.99: a few keys take most operations.
    Zipfian,
}

impl Distribution {
    /// Name in tables and records.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Zipfian => "zipfian",
        }
    }
}

/// YCSB's Zipfian generator (Gray et al., "Quickly generating billion-record
/// synthetic databases"), constant 0.99, ranks scrambled by [`mix`] so the
/// hot keys are spread over the key space rather than being its first keys.
#[derive(Debug, Clone, Copy)]
pub struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipf {
    /// YCSB's constant.
    pub const THETA: f64 = 0.99;

    /// A generator over `0..n`. Costs O(n) once (the zeta sum).
    pub fn new(n: u64) -> Self {
        let theta = Self::THETA;
        let zeta = |k: u64| (1..=k).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zetan = zeta(n);
        let zeta2 = zeta(2);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Self { n, theta, alpha, zetan, eta }
    }

    /// The next key index.
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        let u: f64 = rng.random();
        let uz = u * self.zetan;
        let rank = if uz < 1.0 {
            0
        } else if uz < 1.0 + 0.5f64.powf(self.theta) {
            1
        } else {
            ((self.n as f64) * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64
        };
        mix(rank.min(self.n - 1)) % self.n
    }
}

/// Picks key indices for one client thread.
#[derive(Debug)]
pub struct KeyChooser {
    n: u64,
    zipf: Option<Zipf>,
    rng: SmallRng,
}

impl KeyChooser {
    /// A chooser over `0..n`; `zipf` is shared so its O(n) setup runs once.
    pub fn new(n: u64, zipf: Option<Zipf>, seed: u64) -> Self {
        Self { n: n.max(1), zipf, rng: SmallRng::seed_from_u64(seed) }
    }

    /// The next key index.
    pub fn pick(&mut self) -> u64 {
        match &self.zipf {
            Some(z) => z.sample(&mut self.rng),
            None => self.rng.random_range(0..self.n),
        }
    }

    /// A number in `0..100`, for the read/update mix.
    pub fn percent(&mut self) -> u32 {
        self.rng.random_range(0..100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_their_indices_and_round_trip() {
        let ks: Vec<_> = [0u64, 1, 15, 16, 255, 1 << 40, u64::MAX].iter().map(|&i| key(i)).collect();
        assert!(ks.windows(2).all(|w| w[0] < w[1]));
        for i in [0u64, 7, 1 << 33, u64::MAX] {
            assert_eq!(key_index(&key(i)), Some(i));
        }
    }

    #[test]
    fn values_carry_their_write_and_detect_damage() {
        let v = value(42, 7, 100);
        assert_eq!(v.len(), 100);
        assert_eq!(value_tag(&v), Some((42, 7)));
        let mut bad = v.clone();
        bad[60] ^= 1;
        assert_eq!(value_tag(&bad), None);
        assert_ne!(value(42, 8, 100), v);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        for n in [1u64, 2, 10, 1000, 1024] {
            let s = Shuffle::new(n, 9);
            let mut seen: Vec<_> = (0..n).map(|i| s.at(i)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn zipfian_keys_are_skewed_and_in_range() {
        let n = 10_000;
        let mut c = KeyChooser::new(n, Some(Zipf::new(n)), 1);
        let mut hits = std::collections::HashMap::new();
        for _ in 0..100_000 {
            let k = c.pick();
            assert!(k < n);
            *hits.entry(k).or_insert(0u32) += 1;
        }
        let mut counts: Vec<_> = hits.into_values().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        // The hottest 1% of keys take far more than 1% of operations.
        let top: u32 = counts.iter().take(100).sum();
        assert!(top > 30_000, "top 100 keys took {top} of 100000");
    }
}
