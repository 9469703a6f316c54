//! Nonlinear denoising after H. Du, Ultramicroscopy 151, 62 (2015)
//! (docs/methods/denoise.md): an iterated low-pass + Wiener filter that keeps strong
//! periodic components (Bragg peaks) and low-frequency non-periodic content
//! (thickness, particle edges) while suppressing noise.
//!
//! # Equations (n×n, r = distance from the spectrum centre in px)
//! `H(r) = exp(−r²/(2(cn)²))`, `B(r) = 1/(1 + 0.414 (r/(c_b n))^{2 n_b})`.
//! Per iteration: `L = H·X`, `D = (1 − H)·X`, `X ← L + G(D)·D·B` with the
//! Wiener gain `G = max(0, (|D|² − A_bg²)/|D|²)` and the noise floor
//! `A_bg` from rings of the 5×5-median-filtered magnitude of the windowed
//! `D` (Kilaas 1998; the public re-implementation of Du's filter by Ma 2024,
//! hrtem_filter, fixes the details followed here, incl. its parity quirks).
//! Per iteration the amplitude at k is multiplied by `H + (1 − H)·G·B ≤ 1`.
//!
//! # Cost
//! The iterate stays in Fourier space (H, G, B are diagonal): per iteration
//! one inverse FFT (to apply the real-space window), one forward FFT, a
//! 5×5 median of the magnitude and the ring clipping; one final inverse FFT.
//! All in f32 (the input's precision; the ring levels are summed in f64):
//! half the memory traffic of f64, and on a 1024² image the output differs
//! from an f64 run by a few 10⁻⁷ relative.

use ndarray::{s, Array2, ArrayView2};
use num_complex::Complex;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{check_finite, Error, Result, Warnings};
use crate::fft::{self, transform::signed_index};

mod median;
use median::median5x5;

/// Butterworth post-filter of the Wiener part.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Butterworth {
    /// Order n_b (spec default 2).
    pub order: u32,
    /// Cutoff c_b as a fraction of n (spec default 0.3).
    pub cutoff: f64,
}

/// Parameters of [`denoise`] (defaults: docs/methods/denoise.md, after Ma 2024).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DenoiseParams {
    /// Iterations N (default 50).
    pub iterations: usize,
    /// Gaussian low-pass cutoff c as a fraction of n (default 0.3).
    pub lowpass_cutoff: f64,
    /// Ring-clipping threshold δ in % (default 10).
    pub threshold_percent: f64,
    /// Butterworth post-filter (default on: order 2, cutoff 0.3).
    pub butterworth: Option<Butterworth>,
    /// Scale of the noise floor (1 = parity with the reference filter).
    pub noise_scale: f64,
}

impl Default for DenoiseParams {
    fn default() -> Self {
        DenoiseParams {
            iterations: 50,
            lowpass_cutoff: 0.3,
            threshold_percent: 10.0,
            butterworth: Some(Butterworth {
                order: 2,
                cutoff: 0.3,
            }),
            noise_scale: 1.0,
        }
    }
}

/// Output of [`denoise`].
#[derive(Debug, Clone)]
pub struct Denoised {
    /// Filtered image x_N.
    pub image: Array2<f32>,
    /// Removed part x₀ − x_N.
    pub removed: Array2<f32>,
    /// Iterations run.
    pub iterations: usize,
    /// Non-fatal findings.
    pub warnings: Warnings,
}

/// Du (2015) nonlinear filter of an image (see the module doc).
///
/// # Errors
/// Images smaller than 32 px on a side, NaN/Inf pixels, parameters out of
/// range (iterations 0, cutoffs ≤ 0, threshold < 0).
pub fn denoise(image: ArrayView2<f32>, p: &DenoiseParams) -> Result<Denoised> {
    let (ny, nx) = image.dim();
    if ny < 32 || nx < 32 {
        return Err(Error::shape(
            "denoise: image",
            "at least 32x32 px",
            format!("{ny}x{nx}"),
        ));
    }
    check_finite("denoise input", image.iter(), |i| {
        format!("pixel (y={}, x={})", i / nx, i % nx)
    })?;
    crate::stem::limits::iterations("denoise_iterations", p.iterations)?;
    if !(p.lowpass_cutoff > 0.0 && p.threshold_percent >= 0.0 && p.noise_scale >= 0.0) {
        return Err(Error::param(
            "denoise parameters",
            "need lowpass_cutoff > 0, threshold_percent ≥ 0, noise_scale ≥ 0",
        ));
    }
    if let Some(b) = p.butterworth {
        if !(b.cutoff > 0.0 && b.order > 0) {
            return Err(Error::param(
                "butterworth",
                "needs order ≥ 1 and cutoff > 0",
            ));
        }
    }
    let n = ny.max(nx);
    let mut x0 = Array2::<f32>::zeros((n, n));
    x0.slice_mut(s![..ny, ..nx]).assign(&image);
    let f = Filters::new(n, p);
    // The iterate in the transposed half-spectrum layout [k_x, k_y] of
    // `fft::rfft2_t`: every filter is diagonal, so no transposes are needed.
    let mut x = fft::rfft2_t(x0.view());
    let mut wd = Array2::<f32>::zeros((n, n));
    for _ in 0..p.iterations {
        // D = (1 − H)·X in Fourier space; windowed D in real space.
        let dh = ndarray::Zip::from(&x)
            .and(&f.h)
            .par_map_collect(|x, h| x * (1.0 - h));
        let d = fft::irfft2_t(dh.view(), n);
        ndarray::Zip::from(&mut wd)
            .and(&d)
            .and(&f.w)
            .par_for_each(|o, d, w| *o = d * w);
        let a_bg = noise_floor(
            &fft::rfft2_t(wd.view()),
            &f,
            p.threshold_percent / 100.0,
            p.noise_scale as f32,
        );
        ndarray::Zip::from(&mut x)
            .and(&dh)
            .and(&a_bg)
            .and(&f.h)
            .and(&f.b)
            .par_for_each(|x, d, a, h, b| {
                let p2 = d.norm_sqr();
                let g = if p2 > 0.0 {
                    ((p2 - a * a) / p2).max(0.0)
                } else {
                    0.0
                };
                *x = *x * *h + *d * (g * b);
            });
    }
    let out = fft::irfft2_t(x.view(), n);
    let img = out.slice(s![..ny, ..nx]).to_owned();
    let removed = &image - &img;
    Ok(Denoised {
        image: img,
        removed,
        iterations: p.iterations,
        warnings: Warnings::default(),
    })
}

