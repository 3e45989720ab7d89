//! Checkpoints, compaction, point-in-time restore and export/import as a
//! user runs them with the `logkv` binary on the data directory of a
//! stopped node, or with `--remote` on a running one: what each prints,
//! that the state it leaves reads back exactly (`logkv scan`, `get`,
//! `history`), and the errors that refuse what cannot be done.

mod rpc_support;
mod server;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use logkv_runtime::apply::Watched;
use logkv_runtime::node::{Node, NodeOptions};
use logkv_store::StoreOptions;
use rpc_support::Rpc;
use serde_json::json;
use server::Server;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The admin token of the running node.
const TOKEN: &str = "maintenance-cli-test-token";

/// Segments small enough that a few dozen writes fill several.
const SMALL_SEGMENT: &str = "4096";

/// What a run of logkv produced.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `logkv ARGS --data-dir DIR`, with none of the caller's `LOGKV_*`
/// settings.
fn run<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_logkv"));
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("LOGKV_")) {
            command.env_remove(key);
        }
    }
    // `--data-dir` goes last: the lock file names its holder by its first
    // arguments, which should be the subcommand.
    let out = command.args(args).arg("--data-dir").arg(dir).output().expect("run logkv");
    Run {
        code: out.status.code().expect("logkv exited, not killed"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A run that must succeed: its stdout.
fn ok<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> String {
    let r = run(dir, args);
    let shown: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    assert_eq!(r.code, 0, "{shown:?}: {r:?}");
    r.stdout
}

/// A run that must fail with `code`, saying `says`.
fn fails<S: AsRef<OsStr>>(dir: &Path, args: &[S], code: i32, says: &str) {
    let r = run(dir, args);
    let shown: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    assert_eq!(r.code, code, "{shown:?}: {r:?}");
    assert!(r.stderr.contains(says), "{shown:?}: no {says:?} in {:?}", r.stderr);
}

/// `put KEY VALUE`: the version it printed.
fn put(dir: &Path, key: &str, value: &str) -> u64 {
    ok(dir, &["put", key, value, "--segment-size-bytes", SMALL_SEGMENT]).trim().parse().expect("a version")
}

/// The value of `name=` in a `logkv` report line starting with `line`.
fn field(out: &str, line: &str, name: &str) -> String {
    let report = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(line))
        .unwrap_or_else(|| panic!("no {line:?} line in {out:?}"));
    report
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {report:?}"))
        .to_string()
}

fn number(out: &str, line: &str, name: &str) -> u64 {
    field(out, line, name).parse().expect("a number")
}

/// What a reader sees in `dir`: every key and value, then each key's
/// history.
fn state(dir: &Path) -> String {
    let scan = ok(dir, &["scan"]);
    let mut state = scan.clone();
    for line in scan.lines() {
        let key = line.split('\t').next().expect("a key");
        state.push_str(&format!("history {key}:\n{}", ok(dir, &["history", key])));
    }
    state
}

/// Bytes of the files in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).expect("list the directory").map(|e| e.unwrap().metadata().unwrap().len()).sum()
}

/// Now, as RFC 3339, between two writes: the clock of the records' append
/// times is milliseconds, so a little room on each side.
fn a_time_between_writes() -> String {
    std::thread::sleep(Duration::from_millis(20));
    let now = OffsetDateTime::from(SystemTime::now()).format(&Rfc3339).expect("an RFC 3339 time");
    std::thread::sleep(Duration::from_millis(20));
    now
}

fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    (tmp, data)
}

#[test]
fn a_restart_after_a_checkpoint_replays_only_the_log_after_it() {
    let (_tmp, data) = tempdir();
    for i in 0..5 {
        put(&data, &format!("k{i}"), "first");
    }
    let out = ok(&data, &["checkpoint"]);
    assert_eq!(field(&out, "opened", "from"), "log", "{out}");
    assert_eq!(number(&out, "opened", "replayed_records"), 5, "{out}");
    assert_eq!(number(&out, "checkpoint", "position"), 5, "{out}");
    assert_eq!(number(&out, "checkpoint", "version"), 5 << 16, "{out}");
    assert!(Path::new(&field(&out, "checkpoint", "path")).is_file(), "{out}");

    put(&data, "k0", "second");
    put(&data, "k5", "first");
    let before = state(&data);
    let out = ok(&data, &["checkpoint"]);
    assert_eq!(field(&out, "opened", "from"), "checkpoint", "{out}");
    assert_eq!(number(&out, "opened", "replayed_records"), 2, "only the two writes after it: {out}");
    assert_eq!(number(&out, "checkpoint", "position"), 7, "{out}");
    let out = ok(&data, &["checkpoint"]);
    assert_eq!(number(&out, "opened", "replayed_records"), 0, "{out}");
    assert_eq!(state(&data), before, "what a checkpoint loads reads like the log");
}

