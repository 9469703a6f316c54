//! Physical constants (CODATA 2018) and unit conversions.
//!
//! One unit system inside the crate: lengths in Å, times in fs, energies in
//! eV (meV where named), angles in rad (mrad where named), masses in amu,
//! temperature in K. Every conversion happens at the boundary (readers, CLI)
//! through the functions and constants here; identifiers carry the unit.

/// Planck constant h in eV·fs.
pub const H_EV_FS: f64 = 4.135_667_696;
/// Reduced Planck constant ħ in eV·fs.
pub const HBAR_EV_FS: f64 = 0.658_211_956_9;
/// Boltzmann constant k_B in eV/K.
pub const KB_EV_PER_K: f64 = 8.617_333_262e-5;
/// Elementary charge e in C (exact).
pub const E_CHARGE_C: f64 = 1.602_176_634e-19;
/// Planck constant h in J·s (exact).
pub const H_J_S: f64 = 6.626_070_15e-34;
/// Speed of light c in m/s (exact).
pub const C_M_PER_S: f64 = 299_792_458.0;
/// Electron rest mass m₀ in kg.
pub const ME_KG: f64 = 9.109_383_701_5e-31;
/// Electron rest energy m₀c² in keV.
pub const ME_C2_KEV: f64 = 510.998_95;
/// h·c in keV·Å.
pub const HC_KEV_ANGSTROM: f64 = 12.398_419_843;
/// Bohr radius a₀ in Å.
pub const BOHR_ANGSTROM: f64 = 0.529_177_210_903;
/// Hartree energy in eV.
pub const HARTREE_EV: f64 = 27.211_386_246;
/// Atomic unit of time in fs.
pub const AU_TIME_FS: f64 = 0.024_188_843_3;
/// Atomic unit of velocity (bohr per a.u. time) in Å/fs.
pub const AU_VELOCITY_ANGSTROM_PER_FS: f64 = BOHR_ANGSTROM / AU_TIME_FS;
/// 1 amu·Å²/fs² expressed in eV.
pub const AMU_A2_PER_FS2_EV: f64 = 103.642_7;
/// FWHM of a Gaussian in units of its σ: 2√(2 ln 2).
pub const FWHM_PER_SIGMA: f64 = 2.354_820_045_030_949;
/// 1 meV in THz.
pub const MEV_TO_THZ: f64 = 0.241_798_9;
/// 1 meV in cm⁻¹.
pub const MEV_TO_CM1: f64 = 8.065_544;

/// Convert Hartree to eV.
#[must_use]
pub fn hartree_to_ev(e_ha: f64) -> f64 {
    e_ha * HARTREE_EV
}

/// Convert bohr to Å.
#[must_use]
pub fn bohr_to_angstrom(x_bohr: f64) -> f64 {
    x_bohr * BOHR_ANGSTROM
}

/// Convert atomic units of time to fs.
#[must_use]
pub fn au_time_to_fs(t_au: f64) -> f64 {
    t_au * AU_TIME_FS
}

/// Convert a velocity in bohr / a.u. time to Å/fs.
#[must_use]
pub fn au_velocity_to_angstrom_per_fs(v_au: f64) -> f64 {
    v_au * AU_VELOCITY_ANGSTROM_PER_FS
}

/// Convert an energy in meV to a frequency in THz.
#[must_use]
pub fn mev_to_thz(e_mev: f64) -> f64 {
    e_mev * MEV_TO_THZ
}

/// Convert an energy in meV to a wavenumber in cm⁻¹.
#[must_use]
pub fn mev_to_cm1(e_mev: f64) -> f64 {
    e_mev * MEV_TO_CM1
}

/// Thermal energy k_B·T in meV.
#[must_use]
pub fn kt_mev(temperature_k: f64) -> f64 {
    KB_EV_PER_K * temperature_k * 1e3
}

/// Gaussian FWHM from σ (same unit).
#[must_use]
pub fn sigma_to_fwhm(sigma: f64) -> f64 {
    sigma * FWHM_PER_SIGMA
}

