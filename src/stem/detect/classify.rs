//! Steps 5–6 of the detection: occupancy, interior, class identity and
//! the refusals (see the parent module's documentation).

use std::collections::HashMap;

use ndarray::Array2;

use super::{quantile, refuse, DetectParams, Detected, Detection, JointModel, LatticeReport};
use crate::error::Result;
use crate::stem::joint::JointFit;
use crate::stem::reciprocal::MeasuredLattice;
use crate::stem::sites::{AffineLattice, Site, SiteKind};

/// The lattice stage's results carried into the detection.
pub(super) type LatticeParts = (
    AffineLattice,
    Array2<bool>,
    MeasuredLattice,
    f64,
    [usize; 3],
);

/// Occupancy, interior, class identity and the refusals of steps 5–6.
pub(super) fn classify(
    what: &str,
    (ny, nx): (usize, usize),
    all_sites: Vec<Site>,
    fit: JointFit,
    model: JointModel,
    (lattice, mask, m, a_meas, n_sites): LatticeParts,
    p: &DetectParams,
) -> Result<Detection> {
    let class_of = |k: SiteKind| match k {
        SiteKind::Corner => 0usize,
        SiteKind::Centre => 1,
        SiteKind::Anion => 2,
    };
    let mut upper = [0.0f64; 2];
    for (c, u) in upper.iter_mut().enumerate() {
        let v: Vec<f64> = all_sites
            .iter()
            .enumerate()
            .filter(|(_, s)| class_of(s.kind) == c)
            .map(|(i, _)| fit.volume[i])
            .collect();
        *u = quantile(&v, 0.75);
    }
    let occupied: Vec<bool> = all_sites
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let c = class_of(s.kind);
            c < 2 && upper[c] > 0.0 && fit.volume[i] > p.occupancy_fraction * upper[c]
        })
        .collect();
    let n_occ = [0, 1].map(|c| {
        all_sites
            .iter()
            .zip(&occupied)
            .filter(|(s, o)| **o && class_of(s.kind) == c)
            .count()
    });
    // The dim class may be the one that is empty: compare with the other.
    let (lo, hi) = (n_occ[0].min(n_occ[1]), n_occ[0].max(n_occ[1]));
    if hi == 0 || (lo as f64) < 0.3 * hi as f64 || !(upper[0] > 0.0 && upper[1] > 0.0) {
        return Err(refuse(
            what,
            format!(
                "one sublattice only: {} corner and {} body-centre sites hold columns (the (½,½) sites of the lattice are empty)",
                n_occ[0], n_occ[1]
            ),
        ));
    }
    let by_uv: HashMap<(i64, i64), usize> = all_sites
        .iter()
        .enumerate()
        .map(|(i, s)| (s.uv, i))
        .collect();
    let reach = 3.0 * fit.sigma_px[0].max(fit.sigma_px[1]);
    let inside = |i: usize| {
        let (x, y) = (fit.x[i], fit.y[i]);
        x >= reach && y >= reach && x <= (nx - 1) as f64 - reach && y <= (ny - 1) as f64 - reach
    };
    let neighbours = |s: &Site| -> [Option<usize>; 4] {
        let (u, v) = s.uv;
        [
            (u + 1, v + 1),
            (u + 1, v - 1),
            (u - 1, v + 1),
            (u - 1, v - 1),
        ]
        .map(|k| by_uv.get(&k).copied().filter(|&j| occupied[j]))
    };
    let interior: Vec<bool> = all_sites
        .iter()
        .enumerate()
        .map(|(i, s)| occupied[i] && inside(i) && neighbours(s).iter().all(Option::is_some))
        .collect();
    let med = |c: usize| -> f64 {
        let v: Vec<f64> = (0..all_sites.len())
            .filter(|&i| interior[i] && class_of(all_sites[i].kind) == c)
            .map(|i| fit.volume[i])
            .collect();
        quantile(&v, 0.5)
    };
    let n_int = [0, 1].map(|c| {
        (0..all_sites.len())
            .filter(|&i| interior[i] && class_of(all_sites[i].kind) == c)
            .count()
    });
    if n_int[0] < p.min_interior_per_class || n_int[1] < p.min_interior_per_class {
        return Err(refuse(
            what,
            format!(
                "particle too small for a ratio: {} and {} interior columns per class (need {})",
                n_int[0], n_int[1], p.min_interior_per_class
            ),
        ));
    }
    let corner_is_bright = med(0) > med(1);
    let bright_class = if corner_is_bright { 0 } else { 1 };
    let mut mismatch = vec![false; all_sites.len()];
    let mut n_bad = 0usize;
    let mut n_int_all = 0usize;
    for (i, s) in all_sites.iter().enumerate() {
        if !interior[i] {
            continue;
        }
        let mut nb: Vec<f64> = neighbours(s)
            .iter()
            .flatten()
            .map(|&j| fit.volume[j])
            .collect();
        nb.sort_by(f64::total_cmp);
        let nmed = 0.5 * (nb[1] + nb[2]);
        let bright = class_of(s.kind) == bright_class;
        let ok = if bright {
            fit.volume[i] > nmed
        } else {
            fit.volume[i] < nmed
        };
        n_int_all += 1;
        if !ok {
            mismatch[i] = true;
            n_bad += 1;
        }
    }
    let mismatch_fraction = n_bad as f64 / n_int_all.max(1) as f64;
    if mismatch_fraction > p.max_mismatch_fraction {
        return Err(refuse(
            what,
            format!(
                "the two classes are not separated: {:.0} % of interior columns are not brighter (Pb/Br) or darker (Cs) than their four neighbours of the other class (limit {:.0} %)",
                100.0 * mismatch_fraction,
                100.0 * p.max_mismatch_fraction
            ),
        ));
    }
    let mut columns: Vec<Detected> = Vec::new();
    let mut mm = Vec::new();
    for (i, s) in all_sites.iter().enumerate() {
        if s.kind != SiteKind::Anion && occupied[i] {
            columns.push(Detected {
                site: *s,
                fit_index: i,
                occupied: true,
                interior: interior[i],
            });
            mm.push(mismatch[i]);
        }
    }
    for (i, s) in all_sites.iter().enumerate() {
        if s.kind == SiteKind::Anion {
            // Anion columns between two occupied sites of each class.
            let (u, v) = s.uv;
            let nb = [(u - 1, v), (u + 1, v), (u, v - 1), (u, v + 1)];
            if nb
                .iter()
                .all(|k| by_uv.get(k).is_some_and(|&j| occupied[j]))
            {
                columns.push(Detected {
                    site: *s,
                    fit_index: i,
                    occupied: true,
                    interior: inside(i),
                });
                mm.push(false);
            }
        }
    }
    let report = LatticeReport {
        measured_angstrom: a_meas,
        expected_angstrom: p.expected_lattice_angstrom,
        aspect_minus_one: m.squareness().0,
        angle_deg: m.squareness().1,
        contrast_10: m.contrast_g,
        basis_px: [lattice.a1, lattice.a2],
        mask_pixels: mask.iter().filter(|v| **v).count(),
        n_sites,
        n_occupied: n_occ,
        sigma_px: fit.sigma_px.clone(),
        joint_iterations: fit.iterations,
        joint_converged: fit.converged,
    };
    Ok(Detection {
        columns,
        fit,
        lattice,
        corner_is_bright,
        mismatch: mm,
        mismatch_fraction,
        mask,
        report,
        model,
    })
}
