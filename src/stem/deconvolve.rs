//! Richardson–Lucy and blind Richardson–Lucy deconvolution with MATLAB
//! `deconvblind` behaviour (docs/methods/deconvolution.md): Biggs–Andrews acceleration of
//! image and PSF, damping (DAMPAR, White 1994), READOUT, PSF kept ≥ 0 with
//! unit sum, circular boundaries.
//!
//! # Equations (per iteration k, WEIGHT = 1)
//! `Y = max(J_k + λ_J(J_k − J_{k−1}), 0)`, `B_p = max(P_k + λ_P(P_k − P_{k−1}), 0)/Σ`;
//! `R = B_p ⊛ Y + READOUT`; `A = wI/R + ε` (damped: `Q = 1 + G_d(A − 1)`);
//! image with the previous PSF: `J_{k+1} = max(Y·(P_k ⋆ Q)/(1 + √ε), 0)`;
//! PSF with the pre-update image: `P_{k+1} ∝ max(B_p·(J_k ⋆ Q)/(ΣJ_k + √ε), 0)`.
//! λ = clip(g·g′/(g′·g′ + ε), 0, 1) from the last two update directions,
//! 0 for k ≤ 2. With a constant WEIGHT the normalisations are analytic.
//!
//! # Cost
//! About 8 real FFTs of the image per blind iteration (6 non-blind); one
//! workspace of spectra is reused across iterations.
//!
//! # References
//! Biggs & Andrews, Appl. Opt. 36, 1766 (1997); Hanisch, White & Gilliland
//! 1997; MATLAB `deconvblind`/`deconvlucy`.

use ndarray::{Array2, ArrayView2, Zip};
use num_complex::Complex;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{check_finite, Error, Result, Warnings};
use crate::fft::{self, otf2psf_t as otf2psf_half, psf2otf_t as psf2otf_half};

const EPS: f64 = 2.220_446_049_250_313e-16;

/// Parameters of [`deconvolve`] (defaults: MATLAB `deconvblind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeconvolveParams {
    /// Iterations NUMIT (study and MATLAB default: 10).
    pub iterations: usize,
    /// Update the PSF (blind, default) or keep it fixed (`deconvlucy`-like).
    pub blind: bool,
    /// Damping threshold DAMPAR in image units (default 0: no damping).
    pub dampar: f64,
    /// Read-out noise offset READOUT (default 0).
    pub readout: f64,
}

impl Default for DeconvolveParams {
    fn default() -> Self {
        DeconvolveParams {
            iterations: 10,
            blind: true,
            dampar: 0.0,
            readout: 0.0,
        }
    }
}

/// Output of [`deconvolve`].
#[derive(Debug, Clone)]
pub struct Deconvolved {
    /// Restored image J.
    pub image: Array2<f32>,
    /// Final PSF (≥ 0, sum 1; the initial one when not blind).
    pub psf: Array2<f64>,
    /// Iterations run.
    pub iterations: usize,
    /// Σ J after every iteration (flux monitor).
    pub flux: Vec<f64>,
    /// Non-fatal findings (negative input pixels clipped, ...).
    pub warnings: Warnings,
}

fn total(a: &Array2<f64>) -> f64 {
    let rows: Vec<f64> = a.outer_iter().into_par_iter().map(|r| r.sum()).collect();
    rows.iter().sum()
}

fn accel(g: &Option<Array2<f64>>, gp: &Option<Array2<f64>>) -> f64 {
    match (g, gp) {
        (Some(g), Some(gp)) => {
            // g·g′ and g′·g′ in one pass, row sums added in row order.
            let rows: Vec<(f64, f64)> = g
                .outer_iter()
                .into_par_iter()
                .zip(gp.outer_iter().into_par_iter())
                .map(|(a, b)| {
                    a.iter()
                        .zip(b.iter())
                        .fold((0.0, 0.0), |(s, t), (x, y)| (s + x * y, t + y * y))
                })
                .collect();
            let (num, den) = rows.iter().fold((0.0, 0.0), |(s, t), r| (s + r.0, t + r.1));
            (num / (den + EPS)).clamp(0.0, 1.0)
        }
        _ => 0.0,
    }
}

/// Blind (or, with `blind = false`, non-blind) Richardson–Lucy
/// deconvolution of `image` starting from `initial_psf`.
///
/// # Errors
/// NaN/Inf in the image or PSF, a PSF that is negative somewhere, all zero,
/// smaller than 2 elements or larger than the image, iterations 0, negative
/// DAMPAR — each naming the parameter (`psf`, `deconv_iterations`).
pub fn deconvolve(
    image: ArrayView2<f32>,
    initial_psf: ArrayView2<f64>,
    p: &DeconvolveParams,
) -> Result<Deconvolved> {
    validate(image, initial_psf, p)?;
    let (wi, warnings) = clipped_input(image, p.readout);
    let mut s = State::new(image, initial_psf);
    let mut flux = Vec::with_capacity(p.iterations);
    for k in 1..=p.iterations {
        s.iterate(k, &wi, p)?;
        flux.push(total(&s.jk));
    }
    Ok(Deconvolved {
        image: s.jk.mapv(|v| v as f32),
        psf: s.pk,
        iterations: p.iterations,
        flux,
        warnings,
    })
}

