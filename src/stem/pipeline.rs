//! `prepare`: from a raw stack to a registered, averaged, background-free,
//! denoised and deconvolved image (docs/methods/registration.md, docs/methods/background.md, docs/methods/denoise.md, docs/methods/deconvolution.md):
//! averaged → − background → Du denoising → blind Richardson–Lucy from the
//! probe PSF of the microscope → `prepared`.
//!
//! Every parameter lives in [`PrepareParams`], which deserialises from the
//! pipeline TOML and is written back to `prepare.json` as the effective
//! configuration.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Warnings};
use crate::fft;
use crate::image::{Calibration, Image, Stack};
use crate::optics::{psf_for_sampling_with, Microscope};
use crate::stem::background::{self, BackgroundParams, Decomposition};
use crate::stem::deconvolve::{self, DeconvolveParams};
use crate::stem::denoise::{self, DenoiseParams};
use crate::stem::register::{self, RegisterParams, Registration};
use crate::stem::synth::LATTICE_ANGSTROM;

/// Background disk radius, in Å (needs a calibration) or in px.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Radius {
    /// Radius in Å, converted with the pixel size and rounded to whole px.
    Angstrom(f64),
    /// Radius in px.
    Px(f64),
}

/// Background-removal settings (docs/methods/background.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackgroundSpec {
    /// Disk radius. Default 2a = 11.74 Å (decision, docs/methods/background.md: well above the
    /// column half-width, well below the particle size).
    pub radius: Radius,
    /// MATLAB `strel('disk', R, n)` decomposition (default n = 4, MATLAB's).
    pub decomposition: Decomposition,
    /// Gaussian σ as a multiple of R (default 1: "a Gaussian of the same
    /// radius", decision of docs/methods/background.md).
    pub sigma_factor: f64,
    /// Gaussian kernel half-width in σ (default 2 = MATLAB `imgaussfilt`).
    pub truncate: f64,
}

impl Default for BackgroundSpec {
    fn default() -> Self {
        BackgroundSpec {
            radius: Radius::Angstrom(2.0 * LATTICE_ANGSTROM),
            decomposition: Decomposition::N4,
            sigma_factor: 1.0,
            truncate: 2.0,
        }
    }
}

/// All parameters of `prepare`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrepareParams {
    /// Pixel size overriding the file's calibration, Å/px.
    pub pixel_size_angstrom: Option<f64>,
    /// Registration and averaging.
    pub register: RegisterParams,
    /// Background removal.
    pub background: BackgroundSpec,
    /// Run the Du (2015) denoising stage (default on, as in the study).
    pub denoise_enabled: bool,
    /// Denoising parameters.
    pub denoise: DenoiseParams,
    /// Run the blind deconvolution stage (default on, as in the study).
    pub deconvolve_enabled: bool,
    /// Deconvolution parameters.
    pub deconvolve: DeconvolveParams,
    /// Microscope for the initial probe PSF (study: 300 kV, 18 mrad).
    pub microscope: Microscope,
    /// Half-width of the initial PSF support in px (default: the
    /// max(2, round(3r₀/p)), 3 Airy first-zero radii).
    pub psf_half_width_px: Option<usize>,
    /// Centre-crop the averaged image to the largest size ≤ its own whose
    /// prime factors are 2, 3 and 5 (default on): every later FFT (Du
    /// filter, deconvolution) then avoids Bluestein's algorithm, 1.5–3×
    /// faster on a 1019² common field of view, at the cost of a few edge
    /// pixels. `crop_offset_yx` in `prepare.json` maps coordinates back.
    pub fast_fft_crop: bool,
}

impl Default for PrepareParams {
    fn default() -> Self {
        PrepareParams {
            pixel_size_angstrom: None,
            register: RegisterParams::default(),
            background: BackgroundSpec::default(),
            denoise_enabled: true,
            denoise: DenoiseParams::default(),
            deconvolve_enabled: true,
            deconvolve: DeconvolveParams::default(),
            microscope: Microscope::default(),
            psf_half_width_px: None,
            fast_fft_crop: true,
        }
    }
}

/// Where the calibration used came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationSource {
    /// Read from the input file.
    File,
    /// Given by the user (`--pixel-size-angstrom` / config).
    User,
    /// No pixel size known.
    None,
}

