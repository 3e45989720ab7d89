//! Who may use JSON-RPC and kv_watch: requests naming a host the node does
//! not know (DNS rebinding), from another web origin, or not declared
//! JSON are refused from their head; with a users file every caller needs
//! a user (a bearer token, or HTTP Basic from loopback) unless
//! `public_read` opens reads; admin_export writes only into `backup_dir`;
//! a listener beyond loopback without authentication is warned about.

mod server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use server::Server;

const TOKEN: &str = "alice-token_0123";

fn sha256_hex(data: &str) -> String {
    use std::process::Stdio;
    let mut child =
        Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sha256sum");
    child.stdin.take().unwrap().write_all(data.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// A users file with alice (password `s3cret`, token [`TOKEN`]).
fn users_file(dir: &Path) -> std::path::PathBuf {
    let out = Command::new(server::binary())
        .args(["key", "new", "--out"])
        .arg(dir.join("alice.key"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = dir.join("users.toml");
    let text = format!(
        "[[user]]\nname = \"alice\"\npassword_sha256 = \"{}\"\ntoken_sha256 = \"{}\"\nkey_file = \"alice.key\"\n",
        sha256_hex("s3cret"),
        sha256_hex(TOKEN)
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// One raw HTTP request with exactly these headers: status, headers and
/// body of the answer.
fn request(server: &Server, head: &str, body: &str) -> (u16, String, String) {
    let addr = server.http_url().trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(server::PATIENCE)).unwrap();
    let upgrade = head.contains("Upgrade: websocket");
    let connection = if upgrade { "" } else { "Connection: close\r\n" };
    let text = format!("{head}\r\nContent-Length: {}\r\n{connection}\r\n{body}", body.len());
    stream.write_all(text.as_bytes()).unwrap();
    // Up to the end of the head, then the body up to the close (an
    // accepted upgrade keeps the connection open, and has no body).
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
        answer.push(byte[0]);
    }
    let headers = String::from_utf8(answer).unwrap();
    let status = headers.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length = headers.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    });
    let mut body = vec![0; length.unwrap_or(0)];
    stream.read_exact(&mut body).unwrap();
    (status, headers, String::from_utf8(body).unwrap())
}

fn host(server: &Server) -> String {
    server.http_url().trim_start_matches("http://").to_string()
}

const READ: &str = r#"{"jsonrpc":"2.0","id":1,"method":"kv_getValue","params":["0x0000000000000000000000000000000000000000000000000000000000000000","0x6b",0,16]}"#;

/// POST / of `body` with `extra` headers after Host and Content-Type.
fn rpc(server: &Server, extra: &str, body: &str) -> (u16, String, String) {
    let mut head = format!("POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json", host(server));
    if !extra.is_empty() {
        head.push_str("\r\n");
        head.push_str(extra);
    }
    request(server, &head, body)
}

fn error_data(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["error"]["data"].as_str().unwrap_or_default().to_string()
}

#[test]
fn requests_naming_another_host_or_origin_or_not_json_are_refused() {
    let server = Server::builder().args(["--http-allowed-hosts", "node.example"]).start();
    assert_eq!(rpc(&server, "", READ).0, 200);
    let (status, _, body) = request(
        &server,
        "POST / HTTP/1.1\r\nHost: rebound.example:80\r\nContent-Type: application/json",
        READ,
    );
    assert_eq!(status, 403, "{body}");
    assert!(error_data(&body).contains("\"rebound.example\" is not this node's"), "{body}");
    let named =
        request(&server, "POST / HTTP/1.1\r\nHost: node.example\r\nContent-Type: application/json", READ);
    assert_eq!(named.0, 200, "{named:?}");
    let (status, _, body) = rpc(&server, "Origin: https://evil.example", READ);
    assert_eq!(status, 403, "{body}");
    assert!(error_data(&body).contains("origin \"https://evil.example\""), "{body}");
    let same = rpc(&server, &format!("Origin: http://{}", host(&server)), READ);
    assert_eq!(same.0, 200, "{same:?}");
    let (status, _, body) = request(&server, &format!("POST / HTTP/1.1\r\nHost: {}", host(&server)), READ);
    assert_eq!(status, 415, "{body}");
    assert!(error_data(&body).contains("Content-Type: application/json"), "{body}");
    let (status, _, _) = request(
        &server,
        &format!("POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain", host(&server)),
        READ,
    );
    assert_eq!(status, 415);
    // A WebSocket from a foreign page is refused before the upgrade.
    let ws = request(
        &server,
        &format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            host(&server)
        ),
        "",
    );
    assert_eq!(ws.0, 403, "{ws:?}");
    // Operations endpoints stay open to scrapers and probes.
    let metrics = request(&server, "GET /metrics HTTP/1.1\r\nHost: prometheus.internal", "");
    assert_eq!(metrics.0, 200);
}

#[test]
fn with_users_every_caller_needs_one_unless_reads_are_public() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let server = Server::builder().arg("--users-file").arg(&users).start();
    let (status, headers, body) = rpc(&server, "", READ);
    assert_eq!(status, 401, "{body}");
    assert!(headers.to_ascii_lowercase().contains("www-authenticate: bearer"), "{headers}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], json!(-32001));
    for (authorization, says) in [
        ("Bearer wrong-token", "no user's token"),
        (&format!("Bearer {TOKEN} x") as &str, "neither"),
        ("Basic YWxpY2U6d3Jvbmc=", "invalid username-password pair"),
        ("Digest abc", "neither"),
    ] {
        let (status, _, body) = rpc(&server, &format!("Authorization: {authorization}"), READ);
        assert_eq!(status, 401, "{authorization}: {body}");
        assert!(error_data(&body).contains(says), "{authorization}: {body}");
    }
    let (status, _, body) = rpc(&server, &format!("Authorization: Bearer {TOKEN}"), READ);
    assert_eq!(status, 200, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap().get("error").is_none(), "{body}");
    // alice:s3cret, from loopback.
    let (status, _, body) = rpc(&server, "Authorization: Basic YWxpY2U6czNjcmV0", READ);
    assert_eq!(status, 200, "{body}");
    let ws = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        host(&server)
    );
    assert_eq!(request(&server, &ws, "").0, 401, "kv_watch needs a user too");
    assert_eq!(request(&server, &format!("{ws}\r\nAuthorization: Bearer {TOKEN}"), "").0, 101);
    drop(server);

    let server = Server::builder().arg("--users-file").arg(&users).args(["--public-read", "true"]).start();
    let (status, _, body) = rpc(&server, "", READ);
    assert_eq!(status, 200, "{body}");
    let submit = r#"{"jsonrpc":"2.0","id":2,"method":"kv_submit","params":["0x00"]}"#;
    let (status, _, body) = rpc(&server, "", submit);
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["error"]["code"], json!(-32001), "{body}");
    assert!(error_data(&body).contains("kv_submit needs a user"), "{body}");
}

