#!/usr/bin/env python3
"""Single-thread dequantization throughput of llama.cpp's ggml next to quantdoc's kernels.

    python3 bench/llama_cpp_dequant.py [--values N] [--passes P] [--rounds R]

Measures, in one run on this machine, ggml's own `to_float` (ggml-quants.c's
`dequantize_row_*` and ggml.c's f16/bf16 rows, what llama.cpp's `test-quantize-perf --op
dequantize_row_q` times) against quantdoc's `kernels::dequantize`, on identical input blocks
(bench/llama_cpp_dequant.c generates the bytes core/benches/dequant.rs generates).

Everything it needs goes under .cache/llama-cpp-bench/ (git-ignored, reused):
- a virtualenv with cmake and ninja from PyPI;
- llama.cpp's ggml as vendored in the llama-cpp-python sdist from PyPI (the version
  shared/peers/BASELINES.md measured; the sdist itself is fetched once by
  scripts/llama-cpp-sdist.sh into .cache/llama-cpp-python-sdist/, shared with the
  acceptance check);
- ggml's `ggml-base` library built twice with cmake: as llama.cpp builds it
  (`-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON`: ggml-base gets `-O3`; only the CPU backend
  gets `-march=native`) and again with `-march=native` added, the better of the two for ggml.

Each round runs, type by type, both ggml builds and quantdoc's bench binary
(`QUANTDOC_BENCH_BEST_OF=P QUANTDOC_BENCH_TYPES=T`, its criterion part filtered away); each
figure is the fastest of P passes, the table gives the median over R rounds, and it checks the
targets of issue #3: never below llama.cpp (either build), and at least 2x ggml's portable
code as llama.cpp builds it on f16, q3_K, q6_K, iq4_nl, iq4_xs and mxfp4.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "llama-cpp-bench"
VENV = CACHE / "venv"
LLAMA_CPP_PYTHON = (ROOT / "scripts" / "llama-cpp-python.version").read_text().strip()
REQUIREMENTS = ["cmake==4.4.5", "ninja==1.13.2"]
TYPES = ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K",
         "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "MXFP4"]
TWICE = {"F16", "Q3_K", "Q6_K", "IQ4_NL", "IQ4_XS", "MXFP4"}


def run(cmd, **kw):
    print("+ " + " ".join(str(c) for c in cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


def ensure_venv():
    stamp = VENV / ".requirements"
    if stamp.exists() and stamp.read_text() == "\n".join(REQUIREMENTS):
        return
    run([sys.executable, "-m", "venv", "--clear", str(VENV)])
    run([str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", *REQUIREMENTS])
    stamp.write_text("\n".join(REQUIREMENTS))


def ensure_ggml_source():
    ggml = CACHE / f"llama-cpp-python-{LLAMA_CPP_PYTHON}" / "ggml"
    if (ggml / "include" / "ggml.h").exists():
        return ggml
    # Shared with the acceptance check, which unpacks the converter from the same sdist.
    sdist = run(["bash", str(ROOT / "scripts" / "llama-cpp-sdist.sh")],
                stdout=subprocess.PIPE, text=True).stdout.strip()
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/ggml/"
    unpack = CACHE / "unpack"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        # `filter` exists from Python 3.11.4 (Debian 12 ships 3.11.2); the members are
        # plain files under one prefix either way.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(unpack, members=members, filter="data")
        else:
            tar.extractall(unpack, members=members)
    ggml.parent.mkdir(parents=True, exist_ok=True)
    (unpack / prefix).rename(ggml)
    # The sdist leaves out the pkg-config template that ggml's CMakeLists configures.
    (ggml / "ggml.pc.in").touch()
    return ggml


def build_ggml(ggml, flavour, c_flags):
    """ggml-base built with cmake, and the harness linked against it."""
    build = CACHE / f"build-{flavour}"
    harness = build / "llama_cpp_dequant"
    cmake = str(VENV / "bin" / "cmake")
    run([cmake, "-S", str(ggml), "-B", str(build), "-G", "Ninja",
         f"-DCMAKE_MAKE_PROGRAM={VENV / 'bin' / 'ninja'}", "-DCMAKE_BUILD_TYPE=Release",
         "-DGGML_NATIVE=ON", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_BUILD_TESTS=OFF",
         "-DGGML_BUILD_EXAMPLES=OFF", f"-DCMAKE_C_FLAGS={c_flags}",
         f"-DCMAKE_CXX_FLAGS={c_flags}"], stdout=subprocess.DEVNULL)
    run([cmake, "--build", str(build), "--target", "ggml-base", "-j2"], stdout=subprocess.DEVNULL)
    run(["cc", "-O3", "-std=gnu11", "-Wall", "-Wextra", *c_flags.split(),
         f"-I{ggml / 'include'}", str(ROOT / "bench" / "llama_cpp_dequant.c"),
         str(build / "src" / "libggml-base.a"), "-lstdc++", "-lm", "-fopenmp", "-lpthread",
         "-o", str(harness)])
    return harness


def build_quantdoc_bench():
    out = run(["cargo", "bench", "-p", "quantdoc-core", "--bench", "dequant", "--no-run",
               "--message-format=json"], cwd=ROOT, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "dequant" \
                and msg.get("executable"):
            return msg["executable"]
    sys.exit("cargo did not report the dequant bench executable")


def best_passes(cmd, env=None):
    out = run(cmd, stdout=subprocess.PIPE, text=True, env=env).stdout
    rates = {}
    for line in out.splitlines():
        if line.startswith("best-pass "):
            _, name, rate = line.split()
            rates[name] = float(rate)
    return rates


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", type=int, default=64 << 20)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.values % 256:
        sys.exit("--values must be a multiple of 256")
    CACHE.mkdir(parents=True, exist_ok=True)
    ensure_venv()
    ggml = ensure_ggml_source()
    harness = {"release": build_ggml(ggml, "release", ""),
               "native": build_ggml(ggml, "native", "-march=native")}
    quantdoc = build_quantdoc_bench()

    # Type by type, the three programs back to back, so that each ratio compares figures
    # taken seconds apart on this noisy shared machine.
    env = dict(os.environ, QUANTDOC_BENCH_VALUES=str(args.values),
               QUANTDOC_BENCH_BEST_OF=str(args.passes))
    sides = ("release", "native", "quantdoc")
    rates = {(side, name): [] for side in sides for name in TYPES}
    for r in range(args.rounds):
        print(f"round {r + 1} of {args.rounds}", file=sys.stderr)
        for name in TYPES:
            for flavour in ("release", "native"):
                got = best_passes([str(harness[flavour]), str(args.values), str(args.passes), name])
                rates[(flavour, name)].append(got[name])
            # `--bench nomatch`: criterion's own measurements filtered away, best passes only.
            got = best_passes([quantdoc, "--bench", "nomatch"],
                              env=dict(env, QUANTDOC_BENCH_TYPES=name))
            rates[("quantdoc", name)].append(got[name])

    def cell(side, name):
        runs = rates[(side, name)]
        return f"{statistics.median(runs):.2f} ({' / '.join(f'{x:.2f}' for x in runs)})"

    print(f"\n{args.values} values, one thread; G values/s: the fastest of {args.passes} passes, "
          f"median of {args.rounds} rounds (each round in parentheses). Ratios are medians of "
          "the per-round ratios.\n")
    print("| type | llama.cpp ggml-base as built (-O3) | llama.cpp with -march=native | quantdoc "
          "| quantdoc / as built | quantdoc / faster llama.cpp build |\n|---|---|---|---|---|---|")
    verdicts = []
    for name in TYPES:
        ratio = {
            "built": statistics.median(
                q / b for q, b in zip(rates[("quantdoc", name)], rates[("release", name)])),
            "best": statistics.median(
                q / max(b, n) for q, b, n in zip(rates[("quantdoc", name)],
                                                 rates[("release", name)],
                                                 rates[("native", name)])),
        }
        print(f"| {name} | {cell('release', name)} | {cell('native', name)} | "
              f"{cell('quantdoc', name)} | {ratio['built']:.2f}x | {ratio['best']:.2f}x |")
        need = 2.0 if name in TWICE else 1.0
        if ratio["built"] < need:
            verdicts.append(f"{name}: {ratio['built']:.2f}x llama.cpp's portable code, "
                            f"target {need:.0f}x")
        if ratio["best"] < 1.0:
            verdicts.append(f"{name}: below the -march=native build ({ratio['best']:.2f}x)")
    print("\nTargets (issue #3: never below llama.cpp; 2x its portable code on "
          + ", ".join(sorted(TWICE)) + "): "
          + ("all met" if not verdicts else "NOT met: " + "; ".join(verdicts)))

if __name__ == "__main__":
    main()
