//! Limits: format maxima (constants, the same for every node) and what this
//! store accepts (configuration, checked before anything is written).

use crate::error::StoreError;

/// Longest key the format can hold.
pub const FORMAT_MAX_KEY_BYTES: usize = 65_535;
/// Largest value the format can hold.
pub const FORMAT_MAX_VALUE_BYTES: usize = 16 << 20;
/// Most ops in one batch the format allows.
pub const FORMAT_MAX_BATCH_OPS: usize = 65_536;

/// What the store accepts from its callers. Defaults: keys of 1..=1024
/// bytes (what applications use for Redis keys; the original
/// specification's 64 was too short for many), values of at most 1 MiB.
/// This `Default` is the one definition of the default limits: the
/// server's settings and the CLI take theirs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest key accepted (at most [`FORMAT_MAX_KEY_BYTES`]).
    pub max_key_bytes: usize,
    /// Largest value accepted (at most [`FORMAT_MAX_VALUE_BYTES`]).
    pub max_value_bytes: usize,
    /// Most ops in one batch (at most [`FORMAT_MAX_BATCH_OPS`]).
    pub max_batch_ops: usize,
    /// Most bytes of keys and values in one batch.
    pub max_batch_bytes: usize,
    /// Ceiling on the in-memory index; new keys beyond it are refused.
    pub max_index_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_key_bytes: 1024,
            max_value_bytes: 1 << 20,
            max_batch_ops: 10_000,
            max_batch_bytes: 64 << 20,
            max_index_bytes: 4 << 30,
        }
    }
}

impl Limits {
    /// Checks that the configured limits stay inside the format's.
    pub fn validate(&self) -> Result<(), StoreError> {
        check("max_key_bytes", FORMAT_MAX_KEY_BYTES, self.max_key_bytes)?;
        check("max_value_bytes", FORMAT_MAX_VALUE_BYTES, self.max_value_bytes)?;
        check("max_batch_ops", FORMAT_MAX_BATCH_OPS, self.max_batch_ops)
    }

    /// Checks a key's length (1..=max_key_bytes).
    pub fn check_key(&self, key: &[u8]) -> Result<(), StoreError> {
        if key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        check("max_key_bytes", self.max_key_bytes, key.len())
    }

    /// Checks a value's length.
    pub fn check_value(&self, value: &[u8]) -> Result<(), StoreError> {
        check("max_value_bytes", self.max_value_bytes, value.len())
    }
}

/// `LimitExceeded` when `got > limit`.
pub(crate) fn check(what: &'static str, limit: usize, got: usize) -> Result<(), StoreError> {
    if got > limit {
        return Err(StoreError::LimitExceeded { what, limit: limit as u64, got: got as u64 });
    }
    Ok(())
}
