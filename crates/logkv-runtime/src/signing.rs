//! Ethereum-style accounts and signatures, byte-compatible with ethers v6
//! `wallet.signMessage(getBytes(digest))`, so any Ethereum wallet can sign
//! logkv entries.
//!
//! A signature is over the EIP-191 personal-message hash of a 32-byte digest
//! (see [`eip191_hash`]); it is `r ‖ s ‖ v`, 65 bytes, with `v = 27 + recid`
//! and `s` in the lower half of the group order (EIP-2), as ethers makes it.
//! Recovery accepts only low-S signatures, so a signature has exactly one
//! valid encoding and cannot be altered into a second valid one.

use std::cell::RefCell;
use std::fmt;

use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{ffi, Message, Secp256k1, SecretKey, SignOnly};
use sha3::{Digest, Keccak256};

use crate::types::Address;

pub use secp256k1::PublicKey;

/// Length of a signature: `r` 32, `s` 32, `v` 1.
pub const SIGNATURE_LEN: usize = 65;

/// Half the secp256k1 group order, `(n - 1) / 2`: the largest `s` allowed.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5d,
    0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// Why a signature does not yield (or is not from) the expected account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `v` is not 27, 28, 0 or 1.
    #[error("invalid recovery byte v = {v} (expected 27 or 28)")]
    InvalidRecoveryId {
        /// The last byte of the signature.
        v: u8,
    },
    /// `s` is in the upper half of the group order; ethers never makes one,
    /// and accepting both halves would give every signature a twin.
    #[error("signature s value is not in the lower half of the group order")]
    HighS,
    /// `r` or `s` is zero or not below the group order.
    #[error("signature r or s is out of range")]
    OutOfRange,
    /// No public key matches this signature and digest.
    #[error("no public key can be recovered from this signature")]
    Unrecoverable,
    /// The signature is valid but made by another account.
    #[error("signed by {recovered}, expected {expected}")]
    WrongSigner {
        /// The account the caller expected.
        expected: Address,
        /// The account that did sign.
        recovered: Address,
    },
}

/// A secret key that is not in `1..n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid secret key: it must be a 32-byte number from 1 to the secp256k1 group order minus 1")]
pub struct InvalidSecretKey;

/// Keccak-256 (Ethereum's, not NIST SHA3-256).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// The EIP-191 personal-message hash of the 32 raw bytes of `digest`:
/// `keccak256("\x19Ethereum Signed Message:\n32" ‖ digest)`, what ethers
/// `hashMessage(getBytes(digest))` gives. Wallets only sign such hashes, so a
/// signature over an entry can never double as an Ethereum transaction.
pub fn eip191_hash(digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(b"\x19Ethereum Signed Message:\n32");
    h.update(digest);
    h.finalize().into()
}

/// The Ethereum address of a public key: the last 20 bytes of keccak256 of
/// its 64-byte uncompressed form (without the `0x04` prefix).
pub fn address_of(public_key: &PublicKey) -> Address {
    let uncompressed = public_key.serialize_uncompressed();
    let hash = keccak256(&uncompressed[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    Address(out)
}

/// An account that can sign: a secret key and its address.
/// Its `Debug` shows only the address, so the secret never reaches a log.
#[derive(Clone)]
pub struct Signer {
    secret: SecretKey,
    address: Address,
}

impl Signer {
    /// A signer for a 32-byte big-endian secret key.
    pub fn from_secret_bytes(secret: [u8; 32]) -> Result<Self, InvalidSecretKey> {
        let secret = SecretKey::from_secret_bytes(secret).map_err(|_| InvalidSecretKey)?;
        let address = address_of(&secret.public_key());
        Ok(Self { secret, address })
    }

    /// The account this signer signs for.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.secret.public_key()
    }

    /// Signs `digest` exactly as ethers `wallet.signMessage(getBytes(digest))`:
    /// ECDSA with an RFC 6979 nonce over [`eip191_hash`]`(digest)`, low-S,
    /// returned as `r ‖ s ‖ v` with `v = 27 + recovery id`.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> [u8; SIGNATURE_LEN] {
        let (recid, rs) = sign_recoverable(&eip191_hash(digest), &self.secret).serialize_compact();
        let mut out = [0u8; SIGNATURE_LEN];
        out[..64].copy_from_slice(&rs);
        out[64] = 27 + recid.to_u8();
        out
    }
}

