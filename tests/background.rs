//! Background opening (docs/methods/background.md): MATLAB strel table, van Herk vs brute
//! force, morphological laws, Gaussian parity, background subtraction.
use ndarray::Array2;
use qdscope::stem::background::{
    dilate, erode, estimate, gaussian_filter, gaussian_kernel, opening, BackgroundParams,
    Decomposition, Footprint,
};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn brute(img: &Array2<f32>, fp: &Footprint, min: bool) -> Array2<f32> {
    let offs = fp.offsets();
    let (ny, nx) = img.dim();
    Array2::from_shape_fn((ny, nx), |(y, x)| {
        let mut acc = if min {
            f32::INFINITY
        } else {
            f32::NEG_INFINITY
        };
        for &(dy, dx) in offs.iter() {
            // Erosion reads x + d, dilation x − d (D is symmetric: same set).
            let (yy, xx) = if min {
                (y as i64 + dy, x as i64 + dx)
            } else {
                (y as i64 - dy, x as i64 - dx)
            };
            if yy >= 0 && xx >= 0 && (yy as usize) < ny && (xx as usize) < nx {
                let v = img[[yy as usize, xx as usize]];
                acc = if min { acc.min(v) } else { acc.max(v) };
            }
        }
        acc
    })
}

fn random(rng: &mut StdRng, ny: usize, nx: usize) -> Array2<f32> {
    Array2::from_shape_fn((ny, nx), |_| rng.gen_range(0.0..100.0f32).round())
}

#[test]
fn strel_table_rows_exactly() {
    use Decomposition::*;
    // (n, R, size, members, p_v, correction length) — docs/methods/background.md table.
    type Row = (
        Decomposition,
        usize,
        usize,
        usize,
        &'static [usize],
        Option<usize>,
    );
    let rows: &[Row] = &[
        (N4, 3, 5, 25, &[1, 0, 1, 0], Some(3)),
        (N4, 4, 7, 37, &[1, 1, 1, 1], None),
        (N4, 5, 9, 69, &[1, 1, 1, 1], Some(3)),
        (N4, 10, 19, 321, &[3, 2, 3, 2], Some(5)),
        (N4, 15, 29, 697, &[5, 4, 5, 4], Some(3)),
        (N4, 20, 39, 1301, &[7, 5, 7, 5], Some(5)),
        (N4, 25, 49, 1981, &[9, 7, 9, 7], Some(3)),
        (N4, 50, 99, 8177, &[19, 14, 19, 14], Some(5)),
        (N6, 10, 19, 297, &[2, 1, 1, 2, 1, 1], Some(3)),
        (N8, 15, 29, 673, &[2, 1, 2, 1, 2, 1, 2, 1], Some(5)),
        (N8, 5, 9, 81, &[0; 8], Some(9)),
    ];
    for &(n, r, size, members, pv, corr) in rows {
        let fp = Footprint::disk(r, n).unwrap();
        assert_eq!(fp.size(), (size, size), "{n:?} R={r}");
        assert_eq!(fp.len(), members, "{n:?} R={r}");
        assert_eq!(fp.periodic_counts(), pv, "{n:?} R={r}");
        assert_eq!(fp.correction_len(), corr, "{n:?} R={r}");
    }
    // Euclidean disk member counts of the same table, and R = 1, 2 exact disks.
    for (r, m) in [(3, 29), (10, 317), (50, 7845)] {
        assert_eq!(Footprint::disk(r, Exact).unwrap().len(), m);
    }
    assert_eq!(Footprint::disk(1, N4).unwrap().len(), 5);
    assert_eq!(Footprint::disk(2, N4).unwrap().len(), 13);
    // n = 4 gives a (2R−1)² octagon for every R ≥ 3 (checked up to R = 100).
    for r in 3..=60 {
        assert_eq!(
            Footprint::disk(r, N4).unwrap().size(),
            (2 * r - 1, 2 * r - 1)
        );
    }
    assert!(Footprint::disk(0, N4).is_err());
}

