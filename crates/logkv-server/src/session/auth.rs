//! Users: a TOML file naming each user, the SHA-256 of their password
//! (never the password), optionally the SHA-256 of a bearer token for HTTP,
//! and the key file their writes are signed with (docs/server.md, "Users").
//! RESP authenticates with `AUTH`, HTTP with the token or, over TLS or
//! loopback, HTTP Basic (crate::access).
//!
//! ```toml
//! [[user]]
//! name = "alice"
//! password_sha256 = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"
//! token_sha256 = "…"        # optional: `Authorization: Bearer <token>` on HTTP
//! key_file = "alice.key"   # relative to the users file's directory
//! ```

use std::path::{Path, PathBuf};

use logkv_runtime::keyfile::{self, KeyfileError};
use logkv_runtime::signing::Signer;
use serde::Deserialize;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Redis's reply to wrong credentials.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// Redis's reply to a command before `AUTH` when a password is required.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// Redis's reply to `HELLO` without `AUTH` from a client that must authenticate.
pub const NOAUTH_HELLO: &str =
    "NOAUTH HELLO must be called with the client already authenticated, otherwise \
the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP \
protocol version at the same time";
/// Redis's reply to `AUTH password` when the default user has no password.
pub const NO_PASSWORD: &str = "ERR AUTH <password> called without any password configured for the default \
user. Are you sure your configuration is correct?";
/// The user `AUTH password` (one argument) authenticates as.
pub const DEFAULT_USER: &[u8] = b"default";

/// Why the users file cannot be used; `logkv serve` refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The file cannot be read.
    #[error("users file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid TOML of the expected shape.
    #[error("users file {}: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
    /// A user's key file cannot be loaded.
    #[error("users file {}: user {user:?}: key file: {source}", path.display())]
    Key { path: PathBuf, user: String, source: KeyfileError },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    user: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    password_sha256: String,
    #[serde(default)]
    token_sha256: Option<String>,
    key_file: PathBuf,
}

/// One user: name, password digest, signing identity.
pub struct User {
    /// The name given to `AUTH`.
    pub name: String,
    digest: [u8; 32],
    token: Option<[u8; 32]>,
    /// The identity the user's writes are signed with.
    pub signer: Signer,
}

/// The users of a server with a users file.
pub struct Users(Vec<User>);

impl Users {
    /// Loads and checks the users file at `path`: every entry has a name
    /// (unique, non-empty), a 64-digit hex digest and a loadable key file.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| UsersError::Read { path: path.into(), source })?;
        let malformed = |message: String| UsersError::Malformed { path: path.into(), message };
        let file: UsersFile = toml::from_str(&text).map_err(|e| malformed(e.to_string()))?;
        if file.user.is_empty() {
            return Err(malformed("no [[user]] entries".into()));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut users: Vec<User> = Vec::new();
        for entry in file.user {
            if entry.name.is_empty() {
                return Err(malformed("a user with an empty name".into()));
            }
            if users.iter().any(|u| u.name == entry.name) {
                return Err(malformed(format!("user {:?} appears twice", entry.name)));
            }
            let digest_of = |field: &str, text: &str| {
                hex::decode(text.trim())
                    .ok()
                    .and_then(|d| d.try_into().ok())
                    .ok_or_else(|| malformed(format!("user {:?}: {field} must be 64 hex digits", entry.name)))
            };
            let digest = digest_of("password_sha256", &entry.password_sha256)?;
            let token = entry.token_sha256.as_deref().map(|t| digest_of("token_sha256", t)).transpose()?;
            let key_path = base.join(&entry.key_file);
            let signer = keyfile::load(&key_path).map_err(|source| UsersError::Key {
                path: path.into(),
                user: entry.name.clone(),
                source,
            })?;
            users.push(User { name: entry.name, digest, token, signer });
        }
        Ok(Users(users))
    }

    /// The user with these credentials, if any. Digests are compared in
    /// constant time.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<&User> {
        let digest: [u8; 32] = Sha256::digest(password).into();
        let user = self.0.iter().find(|u| u.name.as_bytes() == name)?;
        bool::from(user.digest.ct_eq(&digest)).then_some(user)
    }

    /// The user whose bearer token this is, if any: every user's digest is
    /// compared, in constant time, so the answer's timing says nothing of
    /// which user or how close.
    pub fn by_token(&self, token: &[u8]) -> Option<&User> {
        let digest: [u8; 32] = Sha256::digest(token).into();
        let mut found = None;
        for user in &self.0 {
            if let Some(t) = &user.token {
                if bool::from(t.ct_eq(&digest)) {
                    found = Some(user);
                }
            }
        }
        found
    }

    /// Whether a user of this name exists.
    pub fn contains(&self, name: &[u8]) -> bool {
        self.0.iter().any(|u| u.name.as_bytes() == name)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn load_and_authenticate() {
        let dir = tempfile::tempdir().unwrap();
        keyfile::create(dir.path().join("alice.key")).unwrap();
        let digest = hex::encode(Sha256::digest(b"s3cret"));
        let path = dir.path().join("users.toml");
        std::fs::write(
            &path,
            format!("[[user]]\nname = \"alice\"\npassword_sha256 = \"{digest}\"\nkey_file = \"alice.key\"\n"),
        )
        .unwrap();
        let users = Users::load(&path).unwrap();
        assert_eq!(users.len(), 1);
        assert!(users.authenticate(b"alice", b"s3cret").is_some());
        assert!(users.authenticate(b"alice", b"s3cre").is_none());
        assert!(users.authenticate(b"bob", b"s3cret").is_none());

        std::fs::write(&path, "[[user]]\nname = \"alice\"\n").unwrap();
        assert!(matches!(Users::load(&path), Err(UsersError::Malformed { .. })));
        std::fs::write(
            &path,
            format!("[[user]]\nname = \"bob\"\npassword_sha256 = \"{digest}\"\nkey_file = \"missing.key\"\n"),
        )
        .unwrap();
        let e = Users::load(&path).err().unwrap().to_string();
        assert!(e.contains("bob") && e.contains("missing.key"), "{e}");
        std::fs::set_permissions(dir.path().join("alice.key"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        std::fs::write(
            &path,
            format!("[[user]]\nname = \"alice\"\npassword_sha256 = \"{digest}\"\nkey_file = \"alice.key\"\n"),
        )
        .unwrap();
        assert!(matches!(Users::load(&path), Err(UsersError::Key { .. })));
    }
}
