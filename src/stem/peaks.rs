//! Column finding by centre-of-mass peaks (Crocker & Grier 1996): local
//! maxima over a Euclidean disk of radius `min_sep/2`, greedy suppression of
//! every peak within `min_sep` of a brighter kept one, then the intensity centroid in a
//! disk of radius `r_c`, recentred by bilinear sampling.
//!
//! The intensity particle mask ([`qd_mask`], [`otsu`]) lives in
//! [`crate::stem::mask`] and is re-exported here.
//!
//! Written by hand: scikit-image's `peak_local_max` uses a square window
//! (which loses every Cs column next to a Pb/Br column at a/√2, docs/methods/fitting.md)
//! and no Rust crate offers disk maxima with centroid refinement.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stem::background::gaussian::gaussian_filter;
pub use crate::stem::mask::{otsu, qd_mask};

/// How the centroid weights are offset before clipping at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum CentroidBackground {
    /// Subtract the minimum in the disk (spec default).
    DiskMin,
    /// Subtract the median of the lowest 10 % in the disk.
    LowestTenth,
}

/// Parameters of [`find_peaks`], all in px.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeakParams {
    /// Minimum separation of two peaks (radius of the maximum disk), px.
    pub min_separation_px: f64,
    /// Relative threshold: a peak must exceed min + rel·(max − min).
    pub threshold_rel: f64,
    /// Absolute threshold (overrides the relative one when set).
    pub threshold_abs: Option<f64>,
    /// Detection-only Gaussian smoothing σ, px (0 = none).
    pub smooth_sigma_px: f64,
    /// Peaks closer than this to the image border are dropped, px.
    pub exclude_border_px: f64,
    /// Centroid disk radius r_c, px (≥ 2).
    pub centroid_radius_px: f64,
    /// Centroid offset rule.
    pub centroid_background: CentroidBackground,
}

impl PeakParams {
    /// The column analysis' settings for a lattice constant of `a_px` px:
    /// separation 0.5622·a (keeps Cs and Pb/Br at a/√2, suppresses the
    /// pure-Br columns at a/2), threshold 0.1 of (max − min), smoothing
    /// σ = 0.5 px, border max(separation, 0.5·a/2 + 1), centroid radius
    /// 0.35·a/2 (at least 2 px), minimum of the disk subtracted.
    #[must_use]
    pub fn for_lattice_px(a_px: f64) -> PeakParams {
        let min_separation_px = 0.5622 * a_px;
        PeakParams {
            min_separation_px,
            threshold_rel: 0.1,
            threshold_abs: None,
            smooth_sigma_px: 0.5,
            exclude_border_px: min_separation_px.max(0.5 * a_px / 2.0 + 1.0),
            centroid_radius_px: (0.35 * a_px / 2.0).max(2.0),
            centroid_background: CentroidBackground::DiskMin,
        }
    }
}

impl Default for PeakParams {
    /// [`PeakParams::for_lattice_px`] at the study's sampling: a = 5.87 Å at
    /// 0.1 Å/px, 58.7 px.
    fn default() -> Self {
        PeakParams::for_lattice_px(
            crate::structure::LATTICE_ANGSTROM / crate::image::STUDY_PIXEL_ANGSTROM,
        )
    }
}

/// One detected column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    /// Centroid x, px.
    pub x: f64,
    /// Centroid y, px.
    pub y: f64,
    /// Integer position of the maximum (row, column).
    pub max_rc: (usize, usize),
    /// Detection-image value at the maximum.
    pub intensity: f64,
}

/// Result of [`find_peaks`] with its bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PeakSearch {
    /// Accepted peaks, by decreasing intensity.
    pub peaks: Vec<Peak>,
    /// Threshold used (detection-image units); `None` when the sites came
    /// from the lattice instead of a search (`stem::columns`).
    pub threshold: Option<f64>,
    /// Local maxima above threshold before suppression.
    pub n_candidates: usize,
    /// Dropped because they lie outside the mask.
    pub n_outside_mask: usize,
    /// Dropped because the centroid moved more than r_c/2.
    pub n_centroid_rejected: usize,
}

/// Offsets of the Euclidean disk of radius `r` (px), `dy, dx`.
pub fn disk_offsets(r: f64) -> Vec<(i64, i64)> {
    let ri = r.floor() as i64;
    let mut out = Vec::new();
    for dy in -ri..=ri {
        for dx in -ri..=ri {
            if ((dy * dy + dx * dx) as f64) <= r * r + 1e-9 {
                out.push((dy, dx));
            }
        }
    }
    out
}

