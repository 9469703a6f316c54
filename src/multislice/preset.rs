//! The settings of a series run a caller starts from (docs/methods/multislice.md):
//! two [`Quality`] presets of supercell, grid, frozen-phonon configurations
//! and defocus nodes, every other parameter at its default, and
//! [`Overrides`] of the preset's values. [`SimParams::default`] is the
//! `quick` preset: the parameters of `qdscope simulate` without flags.
//!
//! Another supercell without a sampling keeps the preset's sampling (pixels
//! per unit cell, rounded up to an FFT-friendly grid); a sampling Δx gives
//! the grid L/Δx, rounded up likewise.

use serde::{Deserialize, Serialize};

use crate::error::{check_size, Error, Result};
use crate::fft::convolve::fast_len;
use crate::multislice::params::{SimParams, MAX_GRID_N, RNG_SCHEME};
use crate::optics::Microscope;
use crate::structure::LATTICE_ANGSTROM;

/// Default per-axis RMS thermal displacements, Å, of Cs, Pb and Br: the
/// U_iso of docs/methods/multislice.md (Pb 0.025, Cs 0.05, Br 0.05 Å²) as √U.
pub const DEFAULT_DISPLACEMENT_ANGSTROM: [f64; 3] = [0.223_606_8, 0.158_113_9, 0.223_606_8];

/// Presets of grid, supercell and sampling of the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    /// 3×3 u.c., 576² grid, 16 configurations, 3 defocus nodes (≈ 4 min on 2 cores).
    Quick,
    /// The study's settings: 5×5 u.c., 1536² grid, 20 configurations, 5 nodes (≈ 8 min per configuration on 2 cores, ≈ 3 h in all; shard it with --shard I/20).
    High,
}

/// What a [`Quality`] fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Preset {
    /// Supercell side, u.c.
    pub supercell_uc: usize,
    /// Grid pixels per side of the supercell.
    pub grid_n: usize,
    /// Frozen-phonon configurations.
    pub phonons: usize,
    /// Gauss–Hermite defocus nodes.
    pub defocus_nodes: usize,
}

impl Quality {
    /// The supercell, grid, configurations and defocus nodes of the preset.
    #[must_use]
    pub fn preset(self) -> Preset {
        let (supercell_uc, grid_n, phonons, defocus_nodes) = match self {
            Quality::Quick => (3, 576, 16, 3),
            Quality::High => (5, 1536, 20, 5),
        };
        Preset {
            supercell_uc,
            grid_n,
            phonons,
            defocus_nodes,
        }
    }
}

/// Changes to a preset; `None` keeps the preset's value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Overrides {
    /// Supercell side, u.c. (without `sampling_angstrom`: at the preset's
    /// pixels per unit cell).
    pub supercell_uc: Option<usize>,
    /// Wave sampling Δx, Å: grid = L/Δx rounded up to an FFT-friendly size.
    pub sampling_angstrom: Option<f64>,
    /// Frozen-phonon configurations.
    pub phonons: Option<usize>,
    /// Gauss–Hermite defocus nodes (1, 3 or 5).
    pub defocus_nodes: Option<usize>,
}

impl SimParams {
    /// The parameters of `quality`, every other one at its default: 300 kV,
    /// α = 18 mrad, C_c = 1.4 mm, Δf = 0, energy spread 0.8 eV and source
    /// size 0.25 Å (FWHM), one 35–190 mrad detector, blur σ = 0.3 Å, 30 u.c.,
    /// a = [`LATTICE_ANGSTROM`], 24 probe positions per cell side on the 4mm
    /// wedge, [`DEFAULT_DISPLACEMENT_ANGSTROM`], seed 2022, multislice in
    /// single precision with 2× oversampled potentials.
    #[must_use]
    pub fn preset(quality: Quality) -> SimParams {
        let q = quality.preset();
        SimParams {
            microscope: Microscope {
                high_tension_kv: 300.0,
                convergence_mrad: 18.0,
                cc_mm: 1.4,
                defocus_angstrom: 0.0,
                energy_spread_ev: 0.8,
                source_size_angstrom: 0.25,
                ..Microscope::default()
            },
            detectors: vec![(35.0, 190.0)],
            blur_angstrom: 0.3,
            max_thickness_uc: 30,
            lattice_angstrom: LATTICE_ANGSTROM,
            supercell_uc: q.supercell_uc,
            grid_n: q.grid_n,
            probe_per_cell: 24,
            symmetry_wedge: true,
            phonons: q.phonons,
            defocus_nodes: q.defocus_nodes,
            displacement_angstrom: DEFAULT_DISPLACEMENT_ANGSTROM,
            seed: 2022,
            prism_interpolation: None,
            potential_oversampling: 2,
            double_precision: false,
            rng_scheme: RNG_SCHEME,
        }
    }

