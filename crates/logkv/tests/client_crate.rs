//! The `logkv-client` crate against a real `logkv serve`: reads (a value
//! of several pages included), writes signed by the client, `kv_watch` as
//! a stream, `kv_waitForVersion`, and TLS with a test certificate — the
//! server speaks plain HTTP, so a TLS-terminating forwarder in this
//! process (rustls, a certificate of a CA made here) stands in front of
//! it, and the client's own TLS path runs end to end, `https://` and
//! `wss://`, the CLI's `--server-ca` too.

mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use logkv_client::signing::Signer;
use logkv_client::{keyfile, Change, Client, Error, ScanOptions, StreamId, MAX_QUERY_LEN_BYTES};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use server::Server;
use tokio::net::{TcpListener, TcpStream};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// A new signing key in `dir`.
fn new_signer(dir: &Path, name: &str) -> Signer {
    let path = dir.join(name);
    keyfile::create(&path).expect("create a key");
    keyfile::load(&path).expect("load the key")
}

/// The next change of a watch, which must come.
async fn next_change(watch: &mut logkv_client::Watch) -> Change {
    let next = tokio::time::timeout(server::PATIENCE, watch.next()).await.expect("a change within patience");
    next.expect("the watch goes on").expect("a change, not an error")
}

#[test]
fn reads_and_signed_writes_round_trip() {
    let server = Server::start();
    let keys = tempfile::tempdir().unwrap();
    let signer = new_signer(keys.path(), "writer.key");
    runtime().block_on(async {
        let client = Client::new(&server.http_url()).unwrap();
        assert!(client.status().await.unwrap());
        let stream = StreamId([7; 32]);

        let put = client.put(&signer, stream, b"greeting", b"hello").await.unwrap();
        assert!(put.committed(), "{put:?}");
        assert_eq!(put.versions, vec![put.version]);
        let got = client.get(&stream, b"greeting", None).await.unwrap().expect("written");
        assert_eq!((got.value.as_slice(), got.version), (&b"hello"[..], put.version));
        assert_eq!(client.transaction_result(put.version).await.unwrap().as_deref(), Some("Commit"));
        assert!(client.holding_stream_ids().await.unwrap().contains(&stream));
        assert!(client.has_write_permission(&signer.address(), &stream, b"any", None).await.unwrap());
        assert!(client.replay_progress().await.unwrap().applied_version >= put.version);

        // A value of three pages comes back whole, through get and iteration.
        let big: Vec<u8> = (0..(2 * MAX_QUERY_LEN_BYTES as u32 + 1000)).map(|i| (i % 251) as u8).collect();
        let big_put = client.put(&signer, stream, b"big", &big).await.unwrap();
        assert!(big_put.committed());
        assert_eq!(client.get(&stream, b"big", None).await.unwrap().expect("written").value, big);
        let page = client.get_page(&stream, b"big", MAX_QUERY_LEN_BYTES, 10, None).await.unwrap();
        assert_eq!((page.size, page.data.as_slice()), (big.len() as u64, &big[262_144..262_154]));
        let first = client.first(&stream, None).await.unwrap().expect("a key");
        assert_eq!((first.key.as_slice(), first.value.len()), (&b"big"[..], big.len()));
        let next = client.next(&stream, b"big", false, None).await.unwrap().expect("a key after big");
        assert_eq!(next.key, b"greeting");
        let last = client.last(&stream, None).await.unwrap().expect("a key");
        assert_eq!(last.key, b"greeting");
        assert_eq!(client.prev(&stream, b"greeting", false, None).await.unwrap().expect("before").value, big);

        // An empty value is a value; a delete leaves none.
        assert!(client.put(&signer, stream, b"empty", b"").await.unwrap().committed());
        let meta = client.meta(&stream, b"empty", None).await.unwrap().expect("live");
        assert_eq!(meta.size, 0);
        let del = client.delete(&signer, stream, b"greeting", Some(put.version)).await.unwrap();
        assert!(del.committed(), "{del:?}");
        assert_eq!(client.get(&stream, b"greeting", None).await.unwrap(), None);
        assert_eq!(
            client.get(&stream, b"greeting", Some(put.version)).await.unwrap().expect("then").value,
            b"hello"
        );
        let history = client.history(&stream, b"greeting", None).await.unwrap();
        let history: Vec<_> = history.iter().map(|h| (h.version, h.deleted)).collect();
        assert_eq!(history, vec![(del.version, true), (put.version, false)]);

        // A delete that read an older version than the key's newest does
        // not commit: a result, not an error.
        let again = client.put(&signer, stream, b"empty", b"x").await.unwrap();
        let stale = client.delete(&signer, stream, b"empty", Some(meta.version)).await.unwrap();
        assert_eq!(stale.results, vec![Some("VersionConfliction".to_string())]);
        assert!(!stale.committed());

        // A scan reads every key as of one version.
        let kvs: Vec<_> = client.scan(stream, ScanOptions::default()).collect().await;
        let kvs: Vec<_> =
            kvs.into_iter().map(|kv| kv.unwrap()).map(|kv| (kv.key, kv.value.len(), kv.version)).collect();
        assert_eq!(
            kvs,
            vec![(b"big".to_vec(), big.len(), big_put.version), (b"empty".to_vec(), 1, again.version)]
        );
        let reverse = ScanOptions { reverse: true, limit: Some(1), ..ScanOptions::default() };
        let kvs: Vec<_> = client.scan(stream, reverse).collect().await;
        assert_eq!(kvs.len(), 1);
        assert_eq!(kvs[0].as_ref().unwrap().key, b"empty");

        // The server's refusals are typed, with its code and data.
        match client.get_page(&stream, b"big", 0, MAX_QUERY_LEN_BYTES + 1, None).await {
            Err(Error::Rpc { code: -32602, message, .. }) => assert_eq!(message, "Invalid params: len"),
            other => panic!("expected -32602, got {other:?}"),
        }
        match client.submit(b"not an entry").await {
            Err(Error::Rpc { code: -32010, data, .. }) => assert!(data.is_string(), "{data}"),
            other => panic!("expected -32010, got {other:?}"),
        }
    });
}

