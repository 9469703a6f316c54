//! From summed detector fractions to images and ratios (docs/methods/optics.md,
//! docs/methods/multislice.md): the periodic cell image per thickness (Cs column at pixel
//! (0, 0), Pb/Br at the centre), source size and blur as a Gaussian on its
//! Fourier coefficients, the Fourier series evaluated on the experiment's
//! pixel grid over 5×5 cells, and the project's 7-parameter Gaussian column
//! fits (`fit::gaussian`, single-column, fit radius 0.5·a/2) on the
//! interior Cs and Pb/Br columns → A (height) and V (volume) ratios.

use ndarray::Array2;
use num_complex::Complex;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::fft::{fft2, fftfreq};
use crate::fit::gaussian::{fit_columns, FitParams, Neighbours};
use crate::multislice::work::{positions, Partial};
pub use crate::stats::jackknife_se;
use crate::units::FWHM_PER_SIGMA;

/// One row of the series.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Thickness, u.c.
    pub thickness_uc: usize,
    /// Thickness, nm.
    pub thickness_nm: f64,
    /// Mean fitted Cs column volume (detector fraction × px²).
    pub cs_intensity: f64,
    /// Mean fitted Pb/Br column volume.
    pub pbbr_intensity: f64,
    /// Cs : Pb/Br from volumes.
    pub ratio_volume: f64,
    /// Cs : Pb/Br from heights (A).
    pub ratio_height: f64,
}

/// Cell images (p × p, detector `d`) for every thickness, averaged over
/// the work items and blurred by σ_tot = √(σ_src² + σ_blur²).
///
/// # Errors
/// No work item in the partial sums.
pub fn cell_images(part: &Partial, d: usize) -> Result<Vec<Array2<f64>>> {
    let p = &part.params;
    let (sums, weight) = part.totals();
    if weight <= 0.0 {
        return Err(Error::Empty {
            what: "simulation".into(),
            reason: "no work item was computed".into(),
        });
    }
    let n = p.probe_per_cell;
    let (_, map) = positions(n, p.symmetry_wedge);
    let sigma_src = p.microscope.source_size_angstrom / FWHM_PER_SIGMA;
    let s2 = sigma_src * sigma_src + p.blur_angstrom * p.blur_angstrom;
    let f = fftfreq(n, p.lattice_angstrom / n as f64);
    let mut out = Vec::new();
    let per_detector = sums
        .get(d)
        .ok_or_else(|| Error::param("detector", format!("no detector {d}")))?;
    for fractions in per_detector.iter().take(p.max_thickness_uc) {
        let img = Array2::from_shape_fn((n, n), |(i, j)| {
            Complex::new(fractions[map[i * n + j]] / weight, 0.0)
        });
        let mut spec = fft2(img.view());
        for ((i, j), v) in spec.indexed_iter_mut() {
            let q2 = f[i] * f[i] + f[j] * f[j];
            *v *= (-2.0 * std::f64::consts::PI.powi(2) * s2 * q2).exp();
        }
        let back = crate::fft::ifft2(spec.view());
        out.push(back.mapv(|v| v.re));
    }
    Ok(out)
}

/// Evaluate the periodic cell image (period a) at pixel size `px` Å over
/// `cells × cells` unit cells (Fourier series; the Nyquist terms dropped).
#[must_use]
pub fn resample(cell: &Array2<f64>, a: f64, px: f64, cells: usize) -> Array2<f64> {
    let n = cell.nrows();
    let spec = fft2(cell.mapv(|v| Complex::new(v, 0.0)).view());
    let m = (cells as f64 * a / px).floor() as usize;
    let h: Vec<i64> = (0..n)
        .map(|i| {
            if i <= n / 2 {
                i as i64
            } else {
                i as i64 - n as i64
            }
        })
        .collect();
    // E[x][i] = e^{2πi h_i x/a}; image = Re(E_y · C · E_xᵀ) / n².
    let e = Array2::from_shape_fn((m, n), |(x, i)| {
        if n.is_multiple_of(2) && i == n / 2 {
            return Complex::new(0.0, 0.0);
        }
        Complex::from_polar(1.0, std::f64::consts::TAU * h[i] as f64 * x as f64 * px / a)
    });
    let tmp = e.dot(&spec);
    let img = tmp.dot(&e.t());
    img.mapv(|v| v.re / (n * n) as f64)
}

