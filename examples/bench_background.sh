#!/usr/bin/env bash
# Background (opening + Gaussian) vs scikit-image on the same 1024² image.
# Installs the peer in a throwaway venv under target/; the crate never needs Python.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
venv=target/bench-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q numpy scikit-image
fi
cargo run --release --quiet --example bench_background -- "$out"
"$venv/bin/python" examples/bench_background.py "$out"
