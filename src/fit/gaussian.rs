//! 7-parameter 2-D Gaussians fitted to atomic columns by Levenberg–Marquardt
//! (docs/methods/fitting.md; the `levenberg-marquardt` crate, MINPACK's trust-region
//! LM, with the analytic Jacobian).
//!
//! Model θ = (B, A, x₀, y₀, σ_x, σ_y, φ):
//! `u = (x − x₀)cos φ + (y − y₀)sin φ`, `v = −(x − x₀)sin φ + (y − y₀)cos φ`,
//! `G = B + A·exp(−u²/(2σ_x²) − v²/(2σ_y²))`. σ's are fitted as ln σ (always
//! positive); φ is wrapped into (−π/2, π/2] and the output has σ_x ≥ σ_y.
//! A round Gaussian (|σ_x − σ_y| < 1e-3 σ) has φ reported as 0 and
//! `rotation_defined = false`. Volume V = 2π·A·σ_x·σ_y.
//!
//! Each column is fitted in the disk of radius `radius_px` around its
//! centroid; a fit that leaves the disk, has A ≤ 0 or σ ratio > 4 is retried
//! in a 10 % smaller disk (≤ 10 times), then falls back to the centroid and
//! is flagged — it is kept, never dropped. Columns are independent problems
//! fitted in parallel (rayon); the result does not depend on the thread
//! count. `Neighbours::Sweep` refits each column after subtracting its
//! neighbours' current models (StatSTEM-style sweeps, docs/methods/fitting.md).

use levenberg_marquardt::{LeastSquaresProblem, LevenbergMarquardt};
use nalgebra::{storage::Owned, DVector, Dyn, SMatrix, Vector, U7};
use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::image::STUDY_PIXEL_ANGSTROM;
use crate::structure::LATTICE_ANGSTROM;

/// Parameters of a fitted column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gaussian7 {
    /// Constant baseline B.
    pub baseline: f64,
    /// Peak height A above the baseline.
    pub height: f64,
    /// Centre x, px.
    pub x0: f64,
    /// Centre y, px.
    pub y0: f64,
    /// σ along the rotated u axis, px.
    pub sigma_x: f64,
    /// σ along the rotated v axis, px.
    pub sigma_y: f64,
    /// Rotation φ of the u axis from +x towards +y, rad.
    pub rotation: f64,
}

impl Gaussian7 {
    /// Peak part A·E at (x, y), without the baseline.
    #[must_use]
    pub fn peak_at(&self, x: f64, y: f64) -> f64 {
        let (s, c) = self.rotation.sin_cos();
        let (dx, dy) = (x - self.x0, y - self.y0);
        let u = dx * c + dy * s;
        let v = -dx * s + dy * c;
        self.height
            * (-u * u / (2.0 * self.sigma_x * self.sigma_x)
                - v * v / (2.0 * self.sigma_y * self.sigma_y))
                .exp()
    }
    /// Model value B + A·E at (x, y).
    #[must_use]
    pub fn at(&self, x: f64, y: f64) -> f64 {
        self.baseline + self.peak_at(x, y)
    }
    /// Volume 2π·A·σ_x·σ_y (px² × intensity).
    #[must_use]
    pub fn volume(&self) -> f64 {
        std::f64::consts::TAU * self.height * self.sigma_x * self.sigma_y
    }
}

/// How neighbouring columns are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Neighbours {
    /// Each column alone in its disk (the study's procedure; the fastest,
    /// and it refuses the fewest inputs, but neighbours' tails in the disk
    /// bias its ratio: −0.018 on the randomized benchmark —
    /// docs/benchmarks.md).
    Single,
    /// Refit after subtracting the neighbours' fitted models (2 sweeps).
    Sweep,
    /// Every column of the particle in one model with a width per class
    /// (`stem::joint`): unbiased volumes where neighbours overlap on clean
    /// Gaussian columns; volumes measured on the linear average and checked
    /// against a finer background model and against the image with its
    /// noise added once more (no ratio when either moves it by > 5 %).
    /// The default of the column analysis (`ColumnsParams`): its ratio is
    /// unbiased to ±0.005 on the randomized benchmark where the single fit's
    /// is not; about 1.5 s more per 1024² image (docs/methods/columns.md).
    Joint,
}

/// Fit settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitParams {
    /// Fit disk radius, px.
    pub radius_px: f64,
    /// Weight residuals by 1/√max(I, 1) (Poisson).
    pub poisson_weights: bool,
    /// Neighbour handling.
    pub neighbours: Neighbours,
    /// Number of sweeps for `Neighbours::Sweep`.
    pub sweeps: usize,
}

