#!/usr/bin/env bash
# Paired sensitivity on the --quality high preset: run a variant (extra simulate flags) for a
# few frozen-phonon configurations — the same seed, so the same random draws as the base run
# of examples/run_high.sh — and compare it with the base on those configurations (jackknife
# s.e. of the difference, examples/paired.rs). Restartable: finished shards are skipped.
# usage: bash examples/sensitivity_high.sh BASE OUT "FLAGS" [CONFIG...]   (default configs 0 1 2;
#        ≈ 8 min per configuration on 2 cores, 1536² grid; 2048²: ≈ 15 min)
# e.g.   bash examples/sensitivity_high.sh high x1.5 "--displacement-angstrom Cs=0.3354,Pb=0.2372,Br=0.3354"
#        bash examples/sensitivity_high.sh high sc7 "--supercell-uc 7" 0 1 2   (5x5 -> 7x7 u.c., 2160²
#        grid, ≈ 15 min per configuration: the cells within ±2 of the probe's cell carry the same
#        displacements in both, so the difference is paired)
# Settings that act after the propagation need no run:
#        target/release/examples/paired --base BASE/shard* --variant BASE/shard* --energy-spread-off
#        (or --source-size-angstrom X, --blur-angstrom X)
set -euo pipefail
base=${1:?usage: sensitivity_high.sh BASE OUT "FLAGS" [CONFIG...]}
out=${2:?usage: sensitivity_high.sh BASE OUT "FLAGS" [CONFIG...]}
flags=${3:?usage: sensitivity_high.sh BASE OUT "FLAGS" [CONFIG...]}
shift 3
configs=${*:-0 1 2}
bin=target/release/qdscope
cargo build --release --bins --example paired
mkdir -p "$out"
for i in $configs; do
  d=$out/shard$(printf %02d "$i")
  [ -f "$d/partial.json" ] && continue
  start=$(date +%s)
  # shellcheck disable=SC2086
  nice -n 19 "$bin" simulate --quality high $flags --shard "$i/20" -o "$d" --quiet
  echo "shard $i $(( $(date +%s) - start )) s" >> "$out/log"
done
target/release/examples/paired --base "$base"/shard* --variant "$out"/shard*
