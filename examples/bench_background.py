"""Peer side of the background benchmark: scikit-image opening with disk(R)
plus gaussian(sigma=R) on the same image qdscope used; prints the table.

Usage: python bench_background.py OUT_DIR   (after bench_background.rs ran)
"""
import json
import sys
import time

import numpy as np
from skimage import filters, morphology

out = sys.argv[1] if len(sys.argv) > 1 else "target/bench"
img = np.load(f"{out}/bench_input.npy").astype(np.float32)
ours = json.load(open(f"{out}/bench_background.json"))
rows = []
for r in (5, 10, 20, 50):
    fp = morphology.disk(r)
    best = float("inf")
    reps = 3 if r < 20 else 1
    for _ in range(reps):
        t0 = time.perf_counter()
        opened = morphology.opening(img, footprint=fp)
        bg = filters.gaussian(opened, sigma=r, preserve_range=True)
        best = min(best, time.perf_counter() - t0)
    exact = np.load(f"{out}/open_exact_{r}.npy")
    agree = float(np.max(np.abs(exact - opened)))
    q = ours[str(r)]
    rows.append((r, q, best * 1e3, agree))
q5 = rows[0][1]
print("| R (px) | qdscope (ms) | scikit-image (ms) | speed-up | qdscope(R)/qdscope(5) | max abs(open_exact - skimage open) |")
print("|---|---|---|---|---|---|")
for r, q, s, a in rows:
    print(f"| {r} | {q:.1f} | {s:.1f} | {s / q:.0f}x | {q / q5:.2f} | {a:g} |")
