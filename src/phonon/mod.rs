//! Simulated-trajectory half: electron–phonon coupling and linewidths from
//! MD gap series (spectral spec; the study's SI eqs. 2–8).
//!
//! | module | what | equations |
//! |---|---|---|
//! | [`coupling`] | Huang–Rhys spectrum, band couplings, Λ, Γ(T) | eqs. 2–6 |
//! | [`dephasing`] | gap ACF, cumulant g(t), D(t), Gaussian-fit and exact linewidths | eqs. 7–8 |
//! | [`histogram`] | gap histograms with moment and fitted FWHM | spec §7 |

pub mod coupling;
pub mod dephasing;
pub mod histogram;