impl FitParams {
    /// The column analysis' settings for a lattice constant of `a_px` px:
    /// fit disk radius 0.5·a/2 (the study's), no Poisson weights, each column
    /// alone in its disk, 2 sweeps (used by [`Neighbours::Sweep`]).
    #[must_use]
    pub fn for_lattice_px(a_px: f64) -> FitParams {
        FitParams {
            radius_px: 0.5 * a_px / 2.0,
            poisson_weights: false,
            neighbours: Neighbours::Single,
            sweeps: 2,
        }
    }
}

impl Default for FitParams {
    /// [`FitParams::for_lattice_px`] at the study's sampling: a = 5.87 Å at
    /// 0.1 Å/px, 58.7 px (fit radius 14.7 px = 1.47 Å).
    fn default() -> Self {
        FitParams::for_lattice_px(LATTICE_ANGSTROM / STUDY_PIXEL_ANGSTROM)
    }
}

/// Outcome of one column fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitStatus {
    /// Converged in the full disk.
    Converged,
    /// Converged after shrinking the disk.
    ConvergedSmallerDisk,
    /// No acceptable fit: position is the centroid, height/baseline the
    /// starting estimates.
    CentroidFallback,
    /// Fewer than 7 pixels in the disk: not fitted.
    TooFewPixels,
    /// The disk leaves the image: not fitted.
    Border,
}

/// One fitted column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColumnFit {
    /// Fitted (or fallback) parameters. A fallback keeps the centroid as
    /// the position and the starting estimates of the other parameters
    /// (NaN when the disk held fewer than 2 pixels: `status` says which).
    pub params: Gaussian7,
    /// 1-σ standard errors of (B, A, x₀, y₀, σ_x, σ_y, φ) from
    /// s²(JᵀJ)⁻¹; each `None` when not fitted (every one for a fallback or
    /// a joint-fit column, φ's for a round Gaussian, whose rotation is
    /// undetermined).
    pub stderr: [Option<f64>; 7],
    /// RMS of model − data in the disk; `None` when not fitted (a joint-fit
    /// column: `None` without pixels within 2σ).
    pub residual_rms: Option<f64>,
    /// Function evaluations used (all attempts).
    pub evaluations: usize,
    /// Pixels in the final disk.
    pub n_pixels: usize,
    /// Outcome.
    pub status: FitStatus,
    /// False for a round Gaussian (φ meaningless, reported 0).
    pub rotation_defined: bool,
}

impl ColumnFit {
    /// True when the LM fit converged and passed the gates.
    #[must_use]
    pub fn converged(&self) -> bool {
        matches!(
            self.status,
            FitStatus::Converged | FitStatus::ConvergedSmallerDisk
        )
    }
}

struct Problem {
    xs: Vec<f64>,
    ys: Vec<f64>,
    data: Vec<f64>,
    w: Vec<f64>,
    p: Vector<f64, U7, Owned<f64, U7>>,
}

impl Problem {
    /// Model value and the 7 derivatives w.r.t. (B, A, x₀, y₀, ln σx, ln σy, φ).
    #[inline]
    fn eval(p: &[f64], x: f64, y: f64) -> (f64, [f64; 7]) {
        let (a, x0, y0, sx, sy, phi) = (p[1], p[2], p[3], p[4].exp(), p[5].exp(), p[6]);
        let (s, c) = phi.sin_cos();
        let (dx, dy) = (x - x0, y - y0);
        let u = dx * c + dy * s;
        let v = -dx * s + dy * c;
        let (isx2, isy2) = (1.0 / (sx * sx), 1.0 / (sy * sy));
        let e = (-0.5 * (u * u * isx2 + v * v * isy2)).exp();
        let ae = a * e;
        let d = [
            1.0,
            e,
            ae * (u * c * isx2 - v * s * isy2),
            ae * (u * s * isx2 + v * c * isy2),
            ae * u * u * isx2,
            ae * v * v * isy2,
            ae * u * v * (isy2 - isx2),
        ];
        (p[0] + ae, d)
    }
}

impl LeastSquaresProblem<f64, Dyn, U7> for Problem {
    type ResidualStorage = Owned<f64, Dyn>;
    type JacobianStorage = Owned<f64, Dyn, U7>;
    type ParameterStorage = Owned<f64, U7>;