/// Everything `prepare` produces.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Registered average (or the input image for 2-D input).
    pub averaged: Image,
    /// Background estimate B = G_σ * open(I, D_R).
    pub background: Array2<f32>,
    /// Background-subtracted image (averaged − background).
    pub subtracted: Array2<f32>,
    /// After denoising (if run).
    pub denoised: Option<Array2<f32>>,
    /// After deconvolution (if run).
    pub deconvolved: Option<Array2<f32>>,
    /// Initial and final PSF of the deconvolution (if run).
    pub psf: Option<(Array2<f64>, Array2<f64>)>,
    /// Final image: the last stage's output.
    pub prepared: Image,
    /// Per-frame shifts, rejected frames, passes.
    pub registration: Registration,
    /// Whether registration ran (false for single-frame input).
    pub registered: bool,
    /// Background radius actually used, px.
    pub background_radius_px: usize,
    /// Calibration of the outputs and its origin.
    pub calibration: Calibration,
    /// Origin of the calibration.
    pub calibration_source: CalibrationSource,
    /// Non-fatal findings of every stage.
    pub warnings: Warnings,
    /// Offset (y, x) px of the prepared image in the averaged field of view
    /// (non-zero when `fast_fft_crop` removed edge pixels).
    pub crop_offset_yx: (usize, usize),
    /// Wall time of each stage, s (`register+average`, `background`,
    /// `denoise`, `deconvolve`).
    pub stage_seconds: Vec<(&'static str, f64)>,
}

/// Run every stage of `prepare` on `stack`; `psf` overrides the PSF
/// computed from the microscope.
///
/// # Errors
/// Non-finite pixels, a constant frame, a radius in Å on an uncalibrated
/// image, a radius < 1 px or larger than the image, deconvolution without a
/// pixel size or PSF, and any stage error — each naming the parameter or frame.
///
/// # Examples
/// ```
/// use qdscope::stem::pipeline::{prepare, PrepareParams};
/// use qdscope::stem::synth::{generate, SynthParams};
///
/// // 3 drifting, noisy frames of 96 × 96 px at 0.25 Å/px.
/// let synth = SynthParams { rows: 96, cols: 96, frames: 3, n_cells: 3, ..SynthParams::default() };
/// let (stack, _truth) = generate(&synth)?;
/// let p = prepare(stack, &PrepareParams::default(), None)?;
/// assert!(p.registered);
/// // The default background radius 2a = 11.74 Å is 47 px here.
/// assert_eq!(p.background_radius_px, 47);
/// // Every stage ran; the prepared image is the deconvolved one.
/// assert_eq!(p.prepared.data, p.deconvolved.unwrap());
/// # Ok::<(), qdscope::Error>(())
/// ```
pub fn prepare(
    mut stack: Stack,
    params: &PrepareParams,
    psf: Option<Array2<f64>>,
) -> Result<Prepared> {
    let source = if let Some(p) = params.pixel_size_angstrom {
        stack.calibration = Calibration::from_pixel_size(p)?;
        CalibrationSource::User
    } else if stack.calibration.pixel_size_angstrom().is_some() {
        CalibrationSource::File
    } else {
        CalibrationSource::None
    };
    stack.check_finite("input")?;
    let cal = stack.calibration;
    let (ny, nx) = stack.frame_shape();
    // Resolve the radius before the expensive work so bad input fails fast.
    let radius_px = resolve_radius(params.background.radius, cal, (ny, nx))?;
    let initial_psf = if params.deconvolve_enabled {
        Some(match psf {
            Some(p) => p,
            None => {
                let p = cal.pixel_size_angstrom().ok_or(Error::Uncalibrated {
                    what:
                        "deconvolution PSF (or give `psf = FILE` or `deconvolve_enabled = false`)"
                            .into(),
                })?;
                psf_for_sampling_with(&params.microscope, p, params.psf_half_width_px)?
            }
        })
    } else {
        None
    };
    let mut warnings = Warnings::default();
    let mut stage_seconds = Vec::new();
    let mut clock = std::time::Instant::now();
    let mut lap = |name: &'static str, times: &mut Vec<(&'static str, f64)>| {
        times.push((name, clock.elapsed().as_secs_f64()));
        clock = std::time::Instant::now();
    };

    let (averaged, registration, registered) = if stack.n_frames() == 1 {
        let img = Image::new(stack.frame(0).to_owned(), cal);
        check_not_constant(&img.data, "input image")?;
        (img, Registration::single_frame(), false)
    } else {
        let reg = register::register_stack(&stack, &params.register)?;
        let avg = register::average(&stack, &reg, params.register.crop_common)?;
        (avg, reg, true)
    };
    warnings.extend(registration.warnings.clone());
    let (averaged, crop_offset_yx) = if params.fast_fft_crop {
        fast_crop(averaged)
    } else {
        (averaged, (0, 0))
    };
    lap("register+average", &mut stage_seconds);

    let (ay, ax) = averaged.shape();
    if radius_px >= ay.min(ax) {
        return Err(Error::param(
            "background radius",
            format!(
                "{radius_px} px does not fit the averaged image ({ay}x{ax} px after cropping to the common field of view)"
            ),
        ));
    }
    check_sigma_factor(&params.background, radius_px, (ay, ax))?;
    let bp = BackgroundParams {
        radius_px,
        decomposition: params.background.decomposition,
        sigma_factor: params.background.sigma_factor,
        truncate: params.background.truncate,
    };
    let bg = background::estimate(averaged.data.view(), &bp)?;
    let subtracted = &averaged.data - &bg;
    lap("background", &mut stage_seconds);
    let mut current = subtracted.clone();
    let denoised = if params.denoise_enabled {
        let d = denoise::denoise(current.view(), &params.denoise)?;
        warnings.extend(d.warnings);
        current = d.image.clone();
        lap("denoise", &mut stage_seconds);
        Some(d.image)
    } else {
        None
    };
    let (deconvolved, psf_pair) = match initial_psf {
        Some(p0) => {
            deconvolve::validate_psf(p0.view(), current.dim())?;
            let d = deconvolve::deconvolve(current.view(), p0.view(), &params.deconvolve)?;
            warnings.extend(d.warnings);
            current = d.image.clone();
            lap("deconvolve", &mut stage_seconds);
            (Some(d.image), Some((p0, d.psf)))
        }
        None => (None, None),
    };
    let prepared = Image::new(current, cal);
    Ok(Prepared {
        averaged,
        background: bg,
        subtracted,
        denoised,
        deconvolved,
        psf: psf_pair,
        prepared,
        registration,
        registered,
        background_radius_px: radius_px,
        calibration: cal,
        calibration_source: source,
        warnings,
        crop_offset_yx,
        stage_seconds,
    })
}

