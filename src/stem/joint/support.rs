//! The support between the columns under the robust volume refit: its
//! mean excess over the model and the share of it the columns took up
//! (docs/methods/columns.md, "The support's mean under the columns").

use super::linear::{add_columns, columns_adjoint, columns_diagonal, pcg, Stamps};
use super::region::Region;

/// The column weights W (volumes per unit stamp) that a level `level`
/// over the whole region adds to the columns when the background is held:
/// the solution of (GᵀWG)·x = level·GᵀW·1 over the stamps G alone
/// (Jacobi-preconditioned CG). See [`support_excess`].
pub(super) fn volume_shift(reg: &Region, st: &Stamps, level: f64) -> Vec<f64> {
    let w = &reg.weight;
    let mut m = vec![0.0; reg.px.len()];
    let mut apply = |x: &[f64], out: &mut [f64]| {
        m.fill(0.0);
        add_columns(st, x, &mut m);
        for (v, w) in m.iter_mut().zip(w) {
            *v *= w;
        }
        out.copy_from_slice(&columns_adjoint(st, &m));
    };
    let rhs = columns_adjoint(st, &w.iter().map(|w| level * w).collect::<Vec<f64>>());
    let minv: Vec<f64> = columns_diagonal(st, w)
        .into_iter()
        .map(|d| if d > 0.0 { 1.0 / d } else { 0.0 })
        .collect();
    let mut x = vec![0.0; st.len()];
    pcg(&mut apply, &rhs, &minv, &mut x, 200);
    x
}

/// Fewest support pixels for [`support_excess`].
pub(super) const MIN_SUPPORT_PIXELS: usize = 100;

/// The mean residual of the support between the columns: region pixels
/// farther than 2σ (of its class, in the shared shape's metric) from every
/// column and, given `inside` (signed distances to the particle's outline,
/// positive inside), inside the outline. `None` with fewer than
/// [`MIN_SUPPORT_PIXELS`] such pixels.
///
/// Why: with Tukey weights the background follows a robust location of
/// the support, not its mean. Where the support's texture is skewed (a
/// sparse set of bright blobs on amorphous carbon), that location lies
/// below the mean: blobs between the columns are rejected, and blobs under
/// a column are not (the column takes them up), so every column gains the
/// same volume and the dim class relatively more. The mean residual of the
/// support between the columns measures that level; the fit takes it back
/// out of the volumes ([`volume_shift`]). For a symmetric texture or plain
/// noise it is zero.
pub(super) fn support_excess(
    st: &Stamps,
    sigma_of: &dyn Fn(usize) -> f64,
    resid: &[f64],
    inside: &[f64],
) -> Option<(f64, usize)> {
    let mut near = vec![false; resid.len()];
    for i in 0..st.len() {
        let s2 = 4.0 * sigma_of(i).powi(2);
        for (k, r2) in st.column_r2(i) {
            if r2 <= s2 {
                near[k] = true;
            }
        }
    }
    let (sum, count) = resid
        .iter()
        .enumerate()
        .filter(|(k, _)| !near[*k] && inside.get(*k).is_none_or(|d| *d > 0.0))
        .fold((0.0, 0usize), |(a, c), (_, r)| (a + r, c + 1));
    (count >= MIN_SUPPORT_PIXELS).then(|| (sum / count as f64, count))
}

#[cfg(test)]
mod tests {
    use super::super::linear::{stamps, Shape};
    use super::super::region::build_region;
    use super::super::JointColumn;
    use super::*;
    use ndarray::Array2;
    use rand::{rngs::StdRng, SeedableRng};
    use rand_distr::{Distribution, Normal};

    fn columns(pts: &[(f64, f64)]) -> Vec<JointColumn> {
        pts.iter()
            .map(|&(x, y)| JointColumn {
                x,
                y,
                class: 0,
                fixed: false,
            })
            .collect()
    }

