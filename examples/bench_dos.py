"""Peer side of the VDOS benchmark: the same estimator as `qdscope phonon
dos --rigid none` (velocity route, rectangular window, non-overlapping
Welch segments, modes per bin) in NumPy, reading the same CP2K XYZ files
with NumPy's C parser (`np.fromstring`). Prints one markdown row and the
agreement with qdscope's dos.csv.

Usage: python bench_dos.py OUT_DIR STEM N_ATOMS SEGMENT QDSCOPE_SECONDS QDSCOPE_PEAK_KB
"""
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
out, stem, n_atoms, seg, t_ours, peak_ours = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
MASS = {"Cs": 132.905452, "Pb": 207.2, "Br": 79.904}
AU_V = 0.529177210903 / 0.0241888433
KT_EV = 8.617333262e-5 * 300.0


def read_xyz(path):
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    per = n_atoms + 2
    nfr = len(lines) // per
    species = [l[:3].strip().decode() for l in lines[2:2 + n_atoms]]
    body = b"\n".join(l[3:] for fr in range(nfr) for l in lines[fr * per + 2: fr * per + 2 + n_atoms])
    arr = np.fromstring(body.decode(), sep=" ").reshape(nfr, n_atoms, 3)
    return species, arr


t0 = time.perf_counter()
species, v = read_xyz(f"{out}/{stem}-vel-1.xyz")
_, _p = read_xyz(f"{out}/{stem}-pos-1.xyz")  # qdscope reads both files too
t_read = time.perf_counter() - t0
t1 = time.perf_counter()
v = v * AU_V
m = np.array([MASS[s] for s in species])
nfr = v.shape[0]
L = seg if nfr >= seg else nfr
nseg = nfr // L
g = np.zeros(L // 2 + 1)
for s in range(nseg):
    x = v[s * L:(s + 1) * L]
    x = x - x.mean(axis=0)
    X = np.fft.rfft(x, axis=0)
    P = 2.0 * np.abs(X) ** 2 / L**2
    P[0] = 0.0
    if L % 2 == 0:
        P[-1] /= 2.0
    g += np.einsum("kia,i->k", P, m) * 103.6427 / KT_EV
g /= nseg
t_fft = time.perf_counter() - t1
t_numpy = t_read + t_fft
ours = np.loadtxt(f"{out}/dos_{stem}/dos.csv", delimiter=",", skiprows=1, usecols=3)
agree = np.max(np.abs(ours - g)) / np.max(g)
print(f"| {n_atoms} × {nfr} | {t_ours:.1f} | {peak_ours} | {t_numpy:.1f} ({t_read:.1f} read + {t_fft:.1f} FFT) | {t_numpy / t_ours:.1f}x | {agree:.1e} |")
