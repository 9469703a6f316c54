//! The summary of one image's column analysis: counts per class, the
//! Cs : Pb/Br ratios with their spread and intervals, the peak-pair
//! spacing — `summary.json` of `qdscope columns` and one `summary.csv` row
//! of `qdscope analyze` (docs/guide/columns.md, docs/methods/statistics.md).
//! A value that cannot be computed is `None` (null), with a note saying why.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::stem::columns::ColumnsResult;
use crate::stem::pipeline::CalibrationSource;
use crate::stem::sublattice::Sublattice;

/// Where the pixel size of the column analysis came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PixelSource {
    /// The image file.
    File,
    /// `prepare.json` next to the image.
    PrepareJson,
    /// Given by the user (flag, config or code).
    User,
}

impl PixelSource {
    /// The source of a prepared image's pixel size: the user's or the
    /// file's.
    #[must_use]
    pub fn of(c: CalibrationSource) -> Self {
        match c {
            CalibrationSource::User => PixelSource::User,
            _ => PixelSource::File,
        }
    }

    /// The name written to `summary.json`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            PixelSource::File => "file",
            PixelSource::PrepareJson => "prepare.json",
            PixelSource::User => "user",
        }
    }
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// A bootstrap interval as the summary writes it: each end or null.
fn interval(ci: Option<[f64; 2]>) -> [Option<f64>; 2] {
    ci.map_or([None, None], |c| c.map(finite))
}

/// `summary.json` of one image (the keys named by the issue first).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Volume ratio R = mean V_Cs / mean V_Pb/Br (primary).
    pub ratio_volume_mean: f64,
    /// Column-to-column s.d. of the volume ratio (null with one column per class).
    pub ratio_volume_sd: Option<f64>,
    /// Height ratio.
    pub ratio_height_mean: f64,
    /// Column-to-column s.d. of the height ratio.
    pub ratio_height_sd: Option<f64>,
    /// Bootstrap 95 % interval of the volume ratio.
    pub ci95: [Option<f64>; 2],
    /// Cs columns found (all).
    pub n_cs: usize,
    /// Pb/Br columns found (all).
    pub n_pbbr: usize,
    /// Pure-Br columns (found, or fitted with `fit_br`).
    pub n_br: usize,
    /// Columns whose fit did not converge (kept, flagged).
    pub n_failed: usize,
    /// Mean nearest-neighbour spacing along the cube axes (both sublattices), Å.
    pub lattice_spacing_angstrom: Option<f64>,
    /// Its s.d., Å.
    pub lattice_spacing_sd_angstrom: Option<f64>,
    /// Bootstrap 95 % interval of the height ratio.
    pub ci95_height: [Option<f64>; 2],
    /// Standard error of the volume ratio.
    pub ratio_volume_se: Option<f64>,
    /// Cs columns in the ratio (converged, interior).
    pub n_cs_in_ratio: usize,
    /// Pb/Br columns in the ratio.
    pub n_pbbr_in_ratio: usize,
    /// Columns not on the lattice.
    pub n_unassigned: usize,
    /// Columns on the particle edge.
    pub n_edge: usize,
    /// Interior columns whose intensity disagrees with their parity label.
    pub intensity_mismatch_fraction: Option<f64>,
    /// Pixel size used, Å/px, and its source.
    pub pixel_size_angstrom: f64,
    /// Source of the pixel size.
    pub pixel_size_source: String,
    /// Input image.
    pub input: String,
    /// `--neighbours joint`: relative change of the volume ratio in the
    /// background check (refit on a finer background grid); null with
    /// other fits.
    #[serde(default)]
    pub ratio_volume_background_sensitivity: Option<f64>,
    /// `--neighbours joint`: relative change of the volume ratio in the
    /// noise check (refit with the image's measured noise added once
    /// more); null with other fits or a noise-free image.
    #[serde(default)]
    pub ratio_volume_noise_sensitivity: Option<f64>,
    /// Explanations for any null above.
    pub notes: Vec<String>,
    /// Non-fatal warnings.
    pub warnings: Vec<String>,
}

/// Build the summary of a result.
#[must_use]
pub fn summarise(input: &Path, r: &ColumnsResult, source: PixelSource) -> Summary {
    let mut notes = Vec::new();
    let count = |s: Sublattice| r.of(s).count();
    let pooled = r.spacing.iter().find(|s| s.sublattice == "pooled");
    let sd = |v: f64, what: &str, notes: &mut Vec<String>| {
        let o = finite(v);
        if o.is_none() {
            notes.push(format!("{what} is null: fewer than 2 columns of a class"));
        }
        o
    };
    let ratio_volume_sd = sd(r.ratio_volume.sd, "ratio_volume_sd", &mut notes);
    let ratio_height_sd = sd(r.ratio_height.sd, "ratio_height_sd", &mut notes);
    let spacing = pooled.and_then(|s| s.spacing_angstrom[0]).and_then(finite);
    let spacing_sd = pooled.and_then(|s| s.spacing_angstrom[1]).and_then(finite);
    if spacing_sd.is_none() {
        notes.push("lattice_spacing_sd_angstrom is null: fewer than 2 pair distances".into());
    }
    let mm = finite(r.assignment.mismatch_fraction);
    if mm.is_none() {
        notes.push("intensity_mismatch_fraction is null: no interior columns".into());
    }
    Summary {
        ratio_volume_mean: r.ratio_volume.ratio,
        ratio_volume_sd,
        ratio_height_mean: r.ratio_height.ratio,
        ratio_height_sd,
        ci95: interval(r.ratio_volume.ci95),
        n_cs: count(Sublattice::Cs),
        n_pbbr: count(Sublattice::PbBr),
        n_br: count(Sublattice::Br),
        n_failed: r.n_failed(),
        lattice_spacing_angstrom: spacing,
        lattice_spacing_sd_angstrom: spacing_sd,
        ci95_height: interval(r.ratio_height.ci95),
        ratio_volume_se: finite(r.ratio_volume.se),
        n_cs_in_ratio: r.ratio_volume.n_cs,
        n_pbbr_in_ratio: r.ratio_volume.n_pbbr,
        n_unassigned: count(Sublattice::Unassigned),
        n_edge: r.columns.iter().filter(|c| c.edge).count(),
        intensity_mismatch_fraction: mm,
        pixel_size_angstrom: r.pixel_size_angstrom,
        pixel_size_source: source.name().into(),
        input: input.display().to_string(),
        ratio_volume_background_sensitivity: r.lattice.background_sensitivity,
        ratio_volume_noise_sensitivity: r.lattice.noise_sensitivity,
        notes,
        warnings: r.warnings.0.clone(),
    }
}
