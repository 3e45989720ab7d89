//! TLS for the RESP and HTTP listeners (`tls_cert`, `tls_key`,
//! `tls_client_ca`): one rustls configuration per listener, built once at
//! start from PEM files, with the ring provider the rest of the build
//! already uses. With `tls_client_ca` a client must present a certificate
//! that CA signed, or the handshake fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::ServeConfig;

/// How long a client may take to complete the handshake when no
/// `request_timeout_secs` bounds it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The listeners' TLS, when `tls_cert` and `tls_key` are set.
pub struct Tls {
    /// RESP's: no application protocol negotiated.
    pub resp: TlsAcceptor,
    /// HTTP's: offers `http/1.1`.
    pub http: TlsAcceptor,
}

impl Tls {
    /// The listeners' TLS for `config`; `None` without a certificate.
    pub fn from_config(config: &ServeConfig) -> Result<Option<Tls>, TlsError> {
        let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else { return Ok(None) };
        let ca = config.tls_client_ca.as_deref();
        Ok(Some(Tls {
            resp: TlsAcceptor::from(server_config(cert, key, ca, &[])?),
            http: TlsAcceptor::from(server_config(cert, key, ca, &[b"http/1.1"])?),
        }))
    }
}

/// Completes the server side of a handshake within `limit` (or
/// `HANDSHAKE_TIMEOUT`); `None`, logged at debug, when the client fails
/// it, stalls or leaves — a plaintext client on a TLS port among them.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    limit: Option<Duration>,
) -> Option<TlsStream<TcpStream>> {
    let peer = stream.peer_addr().ok();
    match tokio::time::timeout(limit.unwrap_or(HANDSHAKE_TIMEOUT), acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(?peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(?peer, "TLS handshake timed out");
            None
        }
    }
}

/// Why TLS cannot be set up; `logkv serve` refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("{setting} {}: {detail}", path.display())]
    File {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The certificate, key or CA were refused by rustls.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The server configuration for the certificate chain in `cert`, its key
/// in `key`, and, with `client_ca`, client certificates required and
/// checked against it. `alpn`: the protocols offered (HTTP's; none for
/// RESP).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates("tls_cert", cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
        setting: "tls_key",
        path: key.to_path_buf(),
        detail: format!("no usable private key ({e})"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates("tls_client_ca", path)? {
                roots.add(ca).map_err(|e| TlsError::File {
                    setting: "tls_client_ca",
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(format!("tls_cert and tls_key: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Every certificate in a PEM file; at least one.
fn certificates(setting: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |detail: String| TlsError::File { setting, path: path.to_path_buf(), detail };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}
