//! Lattice-guided column sites: every corner, body-centre and anion site of
//! the measured lattice inside the particle mask, refined by centre of mass
//! and an affine lattice fit (docs/methods/columns.md, "Sites").
//!
//! Sites carry doubled cube-axis indices (u, v): position
//! `o + (u/2)·a₁ + (v/2)·a₂`. Both even: the class of the origin (the
//! brighter class in the spectrum's phase); both odd: the body-centre class;
//! mixed parity: the anion-only columns between them. Identity therefore
//! comes from the lattice, never from a parity split of whatever maxima
//! were found, and a dim column next to a bright one is looked for where it
//! must be, whatever its contrast.
//!
//! Refinement: each corner and centre site is moved to its intensity
//! centroid (disk `centroid_radius_px`); the affine lattice (origin, a₁, a₂)
//! is refitted by least squares to the sites whose centroid converged
//! (outliers beyond 3 × 1.4826 MAD dropped), twice; sites are predicted
//! again from it and refined once more. Anion sites sit at the mean of
//! their refined corner and centre neighbours.

use std::collections::HashMap;

use ndarray::ArrayView2;
use serde::Serialize;

use crate::stem::peaks::{self, CentroidBackground};

/// What a site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteKind {
    /// Corner class (u, v even): the brighter class in the spectrum.
    Corner,
    /// Body-centre class (u, v odd).
    Centre,
    /// Anion-only column (mixed parity).
    Anion,
}

/// One site.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Site {
    /// Doubled cube-axis indices.
    pub uv: (i64, i64),
    /// Kind.
    pub kind: SiteKind,
    /// Position x, px.
    pub x: f64,
    /// Position y, px.
    pub y: f64,
    /// The centroid refinement converged (corner/centre sites).
    pub centroid_ok: bool,
}

/// Affine lattice: origin and basis (x, y), px.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AffineLattice {
    /// Origin (a corner site).
    pub origin: [f64; 2],
    /// Cube-axis vector a₁, px.
    pub a1: [f64; 2],
    /// Cube-axis vector a₂, px.
    pub a2: [f64; 2],
}

impl AffineLattice {
    /// Position of doubled index (u, v).
    #[must_use]
    pub fn at(&self, u: i64, v: i64) -> [f64; 2] {
        let (hu, hv) = (0.5 * u as f64, 0.5 * v as f64);
        [
            self.origin[0] + hu * self.a1[0] + hv * self.a2[0],
            self.origin[1] + hu * self.a1[1] + hv * self.a2[1],
        ]
    }
    /// Continuous doubled index of a position.
    #[must_use]
    pub fn index_of(&self, p: [f64; 2]) -> [f64; 2] {
        let det = self.a1[0] * self.a2[1] - self.a1[1] * self.a2[0];
        let d = [p[0] - self.origin[0], p[1] - self.origin[1]];
        [
            2.0 * (d[0] * self.a2[1] - d[1] * self.a2[0]) / det,
            2.0 * (self.a1[0] * d[1] - self.a1[1] * d[0]) / det,
        ]
    }
}

fn kind_of(u: i64, v: i64) -> SiteKind {
    match (u.rem_euclid(2), v.rem_euclid(2)) {
        (0, 0) => SiteKind::Corner,
        (1, 1) => SiteKind::Centre,
        _ => SiteKind::Anion,
    }
}

