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
//! Stops when no column with a significant volume moves by more than
//! `POSITION_TOLERANCE_SE` of its position's standard error (or 1e-3 px),
//! the widths by less than `WIDTH_TOLERANCE` relative and the plateau term
//! by less than a tenth of the noise (or no significant volume by more than
//! `VOLUME_TOLERANCE_SE` of its standard error), or after `iterations`.
//! A column moves at most `max_shift_px` from its start.
//! With `position_smoothing_px`, every position step is followed by
//! averaging each column's displacement from its start with its class's
//! neighbours (`positions.rs`): free positions let the noise of weak
//! columns leak into the class widths. A column whose volume is not
//! significant then takes no step of its own (`Problem::position_steps`).
//! With `robust`, from the third iteration on (from the first when the fit
//! starts from an earlier fit's state) every pixel carries a Tukey
//! biweight of its residual (scale: the counting noise at its model value,
//! an affine variance fitted to binned MADs — `robust::tukey_weights`), so that support
//! texture — narrow positive blobs the model has no term for — does not
//! add to the volumes and widths of the columns it sits near (iteratively
//! reweighted least squares; on a textured perovskite scene the ratio
//! error falls from +0.099 to +0.018, `tests.rs`). Since the weights put
//! the background at a robust location of the support, not its mean, the
//! support's mean excess between the columns is measured at the end and
//! taken back out of the volumes (`support::support_excess`,
//! `support::volume_shift`; docs/methods/columns.md, "The support's mean
//! under the columns").
//! Sums run in a fixed order: the result does not depend on the thread
//! count.
//!
//! Written here: no maintained Rust crate fits sparse sums of Gaussians
//! with shared parameters; the 3×3 solves use nalgebra.

use ndarray::ArrayView2;
use serde::Serialize;

use crate::error::{Error, Result};

mod linear;
mod normal;
mod plateau;
mod positions;
mod problem;
mod region;
mod robust;
mod support;

use linear::{solve_residual, Terms};
use normal::{Factor, Symbolic};
use problem::{Problem, Trust};
use region::build_region;
pub use robust::NoiseModel;
use robust::{noise_model, tukey_weights};

/// The plateau's offset and edge have settled when their step moves the
/// plateau term by less than `WIDTH_TOLERANCE` (`Problem::plateau_change`)
/// or when no column with a significant volume changed its volume by more
/// than this many standard errors in the iteration: once the volumes no
/// longer notice it, where a flat plateau edge comes to rest does not
/// matter to any result.
const VOLUME_TOLERANCE_SE: f64 = 0.05;
/// Positions have settled when no column with a significant volume moves
/// by more than this many standard errors of its position in an iteration
/// (or by 1e-3 px).
const POSITION_TOLERANCE_SE: f64 = 0.05;
/// Widths and shape have settled below this relative step (the plateau
/// term below 10 % of the residual's RMS: `Problem::plateau_change`).
/// 1e-4 asked for widths to 0.01 %, which the reweighted iterations
/// approach only slowly; on the 60-case benchmark 1e-3 gives the same
/// accuracy (docs/benchmarks.md).
const WIDTH_TOLERANCE: f64 = 1e-3;

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
    /// Largest distance of a column from its start, px. Without a bound a
    /// weak or empty site at the particle's edge walks off (10 px on a
    /// 1024² scene, half a lattice constant) and its volume grows without
    /// limit as its stamp leaves the region (×500 the median; 12 outer
    /// iterations that never converged).
    pub max_shift_px: f64,
    /// Outer iterations at most.
    pub iterations: usize,
    /// Width (px) of the Gaussian over which, after every position step,
    /// each column's displacement from its start is averaged with its
    /// class's neighbours (0: free positions). The starts should then be
    /// the sites of a lattice. See `positions.rs`.
    pub position_smoothing_px: f64,
    /// Fit one elliptical shape shared by all classes (an astigmatic or
    /// drift-stretched probe); round columns otherwise.
    pub elliptical: bool,
    /// Tukey biweights on the residual from the third iteration on, so
    /// that support texture (blobs the model has no term for) does not
    /// pull the volumes and widths.
    pub robust: bool,
    /// Sites whose convex hull outlines a plateau under the particle (the
    /// occupied columns); empty: no plateau term. With them the model adds
    /// `h·Φ((d + o)/e)` (see `plateau.rs`), h, o and e fitted.
    pub plateau_sites: Vec<[f64; 2]>,
    /// The background grid's axes (e.g. the lattice's: one node per unit
    /// cell); `None`: nodes along the image axes every
    /// `background_spacing_px` from the region's corner.
    pub background_axes: Option<GridAxes>,
}

