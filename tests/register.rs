//! Registration and averaging (docs/methods/registration.md).
use ndarray::{s, Array2, Array3, Axis};
use qdscope::image::{Calibration, Stack};
use qdscope::stem::register::{
    average, register_pair, register_stack, shift_fourier, solve_pairs, PairShift, RegisterParams,
    Registration,
};
use qdscope::stem::synth::{generate, SynthParams};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, Normal, Poisson};

/// Gaussians σ = 2 px on a square lattice of spacing 20 px, amplitude 1.
fn lattice(n: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, n), |(y, x)| {
        let (fy, fx) = ((y % 20) as f64 - 10.0, (x % 20) as f64 - 10.0);
        (-(fy * fy + fx * fx) / 8.0).exp()
    })
}

fn blob(a: &mut Array2<f64>, cy: f64, cx: f64, sigma: f64, amp: f64) {
    for ((y, x), v) in a.indexed_iter_mut() {
        *v += amp
            * (-((y as f64 - cy).powi(2) + (x as f64 - cx).powi(2)) / (2.0 * sigma * sigma)).exp();
    }
}

fn f32a(a: &Array2<f64>) -> Array2<f32> {
    a.mapv(|v| v as f32)
}

#[test]
fn circular_case_recovers_the_shift() {
    // docs/methods/registration.md: 256², lattice + one non-periodic blob, Fourier-shifted copy by
    // s = (−22.4, 13.32), window off, u = 100: within 0.01 px for any q.
    let mut scene = lattice(256);
    blob(&mut scene, 100.0, 140.0, 6.0, 3.0);
    let reference = f32a(&scene);
    let moving = shift_fourier(reference.view(), -22.4, 13.32);
    for corr in [
        qdscope::stem::register::Correlation::Cross,
        qdscope::stem::register::Correlation::Phase,
    ] {
        let p = RegisterParams {
            window_alpha: 0.0,
            upsample: 100,
            correlation: corr,
            ..Default::default()
        };
        let s = register_pair(reference.view(), moving.view(), &p).unwrap();
        assert!(
            (s.dy + 22.4).abs() < 0.01 && (s.dx - 13.32).abs() < 0.01,
            "{corr:?}: {s:?}"
        );
    }
    // Integer shifts with wrap-around: exact.
    let rolled = Array2::from_shape_fn((256, 256), |(y, x)| {
        reference[[(y + 256 - 7) % 256, (x + 5) % 256]]
    });
    let p = RegisterParams {
        window_alpha: 0.0,
        upsample: 100,
        ..Default::default()
    };
    let s = register_pair(reference.view(), rolled.view(), &p).unwrap();
    assert!(
        (s.dy - 7.0).abs() < 1e-9 && (s.dx + 5.0).abs() < 1e-9,
        "{s:?}"
    );
}

/// The realistic frames of docs/methods/registration.md: central 256² crops of a Fourier-shifted
/// 512² scene (lattice + 6 broad blobs + ramp).
fn realistic_scene(rng: &mut StdRng) -> Array2<f32> {
    let mut scene = lattice(512);
    for _ in 0..6 {
        let (cy, cx) = (rng.gen_range(100.0..400.0), rng.gen_range(100.0..400.0));
        blob(&mut scene, cy, cx, 20.0, 2.0);
    }
    for ((_, x), v) in scene.indexed_iter_mut() {
        *v += 0.002 * x as f64;
    }
    f32a(&scene)
}

fn crop_shifted(scene: &Array2<f32>, dy: f64, dx: f64) -> Array2<f32> {
    shift_fourier(scene.view(), dy, dx)
        .slice(s![128..384, 128..384])
        .to_owned()
}

fn poisson(a: &Array2<f32>, peak_counts: f64, rng: &mut StdRng) -> Array2<f32> {
    let max = a.iter().fold(f32::MIN, |m, v| m.max(*v)) as f64;
    a.mapv(|v| {
        let lam = (v as f64 / max * peak_counts).max(1e-9);
        Poisson::new(lam).unwrap().sample(rng) as f32
    })
}

