//! How the client checks the servers and proves who it is to them: TLS
//! (the CA that signs the servers' certificates, a client certificate for
//! servers that verify clients) and one kind of credentials.
//!
//! Every file is read before connecting, so a missing or malformed one is
//! reported as such rather than as a failed handshake; secrets are never
//! written out (`Debug` and `Display` name the kind, the user or the public
//! key, not the password, token or seed).

use std::fmt;
use std::path::{Path, PathBuf};

use async_nats::ConnectOptions;

/// TLS towards the servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// Refuse a server that does not speak TLS (a `tls://` URL or a file
    /// below). Otherwise TLS is used only when a server demands it, and
    /// then verified against the system's CAs.
    pub required: bool,
    /// CA certificates (PEM) that sign the servers' certificates, trusted
    /// instead of the system's.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and its private key (PEM), for servers
    /// that verify their clients.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// What the client presents to the servers.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// Nothing: the servers must accept anonymous clients.
    #[default]
    None,
    /// A user and its password.
    UserPassword {
        /// The user.
        user: String,
        /// Its password.
        password: String,
    },
    /// A token.
    Token(String),
    /// An nkey: the file holds its seed (`SU...`), which signs the
    /// server's challenge.
    NkeySeedFile(PathBuf),
    /// A creds file: a user JWT and its nkey seed (operator mode).
    CredsFile(PathBuf),
}

impl fmt::Display for Credentials {
    /// What was presented, for error messages: never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("no credentials"),
            Credentials::UserPassword { user, .. } => write!(f, "user {user:?} and its password"),
            Credentials::Token(_) => f.write_str("a token"),
            Credentials::NkeySeedFile(path) => write!(f, "the nkey of seed file {}", path.display()),
            Credentials::CredsFile(path) => write!(f, "creds file {}", path.display()),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({self})")
    }
}

/// A TLS or credentials file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {path}: {why}")]
pub struct CredentialsError {
    /// Which file: `TLS CA file`, `nkey seed file`, ...
    pub what: &'static str,
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub why: String,
}

/// `options` with `tls` and `credentials`, their files read and checked.
pub(crate) fn secure(
    mut options: ConnectOptions,
    tls: &Tls,
    credentials: &Credentials,
) -> Result<ConnectOptions, CredentialsError> {
    options = options.require_tls(tls.required);
    if let Some(ca) = &tls.ca {
        read("TLS CA file", ca)?;
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &tls.client {
        read("TLS client certificate file", cert)?;
        read("TLS client key file", key)?;
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(match credentials {
        Credentials::None => options,
        Credentials::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.clone())
        }
        Credentials::Token(token) => options.token(token.clone()),
        Credentials::NkeySeedFile(path) => options.nkey(nkey_seed(path)?),
        Credentials::CredsFile(path) => {
            let what = "creds file";
            options.credentials(&read(what, path)?).map_err(|e| invalid(what, path, e.to_string()))?
        }
    })
}

/// The seed in an nkey seed file, checked to be a seed.
fn nkey_seed(path: &Path) -> Result<String, CredentialsError> {
    let what = "nkey seed file";
    let seed = read(what, path)?.trim().to_string();
    match nkeys::KeyPair::from_seed(&seed) {
        Ok(pair) => {
            tracing::debug!(nkey = %pair.public_key(), "connecting with an nkey");
            Ok(seed)
        }
        Err(e) => Err(invalid(what, path, format!("not an nkey seed ({e})"))),
    }
}

fn read(what: &'static str, path: &Path) -> Result<String, CredentialsError> {
    std::fs::read_to_string(path).map_err(|e| invalid(what, path, format!("cannot read it: {e}")))
}

fn invalid(what: &'static str, path: &Path, why: String) -> CredentialsError {
    CredentialsError { what, path: path.display().to_string(), why }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_never_shown() {
        let c = Credentials::UserPassword { user: "alice".into(), password: "pw-secret".into() };
        assert_eq!(c.to_string(), "user \"alice\" and its password");
        assert!(!format!("{c:?}").contains("pw-secret"));
        assert!(!format!("{:?}", Credentials::Token("tok-secret".into())).contains("tok-secret"));
    }

    #[test]
    fn unreadable_and_malformed_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let tls = Tls { required: true, ca: Some(missing.clone()), client: None };
        let e = secure(ConnectOptions::new(), &tls, &Credentials::None).err().unwrap();
        assert_eq!((e.what, e.path.as_str()), ("TLS CA file", missing.to_str().unwrap()));
        let seed = dir.path().join("seed");
        std::fs::write(&seed, "SUnot-a-seed\n").unwrap();
        let e =
            secure(ConnectOptions::new(), &Tls::default(), &Credentials::NkeySeedFile(seed)).err().unwrap();
        assert!(e.to_string().starts_with("nkey seed file ") && e.why.contains("not an nkey seed"), "{e}");
        let creds = dir.path().join("user.creds");
        std::fs::write(&creds, "no JWT here").unwrap();
        let e = secure(ConnectOptions::new(), &Tls::default(), &Credentials::CredsFile(creds)).err().unwrap();
        assert!(e.to_string().starts_with("creds file ") && e.why.contains("JWT"), "{e}");
    }
}
