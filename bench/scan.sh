#!/usr/bin/env bash
# Scan benchmark: generates (once) a ~1.9 GiB mixed GGUF (Q4_K, Q6_K, Q8_0, F16; llama-7B
# shapes, 13 layers, random valid blocks) into $QUANTDOC_CACHE (default .cache/), then times
# `cat FILE > /dev/null`, a plain read() of the file, and the full-statistics scan with 1 and
# 2 threads. See docs/BENCHMARKS.md, section "Scan".
#
#   bench/scan.sh                       # median of 3 runs
#   QUANTDOC_BENCH_RUNS=5 bench/scan.sh
#   QUANTDOC_SCAN_LAYERS=4 bench/scan.sh   # a smaller file
set -euo pipefail
cd "$(dirname "$0")/.."
export QUANTDOC_CACHE=${QUANTDOC_CACHE:-$PWD/.cache}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench -p quantdoc-core --features parallel --bench scan
