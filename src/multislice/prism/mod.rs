//! PRISM (docs/methods/multislice.md; Ophus 2017): the S-matrix of the plane waves
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

mod combine;

use combine::{windows, BasisRow, Frame, Tile};

use crate::error::{Error, Result};
use crate::multislice::conventional::{available_memory_bytes, configuration, engine};
use crate::multislice::params::SimParams;
use crate::multislice::propagate::{Engine, Grid};
use crate::multislice::work::{defocus_nodes, in_shard, positions, Item, Partial};
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

/// Check f ∈ {1, 2, 4, 8}, N divisible by f, single precision, and the
/// S-matrix fits in memory.
///
/// # Errors
/// Another f, a grid not divisible by f, double precision, an S-matrix
/// larger than the available memory (said before starting).
pub fn validate(p: &SimParams, f: usize, n_basis: usize) -> Result<()> {
    if p.double_precision {
        return Err(Error::param(
            "double_precision",
            "applies to `method = multislice` (PRISM runs in single precision)",
        ));
    }
    if ![1, 2, 4, 8].contains(&f) {
        return Err(Error::param(
            "prism_interpolation",
            format!("must be 1, 2, 4 or 8, got {f}"),
        ));
    }
    if !p.grid_n.is_multiple_of(f) {
        return Err(Error::param(
            "prism_interpolation",
            format!("the {}² grid is not divisible by f = {f}", p.grid_n),
        ));
    }
    let need = smatrix_bytes(n_basis, p.grid_n);
    if let Some(avail) = available_memory_bytes() {
        if need > 0.8 * avail {
            return Err(Error::param(
                "method = prism",
                format!(
                    "the S-matrix needs {:.1} GB ({n_basis} plane waves × {}² × 8 B) but {:.1} GB are available; raise `prism_interpolation` or use `method = multislice`",
                    need / 1e9,
                    p.grid_n,
                    avail / 1e9
                ),
            ));
        }
    }
    Ok(())
}

/// The plane wave of FFT-order pixel `j` on the `n × n` grid as the
/// normalised inverse transform of a unit spectrum at `j` gives it,
/// `e^{2πi(j_y y + j_x x)/n} / n²`, from exact integer phases.
fn plane_wave(n: usize, j: usize) -> Vec<Complex<f32>> {
    let tw: Vec<Complex<f64>> = (0..n)
        .map(|k| Complex::from_polar(1.0, std::f64::consts::TAU * k as f64 / n as f64))
        .collect();
    let scale = 1.0 / (n * n) as f64;
    let (jy, jx) = (j / n, j % n);
    let cols: Vec<Complex<f64>> = (0..n).map(|x| tw[jx * x % n] * scale).collect();
    let mut w = Vec::with_capacity(n * n);
    for y in 0..n {
        let r = tw[jy * y % n];
        w.extend(cols.iter().map(|&c| {
            let v = r * c;
            Complex::new(v.re as f32, v.im as f32)
        }));
    }
    w
}

/// The basis grouped by k_y row (FFT-order pixel indices `idx`).
fn basis_rows(e: &Engine<f32>, idx: &[usize]) -> Vec<BasisRow> {
    let n = e.grid.n;
    let mut rows: Vec<(usize, BasisRow)> = Vec::new();
    for (j, &i) in idx.iter().enumerate() {
        let (ky, kx) = e.kyx[i];
        match rows.iter_mut().find(|(iy, _)| *iy == i / n) {
            Some((_, r)) => r.members.push((j, kx)),
            None => rows.push((
                i / n,
                BasisRow {
                    ky,
                    members: vec![(j, kx)],
                },
            )),
        }
    }
    rows.into_iter().map(|(_, r)| r).collect()
}

/// Side (scan positions) of a square tile: at most 8, and the tile's
/// windows (probes × nodes × nw² complex) within 512 MB.
fn tile_side(probes: usize, nodes: usize, nw: usize) -> usize {
    let per_probe = (nodes * nw * nw * 8) as f64;
    let fit = (512e6 / per_probe).sqrt().floor() as usize;
    fit.clamp(1, 8).min(probes.max(1))
}

