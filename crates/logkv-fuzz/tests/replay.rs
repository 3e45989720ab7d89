//! Replays every committed fuzz input through its target: the seed corpus
//! in `fuzz/corpus/<target>/` and the inputs that once broke an invariant,
//! in `fuzz/regressions/<target>/`. A target whose corpus is missing fails.

use std::path::{Path, PathBuf};

use logkv_fuzz::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("directory entry").path()).collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_corpus_and_passes_it() {
    for target in TARGETS {
        let corpus = inputs(&fuzz_dir().join("corpus").join(target.name));
        assert!(!corpus.is_empty(), "no corpus for fuzz target {}", target.name);
        for input in corpus.iter().chain(&inputs(&fuzz_dir().join("regressions").join(target.name))) {
            let bytes = std::fs::read(input).expect("read corpus file");
            let run = std::panic::catch_unwind(|| (target.run)(&bytes));
            assert!(run.is_ok(), "fuzz target {} fails on {}", target.name, input.display());
        }
    }
}

#[test]
fn no_corpus_directory_names_an_unknown_target() {
    for kind in ["corpus", "regressions"] {
        for dir in inputs(&fuzz_dir().join(kind)) {
            let name = dir.file_name().and_then(|n| n.to_str()).expect("a name");
            assert!(logkv_fuzz::target(name).is_some(), "fuzz/{kind}/{name} names no target");
        }
    }
}
