//! One libFuzzer binary for every target: `LOGKV_FUZZ_TARGET` names the
//! target (see `logkv_fuzz::TARGETS`); the arguments are libFuzzer's.

#![no_main]

use std::sync::LazyLock;

static TARGET: LazyLock<&'static logkv_fuzz::Target> = LazyLock::new(|| {
    let name = std::env::var("LOGKV_FUZZ_TARGET").unwrap_or_default();
    logkv_fuzz::target(&name).unwrap_or_else(|| {
        let names: Vec<&str> = logkv_fuzz::TARGETS.iter().map(|t| t.name).collect();
        panic!("LOGKV_FUZZ_TARGET={name:?} names no target; one of {names:?}")
    })
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| (TARGET.run)(data));