    /// [`SimParams::preset`] with `o` applied.
    ///
    /// # Errors
    /// A sampling that is not > 0; a grid above [`MAX_GRID_N`] pixels.
    pub fn preset_with(quality: Quality, o: &Overrides) -> Result<SimParams> {
        let q = quality.preset();
        let mut p = SimParams::preset(quality);
        let (sc, n) = (q.supercell_uc, q.grid_n);
        let supercell = o.supercell_uc.unwrap_or(sc);
        let l = p.lattice_angstrom * supercell as f64;
        let max_n = MAX_GRID_N as f64;
        let why = "grid pixels per side of the supercell";
        p.grid_n = match o.sampling_angstrom {
            Some(dx) if dx.is_finite() && dx > 0.0 => {
                check_size("sampling_angstrom", (l / dx).ceil(), max_n, "px", why)?;
                fast_len((l / dx).ceil() as usize)
            }
            Some(dx) => {
                return Err(Error::param(
                    "sampling_angstrom",
                    format!("must be > 0, got {dx}"),
                ))
            }
            None if supercell == sc => n,
            // The preset's sampling on another supercell (integer arithmetic:
            // 576 px per 3 u.c. is 192 per u.c. exactly).
            None => {
                let px = (n as f64 * supercell as f64 / sc as f64).ceil();
                check_size("supercell_uc", px, max_n, "px", why)?;
                fast_len((n * supercell).div_ceil(sc))
            }
        };
        p.supercell_uc = supercell;
        p.phonons = o.phonons.unwrap_or(q.phonons);
        p.defocus_nodes = o.defocus_nodes.unwrap_or(q.defocus_nodes);
        Ok(p)
    }
}

impl Default for SimParams {
    /// The `quick` preset ([`SimParams::preset`]).
    fn default() -> Self {
        SimParams::preset(Quality::Quick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_keep_or_change_the_sampling() {
        let q = SimParams::preset(Quality::High);
        assert_eq!(
            (q.supercell_uc, q.grid_n, q.phonons, q.defocus_nodes),
            (5, 1536, 20, 5)
        );
        let none = SimParams::preset_with(Quality::Quick, &Overrides::default()).unwrap();
        assert_eq!(none, SimParams::default());
        // 576 px per 3 u.c. = 192 per u.c.: one cell gets 192 px.
        let one = Overrides {
            supercell_uc: Some(1),
            phonons: Some(2),
            defocus_nodes: Some(1),
            ..Overrides::default()
        };
        let p = SimParams::preset_with(Quality::Quick, &one).unwrap();
        assert_eq!(
            (p.supercell_uc, p.grid_n, p.phonons, p.defocus_nodes),
            (1, 192, 2, 1)
        );
        // Δx = 0.05 Å on 5.87 Å: 118 px, rounded up to 120 = 2³·3·5.
        let dx = Overrides {
            sampling_angstrom: Some(0.05),
            ..one
        };
        assert_eq!(
            SimParams::preset_with(Quality::Quick, &dx).unwrap().grid_n,
            120
        );
    }

    #[test]
    fn overrides_that_the_command_line_refuses() {
        let err = |o: Overrides| {
            SimParams::preset_with(Quality::Quick, &o)
                .unwrap_err()
                .to_string()
        };
        for dx in [0.0, -1.0, f64::NAN] {
            let e = err(Overrides {
                sampling_angstrom: Some(dx),
                ..Overrides::default()
            });
            assert!(e.starts_with("sampling_angstrom: must be > 0"), "{e}");
        }
        let e = err(Overrides {
            sampling_angstrom: Some(1e-300),
            ..Overrides::default()
        });
        assert!(e.contains("above the limit of 16384 px"), "{e}");
        let e = err(Overrides {
            supercell_uc: Some(1_000_000_000),
            ..Overrides::default()
        });
        assert!(
            e.starts_with("supercell_uc:") && e.contains("16384 px"),
            "{e}"
        );
    }
}
