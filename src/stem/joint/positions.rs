//! Positions averaged over neighbouring columns of the same class after
//! every position step of the joint fit (docs/methods/columns.md,
//! "Positions from the neighbourhood").
//!
//! Why: with one free position per column and one width per class, the
//! noise in the positions of weak columns leaks into the widths — a column
//! fitted off its centre looks wider — and the dim class, whose positions
//! are the noisiest, gains the most width and so the most volume (on two
//! noisy testbed cases the dim class came out 5–9 % wider than on the same
//! scene without noise, and the ratio 0.04–0.08 high). The displacement of
//! a column from its starting site varies slowly across a particle
//! (strain, scan distortion), while the noise does not: averaging each
//! column's displacement with its neighbours' cuts the noise and keeps the
//! slow part.

use nalgebra::{Matrix3, Vector3};

use super::JointColumn;

/// Averaged positions. The displacements d = p − p₀ of the fitted columns
/// from their starts p₀ are split into an affine part A(p₀) (per class,
/// weighted least squares over its columns with a finite position
/// standard error `se`, weights 1/se²) and a remainder; column i is placed at
/// p₀ + A(p₀) + the weighted mean remainder of the columns of its class
/// within 3`width_px` of its start (weights exp(−r²/(2 width²))/se²).
/// Columns marked fixed keep their position; a column without such
/// neighbours goes to p₀ + A(p₀).
///
/// The affine part makes the result independent of a start lattice whose
/// constant or angle is slightly off: a local mean of a linear field is
/// biased where the neighbourhood is one-sided (the particle's edge) —
/// by 0.5 px at a = 50 px for a start 1 % off. The starts should be a
/// smooth reference (the sites of a lattice), not noisy positions: the
/// noise of the start is not averaged out.
pub(super) fn smoothed(
    cols: &[JointColumn],
    (x, y): (&[f64], &[f64]),
    se: &[f64],
    width_px: f64,
) -> (Vec<f64>, Vec<f64>) {
    let fitted = |j: usize| !cols[j].fixed && se[j].is_finite() && se[j] > 0.0;
    let n_classes = cols.iter().map(|c| c.class + 1).max().unwrap_or(0);
    let affine: Vec<[[f64; 3]; 2]> = (0..n_classes)
        .map(|k| affine_part(cols, (x, y), se, &|j| cols[j].class == k && fitted(j)))
        .collect();
    let at = |c: &JointColumn| -> (f64, f64) {
        let [ax, ay] = affine[c.class];
        (
            ax[0] + ax[1] * c.x + ax[2] * c.y,
            ay[0] + ay[1] * c.x + ay[2] * c.y,
        )
    };
    let cut2 = (3.0 * width_px).powi(2);
    let inv2w2 = 1.0 / (2.0 * width_px * width_px);
    let mut out = (x.to_vec(), y.to_vec());
    for (i, ci) in cols.iter().enumerate() {
        if ci.fixed {
            continue;
        }
        let (mut sw, mut sx, mut sy) = (0.0, 0.0, 0.0);
        for (j, cj) in cols.iter().enumerate() {
            if cj.class != ci.class || !fitted(j) {
                continue;
            }
            let r2 = (cj.x - ci.x).powi(2) + (cj.y - ci.y).powi(2);
            if r2 > cut2 {
                continue;
            }
            let w = (-r2 * inv2w2).exp() / (se[j] * se[j]);
            let (axj, ayj) = at(cj);
            sw += w;
            sx += w * (x[j] - cj.x - axj);
            sy += w * (y[j] - cj.y - ayj);
        }
        let (axi, ayi) = at(ci);
        let (rx, ry) = if sw > 0.0 {
            (sx / sw, sy / sw)
        } else {
            (0.0, 0.0)
        };
        if (rx + axi).is_finite() && (ry + ayi).is_finite() {
            out.0[i] = ci.x + axi + rx;
            out.1[i] = ci.y + ayi + ry;
        }
    }
    out
}

