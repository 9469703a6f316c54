//! The iterations of the joint fit: the fixed problem, the model's terms
//! at given nonlinear parameters, the position and width steps, and the
//! result (see the parent module's documentation).

use nalgebra::{Matrix3, Vector3};
use rayon::prelude::*;

use super::linear::{dot, solve_residual, stamps, Linear, Shape, Stamps, Terms};
use super::normal::Factor;
use super::region::Region;
use super::support::{support_excess, volume_shift};
use super::{plateau, JointColumn, JointFit, JointParams, PlateauFit};
use crate::error::{Error, Result};

/// Fewest standard errors of a column's volume for its position to be
/// fitted (see [`Problem::position_steps`]).
pub(super) const MIN_VOLUME_SIGNIFICANCE: f64 = 3.0;

/// Largest step of the plateau's offset per iteration, in its reach, and
/// of its ln edge width. With 0.1 and 0.3 the offset crawled at its bound
/// for a dozen iterations toward where a plateau of no height ends (the
/// region's edge), and every refit ran to its iteration limit; the trust
/// radius ([`Trust`]) still halves on a reversal.
const MAX_OFFSET_STEP: f64 = 0.3;
const MAX_LN_EDGE_STEP: f64 = 0.6;

/// A column's position step (px) and the standard error of its position.
#[derive(Debug, Clone, Copy)]
pub(super) struct PositionStep {
    pub(super) dx: f64,
    pub(super) dy: f64,
    pub(super) se_px: f64,
    /// Standard error of the volume (∞ for a column that took no step).
    pub(super) se_volume: f64,
    /// Whether the column's volume is significant (at least
    /// [`MIN_VOLUME_SIGNIFICANCE`] standard errors): only such columns'
    /// steps decide whether the positions have settled.
    pub(super) significant: bool,
}

/// What [`Problem::width_step`] changed: the largest relative step of a
/// width or the shape, the plateau term's change (`Problem::plateau_change`,
/// same scale) and the plateau's new values.
pub(super) struct WidthStep {
    pub(super) rel: f64,
    pub(super) plateau_rel: f64,
    pub(super) plateau: Vec<f64>,
}

/// Step bounds of the plateau's offset and edge that shrink when a step
/// reverses the previous one: their Gauss–Newton steps overshoot (the step
/// is far from linear in them), and with fixed bounds the two swung
/// between the same two values every iteration, so the fit never stopped.
#[derive(Debug, Clone)]
pub(super) struct Trust {
    radius: Vec<f64>,
    last: Vec<f64>,
}

impl Trust {
    pub(super) fn new(n: usize) -> Self {
        Trust {
            radius: vec![f64::INFINITY; n],
            last: vec![0.0; n],
        }
    }
    /// Step `d` of parameter `w`, within `max` and the current radius;
    /// the radius halves after a reversal and grows by half otherwise.
    fn clamp(&mut self, w: usize, d: f64, max: f64) -> f64 {
        let r = self.radius[w].min(max);
        let step = d.clamp(-r, r);
        self.radius[w] = if step * self.last[w] < 0.0 {
            0.5 * r
        } else {
            (1.5 * r).min(max)
        };
        self.last[w] = step;
        step
    }
}

/// Everything fixed during the iterations.
pub(super) struct Problem<'a> {
    pub(super) reg: Region,
    pub(super) cols: &'a [JointColumn],
    pub(super) cls: Vec<usize>,
    pub(super) p: &'a JointParams,
    pub(super) map: Vec<Vec<f64>>,
    pub(super) nb: usize,
    pub(super) smooth: f64,
    /// Signed distance of each region pixel to the plateau's outline
    /// (empty without a plateau term).
    pub(super) dist: Vec<f64>,
    /// Largest |offset| and edge width of the plateau step, px.
    pub(super) plateau_reach: f64,
}

/// Nonlinear parameters θ: the mapped widths, then (q₁, q₂) when
/// elliptical, then the plateau's offset (px) and ln edge width (px).
impl Problem<'_> {
    pub(super) fn shape(&self, theta: &[f64]) -> Shape {
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
    pub(super) fn plateau_at(&self) -> Option<usize> {
        (!self.dist.is_empty()).then(|| self.nw() + if self.p.elliptical { 2 } else { 0 })
    }
}

