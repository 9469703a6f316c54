//! Ground truth of a rendered case and the scoring of the column analysis
//! against it.

use serde::{Deserialize, Serialize};

use super::Case;
use crate::image::Stack;
use crate::stem::columns::ColumnsResult;
use crate::stem::pipeline::{PrepareParams, Prepared};
use crate::stem::sublattice::Sublattice;

/// Kind of a truth column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Cs column (dim), cell corner.
    Cs,
    /// Pb/Br column (bright), body centre.
    PbBr,
    /// Pure-Br column, edge centre.
    Br,
}

impl ColumnKind {
    /// The analysis label this kind should receive.
    #[must_use]
    pub fn sublattice(self) -> Sublattice {
        match self {
            ColumnKind::Cs => Sublattice::Cs,
            ColumnKind::PbBr => Sublattice::PbBr,
            ColumnKind::Br => Sublattice::Br,
        }
    }
}

/// One rendered column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TruthColumn {
    /// Kind.
    pub kind: ColumnKind,
    /// Centre x in frame 0, px.
    pub x_px: f64,
    /// Centre y in frame 0, px.
    pub y_px: f64,
    /// Volume (scatter included), counts·px².
    pub volume: f64,
    /// Peak height volume/(2π σ_x σ_y), counts.
    pub height: f64,
    /// σ along the probe's major axis (`Case::ellipse_angle_deg`), px.
    pub sigma_x_px: f64,
    /// σ along the probe's minor axis, px.
    pub sigma_y_px: f64,
    /// Cs or Pb/Br with all 4 other-class neighbours in the particle, at
    /// least max(4σ, a) px inside the field in every frame.
    pub interior: bool,
}

/// Ground truth of a rendered case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseTruth {
    /// Every column (Cs, Pb/Br, Br).
    pub columns: Vec<TruthColumn>,
    /// Drift (dx, dy) of every frame, px.
    pub shifts_px: Vec<(f64, f64)>,
    /// Mean volume of the interior Cs / of the interior Pb/Br columns
    /// (`None` without interior columns of either class).
    pub ratio_volume: Option<f64>,
    /// The same with peak heights.
    pub ratio_height: Option<f64>,
    /// Interior Cs columns.
    pub n_interior_cs: usize,
    /// Interior Pb/Br columns.
    pub n_interior_pbbr: usize,
    /// Pixel size, Å/px.
    pub pixel_size_angstrom: f64,
    /// Lattice constant, Å.
    pub lattice_angstrom: f64,
    /// Field size, px.
    pub field_px: usize,
    /// Texture blobs rendered.
    pub n_texture_blobs: usize,
}

/// Offset (x, y) px that maps a position in `prepared.prepared` to frame-0
/// coordinates of the input stack (truth = measured + offset): the crop to
/// the common field of view of the registered average (as
/// [`crate::stem::register::average`] computes it), the fast-FFT crop
/// `crop_offset_yx`, and the measured shift of frame 0 in the registration
/// gauge (the average is aligned to the first kept frame).
#[must_use]
pub fn prepared_offset_px(prepared: &Prepared, params: &PrepareParams) -> (f64, f64) {
    let (cy, cx) = prepared.crop_offset_yx;
    let (mut ox, mut oy) = (cx as f64, cy as f64);
    if prepared.registered {
        let reg = &prepared.registration;
        if params.register.crop_common {
            let (mut x0, mut y0) = (0.0f64, 0.0f64);
            for (i, s) in reg.shifts.iter().enumerate() {
                if !reg.rejected.contains(&i) {
                    x0 = x0.max(-s.dx);
                    y0 = y0.max(-s.dy);
                }
            }
            ox += x0.ceil().max(0.0);
            oy += y0.ceil().max(0.0);
        }
        if let Some(s0) = reg.shifts.first() {
            ox += s0.dx;
            oy += s0.dy;
        }
    }
    (ox, oy)
}

