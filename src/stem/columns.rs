//! From a prepared image to columns, sublattices, ratios and spacings
//! (stem spec §5–9): the library side of `qdscope columns`.
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
use crate::stem::gaussian::{self, ColumnFit, FitParams, FitStatus, Neighbours};
use crate::stem::lattice::{self, PeakPairs, StrainMode};
use crate::stem::peaks::{self, CentroidBackground, PeakParams};
use crate::stem::ratio::{self, RatioStats};
use crate::stem::sublattice::{self, Assignment, Sublattice};
use crate::stem::synth::LATTICE_ANGSTROM;

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
            neighbours: Neighbours::Single,
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
    /// Mean, s.d. of |a₁′|, Å.
    pub a1_angstrom: [f64; 2],
    /// Mean, s.d. of |a₂′|, Å.
    pub a2_angstrom: [f64; 2],
    /// Mean, s.d. of all pair distances, Å.
    pub spacing_angstrom: [f64; 2],
    /// Mean strain (ε_xx, ε_yy, ε_xy, ω) against the reference lattice.
    pub mean_strain: [f64; 4],
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
    /// Peak-search bookkeeping.
    pub peak_search: peaks::PeakSearch,
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

/// Run the column analysis on a prepared image (`what` names it in errors).
///
/// # Errors
/// Uncalibrated image, non-finite pixels, no columns, a lattice that cannot
/// be assigned, every fit failing, a class without columns.
pub fn analyse(what: &str, image: &Image, p: &ColumnsParams) -> Result<ColumnsResult> {
    let ps = image
        .calibration
        .pixel_size_angstrom()
        .ok_or_else(|| Error::Uncalibrated {
            what: format!("{what}: column analysis (lengths are in Å)"),
        })?;
    image.check_finite(what)?;
    let a = positive("lattice_angstrom", p.lattice_angstrom)?;
    let lengths = Lengths {
        min_separation_px: positive(
            "--min-separation-angstrom",
            p.min_separation_angstrom.unwrap_or(0.5622 * a),
        )? / ps,
        centroid_radius_px: (positive(
            "centroid_radius_angstrom",
            p.centroid_radius_angstrom.unwrap_or(0.35 * a / 2.0),
        )? / ps)
            .max(2.0),
        fit_radius_px: positive(
            "--fit-radius-angstrom",
            p.fit_radius_angstrom.unwrap_or(0.5 * a / 2.0),
        )? / ps,
        mask_sigma_px: positive("mask_sigma_angstrom", p.mask_sigma_angstrom.unwrap_or(a))? / ps,
    };
    let img: Array2<f64> = image.data.mapv(f64::from);
    let mut warnings = Warnings::default();
    let (mask, mask_threshold) = if p.mask {
        let (m, t) = peaks::qd_mask(
            img.view(),
            lengths.mask_sigma_px,
            p.mask_threshold,
            lengths.mask_sigma_px,
        )
        .map_err(|e| e.context(what))?;
        (Some(m), Some(t))
    } else {
        (None, None)
    };
    let mask_pixels = mask
        .as_ref()
        .map_or(img.len(), |m| m.iter().filter(|v| **v).count());
    let pk = PeakParams {
        min_separation_px: lengths.min_separation_px,
        threshold_rel: p.threshold_rel,
        threshold_abs: p.threshold_abs,
        smooth_sigma_px: p.smooth_sigma_px,
        exclude_border_px: lengths.min_separation_px.max(lengths.fit_radius_px + 1.0),
        centroid_radius_px: lengths.centroid_radius_px,
        centroid_background: CentroidBackground::DiskMin,
    };
    let search = peaks::find_peaks(img.view(), &pk, mask.as_ref().map(|m| m.view()))
        .map_err(|e| e.context(what))?;
    if search.peaks.len() < 5 {
        return Err(Error::Empty {
            what: what.to_string(),
            reason: format!(
                "no atomic columns found ({} peak(s) above the threshold {:.4} in the particle mask); a flat or pure-noise image?",
                search.peaks.len(),
                search.threshold
            ),
        });
    }
    let fp = FitParams {
        radius_px: lengths.fit_radius_px,
        poisson_weights: p.poisson_weights,
        neighbours: p.neighbours,
        sweeps: p.sweeps,
    };
    let starts: Vec<(f64, f64)> = search.peaks.iter().map(|q| (q.x, q.y)).collect();
    let fits = gaussian::fit_columns(img.view(), &starts, &fp).map_err(|e| e.context(what))?;
    let n_ok = fits.iter().filter(|f| f.converged()).count();
    if n_ok == 0 {
        return Err(Error::Numerical {
            what: what.to_string(),
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
    // Sublattices from fitted positions and volumes.
    let pos: Vec<[f64; 2]> = fits.iter().map(|f| [f.params.x0, f.params.y0]).collect();
    let vol: Vec<f64> = fits
        .iter()
        .map(|f| {
            if f.converged() {
                f.params.volume()
            } else {
                f64::NAN
            }
        })
        .collect();
    let vol_for_assign: Vec<f64> = vol
        .iter()
        .zip(&search.peaks)
        .map(|(v, q)| if v.is_finite() { *v } else { q.intensity })
        .collect();
    let asg = sublattice::assign(&pos, &vol_for_assign).map_err(|e| e.context(what))?;
    let mut columns: Vec<Column> = fits
        .iter()
        .enumerate()
        .map(|(i, f)| Column {
            id: i,
            sublattice: asg.labels[i],
            fit: *f,
            index: asg.index[i],
            edge: asg.edge[i],
            intensity_mismatch: asg.intensity_mismatch[i],
            in_ratio: false,
        })
        .collect();
    if asg.mismatch_fraction > 0.05 {
        warnings.push(format!(
            "{:.1} % of interior columns are brighter/darker than their neighbours against their parity label (expected < 5 %)",
            100.0 * asg.mismatch_fraction
        ));
    }
    if p.fit_br {
        fit_br_columns(
            img.view(),
            &asg,
            &mut columns,
            &fp,
            lengths.min_separation_px,
        );
    }
    for c in columns.iter_mut() {
        c.in_ratio = c.fit.converged()
            && matches!(c.sublattice, Sublattice::Cs | Sublattice::PbBr)
            && (p.include_edge || !c.edge);
    }
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
    // Peak pairs per sublattice.
    let (a1, a2) = asg.cube_axes();
    let (r1, r2) = match p.reference_lattice_angstrom {
        Some(r) => {
            let r = positive("--reference-lattice-angstrom", r)? / ps;
            let (l1, l2) = (a1[0].hypot(a1[1]), a2[0].hypot(a2[1]));
            (
                [a1[0] / l1 * r, a1[1] / l1 * r],
                [a2[0] / l2 * r, a2[1] / l2 * r],
            )
        }
        None => (a1, a2),
    };
    let mut spacing = Vec::new();
    let mut local = Vec::new();
    let mut pooled: Vec<PeakPairs> = Vec::new();
    for s in [Sublattice::Cs, Sublattice::PbBr] {
        let ids: Vec<usize> = columns
            .iter()
            .filter(|c| c.sublattice == s && c.fit.converged())
            .map(|c| c.id)
            .collect();
        let pts: Vec<[f64; 2]> = ids
            .iter()
            .map(|&i| [columns[i].fit.params.x0, columns[i].fit.params.y0])
            .collect();
        match lattice::peak_pairs(&pts, r1, r2, StrainMode::Small) {
            Ok(pp) => {
                spacing.push(to_spacing(s.name(), &pp, ps));
                local.extend(pp.local.iter().map(|l| (ids[l.column], *l)));
                pooled.push(pp);
            }
            Err(e) => warnings.push(format!("peak pairs ({}): {e}", s.name())),
        }
    }
    if pooled.is_empty() {
        return Err(Error::Numerical {
            what: what.to_string(),
            reason: "peak-pair analysis found no pairs in either sublattice".into(),
        });
    }
    let all: Vec<f64> = local
        .iter()
        .flat_map(|(_, l)| [l.a1, l.a2])
        .flatten()
        .map(|v| v[0].hypot(v[1]) * ps)
        .collect();
    let (m, s) = ratio::mean_sd(&all);
    let n = pooled.iter().map(|p| p.n_pairs).sum();
    let w = |k: usize| {
        let tot: f64 = pooled.iter().map(|p| p.n_pairs as f64).sum();
        pooled
            .iter()
            .map(|p| p.mean_strain[k] * p.n_pairs as f64 / tot)
            .sum::<f64>()
    };
    spacing.push(Spacing {
        sublattice: "pooled",
        a1_angstrom: [f64::NAN; 2],
        a2_angstrom: [f64::NAN; 2],
        spacing_angstrom: [m, s],
        mean_strain: [w(0), w(1), w(2), w(3)],
        n_pairs: n,
    });
    Ok(ColumnsResult {
        pixel_size_angstrom: ps,
        lengths,
        columns,
        assignment: asg,
        ratio_volume,
        ratio_height,
        spacing,
        local,
        mask_threshold,
        mask_pixels,
        peak_search: search,
        warnings,
    })
}

fn to_spacing(name: &'static str, pp: &PeakPairs, ps: f64) -> Spacing {
    Spacing {
        sublattice: name,
        a1_angstrom: [pp.a1_mean_sd_px[0] * ps, pp.a1_mean_sd_px[1] * ps],
        a2_angstrom: [pp.a2_mean_sd_px[0] * ps, pp.a2_mean_sd_px[1] * ps],
        spacing_angstrom: [pp.spacing_mean_sd_px[0] * ps, pp.spacing_mean_sd_px[1] * ps],
        mean_strain: pp.mean_strain,
        n_pairs: pp.n_pairs,
    }
}

/// Fit pure-Br columns at the centres of every square of four indexed
/// Cs/Pb/Br columns (spec §7 step 6), in a disk of 0.6× the fit radius.
fn fit_br_columns(
    img: ArrayView2<f64>,
    asg: &Assignment,
    columns: &mut Vec<Column>,
    fp: &FitParams,
    min_sep_px: f64,
) {
    let mut at = std::collections::HashSet::new();
    for ix in asg.index.iter().flatten() {
        at.insert(*ix);
    }
    let existing: Vec<[f64; 2]> = columns
        .iter()
        .filter(|c| c.sublattice == Sublattice::Br)
        .map(|c| [c.fit.params.x0, c.fit.params.y0])
        .collect();
    let mut sites = Vec::new();
    let mut keys: Vec<(i64, i64)> = at.iter().copied().collect();
    keys.sort_unstable();
    for (h, k) in keys {
        if at.contains(&(h + 1, k)) && at.contains(&(h, k + 1)) && at.contains(&(h + 1, k + 1)) {
            let (fh, fk) = (h as f64 + 0.5, k as f64 + 0.5);
            let x = asg.origin[0] + fh * asg.e1[0] + fk * asg.e2[0];
            let y = asg.origin[1] + fh * asg.e1[1] + fk * asg.e2[1];
            if existing
                .iter()
                .all(|e| (e[0] - x).hypot(e[1] - y) > 0.25 * min_sep_px)
            {
                sites.push((x, y));
            }
        }
    }
    let small = FitParams {
        radius_px: 0.6 * fp.radius_px,
        neighbours: Neighbours::Single,
        ..fp.clone()
    };
    let fits = gaussian::fit_columns(img, &sites, &small).unwrap_or_default();
    let base = columns.len();
    for (i, f) in fits.into_iter().enumerate() {
        columns.push(Column {
            id: base + i,
            sublattice: Sublattice::Br,
            fit: f,
            index: None,
            edge: false,
            intensity_mismatch: false,
            in_ratio: false,
        });
    }
}
