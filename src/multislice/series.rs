//! Thickness series of CsPbBr3 \[001\] (docs/methods/multislice.md, docs/methods/optics.md): frozen
//! phonon configurations × Gauss–Hermite defocus nodes, every probe
//! position of one unit cell (the 4mm wedge about the Cs column by
//! default), the ADF fraction recorded after every unit cell, so one
//! propagation gives the whole series. Work items (configuration, node)
//! can be split into shards and summed by [`merge`](super::merge::merge).
//!
//! Crystal (A-site origin, `structure::perovskite_planes_001`): Cs (0,0,0),
//! Pb (½,½,½), Br (½,½,0), (½,0,½), (0,½,½); slice 1 at z = 0 (Cs,
//! Br(½,½)), slice 2 at z = ½ (Pb, Br(½,0), Br(0,½)). Frozen phonons: independent Gaussian x/y
//! displacements per atom (per-axis RMS per element), atoms keep their
//! nominal slice; drawn by [`displace`](super::displace) from random
//! streams seeded per (seed, configuration, layer, slice, cell offset), so
//! results do not depend on threads or shards.
//!
//! This module is the entry point of a run: [`SimParams::validate`] checks
//! parameters before anything is computed, [`run_shard`] dispatches on
//! [`SimParams::method`] to [`conventional`] multislice
//! or [`prism`]. The types of a run live in
//! [`params`](super::params) and [`work`](super::work) and are re-exported
//! here.

use crate::error::{Error, Result};
use crate::multislice::conventional;
use crate::multislice::params::Method;
use crate::multislice::prism;

pub use crate::multislice::conventional::{engine, engine_in, multislice_bytes};
pub use crate::multislice::params::{SimParams, MAX_GRID_N, RNG_SCHEME};
pub use crate::multislice::preset::{Overrides, Quality, DEFAULT_DISPLACEMENT_ANGSTROM};
pub use crate::multislice::work::{defocus_nodes, in_shard, positions, Item, Partial};

/// Thickest crystal a run computes, u.c.
pub const MAX_THICKNESS_UC: usize = 200;
/// Most frozen-phonon configurations one run accepts: beyond it the
/// standard error no longer shrinks visibly, and a typo (`1000000000`)
/// must not start a run of years. Larger ensembles: several runs with
/// different seeds, merged.
pub const MAX_PHONONS: usize = 10_000;

impl SimParams {
    /// Every check of a run before anything is computed: PRISM in single
    /// precision only, potential oversampling 1 … 4, blur σ ≥ 0, at most
    /// [`MAX_THICKNESS_UC`] u.c., then those of [`engine`] (microscope,
    /// counts, detectors, grid and scan sizes, random-stream scheme,
    /// displacements, defocus nodes, memory, probe step) and, for PRISM, of
    /// [`prism::validate`] (interpolation factor, grid, S-matrix memory).
    ///
    /// # Errors
    /// The first parameter that fails, named.
    pub fn validate(&self) -> Result<()> {
        if self.double_precision && self.prism_interpolation.is_some() {
            return Err(Error::param(
                "double_precision",
                "applies to `method = multislice` (PRISM runs in single precision)",
            ));
        }
        if !(1..=4).contains(&self.potential_oversampling) {
            return Err(Error::param(
                "potential_oversampling",
                format!("must be 1 … 4, got {}", self.potential_oversampling),
            ));
        }
        if !(self.blur_angstrom.is_finite() && self.blur_angstrom >= 0.0) {
            return Err(Error::param("blur_angstrom", "must be ≥ 0"));
        }
        if self.max_thickness_uc > MAX_THICKNESS_UC {
            return Err(Error::param(
                "max_thickness_uc",
                format!(
                    "must be ≤ {MAX_THICKNESS_UC} u.c., got {}",
                    self.max_thickness_uc
                ),
            ));
        }
        crate::error::check_size(
            "phonons",
            self.phonons as f64,
            MAX_PHONONS as f64,
            "configurations",
            "split larger ensembles into runs with different seeds",
        )?;
        let e = engine(self)?;
        if let Method::Prism { interpolation: f } = self.method() {
            let nb = prism::basis(&e, &self.microscope, f).len();
            prism::validate(self, f, nb)?;
        }
        Ok(())
    }
}

