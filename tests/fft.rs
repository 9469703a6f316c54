//! The shared FFT layer against direct sums and analytic identities.
use ndarray::{Array2, ArrayView2};
use qdscope::fft::{self, Complex, Detrend, Window};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn rand_real(rng: &mut StdRng, ny: usize, nx: usize) -> Array2<f64> {
    Array2::from_shape_fn((ny, nx), |_| rng.gen_range(-1.0..1.0))
}

/// Naive O(N²) DFT: the obviously-right reference.
fn dft(x: &[Complex<f64>]) -> Vec<Complex<f64>> {
    let n = x.len();
    (0..n)
        .map(|k| {
            x.iter()
                .enumerate()
                .map(|(j, v)| {
                    let ph = -2.0 * std::f64::consts::PI * (k * j % n) as f64 / n as f64;
                    v * Complex::new(ph.cos(), ph.sin())
                })
                .sum()
        })
        .collect()
}

#[test]
fn one_d_matches_naive_dft_and_round_trips() {
    let mut rng = StdRng::seed_from_u64(1);
    for n in [1usize, 2, 7, 16, 45, 97] {
        let x: Vec<Complex<f64>> = (0..n)
            .map(|_| Complex::new(rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0)))
            .collect();
        let mut y = x.clone();
        fft::fft(&mut y);
        for (a, b) in y.iter().zip(dft(&x)) {
            // f64 round-off of an O(N) sum of unit terms.
            assert!((a - b).norm() < 1e-12 * n as f64, "n={n}");
        }
        fft::ifft(&mut y);
        for (a, b) in y.iter().zip(&x) {
            assert!((a - b).norm() < 1e-12);
        }
        // Real transforms.
        let r: Vec<f64> = x.iter().map(|c| c.re).collect();
        let rs = fft::rfft(&r);
        assert_eq!(rs.len(), n / 2 + 1);
        let full = dft(&r.iter().map(|v| Complex::new(*v, 0.0)).collect::<Vec<_>>());
        for (a, b) in rs.iter().zip(&full) {
            assert!((a - b).norm() < 1e-12 * n as f64);
        }
        let back = fft::irfft(&rs, n);
        for (a, b) in back.iter().zip(&r) {
            assert!((a - b).abs() < 1e-12, "irfft n={n}");
        }
    }
}

#[test]
fn two_d_round_trip_f32_and_f64() {
    let mut rng = StdRng::seed_from_u64(2);
    for (ny, nx) in [(16usize, 16usize), (17, 30), (64, 33), (1, 8)] {
        let a = rand_real(&mut rng, ny, nx);
        // f64: 1e-12 relative to the max |a| = 1.
        let back = fft::irfft2(fft::rfft2(a.view()).view(), nx);
        let err = (&back - &a).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(err < 1e-12, "{ny}x{nx}: {err}");
        let c = a.mapv(|v| Complex::new(v, -v * 0.5));
        let back = fft::ifft2(fft::fft2(c.view()).view());
        let err = (&back - &c).iter().fold(0.0f64, |m, v| m.max(v.norm()));
        assert!(err < 1e-12);
        // f32: 1e-5 relative (single precision, log N error growth).
        let a32 = a.mapv(|v| v as f32);
        let back = fft::irfft2(fft::rfft2(a32.view()).view(), nx);
        let err = (&back - &a32).iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(err < 1e-5, "f32 {ny}x{nx}: {err}");
        // rfft2 equals the left half of the complex fft2.
        let full = fft::fft2(a.mapv(|v| Complex::new(v, 0.0)).view());
        let half = fft::rfft2(a.view());
        for ((y, x), v) in half.indexed_iter() {
            assert!((v - full[[y, x]]).norm() < 1e-10);
        }
    }
}

#[test]
fn parseval_holds() {
    let mut rng = StdRng::seed_from_u64(3);
    let a = rand_real(&mut rng, 24, 35);
    let f = fft::fft2(a.mapv(|v| Complex::new(v, 0.0)).view());
    let e_space: f64 = a.iter().map(|v| v * v).sum();
    let e_freq: f64 = f.iter().map(|v| v.norm_sqr()).sum::<f64>() / a.len() as f64;
    assert!(((e_space - e_freq) / e_space).abs() < 1e-12);
}

