//! Frozen-phonon displacements (docs/methods/multislice.md, Einstein model): every
//! atom of every unit cell gets independent Gaussian x/y displacements with
//! its element's per-axis RMS; atoms keep their nominal slice.
//!
//! Random streams ([`RNG_SCHEME`](super::params::RNG_SCHEME) 2): one per (seed, configuration, layer,
//! slice, cell offset from the scanned cell (0, 0)), seeded through
//! SplitMix64 finalisers. Hence results do not depend on threads or shards;
//! two supercells of different size give the cells they share around the
//! probe (offsets within ±⌊n/2⌋ of the smaller one) the same displacements,
//! so the 5×5 → 7×7 u.c. convergence check (docs/methods/multislice.md) is a paired
//! comparison; and every atom draws two standard normals scaled by its
//! element's RMS, so runs that differ only in the RMS values share their
//! draws as well (the paired sensitivity runs).

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::multislice::params::SimParams;
use crate::structure::{perovskite_planes_001, Element};

/// Signed offset of cell `i` from cell 0 in a periodic row of `n` cells:
/// 0, 1, …, ⌊n/2⌋, then −⌈n/2⌉ + 1, …, −1.
fn cell_offset(i: usize, n: usize) -> i64 {
    if 2 * i <= n {
        i as i64
    } else {
        i as i64 - n as i64
    }
}

/// The random stream of one (configuration, layer, slice, cell offset):
/// SplitMix64 finalisers chained over the fields give the seed.
fn cell_rng(seed: u64, k: usize, layer: usize, slice: usize, d: [i64; 2]) -> rand::rngs::StdRng {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let fields = [
        k as u64,
        layer as u64,
        slice as u64,
        d[0] as u64,
        d[1] as u64,
    ];
    let h = fields.iter().fold(mix(seed), |h, &f| {
        mix(h ^ f.wrapping_add(0x9E37_79B9_7F4A_7C15))
    });
    rand::rngs::StdRng::seed_from_u64(h)
}

