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

/// Class index of a site kind: corner 0, centre 1, anion 2.
fn class_of(k: SiteKind) -> usize {
    match k {
        SiteKind::Corner => 0usize,
        SiteKind::Centre => 1,
        SiteKind::Anion => 2,
    }
}

/// What steps 5–6 decide from one joint fit of every site.
pub(super) struct Classes {
    pub(super) columns: Vec<Detected>,
    pub(super) corner_is_bright: bool,
    pub(super) mismatch: Vec<bool>,
    pub(super) mismatch_fraction: f64,
    pub(super) n_occupied: [usize; 2],
}

impl Classes {
    /// The detection these classes make with `fit` and the lattice stage's
    /// results.
    pub(super) fn detection(
        self,
        fit: JointFit,
        (lattice, mask, report): (AffineLattice, Array2<bool>, LatticeReport),
        model: JointModel,
    ) -> Detection {
        Detection {
            columns: self.columns,
            fit,
            lattice,
            corner_is_bright: self.corner_is_bright,
            mismatch: self.mismatch,
            mismatch_fraction: self.mismatch_fraction,
            mask,
            report,
            model,
        }
    }
}

/// Occupancy, interior, class identity and the refusals of steps 5–6.
pub(super) fn classify(
    what: &str,
    dims: (usize, usize),
    fit: JointFit,
    model: JointModel,
    (lattice, mask, m, a_meas, n_sites): LatticeParts,
    p: &DetectParams,
) -> Result<Detection> {
    let c = classes(what, dims, &model.sites, &fit, p)?;
    let report = LatticeReport {
        measured_angstrom: a_meas,
        expected_angstrom: p.expected_lattice_angstrom,
        aspect_minus_one: m.squareness().0,
        angle_deg: m.squareness().1,
        contrast_10: m.contrast_g,
        basis_px: [lattice.a1, lattice.a2],
        mask_pixels: mask.iter().filter(|v| **v).count(),
        n_sites,
        n_occupied: c.n_occupied,
        sigma_px: fit.sigma_px.clone(),
        joint_iterations: fit.iterations,
        joint_converged: fit.converged,
        background_sensitivity: None,
        noise_sensitivity: None,
    };
    Ok(c.detection(fit, (lattice, mask, report), model))
}

/// Steps 5–6 on the fit `fit` of every site of `sites`.
pub(super) fn classes(
    what: &str,
    (ny, nx): (usize, usize),
    all_sites: &[Site],
    fit: &JointFit,
    p: &DetectParams,
) -> Result<Classes> {
    let (occupied, n_occ) = occupancy(what, all_sites, fit, p)?;
    let graph = SiteGraph::new(all_sites, fit, occupied, (ny, nx));
    let interior = graph.interior();
    let corner_is_bright = corner_is_bright(what, all_sites, &interior, fit, p)?;
    let (mismatch, mismatch_fraction) = graph.mismatches(&interior, corner_is_bright);
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
    let (columns, mm) = graph.detected(&interior, &mismatch);
    Ok(Classes {
        columns,
        corner_is_bright,
        mismatch: mm,
        mismatch_fraction,
        n_occupied: n_occ,
    })
}

/// Step 5, occupancy: which sites hold a column (volume above the
/// occupancy fraction of its class's upper quartile; anion sites never)
/// and how many corner and centre sites do. Refuses one sublattice.
fn occupancy(
    what: &str,
    all_sites: &[Site],
    fit: &JointFit,
    p: &DetectParams,
) -> Result<(Vec<bool>, [usize; 2])> {
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
    Ok((occupied, n_occ))
}

/// Step 5, class identity: the class with the larger median interior
/// volume is Pb/Br (true when that is the corner class). Refuses fewer
/// interior columns per class than the minimum.
fn corner_is_bright(
    what: &str,
    all_sites: &[Site],
    interior: &[bool],
    fit: &JointFit,
    p: &DetectParams,
) -> Result<bool> {
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
    Ok(med(0) > med(1))
}

/// The sites by lattice index, with their occupancy and fitted positions:
/// who neighbours whom, and who is inside the image.
struct SiteGraph<'a> {
    sites: &'a [Site],
    fit: &'a JointFit,
    occupied: Vec<bool>,
    by_uv: HashMap<(i64, i64), usize>,
    /// Distance a model must keep from the image edge, px.
    reach: f64,
    dims: (usize, usize),
}

