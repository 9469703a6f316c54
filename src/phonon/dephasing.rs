//! Gap autocorrelation, cumulant line-shape function (SI eq. 7), dephasing
//! function and linewidths (SI eq. 8) — docs/methods/phonon.md.
//!
//! `g(t) = ħ⁻² ∫₀ᵗ dτ₁ ∫₀^{τ₁} dτ₂ C(τ₂)`; the default route is the exact
//! double integral of the circular ACF, `g(t) = Σ_{k≥1} P_k (1 − cos ω_k t)/(ħω_k)²`,
//! on a fine grid (0.1 fs). `D(t) = exp(−g(t))`.
//! * Gaussian fit `D ≈ exp(−t²/(2 t₂*²))` over `[0, t_cut)`, t_cut the first
//!   grid time with D ≤ threshold (0.01 default): `Γ_fit = 2√(2 ln 2)·ħ/t₂*`.
//! * Exact line shape `I(E) = ∫₀^{t_max} D(t) cos(Et/ħ) dt` (D is real, so
//!   I is even in E) and its FWHM by Brent root finding of I = I(0)/2.
//!
//! Other tools' "dephasing times", written alongside t₂* and never compared
//! unconverted: PYXAID's Gaussian `exp(−(t/τ)²)` has τ = √2·t₂*
//! (`tau_gauss_fs`); Libra's decoherence time from σ alone is
//! `√(12/5)·ħ/σ` (`tau_sigma_fs`). For one mode with σ = 5.969793 meV:
//! t₂* = ħ/σ = 110.257 fs (static limit), τ = 155.927 fs, τ_σ = 170.810 fs.

use serde::Serialize;

use crate::error::{Error, Result, Warnings};
use crate::fft::{irfft, rfft};
use crate::phonon::coupling::HuangRhys;
use crate::units::{FWHM_PER_SIGMA, HBAR_EV_FS};

/// ħ in meV·fs.
pub const HBAR_MEV_FS: f64 = HBAR_EV_FS * 1e3;

/// Biased autocorrelation C_j = (1/N) Σ_{n<N−j} ΔE_n ΔE_{n+j}, j = 0…⌊N/2⌋,
/// through a zero-padded FFT (length ≥ 2N − 1). C_0 = σ² (population).
#[must_use]
pub fn acf_biased(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let m = crate::fft::convolve::fast_len(2 * n - 1).max(2);
    let mut padded = vec![0.0; m];
    for (p, v) in padded.iter_mut().zip(x) {
        *p = v - mean;
    }
    let spec = rfft(&padded);
    let power: Vec<_> = spec
        .iter()
        .map(|c| num_complex::Complex::new(c.norm_sqr(), 0.0))
        .collect();
    let ac = irfft(&power, m);
    (0..=n / 2).map(|j| ac[j] / n as f64).collect()
}

/// g(t) by the spectral route from a Huang–Rhys spectrum (P_k in meV²).
#[must_use]
pub fn g_spectral(hr: &HuangRhys, t_fs: f64) -> f64 {
    (1..hr.power_mev2.len())
        .map(|k| {
            let e = hr.energy_mev[k];
            let w = e / HBAR_MEV_FS; // rad/fs
            hr.power_mev2[k] * (1.0 - (w * t_fs).cos()) / (e * e)
        })
        .sum()
}

/// g(t) on the native grid by two cumulative trapezoids of the ACF
/// (cross-check route): returns g at t = jΔt, j = 0…len(acf) − 1.
#[must_use]
pub fn g_acf_trapezoid(acf_mev2: &[f64], dt_fs: f64) -> Vec<f64> {
    let mut inner = vec![0.0; acf_mev2.len()];
    for j in 1..acf_mev2.len() {
        inner[j] = inner[j - 1] + 0.5 * dt_fs * (acf_mev2[j - 1] + acf_mev2[j]);
    }
    let mut g = vec![0.0; acf_mev2.len()];
    for j in 1..g.len() {
        g[j] = g[j - 1] + 0.5 * dt_fs * (inner[j - 1] + inner[j]);
    }
    g.iter().map(|v| v / (HBAR_MEV_FS * HBAR_MEV_FS)).collect()
}

/// Threshold that ends the Gaussian-fit window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum FitThreshold {
    /// D > 0.01 (default).
    Percent1,
    /// D > e^{−1/2}.
    HalfE,
}

impl FitThreshold {
    fn value(self) -> f64 {
        match self {
            FitThreshold::Percent1 => 0.01,
            FitThreshold::HalfE => (-0.5f64).exp(),
        }
    }
}

