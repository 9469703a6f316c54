//! Thickness series on small grids: symmetry of the zero-phonon image,
//! wedge = full scan, shard/merge = one run, thread independence, ratios.
use qdscope::multislice::image::{cell_images, series};
use qdscope::multislice::merge::merge;
use qdscope::multislice::series::{positions, run_shard, SimParams, RNG_SCHEME};
use qdscope::optics::Microscope;

fn small() -> SimParams {
    SimParams {
        microscope: Microscope {
            energy_spread_ev: 0.8,
            source_size_angstrom: 0.25,
            ..Microscope::default()
        },
        detectors: vec![(35.0, 190.0)],
        blur_angstrom: 0.3,
        max_thickness_uc: 3,
        lattice_angstrom: 5.87,
        supercell_uc: 1,
        grid_n: 180,
        probe_per_cell: 24,
        symmetry_wedge: false,
        phonons: 1,
        defocus_nodes: 1,
        displacement_angstrom: [0.0; 3],
        seed: 1,
        prism_interpolation: None,
        potential_oversampling: 1,
        double_precision: false,
        rng_scheme: RNG_SCHEME,
    }
}

#[test]
fn zero_phonon_image_has_4mm_symmetry_and_the_wedge_agrees() {
    let p = small();
    let full = run_shard(&p, (0, 1), &|| {}).unwrap();
    let imgs = cell_images(&full, 0).unwrap();
    let n = p.probe_per_cell;
    for img in &imgs {
        let max = img.iter().copied().fold(0.0, f64::max);
        for i in 0..n {
            for j in 0..n {
                let v = img[[i, j]];
                for w in [img[[j, i]], img[[(n - i) % n, j]], img[[i, (n - j) % n]]] {
                    assert!((v - w).abs() <= 1e-5 * max, "({i},{j}): {v} vs {w}");
                }
            }
        }
        // The heavy Pb/Br column (centre) is brighter than Cs (origin).
        assert!(img[[n / 2, n / 2]] > img[[0, 0]]);
    }
    let wedge = run_shard(
        &SimParams {
            symmetry_wedge: true,
            ..p.clone()
        },
        (0, 1),
        &|| {},
    )
    .unwrap();
    let coarse = SimParams {
        probe_per_cell: 12,
        ..p.clone()
    };
    assert!(
        run_shard(&coarse, (0, 1), &|| {}).is_err(),
        "under-sampled scan refused"
    );
    let w = cell_images(&wedge, 0).unwrap();
    for (a, b) in imgs.iter().zip(&w) {
        let max = a.iter().copied().fold(0.0, f64::max);
        for (x, y) in a.iter().zip(b.iter()) {
            assert!((x - y).abs() <= 1e-5 * max);
        }
    }
}

#[test]
fn shards_merge_to_the_single_run_and_ratios_fall_out() {
    let p = SimParams {
        phonons: 2,
        defocus_nodes: 3,
        displacement_angstrom: [0.22, 0.16, 0.22],
        ..small()
    };
    let one = run_shard(&p, (0, 1), &|| {}).unwrap();
    let parts: Vec<_> = (0..3)
        .map(|i| run_shard(&p, (i, 3), &|| {}).unwrap())
        .collect();
    let merged = merge(&parts).unwrap();
    assert_eq!(merged.items.len(), 6);
    let ((s1, w1), (s2, w2)) = (one.totals(), merged.totals());
    assert!((w1 - 1.0).abs() < 1e-12 && w1 == w2);
    assert_eq!(s1, s2, "bit-identical");
    assert!(
        merge(&[parts[0].clone(), parts[0].clone()]).is_err(),
        "an item twice"
    );
    // Scheme-1 shards (before the per-cell streams) are merged, never computed.
    let legacy = SimParams {
        rng_scheme: 1,
        ..p.clone()
    };
    let err = run_shard(&legacy, (0, 1), &|| {}).unwrap_err().to_string();
    assert!(err.contains("no longer computed"), "{err}");
    let (rows, _) = series(&merged, 0, 0.1).unwrap();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert!(r.ratio_volume > 0.05 && r.ratio_volume < 1.0, "{r:?}");
        assert!(r.ratio_height > 0.05 && r.ratio_height < 1.0, "{r:?}");
    }
}

