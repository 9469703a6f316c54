//! PRISM (simulation spec §9; Ophus 2017): the S-matrix of the plane waves
//! inside the probe aperture whose frequency indices are multiples of the
//! interpolation factor f, propagated once per frozen-phonon configuration
//! with the multislice operators of [`super::propagate`]; every probe is
//! the coefficient sum `ψ = Σ_j c_j S_j`, `c_j = A(k_j) e^{−iχ(k_j)}
//! e^{−2πi k_j·r_p}`, evaluated on the (L/f)² window centred on the probe
//! and detected on that window's f-times coarser Fourier grid.
//!
//! The S-matrix is kept for one unit cell at a time: after every unit cell
//! all probes and defocus nodes are evaluated (defocus only changes c_j),
//! then the plane waves propagate on. f = 1 is multislice by linearity
//! (the window is the whole cell); f > 1 assumes the spread probe fits in
//! the window, which the caller validates against f = 1.
//!
//! Written here rather than taken from a crate: no maintained Rust crate
//! implements PRISM.

use num_complex::Complex;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::multislice::propagate::{Engine, Grid};
use crate::multislice::series::{
    configuration, defocus_nodes, in_shard, positions, Item, Partial, SimParams,
};
use crate::optics::{chi, focal_spread_angstrom, Microscope};

/// FFT-order pixel indices of the plane-wave basis: inside the aperture,
/// both signed frequency indices multiples of `f`.
#[must_use]
pub fn basis(e: &Engine<f32>, m: &Microscope, f: usize) -> Vec<usize> {
    let n = e.grid.n;
    let kap = m.aperture_inv_angstrom();
    let signed = |i: usize| {
        if i <= n / 2 {
            i as i64
        } else {
            i as i64 - n as i64
        }
    };
    (0..n * n)
        .filter(|&i| {
            e.k[i] <= kap
                && signed(i / n).rem_euclid(f as i64) == 0
                && signed(i % n).rem_euclid(f as i64) == 0
        })
        .collect()
}

/// Bytes of the S-matrix of `p` with interpolation `f`.
#[must_use]
pub fn smatrix_bytes(n_basis: usize, grid_n: usize) -> f64 {
    n_basis as f64 * (grid_n * grid_n) as f64 * 8.0
}

/// Check f ∈ {1, 2, 4, 8}, N divisible by f, and the S-matrix fits in memory.
///
/// # Errors
/// Another f, a grid not divisible by f, an S-matrix larger than the
/// available memory (said before starting).
pub fn validate(p: &SimParams, f: usize, n_basis: usize) -> Result<()> {
    if ![1, 2, 4, 8].contains(&f) {
        return Err(Error::param(
            "--interpolation",
            format!("must be 1, 2, 4 or 8, got {f}"),
        ));
    }
    if !p.grid_n.is_multiple_of(f) {
        return Err(Error::param(
            "--interpolation",
            format!("the {}² grid is not divisible by f = {f}", p.grid_n),
        ));
    }
    let need = smatrix_bytes(n_basis, p.grid_n);
    if let Some(avail) = available_memory_bytes() {
        if need > 0.8 * avail {
            return Err(Error::param(
                "--method prism",
                format!(
                    "the S-matrix needs {:.1} GB ({n_basis} plane waves × {}² × 8 B) but {:.1} GB are available; raise --interpolation or use --method multislice",
                    need / 1e9,
                    p.grid_n,
                    avail / 1e9
                ),
            ));
        }
    }
    Ok(())
}

/// `MemAvailable` of /proc/meminfo (Linux), bytes.
pub(crate) fn available_memory_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// Copy the `nw × nw` window starting at (oy, ox) of the periodic `n × n`
/// plane `src`, multiplied by `c`, onto `dst` (accumulating).
fn add_window(
    dst: &mut [Complex<f32>],
    src: &[Complex<f32>],
    n: usize,
    nw: usize,
    o: (usize, usize),
    c: Complex<f32>,
) {
    for r in 0..nw {
        let y = (o.0 + r) % n;
        let row = &src[y * n..(y + 1) * n];
        let d = &mut dst[r * nw..(r + 1) * nw];
        let first = (n - o.1).min(nw);
        for (a, b) in d[..first].iter_mut().zip(&row[o.1..o.1 + first]) {
            *a += c * b;
        }
        for (a, b) in d[first..].iter_mut().zip(&row[..nw - first]) {
            *a += c * b;
        }
    }
}

