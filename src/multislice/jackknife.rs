//! Jackknife statistics of a series over its frozen-phonon configurations
//! (docs/methods/multislice.md): from the leave-one-out row sets of
//! [`image::jackknife`](super::image::jackknife), the standard error of both
//! ratios at every thickness ([`ratio_errors`]) and the summary a run
//! reports ([`summary`]): the s.e. at 15 and 30 u.c. and of their
//! difference, where the configurations' common fluctuations cancel.

use serde::Serialize;

use crate::multislice::image::Row;
use crate::stats::jackknife_se;

/// Jackknife standard errors of the two ratios of one thickness.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioSe {
    /// s.e. of the volume ratio.
    pub volume: f64,
    /// s.e. of the height ratio.
    pub height: f64,
}

/// Per row of the leave-one-out row sets `loo`: the jackknife s.e. of the
/// volume and height ratios.
#[must_use]
pub fn ratio_errors(loo: &[Vec<Row>]) -> Vec<RatioSe> {
    (0..loo.first().map_or(0, Vec::len))
        .map(|t| RatioSe {
            volume: row_se(loo, t, |r| r.ratio_volume),
            height: row_se(loo, t, |r| r.ratio_height),
        })
        .collect()
}

/// Jackknife s.e. of one column `f` of row `t` from leave-one-out row sets.
fn row_se(loo: &[Vec<Row>], t: usize, f: fn(&Row) -> f64) -> f64 {
    jackknife_se(&loo.iter().map(|l| f(&l[t])).collect::<Vec<_>>())
}

/// The jackknife values a run reports for one detector (`None`: the
/// series is shorter than the thickness).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JackknifeSummary {
    /// Configurations left out in turn.
    pub configurations: usize,
    /// s.e. of the height ratio at 15 u.c.
    pub ratio_height_15uc_se: Option<f64>,
    /// s.e. of the height ratio at 30 u.c.
    pub ratio_height_30uc_se: Option<f64>,
    /// Height ratio at 30 u.c. minus the one at 15 u.c.
    pub ratio_height_30uc_minus_15uc: Option<f64>,
    /// s.e. of that difference.
    pub ratio_height_30uc_minus_15uc_se: Option<f64>,
    /// s.e. of the volume ratio at 15 u.c.
    pub ratio_volume_15uc_se: Option<f64>,
    /// s.e. of the volume ratio at 30 u.c.
    pub ratio_volume_30uc_se: Option<f64>,
    /// Volume ratio at 30 u.c. minus the one at 15 u.c.
    pub ratio_volume_30uc_minus_15uc: Option<f64>,
    /// s.e. of that difference.
    pub ratio_volume_30uc_minus_15uc_se: Option<f64>,
}

/// The summary of the series `rows` from its leave-one-out row sets `loo`
/// and their [`ratio_errors`] `errors`.
#[must_use]
pub fn summary(rows: &[Row], loo: &[Vec<Row>], errors: &[RatioSe]) -> JackknifeSummary {
    let se = |t: usize, f: fn(&RatioSe) -> f64| errors.get(t - 1).map(f);
    let diff = |f: fn(&Row) -> f64| -> (Option<f64>, Option<f64>) {
        if rows.len() < 30 {
            return (None, None);
        }
        let d: Vec<f64> = loo.iter().map(|l| f(&l[29]) - f(&l[14])).collect();
        (Some(f(&rows[29]) - f(&rows[14])), Some(jackknife_se(&d)))
    };
    let (dh, dh_se) = diff(|r| r.ratio_height);
    let (dv, dv_se) = diff(|r| r.ratio_volume);
    JackknifeSummary {
        configurations: loo.len(),
        ratio_height_15uc_se: se(15, |e| e.height),
        ratio_height_30uc_se: se(30, |e| e.height),
        ratio_height_30uc_minus_15uc: dh,
        ratio_height_30uc_minus_15uc_se: dh_se,
        ratio_volume_15uc_se: se(15, |e| e.volume),
        ratio_volume_30uc_se: se(30, |e| e.volume),
        ratio_volume_30uc_minus_15uc: dv,
        ratio_volume_30uc_minus_15uc_se: dv_se,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows 1…n u.c. whose ratios are `f(t)`.
    fn rows(n: usize, f: impl Fn(usize) -> f64) -> Vec<Row> {
        (1..=n)
            .map(|t| Row {
                thickness_uc: t,
                thickness_nm: t as f64 * 0.587,
                cs_intensity: 1.0,
                pbbr_intensity: 1.0,
                ratio_volume: f(t),
                ratio_height: 2.0 * f(t),
            })
            .collect()
    }

    #[test]
    fn two_configurations_give_half_their_difference() {
        let loo = vec![rows(30, |_| 0.3), rows(30, |t| 0.3 + 0.001 * t as f64)];
        let e = ratio_errors(&loo);
        assert_eq!(e.len(), 30);
        assert!((e[9].volume - 0.005).abs() < 1e-12 && (e[9].height - 0.01).abs() < 1e-12);
        let s = summary(&rows(30, |t| 0.3 + 0.0005 * t as f64), &loo, &e);
        assert_eq!(s.configurations, 2);
        assert!((s.ratio_volume_15uc_se.unwrap() - 0.0075).abs() < 1e-12);
        assert!((s.ratio_volume_30uc_minus_15uc.unwrap() - 0.0075).abs() < 1e-12);
        assert!((s.ratio_height_30uc_minus_15uc_se.unwrap() - 0.015).abs() < 1e-12);
        // A series shorter than 30 u.c. has no 30 u.c. values.
        let short = summary(&rows(20, |_| 0.3), &loo, &e[..20]);
        assert_eq!(short.ratio_height_30uc_se, None);
        assert_eq!(short.ratio_volume_30uc_minus_15uc, None);
        assert!(short.ratio_height_15uc_se.is_some());
    }
}