/// Gaussian σ from FWHM (same unit).
#[must_use]
pub fn fwhm_to_sigma(fwhm: f64) -> f64 {
    fwhm / FWHM_PER_SIGMA
}

/// Convert nm to Å.
#[must_use]
pub fn nm_to_angstrom(x_nm: f64) -> f64 {
    x_nm * 10.0
}

/// Convert pm to Å.
#[must_use]
pub fn pm_to_angstrom(x_pm: f64) -> f64 {
    x_pm * 0.01
}

/// Convert mrad to rad.
#[must_use]
pub fn mrad_to_rad(a_mrad: f64) -> f64 {
    a_mrad * 1e-3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    #[test]
    fn derived_constants_agree_with_codata() {
        // ħ = h/2π to the 10 digits given.
        assert!(rel(H_EV_FS / (2.0 * std::f64::consts::PI), HBAR_EV_FS) < 1e-9);
        // m0 c^2 from SI values: m c^2 / e in eV (the 11-digit CODATA value).
        let mc2_kev = ME_KG * C_M_PER_S * C_M_PER_S / E_CHARGE_C / 1e3;
        assert!(rel(mc2_kev, ME_C2_KEV) < 1e-9);
        // hc from SI: h c / e in eV·m → keV·Å.
        let hc = H_J_S * C_M_PER_S / E_CHARGE_C / 1e3 * 1e10;
        assert!(rel(hc, HC_KEV_ANGSTROM) < 1e-9);
        // bohr / a.u. time = 21.876913 Å/fs (docs/methods/conventions.md).
        assert!(rel(AU_VELOCITY_ANGSTROM_PER_FS, 21.876_913) < 1e-7);
        // 1 amu·Å²/fs² = 1.66053906660e-27 kg · 1e-20 m² / 1e-30 s² / e = 103.6427 eV.
        let amu = 1.660_539_066_60e-27 * 1e-20 / 1e-30 / E_CHARGE_C;
        assert!(rel(amu, AMU_A2_PER_FS2_EV) < 1e-6);
        // 1 meV = e·1e-3 / h in Hz → THz; in cm⁻¹: / (c·100).
        let thz = 1e-3 / H_EV_FS * 1e15 / 1e12;
        assert!(rel(thz, MEV_TO_THZ) < 1e-6);
        assert!(rel(thz * 1e12 / (C_M_PER_S * 100.0), MEV_TO_CM1) < 1e-6);
        assert!(rel(FWHM_PER_SIGMA, 2.0 * (2.0 * 2f64.ln()).sqrt()) < 1e-15);
    }

    #[test]
    fn conversions() {
        assert!(rel(kt_mev(300.0), 25.851_999_786) < 1e-9);
        assert!(rel(kt_mev(10.0), 0.861_733_326_2) < 1e-9);
        assert_eq!(hartree_to_ev(1.0), HARTREE_EV);
        assert_eq!(bohr_to_angstrom(2.0), 2.0 * BOHR_ANGSTROM);
        assert!(rel(au_time_to_fs(1.0 / AU_TIME_FS), 1.0) < 1e-15);
        assert!(rel(au_velocity_to_angstrom_per_fs(1.0), 21.876_913) < 1e-7);
        assert!(rel(mev_to_thz(1.0), 0.241_798_9) < 1e-12);
        assert!(rel(mev_to_cm1(1.0), 8.065_544) < 1e-12);
        assert!(rel(fwhm_to_sigma(sigma_to_fwhm(0.3)), 0.3) < 1e-15);
        // Source FWHM 0.25 Å ↔ σ = 0.10617 Å (docs/methods/multislice.md).
        assert!((fwhm_to_sigma(0.25) - 0.106_17).abs() < 1e-5);
        assert_eq!(nm_to_angstrom(1.5), 15.0);
        assert!((pm_to_angstrom(196.875) - 1.968_75).abs() < 1e-12);
        assert!((mrad_to_rad(18.0) - 0.018).abs() < 1e-15);
    }
}