/// The scan positions `comp` (indices, step Å) grouped into `b × b` tiles;
/// each tile's probes carry their index into `comp` in `order`.
fn tiles(comp: &[(usize, usize)], step: f64, b: usize) -> Vec<(Tile, Vec<usize>)> {
    let mut keys: Vec<(usize, usize)> = comp.iter().map(|&(i, j)| (i / b, j / b)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let members: Vec<usize> = (0..comp.len())
                .filter(|&q| (comp[q].0 / b, comp[q].1 / b) == key)
                .collect();
            let mut is: Vec<usize> = members.iter().map(|&q| comp[q].0).collect();
            let mut js: Vec<usize> = members.iter().map(|&q| comp[q].1).collect();
            is.sort_unstable();
            is.dedup();
            js.sort_unstable();
            js.dedup();
            let probes = members
                .iter()
                .map(|&q| {
                    let u = is.iter().position(|&i| i == comp[q].0).unwrap_or(0);
                    let v = js.iter().position(|&j| j == comp[q].1).unwrap_or(0);
                    (u, v)
                })
                .collect();
            let tile = Tile {
                ys: is.iter().map(|&i| i as f64 * step).collect(),
                xs: js.iter().map(|&j| j as f64 * step).collect(),
                probes,
            };
            (tile, members)
        })
        .collect()
}

/// Detector fractions `[node][detector]` and the smallest window intensity
/// over nodes of every probe (in `comp` order), evaluated tile by tile:
/// windows from [`combine::windows`], then each window's coarse-grid
/// spectrum on the detector masks (transposed layout, `masks`). `wins`
/// holds the windows of the largest tile.
fn evaluate(
    fr: &Frame<'_>,
    ew: &Engine<f32>,
    masks: &[Vec<usize>],
    tiles: &[(Tile, Vec<usize>)],
    probes: usize,
    wins: &mut [Vec<Complex<f32>>],
) -> Vec<(Vec<Vec<f64>>, f64)> {
    let nz = fr.a.len();
    let mut res = vec![(vec![vec![0.0; masks.len()]; nz], f64::INFINITY); probes];
    for (tile, order) in tiles {
        windows(fr, tile, wins);
        let got: Vec<(Vec<f64>, f64)> = wins[..tile.probes.len() * nz]
            .par_iter_mut()
            .map_init(
                || ew.scratch(),
                |sc, psi| {
                    let norm: f64 = psi.iter().map(|v| f64::from(v.norm_sqr())).sum();
                    (ew.detect(psi, sc, masks), norm)
                },
            )
            .collect();
        for (qz, (d, norm)) in got.into_iter().enumerate() {
            let r = &mut res[order[qz / nz]];
            r.0[qz % nz] = d;
            r.1 = r.1.min(norm);
        }
    }
    res
}

/// Run the configurations of shard `i` of `n` (a contiguous block of
/// configurations, all defocus nodes of a configuration together) with
/// interpolation `f`; `tick` is called once per plane wave per unit cell.
///
/// # Errors
/// As [`engine`] and [`validate`].
pub fn run_shard(
    p: &SimParams,
    f: usize,
    shard: (usize, usize),
    tick: &(dyn Fn() + Sync),
) -> Result<Partial> {
    let t0 = std::time::Instant::now();
    let e = engine(p)?;
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
    let masks = ew.transposed_masks(&ew.detector_masks(&p.detectors)?);
    let nodes = defocus_nodes(p.defocus_nodes)?;
    let sigma_df = focal_spread_angstrom(&m);
    let (comp, _) = positions(p.probe_per_cell, p.symmetry_wedge);
    let step = p.lattice_angstrom / p.probe_per_cell as f64;
    let nt = p.max_thickness_uc;
    let dx = e.grid.dx();
    // |c_j| making the window probe unit-norm: ψ = Σ c_j e^{2πik·r}/N² has
    // Σ_window |ψ|² = N_b |c|² / (N² f²).
    let cabs = (n * f) as f64 / (idx.len() as f64).sqrt();
    let rows = basis_rows(&e, &idx);
    // a_{j,z} = |c| e^{−iχ_z(k_j)}.
    let a: Vec<Vec<Complex<f64>>> = nodes
        .iter()
        .map(|&(zn, _)| {
            let mm = Microscope {
                defocus_angstrom: m.defocus_angstrom + sigma_df * zn,
                ..m
            };
            idx.iter()
                .map(|&j| Complex::from_polar(cabs, -chi(&mm, e.k[j])))
                .collect()
        })
        .collect();
    let tiles = tiles(&comp, step, tile_side(comp.len(), nodes.len(), nw));
    let most = tiles.iter().map(|t| t.0.probes.len()).max().unwrap_or(0);
    let mut wins = vec![vec![Complex::new(0.0, 0.0); nw * nw]; most * nodes.len()];
    let mut done = Vec::new();
    let mut min_i = f64::INFINITY;
    for c in (0..p.phonons).filter(|&c| in_shard(c, p.phonons, shard)) {
        let slices = configuration(p, &e, c)?;
        let mut waves: Vec<Vec<Complex<f32>>> = idx.par_iter().map(|&j| plane_wave(n, j)).collect();
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
            let fr = Frame {
                waves: &waves,
                n,
                nw,
                dx,
                rows: &rows,
                a: &a,
            };
            let res = evaluate(&fr, &ew, &masks, &tiles, comp.len(), &mut wins);
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
