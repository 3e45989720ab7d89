//! The NATS connection over TLS and with each kind of credentials, against
//! a real `nats-server` on loopback configured by the test (certificates
//! from a CA made here, users, a token, nkeys, and operator mode with JWTs
//! signed here for the creds file): a `logkv serve --log tls://...` node
//! connects with the right settings, and with wrong or missing ones exits
//! with status 2 and an error naming what failed, never a secret. `logkv
//! log trim` and `checkpoint import` reach the log with the same settings.
//!
//! Named `nats_*` so scripts/test.sh runs it against every NATS release it
//! installs (`LOGKV_NATS_SERVER`). Waits are bounded only to detect hangs.

mod nats;
mod server;

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nats::Standalone;
use serde_json::json;
use server::{logkv, Failed, Server, PATIENCE};

/// The exit status of a configuration error.
const USAGE: i32 = 2;

/// A CA made for the test, a server certificate for 127.0.0.1 and a client
/// certificate it signed, and one from another CA, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let dir = tempfile::tempdir().expect("temporary directory");
        let write =
            |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).expect("write a PEM");
        for (ca_name, leaves) in [("ca", &["server", "client"][..]), ("other-ca", &["other-client"][..])] {
            let ca_key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, format!("logkv test {ca_name}"));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
            write(&format!("{ca_name}.pem"), params.self_signed(&ca_key).unwrap().pem());
            let issuer = Issuer::new(params, ca_key);
            for leaf in leaves {
                let key = KeyPair::generate().unwrap();
                let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
                    .unwrap()
                    .signed_by(&key, &issuer)
                    .unwrap();
                write(&format!("{leaf}.pem"), cert.pem());
                write(&format!("{leaf}-key.pem"), key.serialize_pem());
            }
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(format!("{name}.pem")).to_str().expect("UTF-8 path").to_string()
    }

    /// nats-server's `tls` block: TLS required, clients verified if
    /// `verify`.
    fn server_tls(&self, verify: bool) -> String {
        format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: {verify}, timeout: 5 }}\n",
            self.path("server"),
            self.path("server-key"),
            self.path("ca")
        )
    }
}

fn url(server: &Standalone) -> String {
    format!("tls://{}", server.addr())
}

/// `logkv serve` on `server`'s stream `kv`, trusting the test CA, with
/// `args` and `env` besides.
fn node(server: &Standalone, pki: &Pki, args: &[&str], env: &[(&str, &str)]) -> Result<Server, Failed> {
    let mut builder = Server::builder().args([
        "--log",
        &url(server),
        "--log-stream",
        "kv",
        "--nats-tls-ca",
        &pki.path("ca"),
    ]);
    builder = builder.args(args);
    for (key, value) in env {
        builder = builder.env(key, value);
    }
    builder.try_start()
}

/// A node that must start and take a write through the log.
fn serves(server: &Standalone, pki: &Pki, args: &[&str], env: &[(&str, &str)]) {
    let node = node(server, pki, args, env).unwrap_or_else(|f| panic!("{f}\nnats-server:\n{}", server.log()));
    let client = redis::Client::open(node.redis_url()).expect("a redis URL");
    let mut con = client.get_connection_with_timeout(PATIENCE).expect("connect over RESP");
    let reply: String = redis::cmd("SET").arg("k").arg("v").query(&mut con).expect("SET through the log");
    assert_eq!(reply, "OK");
}

/// A node that must exit with a configuration error whose message holds
/// every one of `says`; returns the message.
fn refused(server: &Standalone, pki: &Pki, args: &[&str], env: &[(&str, &str)], says: &[&str]) -> String {
    let failed = match node(server, pki, args, env) {
        Ok(_) => panic!("a node with {args:?} {env:?} started"),
        Err(failed) => failed,
    };
    assert_eq!(failed.status.and_then(|s| s.code()), Some(USAGE), "{failed}");
    for said in says {
        assert!(failed.stderr.contains(said), "{said:?} missing from: {failed}");
    }
    failed.stderr
}

