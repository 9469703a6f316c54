//! The parameters of a thickness series (docs/methods/multislice.md), shared
//! by the two engines that compute it — conventional multislice
//! ([`conventional`](super::conventional)) and PRISM ([`prism`](super::prism)) —
//! and by the merging and evaluation of their results. [`Method`] names the
//! engine a [`SimParams`] asks for; [`series`](super::series) dispatches on it.

use serde::{Deserialize, Serialize};

use crate::optics::Microscope;

/// Largest wave grid per side (a complex f32 plane of 16384² is 2 GiB).
pub const MAX_GRID_N: usize = 16384;

/// Everything a series run depends on (written into every shard, so
/// merges can check that their shards agree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimParams {
    /// Microscope (kV, α, C_c, energy spread FWHM, source FWHM).
    pub microscope: Microscope,
    /// Annular detectors, mrad.
    pub detectors: Vec<(f64, f64)>,
    /// Extra Gaussian blur σ, Å.
    pub blur_angstrom: f64,
    /// Thickest crystal, u.c. (every u.c. up to it is recorded).
    pub max_thickness_uc: usize,
    /// Lattice constant, Å.
    pub lattice_angstrom: f64,
    /// Supercell, u.c. per side.
    pub supercell_uc: usize,
    /// Grid pixels per side of the supercell.
    pub grid_n: usize,
    /// Probe positions per unit-cell side.
    pub probe_per_cell: usize,
    /// Compute the 4mm wedge only and fill by symmetry.
    pub symmetry_wedge: bool,
    /// Frozen-phonon configurations.
    pub phonons: usize,
    /// Gauss–Hermite defocus nodes (1, 3 or 5).
    pub defocus_nodes: usize,
    /// Per-axis RMS displacement, Å, for Cs, Pb, Br.
    pub displacement_angstrom: [f64; 3],
    /// Seed of the configurations.
    pub seed: u64,
    /// `Some(f)`: PRISM with interpolation factor f; `None`: multislice.
    #[serde(default)]
    pub prism_interpolation: Option<usize>,
    /// Transmission functions computed on an m-times finer grid and
    /// band-limited onto the wave grid ([`Engine::transmission_of`](super::propagate::Engine::transmission_of)); 1 in
    /// files written before the option existed.
    #[serde(default = "one")]
    pub potential_oversampling: usize,
    /// Complex f64 waves and transmissions (multislice only); single
    /// precision (complex f32) by default and in older files.
    #[serde(default)]
    pub double_precision: bool,
    /// How the displacements were drawn: [`RNG_SCHEME`] for every new run;
    /// 1 in files written before 2026-11-30 (one stream per configuration,
    /// drawn in order over the whole supercell — such shards still merge
    /// and re-evaluate, but are no longer computed; qdscope at git commit
    /// 9f418a2 reproduces them).
    #[serde(default = "one_u32")]
    pub rng_scheme: u32,
}

/// The random-stream scheme of new runs ([`displace`](super::displace)).
pub const RNG_SCHEME: u32 = 2;

fn one() -> usize {
    1
}

fn one_u32() -> u32 {
    1
}

/// The engine of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Conventional multislice: one propagation per probe position and
    /// defocus node.
    Multislice,
    /// PRISM: an S-matrix of plane waves with interpolation factor f
    /// (1, 2, 4 or 8; f = 1 equals multislice).
    Prism {
        /// Interpolation factor f.
        interpolation: usize,
    },
}

impl SimParams {
    /// The engine these parameters ask for ([`SimParams::prism_interpolation`]).
    #[must_use]
    pub fn method(&self) -> Method {
        match self.prism_interpolation {
            Some(interpolation) => Method::Prism { interpolation },
            None => Method::Multislice,
        }
    }

    /// Ask for engine `m`.
    pub fn set_method(&mut self, m: Method) {
        self.prism_interpolation = match m {
            Method::Multislice => None,
            Method::Prism { interpolation } => Some(interpolation),
        };
    }
}