fn direct_circular(a: ArrayView2<f64>, k: ArrayView2<f64>) -> Array2<f64> {
    let (ny, nx) = a.dim();
    let (ky, kx) = k.dim();
    let (cy, cx) = (ky / 2, kx / 2);
    Array2::from_shape_fn((ny, nx), |(y, x)| {
        let mut s = 0.0;
        for j in 0..ky {
            for i in 0..kx {
                let yy = (y + ny * 2 + cy - j) % ny;
                let xx = (x + nx * 2 + cx - i) % nx;
                s += k[[j, i]] * a[[yy, xx]];
            }
        }
        s
    })
}

fn direct_same(a: ArrayView2<f64>, k: ArrayView2<f64>) -> Array2<f64> {
    let (ny, nx) = a.dim();
    let (ky, kx) = k.dim();
    let (cy, cx) = ((ky / 2) as i64, (kx / 2) as i64);
    Array2::from_shape_fn((ny, nx), |(y, x)| {
        let mut s = 0.0;
        for j in 0..ky {
            for i in 0..kx {
                let yy = y as i64 + cy - j as i64;
                let xx = x as i64 + cx - i as i64;
                if yy >= 0 && xx >= 0 && (yy as usize) < ny && (xx as usize) < nx {
                    s += k[[j, i]] * a[[yy as usize, xx as usize]];
                }
            }
        }
        s
    })
}

#[test]
fn convolution_equals_direct_summation() {
    let mut rng = StdRng::seed_from_u64(4);
    for (ny, nx, ky, kx) in [(12, 13, 3, 3), (9, 16, 4, 5), (20, 11, 7, 2), (8, 8, 8, 8)] {
        let a = rand_real(&mut rng, ny, nx);
        let k = rand_real(&mut rng, ky, kx);
        let c = fft::convolve2_circular(a.view(), k.view()).unwrap();
        let d = direct_circular(a.view(), k.view());
        assert!(
            (&c - &d).iter().all(|v| v.abs() < 1e-12),
            "circular {ny}x{nx} k{ky}x{kx}"
        );
        let c = fft::convolve2_same(a.view(), k.view()).unwrap();
        let d = direct_same(a.view(), k.view());
        assert!(
            (&c - &d).iter().all(|v| v.abs() < 1e-12),
            "same {ny}x{nx} k{ky}x{kx}"
        );
    }
    let a = Array2::<f64>::zeros((4, 4));
    assert!(fft::convolve2_circular(a.view(), Array2::zeros((5, 1)).view()).is_err());
}

#[test]
fn correlation_peak_is_the_shift() {
    let mut rng = StdRng::seed_from_u64(5);
    let b = rand_real(&mut rng, 20, 24);
    // a = b displaced by (+3, −5): a[y, x] = b[y − 3, x + 5].
    let a = Array2::from_shape_fn((20, 24), |(y, x)| b[[(y + 17) % 20, (x + 5) % 24]]);
    let c = fft::correlate2_circular(a.view(), b.view()).unwrap();
    // Direct definition c[s] = Σ a[n + s] b[n].
    let d = Array2::from_shape_fn((20, 24), |(sy, sx)| {
        let mut s = 0.0;
        for y in 0..20 {
            for x in 0..24 {
                s += a[[(y + sy) % 20, (x + sx) % 24]] * b[[y, x]];
            }
        }
        s
    });
    assert!((&c - &d).iter().all(|v| v.abs() < 1e-10));
    let (imax, _) = c.indexed_iter().fold(
        ((0, 0), f64::MIN),
        |m, (i, v)| if *v > m.1 { (i, *v) } else { m },
    );
    assert_eq!(imax, (3, 24 - 5));
}

#[test]
fn psf2otf_and_otf2psf() {
    // Centred delta (odd and even sizes) → OTF of all ones.
    for (py, px) in [(5usize, 5usize), (4, 6), (1, 1)] {
        let mut p = Array2::<f64>::zeros((py, px));
        p[[py / 2, px / 2]] = 1.0;
        let otf = fft::psf2otf(p.view(), (16, 18)).unwrap();
        assert!(otf
            .iter()
            .all(|v| (v - Complex::new(1.0, 0.0)).norm() < 1e-14));
    }
    let mut rng = StdRng::seed_from_u64(6);
    let p = rand_real(&mut rng, 7, 4);
    let otf = fft::psf2otf(p.view(), (15, 16)).unwrap();
    let back = fft::otf2psf(otf.view(), (7, 4)).unwrap();
    assert!((&back - &p).iter().all(|v| v.abs() < 1e-13));
    assert!(fft::psf2otf(p.view(), (3, 3)).is_err());
}