#[test]
fn watch_streams_history_then_live_writes_and_waits_see_versions() {
    let server = Server::start();
    let keys = tempfile::tempdir().unwrap();
    let signer = new_signer(keys.path(), "writer.key");
    runtime().block_on(async {
        let client = Client::new(&server.http_url()).unwrap();
        let stream = StreamId([3; 32]);
        let first = client.put(&signer, stream, b"a", b"1").await.unwrap();

        let mut watch = client.watch(&stream, 0).await.unwrap();
        assert!(!watch.subscription().is_empty());
        let history = next_change(&mut watch).await;
        assert_eq!(
            history,
            Change { version: first.version, key: b"a".to_vec(), value: Some(b"1".to_vec()) }
        );

        // A wait for any later version, answered by the write after it.
        let waiting = tokio::spawn({
            let client = client.clone();
            async move { client.wait_for_version(first.version + 1, None).await }
        });
        let second = client.put(&signer, stream, b"b", b"2").await.unwrap();
        assert!(waiting.await.unwrap().unwrap() >= second.version);
        let del = client.delete(&signer, stream, b"a", None).await.unwrap();

        let live = next_change(&mut watch).await;
        assert_eq!(live, Change { version: second.version, key: b"b".to_vec(), value: Some(b"2".to_vec()) });
        let deleted = next_change(&mut watch).await;
        assert_eq!(deleted, Change { version: del.version, key: b"a".to_vec(), value: None });

        // A watch from a version starts there.
        let mut later = client.watch(&stream, second.version).await.unwrap();
        assert_eq!(next_change(&mut later).await.version, second.version);

        // A version nobody wrote is not visible: the wait says so, typed.
        let visible = client.wait_for_version(del.version, Some(Duration::ZERO)).await.unwrap();
        assert!(visible >= del.version);
        match client.wait_for_version(visible + (1000 << 16), Some(Duration::from_millis(50))).await {
            Err(Error::Rpc { code: -32020, .. }) => {}
            other => panic!("expected a -32020 timeout, got {other:?}"),
        }
    });
}

#[test]
fn a_server_that_is_not_there_and_a_bad_url_are_typed() {
    runtime().block_on(async {
        let port = server::free_port();
        let client = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
        assert!(matches!(client.status().await, Err(Error::Unreachable { .. })));
        assert!(matches!(client.watch(&StreamId([0; 32]), 0).await, Err(Error::Unreachable { .. })));
        for url in ["127.0.0.1:7380", "ftp://127.0.0.1:7380", "http://"] {
            assert!(matches!(Client::new(url), Err(Error::BadUrl { .. })), "{url}");
        }
        let missing = Client::builder("https://127.0.0.1:1").ca_cert("/nonexistent/ca.pem").build();
        assert!(matches!(missing, Err(Error::CaCert { .. })), "{missing:?}");
    });
}

/// A CA made for the test and a certificate it signed for 127.0.0.1.
struct TestPki {
    ca_pem: String,
    server_config: Arc<rustls::ServerConfig>,
}

fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "logkv test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf =
        CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    TestPki { ca_pem: ca_cert.pem(), server_config: Arc::new(server_config) }
}

/// Listens on a loopback port, ends TLS there and forwards the bytes to
/// `upstream` (the server's plain HTTP port); its `https://` URL.
async fn tls_forwarder(config: Arc<rustls::ServerConfig>, upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate gives up
                // during the handshake: nothing to forward then.
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut plain = TcpStream::connect(&upstream).await.expect("the server listens");
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    url
}

