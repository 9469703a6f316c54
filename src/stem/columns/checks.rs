//! The evidence checks of the column analysis before a ratio is given:
//! the two classes' volumes must be separated ([`separation`]) and, with
//! `--neighbours joint`, the volumes must not depend on the background
//! model ([`background`]) nor move when the noise is doubled ([`noise`]). Each refusal is one line naming the input
//! (docs/methods/columns.md, "Occupancy, interior, identity, refusals").

use super::{detect, Column};
use crate::error::{Error, Result};
use crate::stem::sublattice::{self, Sublattice};

/// The separation check of [`detect`] again, on the volumes that enter
/// the ratio (a single-column fit can undo what the joint fit separated);
/// more than `limit` of the checked columns on the wrong side → refused.
/// Marks the disagreeing columns.
pub(super) fn separation(what: &str, columns: &mut [Column], limit: f64) -> Result<()> {
    let classed: Vec<sublattice::ClassedColumn> = columns
        .iter()
        .map(|c| sublattice::ClassedColumn {
            index: c.index,
            sublattice: c.sublattice,
            intensity: c.fit.converged().then(|| c.fit.params.volume()),
            checked: c.in_ratio,
        })
        .collect();
    let (bad, frac) = sublattice::separation(&classed);
    for (c, b) in columns.iter_mut().zip(bad) {
        c.intensity_mismatch |= b;
    }
    if frac > limit {
        return Err(Error::Numerical {
            what: what.to_string(),
            reason: format!(
                "no ratio: the fitted volumes do not separate the classes: {:.0} % of interior columns are not brighter (Pb/Br) or darker (Cs) than their four neighbours of the other class (limit {:.0} %)",
                100.0 * frac,
                100.0 * limit
            ),
        });
    }
    Ok(())
}