#[test]
fn shifts_and_axes() {
    let a = Array2::from_shape_fn((5, 4), |(y, x)| (y * 10 + x) as f64);
    let s = fft::fftshift2(a.view());
    assert_eq!(s[[2, 2]], 0.0); // zero frequency at ⌊N/2⌋
    assert_eq!(fft::ifftshift2(s.view()), a);
    let f = fft::fftfreq(5, 0.5);
    let want = [0.0, 0.4, 0.8, -0.8, -0.4];
    assert!(f.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-15));
    let f = fft::fftfreq(4, 1.0);
    assert_eq!(f, vec![0.0, 0.25, -0.5, -0.25]);
    assert_eq!(fft::rfftfreq(4, 10.0), vec![0.0, 0.025, 0.05]);
}

#[test]
fn power_per_bin_identities() {
    // On-bin sine of amplitude A: power sums to A²/2 (and sits in one bin).
    let (n, k0, amp) = (256usize, 17usize, 3.0f64);
    let x: Vec<f64> = (0..n)
        .map(|i| amp * (2.0 * std::f64::consts::PI * (k0 * i) as f64 / n as f64 + 0.3).sin() + 5.0)
        .collect();
    let p = fft::power_per_bin(&x, Window::Rect, Detrend::None).unwrap();
    assert_eq!(p.len(), n / 2 + 1);
    assert_eq!(p[0], 0.0);
    let total: f64 = p.iter().sum();
    assert!((total - amp * amp / 2.0).abs() < 1e-9);
    assert!((p[k0] - amp * amp / 2.0).abs() < 1e-9);
    // Σ P = population variance for random odd and even N.
    let mut rng = StdRng::seed_from_u64(7);
    for n in [101usize, 128] {
        let x: Vec<f64> = (0..n).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let m = x.iter().sum::<f64>() / n as f64;
        let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64;
        let p = fft::power_per_bin(&x, Window::Rect, Detrend::None).unwrap();
        assert!((p.iter().sum::<f64>() - var).abs() / var < 1e-9, "n={n}");
        // Hann is power-normalised: total power within a few % for white noise.
        let ph = fft::power_per_bin(&x, Window::Hann, Detrend::None).unwrap();
        assert!((ph.iter().sum::<f64>() / var - 1.0).abs() < 0.5);
    }
    // Linear detrend removes a pure ramp exactly.
    let ramp: Vec<f64> = (0..50).map(|i| 0.3 * i as f64 - 2.0).collect();
    let p = fft::power_per_bin(&ramp, Window::Rect, Detrend::Linear).unwrap();
    assert!(p.iter().sum::<f64>() < 1e-20);
    assert!(fft::power_per_bin(&[1.0], Window::Rect, Detrend::None).is_err());
    assert!(fft::power_per_bin(&[1.0, f64::NAN], Window::Rect, Detrend::None).is_err());
}

#[test]
fn convolver1d_equals_direct_valid_convolution() {
    let mut rng = StdRng::seed_from_u64(8);
    for (n, m) in [(10usize, 3usize), (64, 21), (33, 33), (7, 1)] {
        let x: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let k: Vec<f64> = (0..m).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let c = fft::Convolver1d::new(&k, n).unwrap();
        let mut out = vec![0.0; c.valid_len()];
        let mut ws = c.workspace();
        // Dirty workspace reuse must not matter.
        c.valid_into(&x, &mut out, &mut ws);
        c.valid_into(&x, &mut out, &mut ws);
        for (i, o) in out.iter().enumerate() {
            let d: f64 = (0..m).map(|j| x[i + j] * k[m - 1 - j]).sum();
            assert!((o - d).abs() < 1e-12);
        }
    }
    assert!(fft::Convolver1d::<f64>::new(&[1.0; 5], 4).is_err());
}