fn logkv(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(server::binary());
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("LOGKV_")) {
            command.env_remove(key);
        }
    }
    command.current_dir(dir).args(args).output().expect("run logkv")
}

#[test]
fn tls_with_a_test_certificate_needs_its_ca() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let signer = new_signer(dir.path(), "writer.key");
    let pki = test_pki();
    let ca: PathBuf = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let rt = runtime();
    let url = rt.block_on(tls_forwarder(pki.server_config.clone(), server.http.clone()));
    let stream = StreamId([5; 32]);

    rt.block_on(async {
        // Without the CA the certificate is not trusted: a typed TLS error,
        // over HTTPS and over the WebSocket alike.
        let untrusting = Client::new(&url).unwrap();
        match untrusting.status().await {
            Err(Error::Tls { detail, .. }) => assert!(detail.contains("certificate"), "{detail}"),
            other => panic!("expected a TLS error, got {other:?}"),
        }
        assert!(matches!(untrusting.watch(&stream, 0).await, Err(Error::Tls { .. })));

        // With it, everything works through TLS: https and wss.
        let client = Client::builder(&url).ca_cert(&ca).build().unwrap();
        let mut watch = client.watch(&stream, 0).await.unwrap();
        let put = client.put(&signer, stream, b"secure", b"yes").await.unwrap();
        assert!(put.committed(), "{put:?}");
        assert_eq!(client.get(&stream, b"secure", None).await.unwrap().expect("written").value, b"yes");
        let change = next_change(&mut watch).await;
        assert_eq!((change.version, change.key.as_slice()), (put.version, &b"secure"[..]));
    });

    // The CLI reaches the same server with --server-ca, and says why not
    // without it. (The forwarder runs on the runtime's worker threads.)
    let key = dir.path().join("writer.key");
    let (key, ca) = (key.to_str().unwrap(), ca.to_str().unwrap());
    let stream = stream.to_string();
    let cli = |extra: &[&str]| {
        let args =
            [extra, &["--server", url.as_str(), "--key", key, "--stream", stream.as_str()][..]].concat();
        logkv(dir.path(), &args)
    };
    let out = cli(&["get", "secure"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS"), "{out:?}");
    let out = cli(&["put", "cli", "over tls", "--server-ca", ca]);
    assert!(out.status.success(), "{out:?}");
    let out = cli(&["get", "cli", "--server-ca", ca]);
    assert_eq!((out.status.code(), out.stdout.as_slice()), (Some(0), &b"over tls"[..]), "{out:?}");
    drop(rt);
}

#[test]
fn a_server_with_users_takes_a_users_token_for_calls_watches_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let token = "reader-writer_token";
    let sha256 = |text: &str| {
        use std::io::Write;
        let mut child = Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
    };
    new_signer(dir.path(), "alice.key");
    let users = dir.path().join("users.toml");
    std::fs::write(
        &users,
        format!(
            "[[user]]\nname = \"alice\"\npassword_sha256 = \"{}\"\ntoken_sha256 = \"{}\"\nkey_file = \"alice.key\"\n",
            sha256("pw"),
            sha256(token)
        ),
    )
    .unwrap();
    let server = Server::builder().arg("--users-file").arg(&users).start();
    let signer = new_signer(dir.path(), "writer.key");
    let stream = StreamId([9; 32]);
    runtime().block_on(async {
        let anonymous = Client::new(&server.http_url()).unwrap();
        match anonymous.get(&stream, b"k", None).await {
            Err(Error::Http { status: 401, .. }) => {}
            other => panic!("an anonymous call must be refused with 401: {other:?}"),
        }
        assert!(anonymous.watch(&stream, 0).await.is_err(), "so must an anonymous watch");
        let client = Client::builder(&server.http_url()).token(token).build().unwrap();
        let mut watch = client.watch(&stream, 0).await.unwrap();
        let put = client.put(&signer, stream, b"k", b"v").await.unwrap();
        assert!(put.committed(), "{put:?}");
        assert_eq!(client.get(&stream, b"k", None).await.unwrap().unwrap().value, b"v");
        assert_eq!(next_change(&mut watch).await.key, b"k");
    });
    let url = server.http_url();
    let key = dir.path().join("writer.key");
    let args = ["--server", &url, "--key", key.to_str().unwrap(), "--stream", &stream.to_string()];
    let refused = logkv(dir.path(), &[&["get"][..], &args, &["k"]].concat());
    assert_eq!(refused.status.code(), Some(3), "{}", String::from_utf8_lossy(&refused.stderr));
    let got = logkv(dir.path(), &[&["get"][..], &args, &["--server-token", token, "k"]].concat());
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(got.stdout, b"v");
}