/// How often [`run_shard`] calls its `tick` for shard `shard`: once per
/// propagation (multislice: probe positions × work items of the shard;
/// PRISM: plane waves × unit cells × configurations of the shard).
///
/// # Errors
/// As [`engine`].
pub fn ticks(p: &SimParams, shard: (usize, usize)) -> Result<usize> {
    Ok(match p.method() {
        // PRISM: one tick per plane wave per unit cell.
        Method::Prism { interpolation: f } => {
            let nb = prism::basis(&engine(p)?, &p.microscope, f).len();
            let configs = (0..p.phonons)
                .filter(|&k| in_shard(k, p.phonons, shard))
                .count();
            configs * nb * p.max_thickness_uc
        }
        Method::Multislice => {
            let items = (0..p.phonons * p.defocus_nodes)
                .filter(|&k| in_shard(k, p.phonons * p.defocus_nodes, shard))
                .count();
            let (comp, _) = positions(p.probe_per_cell, p.symmetry_wedge);
            items * comp.len()
        }
    })
}

/// Run the work items of shard `i` of `n`; `tick` is called once per
/// finished propagation ([`ticks`] in all). Multislice shards take
/// contiguous blocks of (configuration, node) pairs ([`in_shard`]); PRISM
/// ([`super::prism`]) takes whole configurations.
///
/// # Errors
/// As [`SimParams::validate`].
///
/// # Examples
/// The whole run as one shard: a one-cell supercell, 2 u.c. thick, one
/// configuration without displacements, the 4mm wedge of probe positions:
/// ```
/// use qdscope::multislice::series::{run_shard, SimParams, RNG_SCHEME};
/// use qdscope::optics::Microscope;
///
/// let p = SimParams {
///     microscope: Microscope::default(), // 300 kV, 18 mrad
///     detectors: vec![(35.0, 190.0)],    // ADF, mrad
///     blur_angstrom: 0.0,
///     max_thickness_uc: 2,
///     lattice_angstrom: 5.87,
///     supercell_uc: 1,
///     grid_n: 180,
///     probe_per_cell: 24,
///     symmetry_wedge: true,
///     phonons: 1,
///     defocus_nodes: 1,
///     displacement_angstrom: [0.0; 3],
///     seed: 1,
///     prism_interpolation: None,
///     potential_oversampling: 1,
///     double_precision: false,
///     rng_scheme: RNG_SCHEME,
/// };
/// let run = run_shard(&p, (0, 1), &|| {})?;
/// // sums[detector][thickness − 1][computed position]: ADF fractions.
/// let (sums, weight) = run.totals();
/// assert_eq!((sums.len(), sums[0].len()), (1, 2));
/// assert!((weight - 1.0).abs() < 1e-12);
/// assert!(sums[0][1].iter().all(|&f| f > 0.0 && f < 1.0));
/// # Ok::<(), qdscope::Error>(())
/// ```
pub fn run_shard(
    p: &SimParams,
    shard: (usize, usize),
    tick: &(dyn Fn() + Sync),
) -> Result<Partial> {
    p.validate()?;
    match p.method() {
        Method::Prism { interpolation } => prism::run_shard(p, interpolation, shard, tick),
        Method::Multislice if p.double_precision => conventional::run_shard::<f64>(p, shard, tick),
        Method::Multislice => conventional::run_shard::<f32>(p, shard, tick),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message of `p.validate()`'s error.
    fn refused(p: &SimParams) -> String {
        p.validate().unwrap_err().to_string()
    }

    #[test]
    fn the_default_run_is_valid() {
        SimParams::default().validate().unwrap();
        let prism = SimParams {
            prism_interpolation: Some(2),
            ..SimParams::default()
        };
        prism.validate().unwrap();
    }

    /// One case per check `qdscope simulate` makes, each with the reason
    /// the command line prints (the parameter's name is the caller's).
    #[test]
    fn validate_refuses_what_the_command_line_refuses() {
        let d = SimParams::default;
        let cases: Vec<(SimParams, &str)> = vec![
            (
                SimParams {
                    double_precision: true,
                    prism_interpolation: Some(1),
                    ..d()
                },
                "PRISM runs in single precision",
            ),
            (
                SimParams {
                    potential_oversampling: 0,
                    ..d()
                },
                "must be 1 … 4, got 0",
            ),
            (
                SimParams {
                    potential_oversampling: 5,
                    ..d()
                },
                "must be 1 … 4, got 5",
            ),
            (
                SimParams {
                    blur_angstrom: -0.1,
                    ..d()
                },
                "must be ≥ 0",
            ),
            (
                SimParams {
                    blur_angstrom: f64::NAN,
                    ..d()
                },
                "must be ≥ 0",
            ),
            (
                SimParams {
                    max_thickness_uc: 201,
                    ..d()
                },
                "must be ≤ 200 u.c., got 201",
            ),
            (
                SimParams {
                    phonons: 1_000_000_000,
                    ..d()
                },
                "1.000e9 configurations is above the limit of 10000 configurations",
            ),
            (
                SimParams {
                    microscope: crate::optics::Microscope {
                        high_tension_kv: 1e-9,
                        ..crate::optics::Microscope::default()
                    },
                    ..d()
                },
                "high tension must be 1 … 3000 kV, got 1e-9",
            ),
            (
                SimParams {
                    max_thickness_uc: 0,
                    ..d()
                },
                "thickness, phonon configurations, supercell and probe grid must be ≥ 1",
            ),
            (
                SimParams {
                    microscope: crate::optics::Microscope {
                        defocus_angstrom: f64::NAN,
                        ..d().microscope
                    },
                    ..d()
                },
                "must be finite, got NaN",
            ),
            (
                SimParams {
                    detectors: vec![],
                    ..d()
                },
                "at least one detector",
            ),
            (
                SimParams {
                    probe_per_cell: 1_000_000_000,
                    ..d()
                },
                "above the limit of 192 positions",
            ),
            (
                SimParams {
                    probe_per_cell: 10,
                    ..d()
                },
                "under-sample the ADF image",
            ),
            (
                SimParams {
                    grid_n: MAX_GRID_N + 1,
                    ..d()
                },
                "16385 px is above the limit of 16384 px",
            ),
            (
                SimParams {
                    rng_scheme: 1,
                    ..d()
                },
                "random-stream scheme 1 is no longer computed",
            ),
            (
                SimParams {
                    displacement_angstrom: [0.1, -0.1, 0.1],
                    ..d()
                },
                "RMS displacements must be finite and ≥ 0 Å",
            ),
            (
                SimParams {
                    defocus_nodes: 2,
                    ..d()
                },
                "must be 1, 3 or 5, got 2",
            ),
            (
                SimParams {
                    prism_interpolation: Some(3),
                    ..d()
                },
                "must be 1, 2, 4 or 8, got 3",
            ),
            (
                SimParams {
                    prism_interpolation: Some(8),
                    grid_n: 580,
                    ..d()
                },
                "the 580² grid is not divisible by f = 8",
            ),
        ];
        for (p, want) in cases {
            let got = refused(&p);
            assert!(got.contains(want), "{got} (wanted {want})");
        }
    }

    #[test]
    fn ticks_count_propagations() {
        let p = SimParams {
            phonons: 2,
            defocus_nodes: 3,
            ..SimParams::default()
        };
        // 24 positions per side: the wedge computes 13·14/2 = 91 of them.
        assert_eq!(ticks(&p, (0, 1)).unwrap(), 6 * 91);
        assert_eq!(ticks(&p, (0, 2)).unwrap(), 3 * 91);
    }
}
