//! Sublattice labels of CsPbBr3 \[001\] columns, the assignment record that
//! the outputs write, and the separation check (docs/methods/columns.md).
//!
//! Projected along \[001\], Cs columns sit at (0, 0) and Pb/Br columns at
//! (½, ½) of the cubic cell: together a square lattice of spacing a/√2 at 45°
//! to the cube axes (the "combined lattice", basis e₁, e₂), index (h, k);
//! a column's four other-class neighbours are at (h ± 1, k), (h, k ± 1).
//! The labels themselves come from the lattice sites of
//! [`crate::stem::detect`] (the parity split of whatever maxima were found,
//! used before, is gone: it split one sublattice in two when the dim one
//! was missed). [`separation`] checks that every interior Cs (Pb/Br) column
//! is darker (brighter) than the median of its four other-class neighbours:
//! robust to thickness gradients, unlike a global intensity threshold.

use serde::{Deserialize, Serialize};

/// Sublattice label of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sublattice {
    /// Cs column (corner of the cubic cell).
    Cs,
    /// Mixed Pb/Br column (brightest).
    PbBr,
    /// Pure Br column.
    Br,
    /// Not on the lattice (residual > 0.25|e| from any site).
    Unassigned,
}

impl Sublattice {
    /// Name used in tables: `cs`, `pbbr`, `br`, `unassigned`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Sublattice::Cs => "cs",
            Sublattice::PbBr => "pbbr",
            Sublattice::Br => "br",
            Sublattice::Unassigned => "unassigned",
        }
    }
}

/// The sublattice assignment of a column set (built by the column chain,
/// `stem::columns`, from the detected lattice).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    /// Origin p₀ (x, y) px.
    pub origin: [f64; 2],
    /// Combined-lattice basis e₁ (x, y) px.
    pub e1: [f64; 2],
    /// Combined-lattice basis e₂ (x, y) px.
    pub e2: [f64; 2],
    /// Label of every column (input order).
    pub labels: Vec<Sublattice>,
    /// Integer combined-lattice index (h, k) of every Cs / Pb/Br column.
    pub index: Vec<Option<(i64, i64)>>,
    /// Column misses at least one of its 4 nearest other-class neighbours.
    pub edge: Vec<bool>,
    /// Intensity disagrees with the parity label (Cs brighter, or Pb/Br
    /// darker, than the median of its other-class neighbours).
    pub intensity_mismatch: Vec<bool>,
    /// Fraction of interior Cs/Pb/Br columns with an intensity mismatch.
    pub mismatch_fraction: f64,
    /// RMS indexing residual, px; `None` without indexed columns.
    pub residual_rms_px: Option<f64>,
}

impl Assignment {
    /// Cube-axis lattice vectors a₁ = e₁ + e₂, a₂ = e₂ − e₁ (px).
    #[must_use]
    pub fn cube_axes(&self) -> ([f64; 2], [f64; 2]) {
        (
            [self.e1[0] + self.e2[0], self.e1[1] + self.e2[1]],
            [self.e2[0] - self.e1[0], self.e2[1] - self.e1[1]],
        )
    }
}

/// Indices of the `k` nearest other points of each point (brute force on a
/// grid of cells; O(M) for uniform densities).
pub fn k_nearest(pos: &[[f64; 2]], k: usize) -> Vec<Vec<(usize, f64)>> {
    if pos.is_empty() {
        return Vec::new();
    }
    if k == 0 {
        return vec![Vec::new(); pos.len()];
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for p in pos {
        x0 = x0.min(p[0]);
        y0 = y0.min(p[1]);
        x1 = x1.max(p[0]);
        y1 = y1.max(p[1]);
    }
    let area = ((x1 - x0) * (y1 - y0)).max(1.0);
    let cell = (area / pos.len() as f64 * 4.0).sqrt().max(1.0);
    let gx = ((x1 - x0) / cell) as usize + 1;
    let gy = ((y1 - y0) / cell) as usize + 1;
    let mut grid = vec![Vec::new(); gx * gy];
    let cell_of = |p: &[f64; 2]| (((p[0] - x0) / cell) as usize, ((p[1] - y0) / cell) as usize);
    for (i, p) in pos.iter().enumerate() {
        let (cx, cy) = cell_of(p);
        grid[cy * gx + cx].push(i);
    }
    pos.iter()
        .enumerate()
        .map(|(i, p)| {
            let (cx, cy) = cell_of(p);
            let mut ring = 1usize;
            loop {
                let mut found: Vec<(usize, f64)> = Vec::new();
                for yy in cy.saturating_sub(ring)..=(cy + ring).min(gy - 1) {
                    for xx in cx.saturating_sub(ring)..=(cx + ring).min(gx - 1) {
                        for &j in &grid[yy * gx + xx] {
                            if j != i {
                                let d = (pos[j][0] - p[0]).hypot(pos[j][1] - p[1]);
                                found.push((j, d));
                            }
                        }
                    }
                }
                found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                // Exact once the k-th distance is within the searched ring.
                let covered = (ring as f64) * cell;
                let all = ring >= gx.max(gy);
                if all || (found.len() >= k && found[k - 1].1 <= covered) {
                    found.truncate(k);
                    return found;
                }
                ring += 1;
            }
        })
        .collect()
}

/// One column as the separation check sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassedColumn {
    /// Combined-lattice index (h, k); other-class neighbours at (h ± 1, k)
    /// and (h, k ± 1).
    pub index: Option<(i64, i64)>,
    /// Label.
    pub sublattice: Sublattice,
    /// Intensity (volume); `None` when not available (a failed fit).
    pub intensity: Option<f64>,
    /// Checked (an interior column that enters the ratio).
    pub checked: bool,
}

