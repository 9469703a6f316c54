//! Stack registration: all-pairs least squares with robust pair rejection,
//! re-registration passes against the leave-one-out mean, outlier-frame
//! rejection, and averaging over the common field of view.

use nalgebra::{DMatrix, DVector};
use ndarray::{s, Array2, Axis};
use num_complex::Complex;
use rayon::prelude::*;

use super::pair::Context;
use super::{
    apply_shift, check_stack, single, validate, widen, PairShift, RegisterParams, Registration,
};
use crate::error::{Error, Result, Warnings};
use crate::fft;
use crate::image::{Image, Stack};

/// Register every frame of `stack` (see the module doc for the algorithm).
///
/// # Errors
/// NaN/Inf pixels, frames smaller than 8×8, a constant frame (each naming the
/// frame), bad parameters, a pair graph that falls apart.
pub fn register_stack(stack: &Stack, params: &RegisterParams) -> Result<Registration> {
    validate(params)?;
    check_stack(stack)?;
    let f = stack.n_frames();
    if f == 1 {
        return Ok(Registration::single_frame());
    }
    let (ny, nx) = stack.frame_shape();
    let ctx = Context::new(ny, nx, params);
    let mut warnings = Warnings::default();

    // 1. All pairs from cached windowed spectra.
    let spectra: Vec<_> = (0..f)
        .into_par_iter()
        .map(|i| ctx.spectrum(stack.frame(i)))
        .collect();
    let pairs: Vec<(usize, usize)> = (0..f)
        .flat_map(|i| (i + 1..f).map(move |j| (i, j)))
        .collect();
    let measured: Vec<PairShift> = pairs
        .par_iter()
        .map(|&(i, j)| ctx.correlate_with(&spectra[i], &spectra[j], false))
        .collect();
    drop(spectra);
    let mut active: Vec<bool> = vec![true; f];
    let mut t = robust_solve(
        f,
        &pairs,
        &measured,
        params.reject_outliers,
        &mut active,
        &mut warnings,
    )?;

    // 2. Passes against the leave-one-out mean; 3. outlier frames.
    let spectra_raw: Vec<Array2<Complex<f32>>> = (0..f)
        .into_par_iter()
        .map(|i| fft::rfft2_t(stack.frame(i)))
        .collect();
    let window = ctx.window_spectrum();
    let tol = 1.0 / ctx.upsample as f64;
    let mut scores = vec![0.0; f];
    let mut passes = 0;
    loop {
        for _ in 0..params.refine_passes.max(1) {
            let (delta, sc) = pass(&ctx, &spectra_raw, &window, &t, &active);
            let mut maxd: f64 = 0.0;
            for i in 0..f {
                t[i].0 += delta[i].0;
                t[i].1 += delta[i].1;
                if active[i] {
                    maxd = maxd.max(delta[i].0.abs()).max(delta[i].1.abs());
                }
            }
            scores = sc;
            passes += 1;
            regauge(&mut t, &active);
            if params.refine_passes == 0 || maxd < tol {
                break;
            }
        }
        if !params.reject_outliers || active.iter().filter(|a| **a).count() <= 2 {
            break;
        }
        let mut ks: Vec<f64> = (0..f).filter(|&i| active[i]).map(|i| scores[i]).collect();
        ks.sort_by(f64::total_cmp);
        let med = median_sorted(&ks);
        let mut dev: Vec<f64> = ks.iter().map(|s| (s - med).abs()).collect();
        dev.sort_by(f64::total_cmp);
        let mad = 1.4826 * median_sorted(&dev);
        let thr = med - (5.0 * mad).max(0.1 * med.abs());
        let worst = (0..f)
            .filter(|&i| active[i])
            .min_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        match worst {
            Some(w) if scores[w] < thr => {
                active[w] = false;
                warnings.push(format!(
                    "frame {w}: correlation score {:.3} far below the median {med:.3}, rejected",
                    scores[w]
                ));
            }
            _ => break,
        }
    }
    for i in 0..f {
        if active[i] && scores[i] < 0.1 {
            warnings.push(format!(
                "frame {i}: weak correlation peak (score {:.3})",
                scores[i]
            ));
        }
    }
    let rejected: Vec<usize> = (0..f).filter(|&i| !active[i]).collect();
    Ok(Registration {
        shifts: (0..f)
            .map(|i| PairShift {
                dy: t[i].0,
                dx: t[i].1,
                score: scores[i],
            })
            .collect(),
        rejected,
        passes,
        warnings,
    })
}