#[test]
fn tls_with_a_user_and_password() {
    let pki = Pki::new();
    let server = Standalone::start(&format!(
        "{}authorization {{ users: [ {{ user: alice, password: \"alice-s3cret\" }} ] }}",
        pki.server_tls(false)
    ));
    // The password from the environment, as the documentation advises.
    serves(&server, &pki, &["--nats-user", "alice"], &[("LOGKV_NATS_PASSWORD", "alice-s3cret")]);
    let said = refused(
        &server,
        &pki,
        &["--nats-user", "alice"],
        &[("LOGKV_NATS_PASSWORD", "wrong-s3cret")],
        &["refused the connection", "authorization violation", "presented user \"alice\""],
    );
    assert!(!said.contains("wrong-s3cret"), "the password is shown: {said}");
    refused(&server, &pki, &[], &[], &["authorization violation", "presented no credentials"]);
    // Without the test CA the server's certificate is not trusted.
    let failed = Server::builder()
        .args(["--log", &url(&server), "--log-stream", "kv", "--nats-user", "alice"])
        .env("LOGKV_NATS_PASSWORD", "alice-s3cret")
        .try_start()
        .err()
        .expect("a node that does not trust the server's certificate started");
    assert_eq!(failed.status.and_then(|s| s.code()), Some(USAGE), "{failed}");
    assert!(failed.stderr.contains("TLS with tls://") && failed.stderr.contains("certificate"), "{failed}");
}

#[test]
fn mutual_tls_needs_a_client_certificate_the_ca_signed() {
    let pki = Pki::new();
    let server = Standalone::start(&pki.server_tls(true));
    let (cert, key) = (pki.path("client"), pki.path("client-key"));
    serves(&server, &pki, &["--nats-tls-cert", &cert, "--nats-tls-key", &key], &[]);
    refused(&server, &pki, &[], &[], &["TLS with tls://"]);
    let (cert, key) = (pki.path("other-client"), pki.path("other-client-key"));
    refused(&server, &pki, &["--nats-tls-cert", &cert, "--nats-tls-key", &key], &[], &["TLS with tls://"]);
    refused(
        &server,
        &pki,
        &["--nats-tls-cert", &cert],
        &[],
        &["bad setting nats_tls_cert", "needs nats_tls_key"],
    );
}

