//! `logkv acl …`, writes signed with `--key`, `tx submit`, and what the
//! client says when the data directory is held by another process or the
//! server of `--server` cannot be reached — run as the real binary.

mod server;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use logkv_runtime::codec::{native, NATIVE};
use logkv_runtime::envelope::{Entry, TxPart};
use logkv_runtime::keyfile;
use logkv_runtime::types::StreamId;
use server::Server;

/// A temporary directory holding the data directory and key files; logkv
/// runs with it as the working directory.
struct Fixture {
    tmp: tempfile::TempDir,
}

/// What a run of logkv produced.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Fixture {
    fn new() -> Self {
        Self { tmp: tempfile::tempdir().expect("temp dir") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_logkv"));
        c.current_dir(self.tmp.path())
            .env_remove("LOGKV_DATA_DIR")
            .env_remove("LOGKV_SERVER")
            .env_remove("LOGKV_KEY")
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir());
        c
    }

    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        let out = self.command(args).stdin(Stdio::null()).output().expect("logkv runs");
        Run {
            code: out.status.code().expect("logkv exited, not killed"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed; its stdout.
    fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let run = self.run(args);
        let args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        run.stdout
    }

    /// A new key file `NAME.key`; its path and address.
    fn key(&self, name: &str) -> (String, String) {
        let path = self.path(&format!("{name}.key")).to_str().expect("utf-8 path").to_string();
        let address = self.ok(&["key", "new", "--out", &path]).trim().to_string();
        (path, address)
    }
}

/// Asserts that `run` is a transaction that did not commit (exit 3) whose
/// result starts with `result`.
fn assert_not_committed(run: &Run, result: &str) {
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("was not committed: ") && run.stderr.contains(result), "{run:?}");
}

/// Asserts that an acl command printed `VERSION<TAB>Commit`.
fn assert_committed(stdout: &str) {
    let (version, result) = stdout.trim().split_once('\t').expect("VERSION<TAB>RESULT");
    assert!(version.parse::<u64>().is_ok() && result == "Commit", "{stdout:?}");
}

#[test]
fn a_granted_writer_writes_until_revoked() {
    let f = Fixture::new();
    let (admin, _) = f.key("admin");
    let (writer, writer_address) = f.key("writer");
    // The first write to a stream makes its signer the admin.
    f.ok(&["put", "owned", "by admin", "--key", &admin]);
    assert_not_committed(&f.run(&["put", "k", "early", "--key", &writer]), "SenderNoWritePermission");

    assert_committed(&f.ok(&["acl", "grant-writer", &writer_address, "--key", &admin]));
    let version = f.ok(&["put", "k", "v1", "--key", &writer]);
    assert!(version.trim().parse::<u64>().is_ok(), "{version:?}");
    assert_eq!(f.ok(&["get", "k"]), "v1");

    assert_committed(&f.ok(&["acl", "revoke-writer", &writer_address, "--key", &admin]));
    assert_not_committed(&f.run(&["put", "k", "v2", "--key", &writer]), "SenderNoWritePermission");
    assert_eq!(f.ok(&["get", "k"]), "v1", "the refused write changed nothing");
}

#[test]
fn a_revoked_writer_keeps_only_its_special_key() {
    let f = Fixture::new();
    let (admin, _) = f.key("admin");
    let (writer, writer_address) = f.key("writer");
    f.ok(&["put", "a", "1", "--key", &admin]);
    for args in [
        vec!["grant-writer", &writer_address],
        vec!["set-special", "s"],
        vec!["grant-special-writer", "s", &writer_address],
    ] {
        assert_committed(&f.ok(&[&["acl", "--key", &admin][..], &args].concat()));
    }
    f.ok(&["put", "a", "2", "--key", &writer]);
    assert_committed(&f.ok(&["acl", "revoke-writer", &writer_address, "--key", &admin]));

    // Still a special writer, so it has a right on the stream, but not to `a`.
    let run = f.run(&["put", "a", "3", "--key", &writer]);
    assert_not_committed(&run, &format!("WritePermissionDenied: stream: {}", StreamId([0; 32])));
    f.ok(&["put", "s", "special", "--key", &writer]);
    assert_eq!(f.ok(&["get", "s"]), "special");

    assert_committed(&f.ok(&["acl", "renounce-special-writer", "s", "--key", &writer]));
    assert_not_committed(&f.run(&["put", "s", "again", "--key", &writer]), "SenderNoWritePermission");
}