impl Problem<'_> {
    pub(super) fn widths(&self, theta: &[f64]) -> Vec<f64> {
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
    pub(super) fn nw(&self) -> usize {
        self.map[0].len()
    }
    pub(super) fn terms(&self, x: &[f64], y: &[f64], theta: &[f64]) -> Terms {
        Terms {
            st: self.stamps_at(x, y, theta),
            plateau: self.plateau_values(theta),
        }
    }
    /// The columns' stamps at positions (x, y) and parameters `theta`.
    pub(super) fn stamps_at(&self, x: &[f64], y: &[f64], theta: &[f64]) -> Stamps {
        stamps(
            &self.reg,
            x,
            y,
            &self.cls,
            &self.widths(theta),
            &self.p.sigma_px,
            self.p.reach_sigma,
            self.shape(theta),
        )
    }
    /// The plateau's value at each region pixel (empty without one).
    fn plateau_values(&self, theta: &[f64]) -> Vec<f64> {
        match self.plateau_at() {
            Some(j) => {
                let (o, e) = (theta[j], theta[j + 1].exp());
                self.dist.iter().map(|d| plateau::step(*d, o, e)).collect()
            }
            None => Vec::new(),
        }
    }
    pub(super) fn op<'b>(&'b self, t: &'b Terms) -> Linear<'b> {
        self.op_with(t, None)
    }
    /// [`Self::op`] preconditioned by `pre` (a factored normal matrix of
    /// these or nearby parameters).
    pub(super) fn op_with<'b>(&'b self, t: &'b Terms, pre: Option<&'b Factor>) -> Linear<'b> {
        self.linear(&t.st, &t.plateau, pre)
    }
    fn linear<'b>(
        &'b self,
        st: &'b Stamps,
        plateau: &'b [f64],
        pre: Option<&'b Factor>,
    ) -> Linear<'b> {
        Linear {
            pre,
            reg: &self.reg,
            st,
            plateau,
            n: self.cols.len(),
            nb: self.nb,
            smooth: self.smooth,
        }
    }
    /// One damped Gauss–Newton step of each free column's (V, x, y), and
    /// the standard error of its position (px; infinite for a column held
    /// in place).
    ///
    /// With position smoothing, a column whose volume is not significant
    /// (below [`MIN_VOLUME_SIGNIFICANCE`] standard errors, from the local
    /// residual variance and the 3×3 normal matrix) takes no step of its
    /// own and follows its neighbours' smoothed displacement: the position
    /// of an empty or nearly empty site is set by the noise, and a Gauss–
    /// Newton step scaled by 1/V sends it to the step limit every
    /// iteration, so the fit never settles. Without smoothing such a column
    /// would be frozen at its start — on a 2-frame testbed case the
    /// detection then found no interior column — so it moves as before.
    pub(super) fn position_steps(
        &self,
        st: &Stamps,
        resid: &[f64],
        u: &[f64],
        (x, y): (&[f64], &[f64]),
        theta: &[f64],
    ) -> Vec<PositionStep> {
        let max = self.p.max_step_px;
        let sigma = self.widths(theta);
        let shape = self.shape(theta);
        let smoothing = self.p.position_smoothing_px > 0.0;
        const HELD: PositionStep = PositionStep {
            dx: 0.0,
            dy: 0.0,
            se_px: f64::INFINITY,
            se_volume: f64::INFINITY,
            significant: false,
        };
        (0..self.cols.len())
            .into_par_iter()
            .map(|i| {
                if self.cols[i].fixed || u[i] <= 0.0 {
                    return HELD;
                }
                let s2 = sigma[self.cls[i]].powi(2);
                let (mut jtj, mut jtr) = (Matrix3::<f64>::zeros(), Vector3::<f64>::zeros());
                let (mut rr, mut ww) = (0.0, 0.0);
                for (k, g) in st.column(i) {
                    let (py, px) = self.reg.px[k];
                    let (dx, dy) = shape.metric(px as f64 - x[i], py as f64 - y[i]);
                    let j = Vector3::new(g, u[i] * g * dx / s2, u[i] * g * dy / s2);
                    let w = self.reg.weight[k];
                    jtj += w * j * j.transpose();
                    jtr += w * j * resid[k];
                    rr += w * resid[k] * resid[k];
                    ww += w;
                }
                let Some(inv) = jtj.try_inverse() else {
                    return HELD;
                };
                // Residual variance per pixel over the stamp (weighted).
                let var = if ww > 3.0 { rr / (ww - 3.0) } else { 0.0 };
                let se_v = (var * inv[(0, 0)]).max(0.0).sqrt();
                let significant = u[i] >= MIN_VOLUME_SIGNIFICANCE * se_v;
                if smoothing && !significant {
                    return HELD;
                }
                let se_px = (var * 0.5 * (inv[(1, 1)] + inv[(2, 2)])).max(0.0).sqrt();
                let d = inv * jtr;
                let (mut sx, mut sy) = (d[1], d[2]);
                let l = sx.hypot(sy);
                if l > max {
                    sx *= max / l;
                    sy *= max / l;
                }
                if !(sx.is_finite() && sy.is_finite()) {
                    return HELD;
                }
                // Within `max_shift_px` of the start.
                let (c, r) = (&self.cols[i], self.p.max_shift_px);
                let (mut nx, mut ny) = (x[i] + 0.8 * sx - c.x, y[i] + 0.8 * sy - c.y);
                let d = nx.hypot(ny);
                if d > r {
                    nx *= r / d;
                    ny *= r / d;
                }
                PositionStep {
                    dx: c.x + nx - x[i],
                    dy: c.y + ny - y[i],
                    se_px,
                    se_volume: se_v,
                    significant,
                }
            })
            .collect()
    }
    /// Widths by variable projection: the volumes and background are
    /// re-solved for every trial width, so the width step does not fight
    /// them (alternating steps crawl along the narrow valley between a
    /// constant background and the columns' common level). One Gauss–Newton
    /// step on the projected residual, Jacobian by forward differences.
    /// Returns the largest relative step and the plateau's values at the
    /// new `theta` (empty without a plateau; the next terms reuse them).
    /// `base` are the terms at (x, y, `theta`), `r0` the residual of the
    /// solved linear part there (the caller's solve), `u` its solution and
    /// `pre` the factored normal matrix at `theta` that preconditions the
    /// trial solves.
    pub(super) fn width_step(
        &self,
        (x, y, base): (&[f64], &[f64], &Terms),
        r0: &[f64],
        theta: &mut [f64],
        (u, pre): (&[f64], Option<&Factor>),
        trust: &mut Trust,
    ) -> WidthStep {
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
                // The plateau's parameters leave the stamps as they are,
                // the others the plateau.
                let mut u1 = u.to_vec();
                let r1 = if plateau.is_some_and(|j| w == j || w == j + 1) {
                    let p1 = self.plateau_values(&th);
                    solve_residual(&self.linear(&base.st, &p1, pre), &mut u1)
                } else {
                    let s1 = self.stamps_at(x, y, &th);
                    solve_residual(&self.linear(&s1, &base.plateau, pre), &mut u1)
                };
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
                // Offset, px.
                let r = self.plateau_reach;
                let step = trust.clamp(w, d, MAX_OFFSET_STEP * r);
                if step.is_finite() {
                    *t = (*t + step).clamp(-r, r);
                }
            } else if plateau.is_some_and(|j| w == j + 1) {
                // ln edge width.
                let step = trust.clamp(w, d, MAX_LN_EDGE_STEP);
                if step.is_finite() {
                    *t = (*t + step).clamp(0.5f64.ln(), self.plateau_reach.ln());
                }
            } else {
                let step = d.clamp(-0.05, 0.05);
                if step.is_finite() {
                    *t = (*t + step).clamp(-Shape::MAX_Q, Shape::MAX_Q);
                    rel = rel.max(step.abs());
                }
            }
        }
        let new_plateau = self.plateau_values(theta);
        let plateau_rel = if plateau.is_some() {
            self.plateau_change(&base.plateau, &new_plateau, u, r0)
        } else {
            0.0
        };
        WidthStep {
            rel,
            plateau_rel,
            plateau: new_plateau,
        }
    }
    /// How far the plateau's offset and edge step moved the plateau term
    /// (from `old` to `new`, times its height in `u`): the
    /// largest change at any pixel in units of 100 × the residual's RMS
    /// (from `r0`), so that `WIDTH_TOLERANCE` (10⁻³) asks for 10 % of the
    /// noise. A plateau of no height has settled
    /// wherever its offset and edge are — they are not defined then, and
    /// counted as a step of their own (0.01 px) they held every refit to
    /// its iteration limit.
    fn plateau_change(&self, old: &[f64], new: &[f64], u: &[f64], r0: &[f64]) -> f64 {
        let h = u[self.cols.len() + self.nb];
        let moved = old
            .iter()
            .zip(new)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let w = &self.reg.weight;
        let (ss, sw) = r0
            .iter()
            .zip(w)
            .fold((0.0, 0.0), |(a, b), (r, w)| (a + w * r * r, b + w));
        let rms = if sw > 0.0 { (ss / sw).sqrt() } else { 0.0 };
        if rms > 0.0 {
            1e-2 * (h * moved).abs() / rms
        } else {
            0.0
        }
    }
    /// With robust weights: the support's excess over its robust location
    /// (`support::support_excess`, from the residual `resid` of the solved
    /// linear part), taken back out of the column weights in `u`
    /// (`support::volume_shift`). Returns the level and its pixel count.
    pub(super) fn take_out_support_excess(
        &self,
        t: &Terms,
        theta: &[f64],
        resid: &[f64],
        u: &mut [f64],
    ) -> Option<(f64, usize)> {
        let sigma = self.widths(theta);
        let excess = support_excess(&t.st, &|i| sigma[self.cls[i]], resid, &self.dist)?;
        let shift = volume_shift(&self.reg, &t.st, excess.0);
        for (v, d) in u.iter_mut().zip(shift) {
            *v -= d;
        }
        Some(excess)
    }
    /// The result: volumes, local residuals, background under each column.
    pub(super) fn finish(
        &self,
        t: &Terms,
        u: &[f64],
        (x, y): (Vec<f64>, Vec<f64>),
        theta: &[f64],
        (iterations, converged): (usize, bool),
        support_excess: Option<(f64, usize)>,
    ) -> Result<JointFit> {
        let n = self.cols.len();
        let sigma = self.widths(theta);
        let shape = self.shape(theta);
        let st = &t.st;
        // The support's excess (taken out of the volumes) is part of the
        // background under the columns.
        let level = support_excess.map_or(0.0, |e| e.0);
        let resid = {
            let m = self.op(t).forward(u);
            self.reg
                .data
                .iter()
                .zip(&m)
                .map(|(d, m)| d - m - level)
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
                for (k, r2) in st.column_r2(i) {
                    if r2 <= s2 {
                        ss += resid[k].powi(2);
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
                        .pairs()
                        .map(|(j, c)| c * u[n + j])
                        .sum::<f64>()
                        + t.plateau
                            .get(k as usize)
                            .map_or(0.0, |p| p * u[n + self.nb])
                        + level
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
            support_excess,
            noise: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Trust;

    #[test]
    fn trust_radius_halves_on_reversal_and_grows_back() {
        // A parameter whose Gauss–Newton step overshoots by a factor 3
        // around its optimum 0: fixed bounds of ±1 swing between ±1 for
        // ever; the trust radius brings it to the optimum.
        let mut t = Trust::new(1);
        let mut x: f64 = 0.7;
        for _ in 0..40 {
            x += t.clamp(0, -3.0 * x, 1.0);
        }
        assert!(x.abs() < 1e-3, "x = {x}");
        // Steps of one sign are never cut below the bound.
        let mut t = Trust::new(1);
        for _ in 0..5 {
            assert_eq!(t.clamp(0, 2.0, 1.0), 1.0);
        }
    }
}
