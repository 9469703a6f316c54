"""abTEM side of examples/bench_simulate.rs: the same CsPbBr3 [001] crystal,
parameters and sampling (see the Rust example's doc), Kirkland
parametrisation with infinite projection, atoms in the middle of their a/2
slices, exit planes after every unit cell. Writes OUT/abtem_<method>.npy
(thickness 0..15 x 24 x 24, float64) and OUT/abtem_<method>.json (seconds).

usage: python bench_simulate.py OUT [multislice|prism2]
"""
import json
import sys
import time

import abtem
import ase
import numpy as np

out = sys.argv[1]
method = sys.argv[2] if len(sys.argv) > 2 else "multislice"
a, nsc, n = 5.87, 3, 768
# abTEM 1.0.11's S-matrix fails with several exit planes: PRISM runs 4 u.c.
# with the exit plane only.
nt = 4 if method == "prism2" else 15
cell = ase.Atoms(
    "CsPbBr3",
    scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)],
    cell=[a, a, a],
    pbc=True,
)
atoms = cell * (nsc, nsc, nt)
atoms.positions[:, 2] += a / 4  # each atomic plane in the middle of its slice
pot = abtem.Potential(
    atoms,
    gpts=(n, n),
    slice_thickness=a / 2,
    parametrization="kirkland",
    projection="infinite",
    exit_planes=None if method == "prism2" else 2,
)
scan = abtem.GridScan(start=(0, 0), end=(a, a), gpts=(24, 24), endpoint=False)
det = abtem.AnnularDetector(inner=35, outer=190)
t0 = time.time()
if method == "multislice":
    # Hard aperture like qdscope (abTEM softens the edge by default).
    probe = abtem.Probe(energy=300e3, semiangle_cutoff=18, soft=False)
    m = probe.scan(pot, scan=scan, detectors=det).compute(progress_bar=False)
else:
    s = abtem.SMatrix(potential=pot, energy=300e3, semiangle_cutoff=18, interpolation=2)
    # Hard aperture like qdscope (the default CTF softens the edge).
    ctf = abtem.CTF(semiangle_cutoff=18, soft=False)
    m = s.scan(scan=scan, detectors=det, ctf=ctf).compute(progress_bar=False)
sec = time.time() - t0
arr = np.asarray(m.array, dtype=np.float64)
np.save(f"{out}/abtem_{method}.npy", arr)
with open(f"{out}/abtem_{method}.json", "w") as f:
    json.dump({"seconds": sec, "abtem": abtem.__version__, "shape": list(arr.shape)}, f)
print(f"abTEM {method}: {sec:.1f} s, images {arr.shape}")
