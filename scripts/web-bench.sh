#!/usr/bin/env bash
# Browser benchmark (docs/BENCHMARKS.md, "## Browser"): deep-scan throughput of a generated
# 1.01 GiB Q8_0 GGUF in headless chromium with 1 and 2 scan workers, next to the native CLI
# on the same file, in interleaved rounds (QUANTDOC_BENCH_ROUNDS, default 3) so that both
# see the same machine load. Then Blob reads alone (no wasm) for comparison.
# Needs the tools of scripts/web-setup.sh. Prints one JSON line per run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# wasm SIMD (every current browser has it): the scan kernels vectorize as they do natively.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:--C target-feature=+simd128}"
PORT="${QUANTDOC_E2E_PORT:-8091}"
export QUANTDOC_E2E_PORT="$PORT"
FILE="${QUANTDOC_BENCH_FILE:-/tmp/quantdoc-bench-1g.gguf}"
ROUNDS="${QUANTDOC_BENCH_ROUNDS:-3}"
target="${CARGO_TARGET_DIR:-target}"
CLI="${QUANTDOC_CLI:-$target/release/quantdoc}"

scripts/web-build.sh
cargo build --release --locked -p quantdoc
node tests/e2e/bench.mjs --make "$FILE"

log="$(mktemp)"
trunk serve --port "$PORT" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -fs "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 1
done

native() {
  local t="$1" out secs load
  load="$(cut -d' ' -f1-3 /proc/loadavg)"
  # `check` prints "scanned N tensors (SIZE) in S s": the scan alone, header excluded.
  out="$("$CLI" check "$FILE" --threads "$t" || true)"
  secs="$(sed -n 's/.*scanned .* in \([0-9.]*\) s.*/\1/p' <<<"$out")"
  [ -n "$secs" ] || { echo "no scan time in the CLI output" >&2; exit 1; }
  awk -v t="$t" -v s="$secs" -v b="$TENSOR_BYTES" -v l="$load" 'BEGIN {
    printf "{\"where\":\"native\",\"threads\":%d,\"seconds\":%s,\"mb_s\":%.1f,\"load_before\":\"%s\"}\n", t, s, b / s / 1e6, l }'
}
# MB/s = tensor bytes scanned / scan time, as the page computes it.
TENSOR_BYTES="$("$CLI" inspect "$FILE" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).summary.tensor_bytes))')"

cat "$FILE" >/dev/null # page cache warm for every run alike
for round in $(seq 1 "$ROUNDS"); do
  echo "# round $round"
  native 1
  native 2
  node tests/e2e/bench.mjs "$FILE" 1 2
done
echo "# Blob reads alone"
node tests/e2e/bench.mjs --reads "$FILE"
