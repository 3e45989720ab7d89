//! Sets `LOGKV_BUILD_COMMIT`, the commit `logkv_build_info` reports: the
//! variable's own value when the build is given one (a package built
//! outside a git checkout), else the checkout's `HEAD`, else "unknown".

use std::path::{Path, PathBuf};
use std::process::Command;

const VAR: &str = "LOGKV_BUILD_COMMIT";

fn main() {
    println!("cargo:rerun-if-env-changed={VAR}");
    // Without a rerun-if-changed line Cargo reruns this on any change in
    // the package; with only this one, on changes to this file.
    println!("cargo:rerun-if-changed=build.rs");
    let commit = match std::env::var(VAR) {
        Ok(given) if !given.trim().is_empty() => given.trim().to_string(),
        _ => {
            // A new commit or a checkout moves HEAD or the branch it names;
            // a missing file would make Cargo rerun this on every build.
            for file in head_files() {
                if file.exists() {
                    println!("cargo:rerun-if-changed={}", file.display());
                }
            }
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_string())
        }
    };
    println!("cargo:rustc-env={VAR}={commit}");
}

/// The files whose change means a new `HEAD` commit: `HEAD` itself, the
/// ref it points to and `packed-refs`, wherever git keeps them (in a
/// worktree `.git` is a file, `HEAD` is the worktree's own and the refs
/// are the main repository's; `--git-path` knows).
fn head_files() -> Vec<PathBuf> {
    let mut names = vec!["HEAD".to_string(), "packed-refs".to_string()];
    names.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    names.iter().filter_map(|name| git(&["rev-parse", "--git-path", name])).map(|p| absolute(&p)).collect()
}

/// `path` as git printed it, relative to this package's directory, where
/// git runs.
fn absolute(path: &str) -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by Cargo")).join(path)
}

/// The trimmed output of a successful `git ARGS` in this package's
/// directory; `None` if git is missing, fails or prints nothing.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(std::env::var("CARGO_MANIFEST_DIR").ok()?)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}
