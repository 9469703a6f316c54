//! Joint fit of every column of a particle at once: unbiased volumes where
//! neighbouring columns overlap (docs/methods/columns.md, "Joint fit").
//!
//! Model over the fit region (pixels within `reach_sigma` σ of any column,
//! and inside the `within` mask when given — the particle, so that the step
//! of a background that differs under the particle (a plateau) does not
//! enter a model that cannot follow it sharply):
//! `m(x) = b(x) + Σ_i V_i/(2πσ_c²)·exp(−|x − p_i|²/(2σ_c²))`, one round
//! Gaussian per column with its own volume V_i and position p_i and one
//! width σ_c per column class c (the probe and the column type set the
//! width; a width per column would trade volume for width in the noise),
//! plus a smooth background b, bilinear between nodes on a square grid of
//! spacing `background_spacing_px`, with a weak smoothness penalty between
//! neighbouring nodes (so nodes with few pixels stay defined).
//!
//! Every column's tails are in the model of its neighbours' pixels, so the
//! tail of a bright column no longer adds to a dim neighbour (the 1–5 %
//! bias of single-column fits in a disk, and 10 % and more when σ nears a
//! quarter of the column distance). Following StatSTEM (De Backer et al.,
//! Ultramicroscopy 171, 104, 2016) the volume ("scattering cross-section")
//! is the quantity of interest; with the width shared per class, the
//! volume ratio of two classes does not depend on a shape mismatch common
//! to both (e.g. a slightly elliptical probe).
//!
//! Solver: alternating (1) the volumes and background nodes, linear given
//! positions and widths — normal equations solved matrix-free by Jacobi-
//! preconditioned conjugate gradients, warm-started; (2) one Gauss–Newton
//! step of each free column's (V, x, y) on the residual with its own model
//! added back (damped, at most `max_step_px`); (3) one Gauss–Newton step of
//! the class widths at fixed volumes. Stops when positions move less than
//! 1e-3 px and widths less than 1e-5 relative, or after `iterations`.
//! Sums run in a fixed order: the result does not depend on the thread
//! count.
//!
//! Written here: no maintained Rust crate fits sparse sums of Gaussians
//! with shared parameters; the 3×3 solves use nalgebra.

use nalgebra::{Matrix3, Vector3};
use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};

/// One column of the model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct JointColumn {
    /// Start position x, px.
    pub x: f64,
    /// Start position y, px.
    pub y: f64,
    /// Class index (0 … n_classes − 1); the width is shared per class.
    pub class: usize,
    /// Keep the position fixed (weak columns whose position the data
    /// cannot determine, e.g. anion-only columns).
    pub fixed: bool,
}

/// Settings of [`fit`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JointParams {
    /// Starting width of each class, px.
    pub sigma_px: Vec<f64>,
    /// Width of class c = Σ_w `width_map[c][w]`·θ_w over the fitted width
    /// parameters θ (empty: one free width per class). E.g. `[[1, 0], [0,
    /// 1], [½, ½]]` ties a weak third class to the mean of the other two,
    /// so it cannot grow into a sheet that mimics a background.
    pub width_map: Vec<Vec<f64>>,
    /// Region and stamp reach, in σ of the widest class.
    pub reach_sigma: f64,
    /// Background node spacing, px.
    pub background_spacing_px: f64,
    /// Largest position step per iteration, px.
    pub max_step_px: f64,
    /// Outer iterations at most.
    pub iterations: usize,
}

/// Result of [`fit`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JointFit {
    /// Volume of each column (image units × px²).
    pub volume: Vec<f64>,
    /// Fitted position x, px.
    pub x: Vec<f64>,
    /// Fitted position y, px.
    pub y: Vec<f64>,
    /// Width of each class, px.
    pub sigma_px: Vec<f64>,
    /// Background under each column (image units).
    pub background: Vec<f64>,
    /// RMS residual within 2σ of each column (image units).
    pub local_rms: Vec<f64>,
    /// RMS residual over the region.
    pub residual_rms: f64,
    /// Pixels in the fit region.
    pub n_pixels: usize,
    /// Outer iterations run.
    pub iterations: usize,
    /// Whether the stop criteria were met before the iteration limit.
    pub converged: bool,
}

