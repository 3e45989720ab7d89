//! Shell completions and manual pages come from the command-line
//! definition itself: each generated script is checked by its own shell's
//! parser, and the pages by groff, so what packaging installs is valid.
//! Needs bash, zsh, fish and groff (scripts/test.sh installs them).

mod server;

use std::io::Write;
use std::process::{Command, Stdio};

use server::logkv;

/// Generated text from `logkv ARGS`.
fn generated(args: &[&str]) -> Vec<u8> {
    let out = logkv(args);
    assert!(out.status.success(), "logkv {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.is_empty());
    out.stdout
}

/// Runs `program ARGS` with `input` on stdin; panics with its stderr if it
/// fails.
fn check_with(program: &str, args: &[&str], input: &[u8]) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} must be installed (scripts/test.sh installs it): {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{program} {args:?}: {stderr}");
}

#[test]
fn completion_scripts_parse_in_their_shells_and_know_every_command() {
    for (shell, program, args) in
        [("bash", "bash", &["-n"][..]), ("zsh", "zsh", &["-n"][..]), ("fish", "fish", &["--no-execute"][..])]
    {
        let script = generated(&["completions", shell]);
        check_with(program, args, &script);
        let text = String::from_utf8(script).unwrap();
        for word in ["serve", "checkpoint", "print-config", "log-format", "durability"] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = logkv(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn manual_pages_render_without_warnings_and_document_each_setting() {
    let page = generated(&["man"]);
    check_with("groff", &["-man", "-Tutf8", "-ww", "-z"], &page);
    let dir = tempfile::tempdir().unwrap();
    let out = logkv(&["man", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let serve = std::fs::read(dir.path().join("logkv-serve.1")).expect("a page per command");
    check_with("groff", &["-man", "-Tutf8", "-ww", "-z"], &serve);
    let text = String::from_utf8(serve).unwrap();
    for word in ["LOGKV_RESP_ADDR", "LOGKV_DURABILITY", "print\\-config"] {
        assert!(text.contains(word), "logkv-serve.1 lacks {word}");
    }
    assert!(dir.path().join("logkv-checkpoint-export.1").exists());
}