#[test]
fn an_op_the_signer_has_no_right_to_is_access_control_permission_denied() {
    let f = Fixture::new();
    let (admin, _) = f.key("admin");
    let (writer, writer_address) = f.key("writer");
    let (_, other_address) = f.key("other");
    f.ok(&["put", "a", "1", "--key", &admin]);
    assert_committed(&f.ok(&["acl", "grant-writer", &writer_address, "--key", &admin]));

    let run = f.run(&["acl", "grant-admin", &other_address, "--key", &writer]);
    assert_not_committed(&run, "AccessControlPermissionDenied: operation: GRANT_ADMIN_ROLE");
    let (version, result) = run.stdout.trim().split_once('\t').expect("VERSION<TAB>RESULT");
    assert!(version.parse::<u64>().is_ok() && result.starts_with("AccessControlPermissionDenied"), "{run:?}");
    let run = f.run(&["acl", "revoke-writer", &writer_address, "--key", &writer]);
    assert_not_committed(&run, "AccessControlPermissionDenied: operation: REVOKE_WRITER_ROLE");
    // A writer may grant writing (docs/semantics.md), just not more.
    assert_committed(&f.ok(&["acl", "grant-writer", &other_address, "--key", &writer]));
}

#[test]
fn every_op_commits_for_an_admin_and_renouncing_admin_ends_its_rights() {
    let f = Fixture::new();
    let (admin, _) = f.key("admin");
    let (_, other) = f.key("other");
    let stream = format!("0x{}", "ab".repeat(32));
    f.ok(&["put", "a", "1", "--stream", &stream, "--key", &admin]);
    let ops: [&[&str]; 10] = [
        &["grant-admin", &other],
        &["grant-writer", &other],
        &["revoke-writer", &other],
        &["set-special", "s"],
        &["grant-special-writer", "s", &other],
        &["revoke-special-writer", "s", &other],
        &["set-normal", "s"],
        &["renounce-special-writer", "s"],
        &["renounce-writer"],
        &["renounce-admin"],
    ];
    for op in ops {
        assert_committed(&f.ok(&[&["acl", "--stream", &stream, "--key", &admin][..], op].concat()));
    }
    assert_not_committed(
        &f.run(&["put", "a", "2", "--stream", &stream, "--key", &admin]),
        "SenderNoWritePermission",
    );
}

