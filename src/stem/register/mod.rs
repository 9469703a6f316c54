//! Rigid sub-pixel registration of a frame stack and averaging over the
//! common field of view (docs/methods/registration.md).
//!
//! # Convention
//! A shift `s = (dy, dx)` in px is the displacement of a frame's content
//! relative to the reference: `moving(x) = reference(x − s)`. Applying `−s`
//! ([`shift_fourier`] with `(−dy, −dx)`) aligns the frame. Stack shifts use
//! the gauge "first kept frame = (0, 0)" (frame 0 unless it was rejected).
//!
//! # Algorithm (pair)
//! Mean-subtracted frames are multiplied by a separable Tukey window
//! (α = 0.2; without it the frame edges lock the estimate to zero shift),
//! transformed, and the cross-power `C = A·conj(B)` is optionally normalised
//! (`|C|^q`, q = 0 cross, q = 1 phase) and multiplied by a Gaussian low-pass
//! (σ_k = 0.125 cycles/px). The integer peak of `IFFT(C)` (at −s) is refined
//! by an up-sampled DFT in a ±0.75 px box (Guizar-Sicairos, Thurman &
//! Fienup 2008) to 1/u px, and de-biased by resampling the moving frame by
//! −ŝ and re-registering (the stationary window pulls a single estimate
//! towards zero).
//!
//! # Algorithm (stack)
//! All F windowed spectra are computed once; all F(F−1)/2 pairs are
//! correlated (rayon) at integer + DFT precision; `t_j − t_i = s_ij` is solved
//! by least squares with the robust rule of Savitzky et al. (2018): while the
//! largest residual exceeds max(3·1.4826·median, 0.25 px), drop that pair
//! (error if the graph disconnects, unless one frame is cut off: then it is
//! an outlier frame). Then up to `refine_passes` passes re-register every
//! aligned frame against the leave-one-out mean of the others (this also
//! removes the window bias); stop when every change is below 1/u px. Finally
//! outlier frames are rejected one at a time (normalised correlation score
//! below `median − max(5·MAD, 0.1·median)` of the kept frames, never below 2
//! kept frames) and the passes repeat.
//!
//! # Cost
//! F forward FFTs + F(F−1)/2 inverse FFTs + per pass 3F FFTs (the
//! leave-one-out means' spectra by linearity from the frames'), plus an
//! O(N²·1.5u) DFT per refined correlation. Spectra stay in the transposed
//! half-spectrum layout of [`fft::rfft2_t`] (no transposes) and in f32.
//!
//! # References
//! Guizar-Sicairos, Thurman & Fienup, Opt. Lett. 33, 156 (2008);
//! Savitzky et al., Ultramicroscopy 191, 56 (2018).

mod pair;
mod stack;

use ndarray::{Array2, ArrayView2};
use num_complex::Complex;
use serde::{Deserialize, Serialize};

use crate::error::{check_finite, Error, Result, Warnings};
use crate::fft::{self, transform::signed_index};
use crate::image::{Image, Stack};

pub use stack::{average, register_stack, solve_pairs};

/// Normalisation of the cross-power spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Correlation {
    /// Plain cross-correlation, q = 0 (default: stable on lattice images).
    #[default]
    Cross,
    /// Phase correlation, q = 1 (scikit-image's default; unstable with a
    /// window on lattice images, docs/methods/registration.md).
    Phase,
}

/// Parameters of registration (defaults: docs/methods/registration.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegisterParams {
    /// Up-sampling factor u: precision 1/u px (spec default 20).
    pub upsample: usize,
    /// Tukey window taper α (spec default 0.2; 0 = no window).
    pub window_alpha: f64,
    /// Cross-power normalisation (spec decision: cross).
    pub correlation: Correlation,
    /// Gaussian low-pass σ of the cross-power in cycles/px (spec: 0.125).
    pub lowpass_sigma_cycles_per_px: Option<f64>,
    /// Re-registration passes against the running mean (issue: up to 3).
    pub refine_passes: usize,
    /// Largest shift searched, px (spec: none).
    pub max_shift_px: Option<f64>,
    /// Reject outlier frames one at a time (decision: on).
    pub reject_outliers: bool,
    /// Crop the average to the common field of view (spec: on).
    pub crop_common: bool,
}

impl Default for RegisterParams {
    fn default() -> Self {
        RegisterParams {
            upsample: 20,
            window_alpha: 0.2,
            correlation: Correlation::Cross,
            lowpass_sigma_cycles_per_px: Some(0.125),
            refine_passes: 3,
            max_shift_px: None,
            reject_outliers: true,
            crop_common: true,
        }
    }
}

/// A measured displacement `moving(x) = reference(x − s)` in px, with the
/// normalised correlation peak (≤ 1) as a quality score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairShift {
    /// Row displacement, px.
    pub dy: f64,
    /// Column displacement, px.
    pub dx: f64,
    /// Normalised correlation peak.
    pub score: f64,
}

/// Result of [`register_stack`].
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// Shift of every frame (rejected ones included, measured against the mean).
    pub shifts: Vec<PairShift>,
    /// Indices of rejected (outlier) frames.
    pub rejected: Vec<usize>,
    /// Re-registration passes run.
    pub passes: usize,
    /// Quality warnings naming frames.
    pub warnings: Warnings,
}