/// The checks of [`deconvolve`] before any work.
fn validate(
    image: ArrayView2<f32>,
    initial_psf: ArrayView2<f64>,
    p: &DeconvolveParams,
) -> Result<()> {
    let (ny, nx) = image.dim();
    check_finite("deconvolution input", image.iter(), |i| {
        format!("pixel (y={}, x={})", i / nx.max(1), i % nx.max(1))
    })?;
    validate_psf(initial_psf, (ny, nx))?;
    crate::stem::limits::iterations("deconv_iterations", p.iterations)?;
    if !(p.dampar.is_finite() && p.dampar >= 0.0 && p.readout.is_finite()) {
        return Err(Error::param(
            "dampar/readout",
            "DAMPAR must be ≥ 0 and READOUT finite",
        ));
    }
    Ok(())
}

/// The observed image plus READOUT, negative pixels set to 0 (with a
/// warning saying how many).
fn clipped_input(image: ArrayView2<f32>, readout: f64) -> (Array2<f64>, Warnings) {
    let mut warnings = Warnings::default();
    let wi = image.mapv(|v| (v as f64 + readout).max(0.0));
    let neg = image
        .iter()
        .filter(|v| (**v as f64 + readout) < 0.0)
        .count();
    if neg > 0 {
        warnings.push(format!(
            "{:.2} % of the pixels are negative and were set to 0 for deconvolution",
            100.0 * neg as f64 / image.len() as f64
        ));
    }
    (wi, warnings)
}

/// The iteration's state: image and PSF estimates, their predecessors and
/// the last two update directions (for the acceleration), and the OTF of a
/// fixed PSF once computed.
struct State {
    jk: Array2<f64>,
    jk_prev: Array2<f64>,
    pk: Array2<f64>,
    pk_prev: Array2<f64>,
    gj: Option<Array2<f64>>,
    gj_prev: Option<Array2<f64>>,
    gp: Option<Array2<f64>>,
    gp_prev: Option<Array2<f64>>,
    fixed_otf: Option<Array2<Complex<f64>>>,
}

impl State {
    fn new(image: ArrayView2<f32>, initial_psf: ArrayView2<f64>) -> Self {
        let psf_sum: f64 = initial_psf.sum();
        State {
            jk: image.mapv(|v| v as f64),
            jk_prev: Array2::zeros(image.dim()),
            pk: initial_psf.mapv(|v| v / psf_sum),
            pk_prev: Array2::zeros(initial_psf.dim()),
            gj: None,
            gj_prev: None,
            gp: None,
            gp_prev: None,
            fixed_otf: None,
        }
    }

    /// Iteration `k` (from 1) against the clipped input `wi`.
    fn iterate(&mut self, k: usize, wi: &Array2<f64>, p: &DeconvolveParams) -> Result<()> {
        let shape = self.jk.dim();
        // 1. Accelerated image.
        let lj = if k > 2 {
            accel(&self.gj, &self.gj_prev)
        } else {
            0.0
        };
        let y = Zip::from(&self.jk)
            .and(&self.jk_prev)
            .par_map_collect(|j, jp| (j + lj * (j - jp)).max(0.0));
        // 2. Accelerated PSF.
        let bp = if p.blind {
            let lp = if k > 2 {
                accel(&self.gp, &self.gp_prev)
            } else {
                0.0
            };
            let b = Zip::from(&self.pk)
                .and(&self.pk_prev)
                .map_collect(|q, qp| (q + lp * (q - qp)).max(0.0));
            let s = b.sum();
            b.mapv(|v| v / if s > 0.0 { s } else { EPS })
        } else {
            self.pk.clone()
        };
        // 3. Re-blurred estimate and ratio.
        // The OTF of P_k is reused: computed once when the PSF is fixed.
        let h = match (&self.fixed_otf, p.blind) {
            (Some(h), false) => h.clone(),
            _ => psf2otf_half(self.pk.view(), shape)?,
        };
        let hb = if p.blind {
            psf2otf_half(bp.view(), shape)?
        } else {
            h.clone()
        };
        let cc = fft::rfft2_t(ratio(wi, &y, &hb, p).view());
        // 4. Image update with the previous PSF P_k. The blind PSF update
        // needs CC afterwards; otherwise work in place.
        let (t, cc) = if p.blind {
            (cc.clone(), Some(cc))
        } else {
            (cc, None)
        };
        let j_next = self.update_image(t, &h, &y);
        if !p.blind && self.fixed_otf.is_none() {
            self.fixed_otf = Some(h);
        }
        // 5. PSF update with the pre-update image J_k.
        if let Some(cc) = cc {
            self.update_psf(cc, &bp)?;
        }
        self.jk_prev = std::mem::replace(&mut self.jk, j_next);
        Ok(())
    }