impl JointFit {
    /// Peak height V/(2πσ²) of column `i` of class `c`.
    #[must_use]
    pub fn height(&self, i: usize, class: usize) -> f64 {
        self.volume[i] / (std::f64::consts::TAU * self.sigma_px[class].powi(2))
    }
}

/// Fit region, pixel coordinates and background interpolation weights.
struct Region {
    /// (y, x) of each pixel in the region.
    px: Vec<(usize, usize)>,
    /// Data at each pixel.
    data: Vec<f64>,
    /// Pixel index of (y, x), u32::MAX outside the region.
    index: Vec<u32>,
    nx: usize,
    /// Background: 4 (node, weight) per pixel.
    bw: Vec<[(u32, f64); 4]>,
    /// Background grid size (rows, cols of nodes).
    grid: (usize, usize),
}

/// Gaussian stamps: for each column the (region pixel, value/V, r²) list.
type Stamps = Vec<Vec<(u32, f64, f64)>>;

fn build_region(
    image: ArrayView2<f64>,
    cols: &[JointColumn],
    reach: f64,
    spacing: f64,
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
    let data = px.iter().map(|&(y, x)| image[[y, x]]).collect();
    let (y0, x0) = px.iter().fold((usize::MAX, usize::MAX), |(a, b), &(y, x)| {
        (a.min(y), b.min(x))
    });
    let (y1, x1) = px
        .iter()
        .fold((0, 0), |(a, b), &(y, x)| (a.max(y), b.max(x)));
    let gy = ((y1 - y0) as f64 / spacing).ceil() as usize + 1;
    let gx = ((x1 - x0) as f64 / spacing).ceil() as usize + 1;
    let bw = px
        .iter()
        .map(|&(y, x)| {
            let fy = (y - y0) as f64 / spacing;
            let fx = (x - x0) as f64 / spacing;
            let (iy, ix) = (
                (fy as usize).min(gy.saturating_sub(2)),
                (fx as usize).min(gx.saturating_sub(2)),
            );
            let (ty, tx) = (
                (fy - iy as f64).clamp(0.0, 1.0),
                (fx - ix as f64).clamp(0.0, 1.0),
            );
            let n = |a: usize, b: usize| ((a.min(gy - 1)) * gx + b.min(gx - 1)) as u32;
            [
                (n(iy, ix), (1.0 - ty) * (1.0 - tx)),
                (n(iy, ix + 1), (1.0 - ty) * tx),
                (n(iy + 1, ix), ty * (1.0 - tx)),
                (n(iy + 1, ix + 1), ty * tx),
            ]
        })
        .collect();
    Ok(Region {
        px,
        data,
        index,
        nx,
        bw,
        grid: (gy, gx),
    })
}

