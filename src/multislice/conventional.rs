//! Conventional multislice (docs/methods/multislice.md; Kirkland 2010): the
//! engine of a run checked and built from its parameters ([`engine`]), the
//! transmission functions of a frozen-phonon configuration
//! (`configuration`, atoms from [`displace`](super::displace)), and the
//! work items of a shard, each probe position propagated through the whole
//! crystal with the ADF fractions recorded after every unit cell. PRISM
//! ([`prism`](super::prism)) builds on the same engine and configurations.

use rayon::prelude::*;

use crate::error::{check_size, Error, Result};
use crate::fft::FftFloat;
use crate::multislice::displace::layer_atoms;
use crate::multislice::params::{SimParams, MAX_GRID_N, RNG_SCHEME};
use crate::multislice::propagate::{Engine, Grid};
use crate::multislice::work::{defocus_nodes, in_shard, positions, Item, Partial};
use crate::optics::focal_spread_angstrom;
use crate::structure::Element;

/// The 2·n slices of configuration `k` as transmission functions.
///
/// # Errors
/// A transmission function that cannot be built.
pub(crate) fn configuration<T: FftFloat>(
    p: &SimParams,
    e: &Engine<T>,
    k: usize,
) -> Result<Vec<Vec<num_complex::Complex<T>>>> {
    let mut layers = Vec::new();
    for t in 0..p.max_thickness_uc {
        for s in 0..2 {
            layers.push(layer_atoms(p, k, t, s));
        }
    }
    // Identical layers (a static crystal repeats every unit cell) are
    // computed once.
    let mut unique: Vec<&Vec<(Element, [f64; 2])>> = Vec::new();
    let which: Vec<usize> = layers
        .iter()
        .map(|l| {
            unique.iter().position(|u| *u == l).unwrap_or_else(|| {
                unique.push(l);
                unique.len() - 1
            })
        })
        .collect();
    let done: Vec<Vec<num_complex::Complex<T>>> = unique
        .par_iter()
        .map_init(
            || e.scratch(),
            |sc, atoms| e.transmission_of(atoms, p.potential_oversampling, sc),
        )
        .collect::<Result<_>>()?;
    Ok(which.into_iter().map(|k| done[k].clone()).collect())
}

/// Validate parameters and build the engine.
///
/// # Errors
/// Invalid microscope, grid too coarse for the detectors, empty series,
/// negative or non-finite displacements, an older random-stream scheme
/// ([`SimParams::rng_scheme`]).
pub fn engine(p: &SimParams) -> Result<Engine<f32>> {
    engine_in(p)
}

/// [`engine`] in the precision `T`.
///
/// # Errors
/// As [`engine`].
pub fn engine_in<T: FftFloat>(p: &SimParams) -> Result<Engine<T>> {
    let m = p.microscope.validated()?;
    if p.max_thickness_uc == 0 || p.phonons == 0 || p.supercell_uc == 0 || p.probe_per_cell < 2 {
        return Err(Error::param(
            "simulate",
            "thickness, phonon configurations, supercell and probe grid must be ≥ 1 (probe grid ≥ 2)",
        ));
    }
    if p.detectors.is_empty() {
        return Err(Error::param("detectors", "at least one detector"));
    }
    check_size(
        "grid_n",
        p.grid_n as f64,
        MAX_GRID_N as f64,
        "px",
        "grid pixels per side of the supercell",
    )?;
    check_size(
        "probe_per_cell",
        p.probe_per_cell as f64,
        (p.grid_n / p.supercell_uc).max(2) as f64,
        "positions",
        "the grid's pixels per unit cell: finer probe steps add no information",
    )?;
    // Shards of an older scheme merge, but are not computed again.
    if p.rng_scheme != RNG_SCHEME {
        return Err(Error::param(
            "simulate",
            format!(
                "random-stream scheme {} is no longer computed (this version draws scheme {RNG_SCHEME}); such shards can still be merged",
                p.rng_scheme
            ),
        ));
    }
    if let Some(u) = p
        .displacement_angstrom
        .iter()
        .find(|u| !(u.is_finite() && **u >= 0.0))
    {
        return Err(Error::param(
            "displacement_angstrom",
            format!("RMS displacements must be finite and ≥ 0 Å, got {u}"),
        ));
    }
    defocus_nodes(p.defocus_nodes)?;
    check_memory(p)?;
    // The ADF image holds frequencies up to 2α/λ: probe step ≤ λ/(4α).
    let max_step = m.wavelength_angstrom() / (4.0 * m.convergence_mrad * 1e-3);
    let step = p.lattice_angstrom / p.probe_per_cell as f64;
    if step > max_step {
        return Err(Error::param(
            "probe positions",
            format!(
                "{} per cell = {step:.4} Å steps under-sample the ADF image (needs ≤ {max_step:.4} Å, i.e. ≥ {} per cell)",
                p.probe_per_cell,
                (p.lattice_angstrom / max_step).ceil()
            ),
        ));
    }
    let grid = Grid {
        n: p.grid_n,
        l_angstrom: p.lattice_angstrom * p.supercell_uc as f64,
    };
    let e = Engine::new(grid, m.high_tension_kv, p.lattice_angstrom / 2.0)?;
    e.detector_masks(&p.detectors)?;
    Ok(e)
}