/// The atoms of slice `slice` (0 or 1) of every unit cell of layer `layer`
/// of configuration `k`: (element, (y, x) Å), displaced. A cell's atoms are
/// plane `slice` of [`perovskite_planes_001`], drawn in its order.
pub(crate) fn layer_atoms(
    p: &SimParams,
    k: usize,
    layer: usize,
    slice: usize,
) -> Vec<(Element, [f64; 2])> {
    let a = p.lattice_angstrom;
    let planes = perovskite_planes_001();
    let basis = &planes[slice];
    let n = p.supercell_uc;
    let l = a * n as f64;
    let mut out = Vec::with_capacity(n * n * basis.len());
    for i in 0..n {
        for j in 0..n {
            let d = [cell_offset(i, n), cell_offset(j, n)];
            let mut rng = cell_rng(p.seed, k, layer, slice, d);
            for &(e, u) in basis {
                let rms = match e {
                    Element::Cs => p.displacement_angstrom[0],
                    Element::Pb => p.displacement_angstrom[1],
                    _ => p.displacement_angstrom[2],
                };
                let dy: f64 = StandardNormal.sample(&mut rng);
                let dx: f64 = StandardNormal.sample(&mut rng);
                let y = ((i as f64 + u[0]) * a + rms * dy).rem_euclid(l);
                let x = ((j as f64 + u[1]) * a + rms * dx).rem_euclid(l);
                out.push((e, [y, x]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multislice::params::RNG_SCHEME;
    use crate::optics::Microscope;

    fn params(n: usize, rms: [f64; 3]) -> SimParams {
        SimParams {
            microscope: Microscope::default(),
            detectors: vec![(35.0, 190.0)],
            blur_angstrom: 0.3,
            max_thickness_uc: 30,
            lattice_angstrom: crate::structure::LATTICE_ANGSTROM,
            supercell_uc: n,
            grid_n: 256,
            probe_per_cell: 24,
            symmetry_wedge: true,
            phonons: 20,
            defocus_nodes: 5,
            displacement_angstrom: rms,
            seed: 7,
            prism_interpolation: None,
            potential_oversampling: 1,
            double_precision: false,
            rng_scheme: RNG_SCHEME,
        }
    }

    /// Displacement (y, x), Å, of every atom of the cell at offset `d` from
    /// its site, the supercell period removed.
    fn cell_displacements(
        p: &SimParams,
        k: usize,
        t: usize,
        s: usize,
        d: [i64; 2],
    ) -> Vec<[f64; 2]> {
        let n = p.supercell_uc;
        let a = p.lattice_angstrom;
        let planes = perovskite_planes_001();
        let basis = &planes[s];
        let per = basis.len();
        let idx = |o: i64| o.rem_euclid(n as i64) as usize;
        let (i, j) = (idx(d[0]), idx(d[1]));
        let atoms = layer_atoms(p, k, t, s);
        let first = (i * n + j) * per;
        atoms[first..first + per]
            .iter()
            .zip(basis)
            .map(|((_, r), (_, u))| {
                let l = a * n as f64;
                let w = |v: f64| (v + l / 2.0).rem_euclid(l) - l / 2.0;
                [
                    w(r[0] - (i as f64 + u[0]) * a),
                    w(r[1] - (j as f64 + u[1]) * a),
                ]
            })
            .collect()
    }

    #[test]
    fn offsets_are_signed_and_periodic() {
        let o: Vec<i64> = (0..5).map(|i| cell_offset(i, 5)).collect();
        assert_eq!(o, [0, 1, 2, -2, -1]);
        let o: Vec<i64> = (0..4).map(|i| cell_offset(i, 4)).collect();
        assert_eq!(o, [0, 1, 2, -1]);
        assert_eq!(cell_offset(0, 1), 0);
    }

    #[test]
    fn supercells_share_the_cells_around_the_probe() {
        let rms = [0.224, 0.158, 0.224];
        let (p5, p7) = (params(5, rms), params(7, rms));
        for (k, t, s) in [(0, 0, 0), (3, 14, 1), (19, 29, 0)] {
            for di in -3i64..=3 {
                for dj in -3i64..=3 {
                    let d7 = cell_displacements(&p7, k, t, s, [di, dj]);
                    if di.abs() <= 2 && dj.abs() <= 2 {
                        let d5 = cell_displacements(&p5, k, t, s, [di, dj]);
                        for (u, v) in d5.iter().zip(&d7) {
                            // Equal up to the rounding of the wrapped coordinates.
                            assert!(
                                (u[0] - v[0]).abs() < 1e-12 && (u[1] - v[1]).abs() < 1e-12,
                                "{k} {t} {s} {di} {dj}"
                            );
                        }
                    }
                }
            }
            // Another configuration, layer or slice draws anew.
            let a = cell_displacements(&p5, k, t, s, [0, 0]);
            let b = cell_displacements(&p5, k + 1, t, s, [0, 0]);
            assert!(a[0] != b[0]);
        }
    }

    #[test]
    fn scaled_rms_scales_the_same_draws_and_zero_rms_leaves_the_crystal() {
        let p = params(5, [0.224, 0.158, 0.224]);
        let q = params(5, [0.224 * 1.5, 0.158 * 1.5, 0.224 * 1.5]);
        let z = params(5, [0.0; 3]);
        for d in [[0, 0], [2, -1], [-2, -2]] {
            let (u, v, w) = (
                cell_displacements(&p, 2, 5, 1, d),
                cell_displacements(&q, 2, 5, 1, d),
                cell_displacements(&z, 2, 5, 1, d),
            );
            for ((u, v), w) in u.iter().zip(&v).zip(&w) {
                for c in 0..2 {
                    assert!((1.5 * u[c] - v[c]).abs() < 1e-12);
                    assert!(w[c].abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn displacements_have_the_element_rms() {
        // 4 configurations × 30 layers × 7×7 cells: 5880 Cs, 5880 Pb and
        // 17640 Br atoms, 2 axes each. The sample RMS of m normal draws has
        // relative s.d. ≈ 1/√(2m) (0.65 % for Cs and Pb): 3 % is a > 4σ bound.
        let rms = [0.2, 0.1, 0.3];
        let p = params(7, rms);
        let mut sum = [[0.0f64; 2]; 3];
        for k in 0..4 {
            for t in 0..30 {
                for s in 0..2 {
                    for di in -3..=3 {
                        for dj in -3..=3 {
                            let d = cell_displacements(&p, k, t, s, [di, dj]);
                            for ((e, _), d) in perovskite_planes_001()[s].iter().zip(d) {
                                let i = match e {
                                    Element::Cs => 0,
                                    Element::Pb => 1,
                                    _ => 2,
                                };
                                sum[i][0] += d[0] * d[0] + d[1] * d[1];
                                sum[i][1] += 2.0;
                            }
                        }
                    }
                }
            }
        }
        for (i, r) in rms.iter().enumerate() {
            let got = (sum[i][0] / sum[i][1]).sqrt();
            assert!(
                (got / r - 1.0).abs() < 0.03,
                "element {i}: RMS {got} vs {r}"
            );
        }
    }
}