fn validate(p: &PeakParams) -> Result<()> {
    let pos = |name: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(Error::param(name, format!("must be > 0 px, got {v}")))
        }
    };
    pos("min separation", p.min_separation_px)?;
    pos("centroid radius", p.centroid_radius_px)?;
    if !(p.threshold_rel.is_finite() && (0.0..1.0).contains(&p.threshold_rel)) {
        return Err(Error::param(
            "threshold_rel",
            format!("must be in [0, 1), got {}", p.threshold_rel),
        ));
    }
    if !(p.smooth_sigma_px.is_finite() && p.smooth_sigma_px >= 0.0) {
        return Err(Error::param("detection smoothing σ", "must be ≥ 0 px"));
    }
    if !(p.exclude_border_px.is_finite() && p.exclude_border_px >= 0.0) {
        return Err(Error::param("exclude border", "must be ≥ 0 px"));
    }
    if let Some(t) = p.threshold_abs {
        if !t.is_finite() {
            return Err(Error::param("threshold_abs", "must be finite"));
        }
    }
    Ok(())
}

/// Find column peaks in `image` (docs/methods/fitting.md). `mask`, when given, has the
/// image's shape; maxima where it is false are dropped.
///
/// # Errors
/// Invalid parameters, non-finite pixels, a mask of the wrong shape.
pub fn find_peaks(
    image: ArrayView2<f64>,
    p: &PeakParams,
    mask: Option<ArrayView2<bool>>,
) -> Result<PeakSearch> {
    validate(p)?;
    check_inputs(image, mask.as_ref())?;
    let det = detection_image(image, p)?;
    let inside = |y: usize, x: usize| mask.as_ref().is_none_or(|m| m[[y, x]]);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for ((y, x), &v) in det.indexed_iter() {
        if inside(y, x) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        return Err(Error::Empty {
            what: "peak search".into(),
            reason: "the particle mask is empty".into(),
        });
    }
    let threshold = p.threshold_abs.unwrap_or(lo + p.threshold_rel * (hi - lo));
    let mut out = PeakSearch {
        threshold: Some(threshold),
        ..PeakSearch::default()
    };
    if hi <= lo {
        return Ok(out); // flat image: no peaks
    }
    let cands = candidates(det.view(), threshold, p.min_separation_px);
    out.n_candidates = cands.len();
    suppress_and_refine(image, cands, p, inside, &mut out);
    Ok(out)
}

/// A peak-search image of at least 3×3 finite pixels and a mask of its shape.
fn check_inputs(image: ArrayView2<f64>, mask: Option<&ArrayView2<bool>>) -> Result<()> {
    let (ny, nx) = image.dim();
    if ny < 3 || nx < 3 {
        return Err(Error::shape(
            "peak search image",
            "at least 3x3 px",
            format!("{ny}x{nx}"),
        ));
    }
    if let Some(m) = mask {
        if m.dim() != (ny, nx) {
            return Err(Error::shape(
                "peak mask",
                format!("{ny}x{nx}"),
                format!("{}x{}", m.dim().0, m.dim().1),
            ));
        }
    }
    if let Some(i) = image.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "peak search image".into(),
            count: image.iter().filter(|v| !v.is_finite()).count(),
            first: format!("(y, x) = ({}, {})", i / nx, i % nx),
        });
    }
    Ok(())
}

/// The image the maxima are found in: `image` smoothed by the detection σ
/// (if any).
fn detection_image(image: ArrayView2<f64>, p: &PeakParams) -> Result<Array2<f64>> {
    Ok(if p.smooth_sigma_px > 0.0 {
        let f = image.mapv(|v| v as f32);
        gaussian_filter(f.view(), p.smooth_sigma_px, 3.0)?.mapv(f64::from)
    } else {
        image.to_owned()
    })
}

