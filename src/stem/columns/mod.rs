//! From a prepared image to columns, sublattices, ratios and spacings
//! (docs/methods/fitting.md, docs/methods/columns.md, docs/methods/statistics.md): the library side of `qdscope columns`.
//!
//! particle mask → centre-of-mass peaks (§5) → 7-parameter Gaussian fits
//! (§6) → sublattice parity (§7) → optional pure-Br fits → Cs : Pb/Br ratio
//! from volumes (primary) and heights (§8) → peak-pair spacing (§9).
//!
//! Which columns enter the ratio: converged Cs and Pb/Br fits that are not
//! on the particle edge (an edge column misses one of its four other-class
//! neighbours; edge columns sit on the thinner rim and on the background
//! step, so the study's interior ratio is the default; `include_edge`
//! changes it). Every column, whatever its state, is reported.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Warnings};
use crate::image::Image;
use crate::stem::detect::{self, DetectParams, Detection, LatticeReport};
use crate::stem::gaussian::{self, ColumnFit, FitParams, FitStatus, Neighbours};
use crate::stem::lattice;
use crate::stem::peaks;
use crate::stem::ratio::{self, RatioStats};
use crate::stem::sites::SiteKind;
use crate::stem::sublattice::{Assignment, Sublattice};
use crate::stem::synth::LATTICE_ANGSTROM;

mod checks;
mod spacing;
mod volumes;
use spacing::spacings;

/// Every parameter of the column analysis (lengths in Å; the image must be
/// calibrated). Deserialises from the `[columns]` table of a config TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ColumnsParams {
    /// Cubic lattice constant a, Å (default 5.87): sets the default lengths.
    pub lattice_angstrom: f64,
    /// Minimum peak separation, Å (default 0.5622·a = 3.3 Å: keeps Cs and
    /// Pb/Br at a/√2, suppresses the pure-Br columns at a/2).
    pub min_separation_angstrom: Option<f64>,
    /// Relative peak threshold in the mask, fraction of (max − min) (0.1).
    pub threshold_rel: f64,
    /// Absolute peak threshold (image units), overrides the relative one.
    pub threshold_abs: Option<f64>,
    /// Detection-only smoothing σ, px (default 0.5).
    pub smooth_sigma_px: f64,
    /// Centroid radius, Å (default 0.35·a/2 = 1.03 Å, at least 2 px).
    pub centroid_radius_angstrom: Option<f64>,
    /// Gaussian fit disk radius, Å (default 0.5·a/2 = 1.47 Å).
    pub fit_radius_angstrom: Option<f64>,
    /// Poisson weights 1/√max(I, 1) in the fits.
    pub poisson_weights: bool,
    /// Neighbour handling of the fits.
    pub neighbours: Neighbours,
    /// Sweeps for `neighbours = "sweep"`.
    pub sweeps: usize,
    /// Restrict columns to the particle (automatic Otsu mask).
    pub mask: bool,
    /// Mask threshold (image units) instead of Otsu's.
    pub mask_threshold: Option<f64>,
    /// Mask smoothing σ, Å (default a); the mask is also grown by this.
    pub mask_sigma_angstrom: Option<f64>,
    /// Also fit the pure-Br columns at the predicted sites.
    pub fit_br: bool,
    /// Count edge columns in the ratio.
    pub include_edge: bool,
    /// Reference cube-axis lattice constant for the strain of the peak-pair
    /// analysis, Å (default: the fitted lattice itself).
    pub reference_lattice_angstrom: Option<f64>,
    /// Bootstrap seed.
    pub seed: u64,
}

impl Default for ColumnsParams {
    fn default() -> Self {
        ColumnsParams {
            lattice_angstrom: LATTICE_ANGSTROM,
            min_separation_angstrom: None,
            threshold_rel: 0.1,
            threshold_abs: None,
            smooth_sigma_px: 0.5,
            centroid_radius_angstrom: None,
            fit_radius_angstrom: None,
            poisson_weights: false,
            neighbours: Neighbours::Joint,
            sweeps: 2,
            mask: true,
            mask_threshold: None,
            mask_sigma_angstrom: None,
            fit_br: false,
            include_edge: false,
            reference_lattice_angstrom: None,
            seed: 2022,
        }
    }
}

