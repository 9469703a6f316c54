//! The joint fit's region: its pixels, their data and least-squares
//! weights, and the background grid's bilinear nodes and weights of each
//! pixel (on the image axes or on given axes, e.g. the lattice's). Split
//! from `linear.rs`, which holds the operator built on it.

use ndarray::ArrayView2;

use super::{GridAxes, JointColumn};
use crate::error::{Error, Result};

/// Fit region, pixel coordinates and background interpolation weights.
pub(super) struct Region {
    /// (y, x) of each pixel in the region.
    pub(super) px: Vec<(usize, usize)>,
    /// Data at each pixel.
    pub(super) data: Vec<f64>,
    /// Pixel index of (y, x), u32::MAX outside the region.
    pub(super) index: Vec<u32>,
    pub(super) nx: usize,
    /// Background: the 4 nodes and bilinear weights of each pixel.
    pub(super) bw: Vec<Bilinear>,
    /// Background grid size (rows, cols of nodes).
    pub(super) grid: (usize, usize),
    /// Weight of each pixel in the least squares (1 unless robust weights
    /// are set).
    pub(super) weight: Vec<f64>,
}

/// The four background nodes of a pixel and their bilinear weights
/// (f32: 32 bytes a pixel instead of 64 — the operator's products are
/// bound by memory bandwidth; the sums are f64).
#[derive(Debug, Clone, Copy)]
pub(super) struct Bilinear {
    node: [u32; 4],
    w: [f32; 4],
}

impl Bilinear {
    /// (node, weight) pairs.
    pub(super) fn pairs(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.node
            .iter()
            .zip(&self.w)
            .map(|(k, w)| (*k as usize, f64::from(*w)))
    }
    /// The nodes and weights.
    pub(super) fn parts(&self) -> (&[u32; 4], &[f32; 4]) {
        (&self.node, &self.w)
    }
    pub(super) fn value(&self, nodes: &[f64]) -> f64 {
        self.pairs().map(|(k, w)| w * nodes[k]).sum()
    }
}

pub(super) fn build_region(
    image: ArrayView2<f64>,
    cols: &[JointColumn],
    reach: f64,
    (spacing, axes): (f64, Option<GridAxes>),
    within: Option<ArrayView2<bool>>,
) -> Result<Region> {
    let (ny, nx) = image.dim();
    let mut index = vec![u32::MAX; ny * nx];
    let r2 = reach * reach;
    let ri = reach.ceil() as i64;
    for c in cols {
        let (cx, cy) = (c.x.round() as i64, c.y.round() as i64);
        for yy in (cy - ri).max(0)..=(cy + ri).min(ny as i64 - 1) {
            for xx in (cx - ri).max(0)..=(cx + ri).min(nx as i64 - 1) {
                if (xx as f64 - c.x).powi(2) + (yy as f64 - c.y).powi(2) <= r2
                    && within
                        .as_ref()
                        .is_none_or(|m| m[[yy as usize, xx as usize]])
                {
                    index[yy as usize * nx + xx as usize] = 0;
                }
            }
        }
    }
    let mut px = Vec::new();
    for (k, v) in index.iter_mut().enumerate() {
        if *v == 0 {
            *v = u32::try_from(px.len())
                .map_err(|_| Error::param("joint fit", "too many pixels"))?;
            px.push((k / nx, k % nx));
        }
    }
    if px.is_empty() {
        return Err(Error::Empty {
            what: "joint column fit".into(),
            reason: "no pixels near any column".into(),
        });
    }
    let data: Vec<f64> = px.iter().map(|&(y, x)| image[[y, x]]).collect();
    if data.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "joint column fit region".into(),
            count: data.iter().filter(|v| !v.is_finite()).count(),
            first: "near a column".into(),
        });
    }
    let (bw, (gy, gx)) = bilinear(&px, (spacing, axes));
    Ok(Region {
        weight: vec![1.0; px.len()],
        px,
        data,
        index,
        nx,
        bw,
        grid: (gy, gx),
    })
}

/// The bilinear background nodes and weights of each pixel `px` (y, x),
/// and the grid's size (rows, columns of nodes): nodes every `spacing` px
/// along the image axes from the pixels' corner, or on `axes`.
fn bilinear(
    px: &[(usize, usize)],
    (spacing, axes): (f64, Option<GridAxes>),
) -> (Vec<Bilinear>, (usize, usize)) {
    // Each pixel in grid units (u along the first step, v the second).
    let uv: Vec<(f64, f64)> = match axes {
        None => {
            let (y0, x0) = px.iter().fold((usize::MAX, usize::MAX), |(a, b), &(y, x)| {
                (a.min(y), b.min(x))
            });
            px.iter()
                .map(|&(y, x)| ((x - x0) as f64 / spacing, (y - y0) as f64 / spacing))
                .collect()
        }
        Some(GridAxes {
            step1: s1,
            step2: s2,
            node: o,
        }) => {
            let det = s1[0] * s2[1] - s1[1] * s2[0];
            px.iter()
                .map(|&(y, x)| {
                    let (dx, dy) = (x as f64 - o[0], y as f64 - o[1]);
                    (
                        (dx * s2[1] - dy * s2[0]) / det,
                        (dy * s1[0] - dx * s1[1]) / det,
                    )
                })
                .collect()
        }
    };
    let fold = |f: fn(f64, f64) -> f64, init: f64, pick: fn(&(f64, f64)) -> f64| {
        uv.iter().map(pick).fold(init, f)
    };
    let (u0, v0) = (
        fold(f64::min, f64::INFINITY, |p| p.0).floor(),
        fold(f64::min, f64::INFINITY, |p| p.1).floor(),
    );
    let (u1, v1) = (
        fold(f64::max, f64::NEG_INFINITY, |p| p.0),
        fold(f64::max, f64::NEG_INFINITY, |p| p.1),
    );
    let gy = (v1 - v0).ceil() as usize + 1;
    let gx = (u1 - u0).ceil() as usize + 1;
    let bw = uv
        .iter()
        .map(|&(u, v)| {
            let fy = v - v0;
            let fx = u - u0;
            let (iy, ix) = (
                (fy as usize).min(gy.saturating_sub(2)),
                (fx as usize).min(gx.saturating_sub(2)),
            );
            let (ty, tx) = (
                (fy - iy as f64).clamp(0.0, 1.0),
                (fx - ix as f64).clamp(0.0, 1.0),
            );
            let n = |a: usize, b: usize| ((a.min(gy - 1)) * gx + b.min(gx - 1)) as u32;
            Bilinear {
                node: [n(iy, ix), n(iy, ix + 1), n(iy + 1, ix), n(iy + 1, ix + 1)],
                w: [
                    ((1.0 - ty) * (1.0 - tx)) as f32,
                    ((1.0 - ty) * tx) as f32,
                    (ty * (1.0 - tx)) as f32,
                    (ty * tx) as f32,
                ],
            }
        })
        .collect();
    (bw, (gy, gx))
}