/// Centre crop to the largest 2·3·5-smooth size on each axis.
fn fast_crop(img: Image) -> (Image, (usize, usize)) {
    let (ny, nx) = img.shape();
    let (fy, fx) = (fft::fast_len_at_most(ny), fft::fast_len_at_most(nx));
    if (fy, fx) == (ny, nx) {
        return (img, (0, 0));
    }
    let (oy, ox) = ((ny - fy) / 2, (nx - fx) / 2);
    let data = img
        .data
        .slice(ndarray::s![oy..oy + fy, ox..ox + fx])
        .to_owned();
    (Image::new(data, img.calibration), (oy, ox))
}

fn resolve_radius(r: Radius, cal: Calibration, (ny, nx): (usize, usize)) -> Result<usize> {
    let (px, name) = match r {
        Radius::Angstrom(a) => {
            if !(a.is_finite() && a > 0.0) {
                return Err(Error::param(
                    "background_radius_angstrom",
                    format!("must be > 0, got {a}"),
                ));
            }
            (
                cal.angstrom_to_px(a, "background_radius_angstrom")?,
                "background_radius_angstrom",
            )
        }
        Radius::Px(p) => (p, "background_radius_px"),
    };
    if !(px.is_finite() && px.round() >= 1.0) {
        return Err(Error::param(
            name,
            format!("must be at least 1 px, got {px:.3} px"),
        ));
    }
    if px.round() >= ny.min(nx) as f64 {
        return Err(Error::param(
            name,
            format!(
                "{} px is larger than the image ({ny}x{nx} px)",
                crate::error::fmt_size(px)
            ),
        ));
    }
    Ok(px.round() as usize)
}

/// The background's Gaussian σ = factor·R must be finite, > 0, and its
/// kernel no longer than the Gaussian filter accepts.
fn check_sigma_factor(
    b: &BackgroundSpec,
    radius_px: usize,
    (ny, nx): (usize, usize),
) -> Result<()> {
    let f = b.sigma_factor;
    let limit =
        crate::stem::background::gaussian::MAX_HALF_WIDTH_PER_SIDE as f64 * ny.max(nx) as f64;
    let hw = (f * radius_px as f64 * b.truncate).ceil();
    if !(f.is_finite() && f > 0.0) {
        return Err(Error::param(
            "background_sigma_factor",
            format!("must be > 0, got {f}"),
        ));
    }
    if hw > limit {
        return Err(Error::param(
            "background_sigma_factor",
            format!(
                "{} × R = {radius_px} px gives a smoothing kernel half-width of {} px, above the limit of {limit} px ({}× the image's longer side)",
                crate::error::fmt_value(f),
                crate::error::fmt_size(hw),
                crate::stem::background::gaussian::MAX_HALF_WIDTH_PER_SIDE
            ),
        ));
    }
    Ok(())
}

fn check_not_constant(a: &Array2<f32>, what: &str) -> Result<()> {
    let first = a.iter().next().copied().unwrap_or(0.0);
    if a.iter().all(|v| *v == first) {
        return Err(Error::Empty {
            what: what.into(),
            reason: format!("constant image (every pixel = {first}): nothing to analyse"),
        });
    }
    Ok(())
}
