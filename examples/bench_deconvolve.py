"""Peer side of the deconvolution/denoising benchmark.

scikit-image `restoration.richardson_lucy` (non-blind, 10 iterations,
clip=False) and a NumPy/SciPy implementation of the Du (2015) filter written
from docs/methods/denoise.md (the same algorithm as qdscope's, in its
reference structure: ~7 FFTs and a 5×5 median per iteration), on the image
and PSF the Rust example wrote. Prints one markdown table.

Usage: python bench_deconvolve.py OUT_DIR
"""
import json
import sys
import time

import numpy as np
from scipy import ndimage
from skimage import restoration

out = sys.argv[1] if len(sys.argv) > 1 else "target/bench"
img = np.load(f"{out}/deconv_input.npy").astype(np.float64)
psf = np.load(f"{out}/deconv_psf.npy").astype(np.float64)
ours = json.load(open(f"{out}/bench_deconvolve.json"))


def du_filter(y, iters=50, c=0.3, delta=0.10, cb=0.3, nb=2):
    n = y.shape[0]
    ctr = n // 2
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(yy - ctr, xx - ctr)
    H = np.exp(-r**2 / (2 * (c * n) ** 2))
    B = 1.0 / (1.0 + 0.414 * (r / (cb * n)) ** (2 * nb))
    c0 = (n + 1) / 2
    rho = np.hypot(yy - c0, xx - c0)
    W = 1.0 / (1.0 + 0.414 * (rho / (0.4 * n)) ** 24)
    ring = np.floor(r).astype(int)
    nr = n // 2 - 1

    def noise_floor(d):
        M = ndimage.median_filter(np.abs(np.fft.fftshift(np.fft.fft2(W * d))), size=5, mode="constant")
        A = M.copy()
        for k in range(nr):
            sel = ring == k
            vals = M[sel]
            if vals.sum() == 0:
                continue
            m = (1 + delta) * vals.mean()
            for _ in range(100):
                nm = (1 + delta) * np.minimum(vals, m).mean()
                ch = abs(nm - m) / m
                m = nm
                if ch <= delta:
                    break
            A[sel] = m
        return A

    x = y.copy()
    for _ in range(iters):
        X = np.fft.fftshift(np.fft.fft2(x))
        L = np.real(np.fft.ifft2(np.fft.ifftshift(H * X)))
        D = x - L
        A = noise_floor(D)
        Y = np.fft.fftshift(np.fft.fft2(D))
        P = np.abs(Y) ** 2
        G = np.where(P > 0, np.maximum(0, (P - A**2) / np.where(P > 0, P, 1)), 0)
        x = L + np.real(np.fft.ifft2(np.fft.ifftshift(G * Y * B)))
    return x


def timed(f, reps):
    best = float("inf")
    res = None
    for _ in range(reps):
        t = time.perf_counter()
        res = f()
        best = min(best, time.perf_counter() - t)
    return best * 1e3, res


t_rl, rl = timed(lambda: restoration.richardson_lucy(img, psf, num_iter=10, clip=False), 2)
t_dn, dn = timed(lambda: du_filter(img), 1)
ours_rl = np.load(f"{out}/deconv_rl_qdscope.npy")
ours_dn = np.load(f"{out}/denoise_qdscope.npy")
# skimage pads/convolves with 'same' zero boundaries; qdscope is circular like MATLAB:
# compare away from the borders.
m = psf.shape[0]
inner = (slice(2 * m, -2 * m), slice(2 * m, -2 * m))
rl_rel = np.sqrt(np.mean((ours_rl[inner] - rl[inner]) ** 2)) / np.sqrt(np.mean(rl[inner] ** 2))
dn_rel = np.sqrt(np.mean((ours_dn - dn) ** 2)) / np.sqrt(np.mean(dn**2))
print("| what (1024², float32 in) | qdscope (ms) | peer (ms) | speed-up | agreement (relative RMS) |")
print("|---|---|---|---|---|")
print(f"| Richardson–Lucy, 10 it, 41×41 PSF | {ours['rl']:.0f} | {t_rl:.0f} (skimage) | {t_rl / ours['rl']:.1f}x | {rl_rel:.1e} (interior) |")
print(f"| blind RL (deconvblind), 10 it | {ours['blind']:.0f} | — | {ours['blind'] / ours['rl']:.2f}x the non-blind cost | — |")
print(f"| Du denoise, 50 it | {ours['denoise']:.0f} | {t_dn:.0f} (NumPy, same algorithm) | {t_dn / ours['denoise']:.1f}x | {dn_rel:.1e} |")
