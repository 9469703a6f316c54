//! Tests of the joint fit on scenes with known volumes.

use super::linear::Shape;
use super::*;
use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::Distribution;

/// Columns on a two-class square lattice (spacing `a` px, body-centred
/// second class), each a round Gaussian of volume V and class width.
fn scene(n: usize, a: f64, v: [f64; 2], s: [f64; 2], bg: f64) -> (Array2<f64>, Vec<JointColumn>) {
    let mut img = Array2::<f64>::from_elem((n, n), bg);
    let mut cols = Vec::new();
    let m = (n as f64 / a) as i64;
    for i in 0..=m {
        for j in 0..=m {
            for c in 0..2 {
                let off = 0.5 * c as f64;
                let (x, y) = (a * (i as f64 + off) + 3.3, a * (j as f64 + off) + 2.7);
                if x > n as f64 - 3.0 || y > n as f64 - 3.0 {
                    continue;
                }
                cols.push(JointColumn {
                    x: x + 0.4,
                    y: y - 0.3,
                    class: c,
                    fixed: false,
                });
                let norm = v[c] / (std::f64::consts::TAU * s[c] * s[c]);
                for ((yy, xx), p) in img.indexed_iter_mut() {
                    let r2 = (xx as f64 - x).powi(2) + (yy as f64 - y).powi(2);
                    if r2 < 100.0 * s[c] * s[c] {
                        *p += norm * (-r2 / (2.0 * s[c] * s[c])).exp();
                    }
                }
            }
        }
    }
    (img, cols)
}

/// Adds a round Gaussian column of volume `v` and width `s` at (x, y) to
/// `img` (out to 8σ).
fn add_column(img: &mut Array2<f64>, (x, y): (f64, f64), v: f64, s: f64) {
    let norm = v / (std::f64::consts::TAU * s * s);
    for ((yy, xx), p) in img.indexed_iter_mut() {
        let r2 = (xx as f64 - x).powi(2) + (yy as f64 - y).powi(2);
        if r2 < 64.0 * s * s {
            *p += norm * (-r2 / (2.0 * s * s)).exp();
        }
    }
}

/// Column sites of a perovskite [001] projection on an n² image (spacing
/// a px, origin at (1, 1)): class 0 at the corners, 1 at the body centres,
/// 2 (anion-only) between them.
fn perovskite_sites(n: usize, a: f64) -> Vec<(f64, f64, usize)> {
    let m = (n as f64 / (a / 2.0)) as usize;
    let mut out = Vec::new();
    for j in 0..=m {
        for i in 0..=m {
            let class = if (i + j) % 2 == 1 {
                2
            } else if i % 2 == 0 {
                0
            } else {
                1
            };
            out.push((1.0 + i as f64 * a / 2.0, 1.0 + j as f64 * a / 2.0, class));
        }
    }
    out
}

/// Settings for the three classes of a perovskite scene (columns of
/// width ≈ `s0` px, lattice `a` px; the anion width tied to the mean of
/// the other two), background grid 0.7a, round, plain least squares.
fn perovskite_params(s0: f64, a: f64) -> JointParams {
    JointParams {
        sigma_px: vec![s0; 3],
        reach_sigma: 4.0,
        background_spacing_px: 0.7 * a,
        max_step_px: 1.0,
        max_shift_px: 0.25 * a,
        iterations: 15,
        position_smoothing_px: 0.0,
        width_map: vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.5, 0.5]],
        elliptical: false,
        robust: false,
        plateau_sites: Vec::new(),
        background_axes: None,
    }
}

