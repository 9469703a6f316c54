//! Pair registration: windowed, low-passed cross-correlation, integer peak,
//! up-sampled DFT refinement (Guizar-Sicairos et al. 2008) and de-biasing by
//! resample-and-re-register (docs/methods/registration.md, steps 1–6).

use ndarray::{Array2, ArrayView2, Axis};
use num_complex::Complex;
use rayon::prelude::*;

use super::{widen, Correlation, PairShift, RegisterParams};
use crate::fft::{self, transform::signed_index};

/// Tukey window of length n with taper fraction α (0 = rectangular).
pub(crate) fn tukey(n: usize, alpha: f64) -> Vec<f64> {
    if alpha <= 0.0 || n < 2 {
        return vec![1.0; n];
    }
    let a = alpha.min(1.0);
    let m = (n - 1) as f64;
    (0..n)
        .map(|i| {
            let x = i as f64;
            let edge = a * m / 2.0;
            let d = x.min(m - x);
            if d < edge {
                0.5 * (1.0 - (std::f64::consts::PI * d / edge).cos())
            } else {
                1.0
            }
        })
        .collect()
}

/// A windowed frame's spectrum in the transposed half-spectrum layout
/// (`[k_x, k_y]`, [`fft::rfft2_t`]) with its energy under the context's
/// weights (computed once: every pair of the all-pairs graph uses it).
pub(crate) struct Spectrum {
    s: Array2<Complex<f32>>,
    energy: f64,
}

/// Shared, per-shape context: windows, low-pass weights on the half
/// spectrum (transposed layout `[k_x, k_y]`, like [`fft::rfft2_t`]: no
/// transposes between the correlations' FFTs).
pub(crate) struct Context {
    pub ny: usize,
    pub nx: usize,
    wy: Vec<f64>,
    wx: Vec<f64>,
    /// Low-pass weight per half-spectrum bin `[k_x, k_y]` (1 if off).
    lowpass: Array2<f32>,
    /// Hermitian weight per half-spectrum k_x: 1 at k_x = 0 (and Nyquist), else 2.
    herm: Vec<f64>,
    pub q: f64,
    pub upsample: usize,
    pub max_shift: Option<f64>,
}

impl Context {
    pub fn new(ny: usize, nx: usize, p: &RegisterParams) -> Self {
        let nxh = nx / 2 + 1;
        let lowpass = match p.lowpass_sigma_cycles_per_px {
            Some(s) if s > 0.0 => Array2::from_shape_fn((nxh, ny), |(x, y)| {
                let ky = signed_index(y, ny) as f64 / ny as f64;
                let kx = x as f64 / nx as f64;
                (-(ky * ky + kx * kx) / (2.0 * s * s)).exp() as f32
            }),
            _ => Array2::from_elem((nxh, ny), 1.0),
        };
        let herm = (0..nxh)
            .map(|k| {
                if k == 0 || (nx.is_multiple_of(2) && k == nx / 2) {
                    1.0
                } else {
                    2.0
                }
            })
            .collect();
        Context {
            ny,
            nx,
            wy: tukey(ny, p.window_alpha),
            wx: tukey(nx, p.window_alpha),
            lowpass,
            herm,
            q: match p.correlation {
                Correlation::Cross => 0.0,
                Correlation::Phase => 1.0,
            },
            upsample: p.upsample.max(1),
            max_shift: p.max_shift_px,
        }
    }

    /// The window times `frame` less `offset`.
    fn window_times(&self, frame: ArrayView2<f32>, offset: f64) -> Array2<f32> {
        Array2::from_shape_fn((self.ny, self.nx), |(y, x)| {
            ((frame[[y, x]] as f64 - offset) * self.wy[y] * self.wx[x]) as f32
        })
    }

    /// The window times `frame`, without subtracting its mean, and the mean.
    pub fn windowed(&self, frame: ArrayView2<f32>) -> (Array2<f32>, f64) {
        (self.window_times(frame, 0.0), mean_of(frame))
    }

    /// The spectrum of the window alone (for [`Context::spectrum_from`]).
    pub fn window_spectrum(&self) -> Array2<Complex<f32>> {
        let w = Array2::from_shape_fn((self.ny, self.nx), |(y, x)| {
            (self.wy[y] * self.wx[x]) as f32
        });
        fft::rfft2_t(w.view())
    }