#[cfg(test)]
mod grid_tests {
    use super::*;
    use ndarray::Array2;

    /// RMS of the least-squares fit of the background grid alone to the
    /// image, over the RMS of the image (pixels ≥ 1.5a from the border).
    fn fitted_fraction(img: &Array2<f64>, grid: (f64, Option<GridAxes>), a: f64) -> f64 {
        let (ny, nx) = img.dim();
        let centre = JointColumn {
            x: nx as f64 / 2.0,
            y: ny as f64 / 2.0,
            class: 0,
            fixed: false,
        };
        let reg = build_region(img.view(), &[centre], 2.0 * nx as f64, grid, None).expect("region");
        let nb = reg.grid.0 * reg.grid.1;
        let mut ata = nalgebra::DMatrix::<f64>::zeros(nb, nb);
        let mut atb = nalgebra::DVector::<f64>::zeros(nb);
        for (bw, d) in reg.bw.iter().zip(&reg.data) {
            for (i, wi) in bw.pairs() {
                atb[i] += wi * d;
                for (j, wj) in bw.pairs() {
                    ata[(i, j)] += wi * wj;
                }
            }
        }
        for i in 0..nb {
            ata[(i, i)] += 1e-9;
        }
        let c = ata.cholesky().expect("positive definite").solve(&atb);
        let (mut fit2, mut img2) = (0.0, 0.0);
        for ((bw, d), &(y, x)) in reg.bw.iter().zip(&reg.data).zip(&reg.px) {
            let m = 1.5 * a;
            if (y as f64) < m
                || (x as f64) < m
                || (y as f64) > ny as f64 - m
                || (x as f64) > nx as f64 - m
            {
                continue;
            }
            fit2 += bw.value(c.as_slice()).powi(2);
            img2 += d * d;
        }
        (fit2 / img2).sqrt()
    }

    /// The contrast between the corner and body-centre sublattices (the
    /// (1,0) and (0,1) reflections of a lattice a = 12 px at 23°): a grid
    /// of one node per unit cell on the lattice's axes takes up 2–3 % of it
    /// (the particle's border; < 5 % asserted), whatever the node's phase;
    /// nodes every 0.7a (0.5a) along the image axes take up 30 % (81 %;
    /// > 20 %, > 50 % asserted). A ramp is followed exactly.
    #[test]
    fn a_grid_on_the_lattice_axes_is_blind_to_the_sublattice_contrast() {
        let a = 12.0;
        let t = 23f64.to_radians();
        let (a1, a2) = ([a * t.cos(), a * t.sin()], [-a * t.sin(), a * t.cos()]);
        let origin = [3.3, 5.1];
        let contrast = Array2::from_shape_fn((96, 96), |(y, x)| {
            let (dx, dy) = (x as f64 - origin[0], y as f64 - origin[1]);
            let u = (dx * a1[0] + dy * a1[1]) / (a * a);
            let v = (dx * a2[0] + dy * a2[1]) / (a * a);
            (std::f64::consts::TAU * u).cos() + (std::f64::consts::TAU * v).cos()
        });
        for node in [origin, [origin[0] + 4.0, origin[1] - 2.5]] {
            let axes = GridAxes {
                step1: a1,
                step2: a2,
                node,
            };
            let f = fitted_fraction(&contrast, (a, Some(axes)), a);
            assert!(f < 0.05, "lattice grid at {node:?}: {f}");
        }
        let f07 = fitted_fraction(&contrast, (0.7 * a, None), a);
        let f05 = fitted_fraction(&contrast, (0.5 * a, None), a);
        assert!(f07 > 0.2 && f05 > 0.5, "image grid 0.7a {f07}, 0.5a {f05}");
        let ramp =
            Array2::from_shape_fn((96, 96), |(y, x)| 1.0 + 0.01 * x as f64 + 0.02 * y as f64);
        let axes = GridAxes {
            step1: a1,
            step2: a2,
            node: origin,
        };
        let f = fitted_fraction(&ramp, (a, Some(axes)), a);
        assert!((f - 1.0).abs() < 1e-6, "ramp {f}");
    }
}