#[test]
fn realistic_frames_noise_free_and_poisson() {
    let mut rng = StdRng::seed_from_u64(21);
    let scene = realistic_scene(&mut rng);
    let reference = crop_shifted(&scene, 0.0, 0.0);
    let p = RegisterParams {
        upsample: 100,
        ..Default::default()
    };
    // Noise-free: error ≤ 0.05 px (reference implementation ≤ 0.02).
    let mut worst: f64 = 0.0;
    for _ in 0..5 {
        let (dy, dx) = (rng.gen_range(-8.0..8.0), rng.gen_range(-8.0..8.0));
        let s = register_pair(reference.view(), crop_shifted(&scene, dy, dx).view(), &p).unwrap();
        worst = worst.max(((s.dy - dy).powi(2) + (s.dx - dx).powi(2)).sqrt());
    }
    assert!(worst <= 0.05, "noise-free error {worst}");
    // Poisson, 50 counts at the scene maximum, 20 random shifts: RMS ≤ 0.06 px.
    let mut se = 0.0;
    for _ in 0..20 {
        let (dy, dx) = (rng.gen_range(-8.0..8.0), rng.gen_range(-8.0..8.0));
        let r = poisson(&reference, 50.0, &mut rng);
        let m = poisson(&crop_shifted(&scene, dy, dx), 50.0, &mut rng);
        let s = register_pair(r.view(), m.view(), &p).unwrap();
        se += (s.dy - dy).powi(2) + (s.dx - dx).powi(2);
    }
    let rms = (se / 20.0).sqrt();
    assert!(rms <= 0.06, "Poisson RMS {rms}");
}

#[test]
fn without_the_window_real_frames_fail() {
    // Documents the default: the frame edges lock an unwindowed estimate.
    let mut rng = StdRng::seed_from_u64(22);
    let scene = realistic_scene(&mut rng);
    let reference = crop_shifted(&scene, 0.0, 0.0);
    let moving = crop_shifted(&scene, 6.3, -5.7);
    let p = RegisterParams {
        upsample: 100,
        window_alpha: 0.0,
        refine_passes: 0,
        ..Default::default()
    };
    let s = register_pair(reference.view(), moving.view(), &p).unwrap();
    let err = ((s.dy - 6.3).powi(2) + (s.dx + 5.7).powi(2)).sqrt();
    assert!(err > 0.05, "expected failure without window, error {err}");
}

#[test]
fn all_pairs_drop_one_corrupted_pair() {
    // F = 10 frames, 45 pairs (the case of docs/methods/registration.md), one pair corrupted by +10 px.
    let truth = [
        (0.0, 0.0),
        (1.3, -2.2),
        (-0.7, 0.4),
        (2.9, 1.1),
        (-1.5, -2.8),
        (0.2, 2.6),
        (2.2, 2.2),
        (-2.9, 0.9),
        (1.7, -0.3),
        (-0.4, -1.9),
    ];
    let f = truth.len();
    let mut rng = StdRng::seed_from_u64(23);
    let noise = Normal::new(0.0, 0.003).unwrap();
    let mut pairs = Vec::new();
    let mut meas = Vec::new();
    for i in 0..f {
        for j in i + 1..f {
            pairs.push((i, j));
            let (ny, nx) = (noise.sample(&mut rng), noise.sample(&mut rng));
            meas.push(PairShift {
                dy: truth[j].0 - truth[i].0 + ny,
                dx: truth[j].1 - truth[i].1 + nx,
                score: 1.0,
            });
        }
    }
    meas[4].dy += 10.0; // pair (0, 5) corrupted by +10 px
    let t = solve_pairs(f, &pairs, &meas).unwrap();
    for (a, b) in t.iter().zip(truth) {
        assert!(
            (a.0 - b.0).abs() < 0.02 && (a.1 - b.1).abs() < 0.02,
            "{a:?} vs {b:?}"
        );
    }
}

