//! Writes the seed corpus of every fuzz target: `logkv-fuzz-seeds DIR`
//! (the committed one is `fuzz/corpus`).

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: logkv-fuzz-seeds CORPUS_DIR");
        std::process::exit(2);
    };
    if let Err(e) = logkv_fuzz::seeds::write_all(std::path::Path::new(&dir)) {
        eprintln!("logkv-fuzz-seeds: {e}");
        std::process::exit(1);
    }
}
