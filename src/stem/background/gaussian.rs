//! Gaussian smoothing with MATLAB `imgaussfilt` parity: normalised kernel
//! `exp(−i²/(2σ²))` of half-width `⌈truncate·σ⌉` (truncate = 2 in MATLAB),
//! *replicate* padding, separable (rows, then columns), f64 accumulation.
//! Short kernels are applied directly; long ones through
//! [`crate::fft::Convolver1d`], so the cost is flat in σ.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::fft::{transpose, Convolver1d};

/// Kernels longer than this many taps go through the FFT.
const DIRECT_MAX_TAPS: usize = 25;

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

/// Filter every row of a standard-layout array with replicate padding.
fn filter_rows(a: &Array2<f32>, kernel: &[f64]) -> Result<Array2<f32>> {
    let (ny, nx) = a.dim();
    let hw = kernel.len() / 2;
    let padded_len = nx + 2 * hw;
    let mut out = Array2::<f32>::zeros((ny, nx));
    let src = a.as_slice().unwrap_or(&[]);
    let fill = |row: &[f32], pad: &mut Vec<f64>| {
        pad.clear();
        let (first, last) = (row[0] as f64, row[nx - 1] as f64);
        pad.extend(std::iter::repeat(first).take(hw));
        pad.extend(row.iter().map(|v| *v as f64));
        pad.extend(std::iter::repeat(last).take(hw));
    };
    let dst = out.as_slice_mut().unwrap_or(&mut []);
    if kernel.len() <= DIRECT_MAX_TAPS {
        dst.par_chunks_mut(nx)
            .zip(src.par_chunks(nx))
            .for_each_init(Vec::new, |pad, (o, r)| {
                fill(r, pad);
                for (i, v) in o.iter_mut().enumerate() {
                    let w = &pad[i..i + kernel.len()];
                    *v = w.iter().zip(kernel).map(|(a, b)| a * b).sum::<f64>() as f32;
                }
            });
    } else {
        // The kernel is symmetric, so convolution equals correlation.
        let conv = Convolver1d::new(kernel, padded_len)?;
        dst.par_chunks_mut(nx)
            .zip(src.par_chunks(nx))
            .for_each_init(
                || (Vec::new(), vec![0.0f64; nx], conv.workspace()),
                |(pad, res, ws), (o, r)| {
                    fill(r, pad);
                    conv.valid_into(pad, res, ws);
                    o.iter_mut()
                        .zip(res.iter())
                        .for_each(|(d, s)| *d = *s as f32);
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
    let rows = filter_rows(&image.as_standard_layout().into_owned(), &kernel)?;
    let cols = filter_rows(&transpose(rows.view()), &kernel)?;
    Ok(transpose(cols.view()))
}
