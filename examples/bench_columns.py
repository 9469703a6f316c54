"""Peer side of the column-fit benchmark: Atomap's
`Sublattice.refine_atom_positions_using_2d_gaussian` (7-parameter-like 2-D
Gaussian per column with rotation, mask = our fit radius) on the image and
starting positions the Rust example wrote. Prints one markdown table.

Usage: python bench_columns.py OUT_DIR
"""
import json
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
import atomap.api as am  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "target/bench"
img = np.load(f"{out}/columns_image.npy").astype(np.float64)
starts = np.load(f"{out}/columns_starts.npy").astype(np.float64)
truth = np.load(f"{out}/columns_truth.npy").astype(np.float64)
ours = np.load(f"{out}/columns_qdscope.npy").astype(np.float64)
meta = json.load(open(f"{out}/bench_columns.json"))

sub = am.Sublattice(starts, image=img)
sub.find_nearest_neighbors()
t = time.perf_counter()
sub.refine_atom_positions_using_2d_gaussian(mask_radius=meta["radius_px"], show_progressbar=False)
t_atomap = (time.perf_counter() - t) * 1e3
theirs = np.stack([sub.x_position, sub.y_position], axis=1)


def rms_to_truth(p):
    d = np.hypot(p[:, None, 0] - truth[None, :, 0], p[:, None, 1] - truth[None, :, 1])
    return float(np.sqrt(np.mean(d.min(axis=1) ** 2)))


agree = float(np.sqrt(np.mean(np.sum((ours - theirs) ** 2, axis=1))))
n = len(starts)
print(f"| columns | qdscope (ms) | Atomap (ms) | speed-up | position RMS vs truth qdscope / Atomap (px) | qdscope − Atomap RMS (px) |")
print(f"|---|---|---|---|---|---|")
print(
    f"| {n} | {meta['ms']:.0f} | {t_atomap:.0f} | {t_atomap / meta['ms']:.0f}x | "
    f"{rms_to_truth(ours):.4f} / {rms_to_truth(theirs):.4f} | {agree:.4f} |"
)
json.dump({"qdscope_ms": meta["ms"], "atomap_ms": t_atomap, "columns": n}, open(f"{out}/bench_columns_peer.json", "w"))
