//! Electron optics against published numbers (docs/methods/optics.md; docs/methods/deconvolution.md).
use qdscope::optics::{
    bessel_j0, bessel_j1, interaction_constant, probe_fwhm_angstrom, probe_intensity_grid,
    psf_for_sampling, radial_intensity, relativistic_factor, wavelength_angstrom, Microscope,
};

#[test]
fn wavelengths_and_interaction_constants() {
    // pm, 1e-5 relative.
    for (kv, pm) in [
        (300.0, 1.96875),
        (200.0, 2.50793),
        (100.0, 3.70144),
        (80.0, 4.17572),
        (60.0, 4.86606),
    ] {
        let l = wavelength_angstrom(kv) * 100.0;
        assert!((l / pm - 1.0).abs() < 1e-5, "{kv} kV: {l} pm");
    }
    // rad/(V·Å): equal to the published value to its last printed digit
    // (6 significant digits: ± half a unit of the last place).
    for (kv, s, ulp) in [
        (300.0, 6.52616e-4, 1e-9),
        (200.0, 7.28840e-4, 1e-9),
        (80.0, 1.00871e-3, 1e-8),
    ] {
        let got = interaction_constant(kv);
        assert!((got - s).abs() <= 0.5 * ulp, "{kv}: {got}");
    }
    assert!((relativistic_factor(300.0) - 1.226929).abs() < 1e-6);
}

#[test]
fn bessel_functions() {
    // Reference values (A&S tables), |error| < 1e-7.
    for (x, j0, j1) in [
        (0.0, 1.0, 0.0),
        (1.0, 0.765_197_686_6, 0.440_050_585_7),
        (2.5, -0.048_383_776_0, 0.497_094_102_5),
        (5.0, -0.177_596_771_3, -0.327_579_137_6),
        (10.0, -0.245_935_764_5, 0.043_472_746_2),
    ] {
        assert!((bessel_j0(x) - j0).abs() < 1e-7, "J0({x})");
        assert!((bessel_j1(x) - j1).abs() < 1e-7, "J1({x})");
    }
}

#[test]
fn airy_probe_and_source_broadening() {
    let m = Microscope::default(); // 300 kV, 18 mrad, aberration-free
                                   // Airy FWHM 0.514497 λ/α = 0.56273 Å (± 1e-3); first zero 0.66701 Å.
    let f = probe_fwhm_angstrom(&m).unwrap();
    assert!((f - 0.56273).abs() < 1e-3, "{f}");
    let r0 = 0.66701;
    let p = radial_intensity(&m, &[0.0, r0]).unwrap();
    assert!((p[0] - 1.0).abs() < 1e-12 && p[1].abs() < 1e-4, "{p:?}");
    // Closed form [2J1(v)/v]² agrees with the Hankel quadrature.
    let v = 2.0 * std::f64::consts::PI * 0.018 * 0.3 / wavelength_angstrom(300.0);
    let airy = (2.0 * bessel_j1(v) / v).powi(2);
    assert!((radial_intensity(&m, &[0.3]).unwrap()[0] - airy).abs() < 1e-5);
    // Source FWHM 0.25 Å → 0.6023 Å; σ_src 0.125 → 0.6180; σ_src 0.25 → 0.7870 (± 2e-3).
    let fw = 2.0 * (2.0 * 2f64.ln()).sqrt();
    for (src_fwhm, want) in [(0.25, 0.6023), (0.125 * fw, 0.6180), (0.25 * fw, 0.7870)] {
        let m = Microscope {
            source_size_angstrom: src_fwhm,
            ..Microscope::default()
        };
        let f = probe_fwhm_angstrom(&m).unwrap();
        assert!((f - want).abs() < 2e-3, "source {src_fwhm}: {f} vs {want}");
    }
}

