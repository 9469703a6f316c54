//! Cs : Pb/Br intensity-ratio statistics (docs/methods/statistics.md).
//!
//! Per QD: R = mean(I_Cs)/mean(I_Pb/Br) with each population's s.d.; the
//! column-to-column spread of the ratio s_R = R·√((s_Cs/m_Cs)² + (s_Pb/m_Pb)²)
//! (reported as the "s.d." of the image ratio), its standard error
//! σ_R = R·√((s_Cs/(m_Cs√n_Cs))² + (s_Pb/(m_Pb√n_Pb))²), and a seeded
//! percentile-bootstrap 95 % interval (columns of each class resampled with
//! replacement). Per group: mean ± s.d. over QDs with n − 1 (MATLAB `std`).
//! Comparison: Welch's t-test (Welch–Satterthwaite ν, two-sided p from the
//! Student t distribution of `statrs`) and effect sizes (Cohen's d with the
//! pooled s.d., Hedges' g). Those group statistics are generic and live in
//! [`crate::stats`]; they are re-exported here.

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;

use crate::error::{Error, Result};
pub use crate::stats::{mean_sd, welch, welch_from_summary, Welch};

/// Ratio statistics of one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatioStats {
    /// R = mean(Cs)/mean(Pb/Br).
    pub ratio: f64,
    /// Column-to-column s.d. of the ratio.
    pub sd: f64,
    /// Standard error of R.
    pub se: f64,
    /// Bootstrap 95 % interval [low, high]; `None` when no resample had a
    /// positive Pb/Br mean.
    pub ci95: Option<[f64; 2]>,
    /// Number of Cs columns.
    pub n_cs: usize,
    /// Number of Pb/Br columns.
    pub n_pbbr: usize,
    /// Mean and s.d. of the Cs intensities (s.d. `None` for one column).
    pub cs_mean_sd: (f64, Option<f64>),
    /// Mean and s.d. of the Pb/Br intensities (s.d. `None` for one column).
    pub pbbr_mean_sd: (f64, Option<f64>),
}

/// Ratio statistics from the Cs and Pb/Br column intensities.
///
/// # Errors
/// A class without columns, a non-positive Pb/Br mean, or non-finite values.
pub fn image_ratio(what: &str, cs: &[f64], pbbr: &[f64], seed: u64) -> Result<RatioStats> {
    let (Some((mc, sc)), Some((mp, sp))) = (mean_sd(cs), mean_sd(pbbr)) else {
        return Err(Error::Empty {
            what: what.to_string(),
            reason: format!(
                "no {} columns to form a Cs : Pb/Br ratio",
                if cs.is_empty() { "Cs" } else { "Pb/Br" }
            ),
        });
    };
    if cs.iter().chain(pbbr).any(|v| !v.is_finite()) {
        return Err(Error::Numerical {
            what: what.to_string(),
            reason: "non-finite column intensity".into(),
        });
    }
    if mp <= 0.0 {
        return Err(Error::Numerical {
            what: what.to_string(),
            reason: format!("mean Pb/Br intensity is {mp} (≤ 0): no meaningful ratio"),
        });
    }
    let r = mc / mp;
    // A class of one column adds no spread (its s.d. is `None`).
    let rel = |s: Option<f64>, m: f64, n: usize| s.map_or(0.0, |s| s / m / (n as f64).sqrt());
    let relsd = |s: Option<f64>, m: f64| s.map_or(0.0, |s| s / m);
    let sd = r.abs() * (relsd(sc, mc).powi(2) + relsd(sp, mp).powi(2)).sqrt();
    let se = r.abs() * (rel(sc, mc, cs.len()).powi(2) + rel(sp, mp, pbbr.len()).powi(2)).sqrt();
    // Percentile bootstrap, 2000 resamples.
    let mut rng = StdRng::seed_from_u64(seed);
    let nb = 2000;
    let mut boot = Vec::with_capacity(nb);
    for _ in 0..nb {
        let a: f64 = (0..cs.len())
            .map(|_| cs[rng.gen_range(0..cs.len())])
            .sum::<f64>()
            / cs.len() as f64;
        let b: f64 = (0..pbbr.len())
            .map(|_| pbbr[rng.gen_range(0..pbbr.len())])
            .sum::<f64>()
            / pbbr.len() as f64;
        if b > 0.0 {
            boot.push(a / b);
        }
    }
    boot.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let pos = p * (boot.len() - 1) as f64;
        let i = pos.floor() as usize;
        let j = (i + 1).min(boot.len() - 1);
        boot[i] + (boot[j] - boot[i]) * (pos - i as f64)
    };
    Ok(RatioStats {
        ratio: r,
        sd,
        se,
        ci95: (!boot.is_empty()).then(|| [q(0.025), q(0.975)]),
        n_cs: cs.len(),
        n_pbbr: pbbr.len(),
        cs_mean_sd: (mc, sc),
        pbbr_mean_sd: (mp, sp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_and_bootstrap() {
        let cs = [0.33, 0.35, 0.37, 0.35];
        let pb = [1.0, 0.98, 1.02, 1.0];
        let r = image_ratio("t", &cs, &pb, 1).unwrap();
        assert!((r.ratio - 0.35).abs() < 1e-12);
        let ci = r.ci95.unwrap();
        assert!(ci[0] < 0.35 && ci[1] > 0.35 && ci[1] - ci[0] < 0.05);
        assert!(r.sd > r.se);
        assert_eq!(image_ratio("t", &cs, &pb, 1).unwrap(), r, "seeded");
        let e = image_ratio("qd7", &[], &pb, 1).unwrap_err();
        assert!(e.to_string().starts_with("qd7: no Cs columns"), "{e}");
    }
}
