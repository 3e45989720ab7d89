//! TLS on RESP and HTTP with a test certificate: `redis-cli --tls`, a TLS
//! Redis client library (redis-rs over rustls) and an HTTPS client (the
//! logkv client crate) work; a plaintext client on the TLS port gets
//! nothing; with `tls_client_ca`, a client without a certificate is
//! refused in the handshake and one with a certificate the CA signed is
//! served, on both listeners.

mod server;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use logkv_client::{Client, StreamId};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A test CA, a server certificate for 127.0.0.1 and a client
/// certificate, all as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "logkv test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", ca_cert.pem());
        for (name, san) in [("server", "127.0.0.1"), ("client", "logkv-test-client")] {
            let key = KeyPair::generate().unwrap();
            let cert =
                CertificateParams::new(vec![san.to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server(&self, mutual: bool) -> Server {
        let mut builder = Server::builder()
            .arg("--tls-cert")
            .arg(self.path("server.pem"))
            .arg("--tls-key")
            .arg(self.path("server.key"));
        if mutual {
            builder = builder.arg("--tls-client-ca").arg(self.path("ca.pem"));
        }
        builder.start()
    }
}

fn port(url: &str) -> String {
    url.rsplit(':').next().unwrap().trim_end_matches('/').to_string()
}

/// `redis-cli -p PORT ARGS...`: its stdout, and whether it succeeded.
fn redis_cli(port: &str, args: &[&str]) -> (String, bool) {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", port])
        .args(args)
        .output()
        .expect("redis-cli is installed (scripts/test.sh installs redis-tools)");
    (String::from_utf8_lossy(&out.stdout).trim().to_string(), out.status.success())
}

/// `GET /healthz` over TLS with a raw rustls client, presenting the client
/// certificate when `with_cert`: the answer's status line, or the error.
async fn healthz(pki: &Pki, addr: &str, with_cert: bool) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(pki.path("ca.pem")).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_cert {
        let chain = vec![CertificateDer::from_pem_file(pki.path("client.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(pki.path("client.key")).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&answer).lines().next().unwrap_or("").to_string())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn resp_and_http_speak_tls_to_real_clients() {
    let pki = Pki::new();
    let server = pki.server(false);
    let resp_port = port(&server.redis_url());
    let ca = pki.path("ca.pem");
    let tls = ["--tls", "--cacert", ca.to_str().unwrap()];
    assert_eq!(
        redis_cli(&resp_port, &[&tls[..], &["SET", "greeting", "over tls"]].concat()),
        ("OK".into(), true)
    );
    assert_eq!(redis_cli(&resp_port, &[&tls[..], &["GET", "greeting"]].concat()).0, "over tls");
    // A plaintext client on the TLS port gets no reply.
    let (plain, _) = redis_cli(&resp_port, &["PING"]);
    assert_ne!(plain, "PONG");

    // redis-rs with rustls, trusting the test CA.
    let url = format!("rediss://127.0.0.1:{resp_port}/");
    let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(std::fs::read(&ca).unwrap()) };
    let client = redis::Client::build_with_tls(url, certs).unwrap();
    let mut connection = client.get_connection().expect("a TLS connection");
    let value: String = redis::cmd("GET").arg("greeting").query(&mut connection).unwrap();
    assert_eq!(value, "over tls");
    let () = redis::cmd("SET").arg("from-rust").arg("yes").query(&mut connection).unwrap();

    // HTTPS: the client crate trusting the test CA reads what RESP wrote.
    let https = server.http_url().replace("http://", "https://");
    runtime().block_on(async {
        let untrusting = Client::new(&https).unwrap();
        assert!(matches!(untrusting.status().await, Err(logkv_client::Error::Tls { .. })));
        let client = Client::builder(&https).ca_cert(&ca).build().unwrap();
        let got =
            client.get(&StreamId([0; 32]), b"from-rust", None).await.unwrap().expect("written over RESP");
        assert_eq!(got.value, b"yes");
    });
    let text = server.stderr();
    assert!(!text.contains("without TLS"), "loopback listeners are not warned about: {text}");
}

#[test]
fn with_a_client_ca_only_clients_with_a_certificate_it_signed_are_served() {
    let pki = Pki::new();
    let server = pki.server(true);
    let resp_port = port(&server.redis_url());
    let ca = pki.path("ca.pem");
    let tls = ["--tls", "--cacert", ca.to_str().unwrap()];
    let (answer, _) = redis_cli(&resp_port, &[&tls[..], &["PING"]].concat());
    assert_ne!(answer, "PONG", "no client certificate: refused in the handshake");
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    let with_cert = ["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()];
    assert_eq!(redis_cli(&resp_port, &[&tls[..], &with_cert[..], &["PING"]].concat()), ("PONG".into(), true));
    let http = server.http_url().trim_start_matches("http://").to_string();
    runtime().block_on(async {
        assert_eq!(healthz(&pki, &http, true).await.unwrap(), "HTTP/1.1 200 OK");
        let refused = healthz(&pki, &http, false).await;
        assert!(refused.is_err() || refused.as_deref() == Ok(""), "{refused:?}");
    });
}

#[test]
fn tls_settings_are_checked_before_start() {
    let pki = Pki::new();
    for (args, says) in [
        (vec!["--tls-cert", "server.pem"], "bad setting tls_key"),
        (vec!["--tls-client-ca", "ca.pem"], "bad setting tls_client_ca"),
        (vec!["--tls-cert", "ca.key", "--tls-key", "server.key"], "tls_cert"),
        (vec!["--tls-cert", "server.pem", "--tls-key", "server.pem"], "tls_key"),
    ] {
        let resolved: Vec<String> = args
            .iter()
            .map(|a| if a.starts_with("--") { a.to_string() } else { pki.path(a).display().to_string() })
            .collect();
        let mut all = vec![
            "serve".to_string(),
            "--resp".into(),
            "127.0.0.1:0".into(),
            "--http".into(),
            "127.0.0.1:0".into(),
        ];
        all.extend(resolved);
        let dir = tempfile::tempdir().unwrap();
        let out =
            Command::new(server::binary()).arg("--data-dir").arg(dir.path()).args(&all).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?}: {stderr}");
    }
}