#[test]
fn one_d_example_of_the_spec() {
    let f = [3.0f32, 1., 4., 1., 5., 9., 2., 6., 5., 3., 5.];
    let img = Array2::from_shape_vec((1, 11), f.to_vec()).unwrap();
    // A 1×3 horizontal line: the exact disk of R = 1 restricted to one row.
    let fp = Footprint::disk(1, Decomposition::Exact).unwrap();
    let max = dilate(img.view(), &fp);
    let min = erode(img.view(), &fp);
    let open = opening(img.view(), &fp);
    assert_eq!(
        max.row(0).to_vec(),
        vec![3., 4., 4., 5., 9., 9., 9., 6., 6., 5., 5.]
    );
    assert_eq!(
        min.row(0).to_vec(),
        vec![1., 1., 1., 1., 1., 2., 2., 2., 3., 3., 3.]
    );
    assert_eq!(
        open.row(0).to_vec(),
        vec![1., 1., 1., 1., 2., 2., 2., 3., 3., 3., 3.]
    );
}

#[test]
fn running_filters_equal_brute_force_on_lines() {
    // Horizontal 1-D windows w ∈ {1, 3, 5, 31}: the exact disk of R = (w−1)/2
    // on a one-row image is a centred window of w samples.
    let mut rng = StdRng::seed_from_u64(11);
    for w in [1usize, 3, 5, 31] {
        let img = random(&mut rng, 1, 97);
        let r = (w - 1) / 2;
        if r == 0 {
            continue;
        }
        let fp = Footprint::disk(r, Decomposition::Exact).unwrap();
        assert_eq!(erode(img.view(), &fp), brute(&img, &fp, true), "w={w}");
        assert_eq!(dilate(img.view(), &fp), brute(&img, &fp, false), "w={w}");
    }
}

#[test]
fn decomposed_filters_are_bit_identical_to_brute_force() {
    let mut rng = StdRng::seed_from_u64(12);
    let cases = [
        (Decomposition::N4, vec![3usize, 4, 5, 7, 10, 13, 16, 20]),
        (Decomposition::N6, vec![3, 6, 10, 15]),
        (Decomposition::N8, vec![3, 5, 9, 15, 20]),
        (Decomposition::Exact, vec![1, 3, 8, 12]),
    ];
    for (n, radii) in cases {
        for r in radii {
            for (ny, nx) in [(64, 64), (37, 53), (3, 90), (71, 2)] {
                let img = random(&mut rng, ny, nx);
                let fp = Footprint::disk(r, n).unwrap();
                let e = erode(img.view(), &fp);
                assert_eq!(e, brute(&img, &fp, true), "erode {n:?} R={r} {ny}x{nx}");
                let d = dilate(img.view(), &fp);
                assert_eq!(d, brute(&img, &fp, false), "dilate {n:?} R={r}");
                let o = opening(img.view(), &fp);
                let ob = brute(&brute(&img, &fp, true), &fp, false);
                assert_eq!(o, ob, "open {n:?} R={r}");
            }
        }
    }
}

/// Long lines (van Herk strips over several blocks and tasks, interleaved
/// rows with a partial last strip) on a larger image than the table above.
#[test]
fn long_lines_are_bit_identical_to_brute_force() {
    let mut rng = StdRng::seed_from_u64(14);
    let img = random(&mut rng, 83, 97);
    for r in [26usize, 33] {
        let fp = Footprint::disk(r, Decomposition::N4).unwrap();
        let e = erode(img.view(), &fp);
        assert_eq!(e, brute(&img, &fp, true), "erode R={r}");
        assert_eq!(
            opening(img.view(), &fp),
            brute(&e, &fp, false),
            "open R={r}"
        );
    }
}

