//! Lattice-guided detection of both column sublattices of a cubic
//! perovskite along \[001\], with identity from the lattice and physics, and
//! refusal where the evidence is weak (docs/methods/columns.md).
//!
//! 1. **Lattice** ([`reciprocal::measure`]) from the spectrum of the particle
//!    region (an intensity mask smoothed by a, as the window): cube-axis
//!    basis a₁, a₂ and a site of the brighter class. The given lattice
//!    constant is a check only: > 5 % off warns, > 20 % off refuses (a
//!    combined lattice a/√2 found in place of a — named as such — means the
//!    (1,0) reflections are too weak: very few cells, or two classes that
//!    look alike; a superstructure, 2a, is not this material).
//! 2. **Crystal mask**: the local amplitude of the four strongest lattice
//!    reflections (g₁, g₂, g₁ ± g₂; Gaussian masks in Fourier space, real-
//!    space resolution ≈ a/2), thresholded by Otsu's method, largest
//!    component, holes filled, grown by 0.8a. Amorphous texture has no
//!    lattice amplitude, however bright its maxima; the whole particle,
//!    corners included, has it.
//! 3. **Sites** ([`sites::find_sites`]): corner, centre and anion sites in
//!    the mask, refined by centre of mass and an affine lattice fit.
//! 4. **Joint fit** ([`joint::fit`]) of every site at once: volumes, widths
//!    per class, positions.
//! 5. **Occupancy and classes**: a corner/centre site holds a column when
//!    its volume exceeds 35 % of the upper quartile of its class. A column
//!    is interior when its four other-class neighbours are occupied and its
//!    model stays inside the image. The class with the larger median
//!    interior volume is Pb/Br (B/X), the other Cs (A).
//! 6. **Refusals** (an error, no ratio): no lattice; a lattice that is not
//!    square; far from the given constant; the body-centre sites hold no
//!    columns (one sublattice); fewer than 4 interior columns per class; the
//!    classes not separated — more than 10 % of interior columns not
//!    brighter (Pb/Br) or darker (Cs) than the median of their four
//!    other-class neighbours.

use ndarray::{Array2, ArrayView2};
use serde::Serialize;

use crate::error::{Error, Result, Warnings};
use crate::fft::{self, Complex};
use crate::stem::background::gaussian::gaussian_filter;
use crate::stem::joint::{self, JointColumn, JointFit, JointParams};
use crate::stem::reciprocal::{self, LatticeSearch, MeasuredLattice};
use crate::stem::sites::{self, AffineLattice, Site, SiteKind};
use crate::stem::{mask, peaks};

mod classify;
mod refits;

pub use refits::{
    occupied_sites, reclassify, refit, refit_model, refit_with_added_noise, refit_with_grid,
    BackgroundGrid, CHECK_BACKGROUND, MAX_BACKGROUND_SENSITIVITY, MAX_NOISE_SENSITIVITY,
    REFIT_BACKGROUND,
};

/// Limits of the detection (fractions are of the quantities named).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectParams {
    /// Lattice constant expected (Å): a check, not the detector's scale.
    pub expected_lattice_angstrom: f64,
    /// Warn when the measured constant differs by more than this fraction.
    pub warn_fraction: f64,
    /// Refuse when it differs by more than this fraction.
    pub refuse_fraction: f64,
    /// Use the crystal mask (false: every site in the image).
    pub mask: bool,
    /// Occupied: volume above this fraction of the class's upper quartile.
    pub occupancy_fraction: f64,
    /// Refuse when more than this fraction of interior columns disagree
    /// with their site's class.
    pub max_mismatch_fraction: f64,
    /// Fewest interior columns per class for a ratio.
    pub min_interior_per_class: usize,
}

impl Default for DetectParams {
    fn default() -> Self {
        DetectParams {
            expected_lattice_angstrom: crate::stem::synth::LATTICE_ANGSTROM,
            warn_fraction: 0.05,
            refuse_fraction: 0.20,
            mask: true,
            occupancy_fraction: 0.35,
            max_mismatch_fraction: 0.10,
            min_interior_per_class: 4,
        }
    }
}

