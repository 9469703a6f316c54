//! Sublattice assignment for CsPbBr3 \[001\] by lattice parity (stem spec §7).
//!
//! Projected along \[001\], Cs columns sit at (0, 0) and Pb/Br columns at
//! (½, ½) of the cubic cell: together a square lattice of spacing a/√2 at 45°
//! to the cube axes (the "combined lattice", basis e₁, e₂). Indexing every
//! column as p = p₀ + h·e₁ + k·e₂, the parity of h + k separates the two
//! sublattices; the one with the higher median intensity is Pb/Br. Columns
//! at half-integer (h, k) = (½, ½) + integers are pure-Br columns.
//!
//! Basis: the nearest-neighbour vectors of every column (up to 4 within
//! 1.3× the median nearest-neighbour distance), folded into a half plane,
//! split into two directions 90° apart (the circular mean of 4θ), averaged;
//! then p₀, e₁, e₂ refined by linear least squares on every indexed column
//! (this absorbs rotation and any uniform shear). Intensity is only a
//! cross-check: each column is compared with the median of its (up to 4)
//! nearest other-class neighbours and flagged where it disagrees.
//! Intensity clustering fails under thickness gradients and is never used
//! to assign.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

/// Result of [`assign`].
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
    /// RMS indexing residual, px.
    pub residual_rms_px: f64,
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

