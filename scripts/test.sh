#!/usr/bin/env bash
# Runs every test of the workspace, then a seconds-long smoke run of the
# benchmark so it cannot rot. Needs nothing beyond a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets
cargo run --release --quiet -p logkv-bench -- --quick