impl Registration {
    /// The registration of a single frame: no shift, nothing rejected.
    #[must_use]
    pub fn single_frame() -> Self {
        Registration {
            shifts: vec![PairShift {
                dy: 0.0,
                dx: 0.0,
                score: 1.0,
            }],
            rejected: vec![],
            passes: 0,
            warnings: Warnings::default(),
        }
    }
}

/// Largest accepted upsampling factor of the sub-pixel refinement.
pub const MAX_UPSAMPLE: usize = 1000;

fn validate(params: &RegisterParams) -> Result<()> {
    if params.upsample == 0 {
        return Err(Error::param("upsample", "must be at least 1"));
    }
    // The refinement evaluates a (1.5·upsample)² DFT patch per pair.
    crate::error::check_size(
        "upsample",
        params.upsample as f64,
        MAX_UPSAMPLE as f64,
        "",
        "1/1000 px is finer than any registration can resolve",
    )?;
    if !(0.0..=1.0).contains(&params.window_alpha) {
        return Err(Error::param("window_alpha", "must be in [0, 1]"));
    }
    if let Some(m) = params.max_shift_px {
        if !(m.is_finite() && m > 0.0) {
            return Err(Error::param(
                "max_shift_px",
                format!("must be > 0, got {m}"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn check_frame(what: &str, f: ArrayView2<f32>) -> Result<()> {
    let (ny, nx) = f.dim();
    if ny < 8 || nx < 8 {
        return Err(Error::shape(
            what,
            "frames of at least 8x8 px",
            format!("{ny}x{nx}"),
        ));
    }
    check_finite(what, f.iter(), |i| {
        format!("pixel (y={}, x={})", i / nx, i % nx)
    })?;
    let first = f[[0, 0]];
    if f.iter().all(|v| *v == first) {
        return Err(Error::Empty {
            what: what.to_string(),
            reason: format!("constant frame (every pixel = {first}): cannot be registered"),
        });
    }
    Ok(())
}

/// Register `moving` against `reference` (equal shapes).
///
/// # Errors
/// Shapes differ, frames smaller than 8×8, NaN/Inf, a constant frame, bad
/// parameters.
pub fn register_pair(
    reference: ArrayView2<f32>,
    moving: ArrayView2<f32>,
    params: &RegisterParams,
) -> Result<PairShift> {
    validate(params)?;
    if reference.dim() != moving.dim() {
        return Err(Error::shape(
            "moving frame",
            format!(
                "{}x{} like the reference",
                reference.nrows(),
                reference.ncols()
            ),
            format!("{}x{}", moving.nrows(), moving.ncols()),
        ));
    }
    check_frame("reference frame", reference)?;
    check_frame("moving frame", moving)?;
    let ctx = pair::Context::new(reference.nrows(), reference.ncols(), params);
    Ok(pair::register_pair_ctx(
        &ctx,
        reference,
        moving,
        params.refine_passes,
    ))
}

/// Circular sub-pixel shift by the Fourier shift theorem: the content moves
/// by `+(dy, dx)` px, `out(x) = image(x − s)`.
#[must_use]
pub fn shift_fourier(image: ArrayView2<f32>, dy: f64, dx: f64) -> Array2<f32> {
    let (ny, nx) = image.dim();
    let mut spec = fft::rfft2_t(image);
    apply_shift(&mut spec, ny, nx, dy, dx);
    fft::irfft2_t(spec.view(), nx)
}

/// A spectrum bin in f64 (the spectra are stored in f32; products and
/// sums of them are formed in f64).
pub(crate) fn widen(v: Complex<f32>) -> Complex<f64> {
    Complex::new(f64::from(v.re), f64::from(v.im))
}

/// Multiply a half spectrum in the transposed layout of [`fft::rfft2_t`]
/// (`[k_x, k_y]`) by the phase ramp that moves its image by `+(dy, dx)` px.
pub(crate) fn apply_shift(spec: &mut Array2<Complex<f32>>, ny: usize, nx: usize, dy: f64, dx: f64) {
    let tau = std::f64::consts::TAU;
    let py: Vec<Complex<f64>> = (0..spec.ncols())
        .map(|k| Complex::from_polar(1.0, -tau * signed_index(k, ny) as f64 * dy / ny as f64))
        .collect();
    for (kx, mut row) in spec.rows_mut().into_iter().enumerate() {
        let px = Complex::from_polar(1.0, -tau * kx as f64 * dx / nx as f64);
        for (v, p) in row.iter_mut().zip(&py) {
            let z = widen(*v) * px * p;
            *v = Complex::new(z.re as f32, z.im as f32);
        }
    }
}

/// Check a stack before registration (NaN, size, constant frames).
pub(crate) fn check_stack(stack: &Stack) -> Result<()> {
    stack.check_finite("stack")?;
    for i in 0..stack.n_frames() {
        check_frame(&format!("frame {i}"), stack.frame(i))?;
    }
    Ok(())
}

/// A single image as its own average (used for F = 1).
pub(crate) fn single(stack: &Stack) -> Image {
    Image::new(stack.frame(0).to_owned(), stack.calibration)
}