/// Weighted least-squares affine fit of the displacements: coefficients
/// (c, cₓ, c_y) of x and of y. Zero with fewer than 6 fitted columns or a
/// singular system.
fn affine_part(
    cols: &[JointColumn],
    (x, y): (&[f64], &[f64]),
    se: &[f64],
    fitted: &dyn Fn(usize) -> bool,
) -> [[f64; 3]; 2] {
    let (mut n, mut ata) = (0, Matrix3::<f64>::zeros());
    let (mut bx, mut by) = (Vector3::<f64>::zeros(), Vector3::<f64>::zeros());
    // Centred coordinates keep the 3×3 system well conditioned.
    let (mx, my) = {
        let k = cols.len().max(1) as f64;
        (
            cols.iter().map(|c| c.x).sum::<f64>() / k,
            cols.iter().map(|c| c.y).sum::<f64>() / k,
        )
    };
    for (j, c) in cols.iter().enumerate() {
        if !fitted(j) {
            continue;
        }
        let w = 1.0 / (se[j] * se[j]);
        let row = Vector3::new(1.0, c.x - mx, c.y - my);
        ata += w * row * row.transpose();
        bx += w * row * (x[j] - c.x);
        by += w * row * (y[j] - c.y);
        n += 1;
    }
    let Some(inv) = (n >= 6).then(|| ata.try_inverse()).flatten() else {
        return [[0.0; 3]; 2];
    };
    let (cx, cy) = (inv * bx, inv * by);
    let uncentre = |c: Vector3<f64>| [c[0] - c[1] * mx - c[2] * my, c[1], c[2]];
    let out = [uncentre(cx), uncentre(cy)];
    if out.iter().flatten().all(|v| v.is_finite()) {
        out
    } else {
        [[0.0; 3]; 2]
    }
}

