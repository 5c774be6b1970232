#!/usr/bin/env bash
# Prints the path of the llama-cpp-python sdist from PyPI (the version in
# scripts/llama-cpp-python.version), which vendors llama.cpp: the acceptance check
# (scripts/llama-cpp-check.sh) unpacks convert_hf_to_gguf.py from it, and
# bench/llama_cpp_dequant.py builds ggml from it. Downloaded once into
# .cache/llama-cpp-python-sdist/ (git-ignored) and shared by both.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(cat scripts/llama-cpp-python.version)
dir=$PWD/.cache/llama-cpp-python-sdist
tarball=$dir/llama_cpp_python-$version.tar.gz
if [ ! -f "$tarball" ]; then
  mkdir -p "$dir"
  tmp=$(mktemp -d "$dir/tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # Only this package from source: its build dependencies (for pip's metadata step) come
  # as wheels. Nothing is built. Downloaded beside the final name and renamed, so an
  # interrupted download is never reused.
  python3 -m pip download -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
    -d "$tmp" "llama-cpp-python==$version" >&2
  mv "$tmp/$(basename "$tarball")" "$tarball"
fi
echo "$tarball"