/// The Cs : Pb/Br mean-volume ratio of the ratio's columns
/// (`columns[i].in_ratio`) with the volumes of `fits` (same columns in the
/// same order); None without a converged column of either class.
fn ratio_with(columns: &[Column], fits: &[Column]) -> Option<f64> {
    let mean = |s: Sublattice| {
        let v: Vec<f64> = columns
            .iter()
            .zip(fits)
            .filter(|(c, k)| c.in_ratio && c.sublattice == s && k.fit.converged())
            .map(|(_, k)| k.fit.params.volume())
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    Some(mean(Sublattice::Cs)? / mean(Sublattice::PbBr)?)
}

/// The ratios of `columns` and of `again` and their relative difference;
/// Ok(None) when either has no ratio, Err(reason) beyond `limit`.
fn sensitivity(
    columns: &[Column],
    again: &[Column],
    limit: f64,
) -> std::result::Result<Option<f64>, (f64, f64, f64)> {
    let (Some(r), Some(r2)) = (ratio_with(columns, columns), ratio_with(columns, again)) else {
        return Ok(None);
    };
    let rel = (r2 / r - 1.0).abs();
    if rel.is_nan() || rel > limit {
        return Err((r, r2, rel));
    }
    Ok(Some(rel))
}

/// The background check of the joint volumes: the Cs : Pb/Br volume ratio
/// of the ratio's columns (`columns[i].in_ratio`) from the refit and from
/// the check refit (`again`, same columns in the same order, the
/// check's background grid) must agree within
/// [`detect::MAX_BACKGROUND_SENSITIVITY`]; otherwise the background under
/// the particle is not separated from the columns and no ratio is given.
/// Returns the relative difference (None without a ratio to compare).
pub(super) fn background(what: &str, columns: &[Column], again: &[Column]) -> Result<Option<f64>> {
    sensitivity(columns, again, detect::MAX_BACKGROUND_SENSITIVITY).map_err(|(r, r2, rel)| {
        Error::Numerical {
            what: what.to_string(),
            reason: format!(
                "no ratio: the joint volumes depend on the background model: the Cs : Pb/Br ratio is {r:.4} with a background grid of {} and {r2:.4} with {} ({:.0} % apart, limit {:.0} %); the support under the particle (e.g. a plateau at its edge) is not separated from the columns",
                detect::REFIT_BACKGROUND,
                detect::CHECK_BACKGROUND,
                100.0 * rel,
                100.0 * detect::MAX_BACKGROUND_SENSITIVITY
            ),
        }
    })
}

/// The noise check of the joint volumes: the ratio from the refit and from
/// the refit of the same image with its measured noise added once more
/// (`again`, [`detect::refit_with_added_noise`]) must agree within
/// [`detect::MAX_NOISE_SENSITIVITY`]; otherwise the ratio moves with the
/// noise (a noise-driven bias, or a noise error that large) and no ratio
/// is given. Returns the relative difference.
pub(super) fn noise(what: &str, columns: &[Column], again: &[Column]) -> Result<Option<f64>> {
    sensitivity(columns, again, detect::MAX_NOISE_SENSITIVITY).map_err(|(r, r2, rel)| {
        Error::Numerical {
            what: what.to_string(),
            reason: format!(
                "no ratio: the joint volumes move with the noise: the Cs : Pb/Br ratio is {r:.4}, and {r2:.4} with the image's measured noise added once more ({:.0} % apart, limit {:.0} %); the dose is too low for the dim columns' widths and volumes (more frames or a larger particle)",
                100.0 * rel,
                100.0 * detect::MAX_NOISE_SENSITIVITY
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stem::gaussian::{self, ColumnFit, FitStatus};

    fn column(sublattice: Sublattice, volume: f64, in_ratio: bool) -> Column {
        // Volume 2π·A·σ² with σ = 1.
        let height = volume / std::f64::consts::TAU;
        Column {
            id: 0,
            sublattice,
            fit: ColumnFit {
                params: gaussian::Gaussian7 {
                    baseline: 0.0,
                    height,
                    x0: 0.0,
                    y0: 0.0,
                    sigma_x: 1.0,
                    sigma_y: 1.0,
                    rotation: 0.0,
                },
                stderr: [None; 7],
                residual_rms: None,
                evaluations: 1,
                n_pixels: 0,
                status: FitStatus::Converged,
                rotation_defined: false,
            },
            index: None,
            edge: !in_ratio,
            intensity_mismatch: false,
            in_ratio,
        }
    }

    /// Ratio 0.4 from the refit; the check refit gives the Cs columns
    /// `cs_scale` times their volume (the edge column, not in the ratio,
    /// is made wildly different and must not count).
    fn pair(cs_scale: f64) -> (Vec<Column>, Vec<Column>) {
        let a = vec![
            column(Sublattice::Cs, 0.4, true),
            column(Sublattice::Cs, 0.4, true),
            column(Sublattice::PbBr, 1.0, true),
            column(Sublattice::Cs, 9.0, false),
        ];
        let b = vec![
            column(Sublattice::Cs, 0.4 * cs_scale, true),
            column(Sublattice::Cs, 0.4 * cs_scale, true),
            column(Sublattice::PbBr, 1.0, true),
            column(Sublattice::Cs, 0.001, false),
        ];
        (a, b)
    }

    #[test]
    fn background_check_refuses_a_ratio_that_follows_the_grid() {
        let (a, b) = pair(1.04);
        background("x", &a, &b).unwrap();
        let (a, b) = pair(0.96);
        background("x", &a, &b).unwrap();
        for scale in [1.06, 0.94, f64::NAN] {
            let (a, b) = pair(scale);
            let e = background("img.tif", &a, &b).unwrap_err().to_string();
            assert!(
                e.contains("img.tif") && e.contains("depend on the background model"),
                "{e}"
            );
        }
    }

    #[test]
    fn noise_check_reports_the_change_and_refuses_beyond_the_limit() {
        let (a, b) = pair(1.03);
        let rel = noise("x", &a, &b).unwrap().unwrap();
        assert!((rel - 0.03).abs() < 1e-9, "{rel}");
        let (a, b) = pair(1.2);
        let e = noise("img.tif", &a, &b).unwrap_err().to_string();
        assert!(
            e.contains("img.tif") && e.contains("move with the noise"),
            "{e}"
        );
    }
}