/// Every site inside `mask` (and ≥ `margin_px` inside the image), refined.
/// Returns the sites and the refined lattice.
#[must_use]
pub fn find_sites(
    image: ArrayView2<f64>,
    mask: ArrayView2<bool>,
    start: AffineLattice,
    centroid_radius_px: f64,
    margin_px: f64,
) -> (Vec<Site>, AffineLattice) {
    let (ny, nx) = image.dim();
    let rc = centroid_radius_px.max(2.0);
    let disk = peaks::disk_offsets(rc);
    let mut lat = start;
    let enumerate = |lat: &AffineLattice| -> Vec<(i64, i64)> {
        let corners = [
            [0.0, 0.0],
            [(nx - 1) as f64, 0.0],
            [0.0, (ny - 1) as f64],
            [(nx - 1) as f64, (ny - 1) as f64],
        ];
        let (mut u0, mut u1, mut v0, mut v1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for c in corners {
            let [u, v] = lat.index_of(c);
            u0 = u0.min(u);
            u1 = u1.max(u);
            v0 = v0.min(v);
            v1 = v1.max(v);
        }
        let mut out = Vec::new();
        for u in (u0.floor() as i64 - 1)..=(u1.ceil() as i64 + 1) {
            for v in (v0.floor() as i64 - 1)..=(v1.ceil() as i64 + 1) {
                let [x, y] = lat.at(u, v);
                if x < margin_px
                    || y < margin_px
                    || x > (nx - 1) as f64 - margin_px
                    || y > (ny - 1) as f64 - margin_px
                {
                    continue;
                }
                let (xi, yi) = (x.round() as usize, y.round() as usize);
                if mask[[yi.min(ny - 1), xi.min(nx - 1)]] {
                    out.push((u, v));
                }
            }
        }
        out
    };
    let refine = |lat: &AffineLattice, uvs: &[(i64, i64)]| -> Vec<Site> {
        uvs.iter()
            .filter(|(u, v)| kind_of(*u, *v) != SiteKind::Anion)
            .map(|&(u, v)| {
                let [x, y] = lat.at(u, v);
                match peaks::centroid(image, (x, y), rc, &disk, CentroidBackground::DiskMin) {
                    Some((cx, cy)) => Site {
                        uv: (u, v),
                        kind: kind_of(u, v),
                        x: cx,
                        y: cy,
                        centroid_ok: true,
                    },
                    None => Site {
                        uv: (u, v),
                        kind: kind_of(u, v),
                        x,
                        y,
                        centroid_ok: false,
                    },
                }
            })
            .collect()
    };
    let mut uvs = enumerate(&lat);
    let mut sites = refine(&lat, &uvs);
    for _ in 0..2 {
        if let Some(l) = fit_affine(&sites) {
            lat = l;
        }
        uvs = enumerate(&lat);
        sites = refine(&lat, &uvs);
    }
    // Anion sites: mean of the refined neighbours, else the lattice.
    let at: HashMap<(i64, i64), [f64; 2]> = sites.iter().map(|s| (s.uv, [s.x, s.y])).collect();
    for &(u, v) in &uvs {
        if kind_of(u, v) != SiteKind::Anion {
            continue;
        }
        let nb: Vec<[f64; 2]> = [(u - 1, v), (u + 1, v), (u, v - 1), (u, v + 1)]
            .iter()
            .filter_map(|k| at.get(k).copied())
            .collect();
        let [x, y] = if nb.len() == 4 {
            [
                nb.iter().map(|p| p[0]).sum::<f64>() / 4.0,
                nb.iter().map(|p| p[1]).sum::<f64>() / 4.0,
            ]
        } else {
            lat.at(u, v)
        };
        sites.push(Site {
            uv: (u, v),
            kind: SiteKind::Anion,
            x,
            y,
            centroid_ok: false,
        });
    }
    (sites, lat)
}

/// Least-squares affine lattice from sites with a converged centroid
/// (3 × 1.4826 MAD outliers dropped once). `None` with fewer than 6.
#[must_use]
pub fn fit_affine(sites: &[Site]) -> Option<AffineLattice> {
    let pts: Vec<&Site> = sites.iter().filter(|s| s.centroid_ok).collect();
    let solve = |pts: &[&Site]| -> Option<AffineLattice> {
        if pts.len() < 6 {
            return None;
        }
        // Rows [1, u/2, v/2]; same design for x and y.
        let mut m = nalgebra::Matrix3::<f64>::zeros();
        let mut bx = nalgebra::Vector3::<f64>::zeros();
        let mut by = nalgebra::Vector3::<f64>::zeros();
        for s in pts {
            let r = nalgebra::Vector3::new(1.0, 0.5 * s.uv.0 as f64, 0.5 * s.uv.1 as f64);
            m += r * r.transpose();
            bx += r * s.x;
            by += r * s.y;
        }
        let inv = m.try_inverse()?;
        let (cx, cy) = (inv * bx, inv * by);
        Some(AffineLattice {
            origin: [cx[0], cy[0]],
            a1: [cx[1], cy[1]],
            a2: [cx[2], cy[2]],
        })
    };
    let first = solve(&pts)?;
    let res: Vec<f64> = pts
        .iter()
        .map(|s| {
            let p = first.at(s.uv.0, s.uv.1);
            (p[0] - s.x).hypot(p[1] - s.y)
        })
        .collect();
    let mut sorted = res.clone();
    sorted.sort_by(f64::total_cmp);
    let mad = 1.4826 * sorted[sorted.len() / 2];
    let keep: Vec<&Site> = pts
        .iter()
        .zip(&res)
        .filter(|(_, r)| **r <= (3.0 * mad).max(0.05))
        .map(|(s, _)| *s)
        .collect();
    solve(&keep).or(Some(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn sites_of_a_rotated_two_class_lattice_are_all_found_and_refined() {
        let n = 160;
        let truth = AffineLattice {
            origin: [80.4, 79.6],
            a1: [18.0 * 0.3f64.cos(), 18.0 * 0.3f64.sin()],
            a2: [-18.0 * 0.3f64.sin(), 18.0 * 0.3f64.cos()],
        };
        let mut img = Array2::<f64>::zeros((n, n));
        for u in -20i64..=20 {
            for v in -20i64..=20 {
                let amp = match kind_of(u, v) {
                    SiteKind::Corner => 1.0,
                    SiteKind::Centre => 0.3,
                    SiteKind::Anion => 0.1,
                };
                let [x, y] = truth.at(u, v);
                for ((yy, xx), p) in img.indexed_iter_mut() {
                    let r2 = (xx as f64 - x).powi(2) + (yy as f64 - y).powi(2);
                    if r2 < 100.0 {
                        *p += amp * (-r2 / 8.0).exp();
                    }
                }
            }
        }
        let mask = Array2::from_elem((n, n), true);
        // Start 1 % off in scale and 0.8 px off in the origin.
        let start = AffineLattice {
            origin: [81.0, 79.0],
            a1: [truth.a1[0] * 1.01, truth.a1[1] * 1.01],
            a2: [truth.a2[0] * 1.01, truth.a2[1] * 1.01],
        };
        let (sites, lat) = find_sites(img.view(), mask.view(), start, 2.5, 10.0);
        assert!((lat.a1[0] - truth.a1[0]).abs() < 0.02 && (lat.a2[1] - truth.a2[1]).abs() < 0.02);
        let mut n_class = 0;
        for s in sites.iter().filter(|s| s.kind != SiteKind::Anion) {
            let [x, y] = truth.at(s.uv.0, s.uv.1);
            assert!((s.x - x).hypot(s.y - y) < 0.15, "{s:?}");
            n_class += 1;
        }
        // (140/18)² ≈ 60 cells, two class sites each.
        assert!(n_class > 100, "{n_class}");
    }
}