/// Signatures made with one blinding of the signing context before it is
/// blinded afresh.
const SIGNATURES_PER_BLINDING: u32 = 1024;

thread_local! {
    /// This thread's signing context and the signatures made since it was
    /// last blinded.
    static SIGNING: RefCell<(Secp256k1<SignOnly>, u32)> = RefCell::new((Secp256k1::signing_only(), 0));
}

/// An RFC 6979 recoverable signature of `hash` by `secret`.
///
/// The library's own `sign_ecdsa_recoverable` re-blinds its context after
/// every signature (defense in depth against side channels; the signing
/// code is constant-time without it), which costs as much as the signature
/// itself: the node signs an entry per batch of writes, so this signs with
/// a thread's own context, blinded with fresh randomness every
/// [`SIGNATURES_PER_BLINDING`] signatures. The signature is the same
/// either way (RFC 6979 nonces do not depend on the blinding).
fn sign_recoverable(hash: &[u8; 32], secret: &SecretKey) -> RecoverableSignature {
    SIGNING.with(|signing| {
        let (ctx, made) = &mut *signing.borrow_mut();
        if *made % SIGNATURES_PER_BLINDING == 0 {
            let mut seed = [0u8; 32];
            if getrandom::fill(&mut seed).is_err() {
                // No system randomness: the secret and message, as the library does.
                seed = secret.to_secret_bytes();
            }
            seed.iter_mut().zip(hash).for_each(|(s, h)| *s ^= h);
            ctx.seeded_randomize(&seed);
        }
        *made = made.wrapping_add(1);
        let mut signature = ffi::recovery::RecoverableSignature::new();
        let secret = secret.to_secret_bytes();
        // SAFETY: the context is a valid signing context owned by this
        // thread, and every pointer is to a live value of the size the
        // function reads (32-byte message and secret) or writes (one
        // signature). A valid secret key and any message always sign.
        let signed = unsafe {
            ffi::recovery::secp256k1_ecdsa_sign_recoverable(
                ctx.ctx().as_ptr(),
                &mut signature,
                hash.as_ptr(),
                secret.as_ptr(),
                ffi::secp256k1_nonce_function_rfc6979,
                std::ptr::null(),
            )
        };
        assert_eq!(signed, 1, "a valid secret key signs any message");
        RecoverableSignature::from(signature)
    })
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("address", &self.address).finish_non_exhaustive()
    }
}

/// The account that signed `digest` (as [`Signer::sign_digest`] and ethers
/// do). `v` may be 27/28 or 0/1. Allocation-free; it uses the thread's
/// shared secp256k1 context.
pub fn recover(digest: &[u8; 32], signature: &[u8; SIGNATURE_LEN]) -> Result<Address, SignatureError> {
    let v = signature[64];
    let recid = match v {
        27 | 28 => v - 27,
        0 | 1 => v,
        _ => return Err(SignatureError::InvalidRecoveryId { v }),
    };
    if signature[32..64] > HALF_ORDER[..] {
        return Err(SignatureError::HighS);
    }
    if signature[..32] == [0; 32] || signature[32..64] == [0; 32] {
        return Err(SignatureError::OutOfRange);
    }
    let sig = RecoverableSignature::from_compact(&signature[..64], RecoveryId::from_u8_masked(recid))
        .map_err(|_| SignatureError::OutOfRange)?;
    let public_key = sig
        .recover_ecdsa(Message::from_digest(eip191_hash(digest)))
        .map_err(|_| SignatureError::Unrecoverable)?;
    Ok(address_of(&public_key))
}