/// Assign sublattices to columns at `pos` (x, y px) with `intensity` (the
/// volumes or heights; only used to name the classes and to cross-check).
///
/// # Errors
/// Fewer than 5 columns; no two independent lattice directions; fewer than
/// half of the columns indexable (lattice too distorted).
pub fn assign(pos: &[[f64; 2]], intensity: &[f64]) -> Result<Assignment> {
    let m = pos.len();
    if m < 5 {
        return Err(Error::Empty {
            what: "sublattice assignment".into(),
            reason: format!("need at least 5 columns, found {m}"),
        });
    }
    if intensity.len() != m {
        return Err(Error::shape(
            "column intensities",
            format!("{m} values"),
            format!("{}", intensity.len()),
        ));
    }
    let nn = k_nearest(pos, 4);
    let mut d1: Vec<f64> = nn.iter().filter_map(|v| v.first().map(|x| x.1)).collect();
    d1.sort_by(f64::total_cmp);
    let dmed = d1[d1.len() / 2];
    // Folded nearest-neighbour vectors.
    let mut vecs = Vec::new();
    for (i, list) in nn.iter().enumerate() {
        for &(j, d) in list {
            if d <= 1.3 * dmed {
                let (mut vx, mut vy) = (pos[j][0] - pos[i][0], pos[j][1] - pos[i][1]);
                if vy < 0.0 || (vy == 0.0 && vx < 0.0) {
                    vx = -vx;
                    vy = -vy;
                }
                vecs.push([vx, vy]);
            }
        }
    }
    let (mut c4, mut s4) = (0.0, 0.0);
    for v in &vecs {
        let th = v[1].atan2(v[0]);
        c4 += (4.0 * th).cos();
        s4 += (4.0 * th).sin();
    }
    if c4.hypot(s4) < 0.3 * vecs.len() as f64 {
        return Err(Error::Numerical {
            what: "sublattice assignment".into(),
            reason: "no square lattice found in the column positions (lattice too distorted or not a [001] projection)".into(),
        });
    }
    let th0 = s4.atan2(c4) / 4.0;
    let dirs = [th0, th0 + std::f64::consts::FRAC_PI_2];
    let mut sums = [[0.0f64; 2]; 2];
    let mut counts = [0usize; 2];
    for v in &vecs {
        let th = v[1].atan2(v[0]);
        for (c, &d) in dirs.iter().enumerate() {
            // Angular distance modulo π.
            let mut dd = (th - d).rem_euclid(std::f64::consts::PI);
            if dd > std::f64::consts::FRAC_PI_2 {
                dd = std::f64::consts::PI - dd;
            }
            if dd < std::f64::consts::FRAC_PI_8 {
                // Orient along the direction d.
                let s = if v[0] * d.cos() + v[1] * d.sin() >= 0.0 {
                    1.0
                } else {
                    -1.0
                };
                sums[c][0] += s * v[0];
                sums[c][1] += s * v[1];
                counts[c] += 1;
            }
        }
    }
    if counts[0] < 2 || counts[1] < 2 {
        return Err(Error::Numerical {
            what: "sublattice assignment".into(),
            reason: "could not find two independent lattice directions".into(),
        });
    }
    let mut e1 = [sums[0][0] / counts[0] as f64, sums[0][1] / counts[0] as f64];
    let mut e2 = [sums[1][0] / counts[1] as f64, sums[1][1] / counts[1] as f64];
    // Origin: the column nearest the centroid of all columns.
    let (cx, cy) = (
        pos.iter().map(|p| p[0]).sum::<f64>() / m as f64,
        pos.iter().map(|p| p[1]).sum::<f64>() / m as f64,
    );
    let o = (0..m)
        .min_by(|&a, &b| {
            let da = (pos[a][0] - cx).hypot(pos[a][1] - cy);
            let db = (pos[b][0] - cx).hypot(pos[b][1] - cy);
            da.total_cmp(&db)
        })
        .unwrap_or(0);
    let mut p0 = pos[o];
    let frac = |p: &[f64; 2], p0: &[f64; 2], e1: &[f64; 2], e2: &[f64; 2]| -> Option<(f64, f64)> {
        let det = e1[0] * e2[1] - e1[1] * e2[0];
        if det.abs() < 1e-12 {
            return None;
        }
        let (dx, dy) = (p[0] - p0[0], p[1] - p0[1]);
        Some((
            (dx * e2[1] - dy * e2[0]) / det,
            (e1[0] * dy - e1[1] * dx) / det,
        ))
    };
    let mut index: Vec<Option<(i64, i64)>> = vec![None; m];
    // Grow the indexed region outwards so a gradual distortion does not
    // alias: accept a column once its residual from the current basis is
    // small, refit the basis, repeat.
    for pass in 0..6 {
        let tol = if pass == 0 { 0.15 } else { 0.25 };
        let elen = e1[0].hypot(e1[1]).min(e2[0].hypot(e2[1]));
        let mut rows = Vec::new();
        for (i, p) in pos.iter().enumerate() {
            let Some((h, k)) = frac(p, &p0, &e1, &e2) else {
                continue;
            };
            let (hi, ki) = (h.round(), k.round());
            let res =
                ((h - hi) * e1[0] + (k - ki) * e2[0]).hypot((h - hi) * e1[1] + (k - ki) * e2[1]);
            if res <= tol * elen {
                index[i] = Some((hi as i64, ki as i64));
                rows.push((i, hi, ki));
            } else {
                index[i] = None;
            }
        }
        if rows.len() < 3 {
            break;
        }
        // Least squares: p = p0 + h e1 + k e2 (x and y separately).
        let mut ata = nalgebra::Matrix3::<f64>::zeros();
        let mut atx = nalgebra::Vector3::<f64>::zeros();
        let mut aty = nalgebra::Vector3::<f64>::zeros();
        for &(i, h, k) in &rows {
            let a = nalgebra::Vector3::new(1.0, h, k);
            ata += a * a.transpose();
            atx += a * pos[i][0];
            aty += a * pos[i][1];
        }
        let Some(inv) = ata.try_inverse() else {
            break;
        };
        let (sx, sy) = (inv * atx, inv * aty);
        p0 = [sx[0], sy[0]];
        e1 = [sx[1], sy[1]];
        e2 = [sx[2], sy[2]];
    }
    let elen = e1[0].hypot(e1[1]).min(e2[0].hypot(e2[1]));
    let mut labels = vec![Sublattice::Unassigned; m];
    let mut res2 = 0.0;
    let mut n_idx = 0usize;
    for (i, p) in pos.iter().enumerate() {
        let Some((h, k)) = frac(p, &p0, &e1, &e2) else {
            continue;
        };
        let (hi, ki) = (h.round(), k.round());
        let res = ((h - hi) * e1[0] + (k - ki) * e2[0]).hypot((h - hi) * e1[1] + (k - ki) * e2[1]);
        if res <= 0.25 * elen {
            index[i] = Some((hi as i64, ki as i64));
            res2 += res * res;
            n_idx += 1;
            labels[i] = if (hi as i64 + ki as i64).rem_euclid(2) == 0 {
                Sublattice::Cs // provisional: class "even"
            } else {
                Sublattice::PbBr // provisional: class "odd"
            };
        } else {
            index[i] = None;
            let (hh, kh) = ((h - 0.5).round() + 0.5, (k - 0.5).round() + 0.5);
            let rb =
                ((h - hh) * e1[0] + (k - kh) * e2[0]).hypot((h - hh) * e1[1] + (k - kh) * e2[1]);
            if rb <= 0.25 * elen {
                labels[i] = Sublattice::Br;
            }
        }
    }
    if n_idx * 2 < m {
        return Err(Error::Numerical {
            what: "sublattice assignment".into(),
            reason: format!(
                "lattice too distorted to assign: only {n_idx} of {m} columns lie within 0.25|e| of a lattice site"
            ),
        });
    }
    // Name the classes: the one with the higher median intensity is Pb/Br.
    let median = |v: &mut Vec<f64>| {
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut even: Vec<f64> = (0..m)
        .filter(|&i| labels[i] == Sublattice::Cs)
        .map(|i| intensity[i])
        .collect();
    let mut odd: Vec<f64> = (0..m)
        .filter(|&i| labels[i] == Sublattice::PbBr)
        .map(|i| intensity[i])
        .collect();
    if median(&mut even) > median(&mut odd) {
        for l in labels.iter_mut() {
            *l = match *l {
                Sublattice::Cs => Sublattice::PbBr,
                Sublattice::PbBr => Sublattice::Cs,
                other => other,
            };
        }
    }
    // Neighbour map for edges and the intensity check.
    let mut at = std::collections::HashMap::new();
    for (i, ix) in index.iter().enumerate() {
        if let Some(hk) = ix {
            at.insert(*hk, i);
        }
    }
    let mut edge = vec![false; m];
    let mut mismatch = vec![false; m];
    let (mut n_int, mut n_bad) = (0usize, 0usize);
    for i in 0..m {
        let Some((h, k)) = index[i] else {
            continue;
        };
        let nb: Vec<usize> = [(h + 1, k), (h - 1, k), (h, k + 1), (h, k - 1)]
            .iter()
            .filter_map(|hk| at.get(hk).copied())
            .collect();
        edge[i] = nb.len() < 4;
        if nb.is_empty() {
            continue;
        }
        let mut v: Vec<f64> = nb.iter().map(|&j| intensity[j]).collect();
        let med = median(&mut v);
        mismatch[i] = match labels[i] {
            Sublattice::Cs => intensity[i] >= med,
            Sublattice::PbBr => intensity[i] <= med,
            _ => false,
        };
        if !edge[i] {
            n_int += 1;
            n_bad += usize::from(mismatch[i]);
        }
    }
    Ok(Assignment {
        origin: p0,
        e1,
        e2,
        labels,
        index,
        edge,
        intensity_mismatch: mismatch,
        mismatch_fraction: if n_int > 0 {
            n_bad as f64 / n_int as f64
        } else {
            f64::NAN
        },
        residual_rms_px: if n_idx > 0 {
            (res2 / n_idx as f64).sqrt()
        } else {
            f64::NAN
        },
    })
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
    fn parity_is_exact_under_thickness_ramp() {
        // Spec §7: heights scaled 0.5…1.5 across the image.
        let (pos, h, lab) = lattice(12, 23.48, 0.0, 0.0, |t| 0.5 + t);
        let a = assign(&pos, &h).unwrap();
        assert_eq!(a.labels, lab);
        // 2-means on heights misclassifies a sizeable fraction (≥ 5 %).
        let mut s = h.clone();
        s.sort_by(f64::total_cmp);
        let (mut lo, mut hi) = (s[0], s[s.len() - 1]);
        for _ in 0..50 {
            let t = (lo + hi) / 2.0;
            let (a1, b1): (Vec<f64>, Vec<f64>) = h.iter().partition(|v| **v < t);
            lo = a1.iter().sum::<f64>() / a1.len() as f64;
            hi = b1.iter().sum::<f64>() / b1.len() as f64;
        }
        let t = (lo + hi) / 2.0;
        let wrong = h
            .iter()
            .zip(&lab)
            .filter(|(v, l)| (**v < t) != (**l == Sublattice::Cs))
            .count();
        assert!(wrong as f64 / h.len() as f64 >= 0.05, "{wrong}");
    }

    #[test]
    fn rotation_and_shear() {
        let (pos, h, lab) = lattice(10, 23.48, 17.0, 0.02, |_| 1.0);
        let a = assign(&pos, &h).unwrap();
        assert_eq!(a.labels, lab);
        assert!(a.residual_rms_px < 1e-9);
        assert!(a.mismatch_fraction == 0.0);
        // Corner and side columns are edges; the centre is not.
        assert!(a.edge.iter().any(|e| *e) && a.edge.iter().any(|e| !*e));
    }

    #[test]
    fn br_columns_and_off_lattice() {
        let (mut pos, mut h, mut lab) = lattice(6, 23.48, 0.0, 0.0, |_| 1.0);
        // A pure-Br column at (a/2, 0) of the cube cell (2,2), and a stray.
        pos.push([200.0 + 2.5 * 23.48, 200.0 + 2.0 * 23.48]);
        h.push(0.1);
        lab.push(Sublattice::Br);
        pos.push([200.0 + 2.3 * 23.48, 200.0 + 2.13 * 23.48]);
        h.push(0.1);
        lab.push(Sublattice::Unassigned);
        let a = assign(&pos, &h).unwrap();
        assert_eq!(a.labels, lab);
    }

    #[test]
    fn too_few_or_random_columns_fail_cleanly() {
        assert!(assign(&[[0.0, 0.0]; 3], &[1.0; 3]).is_err());
        // Pseudo-random points: no square lattice.
        let mut pos = Vec::new();
        let mut s = 12345u64;
        for _ in 0..300 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let x = (s >> 33) as f64 / (1u64 << 31) as f64 * 500.0;
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let y = (s >> 33) as f64 / (1u64 << 31) as f64 * 500.0;
            pos.push([x, y]);
        }
        let e = assign(&pos, &vec![1.0; 300]).unwrap_err();
        assert!(e.to_string().contains("lattice"), "{e}");
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