    fn set_params(&mut self, x: &Vector<f64, U7, Self::ParameterStorage>) {
        self.p.copy_from(x);
    }
    fn params(&self) -> Vector<f64, U7, Self::ParameterStorage> {
        self.p
    }
    fn residuals(&self) -> Option<DVector<f64>> {
        let p = self.p.as_slice();
        let r = DVector::from_iterator(
            self.data.len(),
            (0..self.data.len())
                .map(|i| self.w[i] * (Self::eval(p, self.xs[i], self.ys[i]).0 - self.data[i])),
        );
        r.iter().all(|v| v.is_finite()).then_some(r)
    }
    fn jacobian(&self) -> Option<nalgebra::Matrix<f64, Dyn, U7, Self::JacobianStorage>> {
        let p = self.p.as_slice();
        let n = self.data.len();
        let mut j = nalgebra::OMatrix::<f64, Dyn, U7>::zeros(n);
        for i in 0..n {
            let (_, d) = Self::eval(p, self.xs[i], self.ys[i]);
            for (k, dk) in d.iter().enumerate() {
                j[(i, k)] = self.w[i] * dk;
            }
        }
        j.iter().all(|v| v.is_finite()).then_some(j)
    }
}

/// Analytic Jacobian of the model at `params` (w.r.t. B, A, x₀, y₀, σ_x,
/// σ_y, φ), for tests against finite differences.
#[must_use]
pub fn model_jacobian(g: &Gaussian7, x: f64, y: f64) -> [f64; 7] {
    let p = [
        g.baseline,
        g.height,
        g.x0,
        g.y0,
        g.sigma_x.ln(),
        g.sigma_y.ln(),
        g.rotation,
    ];
    let (_, mut d) = Problem::eval(&p, x, y);
    d[4] /= g.sigma_x;
    d[5] /= g.sigma_y;
    d
}

/// Pixels of the disk of radius `r` around (x, y) as (x, y, value); `None`
/// when the disk leaves the image.
fn gather(
    image: ArrayView2<f64>,
    x: f64,
    y: f64,
    r: f64,
    subtract: &dyn Fn(f64, f64) -> f64,
) -> Option<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let (ny, nx) = image.dim();
    if x - r < 0.0 || y - r < 0.0 || x + r > (nx - 1) as f64 || y + r > (ny - 1) as f64 {
        return None;
    }
    let (xi, yi) = (x.round() as i64, y.round() as i64);
    let ri = r.ceil() as i64 + 1;
    let (mut xs, mut ys, mut vs) = (Vec::new(), Vec::new(), Vec::new());
    for yy in (yi - ri).max(0)..=(yi + ri).min(ny as i64 - 1) {
        for xx in (xi - ri).max(0)..=(xi + ri).min(nx as i64 - 1) {
            let (xf, yf) = (xx as f64, yy as f64);
            if (xf - x).powi(2) + (yf - y).powi(2) <= r * r {
                xs.push(xf);
                ys.push(yf);
                vs.push(image[[yy as usize, xx as usize]] - subtract(xf, yf));
            }
        }
    }
    Some((xs, ys, vs))
}

fn start_params(xs: &[f64], ys: &[f64], vs: &[f64], x: f64, y: f64) -> [f64; 7] {
    let mut sorted = vs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let k = ((sorted.len() as f64 * 0.05).ceil() as usize).max(1);
    let b = sorted[(k - 1) / 2];
    // Value at the centroid: nearest pixel (the disk is on integer pixels).
    let (mut best, mut peak) = (f64::INFINITY, sorted[sorted.len() - 1]);
    for i in 0..xs.len() {
        let d = (xs[i] - x).powi(2) + (ys[i] - y).powi(2);
        if d < best {
            best = d;
            peak = vs[i];
        }
    }
    let a = (peak - b).max(1e-12);
    let n_half = vs.iter().filter(|v| **v - b > a / 2.0).count().max(1);
    let r_hm = (n_half as f64 / std::f64::consts::PI).sqrt();
    let sigma = (r_hm / 1.1774).max(0.5);
    [b, a, x, y, sigma.ln(), sigma.ln(), 0.0]
}

