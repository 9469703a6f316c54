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
//! neighbouring nodes (so nodes with few pixels stay defined), and, when
//! `plateau_sites` are given, a plateau `h·Φ((d(x) + o)/e)` along their
//! convex hull (`plateau.rs`; docs/methods/columns.md, "Plateau").
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
//! the class widths (and the shared shape, the plateau's offset and edge)
//! by variable projection, one linear solve per parameter, in parallel.
//! Stops when positions move less than 1e-3 px and widths less than 1e-5
//! relative, or after `iterations`.
//! With `robust`, from the fourth iteration on every pixel carries a Tukey
//! biweight of its residual (scale: the residuals' MAD), so that support
//! texture — narrow positive blobs the model has no term for — does not
//! add to the volumes and widths of the columns it sits near (iteratively
//! reweighted least squares; on a textured perovskite scene the ratio
//! error falls from +0.099 to +0.021, `tests.rs`).
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

mod linear;
mod plateau;

use linear::{
    build_region, dot, solve_residual, stamps, tukey_weights, Linear, Region, Shape, Stamps, Terms,
};

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
    /// Fit one elliptical shape shared by all classes (an astigmatic or
    /// drift-stretched probe); round columns otherwise.
    pub elliptical: bool,
    /// Tukey biweights on the residual from the fourth iteration on, so
    /// that support texture (blobs the model has no term for) does not
    /// pull the volumes and widths.
    pub robust: bool,
    /// Sites whose convex hull outlines a plateau under the particle (the
    /// occupied columns); empty: no plateau term. With them the model adds
    /// `h·Φ((d + o)/e)` (see `plateau.rs`), h, o and e fitted.
    pub plateau_sites: Vec<[f64; 2]>,
}

/// The fitted plateau term.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PlateauFit {
    /// Height (image units).
    pub height: f64,
    /// How far the step lies outside the sites' hull, px.
    pub offset_px: f64,
    /// Edge width (σ of the step), px.
    pub edge_px: f64,
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
    /// Background under each column (image units); `None` for a column
    /// whose centre left the fit region.
    pub background: Vec<Option<f64>>,
    /// RMS residual within 2σ of each column (image units); `None` without
    /// fit pixels there.
    pub local_rms: Vec<Option<f64>>,
    /// RMS residual over the region.
    pub residual_rms: f64,
    /// Pixels in the fit region.
    pub n_pixels: usize,
    /// Outer iterations run.
    pub iterations: usize,
    /// Whether the stop criteria were met before the iteration limit.
    pub converged: bool,
    /// Shared shape (q₁, q₂) of the columns (0, 0 = round; see
    /// `axis_ratio`).
    pub shape_q: [f64; 2],
    /// The plateau term, when the model has one.
    pub plateau: Option<PlateauFit>,
}

impl JointFit {
    /// Major / minor axis ratio of the shared column shape.
    #[must_use]
    pub fn axis_ratio(&self) -> f64 {
        let q = self.shape_q[0].hypot(self.shape_q[1]).min(0.999);
        ((1.0 + q) / (1.0 - q)).sqrt()
    }
    /// Axes (σ along the major axis, σ along the minor axis, px) and the
    /// major axis's angle (rad, from +x) of class `class`'s shape.
    #[must_use]
    pub fn axes(&self, class: usize) -> (f64, f64, f64) {
        let [q1, q2] = self.shape_q;
        let q = q1.hypot(q2).min(0.999);
        let root = (1.0 - q * q).sqrt();
        let s = self.sigma_px[class];
        (
            s * ((1.0 + q) / root).sqrt(),
            s * ((1.0 - q) / root).sqrt(),
            0.5 * q2.atan2(q1),
        )
    }
    /// Peak height V/(2πσ²) of column `i` of class `c`.
    #[must_use]
    pub fn height(&self, i: usize, class: usize) -> f64 {
        self.volume[i] / (std::f64::consts::TAU * self.sigma_px[class].powi(2))
    }
}

/// Validated width map (classes × width parameters) of `p`.
fn validate(cols: &[JointColumn], p: &JointParams) -> Result<Vec<Vec<f64>>> {
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
    Ok(map)
}

/// Everything fixed during the iterations.
struct Problem<'a> {
    reg: Region,
    cols: &'a [JointColumn],
    cls: Vec<usize>,
    p: &'a JointParams,
    map: Vec<Vec<f64>>,
    nb: usize,
    smooth: f64,
    /// Signed distance of each region pixel to the plateau's outline
    /// (empty without a plateau term).
    dist: Vec<f64>,
    /// Largest |offset| and edge width of the plateau step, px.
    plateau_reach: f64,
}