#[test]
fn compacting_to_one_version_shrinks_the_directory_and_keeps_the_newest_values() {
    let (_tmp, data) = tempdir();
    let value = |key: usize, round: usize| format!("{key}/{round}/{}", "x".repeat(200));
    let mut first = 0;
    for round in 0..5 {
        for key in 0..8 {
            let version = put(&data, &format!("key{key}"), &value(key, round));
            first = if first == 0 { version } else { first };
        }
    }
    ok(&data, &["del", "key7", "--segment-size-bytes", SMALL_SEGMENT]);
    let newest = ok(&data, &["scan"]);
    let bytes_before = dir_bytes(&data);

    let out = ok(&data, &["compact", "--retain-versions", "1", "--segment-size-bytes", SMALL_SEGMENT]);
    let cut = number(&out, "compacted", "histories_cut");
    // Each of the 8 keys loses its older versions; key7 keeps its delete.
    assert!(cut >= 8, "{out}");
    assert!(number(&out, "compacted", "output_bytes") < number(&out, "compacted", "input_bytes"), "{out}");
    let bytes_after = dir_bytes(&data);
    assert!(bytes_after < bytes_before, "{bytes_before} bytes before, {bytes_after} after: {out}");

    assert_eq!(ok(&data, &["scan"]), newest);
    // inspect checks the compacted file and the checkpoint too, and takes
    // the oldest segment starting after the compacted file for what it is.
    let report = ok(&data, &["inspect"]);
    assert!(report.contains(".head compacted through=") && report.contains("corrupt=0"), "{report}");
    assert!(report.contains(".ckpt position=") && report.contains("torn_tails=0"), "{report}");
    for key in 0..7 {
        let key = format!("key{key}");
        assert_eq!(ok(&data, &["history", &key]).lines().count(), 1, "{key}: one version left");
    }
    assert_eq!(run(&data, &["get", "key7"]).code, 1, "a deleted key stays deleted");
    fails(&data, &["get", "key0", "--at", &first.to_string()], 3, "was compacted");

    let out = ok(&data, &["checkpoint"]);
    assert_eq!(field(&out, "opened", "replayed_records"), "0", "compaction leaves a checkpoint: {out}");
    put(&data, "key0", "after");
    assert_eq!(ok(&data, &["get", "key0"]), "after");
}

#[test]
fn restore_to_a_version_or_a_time_gives_exactly_the_state_then() {
    let (tmp, data) = tempdir();
    put(&data, "a", "1");
    put(&data, "b", "1");
    let then = put(&data, "a", "2");
    let state_then = state(&data);
    let time_then = a_time_between_writes();
    put(&data, "a", "3");
    ok(&data, &["del", "b"]);
    put(&data, "c", "1");
    let state_now = state(&data);

    let by_version = tmp.path().join("by-version");
    let out = ok(
        &data,
        &[
            OsStr::new("restore"),
            "--to-version".as_ref(),
            then.to_string().as_ref(),
            "--out".as_ref(),
            by_version.as_os_str(),
        ],
    );
    assert_eq!(number(&out, "restored", "version"), then, "{out}");
    assert_eq!(number(&out, "restored", "position"), then >> 16, "{out}");
    assert_eq!(state(&by_version), state_then);

    let by_time = tmp.path().join("by-time");
    let out = ok(
        &data,
        &[
            OsStr::new("restore"),
            "--to-time".as_ref(),
            time_then.as_ref(),
            "--out".as_ref(),
            by_time.as_os_str(),
        ],
    );
    assert_eq!(number(&out, "restored", "version"), then, "{out}");
    assert_eq!(state(&by_time), state_then);

    // A version between two records restores the older one.
    let between = tmp.path().join("between");
    let out = ok(
        &data,
        &[
            OsStr::new("restore"),
            "--to-version".as_ref(),
            (then + 1).to_string().as_ref(),
            "--out".as_ref(),
            between.as_os_str(),
        ],
    );
    assert_eq!(number(&out, "restored", "version"), then, "{out}");

    assert_eq!(state(&data), state_now, "the source is unchanged");
    assert!(!by_version.join("node.key").exists(), "the node key is not copied");
    // The restored directory is a node of its own: it takes writes, signed
    // by a key of its own.
    let out = ok(&by_version, &["put", "d", "1", "--key", &data.join("node.key").display().to_string()]);
    assert_eq!(out.trim().parse::<u64>().expect("a version") >> 16, (then >> 16) + 1);
}

