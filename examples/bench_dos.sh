#!/usr/bin/env bash
# Velocity DOS of 1000 atoms × 20 000 steps (and 80 000 for the memory
# check) vs a NumPy implementation of the same estimator. Generates the
# CP2K-format files under target/bench (≈ 2.6 GB and ≈ 10 GB of text).
# Installs NumPy in a throwaway venv under target/; the crate never needs Python.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
venv=target/bench-venv
if ! "$venv/bin/python" -c "import numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q numpy
fi
cargo build --release --quiet --example bench_dos --bin qdscope
echo "| atoms × steps | qdscope (s) | qdscope peak RSS (KB) | NumPy (s) | speed-up | max rel. difference |"
echo "|---|---|---|---|---|---|"
for steps in ${STEPS:-20000 80000}; do
  stem="dos1000x$steps"
  [ -f "$out/$stem-vel-1.xyz" ] || target/release/examples/bench_dos "$out" 1000 "$steps" > /dev/null
  /usr/bin/time -f "%e %M" -o "$out/time_$stem.txt" target/release/qdscope -q phonon dos \
    "$out/$stem-pos-1.xyz" --velocities "$out/$stem-vel-1.xyz" -o "$out/dos_$stem" \
    --temperature-k 300 --rigid none --segment-frames 2048 > /dev/null
  read -r t_ours peak < "$out/time_$stem.txt"
  if [ "$steps" -le 20000 ]; then
    "$venv/bin/python" examples/bench_dos.py "$out" "$stem" 1000 2048 "$t_ours" "$peak"
  else
    echo "| 1000 × $steps | $t_ours | $peak | (not run: needs ≈ 4 GB of arrays) | | |"
  fi
done