#[test]
fn a_token_from_the_config_file_and_the_log_tools_with_the_same_settings() {
    let pki = Pki::new();
    let server =
        Standalone::start(&format!("{}authorization {{ token: \"tok-s3cret\" }}", pki.server_tls(false)));
    let conf = tempfile::tempdir().expect("temporary directory");
    let good = conf.path().join("good.toml");
    std::fs::write(&good, "nats_token = \"tok-s3cret\"\n").unwrap();
    let bad = conf.path().join("bad.toml");
    std::fs::write(&bad, "nats_token = \"not-the-token\"\n").unwrap();
    serves(&server, &pki, &["--config", good.to_str().unwrap()], &[]);
    let said = refused(
        &server,
        &pki,
        &["--config", bad.to_str().unwrap()],
        &[],
        &["authorization violation", "presented a token"],
    );
    assert!(!said.contains("not-the-token"), "the token is shown: {said}");
    let printed = logkv(&["serve", "--config", good.to_str().unwrap(), "--print-config"]);
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.contains("nats_token = \"(hidden)\"") && !printed.contains("tok-s3cret"), "{printed}");

    // `log trim` takes the same settings from the file and from flags.
    let (ca, log) = (pki.path("ca"), url(&server));
    let trim = |flags: &[&str]| {
        let mut args = vec!["log", "trim", "--log", &log, "--log-stream", "kv", "--below", "1"];
        args.extend(["--nats-tls-ca", &ca]);
        args.extend(flags);
        logkv(&args)
    };
    let out = trim(&["--config", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = trim(&["--nats-token", "tok-s3cret"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = trim(&["--config", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(USAGE), "{stderr}");
    assert!(stderr.contains("authorization violation") && stderr.contains("presented a token"), "{stderr}");

    // So does `checkpoint import`, here from the environment: it reaches
    // the stream, then finds no export file.
    let data = conf.path().join("imported");
    let missing = conf.path().join("no-such-export");
    let import = |token: &str| {
        let mut command = std::process::Command::new(server::binary());
        command
            .args(["--data-dir", data.to_str().unwrap(), "checkpoint", "import", missing.to_str().unwrap()])
            .args(["--log", &log, "--log-stream", "kv"])
            .env("LOGKV_NATS_TLS_CA", &ca)
            .env("LOGKV_NATS_TOKEN", token);
        command.output().expect("run logkv checkpoint import")
    };
    let out = import("tok-s3cret");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("no-such-export") && !stderr.contains("refused"),
        "{stderr}"
    );
    let out = import("not-the-token");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(USAGE), "{stderr}");
    assert!(stderr.contains("authorization violation"), "{stderr}");
}

#[test]
fn an_nkey_seed_file() {
    let pki = Pki::new();
    let user = nkeys::KeyPair::new_user();
    let server = Standalone::start(&format!(
        "{}authorization {{ users: [ {{ nkey: {} }} ] }}",
        pki.server_tls(false),
        user.public_key()
    ));
    let dir = tempfile::tempdir().expect("temporary directory");
    let seed_file = |name: &str, seed: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{seed}\n")).unwrap();
        path.to_str().unwrap().to_string()
    };
    let good = seed_file("user.nk", &user.seed().unwrap());
    serves(&server, &pki, &["--nats-nkey-seed-file", &good], &[]);
    let stranger = seed_file("stranger.nk", &nkeys::KeyPair::new_user().seed().unwrap());
    refused(
        &server,
        &pki,
        &["--nats-nkey-seed-file", &stranger],
        &[],
        &["authorization violation", "presented the nkey of seed file", "stranger.nk"],
    );
    let garbage = seed_file("garbage.nk", "SUnot-a-seed");
    let said = refused(
        &server,
        &pki,
        &["--nats-nkey-seed-file", &garbage],
        &[],
        &["nkey seed file", "not an nkey seed"],
    );
    assert!(!said.contains("SUnot-a-seed"), "the seed is shown: {said}");
}

/// A NATS JWT of `claims`, issued and signed by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"typ": "JWT", "alg": "ed25519-nkey"}).to_string());
    let claims = json!({
        "jti": format!("{name}-{subject}"),
        "iat": 1_700_000_000u64,
        "iss": issuer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = URL_SAFE_NO_PAD.encode(issuer.sign(signed.as_bytes()).expect("sign"));
    format!("{signed}.{signature}")
}

/// A creds file: `user`'s JWT issued by `account`, and its seed.
fn creds(dir: &Path, name: &str, account: &nkeys::KeyPair, user: &nkeys::KeyPair) -> PathBuf {
    let nats =
        json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2});
    let jwt = jwt(account, &user.public_key(), name, nats);
    let path = dir.join(format!("{name}.creds"));
    let text = format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_creds_file_in_operator_mode() {
    let pki = Pki::new();
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let operator_jwt =
        jwt(&operator, &operator.public_key(), "logkv-test", json!({"type": "operator", "version": 2}));
    let limits = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true,
        "conn": -1, "leaf": -1, "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "logkv",
        json!({"limits": limits, "type": "account", "version": 2}),
    );
    // JetStream in operator mode needs a system account.
    let system = nkeys::KeyPair::new_account();
    let system_jwt = jwt(&operator, &system.public_key(), "SYS", json!({"type": "account", "version": 2}));
    let server = Standalone::start(&format!(
        "{}operator: \"{operator_jwt}\"\nsystem_account: {sys}\nresolver: MEMORY\n\
         resolver_preload: {{ {sys}: \"{system_jwt}\", {}: \"{account_jwt}\" }}",
        pki.server_tls(false),
        account.public_key(),
        sys = system.public_key(),
    ));
    let dir = tempfile::tempdir().expect("temporary directory");
    let good = creds(dir.path(), "user", &account, &nkeys::KeyPair::new_user());
    serves(&server, &pki, &["--nats-creds-file", good.to_str().unwrap()], &[]);
    // A user of an account the operator never signed.
    let stranger = creds(dir.path(), "stranger", &nkeys::KeyPair::new_account(), &nkeys::KeyPair::new_user());
    refused(
        &server,
        &pki,
        &["--nats-creds-file", stranger.to_str().unwrap()],
        &[],
        &["authorization violation", "presented creds file", "stranger.creds"],
    );
    let garbage = dir.path().join("garbage.creds");
    std::fs::write(&garbage, "not a creds file").unwrap();
    refused(&server, &pki, &["--nats-creds-file", garbage.to_str().unwrap()], &[], &["creds file", "JWT"]);
}