/// Two rows through one complex transform with replicate padding equal the
/// direct valid convolution of each explicitly padded row: symmetric odd
/// kernels (real spectrum) and general even/odd ones (complex spectrum).
#[test]
fn convolver1d_replicate_pair_equals_padded_direct_convolution() {
    let mut rng = StdRng::seed_from_u64(9);
    let sym = |m: usize| -> Vec<f64> {
        (0..m)
            .map(|i| (-((i as f64 - (m / 2) as f64).powi(2)) / 8.0).exp())
            .collect()
    };
    let general = |m: usize, rng: &mut StdRng| -> Vec<f64> {
        (0..m).map(|_| rng.gen_range(-1.0..1.0)).collect()
    };
    let kernels = vec![sym(9), sym(1), general(9, &mut rng), general(6, &mut rng)];
    for k in kernels {
        let m = k.len();
        let n = 40;
        let c = fft::Convolver1d::new(&k, n + m - 1).unwrap();
        let a: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let b: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let (mut oa, mut ob) = (vec![0.0; n], vec![0.0; n]);
        let mut ws = c.workspace();
        c.replicate_pair_into((&a, &b), (&mut oa, &mut ob), &mut ws);
        let left = (m - 1) / 2;
        for (x, o) in [(&a, &oa), (&b, &ob)] {
            let padded: Vec<f64> = (0..n + m - 1)
                .map(|i| x[(i as i64 - left as i64).clamp(0, n as i64 - 1) as usize])
                .collect();
            for (i, v) in o.iter().enumerate() {
                let d: f64 = (0..m).map(|j| padded[i + j] * k[m - 1 - j]).sum();
                assert!((v - d).abs() < 1e-12, "m={m} i={i}: {v} vs {d}");
            }
        }
    }
}

#[test]
fn two_d_is_independent_of_thread_count() {
    let mut rng = StdRng::seed_from_u64(9);
    let a = rand_real(&mut rng, 64, 48).mapv(|v| v as f32);
    let many = fft::rfft2(a.view());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let one = pool.install(|| fft::rfft2(a.view()));
    assert_eq!(many, one);
}

#[test]
fn transposed_layout_transforms() {
    let mut rng = StdRng::seed_from_u64(10);
    let a = rand_real(&mut rng, 20, 13);
    let t = fft::rfft2_t(a.view());
    assert_eq!(t, fft::transpose(fft::rfft2(a.view()).view()));
    let back = fft::irfft2_t(t.view(), 13);
    assert!((&back - &a).iter().all(|v| v.abs() < 1e-12));
    let p = rand_real(&mut rng, 5, 4);
    let otf = fft::psf2otf_t(p.view(), (20, 13)).unwrap();
    assert!((fft::otf2psf_t(otf.view(), 13, (5, 4)).unwrap() - &p)
        .iter()
        .all(|v| v.abs() < 1e-12));
}

#[test]
fn fast_lengths() {
    use qdscope::fft::convolve::fast_len;
    use qdscope::fft::fast_len_at_most;
    assert_eq!(fast_len_at_most(1019), 1000);
    assert_eq!(fast_len_at_most(1024), 1024);
    assert_eq!(fast_len_at_most(1), 1);
    assert_eq!(fast_len_at_most(0), 1);
    assert_eq!(fast_len(1019), 1024);
    use qdscope::fft::convolve::fast_conv_len;
    // 1250 = 2·5⁴ and 1125 = 3²·5³ are skipped for 1280 and 1152.
    assert_eq!(fast_conv_len(1224), 1280);
    assert_eq!(fast_conv_len(1104), 1152);
    assert_eq!(fast_conv_len(1024), 1024);
    assert_eq!(fast_conv_len(1), 2);
    for n in 1..300 {
        let m = fast_len_at_most(n);
        assert!(m <= n && fast_len(m) == m);
        assert!((m + 1..=n).all(|k| fast_len(k) != k));
    }
    // Against a scan, and at once for sizes a scan would never finish.
    let smooth = |m: usize| {
        let mut r = m;
        for p in [2, 3, 5] {
            while r.is_multiple_of(p) {
                r /= p;
            }
        }
        r == 1
    };
    for n in 1..3000 {
        assert_eq!(fast_len(n), (n..).find(|&m| smooth(m)).unwrap(), "{n}");
        let c = fast_conv_len(n);
        assert!(
            c >= n && c.is_multiple_of(2) && smooth(c) && !c.is_multiple_of(25),
            "{n}"
        );
    }
    assert_eq!(fast_len(usize::MAX), usize::MAX);
    assert!(fast_len(1 << 62) == 1 << 62 && fast_len((1 << 62) + 1) > 1 << 62);
    assert!(fast_len_at_most(usize::MAX) > usize::MAX / 2);
}
