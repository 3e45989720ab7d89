//! Key files: an account's secret key on disk, as one line of text:
//! `0x` and 64 lowercase hex digits, then a newline (the form `cast wallet`
//! and ethers print, so keys move between tools by copy and paste).
//!
//! The file is only ever readable by its owner: [`create`] makes it with mode
//! 0600 in the same call that creates it (never a wider mode, not even for a
//! moment), and [`load`] refuses a file that group or others could read, as
//! ssh does. Nothing here prints or logs the secret; errors name the file,
//! never its content.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::signing::{InvalidSecretKey, Signer};
use crate::types::Address;

/// Bytes read from a key file at most: a key line is 67; a longer file is
/// not a key file, and reading it whole would be pointless.
const MAX_KEYFILE_BYTES: u64 = 256;

/// How many random draws [`create`] makes before deciding the system's
/// random source is broken (a draw outside `1..n` has odds of about 2^-128).
const KEY_DRAWS: usize = 8;

/// Why a key file could not be created or loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyfileError {
    /// [`create`] never overwrites a key.
    #[error("{}: a file already exists there; refusing to overwrite it", path.display())]
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// Group or others may read the file (or it is not a regular file).
    #[error("{}: key file mode is {mode:04o}; it must be readable by its owner only (chmod 600)", path.display())]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not `0x` and 64 hex digits (optionally followed by whitespace).
    #[error("{}: not a key file (expected one line: 0x and 64 hex digits)", path.display())]
    Malformed {
        /// The key file.
        path: PathBuf,
    },
    /// The number is not a valid secp256k1 secret key.
    #[error("{}: {source}", path.display())]
    InvalidKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: InvalidSecretKey,
    },
    /// The operating system gave no usable randomness.
    #[error("cannot draw a random key: {detail}")]
    Random {
        /// What failed.
        detail: String,
    },
    /// Reading, writing or syncing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// Creates a key file at `path` holding a new random secret key, with mode
/// 0600, and returns its account. Fails with [`KeyfileError::Exists`] if
/// anything is at `path`. The key is written and synced under a temporary
/// name first and then linked into place (a link, unlike a rename, never
/// replaces an existing file), so a crash never leaves a partial key at
/// `path`; the directory is synced before this returns.
pub fn create(path: impl AsRef<Path>) -> Result<Address, KeyfileError> {
    let path = path.as_ref();
    if path.exists() {
        return Err(KeyfileError::Exists { path: path.to_path_buf() });
    }
    let (secret, address) = random_key()?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = Path::new(&tmp_name);
    let _ = fs::remove_file(tmp);
    let line = format!("0x{}\n", hex::encode(secret));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .and_then(|mut file| file.write_all(line.as_bytes()).and_then(|()| file.sync_all()))
        .map_err(io_error(tmp))
        .and_then(|()| {
            fs::hard_link(tmp, path).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    KeyfileError::Exists { path: path.to_path_buf() }
                } else {
                    io_error(path)(e)
                }
            })
        });
    let _ = fs::remove_file(tmp);
    written?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))?;
    Ok(address)
}

/// Loads the key file at `path`. Refuses a file group or others may read
/// ([`KeyfileError::TooOpen`]), checked on the opened file itself.
pub fn load(path: impl AsRef<Path>) -> Result<Signer, KeyfileError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(io_error(path))?;
    let meta = file.metadata().map_err(io_error(path))?;
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_file() || mode & 0o077 != 0 {
        return Err(KeyfileError::TooOpen { path: path.to_path_buf(), mode });
    }
    let mut content = Vec::new();
    file.take(MAX_KEYFILE_BYTES).read_to_end(&mut content).map_err(io_error(path))?;
    let malformed = || KeyfileError::Malformed { path: path.to_path_buf() };
    let text = std::str::from_utf8(&content).map_err(|_| malformed())?.trim_end();
    let digits = text.strip_prefix("0x").ok_or_else(malformed)?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(digits, &mut secret).map_err(|_| malformed())?;
    Signer::from_secret_bytes(secret)
        .map_err(|source| KeyfileError::InvalidKey { path: path.to_path_buf(), source })
}

/// A fresh secret key from the operating system's random source.
fn random_key() -> Result<([u8; 32], Address), KeyfileError> {
    for _ in 0..KEY_DRAWS {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyfileError::Random { detail: e.to_string() })?;
        if let Ok(signer) = Signer::from_secret_bytes(secret) {
            return Ok((secret, signer.address()));
        }
    }
    Err(KeyfileError::Random { detail: format!("{KEY_DRAWS} draws in a row were not valid keys") })
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> KeyfileError + '_ {
    move |source| KeyfileError::Io { path: path.to_path_buf(), source }
}
