//! Relativistic electron wavelength and interaction constant (simulation
//! docs/methods/optics.md; CODATA 2018).

use crate::units::{HC_KEV_ANGSTROM, ME_C2_KEV};

/// Electron wavelength `λ = hc/√(E(2m₀c² + E))` in Å for a high tension in kV.
///
/// # Example
/// ```
/// let l = qdscope::optics::wavelength_angstrom(300.0);
/// assert!((l * 100.0 - 1.96875).abs() < 1e-5); // 1.96875 pm
/// ```
#[must_use]
pub fn wavelength_angstrom(kv: f64) -> f64 {
    HC_KEV_ANGSTROM / (kv * (2.0 * ME_C2_KEV + kv)).sqrt()
}

/// Interaction constant `σ = (2π/(λV))·(m₀c² + eV)/(2m₀c² + eV)` in
/// rad/(V·Å) for a high tension in kV.
#[must_use]
pub fn interaction_constant(kv: f64) -> f64 {
    let lambda = wavelength_angstrom(kv);
    let v = kv * 1e3;
    2.0 * std::f64::consts::PI / (lambda * v) * (ME_C2_KEV + kv) / (2.0 * ME_C2_KEV + kv)
}

/// The factor `(1 + E/E₀)/(1 + E/(2E₀))` that converts an energy spread into
/// a focal spread relativistically (1.226929 at 300 kV).
#[must_use]
pub fn relativistic_factor(kv: f64) -> f64 {
    (1.0 + kv / ME_C2_KEV) / (1.0 + kv / (2.0 * ME_C2_KEV))
}