/// Nonlinear parameters θ: the mapped widths, then (q₁, q₂) when
/// elliptical, then the plateau's offset (px) and ln edge width (px).
impl Problem<'_> {
    fn shape(&self, theta: &[f64]) -> Shape {
        let nw = self.nw();
        if self.p.elliptical {
            Shape {
                q1: theta[nw],
                q2: theta[nw + 1],
            }
        } else {
            Shape::ROUND
        }
    }
    /// Index of the plateau's offset in θ, when the model has a plateau.
    fn plateau_at(&self) -> Option<usize> {
        (!self.dist.is_empty()).then(|| self.nw() + if self.p.elliptical { 2 } else { 0 })
    }
}

impl Problem<'_> {
    fn widths(&self, theta: &[f64]) -> Vec<f64> {
        self.map
            .iter()
            .map(|row| {
                row.iter()
                    .zip(theta)
                    .map(|(m, t)| m * t)
                    .sum::<f64>()
                    .max(0.3)
            })
            .collect()
    }
    fn nw(&self) -> usize {
        self.map[0].len()
    }
    fn terms(&self, x: &[f64], y: &[f64], theta: &[f64]) -> Terms {
        let st = stamps(
            &self.reg,
            x,
            y,
            &self.cls,
            &self.widths(theta),
            &self.p.sigma_px,
            self.p.reach_sigma,
            self.shape(theta),
        );
        let plateau = match self.plateau_at() {
            Some(j) => {
                let (o, e) = (theta[j], theta[j + 1].exp());
                self.dist.iter().map(|d| plateau::step(*d, o, e)).collect()
            }
            None => Vec::new(),
        };
        Terms { st, plateau }
    }
    fn op<'b>(&'b self, t: &'b Terms) -> Linear<'b> {
        Linear {
            reg: &self.reg,
            st: &t.st,
            plateau: &t.plateau,
            n: self.cols.len(),
            nb: self.nb,
            smooth: self.smooth,
        }
    }
    /// One damped Gauss–Newton step of each free column's (V, x, y).
    fn position_steps(
        &self,
        st: &Stamps,
        resid: &[f64],
        u: &[f64],
        (x, y): (&[f64], &[f64]),
        theta: &[f64],
    ) -> Vec<(f64, f64)> {
        let max = self.p.max_step_px;
        let sigma = self.widths(theta);
        let shape = self.shape(theta);
        (0..self.cols.len())
            .into_par_iter()
            .map(|i| {
                if self.cols[i].fixed || u[i] <= 0.0 {
                    return (0.0, 0.0);
                }
                let s2 = sigma[self.cls[i]].powi(2);
                let (mut jtj, mut jtr) = (Matrix3::<f64>::zeros(), Vector3::<f64>::zeros());
                for &(k, g, _) in &st[i] {
                    let (py, px) = self.reg.px[k as usize];
                    let (dx, dy) = shape.metric(px as f64 - x[i], py as f64 - y[i]);
                    let j = Vector3::new(g, u[i] * g * dx / s2, u[i] * g * dy / s2);
                    let w = self.reg.weight[k as usize];
                    jtj += w * j * j.transpose();
                    jtr += w * j * resid[k as usize];
                }
                let Some(inv) = jtj.try_inverse() else {
                    return (0.0, 0.0);
                };
                let d = inv * jtr;
                let (mut sx, mut sy) = (d[1], d[2]);
                let l = sx.hypot(sy);
                if l > max {
                    sx *= max / l;
                    sy *= max / l;
                }
                if sx.is_finite() && sy.is_finite() {
                    (0.8 * sx, 0.8 * sy)
                } else {
                    (0.0, 0.0)
                }
            })
            .collect()
    }
    /// Widths by variable projection: the volumes and background are
    /// re-solved for every trial width, so the width step does not fight
    /// them (alternating steps crawl along the narrow valley between a
    /// constant background and the columns' common level). One Gauss–Newton
    /// step on the projected residual, Jacobian by forward differences.
    /// Returns the largest relative step.
    /// `r0` is the residual of the solved linear part at `theta` (the
    /// caller's solve; `u` its solution).
    fn width_step(
        &self,
        (x, y): (&[f64], &[f64]),
        r0: &[f64],
        theta: &mut [f64],
        u: &[f64],
    ) -> f64 {
        let nw = theta.len();
        let n_widths = self.nw();
        let plateau = self.plateau_at();
        // One linear solve per parameter, in parallel (each is independent;
        // the result does not depend on the thread count).
        let jac: Vec<Vec<f64>> = (0..nw)
            .into_par_iter()
            .map(|w| {
                let h = if w < n_widths {
                    1e-3 * theta[w].abs().max(0.3)
                } else if Some(w) == plateau {
                    1e-2
                } else {
                    1e-3
                };
                let mut th = theta.to_vec();
                th[w] += h;
                let t1 = self.terms(x, y, &th);
                let mut u1 = u.to_vec();
                let r1 = solve_residual(&self.op(&t1), &mut u1);
                // d(model)/dθ = −d(residual)/dθ.
                r0.iter().zip(&r1).map(|(a, b)| (a - b) / h).collect()
            })
            .collect();
        let wt = &self.reg.weight;
        let wjac: Vec<Vec<f64>> = jac
            .iter()
            .map(|j| j.iter().zip(wt).map(|(a, w)| a * w).collect())
            .collect();
        let mut jtj = vec![0.0; nw * nw];
        let mut jtr = vec![0.0; nw];
        for a in 0..nw {
            jtr[a] = dot(&wjac[a], r0);
            for b in 0..nw {
                jtj[a * nw + b] = dot(&wjac[a], &jac[b]);
            }
        }
        // A parameter the data do not see (the plateau's offset and edge
        // when its height is zero) gets no step instead of a singular
        // system.
        let dmax = (0..nw).map(|a| jtj[a * nw + a]).fold(0.0, f64::max);
        for a in 0..nw {
            jtj[a * nw + a] += 1e-12 * dmax;
        }
        let ds = nalgebra::DMatrix::from_row_slice(nw, nw, &jtj)
            .try_inverse()
            .map(|inv| inv * nalgebra::DVector::from_column_slice(&jtr))
            .map(|v| v.iter().copied().collect::<Vec<f64>>())
            .unwrap_or_else(|| vec![0.0; nw]);
        let mut rel: f64 = 0.0;
        for (w, (t, d)) in theta.iter_mut().zip(ds).enumerate() {
            if w < n_widths {
                let step = d.clamp(-0.2 * t.abs(), 0.2 * t.abs());
                if step.is_finite() {
                    *t += step;
                    rel = rel.max((step / *t).abs());
                }
            } else if Some(w) == plateau {
                // Offset, px: the convergence test wants 1e-3 px.
                let r = self.plateau_reach;
                let step = d.clamp(-0.1 * r, 0.1 * r);
                if step.is_finite() {
                    *t = (*t + step).clamp(-r, r);
                    rel = rel.max(1e-2 * step.abs());
                }
            } else if plateau.is_some_and(|j| w == j + 1) {
                // ln edge width.
                let step = d.clamp(-0.3, 0.3);
                if step.is_finite() {
                    *t = (*t + step).clamp(0.5f64.ln(), self.plateau_reach.ln());
                    rel = rel.max(1e-2 * step.abs());
                }
            } else {
                let step = d.clamp(-0.05, 0.05);
                if step.is_finite() {
                    *t = (*t + step).clamp(-Shape::MAX_Q, Shape::MAX_Q);
                    rel = rel.max(step.abs());
                }
            }
        }
        rel
    }
    /// The result: volumes, local residuals, background under each column.
    fn finish(
        &self,
        t: &Terms,
        u: &[f64],
        (x, y): (Vec<f64>, Vec<f64>),
        theta: &[f64],
        (iterations, converged): (usize, bool),
    ) -> Result<JointFit> {
        let n = self.cols.len();
        let sigma = self.widths(theta);
        let shape = self.shape(theta);
        let st = &t.st;
        let resid = {
            let m = self.op(t).forward(u);
            self.reg
                .data
                .iter()
                .zip(&m)
                .map(|(d, m)| d - m)
                .collect::<Vec<f64>>()
        };
        if u.iter().any(|v| !v.is_finite()) {
            return Err(Error::Numerical {
                what: "joint column fit".into(),
                reason: "the fit left the finite numbers".into(),
            });
        }
        let residual_rms = (resid.iter().map(|r| r * r).sum::<f64>() / resid.len() as f64).sqrt();
        let local_rms = (0..n)
            .map(|i| {
                let s2 = 4.0 * sigma[self.cls[i]].powi(2);
                let (mut ss, mut m) = (0.0, 0usize);
                for &(k, _, r2) in &st[i] {
                    if r2 <= s2 {
                        ss += resid[k as usize].powi(2);
                        m += 1;
                    }
                }
                (m > 0).then(|| (ss / m as f64).sqrt())
            })
            .collect();
        let reg = &self.reg;
        let ny = reg.index.len() / reg.nx;
        let background = (0..n)
            .map(|i| {
                let yy = (y[i].round().max(0.0) as usize).min(ny - 1);
                let xx = (x[i].round().max(0.0) as usize).min(reg.nx - 1);
                let k = reg.index[yy * reg.nx + xx];
                (k != u32::MAX).then(|| {
                    reg.bw[k as usize]
                        .iter()
                        .map(|(j, c)| c * u[n + *j as usize])
                        .sum::<f64>()
                        + t.plateau
                            .get(k as usize)
                            .map_or(0.0, |p| p * u[n + self.nb])
                })
            })
            .collect();
        Ok(JointFit {
            volume: (0..n)
                .map(|i| u[i] * sigma[self.cls[i]] / self.p.sigma_px[self.cls[i]])
                .collect(),
            x,
            y,
            sigma_px: sigma,
            background,
            local_rms,
            residual_rms,
            n_pixels: reg.px.len(),
            iterations,
            converged,
            shape_q: [shape.q1, shape.q2],
            plateau: self.plateau_at().map(|j| PlateauFit {
                height: u[n + self.nb],
                offset_px: theta[j],
                edge_px: theta[j + 1].exp(),
            }),
        })
    }
}

