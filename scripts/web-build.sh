#!/usr/bin/env bash
# Build the web app into dist/ (release). Needs the tools from scripts/web-setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# wasm SIMD (every current browser has it): the scan kernels vectorize as they do natively.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:--C target-feature=+simd128}"
# trunk runs cargo with --offline (Trunk.toml): fetch the crates first.
cargo fetch --locked >/dev/null
trunk build "$@"