#[test]
fn probe_on_a_grid_is_normalised_and_matches_the_radial_form() {
    let m = Microscope::default();
    let p = 0.05;
    let g = probe_intensity_grid(&m, (128, 128), p).unwrap();
    assert!((g.sum() - 1.0).abs() < 1e-12);
    let (cy, cx) = (64usize, 64usize);
    let peak = g[[cy, cx]];
    assert!(g.iter().all(|v| *v <= peak + 1e-15));
    // Profile along x against the Hankel form (the discrete aperture edge
    // of a 6.4 Å grid limits agreement to a few %).
    let rad = radial_intensity(&m, &[0.0, 0.1, 0.2, 0.3]).unwrap();
    for (i, want) in rad.iter().enumerate() {
        let got = g[[cy, cx + 2 * i]] / peak;
        assert!(
            (got - want).abs() < 0.03,
            "r = {}: {got} vs {want}",
            0.1 * i as f64
        );
    }
    // Defocus broadens the probe; the focal spread is accepted.
    let md = Microscope {
        defocus_angstrom: 50.0,
        energy_spread_ev: 0.8,
        ..m
    };
    let gd = probe_intensity_grid(&md, (128, 128), p).unwrap();
    assert!(gd.iter().fold(0.0f64, |a, v| a.max(*v)) < peak);
    assert!(probe_intensity_grid(&m, (64, 64), 1.0).is_err()); // cannot hold the aperture
                                                               // The coherent wave is normalised and its intensity is the in-focus probe.
    let psi = qdscope::optics::probe_wave(&m, (128, 128), p, 0.0).unwrap();
    assert!((psi.iter().map(|v| v.norm_sqr()).sum::<f64>() - 1.0).abs() < 1e-12);
    assert!((psi[[cy, cx]].norm_sqr() - peak).abs() < 1e-12);
}

#[test]
fn deconvolution_psf_at_a_sampling() {
    let m = Microscope::default();
    // 41×41 at p = 0.1 Å, 300 kV, 18 mrad (spec); sum 1, symmetric, peak at the centre.
    let psf = psf_for_sampling(&m, 0.1).unwrap();
    assert_eq!(psf.dim(), (41, 41));
    assert!((psf.sum() - 1.0).abs() < 1e-12);
    let c = psf[[20, 20]];
    assert!(psf.iter().all(|v| *v <= c && *v >= 0.0));
    for y in 0..41 {
        for x in 0..41 {
            assert!((psf[[y, x]] - psf[[40 - y, x]]).abs() < 1e-12);
            assert!((psf[[y, x]] - psf[[x, y]]).abs() < 1e-12);
        }
    }
    // h = round(3 r₀/p): 9×9 at 0.5 Å, 11×11 at 0.4 Å; coarser than the FWHM is an error.
    assert_eq!(psf_for_sampling(&m, 0.5).unwrap().dim(), (9, 9));
    assert_eq!(psf_for_sampling(&m, 0.4).unwrap().dim(), (11, 11));
    let e = psf_for_sampling(&m, 0.6).unwrap_err().to_string();
    assert!(
        e.starts_with("pixel_size_angstrom") && e.contains("too coarse"),
        "{e}"
    );
    // Configurable support.
    assert_eq!(
        qdscope::optics::psf_for_sampling_with(&m, 0.1, Some(7))
            .unwrap()
            .dim(),
        (15, 15)
    );
    assert!(qdscope::optics::psf_for_sampling_with(&m, 0.1, Some(0)).is_err());
    // With Cs the FFT path is used and still normalised.
    let mc = Microscope { cs_mm: 0.01, ..m };
    let p = psf_for_sampling(&mc, 0.1).unwrap();
    assert!((p.sum() - 1.0).abs() < 1e-12);
}

#[test]
fn bad_microscopes() {
    let e = |m: Microscope| m.validated().unwrap_err().to_string();
    assert!(e(Microscope {
        high_tension_kv: 0.0,
        ..Default::default()
    })
    .starts_with("high_tension_kv"));
    assert!(e(Microscope {
        convergence_mrad: -1.0,
        ..Default::default()
    })
    .starts_with("convergence_mrad"));
    assert!(e(Microscope {
        convergence_mrad: 150.0,
        ..Default::default()
    })
    .starts_with("convergence_mrad"));
    assert!(e(Microscope {
        cs_mm: f64::NAN,
        ..Default::default()
    })
    .starts_with("cs_mm"));
}