/// Robust least squares of the pair graph (Savitzky et al. 2018): solve
/// `t_j − t_i = s_ij` (gauge: first active frame at 0), then while the
/// largest residual exceeds max(3·1.4826·median, 0.25 px) drop that pair and
/// re-solve. A frame cut off from all others is marked inactive when
/// `reject_outliers` (and more than 2 frames remain); otherwise a
/// disconnected graph is an error.
pub(crate) fn robust_solve(
    f: usize,
    pairs: &[(usize, usize)],
    measured: &[PairShift],
    reject_outliers: bool,
    active: &mut [bool],
    warnings: &mut Warnings,
) -> Result<Vec<(f64, f64)>> {
    let mut keep: Vec<bool> = vec![true; pairs.len()];
    let mut t = solve(f, pairs, measured, &keep, active)?;
    loop {
        let res: Vec<(usize, f64)> = (0..pairs.len())
            .filter(|&k| keep[k])
            .map(|k| {
                let (i, j) = pairs[k];
                let r = ((measured[k].dy - (t[j].0 - t[i].0)).powi(2)
                    + (measured[k].dx - (t[j].1 - t[i].1)).powi(2))
                .sqrt();
                (k, r)
            })
            .collect();
        let mut mags: Vec<f64> = res.iter().map(|r| r.1).collect();
        mags.sort_by(f64::total_cmp);
        let med = median_sorted(&mags);
        let thr = (3.0 * 1.4826 * med).max(0.25);
        let Some(&(worst, r)) = res.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
            break;
        };
        if r <= thr {
            break;
        }
        keep[worst] = false;
        if !connected(f, pairs, &keep, active) {
            // A frame cut off from the rest is an outlier frame, not a failure.
            let (i, j) = pairs[worst];
            let isolated = [i, j].into_iter().find(|&n| {
                !pairs
                    .iter()
                    .enumerate()
                    .any(|(k, p)| keep[k] && (p.0 == n || p.1 == n))
            });
            match isolated {
                Some(n) if reject_outliers && active.iter().filter(|a| **a).count() > 2 => {
                    active[n] = false;
                    warnings.push(format!("frame {n}: inconsistent with every other frame, rejected"));
                }
                _ => {
                    return Err(Error::Numerical {
                        what: "registration".into(),
                        reason: format!(
                            "pair ({i}, {j}) disagrees by {r:.2} px and dropping it disconnects the frames; try `max_shift_px` or check the stack"
                        ),
                    })
                }
            }
        }
        t = solve(f, pairs, measured, &keep, active)?;
    }

    Ok(t)
}

/// Solve a pair graph of measured shifts (`measured[k]` is the shift of
/// frame `pairs[k].1` relative to `pairs[k].0`) robustly: returns the shift
/// of every frame (frame 0 at the origin).
///
/// # Errors
/// `Error::Numerical` if dropping inconsistent pairs disconnects the graph.
pub fn solve_pairs(
    n_frames: usize,
    pairs: &[(usize, usize)],
    measured: &[PairShift],
) -> Result<Vec<(f64, f64)>> {
    if pairs.len() != measured.len() || pairs.iter().any(|p| p.0 >= n_frames || p.1 >= n_frames) {
        return Err(Error::shape(
            "pair graph",
            format!("one measurement per pair, frames < {n_frames}"),
            format!("{} pairs, {} measurements", pairs.len(), measured.len()),
        ));
    }
    let mut active = vec![true; n_frames];
    robust_solve(
        n_frames,
        pairs,
        measured,
        false,
        &mut active,
        &mut Warnings::default(),
    )
}

