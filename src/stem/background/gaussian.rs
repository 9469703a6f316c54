//! Gaussian smoothing with MATLAB `imgaussfilt` parity: normalised kernel
//! `exp(−i²/(2σ²))` of half-width `⌈truncate·σ⌉` (truncate = 2 in MATLAB),
//! *replicate* padding, separable (rows, then columns), f64 accumulation.
//! Short kernels are applied directly; long ones through
//! [`crate::fft::Convolver1d`], so the cost is flat in σ.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::fft::{transpose, Convolver1d};

/// Kernels longer than this many taps go through the FFT (at 1024², 41 taps
/// cost 4.3 ms direct and 3.8 ms through the FFT on the 2-core machine).
const DIRECT_MAX_TAPS: usize = 31;

/// Normalised Gaussian kernel of half-width `⌈truncate·σ⌉`.
#[must_use]
pub fn gaussian_kernel(sigma_px: f64, truncate: f64) -> Vec<f64> {
    let hw = (truncate * sigma_px).ceil().max(0.0) as i64;
    let k: Vec<f64> = (-hw..=hw)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma_px * sigma_px)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// Filter every row with replicate padding: direct for short kernels (one
/// vectorised multiply-add per tap over the row), FFT for long ones.
fn filter_rows(a: ArrayView2<f32>, kernel: &[f64]) -> Result<Array2<f32>> {
    let (ny, nx) = a.dim();
    let hw = kernel.len() / 2;
    let padded_len = nx + 2 * hw;
    let mut out = Array2::<f32>::zeros((ny, nx));
    let src = a.as_slice().unwrap_or(&[]);
    let dst = out.as_slice_mut().unwrap_or(&mut []);
    if kernel.len() <= DIRECT_MAX_TAPS {
        let k32: Vec<f32> = kernel.iter().map(|v| *v as f32).collect();
        dst.par_chunks_mut(nx)
            .zip(src.par_chunks(nx))
            .for_each_init(Vec::new, |pad: &mut Vec<f32>, (o, r)| {
                pad.clear();
                pad.extend(std::iter::repeat_n(r[0], hw));
                pad.extend_from_slice(r);
                pad.extend(std::iter::repeat_n(r[nx - 1], hw));
                o.fill(0.0);
                for (t, k) in k32.iter().enumerate() {
                    for (d, s) in o.iter_mut().zip(&pad[t..t + nx]) {
                        *d += k * s;
                    }
                }
            });
    } else {
        // The kernel is symmetric, so convolution equals correlation.
        let k32: Vec<f32> = kernel.iter().map(|v| *v as f32).collect();
        let conv = Convolver1d::new(&k32, padded_len)?;
        dst.par_chunks_mut(nx)
            .zip(src.par_chunks(nx))
            .for_each_init(
                || (Vec::new(), conv.workspace()),
                |(pad, ws), (o, r)| {
                    pad.clear();
                    pad.extend(std::iter::repeat_n(r[0], hw));
                    pad.extend_from_slice(r);
                    pad.extend(std::iter::repeat_n(r[nx - 1], hw));
                    conv.valid_into(pad, o, ws);
                },
            );
    }
    Ok(out)
}

/// Separable Gaussian filter, replicate padding (MATLAB `imgaussfilt(I, σ)`
/// for `truncate = 2`).
///
/// # Errors
/// `Error::InvalidParameter` for σ ≤ 0 or truncate ≤ 0; `Error::Empty` for
/// an empty image.
pub fn gaussian_filter(
    image: ArrayView2<f32>,
    sigma_px: f64,
    truncate: f64,
) -> Result<Array2<f32>> {
    if !(sigma_px.is_finite() && sigma_px > 0.0) {
        return Err(Error::param(
            "gaussian sigma",
            format!("must be > 0 px, got {sigma_px}"),
        ));
    }
    if !(truncate.is_finite() && truncate > 0.0) {
        return Err(Error::param(
            "gaussian truncate",
            format!("must be > 0, got {truncate}"),
        ));
    }
    let (ny, nx) = image.dim();
    if ny == 0 || nx == 0 {
        return Err(Error::Empty {
            what: "gaussian filter".into(),
            reason: "empty image".into(),
        });
    }
    let kernel = gaussian_kernel(sigma_px, truncate);
    let rows = filter_rows(image.as_standard_layout().view(), &kernel)?;
    if kernel.len() > DIRECT_MAX_TAPS {
        let cols = filter_rows(transpose(rows.view()).view(), &kernel)?;
        return Ok(transpose(cols.view()));
    }
    // Columns: each output row is a weighted sum of whole input rows
    // (replicate rows beyond the edges), vectorised along the row.
    let hw = (kernel.len() / 2) as i64;
    let k32: Vec<f32> = kernel.iter().map(|v| *v as f32).collect();
    let src = rows.as_slice().unwrap_or(&[]);
    let mut out = Array2::<f32>::zeros((ny, nx));
    out.as_slice_mut()
        .unwrap_or(&mut [])
        .par_chunks_mut(nx)
        .enumerate()
        .for_each(|(y, o)| {
            for (t, k) in k32.iter().enumerate() {
                let yy = (y as i64 + t as i64 - hw).clamp(0, ny as i64 - 1) as usize;
                for (d, s) in o.iter_mut().zip(&src[yy * nx..(yy + 1) * nx]) {
                    *d += k * s;
                }
            }
        });
    Ok(out)
}
