//! Data directories of on-disk format 2 (committed fixtures written by the
//! logkv before the format step): refused at open with a message naming
//! `logkv migrate`, and migrated into a new directory that answers exactly
//! what the old one did.

mod server;

use std::path::{Path, PathBuf};

use logkv_store::{Store, StoreOptions};
use server::logkv;

fn fixture(name: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match name {
        "node" => manifest.join("tests/data/format2-node"),
        _ => manifest.join("../logkv-store/tests/data/format2-plain"),
    }
}

/// A writable copy of a fixture (opening may not touch the committed one).
fn copy_of(name: &str, into: &Path) -> PathBuf {
    let dir = into.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log" || e == "key") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The answers `expected.txt` records, command by command.
fn answers(dir: &str) -> String {
    let mut all = String::from("# logkv scan\n");
    all += &text(&logkv(&["--data-dir", dir, "scan"]));
    all += "# logkv scan --stream 0x01..\n";
    let other = format!("0x{}", "01".repeat(32));
    all += &text(&logkv(&["--data-dir", dir, "scan", "--stream", &other]));
    for key in ["key3", "key5", "key12"] {
        all += &format!("# logkv history {key}\n");
        all += &text(&logkv(&["--data-dir", dir, "history", key]));
    }
    all
}

#[test]
fn a_format_2_node_is_refused_then_migrated_with_every_answer_kept() {
    let temp = tempfile::tempdir().unwrap();
    let old = copy_of("node", temp.path());
    let old_dir = old.to_str().unwrap();

    let refused = logkv(&["--data-dir", old_dir, "get", "key1"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("logkv migrate"), "the refusal names the way forward: {stderr}");

    let new = temp.path().join("migrated");
    let new_dir = new.to_str().unwrap();
    let out = logkv(&["--data-dir", old_dir, "migrate", "--out", new_dir]);
    assert!(out.status.success(), "migrate: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text(&out).starts_with("migrated records=15 position=15 kind=node"), "{}", text(&out));

    let expected = std::fs::read_to_string(fixture("node").join("expected.txt")).unwrap();
    assert_eq!(answers(new_dir), expected);
    // The node's own key came along: it is still the stream's admin.
    let put = logkv(&["--data-dir", new_dir, "put", "after", "migration"]);
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    assert_eq!(text(&logkv(&["--data-dir", new_dir, "get", "after"])), "migration");

    let again = logkv(&["--data-dir", old_dir, "migrate", "--out", new_dir]);
    assert_eq!(again.status.code(), Some(2), "a non-empty --out is refused");
}

#[test]
fn a_format_2_plain_store_is_migrated_batch_by_batch() {
    let temp = tempfile::tempdir().unwrap();
    let old = copy_of("plain", temp.path());
    assert!(Store::open(&old, StoreOptions::default()).is_err(), "format 2 is refused");
    let new = temp.path().join("migrated");
    let out = logkv(&["--data-dir", old.to_str().unwrap(), "migrate", "--out", new.to_str().unwrap()]);
    assert!(out.status.success(), "migrate: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text(&out).starts_with("migrated records=21 position=21 kind=store"), "{}", text(&out));

    // What the fixture's README says was written.
    let store = Store::open(&new, StoreOptions::default()).unwrap();
    assert_eq!(store.get(b"key0").unwrap(), None, "deleted at position 21");
    for i in 1..20u64 {
        let deleted = (i + 1) % 3 == 2 && i + 1 < 20;
        let value = store.get(format!("key{i}").as_bytes()).unwrap().map(|v| v.data);
        let written = format!("value {i} ").repeat(20).into_bytes();
        assert_eq!(value, (!deleted).then_some(written), "key{i}");
        assert_eq!(
            store.history(format!("key{i}").as_bytes()).unwrap()[0].version,
            if deleted { i + 2 } else { i + 1 }
        );
    }
    assert_eq!(store.get(b"hot").unwrap().unwrap().data, b"hot 19");
    assert_eq!(store.version(), 21);
}
