//! Rigid-body removal (docs/methods/phonon.md): the SI's "iterative closest
//! point" with known correspondence reduces to one Kabsch superposition per
//! frame, iterated to the mean structure.
//!
//! Per frame with weights w_i: centre c = Σw r/Σw, H = Σ w_i X_i Y_iᵀ with
//! X = r − c, Y = y_ref − c_ref, SVD H = UΣVᵀ, d = sign det(VUᵀ),
//! R = V diag(1, 1, d) Uᵀ (never a reflection). Aligned r′ = R(r − c).
//! Velocities (`project`): v′ = R[(v − v_com) − Ω × (r − c)], Ω = I⁻¹L about
//! c, which removes all six rigid degrees of freedom.

use nalgebra::{Matrix3, Vector3};

use crate::structure::Element;

/// Element masses (amu) by symbol: the elements qdscope builds
/// ([`Element::mass_amu`]) and a few more a trajectory may hold; `None`
/// for a symbol without one.
#[must_use]
pub fn mass_amu(element: &str) -> Option<f64> {
    Some(match element {
        "Cs" => Element::Cs.mass_amu(),
        "Pb" => Element::Pb.mass_amu(),
        "Br" => Element::Br.mass_amu(),
        "Ca" => Element::Ca.mass_amu(),
        "Cl" => 35.453,
        "I" => 126.90447,
        "H" => 1.00794,
        "C" => 12.0107,
        "N" => 14.0067,
        "O" => 15.9994,
        _ => return None,
    })
}

/// Weighted centre.
#[must_use]
pub fn centre(r: &[[f64; 3]], w: &[f64]) -> Vector3<f64> {
    let mut c = Vector3::zeros();
    let mut sw = 0.0;
    for (p, wi) in r.iter().zip(w) {
        c += Vector3::from(*p) * *wi;
        sw += wi;
    }
    c / sw
}

/// Kabsch rotation R (3×3, det +1) and centre c of `r` that best maps
/// `r − c` onto `reference` (already centred at its weighted centre).
#[must_use]
pub fn kabsch(
    r: &[[f64; 3]],
    reference_centred: &[Vector3<f64>],
    w: &[f64],
) -> (Matrix3<f64>, Vector3<f64>) {
    let c = centre(r, w);
    let mut h = Matrix3::zeros();
    for ((p, y), wi) in r.iter().zip(reference_centred).zip(w) {
        let x = Vector3::from(*p) - c;
        h += x * y.transpose() * *wi;
    }
    let svd = h.svd(true, true);
    let (u, vt) = match (svd.u, svd.v_t) {
        (Some(u), Some(vt)) => (u, vt),
        _ => return (Matrix3::identity(), c),
    };
    let v = vt.transpose();
    let d = (v * u.transpose()).determinant().signum();
    let d = if d == 0.0 { 1.0 } else { d };
    let rot = v * Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, d)) * u.transpose();
    (rot, c)
}

/// Aligned positions R(r − c).
#[must_use]
pub fn apply(r: &[[f64; 3]], rot: &Matrix3<f64>, c: &Vector3<f64>) -> Vec<Vector3<f64>> {
    r.iter().map(|p| rot * (Vector3::from(*p) - c)).collect()
}