/// What was measured about the lattice (reported in `summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatticeReport {
    /// Measured cubic lattice constant, Å.
    pub measured_angstrom: f64,
    /// Expected (given) constant, Å.
    pub expected_angstrom: f64,
    /// |a₁|/|a₂| − 1.
    pub aspect_minus_one: f64,
    /// Angle between a₁ and a₂, degrees.
    pub angle_deg: f64,
    /// Contrast of the (1,0) and (0,1) reflections.
    pub contrast_10: [f64; 2],
    /// Refined basis a₁, a₂ (x, y), px.
    pub basis_px: [[f64; 2]; 2],
    /// Pixels in the crystal mask.
    pub mask_pixels: usize,
    /// Sites predicted (corner, centre, anion).
    pub n_sites: [usize; 3],
    /// Corner / centre sites holding a column.
    pub n_occupied: [usize; 2],
    /// Joint fit: widths of the classes (corner, centre, anion), px.
    pub sigma_px: Vec<f64>,
    /// Joint fit iterations and convergence.
    pub joint_iterations: usize,
    /// Joint fit converged.
    pub joint_converged: bool,
    /// `--neighbours joint`: relative change of the volume ratio with the
    /// check refit's finer background grid (see
    /// [`MAX_BACKGROUND_SENSITIVITY`]).
    pub background_sensitivity: Option<f64>,
    /// `--neighbours joint`: relative change of the volume ratio with the
    /// noise doubled (see [`MAX_NOISE_SENSITIVITY`]).
    pub noise_sensitivity: Option<f64>,
}

/// One detected column (corner or centre site holding a column, or an
/// anion site).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Detected {
    /// The site.
    pub site: Site,
    /// Index into the joint fit.
    pub fit_index: usize,
    /// Holds a column (always true for anion sites reported).
    pub occupied: bool,
    /// All four other-class neighbours occupied, model inside the image.
    pub interior: bool,
}

/// The detection's result.
#[derive(Debug, Clone)]
pub struct Detection {
    /// Corner/centre sites that hold a column, then the anion sites.
    pub columns: Vec<Detected>,
    /// The joint fit (indices as in `Detected::fit_index`).
    pub fit: JointFit,
    /// Refined lattice.
    pub lattice: AffineLattice,
    /// True when the corner class is the brighter (Pb/Br) one.
    pub corner_is_bright: bool,
    /// Interior columns whose volume disagrees with their class.
    pub mismatch: Vec<bool>,
    /// Fraction of interior columns that disagree.
    pub mismatch_fraction: f64,
    /// The crystal mask.
    pub mask: Array2<bool>,
    /// Lattice report.
    pub report: LatticeReport,
    /// The joint model's columns (every site), settings and region, for a
    /// refit on another image ([`refit`]).
    pub model: JointModel,
}

/// What a joint fit of the detected sites needs besides the image.
#[derive(Debug, Clone)]
pub struct JointModel {
    /// Every site as a joint-fit column (indices as the fit's).
    pub columns: Vec<JointColumn>,
    /// Settings of the detection's joint fit.
    pub params: JointParams,
    /// Fit region: the particle, grown a little.
    pub region: Array2<bool>,
    /// Every site (indices as the fit's).
    pub sites: Vec<Site>,
}

fn refuse(what: &str, reason: String) -> Error {
    Error::Numerical {
        what: what.to_string(),
        reason: format!("no ratio: {reason}"),
    }
}

/// Measure the lattice: window from the intensity mask, fall back to the
/// whole image when that fails.
fn lattice_stage(img: ArrayView2<f64>, a_px: f64) -> Result<MeasuredLattice> {
    let (ny, nx) = img.dim();
    let search = LatticeSearch {
        d_min_px: (0.3 * a_px).max(2.0),
        d_max_px: (1.6 * a_px).max(4.0),
        min_contrast: 20.0,
    };
    let window = match peaks::qd_mask(img, a_px, None, a_px) {
        Ok((m, _)) if m.iter().filter(|v| **v).count() * 50 > m.len() => {
            let f = m.mapv(|b| if b { 1.0f32 } else { 0.0 });
            gaussian_filter(f.view(), 0.5 * a_px, 3.0)?.mapv(f64::from)
        }
        _ => Array2::from_shape_fn((ny, nx), |(y, x)| tukey(y, ny) * tukey(x, nx)),
    };
    match reciprocal::measure(img, window.view(), &search) {
        Ok(m) => Ok(m),
        Err(_) => {
            let w = Array2::from_shape_fn((ny, nx), |(y, x)| tukey(y, ny) * tukey(x, nx));
            reciprocal::measure(img, w.view(), &search)
        }
    }
}

fn tukey(i: usize, n: usize) -> f64 {
    let t = i as f64 / (n.max(2) - 1) as f64;
    let a = 0.25;
    if t < a / 2.0 {
        0.5 * (1.0 - (std::f64::consts::TAU * t / a).cos())
    } else if t > 1.0 - a / 2.0 {
        0.5 * (1.0 - (std::f64::consts::TAU * (1.0 - t) / a).cos())
    } else {
        1.0
    }
}