    /// FFT of the mean-subtracted, windowed frame.
    pub fn spectrum(&self, frame: ArrayView2<f32>) -> Spectrum {
        let w = self.window_times(frame, mean_of(frame));
        self.with_energy(fft::rfft2_t(w.view()))
    }

    /// The spectrum of a windowed frame from its parts, by linearity:
    /// `windowed − mean · window` (`windowed` the spectrum of the window
    /// times the frame, `window` that of the window alone).
    pub fn spectrum_from(
        &self,
        mut s: Array2<Complex<f32>>,
        mean: f64,
        window: &Array2<Complex<f32>>,
    ) -> Spectrum {
        let m = mean as f32;
        ndarray::Zip::from(&mut s)
            .and(window)
            .for_each(|v, w| *v -= w * m);
        self.with_energy(s)
    }

    fn with_energy(&self, s: Array2<Complex<f32>>) -> Spectrum {
        let energy = self.energy(&s);
        Spectrum { s, energy }
    }

    /// Correlate reference spectrum `a` with moving spectrum `b`: returns the
    /// measured shift of the moving frame (moving(x) = reference(x − s)) and
    /// the normalised peak score.
    pub fn correlate(&self, a: &Spectrum, b: &Spectrum) -> PairShift {
        self.correlate_with(a, b, true)
    }

    /// As [`Context::correlate`]; `fine = false` replaces the up-sampled DFT
    /// by a per-axis parabola through the integer peak (0.05–0.1 px bias,
    /// docs/methods/registration.md step 4), used for the all-pairs graph that the passes refine.
    pub fn correlate_with(&self, a: &Spectrum, b: &Spectrum, fine: bool) -> PairShift {
        let (ny, nx) = (self.ny, self.nx);
        let eps = 1e-30;
        let mut c_half = Array2::<Complex<f32>>::zeros(a.s.raw_dim());
        let q = self.q;
        ndarray::Zip::from(&mut c_half)
            .and(&a.s)
            .and(&b.s)
            .and(&self.lowpass)
            .par_for_each(|c, av, bv, g| {
                let mut v = widen(*av) * widen(*bv).conj();
                if q != 0.0 {
                    v /= (v.norm() + eps).powf(q);
                }
                v *= f64::from(*g);
                *c = Complex::new(v.re as f32, v.im as f32);
            });
        let corr = fft::irfft2_t(c_half.view(), nx);
        // Integer peak, wrapped to (−N/2, N/2], within max_shift.
        let mut best = (0usize, 0usize, f32::NEG_INFINITY);
        for ((y, x), v) in corr.indexed_iter() {
            if let Some(m) = self.max_shift {
                let (sy, sx) = (wrap(y, ny), wrap(x, nx));
                if (sy * sy + sx * sx) as f64 > m * m {
                    continue;
                }
            }
            if *v > best.2 {
                best = (y, x, *v);
            }
        }
        let (py, px) = (wrap(best.0, ny) as f64, wrap(best.1, nx) as f64);
        let (ry, rx, peak) = if self.upsample > 1 && fine {
            self.refine(&c_half, py, px)
        } else if self.upsample > 1 {
            let at = |dy: i64, dx: i64| {
                let y = (best.0 as i64 + dy).rem_euclid(ny as i64) as usize;
                let x = (best.1 as i64 + dx).rem_euclid(nx as i64) as usize;
                corr[[y, x]] as f64
            };
            let parabola = |m: f64, c: f64, p: f64| {
                let d = m - 2.0 * c + p;
                if d.abs() > 0.0 {
                    ((m - p) / (2.0 * d)).clamp(-0.5, 0.5)
                } else {
                    0.0
                }
            };
            let c0 = at(0, 0);
            (
                py + parabola(at(-1, 0), c0, at(1, 0)),
                px + parabola(at(0, -1), c0, at(0, 1)),
                c0 * (ny * nx) as f64,
            )
        } else {
            (py, px, best.2 as f64 * (ny * nx) as f64)
        };
        let score = peak / (a.energy * b.energy).sqrt().max(eps);
        // The correlation peak sits at −s.
        PairShift {
            dy: -ry,
            dx: -rx,
            score,
        }
    }