fn finish(p: &[f64]) -> (Gaussian7, bool) {
    let (mut sx, mut sy, mut phi) = (p[4].exp(), p[5].exp(), p[6]);
    if sx < sy {
        std::mem::swap(&mut sx, &mut sy);
        phi += std::f64::consts::FRAC_PI_2;
    }
    let pi = std::f64::consts::PI;
    phi = phi.rem_euclid(pi); // [0, π)
    if phi > pi / 2.0 {
        phi -= pi;
    }
    let defined = (sx - sy).abs() >= 1e-3 * sx.max(sy);
    if !defined {
        phi = 0.0;
    }
    (
        Gaussian7 {
            baseline: p[0],
            height: p[1],
            x0: p[2],
            y0: p[3],
            sigma_x: sx,
            sigma_y: sy,
            rotation: phi,
        },
        defined,
    )
}

/// Fit one column around `start` (its centroid). `subtract(x, y)` is removed
/// from the data first (neighbour models; zero for a single fit).
#[must_use]
pub fn fit_column(
    image: ArrayView2<f64>,
    start: (f64, f64),
    opts: &FitParams,
    subtract: &dyn Fn(f64, f64) -> f64,
) -> ColumnFit {
    let fallback = |status, xs: &[f64], ys: &[f64], vs: &[f64], evals| {
        let p = if vs.len() >= 2 {
            start_params(xs, ys, vs, start.0, start.1)
        } else {
            [
                f64::NAN,
                f64::NAN,
                start.0,
                start.1,
                f64::NAN,
                f64::NAN,
                0.0,
            ]
        };
        let (mut g, _) = finish(&p);
        g.x0 = start.0;
        g.y0 = start.1;
        ColumnFit {
            params: g,
            stderr: [None; 7],
            residual_rms: None,
            evaluations: evals,
            n_pixels: vs.len(),
            status,
            rotation_defined: false,
        }
    };
    let mut r = opts.radius_px;
    let mut evals = 0;
    let mut last = None;
    for attempt in 0..=10 {
        let Some((xs, ys, vs)) = gather(image, start.0, start.1, r, subtract) else {
            return fallback(FitStatus::Border, &[], &[], &[], 0);
        };
        if vs.len() < 7 {
            return fallback(FitStatus::TooFewPixels, &xs, &ys, &vs, evals);
        }
        let p0 = start_params(&xs, &ys, &vs, start.0, start.1);
        let w: Vec<f64> = if opts.poisson_weights {
            vs.iter().map(|v| 1.0 / v.max(1.0).sqrt()).collect()
        } else {
            vec![1.0; vs.len()]
        };
        let problem = Problem {
            xs,
            ys,
            data: vs,
            w,
            p: Vector::<f64, U7, Owned<f64, U7>>::from_column_slice(&p0),
        };
        let (problem, report) = LevenbergMarquardt::new()
            .with_ftol(1e-10)
            .with_xtol(1e-10)
            .with_patience(200)
            .minimize(problem);
        evals += report.number_of_evaluations;
        let p = problem.p.as_slice().to_vec();
        let ok_lm = report.termination.was_successful();
        let (g, defined) = finish(&p);
        let centre_in = (g.x0 - start.0).hypot(g.y0 - start.1) <= r;
        let n = problem.data.len();
        let res = problem.residuals().unwrap_or_else(|| DVector::zeros(n));
        let ss: f64 = res.iter().map(|v| v * v).sum();
        let stderr = covariance_stderr(&problem, ss, &p);
        // A degenerate fit (flat window: A → 0, x₀ and σ undetermined) has a
        // singular JᵀJ; a peak must also stand above its own uncertainty.
        let gates = ok_lm
            && p.iter().all(|v| v.is_finite())
            && stderr[..6].iter().all(|v| v.is_finite())
            && centre_in
            && g.height > 0.0
            && g.height > stderr[1]
            && g.sigma_x / g.sigma_y <= 4.0;
        if gates {
            // Unweighted RMS residual.
            let rms = (0..n)
                .map(|i| {
                    (Problem::eval(&p, problem.xs[i], problem.ys[i]).0 - problem.data[i]).powi(2)
                })
                .sum::<f64>()
                / n as f64;
            let finite = |v: f64| v.is_finite().then_some(v);
            return ColumnFit {
                params: g,
                stderr: stderr.map(finite),
                residual_rms: finite(rms.sqrt()),
                evaluations: evals,
                n_pixels: n,
                status: if attempt == 0 {
                    FitStatus::Converged
                } else {
                    FitStatus::ConvergedSmallerDisk
                },
                rotation_defined: defined,
            };
        }
        last = Some((problem.xs, problem.ys, problem.data));
        r *= 0.9;
    }
    let (xs, ys, vs) = last.unwrap_or_default();
    fallback(FitStatus::CentroidFallback, &xs, &ys, &vs, evals)
}

