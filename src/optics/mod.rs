//! Electron optics shared by `stem::deconvolve` (initial probe PSF) and the
//! multislice simulation (probe, partial coherence, blur).
//!
//! # Conventions (fixed once, here)
//! * Wavelength from the kinetic energy E = eV: `λ = hc/√(E(2m₀c² + E))`
//!   (CODATA 2018, docs/methods/optics.md).
//! * Aberration phase (Kirkland sign): `χ(k) = πλk²(½C_sλ²k² − Δf) +
//!   (π/3)C₅λ⁵k⁶`; **Δf > 0 focuses Δf below the entrance surface**
//!   (abTEM's C10 = −Δf).
//! * Probe `ψ(r) = ∫ A(k) e^{−iχ(k)} e^{2πik·(r − r_p)} d²k`, aperture
//!   `A = 1` for `λ|k| ≤ α`, normalised to `Σ|ψ|² = 1` on its grid.
//! * Source size and energy spread are given as FWHM (study values 0.25 Å
//!   and 0.8 eV; reading them as FWHM is a choice, docs/methods/optics.md).
//!
//! Modules: [`wavelength`] (λ, σ), [`probe`] (aperture, χ, probe on a grid,
//! radial Airy/Hankel forms, FWHM, the deconvolution PSF at a sampling).

pub mod probe;
pub mod wavelength;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use probe::{
    airy_first_zero_angstrom, bessel_j0, bessel_j1, chi, focal_spread_angstrom,
    probe_fwhm_angstrom, probe_intensity_grid, probe_wave, psf_for_sampling, psf_for_sampling_with,
    radial_intensity, GAUSS_HERMITE_5,
};
pub use wavelength::{interaction_constant, relativistic_factor, wavelength_angstrom};

/// The microscope: everything optics needs, validated at construction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Microscope {
    /// High tension, kV (study: 300).
    pub high_tension_kv: f64,
    /// Probe convergence semi-angle α, mrad (study: 18).
    pub convergence_mrad: f64,
    /// Defocus Δf, Å (Kirkland sign; assumption: 0).
    pub defocus_angstrom: f64,
    /// Spherical aberration C_s, mm (assumption: 0, corrected probe).
    pub cs_mm: f64,
    /// Fifth-order aberration C₅, mm (assumption: 0).
    pub c5_mm: f64,
    /// Chromatic aberration C_c, mm (assumption: 1.4).
    pub cc_mm: f64,
    /// Energy spread ΔE, eV FWHM (study: 0.8 for the simulation).
    pub energy_spread_ev: f64,
    /// Effective source size, Å FWHM (study: 0.25 for the simulation; the
    /// deconvolution PSF uses 0 as the study computed it from kV and α only).
    pub source_size_angstrom: f64,
}

impl Default for Microscope {
    fn default() -> Self {
        Microscope {
            high_tension_kv: 300.0,
            convergence_mrad: 18.0,
            defocus_angstrom: 0.0,
            cs_mm: 0.0,
            c5_mm: 0.0,
            cc_mm: 1.4,
            energy_spread_ev: 0.0,
            source_size_angstrom: 0.0,
        }
    }
}

/// Lowest high tension accepted (kV): below it the wavelength (> 0.39 Å)
/// makes every sampling derived from it absurd.
pub const MIN_HIGH_TENSION_KV: f64 = 1.0;
/// Highest high tension accepted (kV), the largest electron microscopes built.
pub const MAX_HIGH_TENSION_KV: f64 = 3000.0;

impl Microscope {
    /// Validate a microscope: 1 kV ≤ high tension ≤ [`MAX_HIGH_TENSION_KV`],
    /// 0 < α ≤ 100 mrad, finite aberrations, non-negative spreads.
    ///
    /// # Errors
    /// `Error::InvalidParameter` naming the field (`high_tension_kv`, ...).
    pub fn validated(self) -> Result<Self> {
        let fin = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(Error::param(name, format!("must be finite, got {v}")))
            }
        };
        if !(self.high_tension_kv.is_finite()
            && (MIN_HIGH_TENSION_KV..=MAX_HIGH_TENSION_KV).contains(&self.high_tension_kv))
        {
            return Err(Error::param(
                "high_tension_kv",
                format!(
                    "high tension must be {MIN_HIGH_TENSION_KV} … {MAX_HIGH_TENSION_KV} kV, got {}",
                    crate::error::fmt_value(self.high_tension_kv)
                ),
            ));
        }
        if !(self.convergence_mrad.is_finite()
            && self.convergence_mrad > 0.0
            && self.convergence_mrad <= 100.0)
        {
            return Err(Error::param(
                "convergence_mrad",
                format!(
                    "convergence semi-angle must be in (0, 100] mrad, got {}",
                    self.convergence_mrad
                ),
            ));
        }
        fin("defocus_angstrom", self.defocus_angstrom)?;
        fin("cs_mm", self.cs_mm)?;
        fin("c5_mm", self.c5_mm)?;
        for (name, v) in [
            ("cc_mm", self.cc_mm),
            ("energy_spread_ev", self.energy_spread_ev),
            ("source_size_angstrom", self.source_size_angstrom),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::param(name, format!("must be ≥ 0, got {v}")));
            }
        }
        Ok(self)
    }

    /// Electron wavelength λ in Å.
    #[must_use]
    pub fn wavelength_angstrom(&self) -> f64 {
        wavelength_angstrom(self.high_tension_kv)
    }

    /// Aperture radius in reciprocal space, α/λ in 1/Å.
    #[must_use]
    pub fn aperture_inv_angstrom(&self) -> f64 {
        self.convergence_mrad * 1e-3 / self.wavelength_angstrom()
    }

    /// True when χ ≡ 0 (no defocus or aberrations): the probe is an Airy disk.
    #[must_use]
    pub fn is_aberration_free(&self) -> bool {
        self.defocus_angstrom == 0.0 && self.cs_mm == 0.0 && self.c5_mm == 0.0
    }
}