/// Run the configurations of shard `i` of `n` (a contiguous block of
/// configurations, all defocus nodes of a configuration together) with
/// interpolation `f`; `tick` is called once per plane wave per unit cell.
///
/// # Errors
/// As [`super::series::engine`] and [`validate`].
pub fn run_shard(
    p: &SimParams,
    f: usize,
    shard: (usize, usize),
    tick: &(dyn Fn() + Sync),
) -> Result<Partial> {
    let t0 = std::time::Instant::now();
    let e = super::series::engine(p)?;
    let m = p.microscope;
    let idx = basis(&e, &m, f);
    validate(p, f, idx.len())?;
    let n = p.grid_n;
    let nw = n / f;
    let ew = Engine::<f32>::new(
        Grid {
            n: nw,
            l_angstrom: e.grid.l_angstrom / f as f64,
        },
        m.high_tension_kv,
        p.lattice_angstrom / 2.0,
    )?;
    let masks = ew.detector_masks(&p.detectors)?;
    let nodes = defocus_nodes(p.defocus_nodes)?;
    let sigma_df = focal_spread_angstrom(&m);
    let (comp, _) = positions(p.probe_per_cell, p.symmetry_wedge);
    let step = p.lattice_angstrom / p.probe_per_cell as f64;
    let nt = p.max_thickness_uc;
    let dx = e.grid.dx();
    // |c_j| making the window probe unit-norm: ψ = Σ c_j e^{2πik·r}/N² has
    // Σ_window |ψ|² = N_b |c|² / (N² f²).
    let cabs = (n * f) as f64 / (idx.len() as f64).sqrt();
    let mut done = Vec::new();
    let mut min_i = f64::INFINITY;
    for c in (0..p.phonons).filter(|&c| in_shard(c, p.phonons, shard)) {
        let slices = configuration(p, &e, c)?;
        let mut waves: Vec<Vec<Complex<f32>>> = idx
            .par_iter()
            .map_init(
                || e.scratch(),
                |sc, &j| {
                    let mut w = vec![Complex::new(0.0f32, 0.0); n * n];
                    w[j] = Complex::new(1.0, 0.0);
                    e.plane.inverse(&mut w, sc);
                    w
                },
            )
            .collect();
        // rec[z][q][d][t]
        let mut rec = vec![vec![vec![vec![0.0; nt]; masks.len()]; comp.len()]; nodes.len()];
        let mut last_norm = vec![0.0f64; comp.len()];
        for t in 0..nt {
            let refs: Vec<&[Complex<f32>]> =
                slices[2 * t..2 * t + 2].iter().map(Vec::as_slice).collect();
            waves.par_iter_mut().for_each_init(
                || e.scratch(),
                |sc, w| {
                    e.propagate(w, &refs, sc, |_, _| {});
                    tick();
                },
            );
            let res: Vec<(Vec<Vec<f64>>, f64)> = comp
                .par_iter()
                .map_init(
                    || (ew.scratch(), vec![Complex::new(0.0f32, 0.0); nw * nw]),
                    |(sc, psi), &(i, jj)| {
                        let pos = [i as f64 * step, jj as f64 * step];
                        let centre = |v: f64| {
                            ((v / dx).round() as i64 - (nw / 2) as i64).rem_euclid(n as i64)
                                as usize
                        };
                        let o = (centre(pos[0]), centre(pos[1]));
                        let mut out = vec![vec![0.0; masks.len()]; nodes.len()];
                        let mut norm = 0.0;
                        for (z, &(zn, _)) in nodes.iter().enumerate() {
                            let mm = Microscope {
                                defocus_angstrom: m.defocus_angstrom + sigma_df * zn,
                                ..m
                            };
                            psi.iter_mut().for_each(|v| *v = Complex::new(0.0, 0.0));
                            for (&j, w) in idx.iter().zip(&waves) {
                                let (ky, kx) = e.kyx[j];
                                let ph = -chi(&mm, e.k[j])
                                    - std::f64::consts::TAU * (ky * pos[0] + kx * pos[1]);
                                let cj = Complex::new(
                                    (cabs * ph.cos()) as f32,
                                    (cabs * ph.sin()) as f32,
                                );
                                add_window(psi, w, n, nw, o, cj);
                            }
                            let nz: f64 = psi.iter().map(|v| f64::from(v.norm_sqr())).sum();
                            norm = if z == 0 { nz } else { norm.min(nz) };
                            ew.plane.forward(psi, sc);
                            for (d, mask) in masks.iter().enumerate() {
                                out[z][d] = ew.detected(psi, mask);
                            }
                        }
                        (out, norm)
                    },
                )
                .collect();
            for (q, (out, norm)) in res.into_iter().enumerate() {
                for (z, od) in out.into_iter().enumerate() {
                    for (d, v) in od.into_iter().enumerate() {
                        rec[z][q][d][t] = v;
                    }
                }
                last_norm[q] = norm;
            }
        }
        min_i = last_norm.iter().copied().fold(min_i, f64::min);
        for (z, &(_, wz)) in nodes.iter().enumerate() {
            let w = wz / p.phonons as f64;
            let recs: Vec<&Vec<Vec<f64>>> = rec[z].iter().collect();
            done.push(Item::weighted(c, z, w, (masks.len(), nt), &recs));
        }
    }
    Ok(Partial {
        params: p.clone(),
        items: done,
        min_intensity: min_i,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
