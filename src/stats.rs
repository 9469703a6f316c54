//! Statistics both halves use (docs/methods/statistics.md): mean and sample
//! s.d. with n − 1 (MATLAB `std`), Welch's unequal-variance t-test with
//! Cohen's d and Hedges' g (two-sided p from the Student t distribution of
//! `statrs`), and the jackknife standard error of leave-one-out estimates.
//! Nothing here knows about images, columns or trajectories.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{Error, Result};

/// Mean and sample s.d. (n − 1): `None` for an empty slice; the s.d. is
/// `None` for a single value.
#[must_use]
pub fn mean_sd(v: &[f64]) -> Option<(f64, Option<f64>)> {
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return Some((m, None));
    }
    let ss = v.iter().map(|x| (x - m).powi(2)).sum::<f64>();
    Some((m, Some((ss / (n - 1.0)).sqrt())))
}

/// Jackknife standard error from leave-one-out estimates θ₍ᵢ₎:
/// √((n − 1)/n · Σ (θ₍ᵢ₎ − θ̄)²); 0 for fewer than two values.
#[must_use]
pub fn jackknife_se(loo: &[f64]) -> f64 {
    let n = loo.len();
    if n < 2 {
        return 0.0;
    }
    let m = loo.iter().sum::<f64>() / n as f64;
    ((n - 1) as f64 / n as f64 * loo.iter().map(|x| (x - m).powi(2)).sum::<f64>()).sqrt()
}

/// Welch's unequal-variance t-test of two groups.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Welch {
    /// t = (m₂ − m₁)/√(s₁²/n₁ + s₂²/n₂).
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// Cohen's d with the pooled s.d. (m₂ − m₁)/s_pooled.
    pub cohen_d: f64,
    /// Hedges' g (small-sample corrected d).
    pub hedges_g: f64,
}

/// Welch's t-test from summary statistics (mean, s.d., n) of each group.
///
/// # Errors
/// n < 2 in a group, or both variances zero.
pub fn welch_from_summary(
    m1: f64,
    s1: f64,
    n1: usize,
    m2: f64,
    s2: f64,
    n2: usize,
) -> Result<Welch> {
    if n1 < 2 || n2 < 2 {
        return Err(too_few(n1, n2));
    }
    let (v1, v2) = (s1 * s1 / n1 as f64, s2 * s2 / n2 as f64);
    if v1 + v2 <= 0.0 || (v1 + v2).is_nan() {
        return Err(Error::Numerical {
            what: "Welch's t-test".into(),
            reason: "both groups have zero variance".into(),
        });
    }
    let t = (m2 - m1) / (v1 + v2).sqrt();
    let df = (v1 + v2).powi(2) / (v1 * v1 / (n1 - 1) as f64 + v2 * v2 / (n2 - 1) as f64);
    let dist = StudentsT::new(0.0, 1.0, df).map_err(|e| Error::Numerical {
        what: "Welch's t-test".into(),
        reason: e.to_string(),
    })?;
    let p = 2.0 * (1.0 - dist.cdf(t.abs()));
    let sp =
        (((n1 - 1) as f64 * s1 * s1 + (n2 - 1) as f64 * s2 * s2) / (n1 + n2 - 2) as f64).sqrt();
    let d = (m2 - m1) / sp;
    let g = d * (1.0 - 3.0 / (4.0 * (n1 + n2) as f64 - 9.0));
    Ok(Welch {
        t,
        df,
        p,
        cohen_d: d,
        hedges_g: g,
    })
}

/// The error of a group with fewer than 2 values.
fn too_few(n1: usize, n2: usize) -> Error {
    Error::param(
        "Welch's t-test",
        format!("each group needs at least 2 QDs (got {n1} and {n2}): no s.d., no test"),
    )
}

/// Welch's t-test on two samples.
///
/// # Errors
/// As [`welch_from_summary`].
pub fn welch(a: &[f64], b: &[f64]) -> Result<Welch> {
    match (mean_sd(a), mean_sd(b)) {
        (Some((m1, Some(s1))), Some((m2, Some(s2)))) => {
            welch_from_summary(m1, s1, a.len(), m2, s2, b.len())
        }
        _ => Err(too_few(a.len(), b.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_summaries_welch() {
        // docs/methods/statistics.md: 0.33 ± 0.02 vs 0.37 ± 0.01, n = 4 each.
        let w = welch_from_summary(0.33, 0.02, 4, 0.37, 0.01, 4).unwrap();
        assert!((w.t - 3.578).abs() < 1e-3, "{}", w.t);
        assert!((w.df - 4.412).abs() < 1e-3, "{}", w.df);
        assert!((w.p - 0.0197).abs() < 1e-3, "{}", w.p);
    }

    #[test]
    fn matlab_std() {
        let (m, s) = mean_sd(&[0.31, 0.33, 0.35, 0.33]).unwrap();
        assert!((m - 0.33).abs() < 1e-12);
        assert!((s.unwrap() - 0.016330).abs() < 1e-6);
        assert_eq!(mean_sd(&[0.3]), Some((0.3, None)));
        assert_eq!(mean_sd(&[]), None);
        assert!(welch(&[0.3], &[0.3, 0.4]).is_err());
    }

    #[test]
    fn jackknife_of_two_is_half_the_difference() {
        assert!((jackknife_se(&[0.3, 0.5]) - 0.1).abs() < 1e-12);
        assert_eq!(jackknife_se(&[0.4]), 0.0);
    }
}