/// Fit the joint model to `image` (see the module doc).
///
/// # Errors
/// No columns, a width or class out of range, a region mask of the wrong
/// shape, non-finite pixels near the columns, a fit that leaves the finite
/// numbers.
pub fn fit(
    image: ArrayView2<f64>,
    within: Option<ArrayView2<bool>>,
    cols: &[JointColumn],
    p: &JointParams,
) -> Result<JointFit> {
    let map = validate(cols, p)?;
    let (nc, nw) = (map.len(), map[0].len());
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
    if p.elliptical {
        theta.extend([0.0, 0.0]);
    }
    let hull = plateau::convex_hull(&p.plateau_sites);
    if !p.plateau_sites.is_empty() && hull.len() < 3 {
        return Err(Error::param(
            "joint fit plateau",
            format!("the outline of {} sites has no area", p.plateau_sites.len()),
        ));
    }
    if let Some(m) = &within {
        if m.dim() != image.dim() {
            return Err(Error::shape(
                "joint fit region mask",
                format!("{:?}", image.dim()),
                format!("{:?}", m.dim()),
            ));
        }
    }
    // The region is fixed at the start (reach of the widest class, +50 %
    // headroom for width growth); stamps are clipped to it.
    let smax0 = p.sigma_px.iter().copied().fold(0.0, f64::max);
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
    let nb = reg.grid.0 * reg.grid.1;
    // The plateau step starts on the outline, as sharp as the widest
    // column, and stays within the region's reach of it.
    let plateau_reach = (1.5 * p.reach_sigma * smax0).max(2.0);
    let dist: Vec<f64> = if hull.len() >= 3 {
        theta.extend([0.0, smax0.max(0.6).ln()]);
        reg.px
            .iter()
            .map(|&(y, x)| plateau::signed_distance(&hull, x as f64, y as f64))
            .collect()
    } else {
        Vec::new()
    };
    let mut pr = Problem {
        reg,
        cols,
        cls: cols.iter().map(|c| c.class).collect(),
        p,
        map,
        nb,
        // Smoothness weight: small against the data weight of one node's
        // pixels (it only keeps nodes with few pixels defined).
        smooth: 1e-4 * p.background_spacing_px * p.background_spacing_px,
        dist,
        plateau_reach,
    };
    let mut x: Vec<f64> = cols.iter().map(|c| c.x).collect();
    let mut y: Vec<f64> = cols.iter().map(|c| c.y).collect();
    let mut u = vec![0.0; cols.len() + nb + usize::from(!pr.dist.is_empty())];
    let mut st = pr.terms(&x, &y, &theta);
    let (mut it, mut converged) = (0, false);
    while it < p.iterations {
        it += 1;
        let mut resid = solve_residual(&pr.op(&st), &mut u);
        if p.robust && it >= 3 && tukey_weights(&resid, &mut pr.reg.weight) {
            resid = solve_residual(&pr.op(&st), &mut u);
        }
        let steps = pr.position_steps(&st.st, &resid, &u, (&x, &y), &theta);
        let max_rel = pr.width_step((&x, &y), &resid, &mut theta, &u);
        let mut max_step: f64 = 0.0;
        for (i, s) in steps.iter().enumerate() {
            x[i] += s.0;
            y[i] += s.1;
            max_step = max_step.max(s.0.hypot(s.1));
        }
        st = pr.terms(&x, &y, &theta);
        if max_step < 1e-3 && max_rel < 1e-5 {
            converged = true;
            break;
        }
    }
    solve_residual(&pr.op(&st), &mut u);
    pr.finish(&st, &u, (x, y), &theta, (it, converged))
}

#[cfg(test)]
mod tests;