/// PRISM with f = 1 equals multislice (docs/methods/multislice.md: the window is the whole
/// cell and ψ = Σ c_j S_j by linearity) to 1e-5 of the brightest value,
/// frozen phonons and three defocus nodes included; shards of PRISM merge
/// to its single run.
#[test]
fn prism_f1_equals_multislice() {
    let p = SimParams {
        phonons: 2,
        defocus_nodes: 3,
        symmetry_wedge: true,
        displacement_angstrom: [0.22, 0.16, 0.22],
        ..small()
    };
    let ms = run_shard(&p, (0, 1), &|| {}).unwrap();
    let pr_p = SimParams {
        prism_interpolation: Some(1),
        ..p.clone()
    };
    let pr = run_shard(&pr_p, (0, 1), &|| {}).unwrap();
    let ((a, wa), (b, wb)) = (ms.totals(), pr.totals());
    assert!((wa - wb).abs() < 1e-12);
    let max = a.iter().flatten().flatten().copied().fold(0.0, f64::max);
    for (x, y) in a
        .iter()
        .flatten()
        .flatten()
        .zip(b.iter().flatten().flatten())
    {
        assert!((x - y).abs() <= 1e-5 * max, "{x} vs {y}");
    }
    assert!((ms.min_intensity - pr.min_intensity).abs() < 1e-4);
    let parts: Vec<_> = (0..2)
        .map(|i| run_shard(&pr_p, (i, 2), &|| {}).unwrap())
        .collect();
    assert_eq!(merge(&parts).unwrap().totals(), pr.totals());
    assert!(
        run_shard(
            &SimParams {
                prism_interpolation: Some(3),
                ..p.clone()
            },
            (0, 1),
            &|| {}
        )
        .is_err(),
        "f = 3 refused"
    );
}

/// PRISM with f = 2 on a 3×3 u.c. cell (window 8.8 Å) gives the
/// Cs : Pb/Br ratio of multislice within 1 % (issue's test) at 1–3 u.c.
/// (A 35–100 mrad detector allows the coarser 270² grid; on a 2×2 cell,
/// window 5.9 Å, the probe's tails alias and the ratio is 1.2 % off.)
#[test]
fn prism_f2_ratio_within_one_percent() {
    let p = SimParams {
        supercell_uc: 3,
        grid_n: 270,
        detectors: vec![(35.0, 100.0)],
        symmetry_wedge: true,
        ..small()
    };
    let ms = series(&run_shard(&p, (0, 1), &|| {}).unwrap(), 0, 0.1)
        .unwrap()
        .0;
    let pr = SimParams {
        prism_interpolation: Some(2),
        ..p
    };
    let pr = series(&run_shard(&pr, (0, 1), &|| {}).unwrap(), 0, 0.1)
        .unwrap()
        .0;
    for (a, b) in ms.iter().zip(&pr) {
        eprintln!(
            "{} u.c.: ratio_height multislice {:.5} PRISM f=2 {:.5}",
            a.thickness_uc, a.ratio_height, b.ratio_height
        );
        for (x, y) in [
            (a.ratio_height, b.ratio_height),
            (a.ratio_volume, b.ratio_volume),
        ] {
            assert!(
                (x / y - 1.0).abs() < 0.01,
                "{} u.c.: multislice {x} vs PRISM f=2 {y}",
                a.thickness_uc
            );
        }
    }
}