/// Candidates (y, x, value) above `threshold`: maximum over a Euclidean
/// disk of radius min_sep/2 (ties: lowest index wins). Not min_sep itself:
/// that disk reaches to within d − min_sep of a neighbour at distance d,
/// where the flank of a bright column is higher than the peak of a dim one
/// (a Cs column 22 px from a Pb/Br column was lost to a 17.6 px disk).
/// Peaks closer than min_sep are removed by the suppression, as documented.
fn candidates(det: ArrayView2<f64>, threshold: f64, min_sep: f64) -> Vec<(usize, usize, f64)> {
    let (ny, nx) = det.dim();
    let disk = disk_offsets((0.5 * min_sep).max(1.5));
    let wins = |y: usize, x: usize, offs: &[(i64, i64)]| -> bool {
        let v = det[[y, x]];
        for &(dy, dx) in offs {
            let (yy, xx) = (y as i64 + dy, x as i64 + dx);
            if yy < 0 || xx < 0 || yy >= ny as i64 || xx >= nx as i64 || (dy == 0 && dx == 0) {
                continue;
            }
            let w = det[[yy as usize, xx as usize]];
            let earlier = dy < 0 || (dy == 0 && dx < 0);
            if w > v || (earlier && w == v) {
                return false;
            }
        }
        true
    };
    let ring: Vec<(i64, i64)> = disk_offsets(1.5);
    let mut cands: Vec<(usize, usize, f64)> = Vec::new();
    for y in 0..ny {
        for x in 0..nx {
            let v = det[[y, x]];
            if v > threshold && wins(y, x, &ring) && wins(y, x, &disk) {
                cands.push((y, x, v));
            }
        }
    }
    cands
}

/// Kept peaks on a grid of min_sep cells, for the suppression.
struct KeptGrid {
    cell: f64,
    gy: usize,
    gx: usize,
    cells: Vec<Vec<(f64, f64)>>,
    min_sep2: f64,
}

impl KeptGrid {
    fn new((ny, nx): (usize, usize), min_sep: f64) -> Self {
        let cell = min_sep.max(1.0);
        let (gy, gx) = (
            (ny as f64 / cell).ceil() as usize + 1,
            (nx as f64 / cell).ceil() as usize + 1,
        );
        KeptGrid {
            cell,
            gy,
            gx,
            cells: vec![Vec::new(); gy * gx],
            min_sep2: min_sep * min_sep,
        }
    }

    /// Keep (y, x) unless a kept peak lies closer than min_sep; true when kept.
    fn keep(&mut self, y: usize, x: usize) -> bool {
        let (cy, cx) = (
            (y as f64 / self.cell) as usize,
            (x as f64 / self.cell) as usize,
        );
        for gyy in cy.saturating_sub(1)..=(cy + 1).min(self.gy - 1) {
            for gxx in cx.saturating_sub(1)..=(cx + 1).min(self.gx - 1) {
                for &(py, px) in &self.cells[gyy * self.gx + gxx] {
                    if (py - y as f64).powi(2) + (px - x as f64).powi(2) < self.min_sep2 {
                        return false;
                    }
                }
            }
        }
        self.cells[cy * self.gx + cx].push((y as f64, x as f64));
        true
    }
}