#[test]
fn opening_laws() {
    let mut rng = StdRng::seed_from_u64(13);
    let img = random(&mut rng, 61, 47);
    let fp = Footprint::disk(6, Decomposition::N4).unwrap();
    let o = opening(img.view(), &fp);
    // Anti-extensive, idempotent.
    assert!(o.iter().zip(img.iter()).all(|(a, b)| a <= b));
    assert_eq!(opening(o.view(), &fp), o);
    // Increasing: I ≤ J ⇒ open I ≤ open J.
    let j = img.mapv(|v| v + rng.gen_range(0.0..5.0f32).round());
    let oj = opening(j.view(), &fp);
    assert!(o.iter().zip(oj.iter()).all(|(a, b)| a <= b));
    // A constant image is unchanged; a plateau larger than D survives.
    let c = Array2::<f32>::from_elem((30, 40), 3.5);
    assert_eq!(opening(c.view(), &fp), c);
    // A plateau that is itself open with respect to D (a rectangle dilated
    // by D) survives the opening exactly.
    let mut rect = Array2::<f32>::zeros((60, 60));
    rect.slice_mut(ndarray::s![20..35, 20..42]).fill(9.0);
    let plateau = dilate(rect.view(), &fp);
    assert_eq!(opening(plateau.view(), &fp), plateau);
    // Independent of the thread count.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    assert_eq!(pool.install(|| opening(img.view(), &fp)), o);
}

#[test]
fn gaussian_peak_is_opened_away() {
    // docs/methods/background.md: Gaussian σ = 2 px, height 5, on constant 10, 64×64, R = 10, n = 4:
    // max |open(I) − 10| ≤ 5·exp(−(R−1)²/8) = 2.0e-4.
    let img = Array2::from_shape_fn((64, 64), |(y, x)| {
        let r2 = ((y as f32 - 32.0).powi(2) + (x as f32 - 32.0).powi(2)) / (2.0 * 4.0);
        10.0 + 5.0 * (-r2).exp()
    });
    let fp = Footprint::disk(10, Decomposition::N4).unwrap();
    let o = opening(img.view(), &fp);
    let err = o.iter().fold(0.0f32, |m, v| m.max((v - 10.0).abs()));
    assert!(err <= 2.0e-4, "{err}");
}

fn gaussian_reference(img: &Array2<f32>, sigma: f64, truncate: f64) -> Array2<f64> {
    let k = gaussian_kernel(sigma, truncate);
    let h = (k.len() / 2) as i64;
    let (ny, nx) = img.dim();
    let clamp = |v: i64, n: usize| v.clamp(0, n as i64 - 1) as usize;
    let rows = Array2::from_shape_fn((ny, nx), |(y, x)| {
        (0..k.len())
            .map(|i| k[i] * img[[y, clamp(x as i64 + i as i64 - h, nx)]] as f64)
            .sum::<f64>()
    });
    Array2::from_shape_fn((ny, nx), |(y, x)| {
        (0..k.len())
            .map(|i| k[i] * rows[[clamp(y as i64 + i as i64 - h, ny), x]])
            .sum::<f64>()
    })
}

