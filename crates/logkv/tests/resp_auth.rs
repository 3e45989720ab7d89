//! AUTH with a users file: connections must authenticate, wrong
//! credentials get Redis's WRONGPASS, each user's writes are signed with
//! that user's key, RESET forgets the user, and a malformed users file
//! stops `logkv serve`.

mod server;

use std::path::Path;
use std::process::Command;

use server::{resp, roundtrip, Server};

fn new_key(path: &Path) {
    let out = Command::new(server::binary()).arg("key").arg("new").arg("--out").arg(path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// SHA-256 of `password` in hex, as `sha256sum` prints it.
fn sha256_hex(password: &str) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(password.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

fn users_file(dir: &Path) -> std::path::PathBuf {
    new_key(&dir.join("alice.key"));
    new_key(&dir.join("bob.key"));
    let path = dir.join("users.toml");
    let text = format!(
        "[[user]]\nname = \"alice\"\npassword_sha256 = \"{}\"\nkey_file = \"alice.key\"\n\n\
         [[user]]\nname = \"default\"\npassword_sha256 = \"{}\"\nkey_file = \"bob.key\"\n",
        sha256_hex("alice-pw"),
        sha256_hex("bob-pw")
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn send(stream: &mut std::net::TcpStream, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    String::from_utf8(roundtrip(stream, &resp::request(&args), 1)).unwrap()
}

#[test]
fn users_must_authenticate_and_write_with_their_own_keys() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let server = Server::builder().args(["--durability", "none"]).arg("--users-file").arg(&users).start();
    let mut alice = server.connect();
    assert_eq!(send(&mut alice, &["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(send(&mut alice, &["GET"]), "-ERR wrong number of arguments for 'get' command\r\n");
    assert!(send(&mut alice, &["HELLO", "3"])
        .starts_with("-NOAUTH HELLO must be called with the client already authenticated"));
    assert_eq!(
        send(&mut alice, &["AUTH", "alice", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        send(&mut alice, &["AUTH", "mallory", "alice-pw"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(send(&mut alice, &["PING"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(send(&mut alice, &["AUTH", "alice", "alice-pw"]), "+OK\r\n");
    // Alice writes first, so her key becomes the stream's admin.
    assert_eq!(send(&mut alice, &["SET", "k", "from-alice"]), "+OK\r\n");

    // The one-argument AUTH is the `default` user, whose key is bob's: no
    // write right on alice's stream.
    let mut bob = server.connect();
    assert!(send(&mut bob, &["HELLO", "3", "AUTH", "default", "nope"]).starts_with("-WRONGPASS"));
    assert!(send(&mut bob, &["HELLO", "3", "AUTH", "default", "bob-pw"]).starts_with("%7\r\n"));
    assert_eq!(send(&mut bob, &["GET", "k"]), "$10\r\nfrom-alice\r\n");
    let refused = send(&mut bob, &["SET", "k", "from-bob"]);
    assert!(refused.starts_with("-NOPERM"), "{refused}");
    let mut again = server.connect();
    assert_eq!(send(&mut again, &["AUTH", "bob-pw"]), "+OK\r\n");
    assert!(send(&mut again, &["INCR", "n"]).starts_with("-NOPERM"));
    assert_eq!(send(&mut alice, &["GET", "k"]), "$10\r\nfrom-alice\r\n");
    // Inside MULTI, a command refused for authentication aborts the block.
    let mut late = server.connect();
    assert_eq!(send(&mut late, &["MULTI"]), "-NOAUTH Authentication required.\r\n");
    // RESET needs no authentication, and forgets the user: the connection
    // must authenticate again.
    assert_eq!(send(&mut late, &["RESET"]), "+RESET\r\n");
    assert_eq!(send(&mut alice, &["RESET"]), "+RESET\r\n");
    assert_eq!(send(&mut alice, &["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(send(&mut alice, &["AUTH", "alice", "alice-pw"]), "+OK\r\n");
    assert_eq!(send(&mut alice, &["GET", "k"]), "$10\r\nfrom-alice\r\n");
}

#[test]
fn a_malformed_users_file_or_unreadable_key_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    std::fs::write(&path, "[[user]]\nname = \"alice\"\npassword = \"clear\"\n").unwrap();
    let failed = Server::builder().arg("--users-file").arg(&path).try_start().err().expect("refused");
    assert_eq!(failed.status.and_then(|s| s.code()), Some(2), "{failed}");
    assert!(failed.stderr.contains("users file") && failed.stderr.contains("password"), "{failed}");

    let digest = sha256_hex("pw");
    std::fs::write(
        &path,
        format!("[[user]]\nname = \"alice\"\npassword_sha256 = \"{digest}\"\nkey_file = \"missing.key\"\n"),
    )
    .unwrap();
    let failed = Server::builder().arg("--users-file").arg(&path).try_start().err().expect("refused");
    assert_eq!(failed.status.and_then(|s| s.code()), Some(2), "{failed}");
    assert!(failed.stderr.contains("missing.key"), "{failed}");
}
