//! HyperLogLog (`PFADD`, `PFCOUNT`, `PFMERGE`) on string values.
//!
//! The counter is the standard one with 2^14 six-bit registers (standard
//! error 0.81%): an element's 64-bit MurmurHash64A (seed `0xadc83b19`)
//! picks a register with its low 14 bits, and the register keeps the
//! largest "position of the first set bit" of the other 50 bits seen.
//! The count is Ertl's improved raw estimator over the registers' value
//! histogram. With the same hash and estimator as Redis, the counts are
//! the ones redis-server gives for the same elements.
//!
//! The value is logkv's own: `LKHLL1`, then either `s` and the non-zero
//! registers as (index u16 big-endian, value u8) in index order, while
//! that is shorter than the dense form, or `d` and the 16,384 registers
//! a byte each. Any other value is not a HyperLogLog (Redis's
//! `WRONGTYPE Key is not a valid HyperLogLog string value.`).

const PRECISION: u32 = 14;
const REGISTERS: usize = 1 << PRECISION;
/// The hash bits left after the register index.
const Q: u32 = 64 - PRECISION;
const MAGIC: &[u8] = b"LKHLL1";
const SPARSE: u8 = b's';
const DENSE: u8 = b'd';

/// The error for a value that is not a HyperLogLog.
pub const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

/// The registers of one counter.
#[derive(Clone, PartialEq, Eq)]
pub struct Hll(Vec<u8>);

impl Default for Hll {
    fn default() -> Hll {
        Hll(vec![0; REGISTERS])
    }
}

impl Hll {
    /// Reads a stored counter; `None` if `value` is not one.
    pub fn decode(value: &[u8]) -> Option<Hll> {
        let rest = value.strip_prefix(MAGIC)?;
        let (kind, body) = rest.split_first()?;
        let mut registers = vec![0u8; REGISTERS];
        match *kind {
            DENSE if body.len() == REGISTERS => registers.copy_from_slice(body),
            SPARSE if body.len() % 3 == 0 => {
                for entry in body.chunks_exact(3) {
                    let i = usize::from(u16::from_be_bytes([entry[0], entry[1]]));
                    *registers.get_mut(i)? = entry[2];
                }
            }
            _ => return None,
        }
        registers.iter().all(|r| u32::from(*r) <= Q + 1).then_some(Hll(registers))
    }

    /// The stored form: sparse while it is the shorter.
    pub fn encode(&self) -> Vec<u8> {
        let set = self.0.iter().filter(|r| **r != 0).count();
        let mut out = MAGIC.to_vec();
        if set * 3 < REGISTERS {
            out.push(SPARSE);
            for (i, r) in self.0.iter().enumerate().filter(|(_, r)| **r != 0) {
                out.extend_from_slice(&(i as u16).to_be_bytes());
                out.push(*r);
            }
        } else {
            out.push(DENSE);
            out.extend_from_slice(&self.0);
        }
        out
    }

    /// Adds an element; whether a register changed.
    pub fn add(&mut self, element: &[u8]) -> bool {
        let hash = murmur64a(element, 0xadc8_3b19);
        let index = (hash as usize) & (REGISTERS - 1);
        // A sentinel bit bounds the run of zeros at Q.
        let rest = (hash >> PRECISION) | (1 << Q);
        let rank = rest.trailing_zeros() as u8 + 1;
        if rank > self.0[index] {
            self.0[index] = rank;
            true
        } else {
            false
        }
    }

    /// Takes the larger of each register pair.
    pub fn merge(&mut self, other: &Hll) {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a = (*a).max(*b));
    }

    /// The estimated number of distinct elements added.
    pub fn count(&self) -> u64 {
        let mut histogram = [0u32; 64];
        self.0.iter().for_each(|r| histogram[usize::from(*r)] += 1);
        let m = REGISTERS as f64;
        let mut z = m * tau((m - f64::from(histogram[Q as usize + 1])) / m);
        for j in (1..=Q as usize).rev() {
            z += f64::from(histogram[j]);
            z *= 0.5;
        }
        z += m * sigma(f64::from(histogram[0]) / m);
        // alpha_inf = 1 / (2 ln 2).
        let alpha = 0.5 / std::f64::consts::LN_2;
        (alpha * m * m / z).round() as u64
    }
}

/// Ertl's sigma series (the registers still at zero).
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

/// Ertl's tau series (the registers at their largest value).
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

/// MurmurHash64A, Austin Appleby's public-domain 64-bit hash.
fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate() {
            h ^= u64::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_stay_within_the_standard_error_and_survive_encoding() {
        let mut hll = Hll::default();
        for n in 0..100_000u32 {
            hll.add(format!("element:{n}").as_bytes());
        }
        let estimate = hll.count() as f64;
        // 0.81% standard error; 3 sigma.
        assert!((estimate - 100_000.0).abs() < 100_000.0 * 0.0243, "{estimate}");
        assert!(Hll::decode(&hll.encode()) == Some(hll.clone()));
        let mut small = Hll::default();
        assert!(small.add(b"a") && !small.add(b"a"));
        assert_eq!(small.count(), 1);
        assert!(small.encode().len() < 20);
        assert!(Hll::decode(&small.encode()) == Some(small));
        assert!(Hll::decode(b"HYLL").is_none() && Hll::decode(b"LKHLL1s\x00").is_none());
    }
}
