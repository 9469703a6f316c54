//! The volumes of `--neighbours joint` and their two checks: the refit of
//! every site on the linear image, the check refits (finer background
//! grid; the measured noise added once more) and the comparison of their
//! ratios (docs/methods/columns.md, "Background check", "Noise check").
//! Split from `mod.rs`, which runs the column analysis.

use ndarray::{Array2, ArrayView2};

use super::{checks, column_fits, Column, ColumnsParams, Lengths};
use crate::error::{Error, Result, Warnings};
use crate::image::Image;
use crate::stem::detect::{self, DetectParams};
use crate::stem::joint::JointFit;

/// The check refits of the joint volumes: on a finer background grid
/// (compared by [`checks::background`]) and with the noise doubled
/// (compared by [`checks::noise`]; `None` on a noise-free image).
pub(super) struct CheckFits {
    background: JointFit,
    noise: Option<JointFit>,
}

/// The volumes of `--neighbours joint`: the joint fit again with a shared
/// elliptical shape and a finer background grid ([`detect::refit`]) on the
/// linear image when given (else on `img`), and the two check refits from
/// the same start: on a finer grid still ([`detect::refit_with_grid`])
/// and on the image with its measured noise added once more
/// ([`detect::refit_with_added_noise`], seeded by `seed`). The occupancy,
/// interior and classes are decided again on the refit's volumes
/// ([`detect::reclassify`]); when the occupied sites change, the refits
/// run once more from there (the plateau term's outline follows them):
/// the refit from the first refit's state, its checks from the common
/// start.
/// Returns (the detection with the refit, check refits).
pub(super) fn joint_volumes(
    what: &str,
    (image, linear): (&Image, Option<&Image>),
    img: &Array2<f64>,
    det: &detect::Detection,
    (a_px, seed): (f64, u64),
    dp: &DetectParams,
) -> Result<(detect::Detection, CheckFits)> {
    let converted;
    let l = match linear {
        Some(lin) => {
            if lin.data.dim() != image.data.dim() {
                return Err(Error::shape(
                    format!("{what}: linear image for the volumes"),
                    format!("{:?}", image.data.dim()),
                    format!("{:?}", lin.data.dim()),
                ));
            }
            lin.check_finite(what)?;
            converted = lin.data.mapv(f64::from);
            &converted
        }
        None => img,
    };
    let refit = |det: &detect::Detection, start: Option<&JointFit>| {
        detect::refit(l.view(), det, a_px, start).map_err(|e| e.context(what))
    };
    // Both checks of `det`, with the noise its refit `noise_of` measured
    // (in parallel). They start where the refit started, not from its result:
    // a check started from the answer it checks moves less than an
    // independent fit would (a 5-cell case at +0.032 passed the noise
    // check at 2 %, refused at 10 % from the start).
    let checks = |det: &detect::Detection, noise_of: &JointFit| -> Result<CheckFits> {
        let (background, noise) = rayon::join(
            || {
                let grid = detect::CHECK_BACKGROUND;
                detect::refit_with_grid(l.view(), det, a_px, grid, None)
            },
            || {
                noise_of.noise.map(|nm| {
                    detect::refit_with_added_noise(l.view(), det, a_px, (&nm, seed), None)
                })
            },
        );
        Ok(CheckFits {
            background: background.map_err(|e| e.context(what))?,
            noise: noise.transpose().map_err(|e| e.context(what))?,
        })
    };
    let first = detect::reclassify(what, det, refit(det, None)?, dp)?;
    if detect::occupied_sites(&first) == detect::occupied_sites(det) {
        let c = checks(det, &first.fit)?;
        return Ok((first, c));
    }
    // The plateau's outline and the interior follow the occupancy of the
    // volumes: the refit once more from the first refit's state, and its
    // checks from the common start (in parallel; the noise is the first
    // refit's).
    let (fit, again) = rayon::join(
        || refit(&first, Some(&first.fit)),
        || checks(&first, &first.fit),
    );
    Ok((detect::reclassify(what, &first, fit?, dp)?, again?))
}

/// The background and noise checks of `fits` against the ratio's columns
/// `columns` (fitted on `img` from `det`): each check refit's volumes
/// through the same column fits, the ratio compared
/// ([`checks::background`], [`checks::noise`]); their relative changes
/// go to `det`'s report.
///
/// # Errors
/// Either check's refusal, naming `what`.
pub(super) fn apply_checks(
    what: &str,
    det: &mut detect::Detection,
    fits: CheckFits,
    (img, columns): (ArrayView2<f64>, &[Column]),
    p: &ColumnsParams,
    lengths: &Lengths,
) -> Result<()> {
    let again = |fit: JointFit| {
        let mut det_check = det.clone();
        det_check.fit = fit;
        column_fits(img, &det_check, p, lengths, &mut Warnings::default())
            .map_err(|e| e.context(what))
    };
    let bg = checks::background(what, columns, &again(fits.background)?)?;
    let noise = match fits.noise {
        Some(noisy) => checks::noise(what, columns, &again(noisy)?)?,
        None => None,
    };
    det.report.background_sensitivity = bg;
    det.report.noise_sensitivity = noise;
    Ok(())
}