/// One pass: every frame aligned by its current shift, registered against
/// the leave-one-out mean of the other active frames. Returns the shift
/// corrections and scores (inactive frames are measured too, for reporting).
/// The means' windowed spectra come by linearity from the frames' (the sum
/// of the others' windowed spectra over their number, less the mean's
/// value times the window's spectrum `window`): one forward FFT per frame.
fn pass(
    ctx: &Context,
    spectra: &[Array2<Complex<f32>>],
    window: &Array2<Complex<f32>>,
    t: &[(f64, f64)],
    active: &[bool],
) -> (Vec<(f64, f64)>, Vec<f64>) {
    let (ny, nx) = (ctx.ny, ctx.nx);
    // Each frame aligned, windowed and transformed, with its mean.
    let windowed: Vec<(Array2<Complex<f32>>, f64)> = spectra
        .par_iter()
        .zip(t.par_iter())
        .map(|(s, &(dy, dx))| {
            let mut s = s.clone();
            apply_shift(&mut s, ny, nx, -dy, -dx);
            let aligned = fft::irfft2_t(s.view(), nx);
            let (w, mean) = ctx.windowed(aligned.view());
            (fft::rfft2_t(w.view()), mean)
        })
        .collect();
    let n_active = active.iter().filter(|a| **a).count();
    let mut sum = Array2::<Complex<f64>>::zeros(window.raw_dim());
    let mut sum_mean = 0.0;
    for ((w, mean), on) in windowed.iter().zip(active) {
        if *on {
            sum.zip_mut_with(w, |s, v| *s += widen(*v));
            sum_mean += mean;
        }
    }
    windowed
        .par_iter()
        .enumerate()
        .map(|(i, (w, mean))| {
            let (own, n) = if active[i] {
                (1.0, n_active - 1)
            } else {
                (0.0, n_active)
            };
            let n = n.max(1) as f64;
            let mut others = Array2::<Complex<f32>>::zeros(window.raw_dim());
            ndarray::Zip::from(&mut others)
                .and(&sum)
                .and(w)
                .for_each(|o, s, v| {
                    let v = widen(*v);
                    let m = (s - v * own) / n;
                    *o = Complex::new(m.re as f32, m.im as f32);
                });
            let others = ctx.spectrum_from(others, (sum_mean - mean * own) / n, window);
            let frame = ctx.spectrum_from(w.clone(), *mean, window);
            let r = ctx.correlate(&others, &frame);
            ((r.dy, r.dx), r.score)
        })
        .unzip()
}

fn regauge(t: &mut [(f64, f64)], active: &[bool]) {
    if let Some(g) = (0..t.len()).find(|&i| active[i]) {
        let (gy, gx) = t[g];
        t.iter_mut().for_each(|v| {
            v.0 -= gy;
            v.1 -= gx;
        });
    }
}

