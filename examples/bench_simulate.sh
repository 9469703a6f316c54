#!/usr/bin/env bash
# qdscope multislice / PRISM vs abTEM on the same crystal, parameters and sampling.
# Installs abTEM in a throwaway venv under target/; the crate never needs Python.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench-simulate
venv=target/abtem-venv
mkdir -p "$out"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q abtem
fi
# PRISM at f = 2 is compared at 4 u.c. only: abTEM 1.0.11 fails on an S-matrix with several
# exit planes (dask broadcast error).
for m in ${METHODS:-multislice prism2}; do
  cargo run --release --quiet --example bench_simulate -- run "$out" "$m"
  "$venv/bin/python" examples/bench_simulate.py "$out" "$m"
done
cargo run --release --quiet --example bench_simulate -- compare "$out"