#[allow(clippy::too_many_arguments)]
fn stamps(
    reg: &Region,
    x: &[f64],
    y: &[f64],
    cls: &[usize],
    sigma: &[f64],
    sigma0: &[f64],
    reach: f64,
) -> Stamps {
    let ny = reg.index.len() / reg.nx;
    (0..x.len())
        .into_par_iter()
        .map(|i| {
            let s = sigma[cls[i]];
            let rr = (reach * s).min(reach * sigma.iter().copied().fold(0.0, f64::max));
            // Amplitude per unit W: 1/(2π σ σ₀(class)), so the volume is
            // V = W σ/σ₀ and ∂h/∂σ at fixed W is orthogonal to h for an
            // isolated column (the width step does not fight the volumes).
            let norm = 1.0 / (std::f64::consts::TAU * s * sigma0[cls[i]]);
            let ri = rr.ceil() as i64;
            let (cx, cy) = (x[i].round() as i64, y[i].round() as i64);
            let mut out = Vec::new();
            for yy in (cy - ri).max(0)..=(cy + ri).min(ny as i64 - 1) {
                for xx in (cx - ri).max(0)..=(cx + ri).min(reg.nx as i64 - 1) {
                    let k = reg.index[yy as usize * reg.nx + xx as usize];
                    if k == u32::MAX {
                        continue;
                    }
                    let r2 = (xx as f64 - x[i]).powi(2) + (yy as f64 - y[i]).powi(2);
                    if r2 <= rr * rr {
                        out.push((k, norm * (-r2 / (2.0 * s * s)).exp(), r2));
                    }
                }
            }
            out
        })
        .collect()
}

/// The linear least-squares operator: unknowns [V (n); b (nodes)].
struct Linear<'a> {
    reg: &'a Region,
    st: &'a Stamps,
    n: usize,
    nb: usize,
    smooth: f64,
}

