#!/usr/bin/env python3
"""Single-process dequantization throughput of gguf-py 0.19.0, next to quantdoc's kernels.

    python3 bench/gguf_py_dequant.py [--values N] [--runs R] [--with-rust]

Creates a virtualenv under .cache/bench-venv (git-ignored) with gguf==0.19.0 and numpy, then
times `gguf.quants.dequantize` on N values (default 64 Mi, as rows of 4096) of random blocks
whose f16 scales are sane finite numbers, for the types that `core/benches/dequant.rs`
measures. With --with-rust it then runs `cargo bench -p quantdoc-core --bench dequant` on the
same N and prints both side by side with the ratio, so the ratio comes from one run. Each
figure comes as a median and as the best single pass: on a shared machine the best pass is
the one least slowed by other processes.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".cache" / "bench-venv"
REQUIREMENTS = ["gguf==0.19.0", "numpy"]

# (name, byte offsets of the f16 scale fields in one block)
TYPES = [
    ("F16", []),
    ("BF16", []),
    ("Q4_0", [0]),
    ("Q4_1", [0, 2]),
    ("Q5_0", [0]),
    ("Q5_1", [0, 2]),
    ("Q8_0", [0]),
    ("Q2_K", [80, 82]),
    ("Q3_K", [108]),
    ("Q4_K", [0, 2]),
    ("Q5_K", [0, 2]),
    ("Q6_K", [208]),
    ("IQ4_NL", [0]),
    ("IQ4_XS", [0]),
    ("MXFP4", []),  # its E8M0 scale byte is set in make_input
]
ROW = 4096


def ensure_venv() -> None:
    """Re-run this script with the virtualenv's python, creating the venv if needed."""
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not python.exists():
        print(f"creating {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True
    )
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


def sane_halves(rng, n):
    """f16 bit patterns in [2^-14, 2^-6): typical weight scales, as the Rust bench uses."""
    import numpy as np

    exp = rng.integers(1, 9, size=n, dtype=np.uint16)
    man = rng.integers(0, 1024, size=n, dtype=np.uint16)
    return (exp << np.uint16(10)) | man


def make_input(name, offsets, n_values, rng):
    import numpy as np
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    qtype = GGMLQuantizationType[name]
    block, size = GGML_QUANT_SIZES[qtype]
    rows = n_values // ROW
    if name == "F16":
        data = sane_halves(rng, n_values).view(np.uint8)
    else:
        data = rng.integers(0, 256, size=n_values // block * size, dtype=np.uint8)
        blocks = data.reshape(-1, size)
        for at in offsets:
            halves = sane_halves(rng, blocks.shape[0])
            blocks[:, at : at + 2] = halves.view(np.uint8).reshape(-1, 2)
        if name == "MXFP4":
            # 2^(e - 127) for e in 118..=133, as the Rust bench uses.
            blocks[:, 0] = 118 + blocks[:, 0] % 16
    return qtype, data.reshape(rows, -1)


def time_gguf_py(n_values, runs):
    import numpy as np
    import gguf

    rng = np.random.default_rng(20261122)
    results = {}
    for name, offsets in TYPES:
        qtype, data = make_input(name, offsets, n_values, rng)
        gguf.quants.dequantize(data, qtype)  # warm-up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            out = gguf.quants.dequantize(data, qtype)
            times.append(time.perf_counter() - t0)
            assert out.size == n_values
            del out
        rates = sorted(n_values / t / 1e6 for t in times)
        results[name] = (statistics.median(rates), rates[0], rates[-1])
        print(
            f"gguf-py {name:5} {results[name][0]:8.1f} M values/s "
            f"({rates[0]:.1f}-{rates[-1]:.1f}, {runs} runs)",
            file=sys.stderr,
        )
    return results


def run_rust_bench(n_values, best_of):
    env = dict(
        os.environ, QUANTDOC_BENCH_VALUES=str(n_values), QUANTDOC_BENCH_BEST_OF=str(best_of)
    )
    cmd = ["cargo", "bench", "-p", "quantdoc-core", "--bench", "dequant"]
    print(
        f"running: QUANTDOC_BENCH_VALUES={n_values} QUANTDOC_BENCH_BEST_OF={best_of} {' '.join(cmd)}",
        file=sys.stderr,
    )
    run = subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True)
    sys.stderr.write(run.stdout)
    best_pass = {}
    for line in run.stdout.splitlines():
        if line.startswith("best-pass "):
            _, bench_id, rate = line.split()
            best_pass[bench_id] = float(rate)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    base = target / "criterion" / "dequant"

    def rate(bench_id):
        """(criterion's median, fastest single pass) in G values/s."""
        est = json.loads((base / bench_id / "new" / "estimates.json").read_text())
        return n_values / est["median"]["point_estimate"], best_pass[bench_id]

    out = {"memcpy": rate("memcpy_f32_out")}
    for name, _ in TYPES:
        out[(name, "fast")] = rate(name)
        out[(name, "scalar")] = rate(name + "_scalar_reference")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", type=int, default=64 << 20)
    ap.add_argument(
        "--runs",
        type=int,
        default=5,
        help="timed passes per type (at least; more for small --values), for gguf-py and for "
        "quantdoc's best-pass figures",
    )
    ap.add_argument("--with-rust", action="store_true")
    args = ap.parse_args()
    if args.values % ROW:
        sys.exit(f"--values must be a multiple of {ROW}")
    ensure_venv()
    import gguf  # noqa: F401  (installed by ensure_venv)
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    # Small sizes get more passes so that the best pass is a meaningful figure.
    passes = max(args.runs, min(200, (64 << 20) // args.values))
    py = time_gguf_py(args.values, passes)
    rust = run_rust_bench(args.values, passes) if args.with_rust else None

    print(f"\n{args.values} values per run, single thread\n")
    if rust is None:
        print("| type | gguf-py M values/s (min-max) |\n|---|---|")
        for name, _ in TYPES:
            med, lo, hi = py[name]
            print(f"| {name} | {med:.0f} ({lo:.0f}-{hi:.0f}) |")
        return
    print(
        "| type | input B/value | quantdoc G values/s: median (best pass) | input GB/s: median "
        "(best) | scalar reference G values/s: median (best) | gguf-py M values/s: median (best) "
        "| quantdoc / gguf-py: medians (bests) |\n|---|---|---|---|---|---|---|"
    )
    for name, _ in TYPES:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType[name]]
        bpv = size / block
        fast, fast_best = rust[(name, "fast")]
        ref, ref_best = rust[(name, "scalar")]
        med, _, py_best = py[name]
        print(
            f"| {name} | {bpv:.4g} | {fast:.2f} ({fast_best:.2f}) | {fast * bpv:.2f} ({fast_best * bpv:.2f}) "
            f"| {ref:.2f} ({ref_best:.2f}) | {med:.0f} ({py_best:.0f}) "
            f"| {fast * 1e3 / med:.1f}x ({fast_best * 1e3 / py_best:.1f}x) |"
        )
    mem, mem_best = rust["memcpy"]
    print(f"| memcpy of the f32 output | - | {mem:.2f} ({mem_best:.2f}) | - | - | - | - |")

if __name__ == "__main__":
    main()
