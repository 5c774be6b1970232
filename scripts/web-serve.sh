#!/usr/bin/env bash
# Install what is missing, build, and serve the web app on http://127.0.0.1:8080/
# (COOP/COEP and the Content-Security-Policy come from Trunk.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# wasm SIMD (every current browser has it): the scan kernels vectorize as they do natively.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:--C target-feature=+simd128}"
WEB_SETUP_SKIP_BROWSER=1 scripts/web-setup.sh
cargo fetch --locked >/dev/null
exec trunk serve "$@"