/// Fit the interior columns of the resampled image and return
/// (mean Cs volume, mean Pb/Br volume, volume ratio, height ratio).
///
/// # Errors
/// No converged fit in a class.
pub fn column_ratio(img: &Array2<f64>, a: f64, px: f64) -> Result<(f64, f64, f64, f64)> {
    let cells = ((img.ncols() as f64 * px) / a).floor() as usize;
    let mut cs = Vec::new();
    let mut pb = Vec::new();
    for i in 1..cells {
        for j in 1..cells {
            cs.push((j as f64 * a / px, i as f64 * a / px));
        }
    }
    for i in 1..cells.saturating_sub(1) {
        for j in 1..cells.saturating_sub(1) {
            pb.push(((j as f64 + 0.5) * a / px, (i as f64 + 0.5) * a / px));
        }
    }
    let opts = FitParams {
        radius_px: 0.5 * a / 2.0 / px,
        poisson_weights: false,
        neighbours: Neighbours::Single,
        sweeps: 1,
    };
    let mean = |starts: &[(f64, f64)], what: &str| -> Result<(f64, f64)> {
        let fits = fit_columns(img.view(), starts, &opts)?;
        let ok: Vec<_> = fits.iter().filter(|f| f.converged()).collect();
        if ok.is_empty() {
            return Err(Error::Numerical {
                what: format!("simulated image, {what} columns"),
                reason: "no column fit converged".into(),
            });
        }
        let n = ok.len() as f64;
        Ok((
            ok.iter().map(|f| f.params.volume()).sum::<f64>() / n,
            ok.iter().map(|f| f.params.height).sum::<f64>() / n,
        ))
    };
    let (vc, hc) = mean(&cs, "Cs")?;
    let (vp, hp) = mean(&pb, "Pb/Br")?;
    Ok((vc, vp, vc / vp, hc / hp))
}

/// Check the pixel size of the images the columns are fitted on: in (0, 1) Å.
///
/// # Errors
/// Another value.
pub fn check_pixel_size(pixel_size_angstrom: f64) -> Result<()> {
    if !(pixel_size_angstrom.is_finite() && pixel_size_angstrom > 0.0 && pixel_size_angstrom < 1.0)
    {
        return Err(Error::param("pixel_size_angstrom", "must be in (0, 1) Å"));
    }
    Ok(())
}

/// The series rows of detector `d` (thickness 1… max u.c.) on images of
/// pixel size `pixel_size_angstrom`.
///
/// # Errors
/// As [`check_pixel_size`], [`cell_images`] and [`column_ratio`].
pub fn series(
    part: &Partial,
    d: usize,
    pixel_size_angstrom: f64,
) -> Result<(Vec<Row>, Vec<Array2<f64>>)> {
    check_pixel_size(pixel_size_angstrom)?;
    let a = part.params.lattice_angstrom;
    let imgs = cell_images(part, d)?;
    let mut rows = Vec::new();
    for (t, cell) in imgs.iter().enumerate() {
        let big = resample(cell, a, pixel_size_angstrom, 5);
        let (vc, vp, rv, rh) = column_ratio(&big, a, pixel_size_angstrom)
            .map_err(|e| e.context(format!("{} u.c.", t + 1)))?;
        rows.push(Row {
            thickness_uc: t + 1,
            thickness_nm: (t + 1) as f64 * a / 10.0,
            cs_intensity: vc,
            pbbr_intensity: vp,
            ratio_volume: rv,
            ratio_height: rh,
        });
    }
    Ok((rows, imgs))
}

/// Jackknife over frozen-phonon configurations: the series rows of detector
/// `d` with each configuration left out in turn (the remaining items'
/// weights renormalise the average), in configuration order. Fewer than two
/// configurations give no rows (`None`). The standard error of any
/// quantity θ computed from a row set is [`jackknife_se`] of its
/// leave-one-out values — also for differences such as θ(30 u.c.) −
/// θ(15 u.c.), where the configurations' common fluctuations cancel.
///
/// # Errors
/// As [`series`].
pub fn jackknife(
    part: &Partial,
    d: usize,
    pixel_size_angstrom: f64,
) -> Result<Option<Vec<Vec<Row>>>> {
    use rayon::prelude::*;
    let configs = part.configurations();
    if configs.len() < 2 {
        return Ok(None);
    }
    configs
        .par_iter()
        .map(|&c| {
            let rest = Partial {
                params: part.params.clone(),
                items: part
                    .items
                    .iter()
                    .filter(|it| it.config != c)
                    .cloned()
                    .collect(),
                min_intensity: part.min_intensity,
                seconds: part.seconds,
            };
            series(&rest, d, pixel_size_angstrom).map(|(rows, _)| rows)
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}