impl Linear<'_> {
    fn forward(&self, u: &[f64]) -> Vec<f64> {
        let mut out: Vec<f64> = self
            .reg
            .bw
            .iter()
            .map(|w| w.iter().map(|(k, c)| c * u[self.n + *k as usize]).sum())
            .collect();
        for (i, s) in self.st.iter().enumerate() {
            let v = u[i];
            if v != 0.0 {
                for &(k, g, _) in s {
                    out[k as usize] += v * g;
                }
            }
        }
        out
    }
    fn adjoint(&self, r: &[f64]) -> Vec<f64> {
        let mut out: Vec<f64> = self
            .st
            .par_iter()
            .map(|s| s.iter().map(|&(k, g, _)| g * r[k as usize]).sum())
            .collect();
        let mut b = vec![0.0; self.nb];
        for (w, rv) in self.reg.bw.iter().zip(r) {
            for (k, c) in w {
                b[*k as usize] += c * rv;
            }
        }
        out.extend(b);
        out
    }
    /// (AᵀA + λL + εI_b) u.
    fn normal(&self, u: &[f64]) -> Vec<f64> {
        let mut out = self.adjoint(&self.forward(u));
        let (gy, gx) = self.reg.grid;
        for y in 0..gy {
            for x in 0..gx {
                let k = y * gx + x;
                let mut acc = 1e-9 * self.smooth * u[self.n + k];
                for (yy, xx) in [
                    (y.wrapping_sub(1), x),
                    (y + 1, x),
                    (y, x.wrapping_sub(1)),
                    (y, x + 1),
                ] {
                    if yy < gy && xx < gx {
                        acc += self.smooth * (u[self.n + k] - u[self.n + yy * gx + xx]);
                    }
                }
                out[self.n + k] += acc;
            }
        }
        out
    }
    fn diagonal(&self) -> Vec<f64> {
        let mut d: Vec<f64> = self
            .st
            .iter()
            .map(|s| s.iter().map(|&(_, g, _)| g * g).sum::<f64>())
            .collect();
        let mut b = vec![0.0; self.nb];
        for w in &self.reg.bw {
            for (k, c) in w {
                b[*k as usize] += c * c;
            }
        }
        let (gy, gx) = self.reg.grid;
        for (k, v) in b.iter_mut().enumerate() {
            let (y, x) = (k / gx, k % gx);
            let deg = [y > 0, y + 1 < gy, x > 0, x + 1 < gx]
                .iter()
                .filter(|t| **t)
                .count();
            *v += self.smooth * deg as f64 + 1e-9 * self.smooth;
        }
        d.extend(b);
        d.iter()
            .map(|v| if *v > 0.0 { 1.0 / v } else { 1.0 })
            .collect()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Jacobi-preconditioned CG on the normal equations, from `u`.
fn solve(op: &Linear, data: &[f64], u: &mut [f64]) {
    let rhs = op.adjoint(data);
    let minv = op.diagonal();
    let au = op.normal(u);
    let mut r: Vec<f64> = rhs.iter().zip(&au).map(|(a, b)| a - b).collect();
    let mut z: Vec<f64> = r.iter().zip(&minv).map(|(a, b)| a * b).collect();
    let mut p = z.clone();
    let mut rz = dot(&r, &z);
    let r0 = dot(&rhs, &rhs).sqrt().max(1e-300);
    for _ in 0..400 {
        if dot(&r, &r).sqrt() <= 1e-10 * r0 {
            break;
        }
        let ap = op.normal(&p);
        let pap = dot(&p, &ap);
        if pap.is_nan() || pap <= 0.0 {
            break;
        }
        let alpha = rz / pap;
        for k in 0..u.len() {
            u[k] += alpha * p[k];
            r[k] -= alpha * ap[k];
        }
        for k in 0..u.len() {
            z[k] = r[k] * minv[k];
        }
        let rz1 = dot(&r, &z);
        let beta = rz1 / rz;
        rz = rz1;
        for k in 0..u.len() {
            p[k] = z[k] + beta * p[k];
        }
    }
}

/// Fit the joint model to `image` (see the module doc).
///
/// # Errors
/// No columns, a width or class out of range, non-finite pixels near the
/// columns, a fit that leaves the finite numbers.
pub fn fit(
    image: ArrayView2<f64>,
    within: Option<ArrayView2<bool>>,
    cols: &[JointColumn],
    p: &JointParams,
) -> Result<JointFit> {
    if cols.is_empty() {
        return Err(Error::Empty {
            what: "joint column fit".into(),
            reason: "no columns".into(),
        });
    }
    let nc = p.sigma_px.len();
    if nc == 0 || p.sigma_px.iter().any(|s| !(s.is_finite() && *s > 0.3)) {
        return Err(Error::param(
            "joint fit widths",
            format!("need finite σ > 0.3 px per class, got {:?}", p.sigma_px),
        ));
    }
    if let Some(c) = cols.iter().find(|c| c.class >= nc) {
        return Err(Error::param(
            "joint fit class",
            format!("class {} ≥ {nc} classes", c.class),
        ));
    }
    if !(p.background_spacing_px.is_finite() && p.background_spacing_px >= 2.0) {
        return Err(Error::param(
            "joint fit background spacing",
            format!("must be ≥ 2 px, got {}", p.background_spacing_px),
        ));
    }
    let map: Vec<Vec<f64>> = if p.width_map.is_empty() {
        (0..nc)
            .map(|c| (0..nc).map(|w| if w == c { 1.0 } else { 0.0 }).collect())
            .collect()
    } else {
        p.width_map.clone()
    };
    let nw = map.first().map_or(0, Vec::len);
    if map.len() != nc || nw == 0 || map.iter().any(|r| r.len() != nw) {
        return Err(Error::param(
            "joint fit width map",
            format!("needs {nc} rows of equal length"),
        ));
    }
    // Width parameters from the starting widths (least squares).
    let mut theta: Vec<f64> = (0..nw)
        .map(|w| {
            let (num, den) = (0..nc).fold((0.0, 0.0), |(a, b), c| {
                (a + map[c][w] * p.sigma_px[c], b + map[c][w] * map[c][w])
            });
            if den > 0.0 {
                num / den
            } else {
                1.0
            }
        })
        .collect();
    let widths = |theta: &[f64]| -> Vec<f64> {
        (0..nc)
            .map(|c| (0..nw).map(|w| map[c][w] * theta[w]).sum::<f64>().max(0.3))
            .collect()
    };
    let mut sigma = widths(&theta);
    let smax0 = sigma.iter().copied().fold(0.0, f64::max);
    // The region is fixed at the start (reach of the widest class, +50 %
    // headroom for width growth); stamps are clipped to it.
    if let Some(m) = &within {
        if m.dim() != image.dim() {
            return Err(Error::shape(
                "joint fit region mask",
                format!("{:?}", image.dim()),
                format!("{:?}", m.dim()),
            ));
        }
    }
    let reg = build_region(
        image,
        cols,
        1.5 * p.reach_sigma * smax0,
        p.background_spacing_px,
        within,
    )?;
    if reg.data.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "joint column fit region".into(),
            count: reg.data.iter().filter(|v| !v.is_finite()).count(),
            first: "near a column".into(),
        });
    }
    let n = cols.len();
    let nb = reg.grid.0 * reg.grid.1;
    let cls: Vec<usize> = cols.iter().map(|c| c.class).collect();
    let mut x: Vec<f64> = cols.iter().map(|c| c.x).collect();
    let mut y: Vec<f64> = cols.iter().map(|c| c.y).collect();
    let mut u = vec![0.0; n + nb];
    // Smoothness weight: comparable to the data weight of one node's pixels.
    let smooth = 1e-4 * p.background_spacing_px * p.background_spacing_px;
    let mut converged = false;
    let mut it = 0;
    let mut st = stamps(&reg, &x, &y, &cls, &sigma, &p.sigma_px, p.reach_sigma);
    while it < p.iterations {
        it += 1;
        let op = Linear {
            reg: &reg,
            st: &st,
            n,
            nb,
            smooth,
        };
        solve(&op, &reg.data, &mut u);
        let model = op.forward(&u);
        let resid: Vec<f64> = reg.data.iter().zip(&model).map(|(d, m)| d - m).collect();
        // (2) positions: one damped Gauss–Newton step per free column.
        let steps: Vec<(f64, f64)> = (0..n)
            .into_par_iter()
            .map(|i| {
                if cols[i].fixed || u[i] <= 0.0 {
                    return (0.0, 0.0);
                }
                let s2 = sigma[cls[i]].powi(2);
                let (mut jtj, mut jtr) = (Matrix3::<f64>::zeros(), Vector3::<f64>::zeros());
                for &(k, g, _) in &st[i] {
                    let (py, px) = reg.px[k as usize];
                    let (dx, dy) = (px as f64 - x[i], py as f64 - y[i]);
                    let j = Vector3::new(g, u[i] * g * dx / s2, u[i] * g * dy / s2);
                    jtj += j * j.transpose();
                    jtr += j * resid[k as usize];
                }
                match jtj.try_inverse() {
                    Some(inv) => {
                        let d = inv * jtr;
                        let (mut sx, mut sy) = (d[1], d[2]);
                        let l = sx.hypot(sy);
                        if l > p.max_step_px {
                            sx *= p.max_step_px / l;
                            sy *= p.max_step_px / l;
                        }
                        if sx.is_finite() && sy.is_finite() {
                            (0.8 * sx, 0.8 * sy)
                        } else {
                            (0.0, 0.0)
                        }
                    }
                    None => (0.0, 0.0),
                }
            })
            .collect();
        // (3) widths by variable projection: the volumes and background
        // are re-solved for every trial width, so the width step does not
        // fight them (alternating steps crawl along the narrow valley
        // between a constant background and the columns' common level).
        // Gauss–Newton on the projected residual, Jacobian by forward
        // differences (one linear solve per width parameter).
        let mut max_rel: f64 = 0.0;
        {
            let r0 = {
                let sg = widths(&theta);
                let st0 = stamps(&reg, &x, &y, &cls, &sg, &p.sigma_px, p.reach_sigma);
                let op = Linear {
                    reg: &reg,
                    st: &st0,
                    n,
                    nb,
                    smooth,
                };
                solve(&op, &reg.data, &mut u);
                let m = op.forward(&u);
                reg.data
                    .iter()
                    .zip(&m)
                    .map(|(d, m)| d - m)
                    .collect::<Vec<f64>>()
            };
            let mut jac: Vec<Vec<f64>> = Vec::with_capacity(nw);
            for w in 0..nw {
                let h = 1e-3 * theta[w].abs().max(0.3);
                let mut th = theta.clone();
                th[w] += h;
                let sg = widths(&th);
                let st1 = stamps(&reg, &x, &y, &cls, &sg, &p.sigma_px, p.reach_sigma);
                let op = Linear {
                    reg: &reg,
                    st: &st1,
                    n,
                    nb,
                    smooth,
                };
                let mut u1 = u.clone();
                solve(&op, &reg.data, &mut u1);
                let m = op.forward(&u1);
                // d(residual)/dθ = −d(model)/dθ; store d(model)/dθ.
                jac.push(
                    reg.data
                        .iter()
                        .zip(&m)
                        .zip(&r0)
                        .map(|((d, m), r)| (r - (d - m)) / h)
                        .collect(),
                );
            }
            let mut jtj = vec![0.0; nw * nw];
            let mut jtr = vec![0.0; nw];
            for a in 0..nw {
                jtr[a] = dot(&jac[a], &r0);
                for b in 0..nw {
                    jtj[a * nw + b] = dot(&jac[a], &jac[b]);
                }
            }
            let mtx = nalgebra::DMatrix::from_row_slice(nw, nw, &jtj);
            let ds = mtx
                .try_inverse()
                .map(|inv| inv * nalgebra::DVector::from_column_slice(&jtr))
                .map(|v| v.iter().copied().collect::<Vec<f64>>())
                .unwrap_or_else(|| vec![0.0; nw]);
            let mut rel: f64 = 0.0;
            for w in 0..nw {
                let step = ds[w].clamp(-0.2 * theta[w].abs(), 0.2 * theta[w].abs());
                if step.is_finite() {
                    theta[w] += step;
                    rel = rel.max((step / theta[w]).abs());
                }
            }
            max_rel = max_rel.max(rel);
        }
        sigma = widths(&theta);
        let mut max_step: f64 = 0.0;
        for i in 0..n {
            x[i] += steps[i].0;
            y[i] += steps[i].1;
            max_step = max_step.max(steps[i].0.hypot(steps[i].1));
        }
        st = stamps(&reg, &x, &y, &cls, &sigma, &p.sigma_px, p.reach_sigma);
        if max_step < 1e-3 && max_rel < 1e-5 {
            converged = true;
            break;
        }
    }
    let op = Linear {
        reg: &reg,
        st: &st,
        n,
        nb,
        smooth,
    };
    solve(&op, &reg.data, &mut u);
    let model = op.forward(&u);
    let resid: Vec<f64> = reg.data.iter().zip(&model).map(|(d, m)| d - m).collect();
    if u.iter().any(|v| !v.is_finite()) {
        return Err(Error::Numerical {
            what: "joint column fit".into(),
            reason: "the fit left the finite numbers".into(),
        });
    }
    let residual_rms = (resid.iter().map(|r| r * r).sum::<f64>() / resid.len() as f64).sqrt();
    let local_rms = (0..n)
        .map(|i| {
            let s2 = 4.0 * sigma[cls[i]].powi(2);
            let (mut ss, mut m) = (0.0, 0usize);
            for &(k, _, r2) in &st[i] {
                if r2 <= s2 {
                    ss += resid[k as usize].powi(2);
                    m += 1;
                }
            }
            if m > 0 {
                (ss / m as f64).sqrt()
            } else {
                f64::NAN
            }
        })
        .collect();
    let background = (0..n)
        .map(|i| {
            let k = reg.index[(y[i].round().max(0.0) as usize).min(reg.index.len() / reg.nx - 1)
                * reg.nx
                + (x[i].round().max(0.0) as usize).min(reg.nx - 1)];
            if k == u32::MAX {
                f64::NAN
            } else {
                reg.bw[k as usize]
                    .iter()
                    .map(|(j, c)| c * u[n + *j as usize])
                    .sum()
            }
        })
        .collect();
    Ok(JointFit {
        volume: (0..n)
            .map(|i| u[i] * sigma[cls[i]] / p.sigma_px[cls[i]])
            .collect(),
        x,
        y,
        sigma_px: sigma,
        background,
        local_rms,
        residual_rms,
        n_pixels: reg.px.len(),
        iterations: it,
        converged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Columns on a two-class square lattice (spacing `a` px, body-centred
    /// second class), each a round Gaussian of volume V and class width.
    fn scene(
        n: usize,
        a: f64,
        v: [f64; 2],
        s: [f64; 2],
        bg: f64,
    ) -> (Array2<f64>, Vec<JointColumn>) {
        let mut img = Array2::<f64>::from_elem((n, n), bg);
        let mut cols = Vec::new();
        let m = (n as f64 / a) as i64;
        for i in 0..=m {
            for j in 0..=m {
                for c in 0..2 {
                    let off = 0.5 * c as f64;
                    let (x, y) = (a * (i as f64 + off) + 3.3, a * (j as f64 + off) + 2.7);
                    if x > n as f64 - 3.0 || y > n as f64 - 3.0 {
                        continue;
                    }
                    cols.push(JointColumn {
                        x: x + 0.4,
                        y: y - 0.3,
                        class: c,
                        fixed: false,
                    });
                    let norm = v[c] / (std::f64::consts::TAU * s[c] * s[c]);
                    for ((yy, xx), p) in img.indexed_iter_mut() {
                        let r2 = (xx as f64 - x).powi(2) + (yy as f64 - y).powi(2);
                        if r2 < 100.0 * s[c] * s[c] {
                            *p += norm * (-r2 / (2.0 * s[c] * s[c])).exp();
                        }
                    }
                }
            }
        }
        (img, cols)
    }

    #[test]
    fn overlapping_two_class_volumes_are_unbiased() {
        // σ = 0.25 and 0.3 × the nearest-neighbour distance a/√2: a
        // single-column fit is biased by several %, the joint fit not.
        let a = 20.0;
        let nn = a / 2f64.sqrt();
        for (sb, sd) in [(0.25 * nn, 0.25 * nn), (0.22 * nn, 0.25 * nn)] {
            let (img, cols) = scene(128, a, [100.0, 40.0], [sb, sd], 5.0);
            let p = JointParams {
                sigma_px: vec![0.8 * sb, 0.8 * sb],
                reach_sigma: 4.0,
                background_spacing_px: 2.0 * a,
                max_step_px: 1.0,
                iterations: 60,
                width_map: Vec::new(),
            };
            let f = fit(img.view(), None, &cols, &p).unwrap();
            // Interior columns: ≥ 2 a from the image edge.
            let pick = |c: usize| -> f64 {
                let v: Vec<f64> = (0..cols.len())
                    .filter(|&i| {
                        cols[i].class == c
                            && f.x[i] > 2.0 * a
                            && f.y[i] > 2.0 * a
                            && f.x[i] < 128.0 - 2.0 * a
                            && f.y[i] < 128.0 - 2.0 * a
                    })
                    .map(|i| f.volume[i])
                    .collect();
                v.iter().sum::<f64>() / v.len() as f64
            };
            let r = pick(1) / pick(0);
            assert!((r - 0.4).abs() < 1e-3, "σ {sb:.2}/{sd:.2}: ratio {r}");
            assert!(
                (f.sigma_px[0] - sb).abs() < 1e-3 && (f.sigma_px[1] - sd).abs() < 1e-3,
                "{:?} vs {sb} {sd}, {} iterations, converged {}",
                f.sigma_px,
                f.iterations,
                f.converged
            );
        }
    }
}