/// The state digest of the stopped node in `dir` as of `version`, as
/// `admin_nodeInfo` shows it.
fn digest_at(dir: &Path, version: u64) -> String {
    let options =
        NodeOptions { store: StoreOptions::default(), watched: Watched::All, ..NodeOptions::default() };
    let node = Node::open(dir, options).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
    let digest = node.digest_at(Some(version)).expect("the digest as of the version");
    node.close().expect("close");
    format!("0x{}", hex::encode(digest.to_bytes()))
}

/// What a reader of `dir` sees as of `version`: every key and value then,
/// each key's versions up to it, and the state digest then.
fn state_as_of(dir: &Path, version: u64, keys: &[&str]) -> String {
    let at = version.to_string();
    let mut state = ok(dir, &["scan", "--at", &at]);
    for key in keys {
        let history = ok(dir, &["history", key]);
        let then =
            history.lines().filter(|l| l.split('\t').next().unwrap().parse::<u64>().unwrap() <= version);
        state.push_str(&format!("history {key}:\n{}\n", then.collect::<Vec<_>>().join("\n")));
    }
    state + &digest_at(dir, version)
}

/// `logkv restore` ARGS `--out OUT` of `data`: the version restored.
fn restore(data: &Path, args: &[&str], out: &Path) -> u64 {
    let out = ok(data, &[&["restore"][..], args, &["--out", &out.display().to_string()]].concat());
    number(&out, "restored", "version")
}

#[test]
fn restore_reaches_into_the_compacted_log_of_a_node_as_far_as_retention_kept_history() {
    let (tmp, data) = tempdir();
    let keys = ["key0", "key1", "key2", "key3"];
    let value = |key: usize, round: usize| format!("{key}/{round}/{}", "x".repeat(300));
    let (mut versions, mut time_inside) = (Vec::new(), String::new());
    for round in 0..4 {
        for (k, key) in keys.iter().enumerate() {
            versions.push(put(&data, key, &value(k, round)));
            if versions.len() == 9 {
                time_inside = a_time_between_writes();
            }
        }
        if round == 1 {
            // Access control and a delete are part of the state too.
            let writer = format!("0x{}", "11".repeat(20));
            let key = data.join("node.key").display().to_string();
            ok(
                &data,
                &["acl", "grant-writer", &writer, "--key", &key, "--segment-size-bytes", SMALL_SEGMENT],
            );
            ok(&data, &["del", "key3", "--segment-size-bytes", SMALL_SEGMENT]);
        }
    }
    let inside = versions[8];
    let want_inside = state_as_of(&data, inside, &keys);

    let out = ok(&data, &["compact"]);
    assert_eq!(number(&out, "compacted", "histories_cut"), 0, "every version kept: {out}");
    // Written after the compaction: in the segments.
    let after = put(&data, "key1", "after the compaction");
    let time_after = a_time_between_writes();
    let later = put(&data, "key2", "later still");
    let want_after = state_as_of(&data, after, &keys);

    let restored = tmp.path().join("inside");
    assert_eq!(restore(&data, &["--to-version", &inside.to_string()], &restored), inside);
    assert_eq!(state_as_of(&restored, inside, &keys), want_inside);
    assert_eq!(ok(&restored, &["scan"]), ok(&data, &["scan", "--at", &inside.to_string()]));
    assert_eq!(run(&restored, &["get", "key3"]).code, 1, "deleted then");
    let earlier = versions[2].to_string();
    assert_eq!(
        ok(&restored, &["get", "key2", "--at", &earlier]),
        ok(&data, &["get", "key2", "--at", &earlier])
    );

    let by_time = tmp.path().join("inside-by-time");
    assert_eq!(restore(&data, &["--to-time", &time_inside], &by_time), inside);
    assert_eq!(state_as_of(&by_time, inside, &keys), want_inside);
    let by_time = tmp.path().join("after");
    assert_eq!(restore(&data, &["--to-time", &time_after], &by_time), after);
    assert_eq!(state_as_of(&by_time, after, &keys), want_after);

    // A node serves the restored directory, with the digest it had then,
    // the results of its transactions, and takes writes after it.
    // It replaces the original here, so it signs with the original's key.
    std::fs::copy(data.join("node.key"), restored.join("node.key")).expect("copy the node key");
    let node = Server::builder().data_dir(&restored).args(["--admin-token", TOKEN]).start();
    let rpc = Rpc::new(&node);
    let info = rpc.call_with("admin_nodeInfo", json!([]), Some(TOKEN))["result"].clone();
    assert_eq!(info["appliedVersion"], json!(inside), "{info}");
    assert_eq!(info["stateDigest"], json!(digest_at(&data, inside)), "{info}");
    assert_eq!(rpc.result("kv_getTransactionResult", json!([versions[1]])), json!("Commit"));
    assert_eq!(rpc.redis(&["SET", "key9", "served"]), "+OK\r\n");
    assert_eq!(rpc.redis(&["GET", "key0"]), format!("${}\r\n{}\r\n", value(0, 2).len(), value(0, 2)));
    node.stop_cleanly();
    assert_eq!(ok(&restored, &["get", "key9"]), "served");

    // With one version kept per key, the state as of `inside` is gone.
    ok(&data, &["compact", "--retain-versions", "1"]);
    let r = run(
        &data,
        &[
            "restore",
            "--to-version",
            &inside.to_string(),
            "--out",
            &tmp.path().join("gone").display().to_string(),
        ],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains(&format!("the state as of version {inside} is gone")), "{r:?}");
    let oldest: u64 =
        r.stderr.split("can reach is version ").nth(1).unwrap().trim().parse().expect("a version");
    assert_eq!(oldest, later, "every key keeps only its newest version: {r:?}");
    assert!(!tmp.path().join("gone").exists(), "nothing is left of a refused restore");
}

