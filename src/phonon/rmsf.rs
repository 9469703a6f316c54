//! Root-mean-square fluctuation (SI eq. 9; docs/methods/phonon.md):
//! `ρ_i = √⟨|r_i(t) − ⟨r_i⟩|²⟩_t` after rigid-body removal (without it RMSF
//! is meaningless), streamed with Welford's running mean and sum of squares.
//! Reported per atom, per element and per element × layer.
//!
//! Layer (depth below the outer CsBr plane, in unit cells, half-integers):
//! for a cube centred at the origin of the aligned frame,
//! `d_i = (R − max_α |⟨r_iα⟩|)/a` rounded to the nearest ½, with R the
//! largest `max_α |⟨r_iα⟩|` of all atoms (the outer plane) and `a` the
//! lattice constant — docs/methods/phonon.md's `n/2 − max_α|u_α − (n−1)/2|` without
//! needing n. Frozen atoms are excluded from the tables.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::phonon::trajectory::{self, Info, RigidMode, Source};
use crate::stats::mean_sd;

/// RMSF results.
#[derive(Debug, Clone, Serialize)]
pub struct Rmsf {
    /// ρ per atom, Å.
    pub per_atom: Vec<f64>,
    /// Mean position per atom (aligned frame), Å.
    pub mean_pos: Vec<[f64; 3]>,
    /// Layer depth per atom, u.c.
    pub layer: Vec<f64>,
    /// (element, mean, s.d., count); the s.d. `None` for a single atom.
    pub by_element: Vec<(String, f64, Option<f64>, usize)>,
    /// (element, depth, mean, s.d., count); the s.d. `None` for a single
    /// atom.
    pub by_layer: Vec<(String, f64, f64, Option<f64>, usize)>,
}

/// The check of the lattice constant of the layer depths (> 0 Å).
pub(crate) fn check_lattice(lattice_angstrom: f64) -> Result<()> {
    if lattice_angstrom.is_finite() && lattice_angstrom > 0.0 {
        Ok(())
    } else {
        Err(Error::param(
            "lattice_angstrom",
            format!("must be > 0, got {lattice_angstrom}"),
        ))
    }
}

/// RMSF of a trajectory with lattice constant `a` (Å) for the layers.
///
/// # Errors
/// Reader errors; fewer than 2 frames; a ≤ 0.
pub fn rmsf(src: &Source, rigid: Option<RigidMode>, lattice_angstrom: f64) -> Result<(Rmsf, Info)> {
    check_lattice(lattice_angstrom)?;
    let mut n = 0usize;
    let mut mean: Vec<[f64; 3]> = Vec::new();
    let mut m2: Vec<f64> = Vec::new();
    let info = trajectory::stream(src, rigid, |s| {
        if mean.is_empty() {
            mean = vec![[0.0; 3]; s.pos.len()];
            m2 = vec![0.0; s.pos.len()];
        }
        n += 1;
        for ((mu, q), p) in mean.iter_mut().zip(m2.iter_mut()).zip(&s.pos) {
            for a in 0..3 {
                let d = p[a] - mu[a];
                mu[a] += d / n as f64;
                *q += d * (p[a] - mu[a]);
            }
        }
        Ok(())
    })?;
    if n < 2 {
        return Err(Error::Empty {
            what: src.positions.display().to_string(),
            reason: format!("{n} frame(s): RMSF needs at least 2"),
        });
    }
    let per_atom: Vec<f64> = m2.iter().map(|q| (q / n as f64).sqrt()).collect();
    // Centre of the mean structure (raw frames in `none` mode).
    let c = {
        let mut c = [0.0; 3];
        for p in &mean {
            for a in 0..3 {
                c[a] += p[a] / mean.len() as f64;
            }
        }
        c
    };
    let ext: Vec<f64> = mean
        .iter()
        .map(|p| (0..3).map(|a| (p[a] - c[a]).abs()).fold(0.0, f64::max))
        .collect();
    let r = ext.iter().copied().fold(0.0, f64::max);
    let layer: Vec<f64> = ext
        .iter()
        .map(|e| ((r - e) / lattice_angstrom * 2.0).round() / 2.0)
        .collect();
    let frozen: std::collections::HashSet<usize> = info.frozen.iter().copied().collect();
    let mut el: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut ly: BTreeMap<(String, i64), Vec<f64>> = BTreeMap::new();
    for (i, rho) in per_atom.iter().enumerate() {
        if frozen.contains(&i) {
            continue;
        }
        el.entry(info.species[i].clone()).or_default().push(*rho);
        ly.entry((info.species[i].clone(), (layer[i] * 2.0) as i64))
            .or_default()
            .push(*rho);
    }
    // Every group holds at least one atom.
    let by_element = el
        .into_iter()
        .filter_map(|(k, v)| mean_sd(&v).map(|(m, s)| (k, m, s, v.len())))
        .collect();
    let by_layer = ly
        .into_iter()
        .filter_map(|((k, d2), v)| mean_sd(&v).map(|(m, s)| (k, d2 as f64 / 2.0, m, s, v.len())))
        .collect();
    Ok((
        Rmsf {
            per_atom,
            mean_pos: mean,
            layer,
            by_element,
            by_layer,
        },
        info,
    ))
}
