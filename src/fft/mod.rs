//! The shared FFT layer: the only module that names `rustfft` and `realfft`.
//!
//! Both halves of qdscope (images and trajectories) transform through here,
//! so conventions live in one place:
//!
//! * **Normalisation.** Forward transforms are unnormalised,
//!   `F[k] = Σ_n f[n] exp(−2πi k n / N)`; inverse transforms divide by `N`
//!   (by `N_y N_x` in 2-D), so a forward/inverse round trip is the identity.
//! * **Order.** Spectra come in FFT order (zero frequency first, then positive,
//!   then negative frequencies). [`fftshift2`] centres them (zero at index
//!   `⌊N/2⌋`), [`ifftshift2`] undoes it. Real-input transforms keep the
//!   `⌊N/2⌋ + 1` non-negative frequencies of the last axis.
//! * **Physical axes.** [`fftfreq`] and [`rfftfreq`] give frequencies in
//!   cycles per unit of the sample spacing: `k / (N d)` (1/Å for images with
//!   `d` in Å, 1/fs = 1000 THz for series with `d` in fs).
//! * **Plans.** [`Plans`] caches one planner per float type behind a lock;
//!   plans are shared (`Arc`) and reused by length. 2-D transforms run rows in
//!   parallel with rayon, transpose in cache-sized blocks, and run the former
//!   columns as rows. Results do not depend on the number of threads (each
//!   row is transformed by the same plan, sums are never split).
//!
//! Modules: [`transform`] (1-D and 2-D transforms, shifts, axes),
//! [`convolve`] (convolution and correlation, psf2otf/otf2psf, 1-D
//! many-row convolver), [`spectrum`] (power per bin, docs/methods/conventions.md).

pub mod convolve;
pub mod plane;
pub mod plans;
pub mod spectrum;
pub mod transform;

pub use convolve::{
    convolve2_circular, convolve2_same, correlate2_circular, fast_len_at_most, otf2psf,
    otf2psf_half, otf2psf_t, psf2otf, psf2otf_half, psf2otf_t, Convolver1d,
};
pub use num_complex::Complex;
pub use plane::{Plane2, Plane2Scratch};
pub use plans::{FftFloat, Plans};
pub use spectrum::{power_per_bin, Detrend, Window};
pub use transform::{
    fft, fft2, fftfreq, fftshift2, ifft, ifft2, ifftshift2, irfft, irfft2, irfft2_t, rfft, rfft2,
    rfft2_t, rfftfreq, transpose,
};