/// Memory of a multislice run, bytes: the engine's k-space tables
/// (≈ 48 B per pixel), the 2·T transmission functions of a configuration
/// (complex f32, or f64 with `double_precision`), a wave and its scratch
/// per thread, and per thread the transient planes of
/// [`Engine::transmission_of`] on the m-times finer grid (≈ 3 complex f64
/// planes).
#[must_use]
pub fn multislice_bytes(p: &SimParams, threads: usize) -> f64 {
    let n2 = (p.grid_n * p.grid_n) as f64;
    let m2 = (p.potential_oversampling * p.potential_oversampling) as f64;
    let c = if p.double_precision { 16.0 } else { 8.0 };
    48.0 * n2
        + (2 * p.max_thickness_uc) as f64 * n2 * c
        + threads as f64 * (2.0 * n2 * c + 3.0 * m2 * n2 * 16.0)
}

/// Refuse a run whose memory estimate exceeds 80 % of `MemAvailable`.
fn check_memory(p: &SimParams) -> Result<()> {
    let need = multislice_bytes(p, rayon::current_num_threads());
    match available_memory_bytes() {
        Some(avail) if need > 0.8 * avail => Err(Error::param(
            "simulate",
            format!(
                "the run needs ≈ {:.1} GB ({} slices of {}², per-thread waves and oversampled potentials) but {:.1} GB are available; use fewer --thickness-uc, a coarser --sampling-angstrom or a lower --potential-oversampling",
                need / 1e9,
                2 * p.max_thickness_uc,
                p.grid_n,
                avail / 1e9
            ),
        )),
        _ => Ok(()),
    }
}

/// The multislice items of shard `shard` in precision `T`; `tick` is called
/// once per finished propagation. Shards take contiguous blocks of
/// (configuration, node) pairs ([`in_shard`]).
///
/// # Errors
/// As [`engine`].
pub(crate) fn run_shard<T: FftFloat>(
    p: &SimParams,
    shard: (usize, usize),
    tick: &(dyn Fn() + Sync),
) -> Result<Partial> {
    let t0 = std::time::Instant::now();
    let e = engine_in::<T>(p)?;
    let m = p.microscope;
    let masks = e.transposed_masks(&e.detector_masks(&p.detectors)?);
    let nodes = defocus_nodes(p.defocus_nodes)?;
    let sigma_df = focal_spread_angstrom(&m);
    let (comp, _) = positions(p.probe_per_cell, p.symmetry_wedge);
    let nt = p.max_thickness_uc;
    let mut done = Vec::new();
    let mut min_i = f64::INFINITY;
    let total = p.phonons * nodes.len();
    let items: Vec<(usize, usize)> = (0..p.phonons)
        .flat_map(|c| (0..nodes.len()).map(move |z| (c, z)))
        .enumerate()
        .filter(|&(k, _)| in_shard(k, total, shard))
        .map(|(_, it)| it)
        .collect();
    let step = p.lattice_angstrom / p.probe_per_cell as f64;
    let mut current: Option<(usize, Vec<Vec<num_complex::Complex<T>>>)> = None;
    for &(c, z) in &items {
        if current.as_ref().is_none_or(|(k, _)| *k != c) {
            current = Some((c, configuration(p, &e, c)?));
        }
        let Some((_, slices)) = current.as_ref() else {
            continue;
        };
        let refs: Vec<&[num_complex::Complex<T>]> = slices.iter().map(Vec::as_slice).collect();
        let (zn, w) = nodes[z];
        let df = m.defocus_angstrom + sigma_df * zn;
        let w = w / p.phonons as f64;
        let res: Vec<(Vec<Vec<f64>>, f64)> = comp
            .par_iter()
            .map_init(
                || e.scratch(),
                |sc, &(i, j)| {
                    let mut psi = e.probe(&m, df, [i as f64 * step, j as f64 * step], sc);
                    let mut rec = vec![vec![0.0; nt]; masks.len()];
                    e.propagate(&mut psi, &refs, sc, |s, spec| {
                        if s % 2 == 1 {
                            for (d, mask) in masks.iter().enumerate() {
                                rec[d][s / 2] = e.detected(spec, mask);
                            }
                        }
                    });
                    let norm: f64 = psi
                        .iter()
                        .map(|v| v.norm_sqr().to_f64().unwrap_or(0.0))
                        .sum();
                    tick();
                    (rec, norm)
                },
            )
            .collect();
        min_i = res.iter().map(|r| r.1).fold(min_i, f64::min);
        let recs: Vec<&Vec<Vec<f64>>> = res.iter().map(|r| &r.0).collect();
        done.push(Item::weighted(c, z, w, (masks.len(), nt), &recs));
    }
    Ok(Partial {
        params: p.clone(),
        items: done,
        min_intensity: min_i,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// `MemAvailable` of /proc/meminfo (Linux), bytes.
pub(crate) fn available_memory_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}