/// Everything the dephasing analysis reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dephasing {
    /// Fine time grid step, fs.
    pub dt_fine_fs: f64,
    /// Times, fs.
    pub t_fs: Vec<f64>,
    /// g(t).
    pub g: Vec<f64>,
    /// D(t) = exp(−g).
    pub d: Vec<f64>,
    /// Fitted t₂*, fs (SI eq. 8 convention).
    pub t2_star_fs: f64,
    /// Γ from the fit, meV.
    pub gamma_fit_mev: f64,
    /// Fit window [0, t_cut), fs.
    pub fit_window_fs: [f64; 2],
    /// Threshold that ended the window.
    pub fit_threshold: f64,
    /// Exact line-shape FWHM, meV (None if D never dephased).
    pub fwhm_exact_mev: Option<f64>,
    /// PYXAID-style τ = √2 t₂*, fs.
    pub tau_gauss_fs: f64,
    /// Libra-style √(12/5)·ħ/σ, fs (σ > 0 is checked: always a number).
    pub tau_sigma_fs: f64,
    /// Static-limit 2√(2 ln 2)·σ, meV.
    pub gamma_static_mev: f64,
    /// Remarks.
    pub warnings: Warnings,
}

/// Dephasing from a line-shape function `g(t)` (t in fs), the gap σ (meV)
/// and the longest usable time `t_cap_fs` (T_tot/2 for a series).
///
/// # Errors
/// Non-positive σ, step or cap; g that never grows (no dephasing at all).
pub fn dephasing(
    g: &dyn Fn(f64) -> f64,
    sigma_mev: f64,
    t_cap_fs: f64,
    dt_fine_fs: f64,
    threshold: FitThreshold,
) -> Result<Dephasing> {
    if !(sigma_mev.is_finite() && sigma_mev > 0.0) {
        return Err(Error::param(
            "gap σ",
            format!("must be > 0 meV, got {sigma_mev}"),
        ));
    }
    if !(dt_fine_fs.is_finite()
        && dt_fine_fs > 0.0
        && t_cap_fs.is_finite()
        && t_cap_fs > dt_fine_fs)
    {
        return Err(Error::param(
            "dt_fine_fs",
            format!("need 0 < fine step ({dt_fine_fs} fs) < the time window ({t_cap_fs} fs)"),
        ));
    }
    let mut warnings = Warnings::default();
    let (mut t, mut gv, mut dv) = (Vec::new(), Vec::new(), Vec::new());
    let mut j = 0usize;
    loop {
        let tj = j as f64 * dt_fine_fs;
        if tj > t_cap_fs {
            break;
        }
        let gj = g(tj);
        t.push(tj);
        gv.push(gj);
        dv.push((-gj).exp());
        if (-gj).exp() < 1e-6 {
            break;
        }
        j += 1;
    }
    let dephased = dv.last().is_some_and(|d| *d < 1e-6);
    if !dephased {
        warnings.push(format!(
            "line not dephased in the window (D = {:.2e} at {:.0} fs): sideband structure; the exact FWHM is not reported",
            dv.last().copied().unwrap_or(1.0),
            t.last().copied().unwrap_or(0.0)
        ));
    }
    // Gaussian fit window.
    let thr = threshold.value();
    let cut = dv.iter().position(|&d| d <= thr).unwrap_or(dv.len());
    if cut < 3 {
        return Err(Error::Numerical {
            what: "dephasing fit".into(),
            reason: format!(
                "D falls below {thr} within {} fine steps: refine `dt_fine_fs`",
                cut
            ),
        });
    }
    let t2 = fit_gaussian_width(&t[..cut], &dv[..cut], HBAR_MEV_FS / sigma_mev)?;
    let fwhm = if dephased {
        Some(lineshape_fwhm(&t, &dv)?)
    } else {
        None
    };
    Ok(Dephasing {
        dt_fine_fs,
        t2_star_fs: t2,
        gamma_fit_mev: FWHM_PER_SIGMA * HBAR_MEV_FS / t2,
        fit_window_fs: [0.0, t[cut - 1] + dt_fine_fs],
        fit_threshold: thr,
        fwhm_exact_mev: fwhm,
        tau_gauss_fs: std::f64::consts::SQRT_2 * t2,
        tau_sigma_fs: (12.0f64 / 5.0).sqrt() * HBAR_MEV_FS / sigma_mev,
        gamma_static_mev: FWHM_PER_SIGMA * sigma_mev,
        t_fs: t,
        g: gv,
        d: dv,
        warnings,
    })
}

/// Dephasing of a gap series from its Huang–Rhys spectrum (spectral route).
///
/// # Errors
/// As [`dephasing`].
pub fn dephasing_from_spectrum(
    hr: &HuangRhys,
    dt_fine_fs: f64,
    threshold: FitThreshold,
) -> Result<Dephasing> {
    let t_cap = hr.n as f64 * hr.dt_fs / 2.0;
    dephasing(
        &|t| g_spectral(hr, t),
        hr.variance_mev2.sqrt(),
        t_cap,
        dt_fine_fs,
        threshold,
    )
}

