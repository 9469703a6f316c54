#!/usr/bin/env bash
# What qdscope reads from public microscope files vs RosettaSciIO (the
# reference reader): shape, stored dtype, values and pixel calibration of
# every signal of the reader test files shipped in the HyperSpy 1.6.5 sdist
# (DM3/DM4, Velox/Berkeley/Prismatic EMD, TIA EMI/SER, TIFF).
# The files are third-party (GPL): they are downloaded into a temp dir and
# used as test inputs only, never copied into the repository.
# Installs RosettaSciIO in a throwaway venv under target/; the crate never
# needs Python. Prints a Markdown table and the counts.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/conformance-venv
if ! "$venv/bin/python" -c "import rsciio, h5py, tifffile, sparse" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q rosettasciio h5py numpy tifffile sparse pint
fi
cargo build --release --quiet --bin qdscope
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$venv/bin/pip" download -q --no-deps hyperspy==1.6.5 -d "$tmp"
tar xzf "$tmp"/hyperspy-1.6.5.tar.gz -C "$tmp"
src="$tmp/hyperspy-1.6.5/hyperspy/tests/io"
data="$tmp/data"
mkdir -p "$data"
for d in dm3_1D_data dm3_2D_data dm3_3D_data dm3_locale dm4_1D_data dm4_2D_data dm4_3D_data \
  emd_files FEI_new FEI_old tiff_files; do
  cp -r "$src/$d" "$data/"
done
(cd "$data/emd_files" && unzip -q -o fei_emd_files.zip)
tar xzf "$data/FEI_old/non_float_meta_value_zeroed.tar.gz" -C "$data/FEI_old"
"$venv/bin/python" examples/conformance_rsciio.py "$data" target/release/qdscope 2>/dev/null