/// A background grid on its own axes: bilinear nodes at
/// `node + i·step₁ + j·step₂` (px, each (x, y)).
///
/// On the lattice's axes with one node per unit cell (steps a₁, a₂) the
/// background cannot take up the lattice-periodic difference between the
/// two sublattices: the bilinear basis's transform, sinc²(h)·sinc²(k) in
/// the grid's own frequencies (h, k), vanishes at every reciprocal lattice
/// vector. A grid along the image axes keeps sinc²(0.7) = 14 % of its
/// response at the (1,0) reflections at 0.7a (40 % at 0.5a) at rotation 0;
/// a least-squares fit of it to that contrast at 23° takes up 30 % (81 %),
/// the lattice's grid 2–3 % (docs/methods/columns.md, "Background grid").
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GridAxes {
    /// First step, px.
    pub step1: [f64; 2],
    /// Second step, px.
    pub step2: [f64; 2],
    /// One node, px.
    pub node: [f64; 2],
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
    /// With robust weights: the mean residual of the support between the
    /// columns (image units) that was taken back out of the volumes, and
    /// the pixels it was measured on; `None` without robust weights or
    /// with too few such pixels (see the module doc).
    pub support_excess: Option<(f64, usize)>,
    /// The counting noise measured on the final residual (see
    /// [`NoiseModel`]); `None` when every residual is zero.
    pub noise: Option<NoiseModel>,
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
    if let Some(g) = p.background_axes {
        let area = g.step1[0] * g.step2[1] - g.step1[1] * g.step2[0];
        let finite = [g.step1, g.step2, g.node]
            .iter()
            .flatten()
            .all(|v| v.is_finite());
        if !(finite && area.abs() >= 4.0) {
            return Err(Error::param(
                "joint fit background axes",
                format!("need finite steps spanning ≥ 4 px², got {g:?}"),
            ));
        }
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

/// Width parameters θ that best give the starting widths `sigma_px`
/// through `map` (least squares over all classes at once; a per-parameter
/// fit that ignored the other parameters' share started the tied map
/// `[[1, 0], [0, 1], [½, ½]]` 20 % too wide).
fn start_widths(map: &[Vec<f64>], sigma_px: &[f64]) -> Vec<f64> {
    let nw = map[0].len();
    let m = nalgebra::DMatrix::from_fn(map.len(), nw, |c, w| map[c][w]);
    let s = nalgebra::DVector::from_column_slice(sigma_px);
    let mtm = m.transpose() * &m;
    match mtm.try_inverse() {
        Some(inv) => (inv * m.transpose() * s).iter().copied().collect(),
        None => vec![sigma_px.iter().sum::<f64>() / sigma_px.len() as f64; nw],
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
    fit_from(image, within, cols, p, None)
}

/// [`fit`] from the state of an earlier fit `start` of the same columns
/// (its positions, widths, shape and plateau), e.g. the same model on a
/// perturbed image or with another background grid: it then needs a few
/// iterations instead of a dozen. The columns' starts (`cols`) stay the
/// reference of `max_shift_px` and of the position smoothing.
///
/// # Errors
/// As [`fit`]; `start` for another number of columns.
pub fn fit_from(
    image: ArrayView2<f64>,
    within: Option<ArrayView2<bool>>,
    cols: &[JointColumn],
    p: &JointParams,
    start: Option<&JointFit>,
) -> Result<JointFit> {
    let map = validate(cols, p)?;
    let hull = check_inputs(image.dim(), within.as_ref(), cols, (p, map.len()), start)?;
    let mut theta = start_widths(&map, start.map_or(&p.sigma_px, |s| &s.sigma_px));
    if p.elliptical {
        theta.extend(start.map_or([0.0, 0.0], |s| s.shape_q));
    }
    // The region is fixed at the start (reach of the widest class, +50 %
    // headroom for width growth); stamps are clipped to it.
    let smax0 = p.sigma_px.iter().copied().fold(0.0, f64::max);
    let reg = build_region(
        image,
        cols,
        1.5 * p.reach_sigma * smax0,
        (p.background_spacing_px, p.background_axes),
        within,
    )?;
    let nb = reg.grid.0 * reg.grid.1;
    // The plateau step starts on the outline, as sharp as the widest
    // column, and stays within the region's reach of it.
    let plateau_reach = (1.5 * p.reach_sigma * smax0).max(2.0);
    let dist: Vec<f64> = if hull.len() >= 3 {
        theta.extend(match start.and_then(|s| s.plateau) {
            Some(pf) => [
                pf.offset_px.clamp(-plateau_reach, plateau_reach),
                pf.edge_px.clamp(0.5, plateau_reach).ln(),
            ],
            None => [0.0, smax0.max(0.6).ln()],
        });
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
    let (mut x, mut y): (Vec<f64>, Vec<f64>) = match start {
        Some(s) => (s.x.clone(), s.y.clone()),
        None => (
            cols.iter().map(|c| c.x).collect(),
            cols.iter().map(|c| c.y).collect(),
        ),
    };
    let mut u = vec![0.0; cols.len() + nb + usize::from(!pr.dist.is_empty())];
    let mut st = pr.terms(&x, &y, &theta);
    let mut trust = Trust::new(theta.len());
    let (mut it, mut converged) = (0, false);
    let mut volumes_before: Option<Vec<f64>> = None;
    // Robust weights need a model close to the data: from the third
    // iteration, or at once from an earlier fit's state.
    let robust_from = if start.is_some() { 1 } else { 3 };
    let mut sym = Symbolic::default();
    while it < p.iterations {
        it += 1;
        let mut fac = Factor::new_reusing(&pr.op(&st), &mut sym);
        let mut resid = solve_residual(&pr.op_with(&st, fac.as_ref()), &mut u);
        if p.robust && it >= robust_from && tukey_weights(&resid, &pr.reg.data, &mut pr.reg.weight)
        {
            fac = Factor::new_reusing(&pr.op(&st), &mut sym);
            resid = solve_residual(&pr.op_with(&st, fac.as_ref()), &mut u);
        }
        let steps = pr.position_steps(&st.st, &resid, &u, (&x, &y), &theta);
        let volumes_moved = volume_change(&steps, volumes_before.as_deref(), &u);
        volumes_before = Some(u[..cols.len()].to_vec());
        let w = pr.width_step(
            (&x, &y, &st),
            &resid,
            &mut theta,
            (&u, fac.as_ref()),
            &mut trust,
        );
        let (max_step, max_step_se) = apply_steps(cols, p, &steps, (&mut x, &mut y));
        st = Terms {
            st: pr.stamps_at(&x, &y, &theta),
            plateau: w.plateau,
        };
        let positions_settled = max_step < 1e-3 || max_step_se < POSITION_TOLERANCE_SE;
        let plateau_settled =
            w.plateau_rel < WIDTH_TOLERANCE || volumes_moved < VOLUME_TOLERANCE_SE;
        if positions_settled && w.rel < WIDTH_TOLERANCE && plateau_settled {
            converged = true;
            break;
        }
    }
    let fac = Factor::new_reusing(&pr.op(&st), &mut sym);
    let resid = solve_residual(&pr.op_with(&st, fac.as_ref()), &mut u);
    let excess = if p.robust {
        pr.take_out_support_excess(&st, &theta, &resid, &mut u)
    } else {
        None
    };
    let mut out = pr.finish(&st, &u, (x, y), &theta, (it, converged), excess)?;
    out.noise = noise_model(&resid, &pr.reg.data);
    Ok(out)
}

/// The largest change of a significant column's volume between the
/// previous iteration's solve (`before`; none in the first) and this one's
/// (`u`), in standard errors of the volume.
fn volume_change(steps: &[problem::PositionStep], before: Option<&[f64]>, u: &[f64]) -> f64 {
    let Some(before) = before else {
        return f64::INFINITY;
    };
    steps
        .iter()
        .zip(before.iter().zip(u))
        .filter(|(s, _)| s.significant)
        .map(|(s, (a, b))| (b - a).abs() / s.se_volume)
        .fold(0.0, f64::max)
}

/// The checks of [`fit_from`]'s inputs beyond [`validate`] (`n_classes`
/// classes): the start's size, the plateau's outline (returned; empty
/// without plateau sites), the region mask's shape.
fn check_inputs(
    dim: (usize, usize),
    within: Option<&ArrayView2<bool>>,
    cols: &[JointColumn],
    (p, n_classes): (&JointParams, usize),
    start: Option<&JointFit>,
) -> Result<Vec<[f64; 2]>> {
    if let Some(s) = start {
        if s.x.len() != cols.len() || s.y.len() != cols.len() || s.sigma_px.len() != n_classes {
            return Err(Error::param(
                "joint fit start",
                format!(
                    "a fit of {} columns and {} classes for {} columns and {n_classes} classes",
                    s.x.len(),
                    s.sigma_px.len(),
                    cols.len(),
                ),
            ));
        }
    }
    let hull = plateau::convex_hull(&p.plateau_sites);
    if !p.plateau_sites.is_empty() && hull.len() < 3 {
        return Err(Error::param(
            "joint fit plateau",
            format!("the outline of {} sites has no area", p.plateau_sites.len()),
        ));
    }
    if let Some(m) = within {
        if m.dim() != dim {
            return Err(Error::shape(
                "joint fit region mask",
                format!("{dim:?}"),
                format!("{:?}", m.dim()),
            ));
        }
    }
    Ok(hull)
}

/// The columns' position steps applied to (x, y), then (with
/// `position_smoothing_px`) averaged over their neighbours and kept within
/// `max_shift_px`. Returns the largest move of a column with a significant
/// volume, in px and in its position's standard errors (the position of an
/// empty site is set by the noise and need not settle).
fn apply_steps(
    cols: &[JointColumn],
    p: &JointParams,
    steps: &[problem::PositionStep],
    (x, y): (&mut Vec<f64>, &mut Vec<f64>),
) -> (f64, f64) {
    let (x0, y0) = (x.clone(), y.clone());
    for (i, s) in steps.iter().enumerate() {
        x[i] += s.dx;
        y[i] += s.dy;
    }
    if p.position_smoothing_px > 0.0 {
        let se: Vec<f64> = steps.iter().map(|s| s.se_px).collect();
        (*x, *y) = positions::smoothed(cols, (x, y), &se, p.position_smoothing_px);
        positions::within_reach(cols, (x, y), p.max_shift_px);
    }
    let (mut max_step, mut max_step_se): (f64, f64) = (0.0, 0.0);
    for (i, s) in steps.iter().enumerate().filter(|(_, s)| s.significant) {
        let l = (x[i] - x0[i]).hypot(y[i] - y0[i]);
        max_step = max_step.max(l);
        max_step_se = max_step_se.max(l / s.se_px);
    }
    (max_step, max_step_se)
}

#[cfg(test)]
mod tests;
