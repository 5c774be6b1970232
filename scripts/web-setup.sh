#!/usr/bin/env bash
# Installs everything the web app's build and browser tests need, only from the
# package registries (crates.io, Debian, npm). Idempotent: skips what is present.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

TRUNK_VERSION=0.21.14
# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly,
# or the generated JS glue and the wasm disagree.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)

have_version() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -q "$2"; }

if ! have_version trunk "$TRUNK_VERSION"; then
  # update_check would contact crates.io at every run; the app must never fetch.
  cargo install --locked --no-default-features --features rustls "trunk@$TRUNK_VERSION"
fi
if ! have_version wasm-bindgen "$WASM_BINDGEN_VERSION"; then
  # wasm-bindgen-cli 0.2.130's own Cargo.lock pins webpki-roots 1.0.11, which the registry
  # no longer resolves; then let cargo pick the newest compatible dependencies.
  cargo install --locked "wasm-bindgen-cli@$WASM_BINDGEN_VERSION" ||
    cargo install "wasm-bindgen-cli@$WASM_BINDGEN_VERSION"
fi

# The app builds with the stable toolchain (no threaded nightly build: see docs/web.md).
rustup target add wasm32-unknown-unknown

if [ "${WEB_SETUP_SKIP_BROWSER:-0}" != 1 ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
  fi
  if [ ! -d tests/e2e/node_modules/playwright-core ]; then
    (cd tests/e2e && npm ci --no-audit --no-fund)
  fi
fi
echo "web-setup: ok (trunk $TRUNK_VERSION, wasm-bindgen $WASM_BINDGEN_VERSION)"
