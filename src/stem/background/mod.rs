//! Background by grey opening with a disk, smoothed by a Gaussian of the
//! same radius (docs/methods/background.md; MATLAB `imopen(I, strel('disk', R))` then
//! `imgaussfilt(B, R)`).
//!
//! # Equation
//! `B = G_σ * open(I, D_R)`, `open(I, D) = dilate(erode(I, D), D)`, σ = R
//! (spec decision: "a Gaussian of the same radius"); the caller subtracts,
//! `I_corr = I − B`.
//!
//! # Parity and cost
//! D is MATLAB's `strel('disk', R, n)` — for n = 4 and R ≥ 3 an octagon of
//! (2R−1)² extent, not a Euclidean disk — built by Adams' radial
//! decomposition into periodic lines ([`Footprint::disk`]); the exact disk is
//! an option. Erosion/dilation run line by line on a ±∞-padded domain
//! (bit-identical to the brute-force filter) with the van Herk / Gil–Werman
//! running extremum: O(1) per pixel and line, independent of R. The Gaussian
//! is separable, direct for short kernels and FFT-based for long ones, so the
//! whole background estimate costs about the same for R = 5 and R = 50.
//!
//! Hand-written because no maintained Rust crate offers MATLAB-parity
//! periodic-line decompositions with ±∞ padding (imageproc's morphology uses
//! L1/L∞/L2 norms on u8 images).
//!
//! # References
//! Adams 1993; van Herk 1992; Gil & Werman 1993; Soille, Breen & Jones 1996;
//! MATLAB Image Processing Toolbox (`strel`, `imopen`, `imgaussfilt`).

pub mod gaussian;
mod morphology;
mod strel;
mod vanherk;

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

pub use gaussian::{gaussian_filter, gaussian_kernel};
pub use morphology::{dilate, erode, opening};
pub use strel::{Decomposition, Footprint, Line};

use crate::error::{check_finite, Error, Result};

/// Parameters of [`estimate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackgroundParams {
    /// Disk radius R in px (the pipeline converts the default 2a = 11.74 Å).
    pub radius_px: usize,
    /// Disk decomposition (default n = 4, MATLAB's default).
    pub decomposition: Decomposition,
    /// σ of the smoothing as a multiple of R (default 1: decision, docs/methods/background.md).
    pub sigma_factor: f64,
    /// Kernel half-width in σ (default 2 = MATLAB `imgaussfilt`).
    pub truncate: f64,
}

impl Default for BackgroundParams {
    fn default() -> Self {
        BackgroundParams {
            radius_px: 47,
            decomposition: Decomposition::N4,
            sigma_factor: 1.0,
            truncate: 2.0,
        }
    }
}

/// Background estimate `B = G_{σ} * open(I, D_R)` (the caller subtracts it).
///
/// # Units
/// Radius and σ in px; `B` in the image's units.
///
/// # Errors
/// R = 0, σ ≤ 0, NaN/Inf pixels. An R at least the image size gives the
/// global minimum (docs/methods/background.md), smoothed (a constant).
///
/// # Example
/// ```
/// use ndarray::Array2;
/// use qdscope::stem::background::{estimate, BackgroundParams};
/// // A flat level is its own background.
/// let img = Array2::<f32>::from_elem((32, 32), 7.0);
/// let b = estimate(img.view(), &BackgroundParams { radius_px: 5, ..Default::default() }).unwrap();
/// assert!(b.iter().all(|v| (v - 7.0).abs() < 1e-5));
/// ```
pub fn estimate(image: ArrayView2<f32>, params: &BackgroundParams) -> Result<Array2<f32>> {
    let (ny, nx) = image.dim();
    check_finite("background input", image.iter(), |i| {
        format!("pixel (y={}, x={})", i / nx.max(1), i % nx.max(1))
    })?;
    if params.radius_px == 0 {
        return Err(Error::param("background radius", "must be at least 1 px"));
    }
    let sigma = params.sigma_factor * params.radius_px as f64;
    let opened = if params.radius_px >= ny.min(nx) {
        let m = image.iter().copied().fold(f32::INFINITY, f32::min);
        Array2::from_elem((ny, nx), m)
    } else {
        let fp = Footprint::disk(params.radius_px, params.decomposition)?;
        opening(image, &fp)
    };
    gaussian_filter(opened.view(), sigma, params.truncate)
}
