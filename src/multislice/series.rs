//! Thickness series of CsPbBr3 \[001\] (docs/methods/multislice.md, docs/methods/optics.md): frozen
//! phonon configurations × Gauss–Hermite defocus nodes, every probe
//! position of one unit cell (the 4mm wedge about the Cs column by
//! default), the ADF fraction recorded after every unit cell, so one
//! propagation gives the whole series. Work items (configuration, node)
//! can be split into shards and summed by [`merge`](super::merge::merge).
//!
//! Crystal (A-site origin): Cs (0,0,0), Pb (½,½,½), Br (½,½,0), (½,0,½),
//! (0,½,½); slice 1 at z = 0 (Cs, Br(½,½)), slice 2 at z = ½ (Pb,
//! Br(½,0), Br(0,½)). Frozen phonons: independent Gaussian x/y
//! displacements per atom (per-axis RMS per element), atoms keep their
//! nominal slice; drawn by [`displace`](super::displace) from random
//! streams seeded per (seed, configuration, layer, slice, cell offset), so
//! results do not depend on threads or shards.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{check_size, Error, Result};
use crate::fft::FftFloat;
use crate::multislice::displace::layer_atoms;
use crate::multislice::propagate::{Engine, Grid};
use crate::optics::{focal_spread_angstrom, Microscope, GAUSS_HERMITE_5};
use crate::structure::Element;

/// Largest wave grid per side (a complex f32 plane of 16384² is 2 GiB).
pub const MAX_GRID_N: usize = 16384;

/// Everything a series run depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimParams {
    /// Microscope (kV, α, C_c, energy spread FWHM, source FWHM).
    pub microscope: Microscope,
    /// Annular detectors, mrad.
    pub detectors: Vec<(f64, f64)>,
    /// Extra Gaussian blur σ, Å.
    pub blur_angstrom: f64,
    /// Thickest crystal, u.c. (every u.c. up to it is recorded).
    pub max_thickness_uc: usize,
    /// Lattice constant, Å.
    pub lattice_angstrom: f64,
    /// Supercell, u.c. per side.
    pub supercell_uc: usize,
    /// Grid pixels per side of the supercell.
    pub grid_n: usize,
    /// Probe positions per unit-cell side.
    pub probe_per_cell: usize,
    /// Compute the 4mm wedge only and fill by symmetry.
    pub symmetry_wedge: bool,
    /// Frozen-phonon configurations.
    pub phonons: usize,
    /// Gauss–Hermite defocus nodes (1, 3 or 5).
    pub defocus_nodes: usize,
    /// Per-axis RMS displacement, Å, for Cs, Pb, Br.
    pub displacement_angstrom: [f64; 3],
    /// Seed of the configurations.
    pub seed: u64,
    /// `Some(f)`: PRISM with interpolation factor f; `None`: multislice.
    #[serde(default)]
    pub prism_interpolation: Option<usize>,
    /// Transmission functions computed on an m-times finer grid and
    /// band-limited onto the wave grid ([`Engine::transmission_of`]); 1 in
    /// files written before the option existed.
    #[serde(default = "one")]
    pub potential_oversampling: usize,
    /// Complex f64 waves and transmissions (multislice only); single
    /// precision (complex f32) by default and in older files.
    #[serde(default)]
    pub double_precision: bool,
    /// How the displacements were drawn: [`RNG_SCHEME`] for every new run;
    /// 1 in files written before 2026-11-30 (one stream per configuration,
    /// drawn in order over the whole supercell — such shards still merge
    /// and re-evaluate, but are no longer computed; qdscope at git commit
    /// 9f418a2 reproduces them).
    #[serde(default = "one_u32")]
    pub rng_scheme: u32,
}

/// The random-stream scheme of new runs ([`displace`](super::displace)).
pub const RNG_SCHEME: u32 = 2;

fn one() -> usize {
    1
}

fn one_u32() -> u32 {
    1
}

/// Detector fractions of one work item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Frozen-phonon configuration.
    pub config: usize,
    /// Defocus node.
    pub node: usize,
    /// Weight (Gauss–Hermite weight / configurations).
    pub weight: f64,
    /// `sums[d][t][q]`: weight × fraction for detector d, thickness t+1
    /// u.c., computed position q.
    pub sums: Vec<Vec<Vec<f64>>>,
}

impl Item {
    /// The item of (`config`, `node`) from per-position records
    /// `recs[q][d][t]` (detector fractions), each multiplied by `weight`
    /// and stored as `sums[d][t][q]`.
    pub(crate) fn weighted(
        config: usize,
        node: usize,
        weight: f64,
        (detectors, thicknesses): (usize, usize),
        recs: &[&Vec<Vec<f64>>],
    ) -> Item {
        let mut sums = vec![vec![vec![0.0; recs.len()]; thicknesses]; detectors];
        for (q, rq) in recs.iter().enumerate() {
            for (d, rd) in rq.iter().enumerate() {
                for (t, v) in rd.iter().enumerate() {
                    sums[d][t][q] = weight * v;
                }
            }
        }
        Item {
            config,
            node,
            weight,
            sums,
        }
    }
}

/// The work items of a run or shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    /// The parameters (merge checks they agree).
    pub params: SimParams,
    /// Work items done.
    pub items: Vec<Item>,
    /// Lowest Σ|ψ|² after the last slice over all propagations.
    pub min_intensity: f64,
    /// Wall time of the computing shard(s), s.
    pub seconds: f64,
}

impl Partial {
    /// The frozen-phonon configurations that have items, ascending.
    #[must_use]
    pub fn configurations(&self) -> Vec<usize> {
        let mut c: Vec<usize> = self.items.iter().map(|it| it.config).collect();
        c.sort_unstable();
        c.dedup();
        c
    }

