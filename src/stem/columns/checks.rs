//! The evidence checks of the column analysis before a ratio is given:
//! the two classes' volumes must be separated ([`separation`]) and, with
//! `--neighbours joint`, the volumes must not depend on the background
//! model ([`background`]). Each refusal is one line naming the input
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

/// The background check of the joint volumes: the Cs : Pb/Br volume ratio
/// of the ratio's columns (`columns[i].in_ratio`) from the refit and from
/// the check refit (`again`, same columns in the same order, finer
/// background grid) must agree within
/// [`detect::MAX_BACKGROUND_SENSITIVITY`]; otherwise the background under
/// the particle is not separated from the columns and no ratio is given.
pub(super) fn background(what: &str, columns: &[Column], again: &[Column]) -> Result<()> {
    let ratio = |cols: &[Column]| -> Option<f64> {
        let mean = |s: Sublattice| {
            let v: Vec<f64> = columns
                .iter()
                .zip(cols)
                .filter(|(c, k)| c.in_ratio && c.sublattice == s && k.fit.converged())
                .map(|(_, k)| k.fit.params.volume())
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        Some(mean(Sublattice::Cs)? / mean(Sublattice::PbBr)?)
    };
    let (Some(r), Some(r2)) = (ratio(columns), ratio(again)) else {
        return Ok(());
    };
    let rel = (r2 / r - 1.0).abs();
    if rel.is_nan() || rel > detect::MAX_BACKGROUND_SENSITIVITY {
        return Err(Error::Numerical {
            what: what.to_string(),
            reason: format!(
                "no ratio: the joint volumes depend on the background model: the Cs : Pb/Br ratio is {r:.4} with a background grid of {}a and {r2:.4} with {}a ({:.0} % apart, limit {:.0} %); the support under the particle (e.g. a plateau at its edge) is not separated from the columns",
                detect::REFIT_BACKGROUND_SPACING_A,
                detect::CHECK_BACKGROUND_SPACING_A,
                100.0 * rel,
                100.0 * detect::MAX_BACKGROUND_SENSITIVITY
            ),
        });
    }
    Ok(())
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
}