/// How the columns found by the analysis compare with the truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseScore {
    /// Offset (x, y) px used: truth = measured + offset (the guess refined
    /// by the median displacement to the nearest Cs / Pb/Br truth column).
    pub offset_px: (f64, f64),
    /// Matching radius, px (0.35·(a/√2)/pixel).
    pub match_radius_px: f64,
    /// Columns reported by the analysis.
    pub n_measured: usize,
    /// Of those, matched to a truth column (any kind) within the radius.
    pub n_matched: usize,
    /// Interior truth columns (Cs and Pb/Br).
    pub n_interior: usize,
    /// Interior truth columns with a matched measured column carrying the
    /// right sublattice label.
    pub n_interior_right: usize,
    /// `n_interior_right / n_interior` (`None` without interior columns).
    pub frac_interior_right: Option<f64>,
    /// Columns the analysis put in its ratio (`in_ratio`).
    pub n_ratio: usize,
    /// Of those, matched to a truth column of the same class.
    pub n_ratio_right: usize,
    /// Of those, matched to a truth column of another class.
    pub n_ratio_wrong_class: usize,
    /// Of those, not within the radius of any truth column.
    pub n_ratio_unmatched: usize,
    /// `n_ratio_wrong_class + n_ratio_unmatched`.
    pub n_ratio_mislabelled: usize,
    /// `n_ratio_right / n_ratio` (`None` when no column is in the ratio).
    pub frac_ratio_right: Option<f64>,
    /// The ratio rests on classes < 90 % right (`frac_ratio_right < 0.9`,
    /// or no column in the ratio).
    pub ratio_from_mislabelled: bool,
}