/// Project out centre-of-mass translation and rigid rotation from
/// velocities and rotate into the reference frame:
/// v′ = R[(v − v_com) − Ω × (r − c)], with masses `m`.
#[must_use]
pub fn project_velocities(
    r: &[[f64; 3]],
    v: &[[f64; 3]],
    m: &[f64],
    rot: &Matrix3<f64>,
    c: &Vector3<f64>,
) -> Vec<[f64; 3]> {
    let mt: f64 = m.iter().sum();
    let mut vcom = Vector3::zeros();
    for (vi, mi) in v.iter().zip(m) {
        vcom += Vector3::from(*vi) * *mi;
    }
    vcom /= mt;
    let mut l = Vector3::zeros();
    let mut inertia = Matrix3::zeros();
    for ((ri, vi), mi) in r.iter().zip(v).zip(m) {
        let x = Vector3::from(*ri) - c;
        let u = Vector3::from(*vi) - vcom;
        l += x.cross(&u) * *mi;
        inertia += (Matrix3::identity() * x.dot(&x) - x * x.transpose()) * *mi;
    }
    let omega = inertia
        .try_inverse()
        .map_or(Vector3::zeros(), |inv| inv * l);
    r.iter()
        .zip(v)
        .map(|(ri, vi)| {
            let x = Vector3::from(*ri) - c;
            let u = Vector3::from(*vi) - vcom - omega.cross(&x);
            let w = rot * u;
            [w[0], w[1], w[2]]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Rotation3;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[test]
    fn t9_kabsch_recovers_rotation_and_translation() {
        let mut rng = StdRng::seed_from_u64(9);
        let cloud: Vec<[f64; 3]> = (0..50)
            .map(|_| {
                [
                    rng.gen_range(-5.0..5.0),
                    rng.gen_range(-5.0..5.0),
                    rng.gen_range(-5.0..5.0),
                ]
            })
            .collect();
        let w: Vec<f64> = (0..50)
            .map(|i| if i % 2 == 0 { 132.9 } else { 79.9 })
            .collect();
        let c0 = centre(&cloud, &w);
        let reference: Vec<Vector3<f64>> = cloud.iter().map(|p| Vector3::from(*p) - c0).collect();
        for (axis, angle) in [
            (Vector3::new(1.0, 2.0, 3.0), 0.7),
            (Vector3::new(0.0, 0.0, 1.0), 3.1),
        ] {
            let rot = Rotation3::from_axis_angle(&nalgebra::Unit::new_normalize(axis), angle);
            let t = Vector3::new(3.0, -7.0, 11.0);
            let moved: Vec<[f64; 3]> = cloud
                .iter()
                .map(|p| {
                    let q = rot * Vector3::from(*p) + t;
                    [q[0], q[1], q[2]]
                })
                .collect();
            let (r, c) = kabsch(&moved, &reference, &w);
            assert!((r - rot.matrix().transpose()).abs().max() < 1e-12);
            assert!((r.determinant() - 1.0).abs() < 1e-12);
            let aligned = apply(&moved, &r, &c);
            let rmsd = aligned
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).norm_squared())
                .sum::<f64>();
            assert!(rmsd.sqrt() < 1e-10);
        }
        // A mirrored cloud needs the det fix: R stays a proper rotation.
        let mirrored: Vec<[f64; 3]> = cloud.iter().map(|p| [-p[0], p[1], p[2]]).collect();
        let (r, _) = kabsch(&mirrored, &reference, &w);
        assert!((r.determinant() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn rigid_motion_velocities_vanish() {
        let mut rng = StdRng::seed_from_u64(2);
        let r: Vec<[f64; 3]> = (0..20)
            .map(|_| {
                [
                    rng.gen_range(-5.0..5.0),
                    rng.gen_range(-5.0..5.0),
                    rng.gen_range(-5.0..5.0),
                ]
            })
            .collect();
        let m: Vec<f64> = (0..20).map(|i| 50.0 + i as f64).collect();
        let c = centre(&r, &m);
        let omega = Vector3::new(0.01, -0.02, 0.005);
        let vt = Vector3::new(0.1, 0.2, -0.3);
        let v: Vec<[f64; 3]> = r
            .iter()
            .map(|p| {
                let u = vt + omega.cross(&(Vector3::from(*p) - c));
                [u[0], u[1], u[2]]
            })
            .collect();
        let p = project_velocities(&r, &v, &m, &Matrix3::identity(), &c);
        assert!(p.iter().all(|x| x.iter().all(|c| c.abs() < 1e-12)));
        assert_eq!(mass_amu("Xx"), None);
    }
}
