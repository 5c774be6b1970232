#!/usr/bin/env bash
# Acceptance check of `quantdoc repair` and `quantdoc convert` with the real libraries (see
# scripts/llama-cpp-check.py and docs/repair.md): a bitsandbytes NF4 Llama made here with
# a SentencePiece tokenizer, checked against bitsandbytes' own dequantization and against
# llama.cpp's convert_hf_to_gguf.py.
#
# Installs into .cache/ (git-ignored, reused): a virtualenv with the pinned PyPI packages of
# scripts/llama-cpp-requirements.txt, and convert_hf_to_gguf.py with its gguf-py unpacked
# from the llama-cpp-python sdist on PyPI (fetched by scripts/llama-cpp-sdist.sh). Exits 0
# with "SKIPPED: <reason>" only when PyPI cannot be reached; any other failure exits
# non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_PYTHON=$(cat scripts/llama-cpp-python.version)
cache=$PWD/.cache
venv=$cache/llama-cpp-venv
src=$cache/llama-cpp-python-$LLAMA_CPP_PYTHON
convert=$src/vendor/llama.cpp/convert_hf_to_gguf.py
req=scripts/llama-cpp-requirements.txt
stamp=$(sha256sum "$req" | cut -c1-16)
# Nothing may reach a model hub; the check makes its own model.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM=false PYTHONWARNINGS=ignore

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/llama-cpp-tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# PyPI is reachable when pip can fetch one small pinned wheel.
pypi_or_skip() {
  if ! python3 -m pip download -q --no-deps --no-cache-dir -d "$tmp/probe" tqdm==4.67.1 >/dev/null 2>&1; then
    echo "SKIPPED: PyPI cannot be reached ($1 needs it); the llama.cpp acceptance check did not run"
    exit 0
  fi
}

venv_ready() {
  [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements" 2>/dev/null)" = "$stamp" ] &&
    "$venv/bin/python" -c "import torch, bitsandbytes, transformers, sentencepiece, safetensors" 2>/dev/null
}

if venv_ready; then
  echo "virtualenv: reusing $venv"
else
  pypi_or_skip "the virtualenv"
  start=$SECONDS
  rm -rf "$venv"
  # Built beside the final name and renamed, so an interrupted install is never reused.
  python3 -m venv "$tmp/venv-build"
  "$tmp/venv-build/bin/python" -m pip install -q --no-cache-dir -r "$req"
  echo "$stamp" >"$tmp/venv-build/.requirements"
  mv "$tmp/venv-build" "$venv"
  # A moved virtualenv keeps its old path in its scripts: rewrite it (pip is run as
  # `python -m pip`, so only the interpreter path matters).
  sed -i "s#$tmp/venv-build#$venv#g" "$venv/bin/activate" "$venv/pyvenv.cfg" 2>/dev/null || true
  echo "virtualenv: installed the $(grep -c "^[A-Za-z]" "$req") pinned requirements in $((SECONDS - start)) s"
fi

if [ -f "$convert" ]; then
  echo "convert_hf_to_gguf.py: reusing $src"
else
  pypi_or_skip "the llama-cpp-python $LLAMA_CPP_PYTHON sdist"
  start=$SECONDS
  sdist=$(bash scripts/llama-cpp-sdist.sh)
  lcpp=llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp
  tar -xzf "$sdist" -C "$tmp" \
    "$lcpp/convert_hf_to_gguf.py" "$lcpp/conversion" "$lcpp/gguf-py" "$lcpp/LICENSE"
  rm -rf "$src"
  mv "$tmp/llama_cpp_python-$LLAMA_CPP_PYTHON" "$src"
  echo "convert_hf_to_gguf.py: unpacked from llama-cpp-python $LLAMA_CPP_PYTHON in $((SECONDS - start)) s"
fi

cargo build -q --release -p quantdoc --bin quantdoc
quantdoc=${CARGO_TARGET_DIR:-$PWD/target}/release/quantdoc

start=$SECONDS
"$venv/bin/python" scripts/llama-cpp-check.py --quantdoc "$quantdoc" --convert "$convert" \
  --work "$tmp/work"
echo "llama.cpp acceptance check: $((SECONDS - start)) s"