/// One column in the output table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    /// Running id.
    pub id: usize,
    /// Sublattice label.
    pub sublattice: Sublattice,
    /// The fit (position, shape, uncertainties, status).
    pub fit: ColumnFit,
    /// Combined-lattice index (Cs / Pb/Br).
    pub index: Option<(i64, i64)>,
    /// On the particle edge.
    pub edge: bool,
    /// Intensity disagrees with the parity label.
    pub intensity_mismatch: bool,
    /// Entered the ratio.
    pub in_ratio: bool,
}

impl Column {
    /// `;`-separated flags for the table: the fit status when not converged,
    /// `edge`, `intensity_mismatch`, `round` (rotation undefined).
    #[must_use]
    pub fn flags(&self) -> String {
        let mut f: Vec<&str> = Vec::new();
        match self.fit.status {
            FitStatus::Converged => {}
            FitStatus::ConvergedSmallerDisk => f.push("smaller_disk"),
            FitStatus::CentroidFallback => f.push("fit_failed_centroid_fallback"),
            FitStatus::TooFewPixels => f.push("too_few_pixels"),
            FitStatus::Border => f.push("border"),
        }
        if self.edge {
            f.push("edge");
        }
        if self.intensity_mismatch {
            f.push("intensity_mismatch");
        }
        if self.fit.converged() && !self.fit.rotation_defined {
            f.push("round");
        }
        f.join(";")
    }
}

/// Lengths actually used, px.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lengths {
    /// Minimum separation, px.
    pub min_separation_px: f64,
    /// Centroid radius, px.
    pub centroid_radius_px: f64,
    /// Fit radius, px.
    pub fit_radius_px: f64,
    /// Mask σ, px.
    pub mask_sigma_px: f64,
}

/// Peak-pair spacing summary in Å.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spacing {
    /// Sublattice name or `pooled`.
    pub sublattice: &'static str,
    /// Mean, s.d. of |a₁′|, Å: `None` on the pooled row, and as in
    /// [`lattice::PeakPairs::a1_mean_sd_px`] (no pairs, or fewer than 2).
    pub a1_angstrom: [Option<f64>; 2],
    /// Mean, s.d. of |a₂′|, Å (`None` as for `a1_angstrom`).
    pub a2_angstrom: [Option<f64>; 2],
    /// Mean, s.d. of all pair distances, Å (the s.d. `None` for a single
    /// distance).
    pub spacing_angstrom: [Option<f64>; 2],
    /// Mean strain (ε_xx, ε_yy, ε_xy, ω) against the reference lattice;
    /// `None` when no column has both local vectors (pooled row: when a
    /// sublattice has none).
    pub mean_strain: Option<[f64; 4]>,
    /// Pair vectors found.
    pub n_pairs: usize,
}

/// Everything the column analysis produces.
#[derive(Debug, Clone)]
pub struct ColumnsResult {
    /// Pixel size used, Å/px.
    pub pixel_size_angstrom: f64,
    /// Lengths in px.
    pub lengths: Lengths,
    /// Columns (Cs, Pb/Br, Br, unassigned), ids 0…
    pub columns: Vec<Column>,
    /// Sublattice basis and checks.
    pub assignment: Assignment,
    /// Ratio from volumes (primary).
    pub ratio_volume: RatioStats,
    /// Ratio from heights.
    pub ratio_height: RatioStats,
    /// Peak-pair spacings: Cs, Pb/Br, pooled.
    pub spacing: Vec<Spacing>,
    /// Per-column local lattice (Cs and Pb/Br analyses), keyed by column id.
    pub local: Vec<(usize, lattice::LocalLattice)>,
    /// Particle mask threshold used (None without mask).
    pub mask_threshold: Option<f64>,
    /// Pixels in the mask.
    pub mask_pixels: usize,
    /// Site bookkeeping (sites predicted, centroids rejected).
    pub peak_search: peaks::PeakSearch,
    /// The measured lattice, mask, sites and joint-fit summary.
    pub lattice: LatticeReport,
    /// Non-fatal remarks.
    pub warnings: Warnings,
}

impl ColumnsResult {
    /// Columns of a sublattice.
    pub fn of(&self, s: Sublattice) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(move |c| c.sublattice == s)
    }
    /// Columns whose fit did not converge.
    #[must_use]
    pub fn n_failed(&self) -> usize {
        self.columns.iter().filter(|c| !c.fit.converged()).count()
    }
}

fn positive(name: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::param(name, format!("must be > 0, got {v}")))
    }
}