#[test]
fn gaussian_matches_direct_replicate_reference_on_both_paths() {
    let mut rng = StdRng::seed_from_u64(14);
    for (ny, nx) in [(48, 70), (47, 71)] {
        let img = random(&mut rng, ny, nx);
        // σ = 2 (5-tap half-width 4: direct path) and σ = 9 (37 taps: FFT path).
        for sigma in [2.0, 9.0, 30.0] {
            let g = gaussian_filter(img.view(), sigma, 2.0).unwrap();
            let r = gaussian_reference(&img, sigma, 2.0);
            let err = g
                .iter()
                .zip(r.iter())
                .fold(0.0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
            // f32 output of values ≤ 100: 1e-5 relative.
            assert!(err < 1e-3, "σ={sigma} {ny}x{nx}: {err}");
        }
    }
    // MATLAB imgaussfilt kernel length 2⌈2σ⌉+1.
    assert_eq!(gaussian_kernel(10.0, 2.0).len(), 41);
    let img = random(&mut rng, 8, 8);
    assert!(gaussian_filter(img.view(), 0.0, 2.0).is_err());
}

#[test]
fn background_subtraction_removes_smooth_background_keeps_columns() {
    // CsPbBr3 scale at 0.25 Å/px: a = 5.87 Å = 23.48 px, columns σ = 0.45 Å
    // = 1.8 px, height 1, on a ramp plus a broad bump (σ_b = 250 px, 0.3);
    // R = 2a = 47 px (the default). A flat opening and the σ = R Gaussian
    // each lower a curved background by about ½|B''|R², here
    // 0.3/250²·47² ≈ 0.011 in total: inside the 2 % budget, while a ramp is
    // reproduced exactly.
    let (n, a, sig) = (512usize, 23.48f64, 1.8f64);
    let bg = |y: f64, x: f64| {
        0.6 + 0.002 * x
            + 0.001 * y
            + 0.3 * (-((x - 280.0).powi(2) + (y - 230.0).powi(2)) / (2.0 * 250.0f64.powi(2))).exp()
    };
    let mut img = Array2::<f32>::zeros((n, n));
    let mut truth = Vec::new();
    for iy in 0..=21 {
        for ix in 0..=21 {
            truth.push((iy as f64 * a, ix as f64 * a));
        }
    }
    for ((y, x), v) in img.indexed_iter_mut() {
        let (yf, xf) = (y as f64, x as f64);
        let mut s = bg(yf, xf);
        for &(cy, cx) in &truth {
            let r2 = (yf - cy).powi(2) + (xf - cx).powi(2);
            if r2 < 100.0 {
                s += (-r2 / (2.0 * sig * sig)).exp();
            }
        }
        *v = s as f32;
    }
    let p = BackgroundParams {
        radius_px: (2.0 * a).round() as usize,
        ..Default::default()
    };
    let b = estimate(img.view(), &p).unwrap();
    let corr = &img - &b;
    // Away from the borders (> R): between columns the corrected image is ~0.
    let margin = 100usize;
    let mut worst_bg: f64 = 0.0;
    for y in margin..n - margin {
        for x in margin..n - margin {
            let near = truth
                .iter()
                .any(|&(cy, cx)| (y as f64 - cy).powi(2) + (x as f64 - cx).powi(2) < 49.0);
            if !near {
                worst_bg = worst_bg.max((corr[[y, x]] as f64).abs());
            }
        }
    }
    assert!(
        worst_bg < 0.02,
        "residual background {worst_bg} ≥ 2 % of the column height"
    );
    for &(cy, cx) in &truth {
        if cy < margin as f64
            || cx < margin as f64
            || cy > (n - margin) as f64
            || cx > (n - margin) as f64
        {
            continue;
        }
        // Height at the nearest pixel, against the model value there.
        let (py, px) = (cy.round(), cx.round());
        let want = (-((py - cy).powi(2) + (px - cx).powi(2)) / (2.0 * sig * sig)).exp();
        let h = corr[[py as usize, px as usize]] as f64;
        assert!(
            (h / want - 1.0).abs() < 0.05,
            "column at ({cy}, {cx}): height {h} vs {want}"
        );
    }
}

#[test]
fn bad_parameters() {
    let img = Array2::<f32>::ones((16, 16));
    let p = BackgroundParams {
        radius_px: 0,
        ..Default::default()
    };
    assert!(estimate(img.view(), &p)
        .unwrap_err()
        .to_string()
        .starts_with("background radius"));
    let mut nan = img.clone();
    nan[[3, 4]] = f32::NAN;
    let p = BackgroundParams {
        radius_px: 3,
        ..Default::default()
    };
    assert!(estimate(nan.view(), &p)
        .unwrap_err()
        .to_string()
        .contains("y=3, x=4"));
    // R ≥ image size: the global minimum (docs/methods/background.md).
    let mut r = Array2::from_shape_fn((10, 10), |(y, x)| (y + x) as f32);
    r[[0, 0]] = -2.0;
    let b = estimate(
        r.view(),
        &BackgroundParams {
            radius_px: 20,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(b.iter().all(|v| (v + 2.0).abs() < 1e-5));
}
