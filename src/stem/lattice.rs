//! Peak-pair analysis (docs/methods/statistics.md; Galindo et al. 2007): local lattice
//! vectors, spacing distributions and small strain per column.
//!
//! For every column p of a sublattice and each reference cube-axis vector
//! a_i, the partner is the nearest column of the same sublattice to p + a_i
//! within 0.3|a_i| (forward) and to p − a_i (backward); the local vector
//! a_i′(p) is the mean of the forward and backward pair vectors (or the one
//! that exists). With both a₁′ and a₂′,
//! `D = [a₁′ a₂′][a₁ a₂]⁻¹ − I`, ε = ½(D + Dᵀ), ω = ½(D − Dᵀ) (small strain;
//! the polar decomposition D + I = R·U is offered as an option).
//! Columns on the particle edge simply lose pairs.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::stats::mean_sd;
use crate::stem::sublattice::k_nearest;

/// Local lattice at one column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LocalLattice {
    /// Column index in the input slice.
    pub column: usize,
    /// Local a₁′ (x, y) px, if a pair was found.
    pub a1: Option<[f64; 2]>,
    /// Local a₂′ (x, y) px, if a pair was found.
    pub a2: Option<[f64; 2]>,
    /// Strain (ε_xx, ε_yy, ε_xy) and rotation ω, when both vectors exist.
    pub strain: Option<[f64; 4]>,
}

/// Summary of a peak-pair analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeakPairs {
    /// Per column.
    pub local: Vec<LocalLattice>,
    /// Mean and s.d. of |a₁′| (px): the mean `None` without a₁′ pairs, the
    /// s.d. `None` with fewer than 2.
    pub a1_mean_sd_px: [Option<f64>; 2],
    /// Mean and s.d. of |a₂′| (px), `None` as for `a1_mean_sd_px`.
    pub a2_mean_sd_px: [Option<f64>; 2],
    /// Mean and s.d. of all |a_i′| pooled (px), `None` as for
    /// `a1_mean_sd_px`.
    pub spacing_mean_sd_px: [Option<f64>; 2],
    /// Mean strain (ε_xx, ε_yy, ε_xy, ω) over columns with both vectors;
    /// `None` when no column has both.
    pub mean_strain: Option<[f64; 4]>,
    /// Number of pair vectors found.
    pub n_pairs: usize,
}

/// Strain mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StrainMode {
    /// ε = ½(D + Dᵀ), ω = ½(D − Dᵀ).
    Small,
    /// D + I = R·U, ε = U − I, ω = sin of the rotation angle of R.
    Polar,
}