/// Crystal mask from the local amplitude of g₁, g₂, g₁ ± g₂: the mask
/// grown by 0.8a (where sites are looked for) and the particle (its
/// half-maximum contour grown by 0.35a; the joint fit's region).
fn crystal_mask(
    img: ArrayView2<f64>,
    m: &MeasuredLattice,
    a_px: f64,
) -> Result<(Array2<bool>, Array2<bool>)> {
    let (ny, nx) = img.dim();
    let mean = img.mean().unwrap_or(0.0);
    let spec = fft::fft2(img.mapv(|v| Complex::new(v - mean, 0.0)).view());
    let sigma_r = 0.5 * a_px;
    let sigma_k = 1.0 / (std::f64::consts::TAU * sigma_r);
    let freq = |k: usize, n: usize| {
        if 2 * k >= n {
            (k as f64 - n as f64) / n as f64
        } else {
            k as f64 / n as f64
        }
    };
    let [g1, g2] = m.g;
    let gs = [
        g1,
        g2,
        [g1[0] + g2[0], g1[1] + g2[1]],
        [g1[0] - g2[0], g1[1] - g2[1]],
    ];
    let mut amp = Array2::<f64>::zeros((ny, nx));
    for g in gs {
        let filtered = Array2::from_shape_fn((ny, nx), |(ky, kx)| {
            let (fy, fx) = (freq(ky, ny), freq(kx, nx));
            let d2 = (fx - g[0]).powi(2) + (fy - g[1]).powi(2);
            spec[[ky, kx]] * (-d2 / (2.0 * sigma_k * sigma_k)).exp()
        });
        let b = fft::ifft2(filtered.view());
        amp.zip_mut_with(&b, |a, c| *a += c.norm());
    }
    let t = peaks::otsu(amp.iter().copied()).ok_or_else(|| Error::Empty {
        what: "crystal mask".into(),
        reason: "no lattice amplitude contrast".into(),
    })?;
    let above = amp.mapv(|v| v > t);
    let filled = mask::fill_holes(&mask::largest_component(&above));
    // Grown by 0.8 a: the blurred amplitude at a corner of the particle is
    // a quarter of the interior's, below the threshold, yet a column sits
    // there; empty sites this adds are dropped by the occupancy test.
    let grown = mask::grow(&filled, (0.8 * a_px).round().max(1.0) as usize)?;
    // The joint fit's region: the particle grown by 0.35a, enough to hold
    // the centre of a corner column, not the plateau step beyond the rim.
    let inner = mask::grow(&filled, (0.35 * a_px).round().max(1.0) as usize)?;
    Ok((grown, inner))
}

/// Starting width: median geometric-mean σ of single-column fits at up to
/// 60 corner/centre sites nearest the mask centre.
fn start_sigma(img: ArrayView2<f64>, sites: &[Site], a_px: f64) -> f64 {
    let (cx, cy) = sites
        .iter()
        .fold((0.0, 0.0), |(a, b), s| (a + s.x, b + s.y));
    let nsite = sites.len().max(1) as f64;
    let mut near: Vec<&Site> = sites
        .iter()
        .filter(|s| s.kind != SiteKind::Anion && s.centroid_ok)
        .collect();
    near.sort_by(|a, b| {
        let da = (a.x - cx / nsite).hypot(a.y - cy / nsite);
        let db = (b.x - cx / nsite).hypot(b.y - cy / nsite);
        da.total_cmp(&db)
    });
    near.truncate(60);
    let fp = crate::stem::gaussian::FitParams {
        radius_px: 0.3 * a_px,
        poisson_weights: false,
        neighbours: crate::stem::gaussian::Neighbours::Single,
        sweeps: 0,
    };
    let zero = |_: f64, _: f64| 0.0;
    let mut s: Vec<f64> = near
        .iter()
        .map(|st| crate::stem::gaussian::fit_column(img, (st.x, st.y), &fp, &zero))
        .filter(|f| f.converged())
        .map(|f| (f.params.sigma_x * f.params.sigma_y).sqrt())
        .filter(|v| v.is_finite() && *v > 0.3 && *v < 0.4 * a_px)
        .collect();
    if s.is_empty() {
        return (0.12 * a_px).max(0.6);
    }
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}

