//! Key files: created owner-only and never overwritten, refused when others
//! can read them, and loaded back to the same account.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use logkv_runtime::keyfile::{self, KeyfileError};

#[test]
fn a_created_key_file_has_mode_0600_and_loads_back_to_the_same_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.key");
    let address = keyfile::create(&path).expect("created");
    assert_eq!(fs::metadata(&path).expect("exists").permissions().mode() & 0o7777, 0o600);
    assert_eq!(keyfile::load(&path).expect("loads").address(), address);
}

#[test]
fn the_file_is_0x_and_64_hex_digits_on_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("k");
    keyfile::create(&path).expect("created");
    let text = fs::read_to_string(&path).expect("readable by its owner");
    assert_eq!(text.len(), 67);
    assert!(text.starts_with("0x") && text.ends_with('\n'));
    assert!(text[2..66].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
}

#[test]
fn two_keys_are_different() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = keyfile::create(dir.path().join("a")).expect("created");
    let b = keyfile::create(dir.path().join("b")).expect("created");
    assert_ne!(a, b);
}

#[test]
fn create_refuses_to_overwrite_an_existing_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.key");
    let first = keyfile::create(&path).expect("created");
    assert!(matches!(keyfile::create(&path), Err(KeyfileError::Exists { .. })));
    assert_eq!(keyfile::load(&path).expect("still the first key").address(), first);
}

#[test]
fn a_key_file_readable_by_others_is_refused_without_showing_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.key");
    keyfile::create(&path).expect("created");
    let secret = fs::read_to_string(&path).expect("readable");
    for mode in [0o644, 0o640, 0o604] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        let err = keyfile::load(&path).expect_err("too open");
        assert!(matches!(err, KeyfileError::TooOpen { mode: m, .. } if m == mode), "{err}");
        let shown = err.to_string();
        assert!(shown.contains("chmod 600") && !shown.contains(&secret[2..66]), "{shown}");
    }
}

#[test]
fn a_file_that_is_not_a_key_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("not-a-key");
    for content in
        ["", "hello\n", "0x1234\n", &format!("{}\n", "ab".repeat(32)), &format!("0x{}zz\n", "ab".repeat(31))]
    {
        fs::write(&path, content).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = keyfile::load(&path).expect_err("malformed");
        assert!(matches!(err, KeyfileError::Malformed { .. }), "{content:?}: {err}");
        assert!(content.len() < 8 || !err.to_string().contains(content.trim()), "{err}");
    }
}

#[test]
fn a_zero_key_is_refused_as_invalid() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("zero.key");
    fs::write(&path, format!("0x{}\n", "00".repeat(32))).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(matches!(keyfile::load(&path), Err(KeyfileError::InvalidKey { .. })));
}

#[test]
fn a_key_written_by_hand_loads_to_the_ethers_address() {
    // 0x01×32 is ethers' address 0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1 (tests/fixtures/sign.json).
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hand.key");
    fs::write(&path, format!("0x{}\n", "01".repeat(32))).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod");
    let signer = keyfile::load(&path).expect("owner read-only is fine");
    assert_eq!(signer.address().to_string(), "0x1a642f0e3c3af545e7acbd38b07251b3990914f1");
}

#[test]
fn a_missing_file_names_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("absent.key");
    let err = keyfile::load(&path).expect_err("missing");
    assert!(matches!(err, KeyfileError::Io { .. }));
    assert!(err.to_string().contains("absent.key"), "{err}");
}