/// Run the column analysis on a prepared image (`what` names it in errors):
/// lattice-guided detection and the joint fit ([`detect::detect`]), the
/// chosen column fits, the ratios and the peak pairs.
///
/// # Errors
/// Uncalibrated image, non-finite pixels, invalid parameters, and every
/// refusal of [`detect`]: no lattice, not square, far from the given
/// constant, one sublattice only, too few interior columns, classes not
/// separated — one line naming `what`; no ratio is computed then.
pub fn analyse(what: &str, image: &Image, p: &ColumnsParams) -> Result<ColumnsResult> {
    analyse_with(what, image, None, p)
}

/// The registered average written next to a prepared image: for a file
/// named `prepared.npy` (as `prepare` and `analyze` write it), its sibling
/// `averaged.npy` when that exists — the linear image the joint fit's
/// volumes are measured on ([`analyse_with`]).
#[must_use]
pub fn linear_companion(prepared: &std::path::Path) -> Option<std::path::PathBuf> {
    if prepared.file_name()? != "prepared.npy" {
        return None;
    }
    let a = prepared.with_file_name("averaged.npy");
    a.is_file().then_some(a)
}

/// [`analyse`], with the joint fit's volumes measured on `linear` — the
/// registered average before the nonlinear stages of `prepare` (its
/// `averaged` image, same geometry as `image`) — while detection, sites and
/// classes come from `image`. Du filtering and Richardson–Lucy do not keep
/// the columns' volume ratios (measured on the testbed: 0.02–0.2 after
/// `prepare` against 0.001–0.01 on the linear image,
/// docs/methods/columns.md); the joint model carries its own background,
/// so the linear image needs no background subtraction. Single and sweep
/// fits stay on `image`, as in the study.
///
/// # Errors
/// As [`analyse`]; `linear` of another shape or with non-finite pixels.
pub fn analyse_with(
    what: &str,
    image: &Image,
    linear: Option<&Image>,
    p: &ColumnsParams,
) -> Result<ColumnsResult> {
    let ps = image
        .calibration
        .pixel_size_angstrom()
        .ok_or_else(|| Error::Uncalibrated {
            what: format!("{what}: column analysis (lengths are in Å)"),
        })?;
    image.check_finite(what)?;
    let a = positive("lattice_angstrom", p.lattice_angstrom)?;
    crate::stem::limits::lattice_px(a, ps, image.data.dim()).map_err(|e| e.context(what))?;
    let img: Array2<f64> = image.data.mapv(f64::from);
    let mut warnings = Warnings::default();
    if p.min_separation_angstrom.is_some()
        || p.threshold_abs.is_some()
        || p.mask_threshold.is_some()
    {
        warnings.push(
            "min_separation_angstrom, threshold_abs and mask_threshold are not used by the lattice-guided detection (sites come from the measured lattice, the mask from its amplitude)"
                .to_string(),
        );
    }
    let dp = DetectParams {
        expected_lattice_angstrom: a,
        mask: p.mask,
        ..DetectParams::default()
    };
    if p.neighbours == Neighbours::Joint && linear.is_none() {
        warnings.push(
            "the joint volumes are measured on this image itself: if it was denoised or deconvolved, its volume ratio is biased (the filters do not keep it; +0.03 on the demo's synthetic particles) — give the registered average as the linear image"
                .to_string(),
        );
    }
    let mut det = detect::detect(what, img.view(), ps, &dp, &mut warnings)?;
    let a_meas = det.report.measured_angstrom;
    let check_fits = if p.neighbours == Neighbours::Joint {
        let (refit, checks) = volumes::joint_volumes(
            what,
            (image, linear),
            &img,
            &det,
            (a_meas / ps, p.seed),
            &dp,
        )?;
        det = refit;
        Some(checks)
    } else {
        None
    };
    let lengths = resolve_lengths(p, a_meas, ps)?;
    let mut columns =
        column_fits(img.view(), &det, p, &lengths, &mut warnings).map_err(|e| e.context(what))?;
    for c in columns.iter_mut() {
        c.in_ratio = c.fit.converged()
            && matches!(c.sublattice, Sublattice::Cs | Sublattice::PbBr)
            && (p.include_edge || !c.edge);
    }
    if let Some(fits) = check_fits {
        volumes::apply_checks(what, &mut det, fits, (img.view(), &columns), p, &lengths)?;
    }
    checks::separation(what, &mut columns, dp.max_mismatch_fraction)?;
    let assignment = assignment_of(&det, &columns);
    let pick = |s: Sublattice, f: &dyn Fn(&Column) -> f64| -> Vec<f64> {
        columns
            .iter()
            .filter(|c| c.in_ratio && c.sublattice == s)
            .map(f)
            .collect()
    };
    let to_a2 = ps * ps;
    let cs_v = pick(Sublattice::Cs, &|c| c.fit.params.volume() * to_a2);
    let pb_v = pick(Sublattice::PbBr, &|c| c.fit.params.volume() * to_a2);
    let cs_h = pick(Sublattice::Cs, &|c| c.fit.params.height);
    let pb_h = pick(Sublattice::PbBr, &|c| c.fit.params.height);
    let ratio_volume = ratio::image_ratio(what, &cs_v, &pb_v, p.seed)?;
    let ratio_height = ratio::image_ratio(what, &cs_h, &pb_h, p.seed)?;
    let (spacing, local) = spacings(what, &columns, &assignment, p, ps, &mut warnings)?;
    let search = peaks::PeakSearch {
        peaks: Vec::new(),
        threshold: None,
        n_candidates: det.report.n_sites[0] + det.report.n_sites[1],
        n_outside_mask: 0,
        n_centroid_rejected: det
            .columns
            .iter()
            .filter(|d| d.site.kind != SiteKind::Anion && !d.site.centroid_ok)
            .count(),
    };
    Ok(ColumnsResult {
        pixel_size_angstrom: ps,
        lengths,
        columns,
        assignment,
        ratio_volume,
        ratio_height,
        spacing,
        local,
        mask_threshold: None,
        mask_pixels: det.report.mask_pixels,
        peak_search: search,
        lattice: det.report.clone(),
        warnings,
    })
}