/// Peak-pair analysis of the columns at `pos` (x, y px) against the
/// reference basis `a1`, `a2` (px).
///
/// # Errors
/// A collinear or degenerate reference basis; fewer than 2 pair vectors.
pub fn peak_pairs(
    pos: &[[f64; 2]],
    a1: [f64; 2],
    a2: [f64; 2],
    mode: StrainMode,
) -> Result<PeakPairs> {
    let det = a1[0] * a2[1] - a1[1] * a2[0];
    let (l1, l2) = (a1[0].hypot(a1[1]), a2[0].hypot(a2[1]));
    if !(det.is_finite() && det.abs() > 1e-6 * l1 * l2 && l1 > 0.0 && l2 > 0.0) {
        return Err(Error::Numerical {
            what: "peak-pair analysis".into(),
            reason: "reference lattice vectors are collinear or zero".into(),
        });
    }
    // Candidate partners: the 12 nearest columns cover ±a1, ±a2 in a square
    // lattice even with missing sites.
    let nn = k_nearest(pos, 12.min(pos.len().saturating_sub(1)));
    let find = |i: usize, t: [f64; 2], tol: f64| -> Option<[f64; 2]> {
        let target = [pos[i][0] + t[0], pos[i][1] + t[1]];
        nn[i]
            .iter()
            .map(|&(j, _)| (j, (pos[j][0] - target[0]).hypot(pos[j][1] - target[1])))
            .filter(|(_, d)| *d <= tol)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(j, _)| [pos[j][0] - pos[i][0], pos[j][1] - pos[i][1]])
    };
    let inv = [[a2[1] / det, -a2[0] / det], [-a1[1] / det, a1[0] / det]]; // rows of [a1 a2]⁻¹
    let mut local = Vec::with_capacity(pos.len());
    let (mut s1, mut s2) = (Vec::new(), Vec::new());
    let mut strains = Vec::new();
    for i in 0..pos.len() {
        let pair = |a: [f64; 2], l: f64| -> Option<[f64; 2]> {
            let f = find(i, a, 0.3 * l);
            let b = find(i, [-a[0], -a[1]], 0.3 * l).map(|v| [-v[0], -v[1]]);
            match (f, b) {
                (Some(f), Some(b)) => Some([(f[0] + b[0]) / 2.0, (f[1] + b[1]) / 2.0]),
                (Some(v), None) | (None, Some(v)) => Some(v),
                _ => None,
            }
        };
        let v1 = pair(a1, l1);
        let v2 = pair(a2, l2);
        if let Some(v) = v1 {
            s1.push(v[0].hypot(v[1]));
        }
        if let Some(v) = v2 {
            s2.push(v[0].hypot(v[1]));
        }
        let strain = match (v1, v2) {
            (Some(v1), Some(v2)) => Some(local_strain(v1, v2, &inv, mode)),
            _ => None,
        };
        if let Some(s) = strain {
            strains.push(s);
        }
        local.push(LocalLattice {
            column: i,
            a1: v1,
            a2: v2,
            strain,
        });
    }
    let n_pairs = s1.len() + s2.len();
    if n_pairs < 2 {
        return Err(Error::Empty {
            what: "peak-pair analysis".into(),
            reason: format!(
                "fewer than 2 valid pairs ({n_pairs}) within 0.3|a| of the reference lattice"
            ),
        });
    }
    let ms = |v: &[f64]| mean_sd(v).map_or([None, None], |(m, s)| [Some(m), s]);
    let pooled: Vec<f64> = s1.iter().chain(&s2).copied().collect();
    Ok(PeakPairs {
        local,
        a1_mean_sd_px: ms(&s1),
        a2_mean_sd_px: ms(&s2),
        spacing_mean_sd_px: ms(&pooled),
        mean_strain: mean_strain(&strains),
        n_pairs,
    })
}

/// Strain (ε_xx, ε_yy, ε_xy) and rotation ω at a column with local vectors
/// `v1`, `v2`; `inv` holds the rows of [a₁ a₂]⁻¹.
fn local_strain(v1: [f64; 2], v2: [f64; 2], inv: &[[f64; 2]; 2], mode: StrainMode) -> [f64; 4] {
    // F = [v1 v2]·[a1 a2]⁻¹ (columns v1, v2).
    let f = [
        [
            v1[0] * inv[0][0] + v2[0] * inv[1][0],
            v1[0] * inv[0][1] + v2[0] * inv[1][1],
        ],
        [
            v1[1] * inv[0][0] + v2[1] * inv[1][0],
            v1[1] * inv[0][1] + v2[1] * inv[1][1],
        ],
    ];
    match mode {
        StrainMode::Small => {
            let d = [[f[0][0] - 1.0, f[0][1]], [f[1][0], f[1][1] - 1.0]];
            [
                d[0][0],
                d[1][1],
                0.5 * (d[0][1] + d[1][0]),
                0.5 * (d[1][0] - d[0][1]),
            ]
        }
        StrainMode::Polar => {
            // 2-D polar decomposition: R from the angle of (F₀₀ + F₁₁, F₁₀ − F₀₁).
            let th = (f[1][0] - f[0][1]).atan2(f[0][0] + f[1][1]);
            let (s, c) = th.sin_cos();
            // U = Rᵀ F
            let u = [
                [c * f[0][0] + s * f[1][0], c * f[0][1] + s * f[1][1]],
                [-s * f[0][0] + c * f[1][0], -s * f[0][1] + c * f[1][1]],
            ];
            [u[0][0] - 1.0, u[1][1] - 1.0, 0.5 * (u[0][1] + u[1][0]), s]
        }
    }
}

