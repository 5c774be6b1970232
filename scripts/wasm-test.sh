#!/usr/bin/env bash
# Runs the core's unit tests compiled for wasm32-unknown-unknown with simd128, in node: the
# simd128 dequant kernels (core/src/kernels/wasm_tests.rs) and the statistics' SIMD paths,
# content-hash sums included, bit for bit against the scalar references, plus the kernels'
# and the share-link codec's unit tests;
# then the web app's worker glue (message protocol, per-tensor scan against the core's
# scan_model, dropped paths, table formatting) the same way.
# Needs node (>= 16.4, for wasm SIMD) and wasm-bindgen-test-runner (from scripts/web-setup.sh).
# Extra arguments go to cargo test (e.g. a test-name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
if ! wasm-bindgen-test-runner --version 2>/dev/null | grep -qx "wasm-bindgen-test-runner $WASM_BINDGEN_VERSION"; then
  WEB_SETUP_SKIP_BROWSER=1 bash scripts/web-setup.sh
fi
if ! command -v node >/dev/null 2>&1; then
  echo "wasm-test: node is needed to run the wasm tests" >&2
  exit 1
fi

# The same flags and directory as test-all.sh's simd128 build, so that build's dependencies
# are reused (and plain builds elsewhere are not invalidated). With --target, RUSTFLAGS only
# reaches the wasm code, not build scripts or proc macros.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/wasm-simd}"
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+simd128"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
unset WASM_BINDGEN_USE_BROWSER WASM_BINDGEN_TEST_ONLY_WEB WASM_BINDGEN_TEST_ONLY_NODE

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test -p quantdoc-core --target wasm32-unknown-unknown --release --lib "$@" 2>&1 | tee "$log"

# A run that compiled the simd128 comparisons out, or filtered them all away, must not pass.
if [ $# -eq 0 ] && ! grep -q '^test kernels::wasm_tests::simd128::random_blocks_match_the_reference \.\.\. ok$' "$log"; then
  echo "wasm-test: the simd128 comparisons did not run" >&2
  exit 1
fi
if [ $# -eq 0 ]; then
  cargo test -p quantdoc-web --target wasm32-unknown-unknown --release --lib 2>&1 | tee "$log"
  if ! grep -q '^test scan_local::tests::per_tensor_scan_matches_core_scan_model \.\.\. ok$' "$log"; then
    echo "wasm-test: the worker glue tests did not run" >&2
    exit 1
  fi
fi
echo "wasm-test: ok"