/// Each column moved back to within `reach_px` of its start (along the
/// line to its start) when further: the bound of `max_shift_px` holds for
/// the averaged positions too (the affine part of a class may carry a
/// column past it).
pub(super) fn within_reach(cols: &[JointColumn], (x, y): (&mut [f64], &mut [f64]), reach_px: f64) {
    for ((c, xi), yi) in cols.iter().zip(x.iter_mut()).zip(y.iter_mut()) {
        let (dx, dy) = (*xi - c.x, *yi - c.y);
        let d = dx.hypot(dy);
        if d > reach_px {
            *xi = c.x + dx * reach_px / d;
            *yi = c.y + dy * reach_px / d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};
    use rand_distr::{Distribution, Normal};

    #[test]
    fn averaging_keeps_a_smooth_displacement_and_cuts_the_noise() {
        // A 15 × 15 square lattice (spacing 20 px) displaced by a smooth
        // field (a shear of 0.5 px across the particle), fitted positions
        // with 0.3 px noise, starts on a lattice 1 % too small. Averaged
        // over σ_w = 20 px the error falls below 0.15 px (≈ noise/2.5) on
        // every column, the edges included, and the shear is kept.
        let d = 20.0;
        let cols: Vec<JointColumn> = (0..15)
            .flat_map(|j| {
                (0..15).map(move |i| JointColumn {
                    x: 0.99 * d * i as f64,
                    y: 0.99 * d * j as f64,
                    class: 0,
                    fixed: false,
                })
            })
            .collect();
        // True position of the column started at c.
        let truth = |c: &JointColumn| {
            let (tx, ty) = (c.x / 0.99, c.y / 0.99);
            (tx + 0.5 * ty / (14.0 * d), ty)
        };
        let mut rng = StdRng::seed_from_u64(3);
        let noise = Normal::new(0.0, 0.3).unwrap();
        let x: Vec<f64> = cols
            .iter()
            .map(|c| truth(c).0 + noise.sample(&mut rng))
            .collect();
        let y: Vec<f64> = cols
            .iter()
            .map(|c| truth(c).1 + noise.sample(&mut rng))
            .collect();
        let se = vec![0.3; cols.len()];
        let (sx, sy) = smoothed(&cols, (&x, &y), &se, d);
        let (mut e_raw, mut e_avg, mut n) = (0.0, 0.0, 0.0);
        let mut worst_edge: f64 = 0.0;
        for (i, c) in cols.iter().enumerate() {
            let (tx, ty) = truth(c);
            let edge = c.x.min(c.y) < 1.0 || c.x.max(c.y) > 0.99 * 14.0 * d - 1.0;
            if edge {
                worst_edge = worst_edge.max((sx[i] - tx).hypot(sy[i] - ty));
            }
            let inner = 0.99 * 3.0 * d - 1.0..=0.99 * 11.0 * d + 1.0;
            if !inner.contains(&c.x) || !inner.contains(&c.y) {
                continue;
            }
            e_raw += (x[i] - tx).powi(2) + (y[i] - ty).powi(2);
            e_avg += (sx[i] - tx).powi(2) + (sy[i] - ty).powi(2);
            n += 1.0;
        }
        let (rms_raw, rms_avg) = ((e_raw / n).sqrt(), (e_avg / n).sqrt());
        assert!(rms_raw > 0.35, "raw {rms_raw}");
        assert!(rms_avg < 0.15, "averaged {rms_avg} (raw {rms_raw})");
        // At the edge the neighbourhood is one-sided: no bias from the
        // start lattice being 1 % off (0.2 px per lattice constant there).
        assert!(worst_edge < 0.4, "edge error {worst_edge}");
    }

    #[test]
    fn classes_fixed_and_held_columns_are_kept_apart() {
        // Two classes displaced in opposite directions keep their own
        // displacement; a fixed column does not move; a held column (se
        // infinite) takes its neighbours' displacement and gives none.
        let mut cols = Vec::new();
        for j in 0..5 {
            for i in 0..5 {
                let (x, y) = (10.0 * i as f64, 10.0 * j as f64);
                cols.push(JointColumn {
                    x,
                    y,
                    class: 0,
                    fixed: false,
                });
                cols.push(JointColumn {
                    x: x + 5.0,
                    y: y + 5.0,
                    class: 1,
                    fixed: false,
                });
            }
        }
        cols[0].fixed = true;
        let x: Vec<f64> = cols
            .iter()
            .map(|c| c.x + if c.class == 0 { 0.4 } else { -0.4 })
            .collect();
        let y: Vec<f64> = cols.iter().map(|c| c.y).collect();
        let mut se = vec![0.2; cols.len()];
        se[2] = f64::INFINITY;
        let mut xin = x.clone();
        xin[2] = cols[2].x + 3.0; // a held column far off: must not pull
        let (sx, _) = smoothed(&cols, (&xin, &y), &se, 10.0);
        assert_eq!(sx[0], xin[0]);
        for (i, c) in cols.iter().enumerate().skip(1) {
            let want = c.x + if c.class == 0 { 0.4 } else { -0.4 };
            assert!(
                (sx[i] - want).abs() < 1e-9,
                "column {i}: {} vs {want}",
                sx[i]
            );
        }
    }

    #[test]
    fn columns_beyond_reach_are_moved_back_along_the_line_to_their_start() {
        let cols = [
            JointColumn {
                x: 10.0,
                y: 10.0,
                class: 0,
                fixed: false,
            },
            JointColumn {
                x: 0.0,
                y: 0.0,
                class: 0,
                fixed: false,
            },
        ];
        let (mut x, mut y) = (vec![13.0, 0.5], vec![14.0, 0.0]);
        within_reach(&cols, (&mut x, &mut y), 2.0);
        assert!((x[0] - 11.2).abs() < 1e-12 && (y[0] - 11.6).abs() < 1e-12);
        assert_eq!((x[1], y[1]), (0.5, 0.0));
    }
}