#[test]
fn averaging_reduces_noise_by_sqrt_f() {
    let (f, sigma) = (8usize, 1.0f64);
    let mut rng = StdRng::seed_from_u64(24);
    let normal = Normal::new(0.0, sigma).unwrap();
    let data = Array3::from_shape_fn((f, 256, 256), |_| normal.sample(&mut rng) as f32);
    let stack = Stack::new(data, Calibration::Uncalibrated).unwrap();
    let reg = Registration {
        shifts: vec![
            PairShift {
                dy: 0.0,
                dx: 0.0,
                score: 1.0
            };
            f
        ],
        rejected: vec![],
        passes: 0,
        warnings: Default::default(),
    };
    let avg = average(&stack, &reg, true).unwrap();
    let n = avg.data.len() as f64;
    let m = avg.data.iter().map(|v| *v as f64).sum::<f64>() / n;
    let sd = (avg
        .data
        .iter()
        .map(|v| (*v as f64 - m).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    let want = sigma / (f as f64).sqrt();
    assert!((sd / want - 1.0).abs() < 0.05, "{sd} vs {want}");
}

fn synth_stack(seed: u64, frames: usize) -> (Stack, Vec<(f64, f64)>) {
    let p = SynthParams {
        rows: 256,
        cols: 256,
        frames,
        n_cells: 8,
        seed,
        ..SynthParams::default()
    };
    let (s, t) = generate(&p).unwrap();
    (s, t.shifts_px)
}

fn rms_error(reg: &Registration, truth: &[(f64, f64)], skip: &[usize]) -> f64 {
    let mut se = 0.0;
    let mut n = 0.0;
    for (i, (s, t)) in reg.shifts.iter().zip(truth).enumerate() {
        if skip.contains(&i) {
            continue;
        }
        se += (s.dy - t.0).powi(2) + (s.dx - t.1).powi(2);
        n += 1.0;
    }
    (se / n).sqrt()
}

#[test]
fn stack_with_known_drift() {
    // 10 frames, drift ±3 px sub-pixel, demo noise: RMS ≤ 0.06 px.
    let (stack, truth) = synth_stack(31, 10);
    let reg = register_stack(&stack, &RegisterParams::default()).unwrap();
    assert!(reg.rejected.is_empty(), "{:?}", reg.rejected);
    let rms = rms_error(&reg, &truth, &[]);
    assert!(rms <= 0.06, "RMS {rms}");
    // Independent of the number of threads.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let one = pool.install(|| register_stack(&stack, &RegisterParams::default()).unwrap());
    assert_eq!(one, reg);
    // The average is cropped to the common field of view.
    let avg = average(&stack, &reg, true).unwrap();
    let (ny, nx) = avg.shape();
    assert!(
        ny <= 256 && nx <= 256 && ny >= 256 - 7 && nx >= 256 - 7,
        "{ny}x{nx}"
    );
}

#[test]
fn outlier_frame_is_rejected() {
    let (mut stack, truth) = synth_stack(32, 8);
    let mut rng = StdRng::seed_from_u64(33);
    let noise = Normal::new(30.0, 8.0).unwrap();
    stack
        .data
        .index_axis_mut(Axis(0), 5)
        .mapv_inplace(|_| noise.sample(&mut rng) as f32);
    let reg = register_stack(&stack, &RegisterParams::default()).unwrap();
    assert_eq!(reg.rejected, vec![5]);
    assert!(rms_error(&reg, &truth, &[5]) <= 0.06);
    assert!(!reg.warnings.is_empty());
}

#[test]
fn single_frame_and_bad_frames() {
    let (stack, _) = synth_stack(34, 1);
    let reg = register_stack(&stack, &RegisterParams::default()).unwrap();
    assert_eq!(reg.shifts.len(), 1);
    assert_eq!(
        average(&stack, &reg, true).unwrap().data,
        stack.frame(0).to_owned()
    );
    let (mut stack, _) = synth_stack(35, 3);
    stack.data.index_axis_mut(Axis(0), 2).fill(4.0);
    let e = register_stack(&stack, &RegisterParams::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("frame 2: constant frame"), "{e}");
    stack.data[[1, 10, 12]] = f32::NAN;
    let e = register_stack(&stack, &RegisterParams::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("frame 1 pixel (y=10, x=12)"), "{e}");
    let tiny = Stack::new(
        Array3::from_shape_fn((2, 4, 4), |(_, y, x)| (x + y) as f32),
        Calibration::Uncalibrated,
    )
    .unwrap();
    assert!(register_stack(&tiny, &RegisterParams::default()).is_err());
}