/// Suppression by decreasing intensity (a kept candidate suppresses every
/// one within min_sep, inside the mask or not), then the mask, the border
/// and the centroid refinement; accepted peaks go into `out`.
fn suppress_and_refine(
    image: ArrayView2<f64>,
    mut cands: Vec<(usize, usize, f64)>,
    p: &PeakParams,
    inside: impl Fn(usize, usize) -> bool,
    out: &mut PeakSearch,
) {
    let (ny, nx) = image.dim();
    cands.sort_by(|a, b| b.2.total_cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
    let mut grid = KeptGrid::new((ny, nx), p.min_separation_px);
    let border = p.exclude_border_px;
    let rc = p.centroid_radius_px.max(2.0);
    let cdisk = disk_offsets(rc);
    for (y, x, v) in cands {
        if !grid.keep(y, x) {
            continue;
        }
        if !inside(y, x) {
            out.n_outside_mask += 1;
            continue;
        }
        let (yf, xf) = (y as f64, x as f64);
        if yf < border
            || xf < border
            || yf > (ny - 1) as f64 - border
            || xf > (nx - 1) as f64 - border
        {
            continue;
        }
        match centroid(image, (xf, yf), rc, &cdisk, p.centroid_background) {
            Some((xc, yc)) => out.peaks.push(Peak {
                x: xc,
                y: yc,
                max_rc: (y, x),
                intensity: v,
            }),
            None => out.n_centroid_rejected += 1,
        }
    }
}

/// Bilinear sample with replicate edges.
pub fn bilinear(image: ArrayView2<f64>, x: f64, y: f64) -> f64 {
    let (ny, nx) = image.dim();
    let xc = x.clamp(0.0, (nx - 1) as f64);
    let yc = y.clamp(0.0, (ny - 1) as f64);
    let (x0, y0) = (xc.floor() as usize, yc.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(nx - 1), (y0 + 1).min(ny - 1));
    let (tx, ty) = (xc - x0 as f64, yc - y0 as f64);
    let a = image[[y0, x0]] * (1.0 - tx) + image[[y0, x1]] * tx;
    let b = image[[y1, x0]] * (1.0 - tx) + image[[y1, x1]] * tx;
    a * (1.0 - ty) + b * ty
}

/// Intensity centroid in a disk of radius `rc` around `start`, recentred by
/// bilinear sampling until the step is < 0.01 px (≤ 10 passes). `None` when
/// the centroid moves more than rc/2 from `start` or has no weight.
pub fn centroid(
    image: ArrayView2<f64>,
    start: (f64, f64),
    rc: f64,
    disk: &[(i64, i64)],
    bg: CentroidBackground,
) -> Option<(f64, f64)> {
    let (mut x, mut y) = start;
    let mut vals = Vec::with_capacity(disk.len());
    let integer = start.0.fract() == 0.0 && start.1.fract() == 0.0;
    for pass in 0..10 {
        vals.clear();
        let exact = pass == 0 && integer;
        for &(dy, dx) in disk {
            let v = if exact {
                let (ny, nx) = image.dim();
                let yy = (y as i64 + dy).clamp(0, ny as i64 - 1) as usize;
                let xx = (x as i64 + dx).clamp(0, nx as i64 - 1) as usize;
                image[[yy, xx]]
            } else {
                bilinear(image, x + dx as f64, y + dy as f64)
            };
            vals.push(v);
        }
        let off = match bg {
            CentroidBackground::DiskMin => vals.iter().copied().fold(f64::INFINITY, f64::min),
            CentroidBackground::LowestTenth => {
                let mut s = vals.clone();
                s.sort_by(f64::total_cmp);
                let k = (s.len() / 10).max(1);
                s[k / 2]
            }
        };
        let (mut sw, mut sx, mut sy) = (0.0, 0.0, 0.0);
        for (&(dy, dx), &v) in disk.iter().zip(&vals) {
            let w = (v - off).max(0.0);
            sw += w;
            sx += w * dx as f64;
            sy += w * dy as f64;
        }
        if sw <= 0.0 || !sw.is_finite() {
            return None;
        }
        let (ddx, ddy) = (sx / sw, sy / sw);
        x += ddx;
        y += ddy;
        if ((x - start.0).powi(2) + (y - start.1).powi(2)).sqrt() > rc / 2.0 {
            return None;
        }
        if ddx.hypot(ddy) < 0.01 {
            break;
        }
    }
    Some((x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(ms: f64, rc: f64) -> PeakParams {
        PeakParams {
            min_separation_px: ms,
            threshold_rel: 0.1,
            threshold_abs: None,
            smooth_sigma_px: 0.0,
            exclude_border_px: 3.0,
            centroid_radius_px: rc,
            centroid_background: CentroidBackground::DiskMin,
        }
    }

    fn gauss(n: usize, x0: f64, y0: f64, s: f64, a: f64) -> Array2<f64> {
        Array2::from_shape_fn((n, n), |(y, x)| {
            a * (-((x as f64 - x0).powi(2) + (y as f64 - y0).powi(2)) / (2.0 * s * s)).exp()
        })
    }

    #[test]
    fn peak_on_integer_pixel_is_exact() {
        let img = gauss(41, 20.0, 19.0, 2.0, 100.0);
        let r = find_peaks(img.view(), &params(5.0, 4.0), None).unwrap();
        assert_eq!(r.peaks.len(), 1);
        assert!((r.peaks[0].x - 20.0).abs() < 1e-12 && (r.peaks[0].y - 19.0).abs() < 1e-12);
    }

    #[test]
    fn subpixel_centroid_within_spec() {
        // docs/methods/fitting.md: A = 100, σ = 2 px at (20.3, 19.7): error < 0.01 px for r_c = 3…6.
        let img = gauss(41, 20.3, 19.7, 2.0, 100.0);
        for rc in [3.0, 4.0, 5.0, 6.0] {
            let r = find_peaks(img.view(), &params(5.0, rc), None).unwrap();
            assert_eq!(r.peaks.len(), 1);
            let e = (r.peaks[0].x - 20.3).hypot(r.peaks[0].y - 19.7);
            assert!(e < 0.01, "r_c = {rc}: error {e}");
        }
    }

    #[test]
    fn disk_not_square_keeps_diagonal_neighbour() {
        // Two peaks at (±3, ±3): distance 4.24 > min_sep 4, so a disk keeps
        // both; a square of half-width 4 would drop the weaker.
        let img = gauss(41, 17.0, 17.0, 0.5, 100.0) + gauss(41, 20.0, 20.0, 0.5, 40.0);
        let r = find_peaks(img.view(), &params(4.0, 2.0), None).unwrap();
        assert_eq!(r.peaks.len(), 2);
    }

    #[test]
    fn flat_image_has_no_peaks_and_plateau_keeps_one() {
        let flat = Array2::<f64>::from_elem((20, 20), 3.0);
        assert!(find_peaks(flat.view(), &params(3.0, 2.0), None)
            .unwrap()
            .peaks
            .is_empty());
        let mut plateau = Array2::<f64>::zeros((20, 20));
        for y in 9..11 {
            for x in 9..11 {
                plateau[[y, x]] = 1.0;
            }
        }
        let r = find_peaks(plateau.view(), &params(3.0, 2.0), None).unwrap();
        assert_eq!(r.n_candidates, 1);
    }

    #[test]
    fn mask_and_nan() {
        let img = gauss(41, 20.0, 20.0, 2.0, 100.0);
        let m = Array2::from_elem((41, 41), false);
        assert!(find_peaks(img.view(), &params(3.0, 2.0), Some(m.view())).is_err());
        let mut bad = img.clone();
        bad[[3, 4]] = f64::NAN;
        let e = find_peaks(bad.view(), &params(3.0, 2.0), None).unwrap_err();
        assert!(e.to_string().contains("(3, 4)"), "{e}");
    }

    #[test]
    fn otsu_splits_two_levels_and_mask_fills_holes() {
        let mut img = Array2::<f64>::zeros((40, 40));
        for y in 10..30 {
            for x in 10..30 {
                img[[y, x]] = 10.0;
            }
        }
        img[[20, 20]] = 0.0; // a hole
        let t = otsu(img.iter().copied()).unwrap();
        assert!(t > 0.0 && t < 10.0);
        let (m, _) = qd_mask(img.view(), 0.5, None, 0.0).unwrap();
        let (g, _) = qd_mask(img.view(), 0.5, None, 3.0).unwrap();
        assert!(g[[8, 20]] && !m[[8, 20]] && !g[[2, 2]]);
        assert!(m[[20, 20]] && m[[15, 15]] && !m[[2, 2]]);
        assert!(otsu([1.0, 1.0].into_iter()).is_none());
    }

    #[test]
    fn dim_peak_beyond_min_sep_survives_any_contrast() {
        // Two round Gaussians σ = 0.25·min_sep at 0.8–1.5 × min_sep apart,
        // dim/bright peak ratio 0.2–1: beyond min_sep both are found, inside
        // it only the bright one (the suppression rule, not the disk size).
        let ms = 12.0;
        for &ratio in &[0.2, 0.3, 0.5, 0.75, 1.0] {
            for &f in &[0.8, 0.9, 1.05, 1.2, 1.35, 1.5] {
                let d = f * ms;
                let (x1, y1) = (30.0, 40.0);
                let ang: f64 = 0.3;
                let (x2, y2) = (x1 + d * ang.cos(), y1 + d * ang.sin());
                let img = gauss(81, x1, y1, 0.25 * ms, 100.0)
                    + gauss(81, x2, y2, 0.25 * ms, 100.0 * ratio * 0.999);
                let r = find_peaks(img.view(), &params(ms, 3.0), None).unwrap();
                let want = if f > 1.0 { 2 } else { 1 };
                assert_eq!(r.peaks.len(), want, "ratio {ratio}, {f} × min_sep");
                let b = (r.peaks[0].x - x1).hypot(r.peaks[0].y - y1);
                assert!(b < 0.5, "bright peak first, at its centre ({b} px)");
                if want == 2 {
                    let e = (r.peaks[1].x - x2).hypot(r.peaks[1].y - y2);
                    assert!(e < 1.0, "ratio {ratio}, {f}: dim peak off by {e} px");
                }
            }
        }
    }
}
