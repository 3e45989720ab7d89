//! The client's TLS settings: rustls with the ring provider, trusting the
//! system's CA certificates and any CA files the caller adds (a test or
//! private deployment's self-signed CA). One configuration serves both
//! HTTPS calls and `wss://` watches.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::error::{Error, Result};

/// The TLS configuration trusting `ca_files` and, when `system` is set,
/// the system's CA certificates (skipped for a plain-HTTP server, where
/// nothing would use them).
pub(crate) fn config(ca_files: &[PathBuf], system: bool) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    if system {
        // Certificates the system store holds but rustls cannot parse are
        // left out; any left are enough to reach a public server.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
    }
    for path in ca_files {
        for cert in ca_certs(path)? {
            roots.add(cert).map_err(|e| ca_error(path, format!("not a usable CA certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls's default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate of the PEM file at `path` (at least one).
fn ca_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ca_error(path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_error(path, "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into()));
    }
    Ok(certs)
}

fn ca_error(path: &Path, detail: String) -> Error {
    Error::CaCert { path: path.to_path_buf(), detail }
}

/// The TLS failure somewhere in `error`'s chain of sources, if any: rustls
/// errors arrive wrapped in (nested) `io::Error`s, whose `source()` skips
/// the wrapped error itself, so each one is looked into.
pub(crate) fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        next = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}
