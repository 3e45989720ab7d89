#!/usr/bin/env bash
# Runs every test of the workspace, regenerates the golden vectors with the
# real 0G SDK and ethers (npm) and checks them against the fixtures the Rust
# tests read, then makes a seconds-long smoke run of the benchmark so it
# cannot rot. Needs a Rust toolchain, Node.js and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets
bash scripts/golden/check.sh
cargo run --release --quiet -p logkv-bench -- --quick