/// Each checked Cs (Pb/Br) column must be darker (brighter) than the
/// median of its four other-class neighbours. Returns the columns that
/// disagree and their fraction among the checked columns with four
/// neighbours (0 when there are none).
#[must_use]
pub fn separation(cols: &[ClassedColumn]) -> (Vec<bool>, f64) {
    let at: std::collections::HashMap<(i64, i64), usize> = cols
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.index.map(|ix| (ix, i)))
        .collect();
    let mut bad = vec![false; cols.len()];
    let (mut n, mut nbad) = (0usize, 0usize);
    for (i, c) in cols.iter().enumerate() {
        let Some((h, k)) = c.index else { continue };
        if !c.checked {
            continue;
        }
        let mut nb: Vec<f64> = [(h + 1, k), (h - 1, k), (h, k + 1), (h, k - 1)]
            .iter()
            .filter_map(|ix| at.get(ix).and_then(|&j| cols[j].intensity))
            .filter(|v| v.is_finite())
            .collect();
        if nb.len() < 4 {
            continue;
        }
        nb.sort_by(f64::total_cmp);
        let m = 0.5 * (nb[1] + nb[2]);
        let ok = match c.sublattice {
            Sublattice::PbBr => c.intensity.is_some_and(|v| v > m),
            Sublattice::Cs => c.intensity.is_some_and(|v| v < m),
            _ => true,
        };
        n += 1;
        if !ok {
            bad[i] = true;
            nbad += 1;
        }
    }
    (bad, nbad as f64 / n.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Combined lattice n×n cube cells, rotated by `deg`, sheared by `shear`,
    /// with the truth label; heights Cs 0.35, Pb/Br 1 scaled by `ramp(x)`.
    pub(crate) fn lattice(
        n: i64,
        a: f64,
        deg: f64,
        shear: f64,
        ramp: impl Fn(f64) -> f64,
    ) -> (Vec<[f64; 2]>, Vec<f64>, Vec<Sublattice>) {
        let (s, c) = deg.to_radians().sin_cos();
        let (mut pos, mut h, mut lab) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..=n {
            for j in 0..=n {
                for (du, dv, l, hh) in [
                    (0.0, 0.0, Sublattice::Cs, 0.35),
                    (0.5, 0.5, Sublattice::PbBr, 1.0),
                ] {
                    let (u, v) = ((i as f64 + du) * a, (j as f64 + dv) * a);
                    if l == Sublattice::PbBr && (i == n || j == n) {
                        continue;
                    }
                    let u = u + shear * v;
                    let x = 200.0 + c * u - s * v;
                    let y = 200.0 + s * u + c * v;
                    pos.push([x, y]);
                    h.push(hh * ramp(u / (n as f64 * a)));
                    lab.push(l);
                }
            }
        }
        (pos, h, lab)
    }

    #[test]
    fn separation_flags_a_column_on_the_wrong_side() {
        // 5×5 checkerboard, Pb/Br 1.0 on even h + k, Cs 0.4 on odd; one Cs
        // at 1.2 is flagged, the fraction is over the checked columns.
        let mut cols = Vec::new();
        for h in 0..5i64 {
            for k in 0..5i64 {
                let pb = (h + k) % 2 == 0;
                cols.push(ClassedColumn {
                    index: Some((h, k)),
                    sublattice: if pb { Sublattice::PbBr } else { Sublattice::Cs },
                    intensity: Some(if (h, k) == (2, 1) {
                        1.2
                    } else if pb {
                        1.0
                    } else {
                        0.4
                    }),
                    checked: true,
                });
            }
        }
        let (bad, frac) = separation(&cols);
        assert!(bad[2 * 5 + 1]);
        assert_eq!(bad.iter().filter(|b| **b).count(), 1);
        // Interior columns (4 neighbours): 3×3 = 9.
        assert!((frac - 1.0 / 9.0).abs() < 1e-12, "{frac}");
    }

    #[test]
    fn k_nearest_matches_brute_force() {
        let (pos, _, _) = lattice(5, 10.0, 7.0, 0.0, |_| 1.0);
        let nn = k_nearest(&pos, 4);
        for (i, p) in pos.iter().enumerate() {
            let mut d: Vec<f64> = pos
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, q)| (q[0] - p[0]).hypot(q[1] - p[1]))
                .collect();
            d.sort_by(f64::total_cmp);
            for k in 0..4 {
                assert!((nn[i][k].1 - d[k]).abs() < 1e-12);
            }
        }
    }
}
