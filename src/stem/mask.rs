//! Particle masks from intensity: Gaussian smoothing, Otsu's threshold,
//! the largest 4-connected component, holes filled, grown by a disk. Used
//! as the window of the lattice measurement ([`crate::stem::detect`]),
//! whose own crystal mask comes from the lattice amplitude.

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};
use crate::stem::background::gaussian::gaussian_filter;
use crate::stem::background::{dilate, Decomposition, Footprint};

/// Particle mask: the image smoothed with σ = `sigma_px`, thresholded at
/// `threshold` (absolute) or by Otsu's method, largest connected component,
/// holes filled, then dilated by a disk of radius `grow_px` (the smoothing
/// pulls the rim columns below the threshold). Returns the mask and the
/// threshold used.
///
/// # Errors
/// Invalid σ; an image without any contrast.
pub fn qd_mask(
    image: ArrayView2<f64>,
    sigma_px: f64,
    threshold: Option<f64>,
    grow_px: f64,
) -> Result<(Array2<bool>, f64)> {
    let f = image.mapv(|v| v as f32);
    let smooth = gaussian_filter(f.view(), sigma_px, 3.0)?.mapv(f64::from);
    let t = match threshold {
        Some(t) => t,
        None => otsu(smooth.iter().copied()).ok_or_else(|| Error::Empty {
            what: "particle mask".into(),
            reason: "the image has no contrast (flat)".into(),
        })?,
    };
    let above = smooth.mapv(|v| v > t);
    let filled = fill_holes(&largest_component(&above));
    let r = grow_px.max(0.0).round() as usize;
    if r == 0 {
        return Ok((filled, t));
    }
    Ok((grow(&filled, r)?, t))
}

/// `m` dilated by a disk of radius `r_px` (exact disk).
///
/// # Errors
/// A disk the background module refuses (radius 0).
pub fn grow(m: &Array2<bool>, r_px: usize) -> Result<Array2<bool>> {
    let fp = Footprint::disk(r_px, Decomposition::Exact)?;
    let grown = dilate(m.mapv(|b| if b { 1.0f32 } else { 0.0 }).view(), &fp);
    Ok(grown.mapv(|v| v > 0.5))
}

/// Otsu threshold (256 bins) of finite values; `None` when flat.
pub fn otsu(values: impl Iterator<Item = f64> + Clone) -> Option<f64> {
    let (lo, hi) = values
        .clone()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if hi <= lo {
        return None;
    }
    const NB: usize = 256;
    let mut hist = [0f64; NB];
    for v in values.filter(|v| v.is_finite()) {
        let b = (((v - lo) / (hi - lo)) * NB as f64).min(NB as f64 - 1.0) as usize;
        hist[b] += 1.0;
    }
    let total: f64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(i, h)| i as f64 * h).sum();
    let (mut w0, mut s0, mut best, mut best_i) = (0.0, 0.0, -1.0, 0usize);
    for (i, h) in hist.iter().enumerate().take(NB - 1) {
        w0 += h;
        s0 += i as f64 * h;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (s0 / w0, (sum_all - s0) / w1);
        let between = w0 * w1 * (m0 - m1).powi(2);
        if between > best {
            best = between;
            best_i = i;
        }
    }
    Some(lo + (best_i as f64 + 1.0) / NB as f64 * (hi - lo))
}

/// Connected components (4-connectivity) labelled by flood fill; returns
/// the largest one.
pub(crate) fn largest_component(m: &Array2<bool>) -> Array2<bool> {
    let (ny, nx) = m.dim();
    let mut label = Array2::<u32>::zeros((ny, nx));
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for y in 0..ny {
        for x in 0..nx {
            if !m[[y, x]] || label[[y, x]] != 0 {
                continue;
            }
            let id = sizes.len() as u32;
            stack.push((y, x));
            label[[y, x]] = id;
            let n = flood(&mut stack, (ny, nx), |yy, xx| {
                let take = m[[yy, xx]] && label[[yy, xx]] == 0;
                if take {
                    label[[yy, xx]] = id;
                }
                take
            });
            sizes.push(n);
        }
    }
    let best = (1..sizes.len()).max_by_key(|&i| sizes[i]).unwrap_or(0) as u32;
    label.mapv(|l| best != 0 && l == best)
}

/// Fill holes: background not connected to the border becomes foreground.
pub(crate) fn fill_holes(m: &Array2<bool>) -> Array2<bool> {
    let (ny, nx) = m.dim();
    let mut outside = Array2::<bool>::from_elem((ny, nx), false);
    let mut stack = Vec::new();
    for y in 0..ny {
        for x in 0..nx {
            if (y == 0 || x == 0 || y == ny - 1 || x == nx - 1) && !m[[y, x]] {
                outside[[y, x]] = true;
                stack.push((y, x));
            }
        }
    }
    flood(&mut stack, (ny, nx), |yy, xx| {
        let take = !m[[yy, xx]] && !outside[[yy, xx]];
        if take {
            outside[[yy, xx]] = true;
        }
        take
    });
    outside.mapv(|o| !o)
}

/// 4-connected flood fill from the (already marked) pixels on `stack`:
/// `take(y, x)` marks a neighbour and says whether it joins. Returns the
/// number of pixels popped (the seeds included).
fn flood(
    stack: &mut Vec<(usize, usize)>,
    (ny, nx): (usize, usize),
    mut take: impl FnMut(usize, usize) -> bool,
) -> usize {
    let mut n = 0;
    while let Some((cy, cx)) = stack.pop() {
        n += 1;
        for (yy, xx) in [
            (cy.wrapping_sub(1), cx),
            (cy + 1, cx),
            (cy, cx.wrapping_sub(1)),
            (cy, cx + 1),
        ] {
            if yy < ny && xx < nx && take(yy, xx) {
                stack.push((yy, xx));
            }
        }
    }
    n
}
