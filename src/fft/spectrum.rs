//! One-sided power spectrum with the power-per-bin normalisation of the
//! docs/methods/conventions.md — the single primitive every trajectory spectrum
//! (VDOS, Huang–Rhys S_k, band couplings) is derived from.

use serde::{Deserialize, Serialize};

use super::transform::rfft;
use crate::error::{Error, Result};

/// Taper applied before the transform (power-normalised by `1/√mean(w²)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// No taper (default): keeps Σ P_k = σ² exactly.
    #[default]
    Rect,
    /// Symmetric Hann, `w_n = sin²(π n / (N − 1))`.
    Hann,
}

/// Trend removed before the transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Detrend {
    /// Remove the mean only (default).
    #[default]
    None,
    /// Remove the least-squares straight line.
    Linear,
}

/// Power per frequency bin of a real series (docs/methods/conventions.md).
///
/// # Equation
/// After removing the mean (or a least-squares line) and optionally applying
/// a window scaled by `1/√mean(w²)`, with `X_k = Σ_n x_n e^{−2πikn/N}`:
/// `P_0 = 0`; `P_k = 2|X_k|²/N²` for `0 < k < N/2`; `P_{N/2} = |X_{N/2}|²/N²`
/// (even `N`). With the rectangular window, `Σ_k P_k` equals the population
/// variance σ² (Parseval); an on-bin cosine `A cos(ω_k t + φ)` gives
/// `P_k = A²/2`.
///
/// # Units
/// `P_k` has the unit of `x` squared; bin `k` is at frequency `k/(N Δt)`
/// ([`crate::fft::rfftfreq`]).
///
/// # Errors
/// `Error::Empty` for fewer than 2 samples; `Error::NonFinite` on NaN/Inf.
pub fn power_per_bin(x: &[f64], window: Window, detrend: Detrend) -> Result<Vec<f64>> {
    let n = x.len();
    if n < 2 {
        return Err(Error::Empty {
            what: "power spectrum".into(),
            reason: format!("needs at least 2 samples, got {n}"),
        });
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "power spectrum input".into(),
            count: x.iter().filter(|v| !v.is_finite()).count(),
            first: format!("sample {i}"),
        });
    }
    let nf = n as f64;
    let mean = x.iter().sum::<f64>() / nf;
    let mut y: Vec<f64> = match detrend {
        Detrend::None => x.iter().map(|v| v - mean).collect(),
        Detrend::Linear => {
            // Least squares on t = n − (N−1)/2 (centred, so slope and mean decouple).
            let tc = (nf - 1.0) / 2.0;
            let stt: f64 = (0..n).map(|i| (i as f64 - tc).powi(2)).sum();
            let sty: f64 = x
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64 - tc) * (v - mean))
                .sum();
            let slope = sty / stt;
            x.iter()
                .enumerate()
                .map(|(i, v)| v - mean - slope * (i as f64 - tc))
                .collect()
        }
    };
    if window == Window::Hann {
        let w: Vec<f64> = (0..n)
            .map(|i| (std::f64::consts::PI * i as f64 / (nf - 1.0)).sin().powi(2))
            .collect();
        let rms = (w.iter().map(|v| v * v).sum::<f64>() / nf).sqrt();
        y.iter_mut().zip(&w).for_each(|(v, wi)| *v *= wi / rms);
    }
    let spec = rfft(&y);
    let n2 = nf * nf;
    let p = spec
        .iter()
        .enumerate()
        .map(|(k, c)| {
            if k == 0 {
                0.0
            } else if n.is_multiple_of(2) && k == n / 2 {
                c.norm_sqr() / n2
            } else {
                2.0 * c.norm_sqr() / n2
            }
        })
        .collect();
    Ok(p)
}