#[test]
fn admin_export_writes_only_into_the_backup_directory() {
    let token = "admin-token";
    let backups = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let export = |server: &Server, path: &str| {
        let call = json!({"jsonrpc": "2.0", "id": 3, "method": "admin_export", "params": [path]});
        let (_, _, body) = rpc(server, &format!("Authorization: Bearer {token}"), &call.to_string());
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let server = Server::builder().args(["--admin-token", token]).start();
    let refused = export(&server, elsewhere.path().join("x.export").to_str().unwrap());
    assert!(refused["error"]["data"].as_str().unwrap().contains("none is configured"), "{refused}");
    drop(server);

    let server =
        Server::builder().args(["--admin-token", token]).arg("--backup-dir").arg(backups.path()).start();
    let written = export(&server, "node.export");
    assert!(written.get("error").is_none(), "{written}");
    assert!(backups.path().join("node.export").is_file());
    let inside = backups.path().join("second.export");
    assert!(export(&server, inside.to_str().unwrap()).get("error").is_none());
    assert!(inside.is_file());
    for (path, says) in [
        (elsewhere.path().join("x.export").to_str().unwrap().to_string(), "outside the backup directory"),
        ("../escape.export".to_string(), "`..`"),
        ("no/such/dir.export".to_string(), "does not exist"),
    ] {
        let refused = export(&server, &path);
        assert_eq!(refused["error"]["code"], json!(-32602), "{path}: {refused}");
        assert!(refused["error"]["data"].as_str().unwrap().contains(says), "{path}: {refused}");
    }
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn tokens_are_exact_and_exposed_listeners_are_warned_about() {
    let out = server::logkv(&["serve", "--admin-token", "s3cret ", "--print-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad setting admin_token"));
    let server = Server::builder().args(["--admin-token", "s3cret"]).start();
    let info = r#"{"jsonrpc":"2.0","id":1,"method":"admin_nodeInfo","params":[]}"#;
    for header in ["Authorization: Bearer  s3cret", "Authorization: Bearer s3cre", "Authorization: s3cret"] {
        let (_, _, body) = rpc(&server, header, info);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], json!(-32001), "{header}");
    }
    let (_, _, body) = rpc(&server, "Authorization: bearer s3cret", info);
    assert!(serde_json::from_str::<Value>(&body).unwrap().get("error").is_none(), "{body}");
    drop(server);

    // A RESP listener on every interface, no users file.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let mut child = Command::new(server::binary())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["serve", "--resp", "0.0.0.0:0", "--http", "127.0.0.1:0"])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("listening beyond loopback without TLS") || started.elapsed() > server::PATIENCE {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("listening beyond loopback without authentication"), "{text}");
    assert!(text.contains("listener=\"resp\"") || text.contains("listener=resp"), "{text}");
    assert!(!text.contains("listener=http") && !text.contains("listener=\"http\""), "{text}");
}