impl<'a> SiteGraph<'a> {
    fn new(
        sites: &'a [Site],
        fit: &'a JointFit,
        occupied: Vec<bool>,
        dims: (usize, usize),
    ) -> Self {
        let by_uv: HashMap<(i64, i64), usize> =
            sites.iter().enumerate().map(|(i, s)| (s.uv, i)).collect();
        let reach = 3.0 * fit.sigma_px[0].max(fit.sigma_px[1]);
        SiteGraph {
            sites,
            fit,
            occupied,
            by_uv,
            reach,
            dims,
        }
    }

    /// The fitted column `i` stays inside the image.
    fn inside(&self, i: usize) -> bool {
        let (ny, nx) = self.dims;
        let reach = self.reach;
        let (x, y) = (self.fit.x[i], self.fit.y[i]);
        x >= reach && y >= reach && x <= (nx - 1) as f64 - reach && y <= (ny - 1) as f64 - reach
    }

    /// The four other-class neighbours of a corner/centre site, when occupied.
    fn neighbours(&self, s: &Site) -> [Option<usize>; 4] {
        let (u, v) = s.uv;
        [
            (u + 1, v + 1),
            (u + 1, v - 1),
            (u - 1, v + 1),
            (u - 1, v - 1),
        ]
        .map(|k| self.by_uv.get(&k).copied().filter(|&j| self.occupied[j]))
    }

    /// Interior: occupied, inside, its four other-class neighbours occupied.
    fn interior(&self) -> Vec<bool> {
        self.sites
            .iter()
            .enumerate()
            .map(|(i, s)| {
                self.occupied[i] && self.inside(i) && self.neighbours(s).iter().all(Option::is_some)
            })
            .collect()
    }

    /// Step 6: interior columns not brighter (bright class) or darker (dim
    /// class) than the median of their four neighbours, and their fraction.
    fn mismatches(&self, interior: &[bool], corner_is_bright: bool) -> (Vec<bool>, f64) {
        let bright_class = if corner_is_bright { 0 } else { 1 };
        let volume = &self.fit.volume;
        let mut mismatch = vec![false; self.sites.len()];
        let mut n_bad = 0usize;
        let mut n_int_all = 0usize;
        for (i, s) in self.sites.iter().enumerate() {
            if !interior[i] {
                continue;
            }
            let mut nb: Vec<f64> = self
                .neighbours(s)
                .iter()
                .flatten()
                .map(|&j| volume[j])
                .collect();
            nb.sort_by(f64::total_cmp);
            let nmed = 0.5 * (nb[1] + nb[2]);
            let bright = class_of(s.kind) == bright_class;
            let ok = if bright {
                volume[i] > nmed
            } else {
                volume[i] < nmed
            };
            n_int_all += 1;
            if !ok {
                mismatch[i] = true;
                n_bad += 1;
            }
        }
        (mismatch, n_bad as f64 / n_int_all.max(1) as f64)
    }

    /// The corner/centre sites holding a column, then the anion sites
    /// between occupied sites, with each one's mismatch flag.
    fn detected(&self, interior: &[bool], mismatch: &[bool]) -> (Vec<Detected>, Vec<bool>) {
        let mut columns: Vec<Detected> = Vec::new();
        let mut mm = Vec::new();
        for (i, s) in self.sites.iter().enumerate() {
            if s.kind != SiteKind::Anion && self.occupied[i] {
                columns.push(Detected {
                    site: *s,
                    fit_index: i,
                    occupied: true,
                    interior: interior[i],
                });
                mm.push(mismatch[i]);
            }
        }
        for (i, s) in self.sites.iter().enumerate() {
            if s.kind == SiteKind::Anion {
                // Anion columns between two occupied sites of each class.
                let (u, v) = s.uv;
                let nb = [(u - 1, v), (u + 1, v), (u, v - 1), (u, v + 1)];
                if nb
                    .iter()
                    .all(|k| self.by_uv.get(k).is_some_and(|&j| self.occupied[j]))
                {
                    columns.push(Detected {
                        site: *s,
                        fit_index: i,
                        occupied: true,
                        interior: self.inside(i),
                    });
                    mm.push(false);
                }
            }
        }
        (columns, mm)
    }
}
