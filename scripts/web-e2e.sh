#!/usr/bin/env bash
# Build the web app, serve it on localhost with trunk, and run the browser tests in
# headless Debian chromium. Screenshots land in tests/e2e/screenshots/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# wasm SIMD (every current browser has it): the scan kernels vectorize as they do natively.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:--C target-feature=+simd128}"
PORT="${QUANTDOC_E2E_PORT:-8091}"
export QUANTDOC_E2E_PORT="$PORT"

scripts/web-setup.sh
scripts/web-build.sh
# The CLI: the tests open links it makes (native and wasm must hash alike).
cargo build --release --locked -p quantdoc
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$(pwd)/$target" ;; esac
export QUANTDOC_CLI="${QUANTDOC_CLI:-$target/release/quantdoc}"

log="$(mktemp)"
trunk serve --port "$PORT" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  if curl -fs "http://127.0.0.1:$PORT/" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$log"; echo "trunk serve exited" >&2; exit 1; fi
  sleep 1
done
curl -fs "http://127.0.0.1:$PORT/" >/dev/null || { cat "$log"; echo "app not served on port $PORT" >&2; exit 1; }

cd tests/e2e
node --test --test-concurrency=1 e2e.test.mjs