/// Lengths in px from the parameters (Å) and the measured lattice.
fn resolve_lengths(p: &ColumnsParams, a_meas: f64, ps: f64) -> Result<Lengths> {
    Ok(Lengths {
        min_separation_px: positive(
            "min_separation_angstrom",
            p.min_separation_angstrom.unwrap_or(0.5622 * a_meas),
        )? / ps,
        centroid_radius_px: (positive(
            "centroid_radius_angstrom",
            p.centroid_radius_angstrom.unwrap_or(0.35 * a_meas / 2.0),
        )? / ps)
            .max(2.0),
        fit_radius_px: positive(
            "fit_radius_angstrom",
            p.fit_radius_angstrom.unwrap_or(0.5 * a_meas / 2.0),
        )? / ps,
        mask_sigma_px: positive(
            "mask_sigma_angstrom",
            p.mask_sigma_angstrom.unwrap_or(a_meas),
        )? / ps,
    })
}

/// The fit of every detected column: the joint fit itself (default) or the
/// 7-parameter single/sweep fits at the joint fit's positions.
fn column_fits(
    img: ArrayView2<f64>,
    det: &Detection,
    p: &ColumnsParams,
    lengths: &Lengths,
    warnings: &mut Warnings,
) -> Result<Vec<Column>> {
    let f = &det.fit;
    let class_of = |k: SiteKind| match k {
        SiteKind::Corner => 0usize,
        SiteKind::Centre => 1,
        SiteKind::Anion => 2,
    };
    let label = |k: SiteKind| match (k, det.corner_is_bright) {
        (SiteKind::Anion, _) => Sublattice::Br,
        (SiteKind::Corner, true) | (SiteKind::Centre, false) => Sublattice::PbBr,
        _ => Sublattice::Cs,
    };
    // Detected columns kept, with their mismatch flag from the detection.
    let wanted: Vec<(&detect::Detected, bool)> = det
        .columns
        .iter()
        .zip(&det.mismatch)
        .filter(|(d, _)| d.site.kind != SiteKind::Anion || p.fit_br)
        .map(|(d, m)| (d, *m))
        .collect();
    let joint_fit = |d: &detect::Detected| -> ColumnFit {
        let i = d.fit_index;
        let c = class_of(d.site.kind);
        let (sx, sy, rot) = f.axes(c);
        let ok = f.volume[i].is_finite() && f.volume[i] > 0.0;
        ColumnFit {
            params: gaussian::Gaussian7 {
                // NaN for a column outside the fit region (not seen).
                baseline: f.background[i].unwrap_or(f64::NAN),
                height: f.volume[i] / (std::f64::consts::TAU * sx * sy),
                x0: f.x[i],
                y0: f.y[i],
                sigma_x: sx,
                sigma_y: sy,
                rotation: rot,
            },
            stderr: [None; 7],
            residual_rms: f.local_rms[i],
            evaluations: f.iterations,
            n_pixels: 0,
            status: if ok {
                FitStatus::Converged
            } else {
                FitStatus::CentroidFallback
            },
            rotation_defined: f.axis_ratio() > 1.01,
        }
    };
    if p.neighbours == Neighbours::Joint && (p.fit_radius_angstrom.is_some() || p.poisson_weights) {
        warnings.push(
            "the fit radius and Poisson weights apply to the single and sweep fits; the joint fit (the default) does not use them"
                .to_string(),
        );
    }
    let fits: Vec<ColumnFit> = match p.neighbours {
        Neighbours::Joint => wanted.iter().map(|(d, _)| joint_fit(d)).collect(),
        Neighbours::Single | Neighbours::Sweep => {
            let fp = FitParams {
                radius_px: lengths.fit_radius_px,
                poisson_weights: p.poisson_weights,
                neighbours: p.neighbours,
                sweeps: p.sweeps,
            };
            let starts: Vec<(f64, f64)> = wanted
                .iter()
                .map(|(d, _)| (f.x[d.fit_index], f.y[d.fit_index]))
                .collect();
            let mut fits = gaussian::fit_columns(img, &starts, &fp)?;
            // A width beyond the fit disk is not set by the data in it: the
            // volume would be an extrapolation (seen: 10⁹ × the others).
            for f in fits.iter_mut() {
                if f.converged() && f.params.sigma_x > gaussian::MAX_SIGMA_PER_RADIUS * fp.radius_px
                {
                    f.status = FitStatus::CentroidFallback;
                }
            }
            fits
        }
    };
    let n_ok = fits.iter().filter(|f| f.converged()).count();
    if n_ok == 0 {
        return Err(Error::Numerical {
            what: "column fits".into(),
            reason: format!("all {} column fits failed", fits.len()),
        });
    }
    if n_ok * 10 < fits.len() * 9 {
        warnings.push(format!(
            "{} of {} column fits did not converge (kept with their centroid, flagged)",
            fits.len() - n_ok,
            fits.len()
        ));
    }
    Ok(wanted
        .iter()
        .zip(fits)
        .enumerate()
        .map(|(id, (&(d, mismatch), fit))| {
            let (u, v) = d.site.uv;
            let class = d.site.kind != SiteKind::Anion;
            Column {
                id,
                sublattice: label(d.site.kind),
                fit,
                index: class.then_some(((u - v).div_euclid(2), (u + v).div_euclid(2))),
                edge: !d.interior,
                intensity_mismatch: mismatch,
                in_ratio: false,
            }
        })
        .collect())
}

