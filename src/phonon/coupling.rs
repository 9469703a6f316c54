//! Huang–Rhys spectrum from the HOMO–LUMO gap (SI eqs. 2–5), band
//! couplings (eq. 6), reorganisation energy Λ and the harmonic linewidth
//! Γ(T) (main-text eq. 2) — docs/methods/phonon.md.
//!
//! From the gap series E_g,n (meV) on a uniform grid Δt at the run
//! temperature T: P_k = power per bin of ΔE (docs/methods/conventions.md, k = 0 excluded),
//! `S_k = P_k / (2 ħω_k k_BT)` (eq. 5: |F_k|² = 2P_k, S = |F|²/(4ħωk_BT)),
//! `Λ = Σ_{k≥1} S_k ħω_k` (= σ²/(2k_BT) exactly for the rectangular window),
//! band couplings `S_⟨ω⟩ = Σ_{k ∈ [lo,hi)} S_k ħω_k / ħ⟨ω⟩`,
//! ⟨ω⟩ = (lo + hi)/2 (eq. 6), `σ(T) = √(2Λk_BT)`,
//! `Γ(T) = 2√(2 ln 2)·σ(T)`.

use serde::Serialize;

use crate::error::{Error, Result, Warnings};
use crate::fft::{power_per_bin, Detrend, Window};
use crate::units::{kt_mev, FWHM_PER_SIGMA, H_EV_FS, MEV_TO_CM1, MEV_TO_THZ};

/// An energy band [lo, hi) in meV.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Band {
    /// Lower edge (inclusive), meV.
    pub lo_mev: f64,
    /// Upper edge (exclusive), meV.
    pub hi_mev: f64,
}

impl Band {
    /// Centre ħ⟨ω⟩, meV.
    #[must_use]
    pub fn centre_mev(&self) -> f64 {
        0.5 * (self.lo_mev + self.hi_mev)
    }
}

/// The study's bands: [0,4) [4,10) [10,24) meV → centres 2, 7, 17 meV.
#[must_use]
pub fn default_bands() -> Vec<Band> {
    [(0.0, 4.0), (4.0, 10.0), (10.0, 24.0)]
        .iter()
        .map(|&(lo_mev, hi_mev)| Band { lo_mev, hi_mev })
        .collect()
}

/// Parse `lo:hi,lo:hi,...` (meV); bands must be non-empty and not overlap.
///
/// # Errors
/// Malformed text, hi ≤ lo, negative edges, overlapping bands.
pub fn parse_bands(text: &str) -> Result<Vec<Band>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part
            .split_once(':')
            .ok_or_else(|| Error::param("bands_mev", format!("'{part}' is not lo:hi")))?;
        let lo: f64 = a
            .trim()
            .parse()
            .map_err(|_| Error::param("bands_mev", format!("'{a}' is not a number")))?;
        let hi: f64 = b
            .trim()
            .parse()
            .map_err(|_| Error::param("bands_mev", format!("'{b}' is not a number")))?;
        if !(lo.is_finite() && hi.is_finite() && lo >= 0.0 && hi > lo) {
            return Err(Error::param(
                "bands_mev",
                format!("band {part}: need 0 ≤ lo < hi"),
            ));
        }
        out.push(Band {
            lo_mev: lo,
            hi_mev: hi,
        });
    }
    validate_bands(&out)?;
    Ok(out)
}

/// The check of a band list: non-empty, each 0 ≤ lo < hi, not
/// overlapping.
///
/// # Errors
/// The first bad band (`InvalidParameter` named `bands_mev`).
pub fn validate_bands(bands: &[Band]) -> Result<()> {
    if bands.is_empty() {
        return Err(Error::param("bands_mev", "no bands given"));
    }
    if let Some(b) = bands.iter().find(|b| {
        !(b.lo_mev.is_finite() && b.hi_mev.is_finite() && b.lo_mev >= 0.0 && b.hi_mev > b.lo_mev)
    }) {
        return Err(Error::param(
            "bands_mev",
            format!("band [{}, {}): need 0 ≤ lo < hi", b.lo_mev, b.hi_mev),
        ));
    }
    let mut s = bands.to_vec();
    s.sort_by(|a, b| a.lo_mev.total_cmp(&b.lo_mev));
    for w in s.windows(2) {
        if w[1].lo_mev < w[0].hi_mev {
            return Err(Error::param(
                "bands_mev",
                format!(
                    "bands [{}, {}) and [{}, {}) overlap",
                    w[0].lo_mev, w[0].hi_mev, w[1].lo_mev, w[1].hi_mev
                ),
            ));
        }
    }
    Ok(())
}

