#!/usr/bin/env bash
# Browser benchmark (docs/BENCHMARKS.md, "## Browser"): deep-scan throughput of a generated
# ~1 GiB Q8_0 GGUF in headless chromium with 1 and 2 scan workers, next to the native CLI
# on the same file. Needs the tools of scripts/web-setup.sh and a release build of the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# wasm SIMD (every current browser has it): the scan kernels vectorize as they do natively.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:--C target-feature=+simd128}"
PORT="${QUANTDOC_E2E_PORT:-8091}"
export QUANTDOC_E2E_PORT="$PORT"
FILE="${QUANTDOC_BENCH_FILE:-/tmp/quantdoc-bench-1g.gguf}"
CLI="${QUANTDOC_CLI:-target/release/quantdoc}"

scripts/web-build.sh
node tests/e2e/bench.mjs --make "$FILE"
cat "$FILE" >/dev/null # page cache warm for every run alike

for t in 1 2; do
  /usr/bin/time -f "native threads=$t wall=%e s maxrss=%M KiB" "$CLI" check "$FILE" --threads "$t" >/dev/null || true
done

log="$(mktemp)"
trunk serve --port "$PORT" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -fs "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 1
done
node tests/e2e/bench.mjs "$FILE"
