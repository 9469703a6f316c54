#!/usr/bin/env bash
# Deconvolution and denoising vs scikit-image / NumPy on the same 1024² image.
# Installs the peers in a throwaway venv under target/; the crate never needs Python.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
venv=target/bench-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q numpy scipy scikit-image
fi
cargo run --release --quiet --example bench_deconvolve -- "$out"
"$venv/bin/python" examples/bench_deconvolve.py "$out"