#[test]
fn an_export_imported_into_a_new_directory_reads_the_same() {
    let (tmp, data) = tempdir();
    for i in 0..20 {
        put(&data, &format!("k{:02}", i % 7), &format!("v{i}"));
    }
    ok(&data, &["del", "k03"]);
    let last = put(&data, "k06", "newest");
    let scan = ok(&data, &["scan"]);

    let file = tmp.path().join("state.export");
    let out = ok(&data, &[OsStr::new("checkpoint"), "export".as_ref(), file.as_os_str()]);
    assert_eq!(number(&out, "exported", "version"), last, "{out}");
    assert_eq!(number(&out, "exported", "position"), last >> 16, "{out}");
    assert_eq!(PathBuf::from(field(&out, "exported", "path")), file);
    assert_eq!(number(&out, "exported", "bytes"), std::fs::metadata(&file).unwrap().len(), "{out}");

    let imported = tmp.path().join("imported");
    let out = ok(&imported, &[OsStr::new("checkpoint"), "import".as_ref(), file.as_os_str()]);
    assert_eq!(number(&out, "imported", "version"), last, "{out}");
    assert_eq!(number(&out, "imported", "position"), last >> 16, "{out}");
    assert!(!out.contains("follows"), "no shared log: {out}");
    assert_eq!(ok(&imported, &["scan"]), scan);
    assert_eq!(
        ok(&imported, &["history", "k06"]),
        format!("{last}\tput 6 bytes\n"),
        "only the newest version"
    );
    assert_eq!(run(&imported, &["get", "k03"]).code, 1);
    // It goes on from the export's version.
    let next = ok(&imported, &["put", "k07", "x", "--key", &data.join("node.key").display().to_string()]);
    assert_eq!(next.trim().parse::<u64>().expect("a version") >> 16, (last >> 16) + 1);
}