/// The sublattice record of the output from the detection.
fn assignment_of(det: &Detection, columns: &[Column]) -> Assignment {
    let lat = &det.lattice;
    // Combined-lattice basis: e₁ = (a₁ − a₂)/2, e₂ = (a₁ + a₂)/2, so that
    // a₁ = e₁ + e₂ and a₂ = e₂ − e₁ (Assignment::cube_axes).
    let e1 = [0.5 * (lat.a1[0] - lat.a2[0]), 0.5 * (lat.a1[1] - lat.a2[1])];
    let e2 = [0.5 * (lat.a1[0] + lat.a2[0]), 0.5 * (lat.a1[1] + lat.a2[1])];
    let mut ss = 0.0;
    let mut n = 0usize;
    for c in columns.iter().filter(|c| c.index.is_some()) {
        if let Some((h, k)) = c.index {
            let px = lat.origin[0] + h as f64 * e1[0] + k as f64 * e2[0];
            let py = lat.origin[1] + h as f64 * e1[1] + k as f64 * e2[1];
            ss += (px - c.fit.params.x0).powi(2) + (py - c.fit.params.y0).powi(2);
            n += 1;
        }
    }
    Assignment {
        origin: lat.origin,
        e1,
        e2,
        labels: columns.iter().map(|c| c.sublattice).collect(),
        index: columns.iter().map(|c| c.index).collect(),
        edge: columns.iter().map(|c| c.edge).collect(),
        intensity_mismatch: columns.iter().map(|c| c.intensity_mismatch).collect(),
        mismatch_fraction: det.mismatch_fraction,
        residual_rms_px: (n > 0).then(|| (ss / n as f64).sqrt()),
    }
}