    /// Region and stamps (reach 5σ, so truncation is < 1e-5) of `cols`.
    fn setup(n: usize, cols: &[JointColumn], s: f64) -> (Region, Stamps) {
        let img = Array2::<f64>::zeros((n, n));
        let reg = build_region(img.view(), cols, 5.0 * s, (8.0, None), None).unwrap();
        let x: Vec<f64> = cols.iter().map(|c| c.x).collect();
        let y: Vec<f64> = cols.iter().map(|c| c.y).collect();
        let st = stamps(
            &reg,
            &x,
            &y,
            &vec![0; cols.len()],
            &[s],
            &[s],
            5.0,
            Shape::ROUND,
        );
        (reg, st)
    }

    #[test]
    fn volume_shift_of_a_level_is_what_the_columns_take_up() {
        // An isolated column of width σ takes up 4πσ²·level of a level
        // (least squares of a unit-volume Gaussian against a constant).
        let s = 3.0;
        let (reg, st) = setup(64, &columns(&[(32.2, 31.7)]), s);
        let w = volume_shift(&reg, &st, 2.0);
        let expect = 2.0 * 4.0 * std::f64::consts::PI * s * s;
        assert!((w[0] / expect - 1.0).abs() < 2e-3, "{} vs {expect}", w[0]);
        // Overlapping columns on a square lattice of spacing d (σ = 0.45d)
        // share the level: each interior column takes d²·level, not the
        // 4πσ²·level (2.5 × more) of an isolated one.
        let d = 8.0;
        let pts: Vec<(f64, f64)> = (0..14)
            .flat_map(|j| (0..14).map(move |i| (8.0 + d * i as f64, 8.0 + d * j as f64)))
            .collect();
        let (reg, st) = setup(128, &columns(&pts), 0.45 * d);
        let w = volume_shift(&reg, &st, 2.0);
        for (k, &(x, y)) in pts.iter().enumerate() {
            if (40.0..=80.0).contains(&x) && (40.0..=80.0).contains(&y) {
                assert!(
                    (w[k] / (2.0 * d * d) - 1.0).abs() < 0.01,
                    "column at ({x}, {y}): {} vs {}",
                    w[k],
                    2.0 * d * d
                );
            }
        }
    }

    #[test]
    fn support_excess_is_the_mean_residual_between_the_columns() {
        // Residuals: unit noise everywhere, +3 on the support (beyond 2σ of
        // every column), +50 near the columns (what the columns took up is
        // not the support's), +100 outside the outline.
        let s = 2.0;
        let pts: Vec<(f64, f64)> = (0..5)
            .flat_map(|j| (0..5).map(move |i| (20.0 + 20.0 * i as f64, 20.0 + 20.0 * j as f64)))
            .collect();
        let cols = columns(&pts);
        let (reg, st) = setup(128, &cols, s);
        let mut rng = StdRng::seed_from_u64(11);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let inside: Vec<f64> = reg.px.iter().map(|&(_, x)| 90.0 - x as f64).collect();
        let resid: Vec<f64> = reg
            .px
            .iter()
            .zip(&inside)
            .map(|(&(y, x), d)| {
                let r2 = pts
                    .iter()
                    .map(|&(cx, cy)| (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2))
                    .fold(f64::INFINITY, f64::min);
                noise.sample(&mut rng)
                    + if *d <= 0.0 {
                        100.0
                    } else if r2 <= 4.0 * s * s {
                        50.0
                    } else {
                        3.0
                    }
            })
            .collect();
        let (level, count) = support_excess(&st, &|_| s, &resid, &inside).unwrap();
        assert!((level - 3.0).abs() < 0.1, "level {level} over {count} px");
        // Without an outline every support pixel counts.
        let (all, _) = support_excess(&st, &|_| s, &resid, &[]).unwrap();
        assert!(all > 10.0, "{all}");
        // Columns that cover the region leave no support: no level.
        assert!(support_excess(&st, &|_| 12.0, &resid, &inside).is_none());
    }
}
