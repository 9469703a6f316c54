//! 7-parameter Gaussian fits under Poisson noise against the Cramér–Rao
//! bound (stem spec §6).
use nalgebra::{DMatrix, DVector};
use ndarray::Array2;
use qdscope::stem::gaussian::{fit_column, model_jacobian, FitParams, Gaussian7, Neighbours};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Poisson};

fn truth() -> Gaussian7 {
    Gaussian7 {
        baseline: 10.0,
        height: 200.0,
        x0: 20.3,
        y0: 19.7,
        sigma_x: 2.5,
        sigma_y: 1.8,
        rotation: 0.4,
    }
}

/// CRB of (x₀, y₀) for Poisson data over the pixels within `r` of the
/// start (20, 20) — the window the fit uses.
fn crb(g: &Gaussian7, r: f64) -> (f64, f64) {
    let mut f = DMatrix::<f64>::zeros(7, 7);
    for y in 0..41 {
        for x in 0..41 {
            let (xf, yf) = (x as f64, y as f64);
            if (xf - 20.0).hypot(yf - 20.0) > r {
                continue;
            }
            let mu = g.at(xf, yf);
            let d = DVector::from_row_slice(&model_jacobian(g, xf, yf));
            f += &d * d.transpose() / mu;
        }
    }
    let inv = f.try_inverse().unwrap();
    (inv[(2, 2)].sqrt(), inv[(3, 3)].sqrt())
}

#[test]
fn poisson_precision_near_cramer_rao() {
    let g = truth();
    let r = 19.5;
    let (cx, cy) = crb(&g, r);
    // The spec's values for the whole 41×41 frame: 0.0384 / 0.0306 px; the
    // disk of radius 19.5 px holds nearly all the information.
    assert!(
        (cx - 0.0384).abs() < 0.002 && (cy - 0.0306).abs() < 0.002,
        "{cx} {cy}"
    );
    let mean = Array2::from_shape_fn((41, 41), |(y, x)| g.at(x as f64, y as f64));
    let mut rng = StdRng::seed_from_u64(11);
    for (weights, limit) in [(true, 1.15), (false, 1.25)] {
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0);
        for _ in 0..500 {
            let img = mean.mapv(|m| Poisson::new(m).unwrap().sample(&mut rng));
            let f = fit_column(
                img.view(),
                (20.0, 20.0),
                &FitParams {
                    radius_px: r,
                    poisson_weights: weights,
                    neighbours: Neighbours::Single,
                    sweeps: 0,
                },
                &|_, _| 0.0,
            );
            assert!(f.converged());
            sx += (f.params.x0 - g.x0).powi(2);
            sy += (f.params.y0 - g.y0).powi(2);
            n += 1;
        }
        let (rx, ry) = ((sx / n as f64).sqrt() / cx, (sy / n as f64).sqrt() / cy);
        println!("weights {weights}: RMS/CRB x {rx:.3}, y {ry:.3}");
        assert!(rx < limit && ry < limit, "weights {weights}: {rx} {ry}");
        assert!(
            rx > 0.85 && ry > 0.85,
            "suspiciously below the bound: {rx} {ry}"
        );
    }
}

#[test]
fn result_is_independent_of_thread_count() {
    use qdscope::stem::gaussian::fit_columns;
    let g = truth();
    let mut rng = StdRng::seed_from_u64(3);
    // A row of 12 noisy columns.
    let img = Array2::from_shape_fn((41, 300), |(y, x)| {
        let m: f64 = (0..12)
            .map(|k| {
                Gaussian7 {
                    x0: 12.0 + 24.0 * k as f64,
                    ..g
                }
                .peak_at(x as f64, y as f64)
            })
            .sum::<f64>()
            + 10.0;
        Poisson::new(m).unwrap().sample(&mut rng)
    });
    let starts: Vec<(f64, f64)> = (0..12).map(|k| (12.0 + 24.0 * k as f64, 20.0)).collect();
    let opts = FitParams {
        radius_px: 8.0,
        poisson_weights: false,
        neighbours: Neighbours::Sweep,
        sweeps: 2,
    };
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| fit_columns(img.view(), &starts, &opts).unwrap())
    };
    assert_eq!(run(1), run(3));
}