/// Standard errors from s²(JᵀJ)⁻¹ with s² = Σr²/(n − 7), mapped from ln σ
/// to σ (and taking the σ swap into account); NaN where undetermined
/// ([`ColumnFit::stderr`] turns those into `None`).
fn covariance_stderr(problem: &Problem, ss: f64, p: &[f64]) -> [f64; 7] {
    let n = problem.data.len();
    let mut out = [f64::NAN; 7];
    if n <= 7 {
        return out;
    }
    let Some(j) = problem.jacobian() else {
        return out;
    };
    let jtj: SMatrix<f64, 7, 7> = j.transpose() * &j;
    let s2 = ss / (n - 7) as f64;
    let (sx, sy) = (p[4].exp(), p[5].exp());
    if (sx - sy).abs() < 1e-3 * sx.max(sy) {
        // Round: φ is undetermined (its Jacobian column vanishes); the
        // other six parameters come from the 6×6 block.
        let sub: SMatrix<f64, 6, 6> = jtj.fixed_view::<6, 6>(0, 0).into_owned();
        let Some(inv) = sub.try_inverse() else {
            return out;
        };
        for (k, o) in out.iter_mut().take(6).enumerate() {
            *o = (s2 * inv[(k, k)]).max(0.0).sqrt();
        }
    } else {
        let Some(inv) = jtj.try_inverse() else {
            return out;
        };
        for (k, o) in out.iter_mut().enumerate() {
            *o = (s2 * inv[(k, k)]).max(0.0).sqrt();
        }
    }
    out[4] *= p[4].exp();
    out[5] *= p[5].exp();
    if p[4] < p[5] {
        out.swap(4, 5);
    }
    out
}

/// Widest σ, in fit-disk radii, that the data in the disk can set: a
/// converged fit wider than this is an extrapolation (its volume can be
/// 10⁹ × the others'); the column analysis flags it, and a sweep never
/// subtracts it from its neighbours (one such model under the whole
/// particle made every refit of a 1-frame image fail).
pub const MAX_SIGMA_PER_RADIUS: f64 = 2.0;

/// Fit every column (in parallel; order and values independent of the
/// thread count). With `Neighbours::Sweep`, each later sweep subtracts the
/// peak part of every other converged column within 3 fit radii + 4 σ
/// whose σ is at most [`MAX_SIGMA_PER_RADIUS`] disk radii.
///
/// # Errors
/// Non-finite pixels; invalid radius.
pub fn fit_columns(
    image: ArrayView2<f64>,
    starts: &[(f64, f64)],
    opts: &FitParams,
) -> Result<Vec<ColumnFit>> {
    if !(opts.radius_px.is_finite() && opts.radius_px > 0.0) {
        return Err(Error::param(
            "fit radius",
            format!("must be > 0 px, got {}", opts.radius_px),
        ));
    }
    if let Some(i) = image.iter().position(|v| !v.is_finite()) {
        let nx = image.ncols();
        return Err(Error::NonFinite {
            what: "column fit image".into(),
            count: image.iter().filter(|v| !v.is_finite()).count(),
            first: format!("(y, x) = ({}, {})", i / nx, i % nx),
        });
    }
    let zero = |_: f64, _: f64| 0.0;
    let mut fits: Vec<ColumnFit> = starts
        .par_iter()
        .map(|&s| fit_column(image, s, opts, &zero))
        .collect();
    if opts.neighbours == Neighbours::Sweep {
        for _ in 0..opts.sweeps {
            let prev = fits.clone();
            let reach = 3.0 * opts.radius_px;
            fits = starts
                .par_iter()
                .enumerate()
                .map(|(i, &s)| {
                    let near: Vec<Gaussian7> = prev
                        .iter()
                        .enumerate()
                        .filter(|(j, f)| {
                            *j != i
                                && f.converged()
                                && f.params.sigma_x <= MAX_SIGMA_PER_RADIUS * opts.radius_px
                                && (f.params.x0 - s.0).hypot(f.params.y0 - s.1)
                                    < reach + 4.0 * f.params.sigma_x
                        })
                        .map(|(_, f)| f.params)
                        .collect();
                    let sub = |x: f64, y: f64| near.iter().map(|g| g.peak_at(x, y)).sum::<f64>();
                    fit_column(image, s, opts, &sub)
                })
                .collect();
        }
    }
    Ok(fits)
}