/// Run the detection on a prepared image (`what` names it in errors).
///
/// # Errors
/// Every refusal of the module doc, as one line naming `what`.
pub fn detect(
    what: &str,
    img: ArrayView2<f64>,
    pixel_size_angstrom: f64,
    p: &DetectParams,
    warnings: &mut Warnings,
) -> Result<Detection> {
    let a_hint_px = p.expected_lattice_angstrom / pixel_size_angstrom;
    let m = lattice_stage(img, a_hint_px).map_err(|e| e.context(what))?;
    let (aspect, angle) = m.squareness();
    let a_px = m.a_px();
    let a_meas = a_px * pixel_size_angstrom;
    if aspect.abs() > 0.08 || (angle - 90.0).abs() > 6.0 {
        return Err(refuse(
            what,
            format!(
                "the lattice found is not square (|a1|/|a2| − 1 = {aspect:.3}, angle {angle:.1}°): not a cubic perovskite along [001]"
            ),
        ));
    }
    let dev = a_meas / p.expected_lattice_angstrom - 1.0;
    if dev.abs() > p.refuse_fraction {
        // Within 5 % of a/√2: the combined lattice of both classes, named.
        let combined =
            (a_meas * std::f64::consts::SQRT_2 / p.expected_lattice_angstrom - 1.0).abs() < 0.05;
        return Err(refuse(
            what,
            if combined {
                format!(
                    "the lattice found, {a_meas:.3} Å, is the combined lattice of both column classes (a/√2 of the expected {:.3} Å): the cubic cell's (1,0) reflections are too weak to index — a particle of very few cells, or two classes that look alike",
                    p.expected_lattice_angstrom
                )
            } else {
                format!(
                    "measured lattice constant {a_meas:.3} Å is {:+.0} % from the expected {:.3} Å (limit ±{:.0} %; give the material's constant, or the two classes look alike)",
                    100.0 * dev,
                    p.expected_lattice_angstrom,
                    100.0 * p.refuse_fraction
                )
            },
        ));
    }
    if dev.abs() > p.warn_fraction {
        warnings.push(format!(
            "measured lattice constant {a_meas:.3} Å differs by {:+.1} % from the expected {:.3} Å",
            100.0 * dev,
            p.expected_lattice_angstrom
        ));
    }
    let (ny, nx) = img.dim();
    let (mask, inner) = if p.mask {
        crystal_mask(img, &m, a_px).map_err(|e| e.context(what))?
    } else {
        (
            Array2::from_elem((ny, nx), true),
            Array2::from_elem((ny, nx), true),
        )
    };
    let start = AffineLattice {
        origin: m.origin,
        a1: m.a[0],
        a2: m.a[1],
    };
    let (all_sites, lattice) = sites::find_sites(img, mask.view(), start, 0.35 * 0.5 * a_px, 1.0);
    let n_sites = [SiteKind::Corner, SiteKind::Centre, SiteKind::Anion]
        .map(|k| all_sites.iter().filter(|s| s.kind == k).count());
    if n_sites[0] + n_sites[1] < 8 {
        return Err(refuse(
            what,
            format!(
                "only {} column sites in the particle: too small for a ratio",
                n_sites[0] + n_sites[1]
            ),
        ));
    }
    let s0 = start_sigma(img, &all_sites, a_px);
    let cols: Vec<JointColumn> = all_sites
        .iter()
        .map(|s| JointColumn {
            x: s.x,
            y: s.y,
            class: match s.kind {
                SiteKind::Corner => 0,
                SiteKind::Centre => 1,
                SiteKind::Anion => 2,
            },
            fixed: s.kind == SiteKind::Anion,
        })
        .collect();
    let jp = JointParams {
        sigma_px: vec![s0; 3],
        reach_sigma: 4.0,
        background_spacing_px: (2.0 * a_px).max(4.0),
        max_step_px: (0.1 * a_px).max(0.5),
        max_shift_px: (0.2 * a_px).max(1.0),
        iterations: 15,
        position_smoothing_px: 0.0,
        width_map: vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.5, 0.5]],
        elliptical: false,
        robust: false,
        plateau_sites: Vec::new(),
        background_axes: None,
    };
    let fit = joint::fit(img, Some(inner.view()), &cols, &jp).map_err(|e| e.context(what))?;
    let model = JointModel {
        columns: cols,
        params: jp,
        region: inner,
        sites: all_sites,
    };
    classify::classify(
        what,
        img.dim(),
        fit,
        model,
        (lattice, mask, m, a_meas, n_sites),
        p,
    )
}