    /// `Σ_k G_k |A_k|^{2(1−q)}` over the full spectrum (Hermitian weights on
    /// the half spectrum): the Cauchy–Schwarz bound that normalises scores.
    fn energy(&self, a: &Array2<Complex<f32>>) -> f64 {
        let e = 2.0 - 2.0 * self.q;
        a.outer_iter()
            .into_par_iter()
            .zip(self.lowpass.outer_iter())
            .zip(&self.herm)
            .map(|((row, g), h)| {
                let s: f64 = row
                    .iter()
                    .zip(g)
                    .map(|(v, g)| {
                        let g = f64::from(*g);
                        let n2 = f64::from(v.norm_sqr());
                        if e == 2.0 {
                            g * n2
                        } else if e == 0.0 {
                            g
                        } else {
                            g * n2.powf(0.5 * e)
                        }
                    })
                    .sum();
                h * s
            })
            .collect::<Vec<f64>>()
            .iter()
            .sum() // in row order: the same on any number of threads
    }

    /// Up-sampled DFT of the cross-power (transposed layout `[k_x, k_y]`)
    /// in a ±0.75 px box around (py, px): returns the arg-max position and
    /// the unnormalised peak value.
    fn refine(&self, c: &Array2<Complex<f32>>, py: f64, px: f64) -> (f64, f64, f64) {
        let (ny, nx) = (self.ny, self.nx);
        let u = self.upsample as f64;
        let half = (0.75 * u).floor() as i64;
        let m = (2 * half + 1) as usize;
        let xs: Vec<f64> = (0..m).map(|l| px + (l as i64 - half) as f64 / u).collect();
        let ys: Vec<f64> = (0..m).map(|j| py + (j as i64 - half) as f64 / u).collect();
        let tau = std::f64::consts::TAU;
        // E_y[ky][j] = exp(2πi ky y_j / Ny).
        let ey: Vec<Complex<f64>> = (0..ny)
            .flat_map(|k| {
                let ks = signed_index(k, ny) as f64;
                ys.iter()
                    .map(move |y| Complex::from_polar(1.0, tau * ks * y / ny as f64))
            })
            .collect();
        // T[kx][j] = Σ_ky C[kx][ky] E_y[ky][j]  (rows in parallel).
        let t: Vec<Vec<Complex<f64>>> = c
            .axis_iter(Axis(0))
            .into_par_iter()
            .map(|row| {
                let mut acc = vec![Complex::<f64>::new(0.0, 0.0); m];
                for (k, cv) in row.iter().enumerate() {
                    if cv.re == 0.0 && cv.im == 0.0 {
                        continue;
                    }
                    let cv = widen(*cv);
                    let e = &ey[k * m..(k + 1) * m];
                    for (a, ev) in acc.iter_mut().zip(e) {
                        *a += cv * ev;
                    }
                }
                acc
            })
            .collect();
        // E_x[l][kx] = w_kx · exp(2πi kx x_l / Nx).
        let ex: Vec<Vec<Complex<f64>>> = xs
            .iter()
            .map(|x| {
                (0..t.len())
                    .map(|k| Complex::from_polar(self.herm[k], tau * k as f64 * x / nx as f64))
                    .collect()
            })
            .collect();
        let mut best = (py, px, f64::NEG_INFINITY);
        for (j, y) in ys.iter().enumerate() {
            for (x, e) in xs.iter().zip(&ex) {
                let v: f64 = e.iter().zip(&t).map(|(ev, tk)| (ev * tk[j]).re).sum();
                if v > best.2 {
                    best = (*y, *x, v);
                }
            }
        }
        best
    }
}

/// Mean of a frame, summed in f64.
fn mean_of(frame: ArrayView2<f32>) -> f64 {
    frame.iter().map(|v| f64::from(*v)).sum::<f64>() / frame.len().max(1) as f64
}

fn wrap(i: usize, n: usize) -> i64 {
    // (−N/2, N/2]
    let i = i as i64;
    let n = n as i64;
    if i > n / 2 {
        i - n
    } else {
        i
    }
}

/// Register `moving` against `reference` with de-biasing passes.
pub(crate) fn register_pair_ctx(
    ctx: &Context,
    reference: ArrayView2<f32>,
    moving: ArrayView2<f32>,
    refine_passes: usize,
) -> PairShift {
    let a = ctx.spectrum(reference);
    let mut s = ctx.correlate(&a, &ctx.spectrum(moving));
    let tol = 1.0 / ctx.upsample as f64;
    for _ in 0..refine_passes {
        let back = super::shift_fourier(moving, -s.dy, -s.dx);
        let r = ctx.correlate(&a, &ctx.spectrum(back.view()));
        s.dy += r.dy;
        s.dx += r.dx;
        s.score = r.score;
        if r.dy.abs() < tol && r.dx.abs() < tol {
            break;
        }
    }
    s
}