/// Options of [`huang_rhys`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpectrumOptions {
    /// Window (default rect: keeps Λ = σ²/(2k_BT) exact).
    pub window: Window,
    /// Detrend (default: mean only).
    pub detrend: Detrend,
}

impl Default for SpectrumOptions {
    fn default() -> Self {
        SpectrumOptions {
            window: Window::Rect,
            detrend: Detrend::None,
        }
    }
}

/// The Huang–Rhys spectrum of a gap series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HuangRhys {
    /// Samples N.
    pub n: usize,
    /// Step Δt, fs.
    pub dt_fs: f64,
    /// Temperature of the run, K.
    pub temperature_k: f64,
    /// ħω_k, meV (k = 0…⌊N/2⌋).
    pub energy_mev: Vec<f64>,
    /// Power per bin P_k, meV².
    pub power_mev2: Vec<f64>,
    /// S_k per bin (0 at k = 0).
    pub s: Vec<f64>,
    /// Bin width ħΔω, meV.
    pub bin_mev: f64,
    /// Σ S_k.
    pub s_total: f64,
    /// Λ = Σ S_k ħω_k, meV.
    pub lambda_mev: f64,
    /// Population variance σ² of the gap, meV².
    pub variance_mev2: f64,
    /// Σ P_k, meV² (= σ² for rect/no detrend).
    pub power_sum_mev2: f64,
    /// Options used.
    pub options: SpectrumOptions,
    /// Remarks (e.g. a k = 1 bin carrying > 25 % of ΣS).
    pub warnings: Warnings,
}

impl HuangRhys {
    /// Frequency of bin k, THz.
    #[must_use]
    pub fn thz(&self, k: usize) -> f64 {
        self.energy_mev[k] * MEV_TO_THZ
    }
    /// Wavenumber of bin k, cm⁻¹.
    #[must_use]
    pub fn cm1(&self, k: usize) -> f64 {
        self.energy_mev[k] * MEV_TO_CM1
    }
    /// Band coupling S_⟨ω⟩ of eq. 6 for each band.
    #[must_use]
    pub fn band_couplings(&self, bands: &[Band]) -> Vec<f64> {
        bands
            .iter()
            .map(|b| {
                let sum: f64 = (1..self.s.len())
                    .filter(|&k| self.energy_mev[k] >= b.lo_mev && self.energy_mev[k] < b.hi_mev)
                    .map(|k| self.s[k] * self.energy_mev[k])
                    .sum();
                sum / b.centre_mev()
            })
            .collect()
    }
    /// σ(T) = √(2Λk_BT), meV.
    #[must_use]
    pub fn sigma_mev(&self, temperature_k: f64) -> f64 {
        (2.0 * self.lambda_mev * kt_mev(temperature_k)).sqrt()
    }
    /// Γ(T) = 2√(2 ln 2)·√(2Λk_BT), meV.
    #[must_use]
    pub fn gamma_mev(&self, temperature_k: f64) -> f64 {
        FWHM_PER_SIGMA * self.sigma_mev(temperature_k)
    }
}

/// Γ(T) from a reorganisation energy Λ (meV).
#[must_use]
pub fn gamma_from_lambda(lambda_mev: f64, temperature_k: f64) -> f64 {
    FWHM_PER_SIGMA * (2.0 * lambda_mev * kt_mev(temperature_k)).sqrt()
}

