//! Fuzz targets for every decoder that reads bytes a stranger can send or
//! leave on disk: the RESP parser, JSON-RPC requests, the 0G and native
//! transaction codecs, signed entries, log segments and their recovery,
//! checkpoints and compacted files.
//!
//! Each target is a plain function of the input bytes that panics when an
//! invariant breaks (not only when the decoder itself panics): the
//! coverage-guided fuzzer in `fuzz/` calls it on generated inputs, and
//! `tests/replay.rs` calls it on every committed corpus file, so what the
//! fuzzer once found stays tested. `docs/fuzzing.md` says what each checks.

mod codec;
mod envelope;
mod resp;
mod rpc;
pub mod seeds;
mod stored;

/// A fuzz target: the name the fuzzer and the corpus directory use, and
/// the function that checks one input.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Also the name of its corpus directory, `fuzz/corpus/<name>`.
    pub name: &'static str,
    /// Panics if the input breaks an invariant.
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target { name: "resp", run: resp::check },
    Target { name: "jsonrpc", run: rpc::check },
    Target { name: "zerog", run: codec::check_zerog },
    Target { name: "native", run: codec::check_native },
    Target { name: "envelope", run: envelope::check },
    Target { name: "segments", run: stored::check_segments },
    Target { name: "checkpoint", run: stored::check_checkpoint },
    Target { name: "compacted", run: stored::check_compacted },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