/// Mean of each strain component (`None` when there are none).
fn mean_strain(strains: &[[f64; 4]]) -> Option<[f64; 4]> {
    if strains.is_empty() {
        return None;
    }
    let mut ms = [0.0; 4];
    for s in strains {
        for k in 0..4 {
            ms[k] += s[k] / strains.len() as f64;
        }
    }
    Some(ms)
}

/// Histogram of values: `bins` equal bins over [lo, hi]; returns the bin
/// centres and counts.
#[must_use]
pub fn histogram(v: &[f64], lo: f64, hi: f64, bins: usize) -> (Vec<f64>, Vec<usize>) {
    let w = (hi - lo) / bins as f64;
    let mut c = vec![0usize; bins];
    for &x in v {
        if x >= lo && x <= hi && w > 0.0 {
            c[(((x - lo) / w) as usize).min(bins - 1)] += 1;
        }
    }
    ((0..bins).map(|i| lo + (i as f64 + 0.5) * w).collect(), c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(n: i64, a: f64, f: impl Fn(f64, f64) -> [f64; 2]) -> Vec<[f64; 2]> {
        let mut v = Vec::new();
        for j in 0..n {
            for i in 0..n {
                v.push(f(i as f64 * a, j as f64 * a));
            }
        }
        v
    }

    #[test]
    fn uniform_one_percent_strain() {
        // docs/methods/statistics.md: a = 5.87 Å, p = 0.1 Å/px, ε_xx = +1 %.
        let a = 58.7;
        let pos = grid(12, a, |x, y| [1.01 * x, y]);
        let r = peak_pairs(&pos, [a, 0.0], [0.0, a], StrainMode::Small).unwrap();
        assert!((r.a1_mean_sd_px[0].unwrap() * 0.1 - 5.9287).abs() < 1e-3);
        let e = r.mean_strain.unwrap();
        assert!((e[0] - 0.0100).abs() < 1e-4);
        assert!(e[1].abs() < 1e-4);
    }

    #[test]
    fn rotation_two_degrees() {
        let a = 58.7;
        let (s, c) = 2f64.to_radians().sin_cos();
        let pos = grid(12, a, |x, y| [c * x - s * y, s * x + c * y]);
        let r = peak_pairs(&pos, [a, 0.0], [0.0, a], StrainMode::Small).unwrap();
        let e = r.mean_strain.unwrap();
        assert!((e[3] - 0.03490).abs() < 1e-4);
        let want = 2f64.to_radians().cos() - 1.0;
        assert!((e[0] - want).abs() < 1e-5 && (e[1] - want).abs() < 1e-5);
        let p = peak_pairs(&pos, [a, 0.0], [0.0, a], StrainMode::Polar).unwrap();
        let e = p.mean_strain.unwrap();
        assert!(e[0].abs() < 1e-9 && (e[3] - 0.03490).abs() < 1e-4);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(peak_pairs(
            &[[0.0, 0.0], [1.0, 0.0]],
            [1.0, 0.0],
            [2.0, 0.0],
            StrainMode::Small
        )
        .is_err());
        // One column: no pairs, an error, not a panic.
        assert!(peak_pairs(&[[0.0, 0.0]], [10.0, 0.0], [0.0, 10.0], StrainMode::Small).is_err());
        assert!(peak_pairs(
            &[[0.0, 0.0], [50.0, 50.0]],
            [10.0, 0.0],
            [0.0, 10.0],
            StrainMode::Small
        )
        .is_err());
        let (c, n) = histogram(&[0.5, 1.5, 1.6], 0.0, 2.0, 2);
        assert_eq!((c, n), (vec![0.5, 1.5], vec![1, 2]));
    }
}