/// Checks that `signature` over `digest` was made by `expected`.
pub fn verify(
    digest: &[u8; 32],
    signature: &[u8; SIGNATURE_LEN],
    expected: Address,
) -> Result<(), SignatureError> {
    let recovered = recover(digest, signature)?;
    if recovered == expected {
        Ok(())
    } else {
        Err(SignatureError::WrongSigner { expected, recovered })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(byte: u8) -> Signer {
        Signer::from_secret_bytes([byte; 32]).expect("a key of repeated non-zero bytes is below n")
    }

    #[test]
    fn keccak256_is_ethereum_keccak_not_sha3() {
        // keccak256("") from the Ethereum yellow paper; SHA3-256("") is a7ffc6f8...
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn signatures_recover_with_v_27_28_or_0_1() {
        let s = signer(7);
        let digest = keccak256(b"entry");
        let mut sig = s.sign_digest(&digest);
        assert!(sig[64] == 27 || sig[64] == 28);
        assert_eq!(recover(&digest, &sig), Ok(s.address()));
        sig[64] -= 27;
        assert_eq!(recover(&digest, &sig), Ok(s.address()));
        assert_eq!(verify(&digest, &sig, s.address()), Ok(()));
    }

    #[test]
    fn other_v_values_are_rejected() {
        let digest = keccak256(b"entry");
        let mut sig = signer(7).sign_digest(&digest);
        for v in [2, 3, 26, 29, 35, 36, 255] {
            sig[64] = v;
            assert_eq!(recover(&digest, &sig), Err(SignatureError::InvalidRecoveryId { v }));
        }
    }

    #[test]
    fn high_s_twin_of_a_valid_signature_is_rejected() {
        let digest = keccak256(b"entry");
        let sig = signer(9).sign_digest(&digest);
        // n - s with the other recovery id is the same signature's twin.
        let n: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
            0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
        ];
        let mut twin = sig;
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(n[i]) - i16::from(sig[32 + i]) - borrow;
            twin[32 + i] = d.rem_euclid(256) as u8;
            borrow = i16::from(d < 0);
        }
        twin[64] = if sig[64] == 27 { 28 } else { 27 };
        assert_eq!(recover(&digest, &twin), Err(SignatureError::HighS));
    }

    #[test]
    fn zero_or_oversized_r_or_s_is_out_of_range() {
        let digest = keccak256(b"entry");
        let mut sig = signer(3).sign_digest(&digest);
        sig[..32].fill(0);
        assert_eq!(recover(&digest, &sig), Err(SignatureError::OutOfRange));
        sig[..32].fill(0xff);
        assert_eq!(recover(&digest, &sig), Err(SignatureError::OutOfRange));
        let mut zero_s = signer(3).sign_digest(&digest);
        zero_s[32..64].fill(0);
        assert_eq!(recover(&digest, &zero_s), Err(SignatureError::OutOfRange));
    }

    #[test]
    fn a_signature_over_another_digest_names_another_signer() {
        let s = signer(5);
        let sig = s.sign_digest(&keccak256(b"a"));
        match verify(&keccak256(b"b"), &sig, s.address()) {
            Err(SignatureError::WrongSigner { expected, recovered }) => {
                assert_eq!(expected, s.address());
                assert_ne!(recovered, s.address());
            }
            other => panic!("expected WrongSigner, got {other:?}"),
        }
    }

    #[test]
    fn secret_keys_outside_1_to_n_minus_1_are_refused() {
        assert_eq!(Signer::from_secret_bytes([0; 32]).err(), Some(InvalidSecretKey));
        assert_eq!(Signer::from_secret_bytes([0xff; 32]).err(), Some(InvalidSecretKey));
    }

    #[test]
    fn debug_shows_the_address_never_the_secret() {
        let shown = format!("{:?}", signer(0xab));
        assert!(shown.contains(&signer(0xab).address().to_string()), "{shown}");
        assert!(!shown.to_lowercase().contains("abababab"), "{shown}");
    }
}