fn nearest(
    truth: &[TruthColumn],
    x: f64,
    y: f64,
    keep: impl Fn(&TruthColumn) -> bool,
) -> Option<(usize, f64)> {
    truth
        .iter()
        .enumerate()
        .filter(|(_, t)| keep(t))
        .map(|(i, t)| (i, (t.x_px - x).hypot(t.y_px - y)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Score the analysis of a case. `guess_px` maps measured positions
/// (`Column.fit.params.x0, y0`, px in the analysed image) to frame-0 truth
/// coordinates, truth = measured + guess (see [`prepared_offset_px`]); it is
/// refined twice by the median displacement between the measured columns
/// and their nearest Cs / Pb/Br truth columns within half the Cs–Pb/Br
/// distance. Then every measured column is matched to its nearest truth
/// column of any kind within 0.35·(a/√2)/pixel.
#[must_use]
pub fn score(truth: &CaseTruth, result: &ColumnsResult, guess_px: (f64, f64)) -> CaseScore {
    let d = truth.lattice_angstrom / std::f64::consts::SQRT_2 / truth.pixel_size_angstrom;
    let radius = 0.35 * d;
    let pos: Vec<(f64, f64)> = result
        .columns
        .iter()
        .map(|c| (c.fit.params.x0, c.fit.params.y0))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let mut off = guess_px;
    for _ in 0..2 {
        let (mut ddx, mut ddy) = (Vec::new(), Vec::new());
        for &(x, y) in &pos {
            let (tx, ty) = (x + off.0, y + off.1);
            if let Some((i, r)) = nearest(&truth.columns, tx, ty, |t| t.kind != ColumnKind::Br) {
                if r < 0.5 * d {
                    ddx.push(truth.columns[i].x_px - tx);
                    ddy.push(truth.columns[i].y_px - ty);
                }
            }
        }
        if ddx.is_empty() {
            break;
        }
        off = (off.0 + median(&mut ddx), off.1 + median(&mut ddy));
    }
    let mut right = vec![false; truth.columns.len()];
    let (mut n_matched, mut n_ratio, mut n_rr, mut n_rw, mut n_ru) = (0, 0, 0, 0, 0);
    for c in &result.columns {
        let (x, y) = (c.fit.params.x0 + off.0, c.fit.params.y0 + off.1);
        let m = if x.is_finite() && y.is_finite() {
            nearest(&truth.columns, x, y, |_| true).filter(|(_, r)| *r <= radius)
        } else {
            None
        };
        if let Some((i, _)) = m {
            n_matched += 1;
            if truth.columns[i].kind.sublattice() == c.sublattice {
                right[i] = true;
            }
        }
        if c.in_ratio {
            n_ratio += 1;
            match m {
                Some((i, _)) if truth.columns[i].kind.sublattice() == c.sublattice => n_rr += 1,
                Some(_) => n_rw += 1,
                None => n_ru += 1,
            }
        }
    }
    let n_interior = truth.columns.iter().filter(|t| t.interior).count();
    let n_interior_right = truth
        .columns
        .iter()
        .zip(&right)
        .filter(|(t, r)| t.interior && **r)
        .count();
    let frac = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    let frac_ratio_right = frac(n_rr, n_ratio);
    CaseScore {
        offset_px: off,
        match_radius_px: radius,
        n_measured: result.columns.len(),
        n_matched,
        n_interior,
        n_interior_right,
        frac_interior_right: frac(n_interior_right, n_interior),
        n_ratio,
        n_ratio_right: n_rr,
        n_ratio_wrong_class: n_rw,
        n_ratio_unmatched: n_ru,
        n_ratio_mislabelled: n_rw + n_ru,
        frac_ratio_right,
        ratio_from_mislabelled: frac_ratio_right.is_none_or(|f| f < 0.9),
    }
}

/// Result of running the image chain on one rendered case.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Truth ratio (`CaseTruth::ratio_volume`, `None` as there).
    pub truth_ratio: Option<f64>,
    /// The measured volume ratio, or the refusal (error text of `prepare`
    /// or of the column analysis).
    pub measured: std::result::Result<f64, String>,
    /// Column score (None when the chain refused).
    pub score: Option<CaseScore>,
    /// Wall time of `prepare`, s.
    pub seconds_prepare: f64,
    /// Wall time of the column analysis, s.
    pub seconds_analyse: f64,
    /// The column analysis's summary (what `qdscope columns` writes to
    /// `summary.json`; pixel size given by the user); None when refused.
    pub summary: Option<crate::stem::analyze::Summary>,
}

impl Outcome {
    /// Measured − truth ratio (None when refused or without a truth ratio).
    #[must_use]
    pub fn error(&self) -> Option<f64> {
        let m = self.measured.as_ref().ok()?;
        self.truth_ratio.map(|t| m - t)
    }
    /// A ratio was reported although < 90 % of the columns it used carry
    /// the right label.
    #[must_use]
    pub fn ratio_from_mislabelled(&self) -> bool {
        self.measured.is_ok() && self.score.as_ref().is_none_or(|s| s.ratio_from_mislabelled)
    }
}

/// Run `prepare` (with `params`) and the column analysis (default
/// [`ColumnsParams`](crate::stem::columns::ColumnsParams) with the case's
/// lattice constant, as a user would give it) on a rendered case and score
/// the columns against the truth. Errors of either stage are refusals, not
/// errors of this function.
#[must_use]
pub fn run_rendered(
    name: &str,
    case: &Case,
    stack: &Stack,
    truth: &CaseTruth,
    params: &PrepareParams,
) -> Outcome {
    run_rendered_with(
        name,
        case,
        stack,
        truth,
        params,
        crate::stem::gaussian::Neighbours::Single,
    )
}

/// [`run_rendered`] with the column fit chosen (joint, single, sweep).
#[must_use]
pub fn run_rendered_with(
    name: &str,
    case: &Case,
    stack: &Stack,
    truth: &CaseTruth,
    params: &PrepareParams,
    neighbours: crate::stem::gaussian::Neighbours,
) -> Outcome {
    use crate::stem::columns::{analyse_with, ColumnsParams};
    let t0 = std::time::Instant::now();
    let prepared = crate::stem::pipeline::prepare(stack.clone(), params, None);
    let seconds_prepare = t0.elapsed().as_secs_f64();
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                truth_ratio: truth.ratio_volume,
                measured: Err(format!("prepare: {e}")),
                score: None,
                seconds_prepare,
                seconds_analyse: 0.0,
                summary: None,
            }
        }
    };
    let t1 = std::time::Instant::now();
    let cp = ColumnsParams {
        lattice_angstrom: case.lattice_angstrom,
        neighbours,
        ..ColumnsParams::default()
    };
    let res = analyse_with(name, &prepared.prepared, Some(&prepared.averaged), &cp);
    let seconds_analyse = t1.elapsed().as_secs_f64();
    match res {
        Ok(r) => {
            let sc = score(truth, &r, prepared_offset_px(&prepared, params));
            let summary = crate::stem::analyze::summarise(
                std::path::Path::new(name),
                &r,
                crate::stem::analyze::PixelSource::User,
            );
            Outcome {
                truth_ratio: truth.ratio_volume,
                measured: Ok(r.ratio_volume.ratio),
                score: Some(sc),
                seconds_prepare,
                seconds_analyse,
                summary: Some(summary),
            }
        }
        Err(e) => Outcome {
            truth_ratio: truth.ratio_volume,
            measured: Err(format!("columns: {e}")),
            score: None,
            seconds_prepare,
            seconds_analyse,
            summary: None,
        },
    }
}