#[test]
fn acl_without_a_key_and_a_missing_key_file_are_usage_errors_that_say_what_to_do() {
    let f = Fixture::new();
    let (_, address) = f.key("someone");
    let run = f.run(&["acl", "grant-writer", &address]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--key FILE"), "{run:?}");

    let missing = f.path("missing.key");
    let run = f.run(&["put", "k", "v", "--key", missing.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("logkv key new") && run.stderr.contains("grant-writer"), "{run:?}");
    // Against a server the default key is ./logkv.key, checked before any
    // request is sent (no server listens on port 9 here).
    let run = f.run(&["put", "k", "v", "--server", "http://127.0.0.1:9"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("no signing key at ./logkv.key") && run.stderr.contains("logkv key new"),
        "{run:?}"
    );
}

#[test]
fn tx_submit_applies_an_entry_signed_elsewhere_and_a_replay_does_not_commit() {
    let f = Fixture::new();
    let (admin, _) = f.key("admin");
    let signer = keyfile::load(&admin).expect("key loads");
    let stream = StreamId([7; 32]);
    let tx = |key: &[u8], value: &[u8]| {
        let body = native::Body {
            version: u64::MAX,
            check_reads_only: false,
            reads: Vec::new(),
            writes: vec![native::BodyWrite {
                stream,
                key: key.to_vec(),
                op: native::Op::Put(value.to_vec().into()),
            }],
            controls: Vec::new(),
        };
        TxPart { codec: NATIVE, tags: body.tags(), body: native::encode(&body) }
    };
    let entry = Entry { sender: signer.address(), nonce: 1, txs: vec![tx(b"x", b"1"), tx(b"y", b"2")] };
    let bytes = entry.encode_signed(&signer).expect("entry encodes");
    let file = f.path("entry.bin");
    std::fs::write(&file, &bytes).unwrap();

    let out = f.ok(&["tx", "submit", "--file", file.to_str().unwrap()]);
    let position = 1u64;
    assert_eq!(out, format!("{}\tCommit\n{}\tCommit\n", position << 16, (position << 16) | 1));
    let stream = stream.to_string();
    assert_eq!(f.ok(&["get", "y", "--stream", &stream]), "2");

    let run = f.run(&["tx", "submit", &format!("0x{}", hex::encode(&bytes))]);
    assert_not_committed(&run, "Replayed");
    assert_eq!(run.stdout, format!("{}\tReplayed\n{}\tReplayed\n", 2 << 16, (2 << 16) | 1));
}

/// Waits until the lock file of `dir` names `child` as its holder.
fn wait_for_lock(dir: &Path, child: &Child) {
    let pid = format!("pid {} ", child.id());
    let mut waits = 0;
    while !std::fs::read_to_string(dir.join("LOCK")).unwrap_or_default().starts_with(&pid) {
        waits += 1;
        assert!(waits < 3000, "pid {} never took the lock", child.id());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_data_directory_held_by_another_process_names_it_and_suggests_the_server() {
    let f = Fixture::new();
    // The holder opens the node, then waits for its value on stdin.
    let mut holder = f
        .command(&["put", "held"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn holder");
    wait_for_lock(&f.data_dir(), &holder);

    let run = f.run(&["get", "held"]);
    assert_eq!(run.code, 3, "{run:?}");
    let held = format!("data directory {} is in use: pid {} (", f.data_dir().display(), holder.id());
    assert!(run.stderr.contains(&held), "{run:?}");
    assert!(run.stderr.contains("--server http://127.0.0.1:7380"), "{run:?}");

    holder.stdin.take().expect("piped stdin").write_all(b"value").unwrap();
    assert!(holder.wait_with_output().unwrap().status.success());
}

#[test]
fn a_server_that_is_not_there_exits_3_naming_its_url() {
    let f = Fixture::new();
    // A port nothing listens on: bound, read, released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let run = f.run(&["get", "k", "--server", &url]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains(&format!("cannot reach a logkv server at {url}")), "{run:?}");

    let run = f.run(&["scan", "--server", "127.0.0.1:7380"]);
    assert_eq!(run.code, 2, "a URL without a scheme is a usage error: {run:?}");
}

#[test]
fn every_client_command_round_trips_through_a_running_server() {
    let f = Fixture::new();
    let server = Server::builder().data_dir(f.data_dir()).start();
    let http_url = server.http_url();
    let url = http_url.as_str();
    let (admin, _) = f.key("admin");
    let (writer, writer_address) = f.key("writer");
    let remote = |args: &[&str]| f.run(&[args, &["--server", url, "--key", &admin]].concat());
    let ok = |args: &[&str]| {
        let run = remote(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        run.stdout
    };

    // The directory is the server's: opening it names the server's URL.
    let run = f.run(&["get", "k"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains(&format!("held by a running logkv server: talk to it with --server {url}")),
        "{run:?}"
    );

    let put = ok(&["put", "greeting", "hello"]);
    let put: u64 = put.trim().parse().expect("a version");
    assert_eq!(ok(&["get", "greeting"]), "hello");
    // A value of several pages, and an empty value (not a delete).
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(f.path("big"), &big).unwrap();
    ok(&["put", "big", "--file", f.path("big").to_str().unwrap()]);
    let out = f.command(&["get", "big", "--server", url]).output().unwrap();
    assert!(out.status.success() && out.stdout == big, "{} bytes back", out.stdout.len());
    ok(&["put", "empty", ""]);
    assert_eq!(ok(&["get", "empty"]), "");

    let del: u64 = ok(&["del", "greeting"]).trim().parse().expect("a version");
    assert_eq!(remote(&["get", "greeting"]).code, 1);
    assert_eq!(remote(&["del", "greeting"]).code, 1, "nothing to delete");
    assert_eq!(ok(&["get", "greeting", "--at", &put.to_string()]), "hello");
    assert_eq!(ok(&["history", "greeting"]), format!("{del}\tdelete\n{put}\tput 5 bytes\n"));

    for key in ["a1", "a2", "a3", "b1"] {
        ok(&["put", key, &format!("v-{key}")]);
    }
    assert_eq!(ok(&["scan", "--prefix", "a"]), "a1\tv-a1\na2\tv-a2\na3\tv-a3\n");
    assert_eq!(ok(&["scan", "--start", "a2", "--end", "b1", "--reverse"]), "a3\tv-a3\na2\tv-a2\n");
    assert_eq!(ok(&["scan", "--limit", "2"]), "a1\tv-a1\na2\tv-a2\n");

    // Access control over the server, then the grantee's own writes.
    assert_not_committed(
        &f.run(&["put", "w", "x", "--server", url, "--key", &writer]),
        "SenderNoWritePermission",
    );
    assert_committed(&ok(&["acl", "grant-writer", &writer_address]));
    f.ok(&["put", "w", "by writer", "--server", url, "--key", &writer]);
    assert_eq!(ok(&["get", "w"]), "by writer");
    // (A grant of admin naming the signer itself is dropped, docs/semantics.md.)
    let (_, other_address) = f.key("other");
    let run = f.run(&["acl", "grant-admin", &other_address, "--server", url, "--key", &writer]);
    assert_not_committed(&run, "AccessControlPermissionDenied: operation: GRANT_ADMIN_ROLE");

    // An entry signed elsewhere, submitted as it is, on a new stream.
    let signer = keyfile::load(&writer).unwrap();
    let stream = StreamId([9; 32]);
    let body = native::Body {
        version: u64::MAX,
        check_reads_only: false,
        reads: Vec::new(),
        writes: vec![native::BodyWrite {
            stream,
            key: b"t".to_vec(),
            op: native::Op::Put(b"tx".to_vec().into()),
        }],
        controls: Vec::new(),
    };
    let tx = TxPart { codec: NATIVE, tags: body.tags(), body: native::encode(&body) };
    let entry = Entry { sender: signer.address(), nonce: 1 << 40, txs: vec![tx] };
    let hex = format!("0x{}", hex::encode(entry.encode_signed(&signer).unwrap()));
    let out = ok(&["tx", "submit", &hex]);
    assert!(out.ends_with("\tCommit\n") && out.lines().count() == 1, "{out:?}");
    assert_eq!(ok(&["get", "t", "--stream", &stream.to_string()]), "tx");
    assert_not_committed(&remote(&["tx", "submit", &hex]), "Replayed");
}