    /// Σ over items of the weighted fractions and Σ weights, summed in
    /// (configuration, node) order so shards merge to the bit-identical
    /// result of one run.
    #[must_use]
    pub fn totals(&self) -> (Vec<Vec<Vec<f64>>>, f64) {
        let mut order: Vec<&Item> = self.items.iter().collect();
        order.sort_by_key(|i| (i.config, i.node));
        let mut sums = order.first().map(|i| i.sums.clone()).unwrap_or_default();
        sums.iter_mut().flatten().flatten().for_each(|v| *v = 0.0);
        let mut weight = 0.0;
        for it in order {
            for (a, b) in sums.iter_mut().flatten().zip(it.sums.iter().flatten()) {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
            }
            weight += it.weight;
        }
        (sums, weight)
    }
}

/// Gauss–Hermite nodes (standard normal z, weight) for 1, 3 or 5 nodes.
///
/// # Errors
/// Another count.
pub fn defocus_nodes(n: usize) -> Result<Vec<(f64, f64)>> {
    Ok(match n {
        1 => vec![(0.0, 1.0)],
        3 => {
            let z = 3f64.sqrt();
            vec![(-z, 1.0 / 6.0), (0.0, 2.0 / 3.0), (z, 1.0 / 6.0)]
        }
        5 => GAUSS_HERMITE_5.to_vec(),
        _ => {
            return Err(Error::param(
                "defocus nodes",
                format!("must be 1, 3 or 5, got {n}"),
            ))
        }
    })
}

/// Computed probe positions (i, j) in units of a/p, and for every one of
/// the p×p positions the index of the computed one it equals by symmetry.
#[must_use]
pub fn positions(p: usize, wedge: bool) -> (Vec<(usize, usize)>, Vec<usize>) {
    if !wedge {
        let all: Vec<(usize, usize)> = (0..p).flat_map(|i| (0..p).map(move |j| (i, j))).collect();
        let map = (0..p * p).collect();
        return (all, map);
    }
    let h = p / 2;
    let mut comp = Vec::new();
    for i in 0..=h {
        for j in 0..=i {
            comp.push((i, j));
        }
    }
    let map = (0..p * p)
        .map(|q| {
            let (i, j) = (q / p, q % p);
            let (a, b) = (i.min(p - i), j.min(p - j));
            let (a, b) = (a.max(b), a.min(b));
            comp.iter().position(|&c| c == (a, b)).unwrap_or(0)
        })
        .collect();
    (comp, map)
}

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
    match super::prism::available_memory_bytes() {
        Some(avail) if need > 0.8 * avail => Err(Error::param(
            "simulate",
            format!(
                "the run needs ≈ {:.1} GB ({} slices of {}², per-thread waves and oversampled potentials) but {:.1} GB are available; use fewer `max_thickness_uc`, a coarser `sampling_angstrom` or a lower `potential_oversampling`",
                need / 1e9,
                2 * p.max_thickness_uc,
                p.grid_n,
                avail / 1e9
            ),
        )),
        _ => Ok(()),
    }
}

/// Run the work items of shard `i` of `n`; `tick` is called once per
/// finished propagation. Multislice shards take contiguous blocks of
/// (configuration, node) pairs ([`in_shard`]); PRISM ([`super::prism`])
/// takes whole configurations.
///
/// # Errors
/// As [`engine`].
///
/// # Examples
/// The whole run as one shard: a one-cell supercell, 2 u.c. thick, one
/// configuration without displacements, the 4mm wedge of probe positions:
/// ```
/// use qdscope::multislice::series::{run_shard, SimParams, RNG_SCHEME};
/// use qdscope::optics::Microscope;
///
/// let p = SimParams {
///     microscope: Microscope::default(), // 300 kV, 18 mrad
///     detectors: vec![(35.0, 190.0)],    // ADF, mrad
///     blur_angstrom: 0.0,
///     max_thickness_uc: 2,
///     lattice_angstrom: 5.87,
///     supercell_uc: 1,
///     grid_n: 180,
///     probe_per_cell: 24,
///     symmetry_wedge: true,
///     phonons: 1,
///     defocus_nodes: 1,
///     displacement_angstrom: [0.0; 3],
///     seed: 1,
///     prism_interpolation: None,
///     potential_oversampling: 1,
///     double_precision: false,
///     rng_scheme: RNG_SCHEME,
/// };
/// let run = run_shard(&p, (0, 1), &|| {})?;
/// // sums[detector][thickness − 1][computed position]: ADF fractions.
/// let (sums, weight) = run.totals();
/// assert_eq!((sums.len(), sums[0].len()), (1, 2));
/// assert!((weight - 1.0).abs() < 1e-12);
/// assert!(sums[0][1].iter().all(|&f| f > 0.0 && f < 1.0));
/// # Ok::<(), qdscope::Error>(())
/// ```
pub fn run_shard(
    p: &SimParams,
    shard: (usize, usize),
    tick: &(dyn Fn() + Sync),
) -> Result<Partial> {
    if let Some(f) = p.prism_interpolation {
        return super::prism::run_shard(p, f, shard, tick);
    }
    if p.double_precision {
        multislice_shard::<f64>(p, shard, tick)
    } else {
        multislice_shard::<f32>(p, shard, tick)
    }
}

/// The multislice items of shard `shard` in precision `T`.
fn multislice_shard<T: FftFloat>(
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

/// Whether work item `k` of `total` belongs to shard `(i, n)`. Shards are
/// contiguous blocks, so the items of one configuration (its defocus
/// nodes) stay together and a shard builds each configuration's slices
/// once.
#[must_use]
pub fn in_shard(k: usize, total: usize, shard: (usize, usize)) -> bool {
    k * shard.1 / total.max(1) == shard.0
}