    /// `J_{k+1} = max(Y·(P_k ⋆ Q)/(1 + √ε), 0)` from `t` = FFT(Q) and `h` =
    /// OTF(P_k), recording the update direction `J_{k+1} − Y`.
    fn update_image(
        &mut self,
        mut t: Array2<Complex<f64>>,
        h: &Array2<Complex<f64>>,
        y: &Array2<f64>,
    ) -> Array2<f64> {
        let shape = self.jk.dim();
        Zip::from(&mut t).and(h).par_for_each(|a, b| *a *= b.conj());
        let corr = fft::irfft2_t(t.view(), shape.1);
        // New image and its update direction g = J_{k+1} − Y in one pass.
        let sq = EPS.sqrt();
        let mut j_next = Array2::<f64>::zeros(shape);
        let mut g_new = self.gj_prev.take().unwrap_or_else(|| Array2::zeros(shape));
        Zip::from(&mut j_next)
            .and(&mut g_new)
            .and(y)
            .and(&corr)
            .par_for_each(|j, g, y, c| {
                *j = (y * c / (1.0 + sq)).max(0.0);
                *g = *j - y;
            });
        self.gj_prev = self.gj.take();
        self.gj = Some(g_new);
        j_next
    }

    /// `P_{k+1} ∝ max(B_p·(J_k ⋆ Q)/(ΣJ_k + √ε), 0)` from `cc` = FFT(Q) and
    /// the accelerated PSF `bp`.
    fn update_psf(&mut self, cc: Array2<Complex<f64>>, bp: &Array2<f64>) -> Result<()> {
        let nx = self.jk.dim().1;
        let jh = fft::rfft2_t(self.jk.view());
        let mut t: Array2<Complex<f64>> = cc;
        t.zip_mut_with(&jh, |a, b| *a *= b.conj());
        let c = otf2psf_half(t.view(), nx, self.pk.dim())?;
        let sj = total(&self.jk) + EPS.sqrt();
        let mut pn = Zip::from(bp)
            .and(&c)
            .map_collect(|b, c| (b * c / sj).max(0.0));
        let s = pn.sum();
        pn.mapv_inplace(|v| v / if s > 0.0 { s } else { EPS });
        self.gp_prev = self.gp.take();
        self.gp = Some(&pn - bp);
        self.pk_prev = std::mem::replace(&mut self.pk, pn);
        Ok(())
    }
}

/// The (damped) ratio `Q` of the clipped input `wi` to the re-blurred
/// estimate `B_p ⊛ Y + READOUT`, `hb` = OTF(B_p).
fn ratio(
    wi: &Array2<f64>,
    y: &Array2<f64>,
    hb: &Array2<Complex<f64>>,
    p: &DeconvolveParams,
) -> Array2<f64> {
    let d2 = p.dampar * p.dampar / 2.0;
    let mut fy = fft::rfft2_t(y.view());
    Zip::from(&mut fy).and(hb).par_for_each(|a, b| *a *= b);
    let rb = fft::irfft2_t(fy.view(), y.dim().1);
    Zip::from(wi).and(&rb).par_map_collect(|w, r| {
        let mut r = r + p.readout;
        if r == 0.0 {
            r = EPS;
        }
        let a = w / r + EPS;
        if d2 == 0.0 {
            a
        } else {
            let g = ((w * a.ln() + r - w) / d2).min(1.0);
            let gd = g.powi(9) * (10.0 - 9.0 * g);
            1.0 + gd * (a - 1.0)
        }
    })
}

/// Non-blind Richardson–Lucy (`deconvlucy`-like) with a fixed PSF.
///
/// # Errors
/// As [`deconvolve`].
pub fn richardson_lucy(
    image: ArrayView2<f32>,
    psf: ArrayView2<f64>,
    iterations: usize,
) -> Result<Array2<f32>> {
    let p = DeconvolveParams {
        iterations,
        blind: false,
        ..Default::default()
    };
    Ok(deconvolve(image, psf, &p)?.image)
}

/// Check a PSF against an image shape.
///
/// # Errors
/// `psf` errors: fewer than 2 elements, larger than the image, NaN,
/// negative values, all zero.
pub fn validate_psf(psf: ArrayView2<f64>, (ny, nx): (usize, usize)) -> Result<()> {
    let (py, px) = psf.dim();
    if py * px < 2 {
        return Err(Error::param(
            "psf",
            format!("needs at least 2 elements, got {py}x{px}"),
        ));
    }
    if py > ny || px > nx {
        return Err(Error::param(
            "psf",
            format!("{py}x{px} is larger than the image ({ny}x{nx})"),
        ));
    }
    if let Some(i) = psf.iter().position(|v| !v.is_finite()) {
        return Err(Error::param(
            "psf",
            format!("non-finite value at element {i}"),
        ));
    }
    if psf.iter().any(|v| *v < 0.0) {
        return Err(Error::param("psf", "has negative values"));
    }
    if psf.sum() <= 0.0 {
        return Err(Error::param("psf", "is all zero"));
    }
    Ok(())
}