/// Huang–Rhys spectrum (eq. 5) of the gap series `gap_mev` sampled every
/// `dt_fs` at `temperature_k`.
///
/// # Errors
/// Fewer than 4 samples, Δt or T not positive, NaN in the series.
///
/// # Examples
/// A gap that oscillates as one mode puts all the coupling in that mode's
/// bin, and Λ = σ²/(2k_BT):
/// ```
/// use qdscope::phonon::coupling::{huang_rhys, SpectrumOptions};
/// use qdscope::units::kt_mev;
///
/// // 5 ps every 5 fs of a ±2 meV oscillation with 10 periods (2 THz).
/// let (n, dt_fs, t_k) = (1000, 5.0, 300.0);
/// let w = 2.0 * std::f64::consts::PI * 10.0 / n as f64;
/// let gap: Vec<f64> = (0..n).map(|i| 2000.0 + 2.0 * (w * i as f64).cos()).collect();
/// let hr = huang_rhys(&gap, dt_fs, t_k, SpectrumOptions::default())?;
/// let peak = (1..hr.s.len()).max_by(|&a, &b| hr.s[a].total_cmp(&hr.s[b])).unwrap();
/// assert_eq!(peak, 10);
/// assert!((hr.thz(peak) - 2.0).abs() < 1e-6);
/// let lambda = hr.variance_mev2 / (2.0 * kt_mev(t_k));
/// assert!((hr.lambda_mev - lambda).abs() < 1e-9 * lambda);
/// # Ok::<(), qdscope::Error>(())
/// ```
pub fn huang_rhys(
    gap_mev: &[f64],
    dt_fs: f64,
    temperature_k: f64,
    opts: SpectrumOptions,
) -> Result<HuangRhys> {
    if !(dt_fs.is_finite() && dt_fs > 0.0) {
        return Err(Error::param("dt_fs", format!("must be > 0, got {dt_fs}")));
    }
    if !(temperature_k.is_finite() && temperature_k > 0.0) {
        return Err(Error::param(
            "temperature_k",
            format!("must be > 0 K, got {temperature_k}"),
        ));
    }
    let n = gap_mev.len();
    if n < 4 {
        return Err(Error::Empty {
            what: "gap series".into(),
            reason: format!("needs at least 4 samples for a spectrum, got {n}"),
        });
    }
    let p = power_per_bin(gap_mev, opts.window, opts.detrend)?;
    let kt = kt_mev(temperature_k);
    let h_mev_fs = H_EV_FS * 1e3;
    let bin = h_mev_fs / (n as f64 * dt_fs);
    let energy: Vec<f64> = (0..p.len()).map(|k| k as f64 * bin).collect();
    let s: Vec<f64> = p
        .iter()
        .zip(&energy)
        .enumerate()
        .map(|(k, (pk, e))| if k == 0 { 0.0 } else { pk / (2.0 * e * kt) })
        .collect();
    let s_total: f64 = s.iter().sum();
    let lambda: f64 = s.iter().zip(&energy).map(|(a, b)| a * b).sum();
    let mean = gap_mev.iter().sum::<f64>() / n as f64;
    let var = gap_mev.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    let mut warnings = Warnings::default();
    if s.len() > 1 && s_total > 0.0 && s[1] > 0.25 * s_total {
        warnings.push(format!(
            "the lowest bin (k = 1, {:.3} meV) carries {:.0} % of ΣS: drift or too short a run dominates the low-energy couplings",
            energy[1],
            100.0 * s[1] / s_total
        ));
    }
    Ok(HuangRhys {
        n,
        dt_fs,
        temperature_k,
        power_sum_mev2: p.iter().sum(),
        energy_mev: energy,
        power_mev2: p,
        s,
        bin_mev: bin,
        s_total,
        lambda_mev: lambda,
        variance_mev2: var,
        options: opts,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phonon::synth::spec_modes as modes;

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    #[test]
    fn t1_single_on_bin_mode() {
        let g = modes(&[(5.0, 10.0, 0.3)]);
        let hr = huang_rhys(&g, 10.0, 10.0, SpectrumOptions::default()).unwrap();
        assert!(rel(hr.s[5], 10.0) < 1e-9, "{}", hr.s[5]);
        assert!(hr.s.iter().enumerate().all(|(k, s)| k == 5 || *s < 1e-9));
        assert!(rel(hr.lambda_mev, 20.678338) < 1e-7);
        assert!(rel(hr.variance_mev2, 35.638427) < 1e-7);
        assert!(rel(hr.power_sum_mev2, hr.variance_mev2) < 1e-9);
        assert!(rel(hr.sigma_mev(10.0), 5.969793) < 1e-6);
        assert!(rel(hr.gamma_mev(10.0), 14.057788) < 1e-6);
        assert!(rel(hr.gamma_mev(300.0), 76.99768) < 1e-6);
        assert!(rel(hr.energy_mev[5], 2.067834) < 1e-6);
    }

    #[test]
    fn t2_off_bin_leakage_values() {
        let hann = SpectrumOptions {
            window: Window::Hann,
            ..SpectrumOptions::default()
        };
        for (k, rect_s, hann_s) in [
            (5.5, 9.76055, 10.12178),
            (5.25, 10.14571, 10.13787),
            (50.5, 9.96843, 10.00158),
        ] {
            let g = modes(&[(k, 10.0, 0.3)]);
            let r = huang_rhys(&g, 10.0, 10.0, SpectrumOptions::default()).unwrap();
            let h = huang_rhys(&g, 10.0, 10.0, hann).unwrap();
            assert!(rel(r.s_total, rect_s) < 1e-4, "k {k}: rect {}", r.s_total);
            assert!(rel(h.s_total, hann_s) < 1e-4, "k {k}: hann {}", h.s_total);
            // Identity Λ = σ²/(2k_BT) for rect, any signal.
            assert!(rel(r.lambda_mev, r.variance_mev2 / (2.0 * kt_mev(10.0))) < 1e-9);
        }
        let g = modes(&[(5.5, 10.0, 0.3)]);
        let r = huang_rhys(&g, 10.0, 10.0, SpectrumOptions::default()).unwrap();
        assert!(rel(r.lambda_mev, 22.73431) < 1e-4);
        let h = huang_rhys(&g, 10.0, 10.0, hann).unwrap();
        assert!(rel(h.lambda_mev, 22.74945) < 1e-4);
    }

    #[test]
    fn t3_t4_band_integration() {
        let g = modes(&[(5.0, 20.0, 0.3), (40.0, 0.5, 0.3)]);
        let hr = huang_rhys(&g, 10.0, 10.0, SpectrumOptions::default()).unwrap();
        let b = hr.band_couplings(&default_bands());
        assert!(
            rel(b[0], 20.678338) < 1e-7 && b[1].abs() < 1e-9 && rel(b[2], 0.4865491) < 1e-6,
            "{b:?}"
        );
        let six = [
            (5.0, 10.0, 0.3),
            (12.0, 3.0, 1.1),
            (24.0, 1.5, 2.0),
            (41.0, 0.8, 0.7),
            (58.0, 0.3, 4.0),
            (80.0, 0.1, 5.5),
        ];
        let hr = huang_rhys(&modes(&six), 10.0, 10.0, SpectrumOptions::default()).unwrap();
        assert!(rel(hr.variance_mev2.sqrt(), 11.333177) < 1e-6);
        assert!(rel(hr.lambda_mev, 74.524732) < 1e-6);
        assert!(rel(hr.s_total, 15.7) < 1e-9);
        let b = hr.band_couplings(&default_bands());
        for (got, want) in b.iter().zip([10.339169, 4.253830, 1.221238]) {
            assert!(rel(*got, want) < 1e-6, "{got} vs {want}");
        }
        let in_bands: f64 = b
            .iter()
            .zip(default_bands())
            .map(|(s, bd)| s * bd.centre_mev())
            .sum();
        assert!(rel(in_bands, 71.216198) < 1e-6);
        assert!(
            rel(hr.gamma_mev(10.0), 26.68759) < 1e-6 && rel(hr.gamma_mev(300.0), 146.1740) < 1e-6
        );
    }

    #[test]
    fn t10_supplementary_table_1() {
        // (S₂, S₇, S₁₇, Γ(300 K) of the SI table), Λ = Σ_b S_b ħ⟨ω⟩_b.
        for (s2, s7, s17, gamma) in [
            (29.9, 8.4, 1.2, 200.0),
            (19.7, 6.6, 0.5, 164.0),
            (11.0, 4.4, 0.8, 138.0),
            (7.0, 1.9, 1.7, 126.0),
            (7.5, 1.0, 1.8, 122.0),
            (5.3, 1.3, 0.5, 89.9),
        ] {
            let lambda = s2 * 2.0 + s7 * 7.0 + s17 * 17.0;
            assert!(
                (gamma_from_lambda(lambda, 300.0) - gamma).abs() < 1.0,
                "{lambda}"
            );
        }
    }

    #[test]
    fn bands_parse_and_reject() {
        assert_eq!(parse_bands("0:4,4:10,10:24").unwrap(), default_bands());
        assert!(parse_bands("0:4,3:10").is_err());
        assert!(parse_bands("4:2").is_err());
        assert!(parse_bands("a:b").is_err());
        assert!(huang_rhys(&[1.0, 2.0, 3.0], 10.0, 10.0, SpectrumOptions::default()).is_err());
        assert!(huang_rhys(&[1.0; 10], 10.0, 0.0, SpectrumOptions::default()).is_err());
        assert!(huang_rhys(
            &[1.0, f64::NAN, 1.0, 2.0],
            10.0,
            10.0,
            SpectrumOptions::default()
        )
        .is_err());
    }
}
