//! The plateau term of the joint model: a support that is higher under the
//! particle than beside it (the particle's own diffuse scattering between
//! the columns, a ligand or oxide shell, a thicker support under it), drawn
//! as a soft step along the outline of the occupied sites:
//! `P(x) = Φ((d(x) + o)/e)`, with d the signed distance to the convex hull
//! of the sites (positive inside), o how far the step lies outside that
//! hull and e its edge width (Φ the normal CDF); its height is a linear
//! unknown of the fit, o and e nonlinear ones (docs/methods/columns.md,
//! "Plateau").
//!
//! The background grid alone cannot draw a step as sharp as the particle's
//! outline, and a lattice of broadened columns can: without this term the
//! shared class widths grow and both classes take up the plateau, the dim
//! class relatively more.
//!
//! Written here: the hull (monotone chain) and the distance to a convex
//! polygon are a few lines each; a geometry crate would add a dependency
//! for them alone.

use statrs::function::erf::erfc;

/// Convex hull of `pts` (x, y), counter-clockwise in a y-up frame, without
/// collinear points; fewer than 3 vertices when the points are collinear.
pub(super) fn convex_hull(pts: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut p: Vec<[f64; 2]> = pts
        .iter()
        .copied()
        .filter(|q| q[0].is_finite() && q[1].is_finite())
        .collect();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let cross = |o: [f64; 2], a: [f64; 2], b: [f64; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<[f64; 2]> = Vec::with_capacity(2 * p.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[f64; 2]>> = if pass == 0 {
            Box::new(p.iter())
        } else {
            Box::new(p.iter().rev())
        };
        for &q in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 1e-9
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

/// Signed distance of (x, y) to the convex polygon `hull` (counter-
/// clockwise): positive inside (the distance to the nearest edge), negative
/// outside (minus the largest distance beyond an edge's line, so corners
/// stay square, as a cube's projection does).
pub(super) fn signed_distance(hull: &[[f64; 2]], x: f64, y: f64) -> f64 {
    let n = hull.len();
    let mut d = f64::INFINITY;
    for i in 0..n {
        let (a, b) = (hull[i], hull[(i + 1) % n]);
        let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
        let len = ex.hypot(ey);
        if len <= 0.0 {
            continue;
        }
        // Inward normal of a counter-clockwise edge: (−ey, ex)/len.
        let s = (-(x - a[0]) * ey + (y - a[1]) * ex) / len;
        d = d.min(s);
    }
    d
}

/// The soft step at signed distance `d`: Φ((d + o)/e).
pub(super) fn step(d: f64, offset: f64, edge: f64) -> f64 {
    0.5 * erfc(-(d + offset) / (std::f64::consts::SQRT_2 * edge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hull_of_a_grid_is_its_corners_and_distance_is_to_the_nearest_edge() {
        let pts: Vec<[f64; 2]> = (0..5)
            .flat_map(|i| (0..4).map(move |j| [2.0 * i as f64, 3.0 * j as f64]))
            .collect();
        let h = convex_hull(&pts);
        assert_eq!(h.len(), 4, "{h:?}");
        for c in [[0.0, 0.0], [8.0, 0.0], [8.0, 9.0], [0.0, 9.0]] {
            assert!(h.contains(&c), "{h:?}");
        }
        // Inside: distance to the nearest side.
        assert!((signed_distance(&h, 1.0, 4.0) - 1.0).abs() < 1e-12);
        assert!((signed_distance(&h, 4.0, 7.5) - 1.5).abs() < 1e-12);
        // Outside a side, and beyond a corner (square corner: the larger).
        assert!((signed_distance(&h, -2.0, 4.0) + 2.0).abs() < 1e-12);
        assert!((signed_distance(&h, 11.0, 13.0) + 4.0).abs() < 1e-12);
        // The step: ½ on the outline at zero offset, Φ(1) one edge inside.
        assert!((step(0.0, 0.0, 1.5) - 0.5).abs() < 1e-12);
        assert!((step(1.5, 0.0, 1.5) - 0.841_344_746).abs() < 1e-8);
        assert!((step(0.0, 1.5, 1.5) - 0.841_344_746).abs() < 1e-8);
        // Collinear points have no area.
        assert!(convex_hull(&[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]).len() < 3);
    }
}