/// Diagonal filters on the transposed half spectrum (`[k_x, k_y]`, FFT
/// order) and the real-space window.
struct Filters {
    h: Array2<f32>,
    b: Array2<f32>,
    w: Array2<f32>,
    /// ⌊r⌋ of every centred-spectrum pixel.
    ring_of: Array2<u32>,
    /// Flat indices (centred layout) of the pixels of rings 0 … ⌊n/2⌋ − 2.
    rings: Vec<Vec<usize>>,
}

impl Filters {
    fn new(n: usize, p: &DenoiseParams) -> Self {
        let nh = n / 2 + 1;
        let nf = n as f64;
        let r2 = |i: usize, j: usize| {
            let (ky, kx) = (signed_index(i, n) as f64, j as f64);
            ky * ky + kx * kx
        };
        let c = p.lowpass_cutoff * nf;
        let h = Array2::from_shape_fn((nh, n), |(j, i)| (-r2(i, j) / (2.0 * c * c)).exp() as f32);
        let b = Array2::from_shape_fn((nh, n), |(j, i)| match p.butterworth {
            Some(bw) => {
                let r = r2(i, j).sqrt() / (bw.cutoff * nf);
                (1.0 / (1.0 + 0.414 * r.powi(2 * bw.order as i32))) as f32
            }
            None => 1.0,
        });
        let c0 = (nf + 1.0) / 2.0; // parity quirk of the reference
        let w = Array2::from_shape_fn((n, n), |(y, x)| {
            let rho = ((y as f64 - c0).powi(2) + (x as f64 - c0).powi(2)).sqrt();
            (1.0 / (1.0 + 0.414 * (rho / (0.4 * nf)).powi(24))) as f32
        });
        let c = (n / 2) as f64;
        let ring_of = Array2::from_shape_fn((n, n), |(y, x)| {
            ((y as f64 - c).powi(2) + (x as f64 - c).powi(2))
                .sqrt()
                .floor() as u32
        });
        let nr = (n / 2).saturating_sub(1);
        let mut rings = vec![Vec::new(); nr];
        for (i, r) in ring_of.iter().enumerate() {
            if (*r as usize) < nr {
                rings[*r as usize].push(i);
            }
        }
        Filters {
            h,
            b,
            w,
            ring_of,
            rings,
        }
    }
}

/// Noise floor A_bg on the transposed half spectrum (`[k_x, k_y]`, FFT
/// order) from the windowed spectrum in that layout: 5×5 median (zero
/// padding) of the centred full magnitude, then iterative ring clipping
/// (docs/methods/denoise.md). The magnitude is built transposed,
/// `mag[x_c, y_c]`: the 5×5 median and the rings ⌊r⌋ are symmetric under
/// transposition, so the floor is the same as on the untransposed layout.
fn noise_floor(half_t: &Array2<Complex<f32>>, f: &Filters, delta: f64, scale: f32) -> Array2<f32> {
    let n = half_t.ncols();
    let c = n / 2;
    // Full centred magnitude from the half spectrum (Hermitian symmetry).
    let mut mag = Array2::<f32>::zeros((n, n));
    mag.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(xc, mut row)| {
            let kx = (xc + n - c) % n;
            for (yc, v) in row.iter_mut().enumerate() {
                let ky = (yc + n - c) % n;
                *v = if kx <= n / 2 {
                    half_t[[kx, ky]].norm_sqr().sqrt()
                } else {
                    half_t[[n - kx, (n - ky) % n]].norm_sqr().sqrt()
                };
            }
        });
    let med = median5x5(&mag, true);
    // Rings ⌊r⌋ = 0 … ⌊n/2⌋ − 2 (precomputed pixel lists).
    let level: Vec<Option<f64>> = f
        .rings
        .par_iter()
        .map(|idx| {
            let vals: Vec<f64> = idx
                .iter()
                .map(|&i| med.as_slice().map_or(0.0, |m| f64::from(m[i])))
                .collect();
            let sum: f64 = vals.iter().sum();
            if vals.is_empty() || sum == 0.0 {
                return None;
            }
            let mut m = (1.0 + delta) * sum / vals.len() as f64;
            for _ in 0..100 {
                let next =
                    (1.0 + delta) * vals.iter().map(|v| v.min(m)).sum::<f64>() / vals.len() as f64;
                let change = ((next - m) / m).abs();
                m = next;
                if change <= delta {
                    break;
                }
            }
            Some(m)
        })
        .collect();
    let mut out = Array2::<f32>::zeros((n / 2 + 1, n));
    out.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(kx, mut row)| {
            let xc = (kx + c) % n;
            for (ky, v) in row.iter_mut().enumerate() {
                let yc = (ky + c) % n;
                let r = f.ring_of[[xc, yc]] as usize;
                *v = scale
                    * match level.get(r).copied().flatten() {
                        Some(m) => m as f32,
                        None => med[[xc, yc]],
                    };
            }
        });
    out
}