fn median_sorted(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn connected(f: usize, pairs: &[(usize, usize)], keep: &[bool], active: &[bool]) -> bool {
    let mut parent: Vec<usize> = (0..f).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for (k, &(i, j)) in pairs.iter().enumerate() {
        if keep[k] && active[i] && active[j] {
            let (a, b) = (find(&mut parent, i), find(&mut parent, j));
            parent[a] = b;
        }
    }
    let nodes: Vec<usize> = (0..f).filter(|&i| active[i]).collect();
    let Some(&first) = nodes.first() else {
        return true;
    };
    let root = find(&mut parent, first);
    nodes.iter().all(|&i| find(&mut parent, i) == root)
}

/// Least squares `t_j − t_i = s_ij` over kept pairs between active frames,
/// gauge: first active frame at 0. Inactive frames keep t = 0.
fn solve(
    f: usize,
    pairs: &[(usize, usize)],
    s: &[PairShift],
    keep: &[bool],
    active: &[bool],
) -> Result<Vec<(f64, f64)>> {
    let nodes: Vec<usize> = (0..f).filter(|&i| active[i]).collect();
    let mut t = vec![(0.0, 0.0); f];
    if nodes.len() < 2 {
        return Ok(t);
    }
    let idx = |n: usize| nodes.iter().position(|&m| m == n);
    let rows: Vec<usize> = (0..pairs.len())
        .filter(|&k| keep[k] && active[pairs[k].0] && active[pairs[k].1])
        .collect();
    let m = nodes.len() - 1; // unknowns: all active but the first
    let mut a = DMatrix::<f64>::zeros(rows.len(), m);
    let mut by = DVector::<f64>::zeros(rows.len());
    let mut bx = DVector::<f64>::zeros(rows.len());
    for (r, &k) in rows.iter().enumerate() {
        let (i, j) = pairs[k];
        if let Some(c) = idx(j).filter(|&c| c > 0) {
            a[(r, c - 1)] += 1.0;
        }
        if let Some(c) = idx(i).filter(|&c| c > 0) {
            a[(r, c - 1)] -= 1.0;
        }
        by[r] = s[k].dy;
        bx[r] = s[k].dx;
    }
    let ata = a.transpose() * &a;
    let lu = ata.lu();
    let (Some(ty), Some(tx)) = (
        lu.solve(&(a.transpose() * by)),
        lu.solve(&(a.transpose() * bx)),
    ) else {
        return Err(Error::Numerical {
            what: "registration".into(),
            reason: "the pair graph does not connect every frame".into(),
        });
    };
    for (c, &n) in nodes.iter().enumerate().skip(1) {
        t[n] = (ty[c - 1], tx[c - 1]);
    }
    Ok(t)
}

/// Average the kept frames after applying −s to each (Fourier shift), cropped
/// to the field of view every kept frame covers when `crop_common`.
///
/// # Errors
/// `Error::Shape` if `reg` does not match the stack; `Error::Empty` if no
/// frame is kept or the common field of view is empty.
pub fn average(stack: &Stack, reg: &Registration, crop_common: bool) -> Result<Image> {
    let f = stack.n_frames();
    if reg.shifts.len() != f {
        return Err(Error::shape(
            "registration",
            format!("{f} shifts"),
            format!("{}", reg.shifts.len()),
        ));
    }
    if f == 1 {
        return Ok(single(stack));
    }
    let kept: Vec<usize> = (0..f).filter(|i| !reg.rejected.contains(i)).collect();
    if kept.is_empty() {
        return Err(Error::Empty {
            what: "stack".into(),
            reason: "every frame was rejected".into(),
        });
    }
    let (ny, nx) = stack.frame_shape();
    // The shift theorem is linear: the mean of the shifted frames is the
    // inverse of the mean of their shifted spectra (one inverse FFT).
    let spectra: Vec<Array2<Complex<f32>>> = kept
        .par_iter()
        .map(|&i| {
            let s = reg.shifts[i];
            let mut spec = fft::rfft2_t(stack.data.index_axis(Axis(0), i));
            super::apply_shift(&mut spec, ny, nx, -s.dy, -s.dx);
            spec
        })
        .collect();
    let mut sum = Array2::<Complex<f64>>::zeros(spectra[0].raw_dim());
    for spec in &spectra {
        sum.zip_mut_with(spec, |s, v| *s += widen(*v));
    }
    drop(spectra);
    let n = kept.len() as f64;
    let mean_spec = sum.mapv(|v| Complex::new((v.re / n) as f32, (v.im / n) as f32));
    let mean = fft::irfft2_t(mean_spec.view(), nx);
    if !crop_common {
        return Ok(Image::new(mean, stack.calibration));
    }
    // Frame i's pixel x lands at x − t_i: valid region [−t_i, N−1−t_i].
    let (mut y0, mut y1, mut x0, mut x1) = (0.0f64, ny as f64 - 1.0, 0.0f64, nx as f64 - 1.0);
    for &i in &kept {
        let s = reg.shifts[i];
        y0 = y0.max(-s.dy);
        y1 = y1.min(ny as f64 - 1.0 - s.dy);
        x0 = x0.max(-s.dx);
        x1 = x1.min(nx as f64 - 1.0 - s.dx);
    }
    let (ya, yb) = (y0.ceil().max(0.0) as usize, y1.floor().min(ny as f64 - 1.0));
    let (xa, xb) = (x0.ceil().max(0.0) as usize, x1.floor().min(nx as f64 - 1.0));
    if yb < ya as f64 || xb < xa as f64 {
        return Err(Error::Empty {
            what: "stack".into(),
            reason: "the frames share no common field of view (drift larger than the frame)".into(),
        });
    }
    let crop = mean
        .slice(s![ya..=yb as usize, xa..=xb as usize])
        .to_owned();
    Ok(Image::new(crop, stack.calibration))
}