/// One-parameter least squares of exp(−t²/(2τ²)) to D on the window, by
/// Gauss–Newton on ln τ with step halving.
fn fit_gaussian_width(t: &[f64], d: &[f64], start: f64) -> Result<f64> {
    let cost = |tau: f64| -> f64 {
        t.iter()
            .zip(d)
            .map(|(ti, di)| ((-ti * ti / (2.0 * tau * tau)).exp() - di).powi(2))
            .sum()
    };
    let mut u = start.ln();
    let mut c = cost(u.exp());
    for _ in 0..200 {
        let tau = u.exp();
        // r_i = exp(−t²/2τ²) − D_i; ∂r/∂u = exp(...)·t²/τ².
        let (mut jtj, mut jtr) = (0.0, 0.0);
        for (ti, di) in t.iter().zip(d) {
            let e = (-ti * ti / (2.0 * tau * tau)).exp();
            let jd = e * ti * ti / (tau * tau);
            jtj += jd * jd;
            jtr += jd * (e - di);
        }
        if jtj <= 0.0 {
            break;
        }
        let mut step = -jtr / jtj;
        let mut improved = false;
        for _ in 0..40 {
            let cn = cost((u + step).exp());
            if cn <= c {
                u += step;
                improved = (c - cn) > 1e-15 * c.max(1e-300);
                c = cn;
                break;
            }
            step *= 0.5;
        }
        if !improved || step.abs() < 1e-13 {
            break;
        }
    }
    let tau = u.exp();
    if tau.is_finite() && tau > 0.0 {
        Ok(tau)
    } else {
        Err(Error::Numerical {
            what: "dephasing fit".into(),
            reason: "the Gaussian fit of D(t) did not converge".into(),
        })
    }
}

/// I(E) = ∫ D(t) cos(Et/ħ) dt by the trapezoid rule.
fn lineshape(t: &[f64], d: &[f64], e_mev: f64) -> f64 {
    let w = e_mev / HBAR_MEV_FS;
    let mut s = 0.0;
    for i in 1..t.len() {
        let (a, b) = (d[i - 1] * (w * t[i - 1]).cos(), d[i] * (w * t[i]).cos());
        s += 0.5 * (t[i] - t[i - 1]) * (a + b);
    }
    s
}

/// FWHM of the line shape, meV: bracket the half maximum, then Brent.
fn lineshape_fwhm(t: &[f64], d: &[f64]) -> Result<f64> {
    let i0 = lineshape(t, d, 0.0);
    let f = |e: f64| lineshape(t, d, e) - 0.5 * i0;
    // Step out from 0 until the half maximum is crossed.
    let mut hi = HBAR_MEV_FS / t.last().copied().unwrap_or(1.0).max(1e-3);
    let mut lo = 0.0;
    let mut n = 0;
    while f(hi) > 0.0 {
        lo = hi;
        hi *= 1.5;
        n += 1;
        if n > 200 {
            return Err(Error::Numerical {
                what: "line-shape FWHM".into(),
                reason: "no half-maximum crossing found".into(),
            });
        }
    }
    Ok(2.0 * brent(&f, lo, hi, 1e-10)?)
}