#[test]
fn what_cannot_be_done_is_refused_with_the_reason() {
    let (tmp, data) = tempdir();
    let newest = put(&data, "a", "1");
    let dir = |name: &str| tmp.path().join(name).display().to_string();

    let occupied = tmp.path().join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("keep.txt"), "mine").unwrap();
    let at = newest.to_string();
    fails(&data, &["restore", "--to-version", &at, "--out", &dir("occupied")], 2, "occupied is not empty");
    fails(&occupied, &["checkpoint", "import", &dir("none")], 2, "is not empty");
    assert_eq!(std::fs::read_to_string(occupied.join("keep.txt")).unwrap(), "mine", "left alone");

    fails(
        &data,
        &["restore", "--to-version", &at, "--to-time", "2025-01-01T00:00:00Z", "--out", &dir("r")],
        2,
        "cannot be used with",
    );
    fails(&data, &["restore", "--out", &dir("r")], 2, "--to-version");
    let ahead = (newest + (1 << 16)).to_string();
    fails(
        &data,
        &["restore", "--to-version", &ahead, "--out", &dir("r")],
        2,
        &format!("version {ahead} is newer than the log, whose newest version is {newest}"),
    );
    fails(&data, &["restore", "--to-time", "yesterday", "--out", &dir("r")], 2, "not an RFC 3339 time");
    fails(
        &data,
        &["restore", "--to-time", "2001-01-01T00:00:00Z", "--out", &dir("r")],
        2,
        "nothing was written at or before 2001-01-01T00:00:00Z",
    );
    fails(
        &data,
        &["restore", "--to-version", "1", "--out", &dir("r")],
        2,
        "nothing was written at or before version 1",
    );
    assert!(!tmp.path().join("r").exists(), "nothing is left of a refused restore");

    std::fs::write(tmp.path().join("taken"), "mine").unwrap();
    fails(&data, &["checkpoint", "export", &dir("taken")], 2, "taken exists");
    let inside = data.join("backup.export").display().to_string();
    fails(&data, &["checkpoint", "export", &inside], 2, "is inside the data directory");
    let fresh = tmp.path().join("fresh");
    std::fs::write(tmp.path().join("taken"), "not an export, but as long as its header".repeat(2)).unwrap();
    fails(&fresh, &["checkpoint", "import", &dir("taken")], 3, "taken");
    assert!(!fresh.exists(), "nothing is imported from a file that is not an export");

    fails(&data, &["compact", "--retain-versions", "0"], 2, "--retain-versions");
    fails(&data, &["compact", "--retain-duration", "soon"], 2, "not a duration");
    fails(
        &data,
        &["compact", "--retain-versions", "1", "--remote", "http://127.0.0.1:1"],
        2,
        "cannot be used with",
    );
    fails(&data, &["checkpoint", "--server", "http://127.0.0.1:1"], 2, "--remote URL");
    fails(
        &data,
        &["checkpoint", "--remote", "http://127.0.0.1:1"],
        3,
        "cannot reach a logkv server at http://127.0.0.1:1",
    );
    let imported = tmp.path().join("imported");
    fails(
        &imported,
        &["checkpoint", "import", &dir("taken"), "--watch", &format!("0x{}", "00".repeat(32))],
        2,
        "--watch needs a shared log (--log)",
    );
}

#[test]
fn a_running_node_checkpoints_compacts_and_exports_when_asked_with_remote() {
    let (tmp, data) = tempdir();
    let node = Server::builder()
        .data_dir(&data)
        .args(["--admin-token", TOKEN])
        .arg("--backup-dir")
        .arg(tmp.path())
        .start();
    let rpc = Rpc::new(&node);
    for i in 0..6 {
        assert_eq!(rpc.redis(&["SET", &format!("k{}", i % 4), &format!("v{i}")]), "+OK\r\n");
    }
    assert_eq!(rpc.redis(&["DEL", "k1"]), ":1\r\n");
    let applied = rpc.result("kv_getReplayProgress", json!([]))["appliedVersion"].as_u64().unwrap();
    let url = node.http_url();

    // The node holds its directory: the local commands say how to ask it.
    for args in [vec!["checkpoint"], vec!["compact"], vec!["checkpoint", "export", "/tmp/x.export"]] {
        fails(&data, &args, 3, &format!("held by a running logkv server: ask it with --remote {url}"));
    }
    let restored = tmp.path().join("restored").display().to_string();
    fails(&data, &["restore", "--to-version", "1", "--out", &restored], 3, "stop it first");
    fails(&data, &["checkpoint", "--remote", &url], 3, "Unauthorized");
    fails(&data, &["checkpoint", "--remote", &url, "--admin-token", "wrong"], 3, "Unauthorized");

    let remote = ["--remote", &url, "--admin-token", TOKEN];
    let out = ok(&data, &[&["checkpoint"][..], &remote].concat());
    assert_eq!(number(&out, "checkpoint", "version"), applied, "{out}");
    assert_eq!(number(&out, "checkpoint", "position"), applied >> 16, "{out}");
    assert!(!out.contains("opened"), "the node opened its directory, not this command: {out}");
    let out = ok(&data, &[&["compact"][..], &remote].concat());
    assert!(out.starts_with("compacted through_log_position="), "{out}");
    let file = tmp.path().join("node.export");
    let out = ok(&data, &[&["checkpoint", "export", &file.display().to_string()][..], &remote].concat());
    assert_eq!(number(&out, "exported", "version"), applied, "{out}");
    assert_eq!(PathBuf::from(field(&out, "exported", "path")), file);
    fails(
        &data,
        &[&["checkpoint", "export", &file.display().to_string()][..], &remote].concat(),
        2,
        "exists",
    );

    node.stop_cleanly();
    let imported = tmp.path().join("imported");
    ok(&imported, &[OsStr::new("checkpoint"), "import".as_ref(), file.as_os_str()]);
    assert_eq!(ok(&imported, &["scan"]), ok(&data, &["scan"]));
    assert_eq!(ok(&imported, &["scan"]), "k0\tv4\nk2\tv2\nk3\tv3\n");
}