/// The projected potential is singular at the nuclei: sampled on the wave
/// grid, a Pb/Br column half a pixel off the grid (1 u.c. on 171 px) scatters
/// far more into the ADF detector than one on a pixel (172 px); built on a
/// 2× finer grid and band-limited (`potential_oversampling` = 2) the two
/// agree. Static crystal, probe on the columns, 4 u.c.
#[test]
fn oversampled_transmission_is_insensitive_to_sub_pixel_atom_positions() {
    let on_column = |n: usize, m: usize| -> (f64, f64) {
        let p = SimParams {
            microscope: Microscope {
                energy_spread_ev: 0.0,
                source_size_angstrom: 0.0,
                ..Microscope::default()
            },
            blur_angstrom: 0.0,
            max_thickness_uc: 4,
            grid_n: n,
            symmetry_wedge: true,
            potential_oversampling: m,
            double_precision: false,
            ..small()
        };
        let part = run_shard(&p, (0, 1), &|| {}).unwrap();
        let (sums, w) = part.totals();
        let (pos, _) = positions(24, true);
        let q = |at| pos.iter().position(|&x| x == at).unwrap();
        (sums[0][3][q((0, 0))] / w, sums[0][3][q((12, 12))] / w)
    };
    let rel = |a: f64, b: f64| (a / b - 1.0).abs();
    let (cs_on, pb_on) = on_column(172, 2);
    let (cs_off, pb_off) = on_column(171, 2);
    assert!(rel(pb_off, pb_on) < 0.005, "Pb/Br {pb_off} vs {pb_on}");
    assert!(rel(cs_off, cs_on) < 0.005, "Cs {cs_off} vs {cs_on}");
    // Sampled directly the off-grid column is ≈ 11 % brighter.
    let (_, pb_on1) = on_column(172, 1);
    let (_, pb_off1) = on_column(171, 1);
    assert!(rel(pb_off1, pb_on1) > 0.05, "m = 1: {pb_off1} vs {pb_on1}");
}

/// Double precision (complex f64 FFTs, waves, transmissions) agrees with
/// the default single precision on every probe and thickness (1e-4 of the
/// peak), with thermal displacements and the wedge.
#[test]
fn double_precision_agrees_with_single() {
    let p = SimParams {
        symmetry_wedge: true,
        displacement_angstrom: [0.15, 0.10, 0.17],
        ..small()
    };
    let single = run_shard(&p, (0, 1), &|| {}).unwrap();
    let double = run_shard(
        &SimParams {
            double_precision: true,
            ..p.clone()
        },
        (0, 1),
        &|| {},
    )
    .unwrap();
    let (a, _) = single.totals();
    let (b, _) = double.totals();
    let mut worst = 0.0f64;
    for (ta, tb) in a[0].iter().zip(&b[0]) {
        let peak = tb.iter().copied().fold(0.0, f64::max);
        for (x, y) in ta.iter().zip(tb) {
            worst = worst.max((x - y).abs() / peak);
        }
    }
    assert!(worst < 1e-4 && worst > 0.0, "largest difference {worst}");
    // PRISM refuses double precision.
    let prism = SimParams {
        double_precision: true,
        prism_interpolation: Some(1),
        ..p
    };
    assert!(run_shard(&prism, (0, 1), &|| {}).is_err());
}

/// Jackknife s.e. of the mean from leave-one-out means equals the usual
/// s.d./√n (an identity for the mean): values 1, 2, 3, 6.
#[test]
fn jackknife_se_of_the_mean_is_sd_over_root_n() {
    let x = [1.0, 2.0, 3.0, 6.0];
    let n = x.len() as f64;
    let total: f64 = x.iter().sum();
    let loo: Vec<f64> = x.iter().map(|v| (total - v) / (n - 1.0)).collect();
    let m = total / n;
    let sd = (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let se = qdscope::multislice::image::jackknife_se(&loo);
    assert!((se - sd / n.sqrt()).abs() < 1e-12, "{se}");
    assert_eq!(qdscope::multislice::image::jackknife_se(&[0.4]), 0.0);
}