/// Brent's root finder on [a, b] with f(a)·f(b) ≤ 0.
fn brent(f: &dyn Fn(f64) -> f64, mut a: f64, mut b: f64, tol: f64) -> Result<f64> {
    let (mut fa, mut fb) = (f(a), f(b));
    if fa * fb > 0.0 {
        return Err(Error::Numerical {
            what: "root finder".into(),
            reason: "the bracket does not contain a root".into(),
        });
    }
    if fa.abs() < fb.abs() {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut fa, &mut fb);
    }
    let (mut c, mut fc, mut mflag, mut d) = (a, fa, true, 0.0);
    for _ in 0..200 {
        if fb == 0.0 || (b - a).abs() < tol * (1.0 + b.abs()) {
            return Ok(b);
        }
        let mut s = if fa != fc && fb != fc {
            a * fb * fc / ((fa - fb) * (fa - fc))
                + b * fa * fc / ((fb - fa) * (fb - fc))
                + c * fa * fb / ((fc - fa) * (fc - fb))
        } else {
            b - fb * (b - a) / (fb - fa)
        };
        let q = (3.0 * a + b) / 4.0;
        let cond1 = !((s > q.min(b)) && (s < q.max(b)));
        let cond2 = mflag && (s - b).abs() >= (b - c).abs() / 2.0;
        let cond3 = !mflag && (s - b).abs() >= (c - d).abs() / 2.0;
        let cond4 = mflag && (b - c).abs() < tol;
        let cond5 = !mflag && (c - d).abs() < tol;
        if cond1 || cond2 || cond3 || cond4 || cond5 {
            s = (a + b) / 2.0;
            mflag = true;
        } else {
            mflag = false;
        }
        let fs = f(s);
        d = c;
        c = b;
        fc = fb;
        if fa * fs < 0.0 {
            b = s;
            fb = fs;
        } else {
            a = s;
            fa = fs;
        }
        if fa.abs() < fb.abs() {
            std::mem::swap(&mut a, &mut b);
            std::mem::swap(&mut fa, &mut fb);
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phonon::coupling::{huang_rhys, SpectrumOptions};
    use crate::phonon::synth::spec_modes as modes;

    #[test]
    fn t4_line_shape_function_routes() {
        let six = [
            (5.0, 10.0, 0.3),
            (12.0, 3.0, 1.1),
            (24.0, 1.5, 2.0),
            (41.0, 0.8, 0.7),
            (58.0, 0.3, 4.0),
            (80.0, 0.1, 5.5),
        ];
        let g = modes(&six);
        let hr = huang_rhys(&g, 10.0, 10.0, SpectrumOptions::default()).unwrap();
        for (t, want) in [(10.0, 0.01477145), (50.0, 0.3413336), (100.0, 1.128411)] {
            let got = g_spectral(&hr, t);
            assert!(((got - want) / want).abs() < 1e-6, "g({t}) = {got}");
        }
        let acf = acf_biased(&g);
        assert!((acf[0] - hr.variance_mev2).abs() < 1e-9 * hr.variance_mev2);
        let gt = g_acf_trapezoid(&acf, 10.0);
        for (j, want) in [(1usize, 0.0146597), (5, 0.338592), (10, 1.119092)] {
            assert!(
                ((gt[j] - want) / want).abs() < 1e-5,
                "trapezoid g({}) = {}",
                j * 10,
                gt[j]
            );
        }
    }

    #[test]
    fn t5_single_mode_dephasing() {
        let g = modes(&[(5.0, 10.0, 0.3)]);
        let hr = huang_rhys(&g, 10.0, 10.0, SpectrumOptions::default()).unwrap();
        let d = dephasing_from_spectrum(&hr, 0.1, FitThreshold::Percent1).unwrap();
        assert!((d.t2_star_fs - 111.687).abs() < 0.05, "{}", d.t2_star_fs);
        assert!((d.gamma_fit_mev - 13.878).abs() < 0.01);
        let e = dephasing_from_spectrum(&hr, 0.1, FitThreshold::HalfE).unwrap();
        assert!((e.t2_star_fs - 110.629).abs() < 0.05, "{}", e.t2_star_fs);
        assert!((d.tau_sigma_fs - 170.810).abs() < 1e-3);
        assert!((d.gamma_static_mev - 14.057788).abs() < 1e-5);
        // One undamped mode dephases to e^{−16.7} at its half period.
        assert!(d.fwhm_exact_mev.is_some());
    }

    #[test]
    fn t6_ornstein_uhlenbeck_exact_fwhm() {
        let sigma = 50.0;
        for (tc, want, fit) in [
            (1000.0, 117.197, 117.35),
            (100.0, 112.282, 113.86),
            (50.0, 106.782, 109.98),
            (20.0, 90.340, 98.43),
            (5.0, 37.343, 53.89),
            (1.0, 7.596, 12.35),
        ] {
            let k = sigma * tc / HBAR_MEV_FS;
            let g = move |t: f64| k * k * ((-t / tc).exp() + t / tc - 1.0);
            let d = dephasing(&g, sigma, 1e6, 0.1, FitThreshold::Percent1).unwrap();
            let fwhm = d.fwhm_exact_mev.unwrap();
            assert!(
                ((fwhm - want) / want).abs() < 1e-3,
                "τc {tc}: {fwhm} vs {want}"
            );
            assert!(
                ((d.gamma_fit_mev - fit) / fit).abs() < 5e-3,
                "τc {tc}: fit {} vs {fit}",
                d.gamma_fit_mev
            );
        }
        // Pure Gaussian D → 2.3548σ.
        let g = |t: f64| sigma * sigma * t * t / (2.0 * HBAR_MEV_FS * HBAR_MEV_FS);
        let d = dephasing(&g, sigma, 1e6, 0.1, FitThreshold::Percent1).unwrap();
        assert!((d.fwhm_exact_mev.unwrap() / 117.7410 - 1.0).abs() < 1e-5);
    }
}