#[test]
fn overlapping_two_class_volumes_are_unbiased() {
    // σ = 0.25 and 0.3 × the nearest-neighbour distance a/√2: a
    // single-column fit is biased by several %, the joint fit not.
    let a = 20.0;
    let nn = a / 2f64.sqrt();
    for (sb, sd) in [(0.25 * nn, 0.25 * nn), (0.22 * nn, 0.25 * nn)] {
        let (img, cols) = scene(128, a, [100.0, 40.0], [sb, sd], 5.0);
        let p = JointParams {
            sigma_px: vec![0.8 * sb, 0.8 * sb],
            reach_sigma: 4.0,
            background_spacing_px: 2.0 * a,
            max_step_px: 1.0,
            max_shift_px: 0.25 * a,
            iterations: 60,
            position_smoothing_px: 0.0,
            width_map: Vec::new(),
            elliptical: false,
            robust: false,
            plateau_sites: Vec::new(),
            background_axes: None,
        };
        let f = fit(img.view(), None, &cols, &p).unwrap();
        // Interior columns: ≥ 2 a from the image edge.
        let pick = |c: usize| -> f64 {
            let v: Vec<f64> = (0..cols.len())
                .filter(|&i| {
                    cols[i].class == c
                        && f.x[i] > 2.0 * a
                        && f.y[i] > 2.0 * a
                        && f.x[i] < 128.0 - 2.0 * a
                        && f.y[i] < 128.0 - 2.0 * a
                })
                .map(|i| f.volume[i])
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let r = pick(1) / pick(0);
        assert!((r - 0.4).abs() < 1e-3, "σ {sb:.2}/{sd:.2}: ratio {r}");
        assert!(
            (f.sigma_px[0] - sb).abs() < 1e-3 && (f.sigma_px[1] - sd).abs() < 1e-3,
            "{:?} vs {sb} {sd}, {} iterations, converged {}",
            f.sigma_px,
            f.iterations,
            f.converged
        );
    }
}

#[test]
fn elliptical_columns_share_one_shape() {
    // Two classes (dim/bright 0.4) plus weak anion columns, all
    // elliptical (axis ratio 1.1 at 30°, σ = 0.22 × the NN distance):
    // the shared shape is recovered and the ratio stays within 2e-3
    // (round stamps on this scene: 0.0087 mean error on the testbed).
    let (a, n) = (16.0, 160usize);
    let nn = a / 2f64.sqrt();
    let (s, ratio) = (0.22 * nn, 0.4);
    let q = (1.1f64.powi(2) - 1.0) / (1.1f64.powi(2) + 1.0);
    let (q1, q2) = (q * 60f64.to_radians().cos(), q * 60f64.to_radians().sin());
    let shape = Shape { q1, q2 };
    let mut img = ndarray::Array2::<f64>::from_elem((n, n), 5.0);
    let mut cols = Vec::new();
    for (x, y, class) in perovskite_sites(n, a) {
        let v = [100.0 * ratio, 100.0, 15.0][class] * s * s;
        let norm = v / (std::f64::consts::TAU * s * s);
        for ((yy, xx), p) in img.indexed_iter_mut() {
            let r2 = shape.quad(xx as f64 - x, yy as f64 - y);
            if r2 < 64.0 * s * s {
                *p += norm * (-r2 / (2.0 * s * s)).exp();
            }
        }
        // Anion columns are fixed at their (true) sites.
        let off = if class == 2 { 0.0 } else { 1.0 };
        cols.push(JointColumn {
            x: x + 0.3 * off,
            y: y - 0.2 * off,
            class,
            fixed: class == 2,
        });
    }
    let p = JointParams {
        background_spacing_px: 2.0 * a,
        iterations: 40,
        position_smoothing_px: 0.0,
        elliptical: true,
        ..perovskite_params(0.8 * s, a)
    };
    let f = fit(img.view(), None, &cols, &p).unwrap();
    let interior = |i: usize| {
        let (x, y) = (cols[i].x, cols[i].y);
        let lim = n as f64 - 2.0 * a;
        x > 2.0 * a && x < lim && y > 2.0 * a && y < lim
    };
    let mean = |c: usize| {
        let v: Vec<f64> = (0..cols.len())
            .filter(|&i| cols[i].class == c && interior(i))
            .map(|i| f.volume[i])
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let r = mean(0) / mean(1);
    assert!(
        (r - ratio).abs() < 2e-3,
        "ratio {r}, axis ratio {}",
        f.axis_ratio()
    );
    assert!((f.axis_ratio() - 1.1).abs() < 0.01, "{}", f.axis_ratio());
    let (_, _, angle) = f.axes(0);
    assert!(
        (angle.to_degrees() - 30.0).abs() < 2.0,
        "{}",
        angle.to_degrees()
    );
}

#[test]
fn robust_weights_keep_support_texture_out_of_the_volumes() {
    // A perovskite [001] scene — corner (dim, volume 0.4), body-centre
    // (bright) and weak anion columns (0.15, fixed at their sites, width
    // tied to the mean) at σ = 0.22 × the NN distance — under a texture
    // of positive blobs (σ 0.4–1.0 of the column σ, peak up to the dim
    // columns' peak, ~0.6 per cell), noise-free. Least squares lets the
    // blobs near a column add to its volume and width; the dim class gains
    // relatively more and the ratio rises. Tukey weights keep most blobs
    // out. Measured: plain +0.099, robust +0.018 (+0.021 before the
    // support's excess was taken out of the volumes; blobs as wide as the
    // columns are not outliers).
    use rand::{Rng, SeedableRng};
    let (a, n) = (16.0, 160usize);
    let nn = a / 2f64.sqrt();
    let s = 0.22 * nn;
    let mut img = Array2::<f64>::from_elem((n, n), 5.0);
    let mut cols = Vec::new();
    let add = |img: &mut Array2<f64>, x: f64, y: f64, v: f64, w: f64| {
        let norm = v / (std::f64::consts::TAU * w * w);
        for ((yy, xx), p) in img.indexed_iter_mut() {
            let r2 = (xx as f64 - x).powi(2) + (yy as f64 - y).powi(2);
            if r2 < 36.0 * w * w {
                *p += norm * (-r2 / (2.0 * w * w)).exp();
            }
        }
    };
    for (x, y, class) in perovskite_sites(n, a) {
        add(&mut img, x, y, [40.0, 100.0, 15.0][class], s);
        cols.push(JointColumn {
            x,
            y,
            class,
            fixed: class == 2,
        });
    }
    let dim_peak = 40.0 / (std::f64::consts::TAU * s * s);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..(0.6 * (n as f64 / a).powi(2)) as usize {
        let (bx, by) = (rng.gen::<f64>() * n as f64, rng.gen::<f64>() * n as f64);
        let bs = s * (0.4 + 0.6 * rng.gen::<f64>());
        let h = dim_peak * rng.gen::<f64>();
        add(&mut img, bx, by, h * std::f64::consts::TAU * bs * bs, bs);
    }
    let ratio = |robust: bool| {
        let p = JointParams {
            robust,
            ..perovskite_params(0.9 * s, a)
        };
        let f = fit(img.view(), None, &cols, &p).unwrap();
        let mean = |c: usize| {
            let lim = n as f64 - 2.0 * a;
            let v: Vec<f64> = (0..cols.len())
                .filter(|&i| {
                    cols[i].class == c
                        && (2.0 * a..lim).contains(&f.x[i])
                        && (2.0 * a..lim).contains(&f.y[i])
                })
                .map(|i| f.volume[i])
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        mean(0) / mean(1)
    };
    let (plain, robust) = (ratio(false) - 0.4, ratio(true) - 0.4);
    eprintln!("texture: plain {plain:+.4}, robust {robust:+.4}");
    assert!(robust.abs() < 0.025, "robust ratio error {robust:+.4}");
    assert!(
        robust.abs() < 0.3 * plain.abs(),
        "plain {plain:+.4}, robust {robust:+.4}"
    );
}

/// A small perovskite particle (`cells`² unit cells, spacing `a` px,
/// σ = `s` px, dim/bright volume 0.4, anion columns 0.15) on a support that
/// is `plateau(x, y)` higher under it; fitted with the refit's settings in
/// the particle's outline grown by 0.7a (the crystal mask reaches about
/// as far), with and without the plateau term. Returns
/// the ratio errors (without, with).
fn plateau_errors(cells: usize, a: f64, s: f64, plateau: &dyn Fn(f64, f64) -> f64) -> (f64, f64) {
    let n = ((cells as f64 + 3.0) * a) as usize;
    let o = 1.5 * a + 0.37;
    let mut img = Array2::<f64>::from_shape_fn((n, n), |(y, x)| 4.0 + plateau(x as f64, y as f64));
    let mut cols = Vec::new();
    let mut sites = Vec::new();
    for j in 0..=2 * cells {
        for i in 0..=2 * cells {
            let class = if (i + j) % 2 == 1 {
                2
            } else if i % 2 == 0 {
                0
            } else {
                1
            };
            let (x, y) = (o + 0.5 * a * i as f64, o + 0.5 * a * j as f64);
            add_column(&mut img, (x, y), [40.0, 100.0, 15.0][class] * s * s, s);
            cols.push(JointColumn {
                x,
                y,
                class,
                fixed: class == 2,
            });
            if class < 2 {
                sites.push([x, y]);
            }
        }
    }
    let hull = plateau::convex_hull(&sites);
    let within = Array2::from_shape_fn((n, n), |(y, x)| {
        plateau::signed_distance(&hull, x as f64, y as f64) > -0.7 * a
    });
    let err = |plateau_sites: Vec<[f64; 2]>| {
        let p = JointParams {
            iterations: 30,
            elliptical: true,
            robust: true,
            plateau_sites,
            ..perovskite_params(0.9 * s, a)
        };
        let f = fit(img.view(), Some(within.view()), &cols, &p).unwrap();
        // Interior: every column but the outermost ring of each class.
        let mean = |c: usize| {
            let v: Vec<f64> = (0..cols.len())
                .filter(|&i| {
                    cols[i].class == c
                        && plateau::signed_distance(&hull, cols[i].x, cols[i].y) > 0.4 * a
                })
                .map(|i| f.volume[i])
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        mean(0) / mean(1) - 0.4
    };
    (err(Vec::new()), err(sites.clone()))
}

#[test]
fn plateau_term_takes_up_a_support_step_under_the_particle() {
    // σ = 0.24 × the NN distance, a plateau of 0.3 × the bright peak.
    // (1) A square step along the outline (edge σ 0.15a): the model's own
    // form. (2) A step built differently from the model: a rounded
    // outline (a disk of radius 1.1 × the particle's half width, edge
    // 0.3a), outside the hull at its sides and cutting its corners.
    // Noise-free; without the term the shared widths grow into the step.
    let (a, cells) = (18.0, 5usize);
    let s = 0.24 * a / 2f64.sqrt();
    let peak = 100.0 / std::f64::consts::TAU;
    let o = 1.5 * a + 0.37;
    let half = 0.5 * cells as f64 * a;
    let (cx, cy) = (o + half, o + half);
    let soft = |d: f64, e: f64| plateau::step(d, 0.0, e);
    let square = move |x: f64, y: f64| {
        0.3 * peak * soft(half - (x - cx).abs(), 0.15 * a) * soft(half - (y - cy).abs(), 0.15 * a)
    };
    let r = 1.1 * half;
    let disk = move |x: f64, y: f64| 0.3 * peak * soft(r - (x - cx).hypot(y - cy), 0.3 * a);
    // Measured (robust scale following the model value): square +0.117 →
    // −0.0016; disk +0.022 → +0.0165 (the rounded outline is not the
    // term's form; the grid takes the rest. With one MAD scale for every
    // pixel it was +0.033 → +0.015; before the stopping rule's width
    // tolerance went from 10⁻⁴ to 10⁻³ and the start widths were solved as
    // one least-squares problem, +0.028 → +0.016).
    for (name, f, limit, gain) in [
        ("square", &square as &dyn Fn(f64, f64) -> f64, 0.005, 0.5),
        ("disk", &disk, 0.02, 0.8),
    ] {
        let (without, with) = plateau_errors(cells, a, s, f);
        eprintln!("{name} plateau: without {without:+.4}, with {with:+.4}");
        assert!(with.abs() < limit, "{name}: with the term {with:+.4}");
        assert!(
            with.abs() < gain * without.abs(),
            "{name}: without {without:+.4}, with {with:+.4}"
        );
    }
    // No plateau: the term costs nothing.
    let (without, with) = plateau_errors(cells, a, s, &|_, _| 0.0);
    eprintln!("no plateau: without {without:+.4}, with {with:+.4}");
    assert!(
        with.abs() < 0.003 && without.abs() < 0.003,
        "{without:+.4} {with:+.4}"
    );
}

#[test]
fn columns_stay_within_their_shift_bound() {
    // A bright column, and a site 4 px from a weak blob: free, the site's
    // column walks onto the blob; bounded, it stops 2 px from its start.
    let n = 96;
    let mut img = Array2::<f64>::from_elem((n, n), 2.0);
    for (cx, cy, v, s) in [(30.0, 48.0, 400.0, 2.5), (62.0, 48.0, 120.0, 2.5)] {
        let norm = v / (std::f64::consts::TAU * s * s);
        for ((yy, xx), p) in img.indexed_iter_mut() {
            let r2: f64 = (xx as f64 - cx).powi(2) + (yy as f64 - cy).powi(2);
            *p += norm * (-r2 / (2.0 * s * s)).exp();
        }
    }
    let cols = [
        JointColumn {
            x: 30.3,
            y: 47.8,
            class: 0,
            fixed: false,
        },
        JointColumn {
            x: 58.0,
            y: 48.0,
            class: 0,
            fixed: false,
        },
    ];
    let fit_with = |max_shift_px: f64| {
        let p = JointParams {
            sigma_px: vec![2.5],
            reach_sigma: 4.0,
            background_spacing_px: 32.0,
            max_step_px: 1.0,
            max_shift_px,
            iterations: 40,
            position_smoothing_px: 0.0,
            width_map: Vec::new(),
            elliptical: false,
            robust: false,
            plateau_sites: Vec::new(),
            background_axes: None,
        };
        fit(img.view(), None, &cols, &p).unwrap()
    };
    let free = fit_with(100.0);
    assert!(
        (free.x[1] - 62.0).abs() < 0.5,
        "free: the site's column at x = {}",
        free.x[1]
    );
    let bounded = fit_with(2.0);
    let shift = (bounded.x[1] - 58.0).hypot(bounded.y[1] - 48.0);
    assert!(shift <= 2.0 + 1e-9, "bounded: moved {shift} px");
    assert!(shift > 1.9, "bounded: moved only {shift} px");
    // The bright column is not held back.
    assert!((bounded.x[0] - 30.0).abs() < 0.05, "{}", bounded.x[0]);
}

#[test]
fn start_widths_solve_the_tied_map_exactly() {
    // The anion width tied to the mean of the other two: the start is the
    // two class widths, not 20 % more (a per-parameter fit's answer).
    let map = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.5, 0.5]];
    let theta = start_widths(&map, &[1.7, 1.9, 1.8]);
    assert!(
        (theta[0] - 1.7).abs() < 1e-12 && (theta[1] - 1.9).abs() < 1e-12,
        "{theta:?}"
    );
    let theta = start_widths(&map, &[2.0, 2.0, 2.0]);
    assert!(theta.iter().all(|t| (t - 2.0).abs() < 1e-12), "{theta:?}");
}

#[test]
fn a_refit_settles_and_a_fit_from_its_result_agrees_at_once() {
    // A perovskite particle without a plateau, fitted with the plateau
    // term, robust weights and a shared shape (the volume refit's model),
    // with Poisson-like noise. The plateau of no height must not hold the
    // fit to its iteration limit; a fit started from the result must stop
    // within 3 iterations with the same volumes.
    let (a, s) = (16.0, 2.2);
    let n = 8 * a as usize;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut img = Array2::<f64>::from_elem((n, n), 5.0);
    let mut cols = Vec::new();
    let mut sites = Vec::new();
    for (x, y, class) in perovskite_sites(n - 2 * a as usize, a) {
        let (x, y) = (x + a, y + a);
        add_column(&mut img, (x, y), [40.0, 100.0, 15.0][class] * s * s, s);
        cols.push(JointColumn {
            x: x + 0.3,
            y: y - 0.2,
            class,
            fixed: class == 2,
        });
        if class < 2 {
            sites.push([x, y]);
        }
    }
    img.mapv_inplace(|v| {
        let z: f64 = rand_distr::StandardNormal.sample(&mut rng);
        v + v.sqrt() * z
    });
    let p = JointParams {
        iterations: 12,
        elliptical: true,
        robust: true,
        position_smoothing_px: a,
        plateau_sites: sites,
        ..perovskite_params(0.9 * s, a)
    };
    let first = fit(img.view(), None, &cols, &p).expect("fit");
    assert!(
        first.converged,
        "no plateau in the scene, yet {} iterations without settling",
        first.iterations
    );
    let again = fit_from(img.view(), None, &cols, &p, Some(&first)).expect("fit from");
    assert!(
        again.converged && again.iterations <= 3,
        "{} iterations",
        again.iterations
    );
    // The same volumes of the cation columns to a small part of their
    // noise (peaks of 6–16 counts on 5: ≈ 10 % per column; measured 1.2 %
    // at most), and the same ratio of the class means to within what the
    // first fit's stopping rule leaves (widths to 10⁻³).
    let worst = (0..cols.len())
        .filter(|&i| cols[i].class < 2)
        .map(|i| (first.volume[i] - again.volume[i]).abs() / first.volume[i].abs())
        .fold(0.0, f64::max);
    let ratio = |f: &JointFit| {
        let mean = |c: usize| {
            let v: Vec<f64> = (0..cols.len())
                .filter(|&i| cols[i].class == c)
                .map(|i| f.volume[i])
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        mean(0) / mean(1)
    };
    let (r0, r1) = (ratio(&first), ratio(&again));
    eprintln!("from its result: largest volume change {worst:.2e}, ratio {r0:.5} → {r1:.5}, iterations {} then {}", first.iterations, again.iterations);
    assert!(worst < 3e-2, "a volume moved by {worst:.2e}");
    assert!((r0 - r1).abs() < 2e-3, "ratio {r0} → {r1}");
    // A start for other columns is an error, not a silent mismatch.
    let err = fit_from(img.view(), None, &cols[1..], &p, Some(&first)).unwrap_err();
    assert!(err.to_string().contains("start"), "{err}");
}
